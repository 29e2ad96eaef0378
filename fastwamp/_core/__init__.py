"""Accelerated routing core: URI validation, URI pattern matching, callee selection.

Each module is written once as typed Python (``X_py.py``) and compiled by Cython
through an augmenting ``X_c.pxd`` into ``X_c``. Import the selector module ``X``:
it exports the compiled implementation when available (and not disabled with
``FASTWAMP_NO_EXTENSIONS=1``), else the pure-Python one, plus ``...Py``/``...C``
twins and a ``COMPILED`` flag for tests.
"""


def compiled() -> bool:
    """Return True iff the compiled versions of all core modules are in use."""
    from . import callees, fanout, message, msgpack_check, trie, uri

    return (uri.COMPILED and trie.COMPILED and callees.COMPILED and fanout.COMPILED
            and message.COMPILED and msgpack_check.COMPILED)
