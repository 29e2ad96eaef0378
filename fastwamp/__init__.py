"""fastwamp: a fast WAMP v2 router with a Cython-compiled routing core."""

__version__ = "0.1.0"
