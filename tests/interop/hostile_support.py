"""Helpers for tests/interop/test_hostile.py: a router with short hardening timeouts,
a raw RawSocket/MessagePack peer that may misbehave, a flooding thread, and the
well-behaved Autobahn bystander pair that must keep working."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from unittest import mock

import msgpack

from . import conftest
from .abclient import RS_MSGPACK, WS_JSON, Client, connect, unique_uri
from .conftest import RouterEndpoints, RouterProcess

# WAMP message codes.
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}

#: RawSocket handshake, MessagePack, announcing the largest receive length (16 MiB).
HANDSHAKE_16M = b"\x7f\xf2\x00\x00"
#: ... announcing 2**10 = 1024 bytes (WELCOME takes about 600).
HANDSHAKE_1K = b"\x7f\x12\x00\x00"

#: Top-level router keys for these tests: short hardening timeouts (seconds).
HANDSHAKE_TIMEOUT = 1.0
FRAME_TIMEOUT = 1.0
TOP_CONFIG = f"handshake_timeout = {HANDSHAKE_TIMEOUT}\nframe_timeout = {FRAME_TIMEOUT}\n"

#: realm1 of the hardened router: its anonymous clients hold a role that may do anything
#: (and call the trusted meta procedures that the tests feed wrong arguments) except kill
#: other sessions, so every hostile message also goes through the authorization step.
HOSTILE_REALM1 = """
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[[realms.roles.permissions]]
uri = "wamp."
match = "prefix"
allow = ["call", "subscribe"]
[[realms.roles.permissions]]
uri = "fastwamp."
match = "prefix"
allow = ["call", "subscribe"]
""" + "".join(f"""
[[realms.roles.permissions]]
uri = "wamp.session.{kill}"
allow = []
""" for kill in ("kill", "kill_by_authid", "kill_by_authrole", "kill_all"))


async def answered(awaitable: Awaitable[Any], timeout: float, what: str) -> Any:
    """Await with a bound; a timeout is an AssertionError naming ``what`` (a bare
    TimeoutError would read as the whole test timing out in abclient.async_test)."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: no answer within {timeout:g} s") from None


class HardenedRouter(RouterProcess):
    """A RouterProcess whose configuration starts with top-level keys of our own.

    conftest appends ``extra_config`` after the ``[[listeners]]`` tables, where a
    top-level key would land inside the last table; the text is put first instead.
    """

    def __init__(self, workdir: Path, name: str, top: str = TOP_CONFIG) -> None:
        super().__init__(workdir, name, realm_config=HOSTILE_REALM1)
        self.top = top

    def start(self, ws_port: int = 0, rs_port: int = 0) -> RouterEndpoints:
        original = conftest._config_text

        def text(*args: Any, **kwargs: Any) -> str:
            return self.top + "\n" + original(*args, **kwargs)

        with mock.patch.object(conftest, "_config_text", text):
            return super().start(ws_port, rs_port)


class RawPeer:
    """A RawSocket + MessagePack peer that says whatever a test wants."""

    def __init__(self, endpoints: RouterEndpoints) -> None:
        self.host, self.port = endpoints.rs_host_port
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.session_id = 0
        self._request = 0

    async def open(self, handshake: bytes = HANDSHAKE_16M) -> bytes:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=32 * 1024 * 1024
        )
        self.writer.write(handshake)
        return await asyncio.wait_for(self.reader.readexactly(4), 5)

    async def join(self, handshake: bytes = HANDSHAKE_16M) -> RawPeer:
        reply = await self.open(handshake)
        assert reply[0] == 0x7F and reply[1] & 0x0F == 2, reply.hex()
        self.send([HELLO, "realm1", {"roles": ROLES}])
        welcome = await self.recv()
        assert welcome is not None and welcome[0] == WELCOME, welcome
        self.session_id = welcome[1]
        return self

    def request(self) -> int:
        self._request += 1
        return self._request

    @staticmethod
    def frame(msg: Any) -> bytes:
        body = msgpack.packb(msg)
        return len(body).to_bytes(4, "big") + body

    def send(self, msg: Any) -> None:
        self.writer.write(self.frame(msg))

    async def recv(self, timeout: float = 5.0) -> list | None:
        """The next WAMP message (PINGs answered), or None once the router closed."""
        while True:
            try:
                head = await asyncio.wait_for(self.reader.readexactly(4), timeout)
                body = await asyncio.wait_for(
                    self.reader.readexactly(int.from_bytes(head[1:], "big")), timeout
                )
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            if head[0] == 1:  # PING
                self.writer.write(b"\x02" + head[1:] + body)
                continue
            if head[0] == 0:
                return msgpack.unpackb(body, strict_map_key=False)

    async def recv_until(self, predicate: Any, timeout: float = 5.0) -> list:
        """The first message ``predicate`` accepts (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no matching message within {timeout:g} s"
            msg = await answered(self.recv(left), left + 1, "raw peer")
            assert msg is not None, "the router closed the connection"
            if predicate(msg):
                return msg

    async def reply_to(self, code: int, request: int, timeout: float = 5.0) -> list:
        """The answer (success message or ERROR) to our request ``request`` of type ``code``."""
        return await self.recv_until(
            lambda m: (m[0] == ERROR and m[1] == code and m[2] == request)
            or (m[0] != ERROR and len(m) > 1 and m[1] == request and m[0] != EVENT),
            timeout,
        )

    async def closed_within(self, timeout: float) -> float | None:
        """Seconds until the router closes the connection, or None if it did not."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                data = await asyncio.wait_for(self.reader.read(65536), left)
                if not data:
                    return time.monotonic() - t0
        except asyncio.TimeoutError:
            return None
        except ConnectionError:
            return time.monotonic() - t0

    def close(self) -> None:
        self.writer.transport.abort()


async def raw_websocket(endpoints: RouterEndpoints) -> tuple[asyncio.StreamReader,
                                                             asyncio.StreamWriter]:
    """A WebSocket connection upgraded to wamp.2.msgpack, nothing sent after that."""
    import base64

    host, port = endpoints.ws_host_port
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.msgpack\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def stream_closed_within(reader: asyncio.StreamReader, timeout: float) -> float | None:
    t0 = time.monotonic()
    try:
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                return None
            if not await asyncio.wait_for(reader.read(65536), left):
                return time.monotonic() - t0
    except asyncio.TimeoutError:
        return None
    except ConnectionError:
        return time.monotonic() - t0


async def ws_close_within(reader: asyncio.StreamReader, timeout: float) -> float | None:
    """Seconds until the router sends a WebSocket CLOSE frame or closes the TCP
    connection, whichever comes first; None if neither happens within ``timeout``."""
    t0 = time.monotonic()
    buf = b""
    try:
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                return None
            data = await asyncio.wait_for(reader.read(65536), left)
            if not data:
                return time.monotonic() - t0
            buf += data
            while len(buf) >= 2:  # server frames: unmasked
                n, start = buf[1] & 0x7F, 2
                if n == 126:
                    n, start = int.from_bytes(buf[2:4], "big"), 4
                elif n == 127:
                    n, start = int.from_bytes(buf[2:10], "big"), 10
                if len(buf) < start + n:
                    break
                if buf[0] & 0x0F == 8:
                    return time.monotonic() - t0
                buf = buf[start + n :]
    except asyncio.TimeoutError:
        return None
    except ConnectionError:
        return time.monotonic() - t0


class PublishFlood(threading.Thread):
    """Unacknowledged PUBLISHes to a topic nobody subscribed, as fast as a blocking
    socket takes them, from a thread (the GIL is free while it sends), for ``seconds``."""

    def __init__(self, endpoints: RouterEndpoints, seconds: float) -> None:
        super().__init__(daemon=True, name="publish-flood")
        self.host, self.port = endpoints.rs_host_port
        self.seconds = seconds
        self.sent_bytes = 0
        self.error: BaseException | None = None
        frames = [
            RawPeer.frame([PUBLISH, i, {}, "com.hostile.flood.nobody", ["x" * 64]])
            for i in range(1, 20001)
        ]
        self.chunk = b"".join(frames)

    def run(self) -> None:
        try:
            with socket.create_connection((self.host, self.port), timeout=5) as sock:
                sock.sendall(HANDSHAKE_16M)
                assert sock.recv(4)[:1] == b"\x7f"
                sock.sendall(RawPeer.frame([HELLO, "realm1", {"roles": ROLES}]))
                sock.recv(65536)  # WELCOME
                sock.settimeout(0.5)
                deadline = time.monotonic() + self.seconds
                view = memoryview(self.chunk)
                pos = 0
                while time.monotonic() < deadline:
                    try:
                        n = sock.send(view[pos : pos + 262144])
                    except TimeoutError:
                        continue
                    self.sent_bytes += n
                    pos = (pos + n) % len(self.chunk)  # the chunk is whole frames
        except OSError as exc:
            self.error = exc


class Bystander:
    """A well-behaved Autobahn pair: a callee over RawSocket/MessagePack and a caller
    over WebSocket/JSON.  ``await check()`` makes a few calls that must all succeed."""

    def __init__(self, callee: Client, caller: Client, uri: str) -> None:
        self.callee = callee
        self.caller = caller
        self.uri = uri

    @classmethod
    async def start(cls, endpoints: RouterEndpoints) -> Bystander:
        callee = await connect(endpoints, RS_MSGPACK)
        caller = await connect(endpoints, WS_JSON)
        uri = unique_uri("hostile.bystander")
        await callee.register(lambda x: x * 2, uri)
        self = cls(callee, caller, uri)
        await self.check()
        return self

    async def call(self, x: int, timeout: float = 5.0) -> Any:
        return await answered(self.caller.call(self.uri, x), timeout, "bystander call")

    async def check(self, calls: int = 3) -> None:
        for i in range(calls):
            assert await self.call(i) == 2 * i

    async def close(self) -> None:
        for s in (self.caller, self.callee):
            try:
                await s.close(timeout=3.0)
            except AssertionError:
                pass
