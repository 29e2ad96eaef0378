"""Watchdogs: every connection's deadline on one event-loop timer."""

from __future__ import annotations

import asyncio
import time

from fastwamp.transport.base import _EPSILON, Watchdogs


class Watched:
    """Stands for a connection: records when its watchdog fired."""

    def __init__(self, name: str, on_watch=None) -> None:
        self.peer = name
        self.fired: list[float] = []
        self.on_watch = on_watch

    def _watch(self) -> None:
        self.fired.append(time.monotonic())
        if self.on_watch is not None:
            self.on_watch()


def test_deadlines_fire_once_never_early_and_removed_ones_never(run):
    async def main():
        loop = asyncio.get_running_loop()
        dogs = Watchdogs()
        now = time.monotonic()
        conns = [Watched(f"c{i}") for i in range(200)]
        deadlines = [now + 0.01 + 0.0005 * i for i in range(200)]
        for conn, when in zip(conns, deadlines, strict=True):
            dogs.add(conn, when, loop)
        for conn, when in zip(conns[::2], deadlines[::2], strict=True):
            dogs.remove(conn, when)
        assert len(dogs) == 100
        await asyncio.sleep(0.2)
        for i, conn in enumerate(conns):
            if i % 2:
                assert len(conn.fired) == 1
                assert conn.fired[0] >= deadlines[i] - _EPSILON  # never early
                assert conn.fired[0] <= deadlines[i] + 0.1  # a tick late at most, and the loop
            else:
                assert conn.fired == []
        assert len(dogs) == 0

    run(main)


def test_changes_made_while_firing(run):
    """A watchdog that removes many deadlines (the heap and dict are rebuilt) and
    adds new ones while the timer fires: the new ones still fire, on time."""

    async def main():
        loop = asyncio.get_running_loop()
        dogs = Watchdogs()
        now = time.monotonic()
        later = [Watched(f"later{i}") for i in range(300)]
        later_at = [now + 10 + i / Watchdogs.TICKS for i in range(300)]
        for conn, when in zip(later, later_at, strict=True):
            dogs.add(conn, when, loop)
        soon = Watched("soon")
        again_at = now + 0.05

        def reshuffle() -> None:
            for conn, when in zip(later, later_at, strict=True):
                dogs.remove(conn, when)  # most ticks stale: both rebuilt
            if len(soon.fired) == 1:
                dogs.add(soon, again_at, loop)

        soon.on_watch = reshuffle
        dogs.add(soon, now + 0.01, loop)
        await asyncio.sleep(0.2)
        assert len(soon.fired) == 2 and soon.fired[1] >= again_at - _EPSILON
        assert all(conn.fired == [] for conn in later)
        assert len(dogs) == 0 and len(dogs._ticks) <= 64

    run(main)
