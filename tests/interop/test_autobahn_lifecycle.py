"""Router process lifecycle seen by Autobahn|Python clients: SIGTERM, restart, SIGKILL.

These tests start private routers (``router_factory``), so they cost a router
start each; keep them few.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from autobahn.wamp.exception import ApplicationError, TransportLost

from .abclient import (
    ALL_KINDS,
    RS_MSGPACK,
    WS_JSON,
    Client,
    async_test,
    connect,
    unique_uri,
)
from .conftest import RouterProcess

pytestmark = pytest.mark.interop


async def _wait_all_disconnected(sessions: list[Client], timeout: float = 5.0) -> None:
    try:
        await asyncio.wait_for(asyncio.gather(*(s.disconnected for s in sessions)), timeout)
    except asyncio.TimeoutError:
        still = [s.kind.id for s in sessions if not s.disconnected.done()]
        raise AssertionError(
            f"sessions still connected {timeout} s after the router stopped: {still}"
        )


def test_sigterm_with_sessions_then_restart_on_same_ports(
    router_factory: Callable[[], RouterProcess],
) -> None:
    rp = router_factory()
    endpoints = rp.endpoints
    assert endpoints is not None
    proc = unique_uri("restart")

    async def before() -> None:
        callee = await connect(endpoints, WS_JSON)
        others = [await connect(endpoints, k) for k in ALL_KINDS]
        await callee.register(lambda x: x * 2, proc)
        assert await others[-1].call(proc, 21) == 42
        never = asyncio.get_running_loop().create_future()

        async def hang() -> None:
            await never

        await callee.register(hang, proc + ".hang")
        pending = asyncio.ensure_future(others[0].call(proc + ".hang"))
        await asyncio.sleep(0.1)

        # SIGTERM with 7 sessions and one call in flight: the router must exit
        # cleanly (status 0, no traceback) and close every connection.
        t0 = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, rp.stop)
        assert time.monotonic() - t0 < 10
        await _wait_all_disconnected([callee, *others])
        # The router says GOODBYE (wamp.close.system_shutdown) before closing.
        reasons = {
            s.kind.id + ("/callee" if s is callee else ""): (
                s.left.result().reason if s.left.done() else None
            )
            for s in [callee, *others]
        }
        assert set(reasons.values()) == {"wamp.close.system_shutdown"}, reasons
        with pytest.raises((ApplicationError, TransportLost)):
            await asyncio.wait_for(pending, 5)
        never.cancel()

    asyncio.run(asyncio.wait_for(before(), 30))

    endpoints2 = rp.start(ws_port=endpoints.ws_host_port[1], rs_port=endpoints.rs_host_port[1])
    assert endpoints2.ws_host_port == endpoints.ws_host_port
    assert endpoints2.rs_host_port == endpoints.rs_host_port

    async def after() -> None:
        s = await connect(endpoints2, RS_MSGPACK)
        # Nothing survives a restart.
        with pytest.raises(ApplicationError) as ei:
            await s.call(proc, 1)
        assert ei.value.error == "wamp.error.no_such_procedure"
        await s.register(lambda: "reborn", proc)
        assert await s.call(proc) == "reborn"
        await s.close()

    asyncio.run(asyncio.wait_for(after(), 30))


@async_test()
async def test_router_killed_clients_notice(router_factory: Callable[[], RouterProcess]) -> None:
    rp = router_factory()
    endpoints = rp.endpoints
    assert endpoints is not None
    sessions = [await connect(endpoints, k) for k in ALL_KINDS]
    never = asyncio.get_running_loop().create_future()

    async def hang() -> None:
        await never

    proc = unique_uri("killed")
    await sessions[0].register(hang, proc)
    pending = asyncio.ensure_future(sessions[1].call(proc))
    await asyncio.sleep(0.1)
    await asyncio.get_running_loop().run_in_executor(None, rp.kill)
    await _wait_all_disconnected(sessions)
    with pytest.raises(TransportLost):
        await asyncio.wait_for(pending, 5)
    never.cancel()
