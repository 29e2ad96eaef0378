"""Time as an input of the routing core.

The dealer and broker take a :class:`Clock` rather than the event loop: the
server sets a scheduler on it (the loop's ``call_later``), tests set a fake one,
and a bare core without a scheduler runs timers never and deferred work at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol


def utcnow_iso() -> str:
    """The current UTC time in RFC 3339 with milliseconds (``2026-12-01T15:20:52.123Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Time as an input: the server's event loop, or a fake in tests."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...

    def call_soon(self, callback: Callable[[], None]) -> Any:
        """Run ``callback`` on the next turn of the loop, as it is: for bookkeeping that
        cannot fail and produces no output (no error logging, no flush after it)."""
        ...


class Clock:
    """The scheduler the routing core runs its timers on, once one is set."""

    __slots__ = ("scheduler",)

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        self.scheduler = scheduler

    def time(self) -> float:
        scheduler = self.scheduler
        return 0.0 if scheduler is None else scheduler.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        """Run ``callback`` after ``delay`` seconds; None (and never) without a scheduler."""
        scheduler = self.scheduler
        if scheduler is None:
            return None
        return scheduler.call_later(delay, callback)
