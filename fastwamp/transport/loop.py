"""Event loop glue: choosing the loop (uvloop or stdlib asyncio) and the router's scheduler."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger("fastwamp.transport")


def uvloop_enabled() -> bool:
    """True when uvloop is importable and not disabled with ``FASTWAMP_NO_UVLOOP=1``."""
    if os.environ.get("FASTWAMP_NO_UVLOOP", "") not in ("", "0"):
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop constructor to use: uvloop's unless disabled or missing."""
    if uvloop_enabled():
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


class LoopScheduler:
    """The router's clock and timers on an asyncio loop.

    ``time()`` is the loop's monotonic clock (seconds).  ``call_later(delay, fn)``
    runs ``fn()`` after ``delay`` seconds and then calls ``router.flush()``, so
    the output a timer produces (a call timeout's ERROR, say) is delivered at once.
    The returned handle has ``cancel()``.  ``call_soon(fn)`` is the loop's, as it is.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, router: Any) -> None:
        self._loop = loop
        self._router = router
        #: ``call_soon(fn)``: the loop's own, for bookkeeping that cannot fail and
        #: produces no output (see :class:`~fastwamp.router.clock.Scheduler`).
        self.call_soon = loop.call_soon

    def time(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, fn: Callable[[], object]) -> asyncio.TimerHandle:
        return self._loop.call_later(max(0.0, delay), self._run, fn)

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:
            log.exception("router timer callback %r failed", fn)
        self._router.flush()
