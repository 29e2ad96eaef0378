"""Dead-peer detection end to end: a callee whose process freezes loses its
registration, and calls fail over to the other callee of a shared registration.

A private router pings idle connections every 0.5 s and drops a peer that does
not answer within 0.5 s (``auto_ping_interval`` / ``auto_ping_timeout``).  Two
real Autobahn|Python callee processes share a ``roundrobin`` registration; one
is frozen with SIGSTOP (its kernel still acknowledges TCP, so only the router's
PING can tell).  Within interval + timeout + slack its registration is gone
(``wamp.registration.list_callees`` / ``count_callees``), every call made
meanwhile is answered (by the other callee, or ``wamp.error.canceled`` for the
one that was routed to the frozen callee), and later calls go to the other one.
The callers set no call timeout; the test bounds everything itself.

The callees use WebSocket: Autobahn|Python's RawSocket clients fail the
connection on a RawSocket PING frame, so with the default ``rawsocket_ping =
"auto"`` the router pings no RawSocket peer that has not shown it handles them;
the last test checks that such callees stay connected.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable

import pytest
from autobahn.wamp.exception import ApplicationError

from .abclient import (
    RS_JSON,
    RS_MSGPACK,
    WS_JSON,
    WS_MSGPACK,
    Client,
    Kind,
    async_test,
    connect,
    unique_uri,
)
from .conftest import REPO_ROOT, RouterEndpoints, RouterProcess, _child_env

pytestmark = pytest.mark.interop

INTERVAL = 0.5
TIMEOUT = 0.5
#: Margin for a loaded machine (other test runs share its two cores).
SLACK = 4.0
CALLEE_START = 30.0


async def start_callee(
    endpoints: RouterEndpoints, kind: Kind, procedure: str, name: str
) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.interop.dead_peer_callee",
        endpoints.ws_url,
        endpoints.rs_url,
        kind.transport,
        kind.serializer,
        procedure,
        name,
        cwd=REPO_ROOT,
        env=_child_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), CALLEE_START)
    assert line.startswith(b"ready "), line
    return proc, int(line.split()[1])


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        except ProcessLookupError:
            pass
    await asyncio.wait_for(proc.wait(), 10)


async def outcome(caller: Client, procedure: str) -> str:
    """What a call without timeout ends with: the callee's name, or the error URI."""
    try:
        return await caller.call(procedure)
    except ApplicationError as exc:
        return exc.error


async def callees(caller: Client, procedure: str) -> tuple[list[int], int]:
    registration = await caller.call("wamp.registration.lookup", procedure)
    if registration is None:
        return [], 0
    listed = await caller.call("wamp.registration.list_callees", registration)
    counted = await caller.call("wamp.registration.count_callees", registration)
    return sorted(listed), counted


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
@pytest.mark.parametrize("kind", [WS_JSON, WS_MSGPACK], ids=lambda k: k.id)
def test_frozen_callee_is_dropped_and_calls_fail_over(
    router_factory: Callable[..., RouterProcess], kind: Kind
) -> None:
    rp = router_factory(
        listener_config=f"auto_ping_interval = {INTERVAL}\nauto_ping_timeout = {TIMEOUT}"
    )
    assert rp.endpoints is not None
    endpoints = rp.endpoints
    procedure = unique_uri("deadpeer")

    @async_test(timeout=120)
    async def scenario() -> None:
        frozen, frozen_id = await start_callee(endpoints, kind, procedure, "frozen")
        alive, alive_id = await start_callee(endpoints, kind, procedure, "alive")
        caller = await connect(endpoints, WS_JSON)
        try:
            assert await callees(caller, procedure) == (sorted([frozen_id, alive_id]), 2)
            # Both answer in turn, and both answer the router's PINGs: after several
            # intervals of silence, both are still there.
            assert {await caller.call(procedure) for _ in range(4)} == {"frozen", "alive"}
            await asyncio.sleep(3 * (INTERVAL + TIMEOUT))
            assert await callees(caller, procedure) == (sorted([frozen_id, alive_id]), 2)

            frozen.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            # Calls made at once: one may be routed to the frozen callee; none hangs.
            calls = [asyncio.ensure_future(outcome(caller, procedure)) for _ in range(6)]
            bound = INTERVAL + TIMEOUT + SLACK
            done, pending = await asyncio.wait(calls, timeout=bound)
            assert not pending, f"{len(pending)} calls unanswered {bound} s after SIGSTOP"
            results = [c.result() for c in calls]
            assert set(results) <= {"alive", "wamp.error.canceled"}, results
            assert results.count("alive") >= 3, results

            # Its registration is gone (polled, within the same bound).
            while (listed := await callees(caller, procedure)) != ([alive_id], 1):
                assert time.monotonic() - stopped < bound, listed
                await asyncio.sleep(0.05)

            # Later calls all fail over to the other callee.
            assert [await caller.call(procedure) for _ in range(5)] == ["alive"] * 5
            stats = (await caller.call("fastwamp.router.get_stats"))
            assert stats["ping_timeouts"] >= 1, stats
        finally:
            await stop(frozen)
            await stop(alive)
            await caller.close()

    scenario()
    # The router logged the drop (once, rate-limited) and nothing worse.
    stderr = rp.stderr_text()
    assert "no answer to a PING" in stderr, stderr[-3000:]


@pytest.mark.parametrize("kind", [RS_JSON, RS_MSGPACK], ids=lambda k: k.id)
def test_rawsocket_autobahn_callees_are_not_pinged(
    router_factory: Callable[..., RouterProcess], kind: Kind
) -> None:
    """Autobahn|Python over RawSocket never sends PING or PONG: it gets no PINGs
    (which it could not handle), so it is neither broken nor dropped while idle."""
    rp = router_factory(
        listener_config=f"auto_ping_interval = {INTERVAL}\nauto_ping_timeout = {TIMEOUT}"
    )
    assert rp.endpoints is not None
    endpoints = rp.endpoints
    procedure = unique_uri("rsnoping")

    @async_test(timeout=120)
    async def scenario() -> None:
        first, first_id = await start_callee(endpoints, kind, procedure, "first")
        second, second_id = await start_callee(endpoints, kind, procedure, "second")
        caller = await connect(endpoints, kind)
        try:
            await asyncio.sleep(4 * (INTERVAL + TIMEOUT))  # idle, far past the ping timeout
            assert await callees(caller, procedure) == (sorted([first_id, second_id]), 2)
            assert {await caller.call(procedure) for _ in range(4)} == {"first", "second"}
            stats = await caller.call("fastwamp.router.get_stats")
            assert stats["ping_timeouts"] == 0, stats
        finally:
            await stop(first)
            await stop(second)
            await caller.close()

    scenario()
