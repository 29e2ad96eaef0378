"""Memory per idle session: a router process, a client process, the router's RSS.

Run it as a script (it is not a test module)::

    python tests/transport/idle_sessions.py --transport rawsocket --sessions 10000
    python tests/transport/idle_sessions.py --transport websocket --engine picows -n 10000
    python tests/transport/idle_sessions.py -t rawsocket -n 5000 --trace   # where the bytes go

The router runs in a process of its own (``--serve``, uvloop, a real
:class:`fastwamp.router.Router` behind :func:`fastwamp.server.serve`), on a
configuration whose limits allow that many sessions from one address.  The
client process opens ``--sessions`` connections, each doing the transport
handshake and HELLO (the roles an Autobahn|Python client announces) and
waiting for WELCOME, and then stays idle.  The router's ``VmRSS`` is read
before (after a warm-up round of sessions, so that code and caches are
loaded), with the sessions open, and after they have all left.  With
``--trace`` the router also runs :mod:`tracemalloc` from before the sessions
open and prints what they hold, by file and by line, per session.

Both processes raise their soft open-files limit to the hard one; a session
takes one descriptor in each, so the hard limit bounds ``--sessions``.
``--in-memory N`` instead opens N sessions inside one process on in-memory
transports (real connection and router objects, no socket), which is not
bounded by descriptors; the bytes of a real socket's transport are not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Any

import msgpack

HOST = "127.0.0.1"

#: The roles and features Autobahn|Python 24 announces in HELLO.
AUTOBAHN_ROLES: dict[str, Any] = {
    "caller": {
        "features": {
            "caller_identification": True,
            "progressive_call_results": True,
            "call_canceling": True,
            "payload_transparency": True,
            "payload_encryption_cryptobox": True,
        }
    },
    "callee": {
        "features": {
            "caller_identification": True,
            "pattern_based_registration": True,
            "shared_registration": True,
            "call_canceling": True,
            "progressive_call_results": True,
            "registration_revocation": True,
            "payload_transparency": True,
            "testament_meta_api": True,
            "payload_encryption_cryptobox": True,
        }
    },
    "publisher": {
        "features": {
            "publisher_identification": True,
            "subscriber_blackwhite_listing": True,
            "publisher_exclusion": True,
            "payload_transparency": True,
            "x_acknowledged_event_delivery": True,
            "payload_encryption_cryptobox": True,
        }
    },
    "subscriber": {
        "features": {
            "publisher_identification": True,
            "pattern_based_subscription": True,
            "subscription_revocation": True,
            "payload_transparency": True,
            "payload_encryption_cryptobox": True,
        }
    },
}
HELLO = [1, "realm1", {"roles": AUTOBAHN_ROLES, "authmethods": ["anonymous"]}]

#: The request headers of a typical WebSocket client (Autobahn|Python's, plus a browser's).
WS_REQUEST = (
    "GET /ws HTTP/1.1\r\n"
    "User-Agent: AutobahnPython/24.4.2\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: WebSocket\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Sec-WebSocket-Key: {key}\r\n"
    "Sec-WebSocket-Protocol: wamp.2.msgpack,wamp.2.json\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)


def rss_kb(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bench_config(transport: str, engine: str, port: int = 0) -> Any:
    from fastwamp.config import Config, ListenerConfig, RealmConfig

    listener = (
        ListenerConfig("websocket", port=port, implementation=engine)
        if transport == "websocket"
        else ListenerConfig("rawsocket", port=port)
    )
    return Config(
        realms=[RealmConfig("realm1", max_sessions=10**7)],
        listeners=[listener],
        max_connections_per_address=10**7,
        log_level="warning",
    )


# ---------------------------------------------------------------------------
# Router process.


#: Where the bytes of a session go, by the file that allocated them.
COMPONENTS = (
    ("serializer", ("fastwamp/wamp/serializers.py",)),
    ("router core", ("fastwamp/router/", "/random.py")),
    ("WebSocket engine", ("fastwamp/transport/websocket.py", "fastwamp/transport/picows_ws.py",
                          "websockets/", "picows/", "/base64.py", "/uuid.py", "/email/")),
    ("transport connection", ("fastwamp/transport/", "fastwamp/server.py")),
    ("uvloop transport", ("asyncio/", "/weakref.py")),
)


def components(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot, n: int) -> list[str]:
    """Bytes per session by component (COMPONENTS; the rest: "other")."""
    totals: dict[str, float] = {}
    for stat in snapshot.compare_to(base, "filename"):
        where = stat.traceback[0].filename
        name = next((c for c, marks in COMPONENTS if any(m in where for m in marks)), "other")
        totals[name] = totals.get(name, 0) + stat.size_diff / n
    return [f"  {v:8.1f} B/session  {k}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]


def top_stats(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot, n: int,
              key: str, limit: int) -> list[str]:
    stats = snapshot.compare_to(base, key)
    out = []
    total = sum(s.size_diff for s in stats)
    out.append(f"  total {total / n:8.1f} B/session ({total / 1024:,.0f} KiB)")
    for s in stats[:limit]:
        if s.size_diff <= 0:
            continue
        frame = s.traceback[0]
        where = frame.filename
        for marker in ("site-packages/", "/work/main/"):
            if marker in where:
                where = where.split(marker, 1)[1]
        label = where if key == "filename" else f"{where}:{frame.lineno}"
        out.append(f"  {s.size_diff / n:8.1f} B/session {s.count_diff / n:6.2f} blocks  {label}")
    return out


def serve_main(args: argparse.Namespace) -> None:
    from fastwamp.server import serve
    from fastwamp.transport.loop import loop_factory

    raise_nofile()
    config = bench_config(args.transport, args.engine)
    state: dict[str, Any] = {}

    async def main() -> None:
        server = await serve(config)
        state["server"] = server
        print(json.dumps({"port": server.listeners[0].port}), flush=True)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def command(line: str) -> None:
            words = line.split()
            reply: dict[str, Any] = {}
            if not words:
                return
            if words[0] == "quit":
                done.set_result(None)
                return
            if words[0] == "rss":
                gc.collect()
                if len(words) > 1 and words[1] == "trim":
                    with contextlib.suppress(OSError, AttributeError):
                        import ctypes

                        ctypes.CDLL("libc.so.6").malloc_trim(0)
                reply = {"rss_kb": rss_kb(), "sessions": len(server.router.sessions),
                         "connections": len(server.connections),
                         "blocks": sys.getallocatedblocks()}
            elif words[0] == "trace_start":
                gc.collect()
                tracemalloc.start(1)
                state["base"] = tracemalloc.take_snapshot()
                reply = {"ok": True}
            elif words[0] == "trace_snap":
                gc.collect()
                snap = tracemalloc.take_snapshot()
                n = max(1, len(server.connections), state.get("n", 0))
                state["n"] = n
                lines = ["by component:"] + components(snap, state["base"], n)
                lines += ["by file:"]
                lines += top_stats(snap, state["base"], n, "filename", 25)
                lines.append("by line:")
                lines += top_stats(snap, state["base"], n, "lineno", 40)
                tracemalloc.stop()
                reply = {"report": "\n".join(lines)}
            print(json.dumps(reply), flush=True)

        def reader() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(command, line)
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        threading.Thread(target=reader, daemon=True).start()
        await done
        server.abort()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())


# ---------------------------------------------------------------------------
# Client process.


class IdleClient(asyncio.Protocol):
    """One session: transport handshake, HELLO, WELCOME, then nothing."""

    def __init__(self, transport_kind: str, port: int, welcomed: asyncio.Future) -> None:
        self.kind = transport_kind
        self.port = port
        self.welcomed = welcomed
        self.buf = b""
        self.stage = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.kind == "rawsocket":
            transport.write(bytes((0x7F, 0xF2, 0, 0)))
        else:
            import base64

            key = base64.b64encode(os.urandom(16)).decode()
            transport.write(WS_REQUEST.format(port=self.port, key=key).encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.kind == "rawsocket":
            self._raw()
        else:
            self._ws()

    def _raw(self) -> None:
        if self.stage == 0 and len(self.buf) >= 4:
            self.buf = self.buf[4:]
            self.stage = 1
            payload = msgpack.packb(HELLO)
            self.transport.write(struct.pack("!I", len(payload)) + payload)
        if self.stage == 1 and len(self.buf) >= 4:
            (n,) = struct.unpack("!I", self.buf[:4])
            if len(self.buf) >= 4 + n:
                msg = msgpack.unpackb(self.buf[4 : 4 + n])
                self.buf = self.buf[4 + n :]
                self.stage = 2
                self._done(msg)

    def _ws(self) -> None:
        if self.stage == 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.buf[: self.buf.find(b"\r\n")]
            self.buf = self.buf[end + 4 :]
            if b" 101 " not in status:
                self._done(None)
                return
            self.stage = 1
            payload = msgpack.packb(HELLO)
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            n = len(payload)
            head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0xFE, n)
            self.transport.write(head + mask + masked)
        if self.stage == 1 and len(self.buf) >= 2:
            n = self.buf[1] & 0x7F
            pos = 2
            if n == 126:
                (n,) = struct.unpack("!H", self.buf[2:4])
                pos = 4
            if len(self.buf) >= pos + n:
                msg = msgpack.unpackb(self.buf[pos : pos + n])
                self.buf = self.buf[pos + n :]
                self.stage = 2
                self._done(msg)

    def _done(self, msg: Any) -> None:
        if not self.welcomed.done():
            self.welcomed.set_result(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._done(None)


async def open_sessions(kind: str, port: int, n: int, batch: int = 200) -> list[Any]:
    loop = asyncio.get_running_loop()
    transports: list[Any] = []
    failed = 0
    for start in range(0, n, batch):
        futures = []
        for _ in range(min(batch, n - start)):
            fut = loop.create_future()
            futures.append(fut)
            t, _p = await loop.create_connection(lambda f=fut: IdleClient(kind, port, f), HOST, port)
            transports.append(t)
        for msg in await asyncio.gather(*futures):
            if not msg or msg[0] != 2:
                failed += 1
    if failed:
        raise RuntimeError(f"{failed} sessions were not welcomed")
    return transports


def client_main(args: argparse.Namespace) -> None:
    """Open sessions on command (stdin: ``open N``, ``close``), report on stdout."""
    import uvloop

    raise_nofile()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        opened: list[Any] = []
        lines: asyncio.Queue[str] = asyncio.Queue()

        def reader() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, "quit")

        threading.Thread(target=reader, daemon=True).start()
        while True:
            words = (await lines.get()).split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "open":
                t0 = time.monotonic()
                opened += await open_sessions(args.transport, args.port, int(words[1]))
                print(json.dumps({"opened": len(opened), "s": time.monotonic() - t0}), flush=True)
            elif words[0] == "close":
                for t in opened:
                    t.close()
                opened = []
                await asyncio.sleep(0.1)
                print(json.dumps({"closed": True}), flush=True)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


# ---------------------------------------------------------------------------
# In-memory sessions (no sockets).


class _MemSocket:
    """What picows and the keepalive setup ask of a socket."""

    def setsockopt(self, *args: Any) -> None:
        pass

    def getsockopt(self, *args: Any) -> int:
        return 0

    def fileno(self) -> int:
        return -1

    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8080)


_MEM_SOCKET = _MemSocket()


class MemTransport:
    """The part of an asyncio transport the connections use; writes are dropped."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.1", 40000)
        return _MEM_SOCKET if name == "socket" else default


    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def ws_client_bytes(port: int = 8080) -> bytes:
    """The request and masked HELLO frame of a WebSocket client."""
    payload = msgpack.packb(HELLO)
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0xFE, n)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    return WS_REQUEST.format(port=port, key=key).encode(), head + mask + masked


def in_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Open ``args.in_memory`` sessions on in-memory transports; bytes per session."""
    from fastwamp.router import Router
    from fastwamp.server import Server
    from fastwamp.transport.loop import LoopScheduler, loop_factory
    from fastwamp.transport.rawsocket import RawSocketConnection
    from fastwamp.transport.websocket import websocket_connection_class

    n = args.in_memory
    config = bench_config(args.transport, args.engine)
    listener = config.listeners[0]
    result: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        router = Router(config)
        router.scheduler = LoopScheduler(loop, router)
        router.call_soon = loop.call_soon
        server = Server(config, router)
        if args.transport == "websocket":
            cls: Any = websocket_connection_class(args.engine)
            request, hello = ws_client_bytes()
            first, second = request, hello
        else:
            cls = RawSocketConnection
            payload = msgpack.packb(HELLO)
            first, second = bytes((0x7F, 0xF2, 0, 0)), struct.pack("!I", len(payload)) + payload

        def one() -> Any:
            conn = cls(router, listener, server.connections, server.limits)
            conn.connection_made(MemTransport())
            conn.data_received(first)
            conn.data_received(second)
            return conn

        for _ in range(50):  # warm-up: code paths, caches, interned strings
            one()._abort()
        await asyncio.sleep(0)
        for c in list(server.connections):
            c.connection_lost(None)
        await asyncio.sleep(0.01)
        gc.collect()
        rss0 = rss_kb()
        if args.trace or args.trace_leave:
            tracemalloc.start(1)
            base = tracemalloc.take_snapshot()
        conns = []
        for i in range(n):
            conns.append(one())
            if i % 1000 == 999:
                await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        gc.collect()
        assert len(router.sessions) == n, (len(router.sessions), n)
        rss1 = rss_kb()
        result["per_session_B"] = round((rss1 - rss0) * 1024 / n)
        if args.trace:
            snap = tracemalloc.take_snapshot()
            lines = ["by component:"] + components(snap, base, n)
            lines += ["by file:"] + top_stats(snap, base, n, "filename", 25)
            lines += ["by line:"] + top_stats(snap, base, n, "lineno", 40)
            result["report"] = "\n".join(lines)
        result["sessions"] = n
        result["rss_start_kb"] = rss0
        result["rss_open_kb"] = rss1
        for c in conns:
            c.connection_lost(None)
        conns = []
        await asyncio.sleep(0.05)
        gc.collect()
        result["rss_after_leave_kb"] = rss_kb()
        server.release_memory_if_idle()  # what the server does every 5 s
        result["rss_after_release_kb"] = rss_kb()
        if args.trace_leave:
            snap = tracemalloc.take_snapshot()
            tracemalloc.stop()
            lines = ["left after they left, by line (totals):"]
            lines += top_stats(snap, base, 1, "lineno", 25)
            result["report"] = "\n".join(lines)

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
    return result


# ---------------------------------------------------------------------------
# The measurement.


class Proc:
    def __init__(self, argv: list[str]) -> None:
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def ask(self, line: str) -> dict[str, Any]:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def read(self) -> dict[str, Any]:
        assert self.p.stdout is not None
        return json.loads(self.p.stdout.readline())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.p.stdin is not None
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    me = [sys.executable, os.path.abspath(__file__), "-t", args.transport, "-e", args.engine]
    router = Proc(me + ["--serve"])
    port = router.read()["port"]
    client = Proc(me + ["--client", "--port", str(port)])
    try:
        client.ask("open 200")  # warm-up
        client.ask("close")
        time.sleep(0.5)
        base = router.ask("rss")
        if args.trace or args.trace_leave:
            router.ask("trace_start")
        opened = client.ask(f"open {args.sessions}")
        time.sleep(0.3 + args.hold)
        full = router.ask("rss")
        assert full["sessions"] == args.sessions, full
        report = router.ask("trace_snap")["report"] if args.trace else None
        client.ask("close")
        deadline = time.monotonic() + 30
        left = router.ask("rss")
        while left["connections"] and time.monotonic() < deadline:
            time.sleep(0.2)
            left = router.ask("rss")
        time.sleep(args.linger)
        left = router.ask("rss")
        if args.trace_leave:
            report = router.ask("trace_snap")["report"]
        trimmed = router.ask("rss trim")
        result = {
            "transport": args.transport,
            "engine": args.engine if args.transport == "websocket" else "-",
            "sessions": args.sessions,
            "open_s": round(opened["s"], 2),
            "rss_start_kb": base["rss_kb"],
            "rss_open_kb": full["rss_kb"],
            "per_session_B": round((full["rss_kb"] - base["rss_kb"]) * 1024 / args.sessions),
            "rss_after_leave_kb": left["rss_kb"],
            "rss_after_trim_kb": trimmed["rss_kb"],
            "blocks_start": base["blocks"],
            "blocks_open": full["blocks"],
            "blocks_after": trimmed["blocks"],
        }
        if report:
            result["report"] = report
        return result
    finally:
        client.stop()
        router.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--transport", choices=("rawsocket", "websocket"),
                        default="rawsocket")
    parser.add_argument("-e", "--engine", default="websockets",
                        help="WebSocket engine (websockets, picows)")
    parser.add_argument("-n", "--sessions", type=int, default=5000)
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds the sessions stay open (idle) before they leave")
    parser.add_argument("--linger", type=float, default=6.0,
                        help="seconds to wait after they left before reading the RSS (the server "
                        "checks every 5 s whether to release memory)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc report (slower)")
    parser.add_argument("--trace-leave", action="store_true",
                        help="tracemalloc report of what is left once the sessions have gone")
    parser.add_argument("--in-memory", type=int, default=0, metavar="N",
                        help="N sessions on in-memory transports, in this process")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args)
    elif args.client:
        client_main(args)
    else:
        result = in_memory(args) if args.in_memory else measure(args)
        report = result.pop("report", None)
        print(json.dumps(result))
        if report:
            print(report)


if __name__ == "__main__":
    main()
