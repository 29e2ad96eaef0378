"""Failed authentications per client address: a brake on guessing secrets.

Checking a ticket or a salted secret costs the router milliseconds of CPU (key
derivation is slow on purpose), so a client that keeps sending wrong secrets
costs far more than it sends.  :class:`FailedAuthentications` counts failures
per address in a fixed window; once an address reaches the limit, its further
attempts are refused before any secret is checked, until the window ends.
"""

from __future__ import annotations

#: Addresses tracked at once; beyond it, entries whose window ended are dropped, then
#: the oldest half.
MAX_ADDRESSES = 100_000


class FailedAuthentications:
    """Failed authentication attempts by client address in windows of ``window`` seconds."""

    __slots__ = ("limit", "window", "_entries")

    def __init__(self, limit: int, window: float) -> None:
        #: Failures one address may have per window (0: no limit).
        self.limit = limit
        self.window = window
        #: address -> [failures, start of its window]
        self._entries: dict[str, list] = {}

    def blocked(self, address: str, now: float) -> bool:
        """True when ``address`` used up its failures for the current window."""
        if not self.limit:
            return False
        entry = self._entries.get(address)
        return (entry is not None and now - entry[1] < self.window
                and entry[0] >= self.limit)

    def failed(self, address: str, now: float) -> None:
        """Count one failed attempt from ``address``."""
        if not self.limit:
            return
        entries = self._entries
        entry = entries.get(address)
        if entry is None or now - entry[1] >= self.window:
            if entry is None and len(entries) >= MAX_ADDRESSES:
                self._shrink(now)
            entries[address] = [1, now]
        else:
            entry[0] += 1

    def _shrink(self, now: float) -> None:
        entries = self._entries
        for address in [a for a, e in entries.items() if now - e[1] >= self.window]:
            del entries[address]
        if len(entries) >= MAX_ADDRESSES:
            for address in list(entries)[: len(entries) // 2]:
                del entries[address]

    def __len__(self) -> int:
        return len(self._entries)


def client_address(peer: str) -> str:
    """The address part of a transport's peer description (``tcp4:10.0.0.1:5000`` →
    ``10.0.0.1``, ``tcp6:::1:5000`` → ``::1``); other descriptions as they are."""
    kind, sep, rest = peer.partition(":")
    if sep and kind in ("tcp4", "tcp6"):
        host, sep, _port = rest.rpartition(":")
        if sep and host:
            return host
    return peer
