"""Selector for ``UriTrie``: compiled ``trie_c`` if available, else ``trie_py``."""

import os
from typing import TYPE_CHECKING

from .trie_py import UriTrie as UriTriePy

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .trie_c import UriTrie as UriTrieC
    except ImportError:  # not built: fall back to pure Python
        UriTrieC = None
else:
    UriTrieC = None

COMPILED = UriTrieC is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    UriTrie = UriTriePy
else:
    UriTrie = UriTriePy if UriTrieC is None else UriTrieC

__all__ = ["COMPILED", "UriTrie", "UriTrieC", "UriTriePy"]
