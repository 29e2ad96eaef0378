# cython: annotation_typing=False
"""URI validation (WAMP §3.1) as a single character scan, no regex.

Reference implementation; ``uri_c.pxd`` types it and the same source is
compiled as ``fastwamp._core.uri_c``. Import through ``fastwamp._core.uri``.
"""

from __future__ import annotations

MATCH_EXACT = 0
MATCH_PREFIX = 1
MATCH_WILDCARD = 2

#: ``REGISTER/SUBSCRIBE.Options.match`` strings mapped to the ``MATCH_*`` codes.
MATCH_POLICIES = {"exact": MATCH_EXACT, "prefix": MATCH_PREFIX, "wildcard": MATCH_WILDCARD}


def validate_uri(uri: str, match: int, strict: bool) -> bool:
    """Tell whether ``uri`` is a well-formed URI for the ``match`` policy.

    Equivalent to a full match of the six regexes of the spec (wamp-notes §3.1):

    * ``MATCH_EXACT`` (also every CALL/PUBLISH/error URI): no component may be empty;
    * ``MATCH_PREFIX``: only the last component may be empty (``""`` and
      ``"com.app."`` are valid);
    * ``MATCH_WILDCARD``: any component may be empty.

    Loose components contain no ``.``, ``#`` or whitespace (``str.isspace``, the
    same test as the regex ``\\s``); strict components contain only ``[0-9a-z_]``.
    Unlike ``re.match`` with ``$``, a trailing newline is never accepted.

    Raises:
        ValueError: ``match`` is not one of the ``MATCH_*`` codes.
    """
    # Literals stand for the MATCH_* codes: a module global would cost a lookup in C.
    if match < 0 or match > 2:
        raise ValueError(f"unknown match policy {match!r}")
    wildcard = match == 2  # MATCH_WILDCARD
    comp_len = 0  # characters in the component being scanned
    for ch in uri:
        if ch == ".":
            if comp_len == 0 and not wildcard:
                return False
            comp_len = 0
        elif strict:
            if not ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_"):
                return False
            comp_len += 1
        else:
            if ch == "#" or ch.isspace():
                return False
            comp_len += 1
    # The last component may be empty for prefix and wildcard patterns only.
    return comp_len > 0 or match != 0  # MATCH_EXACT


def uri_within_limits(uri: str, max_length: int, max_components: int) -> bool:
    """Tell whether ``uri`` has at most ``max_length`` characters and ``max_components``
    components (its ``.`` count plus one); a negative limit is no limit.

    The router refuses URIs over its ``max_uri_length`` and ``max_uri_components``
    (``wamp.error.invalid_uri``), so that no client-chosen URI size reaches the
    trie or the logs. Characters are code points (``len``), as in the spec's
    URI rules. Constant time for a URI shorter than ``max_components`` (it cannot
    hold that many dots), else one ``str.count``; a separate call is faster than
    optional limits on :func:`validate_uri` (bench: +28 ns against +43 ns).
    """
    n = len(uri)
    if 0 <= max_length < n:
        return False
    if max_components < 0 or n < max_components:
        return True  # n characters hold at most n dots: n + 1 <= max_components parts
    return uri.count(".") < max_components
