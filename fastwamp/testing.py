"""In-memory peers for testing the sans-I/O router without sockets.

``LinkedPeer`` plays the transport for one session: messages a test sends go
straight into the router, and what the router delivers lands in ``received``.
``FakeScheduler`` makes time an explicit input.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from .config import Config, default_config
from .router import Router
from .wamp import messages as m

DEFAULT_ROLES: dict[str, Any] = {
    "caller": {
        "features": {
            "call_canceling": True,
            "progressive_call_results": True,
            "caller_identification": True,
            "call_timeout": True,
        }
    },
    "callee": {
        "features": {
            "call_canceling": True,
            "progressive_call_results": True,
            "caller_identification": True,
            "shared_registration": True,
            "pattern_based_registration": True,
        }
    },
    "publisher": {
        "features": {
            "publisher_exclusion": True,
            "publisher_identification": True,
            "subscriber_blackwhite_listing": True,
        }
    },
    "subscriber": {
        "features": {"pattern_based_subscription": True, "publisher_identification": True}
    },
}


class _Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """A clock that only moves when the test calls :meth:`advance`."""

    def __init__(self, router: Router | None = None) -> None:
        self.now = 0.0
        self.router = router
        self._timers: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now + delay, callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def call_soon(self, callback: Callable[[], None]) -> _Timer:
        """Run ``callback`` on the next turn (:meth:`step`, or :meth:`advance` by any time)."""
        return self.call_later(0.0, callback)

    def step(self) -> bool:
        """Run the earliest timer that is due now (one turn of the loop); False if none."""
        while self._timers and self._timers[0][0] <= self.now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
                if self.router is not None:
                    self.router.flush()
                return True
        return False

    def advance(self, seconds: float) -> None:
        """Move time forward, running due timers in order, then flush the router."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            self.now = when
            if not timer.cancelled:
                timer.callback()
                if self.router is not None:
                    self.router.flush()
        self.now = end


class LinkedPeer:
    """A test client linked to a router in memory (it is the session's sink)."""

    def __init__(self, router: Router, transport_info: dict[str, Any] | None = None) -> None:
        self.router = router
        self.received: list[list] = []
        self.closed = False
        #: Backpressure from the router (pause_input/resume_input).
        self.input_paused = False
        self.session = router.attach(self, transport_info or {"type": "test", "peer": "test"})
        self._request_ids = itertools.count(1)

    # Sink interface
    def send_messages(self, msgs: list[list]) -> None:
        self.received.extend(msgs)

    def close(self) -> None:
        self.closed = True

    def pause_input(self) -> None:
        self.input_paused = True

    def resume_input(self) -> None:
        self.input_paused = False

    # Test-side helpers
    def send(self, msg: Any) -> None:
        self.session.receive(msg)
        self.router.flush()

    def next_request(self) -> int:
        return next(self._request_ids)

    def take(self) -> list[list]:
        """Return and clear what the router sent to this peer so far."""
        out, self.received = self.received, []
        return out

    def take_one(self) -> list:
        out = self.take()
        assert len(out) == 1, f"expected one message, got {out!r}"
        return out[0]

    def hello(
        self, realm: str = "realm1", roles: dict[str, Any] | None = None, **details: Any
    ) -> list:
        self.send([m.HELLO, realm, {"roles": roles or DEFAULT_ROLES, **details}])
        return self.take_one()

    def disconnect(self) -> None:
        self.session.detach()
        self.router.flush()


def make_router(config: Config | None = None) -> tuple[Router, FakeScheduler]:
    """A router on a fake clock."""
    router = Router(config or default_config())
    scheduler = FakeScheduler(router)
    router.scheduler = scheduler
    return router, scheduler
