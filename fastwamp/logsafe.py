"""Logging what clients send without letting them flood or forge the log.

Two tools: :func:`clip` quotes a client-supplied value for a log line (short,
bounded in cost however large the value, control characters escaped, so a
newline in an ABORT reason cannot start a forged line), and
:class:`LogBudget` limits the lines one session or connection may cause per
second (a token bucket; lines over it are counted and the count is reported
with the next line that is allowed).
"""

from __future__ import annotations

import logging
import reprlib
import time

#: Default longest quoted value (``Config.log_value_max``).
DEFAULT_VALUE_MAX = 200
#: Default lines per second per session (``Config.log_lines_per_session``).
DEFAULT_RATE = 5.0

_ESCAPES = {i: f"\\x{i:02x}" for i in range(32)}
_ESCAPES.update({0x7F: "\\x7f", 0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\x85"})


def _make_repr(limit: int) -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxstring = limit
    r.maxother = limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = 8
    r.maxlong = 40
    return r


_reprs: dict[int, reprlib.Repr] = {}


def clip(value: object, limit: int = DEFAULT_VALUE_MAX) -> str:
    """``value`` as text for one log line: at most about ``limit`` characters,
    containers abbreviated, control characters escaped.  Costs O(limit)."""
    if type(value) is str:
        text = value if len(value) <= limit else value[:limit] + f"...({len(value)} chars)"
    else:
        r = _reprs.get(limit)
        if r is None:
            r = _reprs[limit] = _make_repr(limit)
        try:
            text = r.repr(value)
        except Exception:  # a value whose repr fails must not break logging
            text = f"<{type(value).__name__}>"
        if len(text) > limit:
            text = text[:limit] + "..."
    if not text.isprintable():
        text = text.translate(_ESCAPES)
    return text


class LogBudget:
    """A token bucket of log lines: ``rate`` lines per second, bursts of ``2 * rate``."""

    __slots__ = ("rate", "tokens", "last", "suppressed")

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        self.rate = rate
        self.tokens = 2.0 * rate
        self.last = time.monotonic()
        self.suppressed = 0

    def allow(self) -> bool:
        """Spend one line if the budget has one; count it as suppressed otherwise."""
        now = time.monotonic()
        tokens = min(2.0 * self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        self.suppressed += 1
        return False

    def log(self, logger: logging.Logger, level: int, msg: str, *args: object) -> None:
        """Log one line if the budget allows, noting how many lines were suppressed."""
        if not logger.isEnabledFor(level) or not self.allow():
            return
        if self.suppressed:
            msg += " (%d similar lines suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        logger.log(level, msg, *args)
