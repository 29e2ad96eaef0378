"""What an idle connection holds, measured with tracemalloc (no timing, no RSS).

Connections on fake transports, past their handshake and WELCOME, idle; only
what the transport layer allocates is counted (fastwamp.transport, the
serializers, websockets, picows), not the stub router's sessions nor the
event loop's transport.  The bounds leave about 40% of headroom over what was
measured when they were set (RawSocket 0.5 KB, websockets engine 1.8 KB, picows
engine 4.9 KB; they were 264 KB, 271 KB and 289 KB before issue 8, a msgpack
Packer's buffer per connection included); ``tests/transport/idle_sessions.py``
measures the whole router's RSS per session.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.server import ConnectionSet
from fastwamp.transport.base import ConnectionLimits
from fastwamp.transport.rawsocket import RawSocketConnection
from fastwamp.transport.websocket import websocket_connection_class

from .conftest import FakeTransport, StubRouter, rs_frame

COUNT = 300
#: Files whose allocations are the transport layer's.
MINE = ("fastwamp/transport/", "fastwamp/wamp/", "fastwamp/server.py", "websockets/", "picows/")
#: Bytes per idle connection, at most.
BOUNDS = {"rawsocket": 700, "websockets": 2600, "picows": 7000}


def _request() -> bytes:
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=["wamp.2.json"])
    client.send_request(client.connect())
    return b"".join(client.data_to_send())


def _open(kind: str, router: StubRouter, limits: ConnectionLimits, connections: set,
          request: bytes) -> Any:
    transport = FakeTransport()
    if kind == "rawsocket":
        conn: Any = RawSocketConnection(router, ListenerConfig("rawsocket"), connections, limits)
        conn.connection_made(transport)
        conn.data_received(b"\x7f\xf1\x00\x00" + rs_frame(b'["welcome"]'))
    else:
        listener = ListenerConfig("websocket", implementation=kind)
        conn = websocket_connection_class(kind)(router, listener, connections, limits)
        conn.connection_made(transport)
        conn.data_received(request)
        # ["welcome"], masked with a zero key.
        conn.data_received(bytes((0x81, 0x80 | 11)) + b"\0\0\0\0" + b'["welcome"]')
    assert conn._established
    transport.writes.clear()
    return conn


def _mine(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot) -> int:
    return sum(
        stat.size_diff
        for stat in snapshot.compare_to(base, "filename")
        if any(part in stat.traceback[0].filename for part in MINE)
    )


@pytest.mark.parametrize("kind", list(BOUNDS))
def test_idle_connection_memory(kind):
    async def main() -> tuple[float, float]:
        router = StubRouter()
        limits = ConnectionLimits(router.config, router.stats)
        connections = ConnectionSet()
        request = _request()
        for _ in range(20):  # warm-up: shared serializers, interned strings, caches
            _open(kind, router, limits, connections, request).connection_lost(None)
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.take_snapshot()
            conns = [_open(kind, router, limits, connections, request) for _ in range(COUNT)]
            gc.collect()
            held = _mine(tracemalloc.take_snapshot(), base) / COUNT
            for conn in conns:
                conn.connection_lost(None)
            del conns
            router.sessions.clear()  # the stub keeps its sessions, and they their sinks
            router.detached.clear()
            connections.compact()  # as the server does once many have closed
            await asyncio.sleep(0)
            gc.collect()
            left = _mine(tracemalloc.take_snapshot(), base)
        finally:
            tracemalloc.stop()
        return held, left

    held, left = asyncio.run(main())
    assert held <= BOUNDS[kind], f"{kind}: {held:.0f} bytes per idle connection"
    # Nothing per connection stays once they have closed (a few shared leftovers:
    # the last deadlines' buckets, a cached string).
    # Less than 32 bytes per closed connection: a leaked object per connection (at least
    # 56 bytes) fails; interpreter caches warming up (a few KiB in all) do not.
    assert left <= 32 * COUNT, f"{kind}: {left} bytes left after {COUNT} connections closed"
