"""CPU per routed call through a transport and the router, without sockets.

Run it as a script (it is not a test module)::

    python tests/transport/call_cost.py                       # every transport
    python tests/transport/call_cost.py -t websocket:picows -s json -n 20000

A real :class:`fastwamp.router.Router` and two real connections (caller and
callee) on in-memory transports: the caller's CALL frames and the callee's
YIELD frames are made beforehand (masked, for WebSocket) and fed to
``data_received`` one per read, as a client that writes each message at once
would send them; the router flushes at once (no event loop turn), and what
the connections write is counted, not sent.  The figure is the thread CPU
time per call (CALL in, INVOCATION out, YIELD in, RESULT out) of parsing,
decoding, routing, encoding and framing: what differs between transports and
engines, without the system calls and the event loop, which cost the same for
each (about 2 x 4 us per call here).  Rounds alternate between the variants
and the best and median of each are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import sys
import time
from typing import Any

import msgpack

REALM = "realm1"
PROCEDURE = "bench.call_cost.echo"
ARGS = [1, "hello", 3.5]
KWARGS = {"k": "v"}


class Sock:
    def setsockopt(self, *args: Any) -> None:
        pass

    def getsockopt(self, *args: Any) -> int:
        return 0

    def fileno(self) -> int:
        return -1


class Transport:
    """Enough of an asyncio transport; counts writes."""

    def __init__(self) -> None:
        self.writes = 0
        self.bytes = 0
        self.closed = False
        self.last = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)
        self.last = data

    def writelines(self, parts: Any) -> None:
        self.write(b"".join(parts))

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "socket": Sock()}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def encoder(serializer: str) -> Any:
    if serializer == "json":
        return lambda m: json.dumps(m, separators=(",", ":")).encode()
    return msgpack.packb


def decoder(serializer: str) -> Any:
    return json.loads if serializer == "json" else msgpack.unpackb


def ws_frame(payload: bytes, text: bool) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    op = 0x81 if text else 0x82
    if n < 126:
        head = bytes((op, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", op, 0xFE, n)
    else:
        head = struct.pack("!BBQ", op, 0xFF, n)
    return head + mask + masked


def rs_frame(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


class Wire:
    """Client-side framing for one transport kind."""

    def __init__(self, kind: str, serializer: str) -> None:
        self.kind = kind
        self.serializer = serializer
        self.encode = encoder(serializer)

    def opening(self) -> bytes:
        if self.kind == "rawsocket":
            return bytes((0x7F, 0xF0 | (1 if self.serializer == "json" else 2), 0, 0))
        return (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.{self.serializer}\r\n\r\n"
        ).encode()

    def frame(self, msg: list) -> bytes:
        payload = self.encode(msg)
        if self.kind == "rawsocket":
            return rs_frame(payload)
        return ws_frame(payload, self.serializer == "json")


def in_memory_router(kind: str, engine: str, serializer: str, connections: int = 0) -> Any:
    """A real router and server without sockets, and ``connect(roles)``: a new
    connection of ``kind`` on an in-memory transport, joined to the realm with
    ``roles``; returns ``(connection, transport)``.  ``connections`` above the
    per-address limit raises it (they all come from one address)."""
    from fastwamp.config import Config, ListenerConfig, RealmConfig
    from fastwamp.router import Router
    from fastwamp.server import Server
    from fastwamp.transport.rawsocket import RawSocketConnection
    from fastwamp.transport.websocket import websocket_connection_class

    if kind == "rawsocket":
        listener = ListenerConfig("rawsocket", port=0, serializers=[serializer])
        cls: Any = RawSocketConnection
    else:
        listener = ListenerConfig("websocket", port=0, implementation=engine,
                                  serializers=[serializer])
        cls = websocket_connection_class(engine)
    config = Config(realms=[RealmConfig(REALM)], listeners=[listener], log_level="warning")
    config.max_connections_per_address = max(config.max_connections_per_address,
                                             connections + 10)
    router = Router(config)
    router.call_soon = None  # flush at once
    server = Server(config, router)
    wire = Wire(kind, serializer)

    def connect(roles: dict[str, Any]) -> tuple[Any, Transport]:
        conn = cls(router, listener, server.connections, server.limits)
        transport = Transport()
        conn.connection_made(transport)
        conn.data_received(wire.opening())
        conn.data_received(wire.frame([1, REALM, {"roles": roles}]))
        return conn, transport

    return server, wire, connect


def setup(kind: str, engine: str, serializer: str, n: int, payload: int = 0) -> Any:
    server, wire, join = in_memory_router(kind, engine, serializer)
    args = ["x" * payload] if payload else ARGS

    def connect() -> tuple[Any, Transport]:
        return join({"caller": {}, "callee": {}})

    callee, callee_t = connect()
    caller, caller_t = connect()
    callee.data_received(wire.frame([64, 1, {}, PROCEDURE]))
    calls = [wire.frame([48, i, {}, PROCEDURE, args, KWARGS]) for i in range(2, n + 2)]
    # The router numbers INVOCATIONs per callee from 1: YIELD i answers the i-th.
    yields = [wire.frame([70, i, {}, args, KWARGS]) for i in range(1, n + 1)]
    return caller, callee, caller_t, callee_t, calls, yields, server


def one_round(kind: str, engine: str, serializer: str, n: int, payload: int) -> float:
    caller, callee, caller_t, callee_t, calls, yields, server = setup(
        kind, engine, serializer, n, payload
    )
    feed_call, feed_yield = caller.data_received, callee.data_received
    results0 = caller_t.writes
    t0 = time.thread_time()
    for call, yld in zip(calls, yields, strict=True):
        feed_call(call)
        feed_yield(yld)
    elapsed = time.thread_time() - t0
    got = caller_t.writes - results0
    if got != n:
        raise RuntimeError(f"{kind}/{engine}: {got} results for {n} calls")
    for conn in list(server.connections):
        conn.connection_lost(None)
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--transports", default="rawsocket,websocket:websockets,"
                        "websocket:picows", help="comma-separated: rawsocket, websocket:ENGINE")
    parser.add_argument("-s", "--serializer", default="msgpack", choices=("msgpack", "json"))
    parser.add_argument("-n", "--calls", type=int, default=10000, help="calls per round")
    parser.add_argument("-r", "--rounds", type=int, default=7)
    parser.add_argument("--payload", type=int, default=0,
                        help="one string argument of this many bytes (0: small arguments)")
    args = parser.parse_args()
    variants = [v.partition(":") for v in args.transports.split(",")]
    results: dict[str, list[float]] = {}

    async def run() -> None:  # the connections want a running loop
        for _ in range(args.rounds):
            for kind, _, engine in variants:
                label = f"{kind}:{engine}" if engine else kind
                results.setdefault(label, []).append(
                    one_round(kind, engine or "websockets", args.serializer, args.calls,
                              args.payload)
                )

    asyncio.run(run())
    for label, values in results.items():
        print(f"{label:22s} {args.serializer:8s} best {min(values):6.2f} us/call  "
              f"median {statistics.median(values):6.2f}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
