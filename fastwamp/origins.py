"""Which browser origins a WebSocket listener accepts (its ``allowed_origins``).

A browser sends the page's origin in the ``Origin`` header of every WebSocket
handshake; without a check, any web page a user visits can open a connection
to a router the user's browser can reach (cross-site WebSocket hijacking).
Clients that are not browsers (Autobahn|Python, wampy.js in Node) send no
``Origin`` header and are not concerned.

Patterns:

* ``*``: any origin, ``null`` included;
* ``null``: the opaque origin (``file://`` pages, sandboxed frames);
* ``scheme://host`` or ``scheme://host:port``: exactly that origin (scheme and
  host compared case-insensitively; no port means the scheme's default);
* ``scheme://*.example.com``: any subdomain of example.com, at any depth (not
  example.com itself); ``scheme://*``: any host;
* ``:*`` as the port: any port (``http://localhost:*``).
"""

from __future__ import annotations

from collections.abc import Iterable

#: Default ports, which a serialized origin leaves out.
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: A pattern's port that matches any port.
ANY_PORT = -1


def _split(origin: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of ``scheme://host[:port]`` (lowercased; port None when
    absent, ``ANY_PORT`` for ``*``); None if it is not of that form."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not scheme or not rest or "/" in rest or "@" in rest:
        return None
    if not scheme.isascii() or not scheme.replace("+", "").replace("-", "").isalnum():
        return None
    if rest.startswith("["):  # IPv6 literal
        end = rest.find("]")
        if end < 0:
            return None
        host, tail = rest[: end + 1], rest[end + 1 :]
    else:
        host, colon, port_text = rest.partition(":")
        tail = colon + port_text
    if not host:
        return None
    port: int | None = None
    if tail:
        if not tail.startswith(":") or len(tail) == 1:
            return None
        text = tail[1:]
        if text == "*":
            port = ANY_PORT
        elif text.isdigit() and len(text) <= 5 and int(text) <= 65535:
            port = int(text)
        else:
            return None
    if port is not None and port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, host, port


def origin_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid ``allowed_origins`` entry (None: it is)."""
    if pattern in ("*", "null"):
        return None
    parts = _split(pattern)
    if parts is None:
        return (
            f"{pattern!r} is not an origin pattern: expected \"*\", \"null\" or "
            "scheme://host[:port], e.g. \"https://app.example.com\", "
            "\"https://*.example.com\", \"http://localhost:*\""
        )
    host = parts[1]
    if "*" in host and host != "*" and not (host.startswith("*.") and "*" not in host[2:]):
        return f"{pattern!r}: a host may only start with \"*.\" (any subdomain) or be \"*\""
    return None


class OriginPolicy:
    """A compiled list of origin patterns (see the module doc)."""

    __slots__ = ("any", "null", "_exact", "_patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.any = False
        self.null = False
        #: (scheme, host, port) of exact patterns.
        self._exact: set[tuple[str, str, int | None]] = set()
        #: (scheme, host suffix or "" for any host, port) of wildcard patterns.
        self._patterns: list[tuple[str, str | None, str, int | None]] = []
        for pattern in patterns:
            if pattern == "*":
                self.any = True
                continue
            if pattern == "null":
                self.null = True
                continue
            parts = _split(pattern)
            if parts is None:
                raise ValueError(origin_pattern_problem(pattern))
            scheme, host, port = parts
            if "*" in host or port == ANY_PORT:
                if host == "*":
                    self._patterns.append((scheme, None, "", port))
                elif host.startswith("*."):
                    self._patterns.append((scheme, None, host[1:], port))
                else:
                    self._patterns.append((scheme, host, "", port))
            else:
                self._exact.add(parts)

    def allows(self, origin: str) -> bool:
        """Whether a handshake with ``Origin: origin`` is accepted."""
        if self.any:
            return True
        if origin.strip().lower() == "null":
            return self.null
        parts = _split(origin)
        if parts is None or parts[2] == ANY_PORT:
            return False
        if parts in self._exact:
            return True
        scheme, host, port = parts
        for p_scheme, p_host, p_suffix, p_port in self._patterns:
            if p_scheme != scheme or (p_port != ANY_PORT and p_port != port):
                continue
            if p_host is not None:
                if host == p_host:
                    return True
            elif not p_suffix or (host.endswith(p_suffix) and len(host) > len(p_suffix)):
                return True
        return False


_POLICIES: dict[tuple[str, ...], OriginPolicy] = {}


def origin_policy(patterns: Iterable[str]) -> OriginPolicy:
    """The compiled policy for ``patterns`` (shared by every listener with the same list)."""
    key = tuple(patterns)
    policy = _POLICIES.get(key)
    if policy is None:
        policy = _POLICIES[key] = OriginPolicy(key)
    return policy
