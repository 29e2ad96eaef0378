"""Router CPU per session established and closed, without sockets.

Drives the real transport classes (RawSocket, and WebSocket with each engine)
and the real router through a fake asyncio transport, inside a uvloop loop:
connection made, transport handshake, HELLO, WELCOME written, connection lost.
What the kernel adds (accept, the two writes, close) is left out, so the
figures show the Python work of one session, which ``e2e.py``'s ``sessions``
scenario measures with sockets (as router CPU per session).

    python bench/session_setup.py [--count 20000] [--rounds 3] [--profile rawsocket]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The in-memory transport of the per-call cost script (tests/transport/call_cost.py).
sys.path.insert(0, str(ROOT / "tests" / "transport"))

from call_cost import Transport  # noqa: E402

from fastwamp.config import ListenerConfig, default_config  # noqa: E402
from fastwamp.router import Router  # noqa: E402
from fastwamp.transport.base import ConnectionLimits  # noqa: E402
from fastwamp.transport.rawsocket import RawSocketConnection  # noqa: E402
from fastwamp.transport.websocket import websocket_connection_class  # noqa: E402

HELLO = msgpack.packb([1, "realm1", {"roles": {"caller": {}, "callee": {},
                                                "publisher": {}, "subscriber": {}}}])
RS_OPEN = b"\x7f\xf2\x00\x00" + len(HELLO).to_bytes(4, "big") + HELLO
WS_REQUEST = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.msgpack\r\n\r\n")
WS_HELLO = bytes((0x82, 0x80 | len(HELLO))) + b"\0\0\0\0" + HELLO


def _kinds() -> dict[str, tuple[Any, ListenerConfig, list[bytes]]]:
    kinds = {"rawsocket": (RawSocketConnection, ListenerConfig("rawsocket"), [RS_OPEN])}
    for engine in ("picows", "websockets"):
        try:
            cls = websocket_connection_class(engine)
        except Exception:  # noqa: BLE001 - engine not installed
            continue
        kinds[f"websocket/{engine}"] = (cls, ListenerConfig("websocket", implementation=engine),
                                        [WS_REQUEST, WS_HELLO])
    return kinds


def run(kind: str, count: int, profile: bool, idle: int = 0) -> float:
    """Seconds per session of ``kind`` (``count`` sessions, after a warm-up)."""
    cls, listener, chunks = _kinds()[kind]

    async def main() -> float:
        config = default_config()
        config.max_connections_per_address = idle + 1000  # all come from one address here
        router = Router(config)
        limits = ConnectionLimits(router.config, router.stats)  # shared, as in the server
        connections: set[Any] = set()

        def one(keep: bool = False) -> None:
            transport = Transport()
            conn = cls(router, listener, connections, limits)
            conn.connection_made(transport)
            for chunk in chunks:
                conn.data_received(chunk)
            router.flush()
            if not transport.bytes:
                raise RuntimeError(f"{kind}: nothing written (handshake failed?)")
            if keep:
                held.append(conn)
            else:
                conn.connection_lost(None)

        held: list[Any] = []
        for _ in range(idle):  # sessions that stay: what a busy router holds
            one(keep=True)
        for _ in range(500):
            one()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        started = time.process_time()
        for _ in range(count):
            one()
        elapsed = time.process_time() - started
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        for conn in held:
            conn.connection_lost(None)
        return elapsed / count

    return uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--profile", default="", help="cProfile this kind")
    parser.add_argument("--kinds", default=",".join(_kinds()))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=10000,
                        help="sessions opened first and held while measuring")
    args = parser.parse_args()
    for kind in args.kinds.split(","):
        figures = [run(kind, args.count, kind == args.profile, args.idle) * 1e6
                   for _ in range(args.rounds)]
        print(f"{kind:22s} {statistics.median(figures):6.1f} µs per session (no sockets, "
              f"{args.idle} sessions held; rounds: "
              f"{', '.join(f'{x:.1f}' for x in figures)})")

if __name__ == "__main__":
    main()
