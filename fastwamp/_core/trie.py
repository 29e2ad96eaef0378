"""Selector for ``UriTrie``: compiled ``trie_c`` if available, else ``trie_py``."""

import os

from .trie_py import UriTrie as UriTriePy

UriTrieC = None
if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .trie_c import UriTrie as UriTrieC
    except ImportError:  # not built: fall back to pure Python
        pass

COMPILED = UriTrieC is not None
UriTrie = UriTriePy if UriTrieC is None else UriTrieC

__all__ = ["COMPILED", "UriTrie", "UriTrieC", "UriTriePy"]
