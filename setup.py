"""Build script: compiles fastwamp's routing core with Cython.

The core modules are written once as typed Python (``*_py.py``) and compiled
through an augmenting ``*_c.pxd`` into ``*_c`` extension modules, so the
compiled and pure-Python builds cannot drift apart.

Environment switches:
  FASTWAMP_NO_EXTENSIONS=1  build nothing (pure-Python install, for debugging)
  FASTWAMP_DEBUG=1          annotate and enable line tracing
"""

import os

from setuptools import Extension, setup

COMPILED_MODULES = [
    "fastwamp._core.trie",
    "fastwamp._core.callees",
    "fastwamp._core.uri",
    "fastwamp._core.fanout",
    "fastwamp._core.message",
]
#: Router modules compiled as they are (``X.py`` → ``X_c``, typed by ``X_c.pxd``); the
#: interpreted ``X`` picks the compiled twin of its classes at import (see member.py).
COMPILED_ROUTER_MODULES = [
    "fastwamp.router.member",
    "fastwamp.router.dealer",
]


def extensions() -> list:
    if os.environ.get("FASTWAMP_NO_EXTENSIONS"):
        return []
    from Cython.Build import cythonize

    debug = bool(os.environ.get("FASTWAMP_DEBUG"))
    exts = [
        Extension(
            f"{name}_c",
            [name.replace(".", "/") + "_py.py"],
            define_macros=[("CYTHON_TRACE", "1")] if debug else [],
        )
        for name in COMPILED_MODULES
    ] + [
        Extension(
            f"{name}_c",
            [name.replace(".", "/") + ".py"],
            define_macros=[("CYTHON_TRACE", "1")] if debug else [],
        )
        for name in COMPILED_ROUTER_MODULES
    ]
    return cythonize(
        exts,
        language_level=3,
        annotate=debug,
        # The augmenting X_c.pxd is not in Cython's dependency scan of X_py.py:
        # regenerate every time (a few seconds) so a .pxd edit is never missed.
        force=True,
        compiler_directives={
            "embedsignature": True,
            "boundscheck": False,
            "wraparound": False,
            "linetrace": debug,
        },
    )


setup(ext_modules=extensions())
