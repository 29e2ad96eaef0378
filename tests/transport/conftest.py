"""Fixtures for the transport tests: a stub router that echoes, and loop runners.

The stub follows the router contract the transports rely on: ``attach`` returns
a session; sessions queue output; nothing reaches a sink before ``flush()``.
Echo commands (the first element of a message):

* anything else: the message is sent back as is;
* ``"close"``: the router closes the session (the sink's ``close()``);
* ``"big", n``: the router sends ``["big", "x" * n]`` then ``["after"]``;
* ``"many", n``: the router sends n messages ``["m", i]``;
* ``"welcome"``: the router sends ``WELCOME`` (``[2, 1, {}]``): the session is
  established for the transport (its listener's limits apply from then on);
* ``"pause"`` / ``"resume"``: the router calls the sink's ``pause_input()`` /
  ``resume_input()`` (backpressure) while handling the message.

Its ``config`` allows messages as large as the listeners' before WELCOME, so
that tests of other things need no ``"welcome"``; ``running(..., **keys)``
serves with other top-level configuration keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import cbor2
import msgpack
import pytest
import uvloop

from fastwamp.config import Config, ListenerConfig, RealmConfig
from fastwamp.server import Server, serve
from fastwamp.wamp import messages as m

try:
    import picows  # noqa: F401
except ImportError:  # pragma: no cover - picows is in the test extra
    HAVE_PICOWS = False
else:
    HAVE_PICOWS = True

#: The WebSocket engines (ListenerConfig.implementation) the WebSocket tests run on.
WS_IMPLS = [
    pytest.param("websockets"),
    pytest.param(
        "picows",
        marks=pytest.mark.skipif(
            not HAVE_PICOWS, reason="picows is not installed (pip install 'fastwamp[picows]')"
        ),
    ),
]

ABORT_INVALID = [3, {}, "wamp.error.protocol_violation"]
GOODBYE_SHUTDOWN = [6, {}, "wamp.close.system_shutdown"]


class StubSession:
    def __init__(self, router: StubRouter, sink: Any, info: dict[str, Any]) -> None:
        self.router = router
        self.sink = sink
        self.info = info
        self.received: list[Any] = []
        self.invalid: list[str] = []
        self.detach_count = 0
        self.outbox: list[list] = []
        self.close_requested = False
        self.closed = False
        #: (msg, error, reason) of every undeliverable() call.
        self.undeliverable_msgs: list[tuple[Any, str, str]] = []
        #: (reason, message) of every abort() call.
        self.aborted: list[tuple[str, str]] = []

    def _queue(self, *msgs: list) -> None:
        self.outbox.extend(msgs)
        if self not in self.router.pending:
            self.router.pending.append(self)

    def receive(self, msg: Any) -> None:
        assert self.detach_count == 0, "receive() after detach()"
        self.received.append(msg)
        head = msg[0] if isinstance(msg, list) and msg else None
        if head == "close":
            self.close_requested = True
            self._queue()
        elif head == "big":
            self._queue(["big", "x" * msg[1]], ["after"])
        elif head == "many":
            self._queue(*(["m", i] for i in range(msg[1])))
        elif head == "welcome":
            self._queue([m.WELCOME, 1, {}])
        elif head == "pause":
            self.sink.pause_input()
        elif head == "resume":
            self.sink.resume_input()
        else:
            self._queue(msg)

    def undeliverable(self, msg: Any, error: str, reason: str) -> None:
        self.undeliverable_msgs.append((msg, error, reason))

    def abort(self, reason: str, message: str) -> None:
        self.aborted.append((reason, message))
        self.close_requested = True
        self._queue([m.ABORT, {"message": message}, reason])

    def receive_invalid(self, reason: str) -> None:
        self.invalid.append(reason)
        self.close_requested = True
        self._queue(list(ABORT_INVALID))

    def detach(self) -> None:
        self.detach_count += 1
        self.router.detached.append(self)

    def deliver(self) -> None:
        if self.closed or self.detach_count:
            self.outbox = []
            return
        out, self.outbox = self.outbox, []
        if out:
            self.sink.send_messages(out)
        if self.close_requested:
            self.closed = True
            self.sink.close()


class StubRouter:
    """Echo router obeying the transport contract (output only on flush)."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else make_config()
        self.stats: dict[str, int] = {}
        self.scheduler: Any = None
        self.sessions: list[StubSession] = []
        self.detached: list[StubSession] = []
        self.pending: list[StubSession] = []
        self.flushes = 0

    def attach(self, sink: Any, transport_info: dict[str, Any]) -> StubSession:
        session = StubSession(self, sink, transport_info)
        self.sessions.append(session)
        return session

    def flush(self) -> None:
        self.flushes += 1
        while self.pending:
            pending, self.pending = self.pending, []
            for session in pending:
                session.deliver()

    def flush_soon(self, read_at: float | None = None) -> None:
        self.flush()

    def shutdown(self) -> None:
        for session in self.sessions:
            if not session.detach_count and not session.closed:
                session.close_requested = True
                session._queue(list(GOODBYE_SHUTDOWN))
        self.flush()


LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


@pytest.fixture(params=WS_IMPLS)
def ws_impl(request: pytest.FixtureRequest) -> str:
    """Name of a WebSocket engine (``ListenerConfig.implementation``)."""
    return request.param


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``run(coroutine_function)`` runs it on a fresh uvloop / asyncio loop.

    The timeout only keeps a broken test from hanging; nothing asserts on time.
    """
    factory = LOOPS[request.param]

    def runner(fn: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 20.0) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(fn(), timeout)

        loop = factory()  # not asyncio.Runner: Python 3.10 has none
        try:
            asyncio.set_event_loop(loop)
            return loop.run_until_complete(bounded())
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    return runner


#: Before WELCOME, the stub's sessions may send as much as after.
STUB_DEFAULTS: dict[str, Any] = {"max_handshake_message_size": 2**31}


def make_config(*listeners: ListenerConfig, **keys: Any) -> Config:
    """A configuration with ``listeners`` and top-level ``keys``; the stub's defaults
    (:data:`STUB_DEFAULTS`) unless ``keys`` say otherwise."""
    return Config(
        realms=[RealmConfig("realm1")], listeners=list(listeners), **{**STUB_DEFAULTS, **keys}
    )


@contextlib.asynccontextmanager
async def running(
    *listeners: ListenerConfig, router: Any = None, **keys: Any
) -> AsyncIterator[tuple[Server, Any]]:
    """Serve ``listeners`` (port 0) with ``router`` (default: a StubRouter) and the
    top-level configuration ``keys`` (see :func:`make_config`)."""
    config = make_config(*listeners, **keys)
    router = router if router is not None else StubRouter(config)
    server = await serve(config, router=router)
    try:
        yield server, router
    finally:
        server.abort()
        server.close_listeners()
        for listener in server.listeners:
            await listener.server.wait_closed()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds (for effects that land after a socket event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


# RawSocket client helpers.


def rs_frame(payload: bytes, msg_type: int = 0) -> bytes:
    assert len(payload) < 2**24
    return struct.pack("!I", (msg_type << 24) | len(payload)) + payload


async def rs_read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(4)
    (word,) = struct.unpack("!I", header)
    head, length = word >> 24, word & 0xFFFFFF
    if head & 0x08:
        length = 2**24
    return head & 0x07, await reader.readexactly(length)


class FakeSocket:
    """What ``get_extra_info("socket")`` gives a FakeTransport: socket options are
    accepted and read as 0; no descriptor (picows' direct ``send()`` on it fails, so
    it falls back to ``transport.write``)."""

    def setsockopt(self, *args: Any) -> None:
        pass

    def getsockopt(self, *args: Any) -> int:
        return 0

    def fileno(self) -> int:
        return -1


class FakeTransport:
    """Records writes; enough of asyncio.Transport for unit tests without sockets."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        """One vectored write: recorded as one write of the parts joined."""
        self.write(b"".join(parts))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "socket": FakeSocket()}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


# WAMP clients on real sockets (for tests against the real router).

#: RawSocket serializer id, encode, decode by name.
RS_SERIALIZERS: dict[str, tuple[int, Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "json": (1, lambda v: json.dumps(v).encode(), json.loads),
    "msgpack": (2, msgpack.packb, lambda b: msgpack.unpackb(b, strict_map_key=False)),
    "cbor": (3, cbor2.dumps, cbor2.loads),
}


def real_router(*listeners: ListenerConfig, **keys: Any) -> Any:
    """A real :class:`fastwamp.router.Router` for ``running(*listeners, router=..., **keys)``."""
    from fastwamp.router import Router

    return Router(make_config(*listeners, **keys))


class RawSocketClient:
    """A minimal WAMP client over RawSocket (asyncio streams); answers PINGs unless told not."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, serializer: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.serializer = serializer
        _, self.encode, self.decode = RS_SERIALIZERS[serializer]
        self.answer_pings = True
        #: Payloads of the PINGs received.
        self.pings: list[bytes] = []
        self.session_id = 0
        self._request = 0

    @classmethod
    async def connect(
        cls, port: int, serializer: str = "json", length_bits: int = 15
    ) -> RawSocketClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ser_id = RS_SERIALIZERS[serializer][0]
        writer.write(bytes((0x7F, (length_bits << 4) | ser_id, 0, 0)))
        reply = await asyncio.wait_for(reader.readexactly(4), 5)
        assert reply[0] == 0x7F and reply[1] & 0x0F == ser_id, reply
        return cls(reader, writer, serializer)

    def request(self) -> int:
        self._request += 1
        return self._request

    def send(self, msg: Any) -> None:
        self.writer.write(rs_frame(self.encode(msg)))

    async def recv(self, timeout: float = 5.0) -> Any:
        """The next WAMP message within ``timeout`` seconds (PINGs are answered, or
        not, and recorded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg_type, payload = await asyncio.wait_for(
                rs_read_frame(self.reader), max(0.0, deadline - loop.time())
            )
            if msg_type == 1:
                self.pings.append(payload)
                if self.answer_pings:
                    self.writer.write(rs_frame(payload, 2))
                continue
            if msg_type == 2:
                continue
            return self.decode(payload)

    async def join(self, roles: dict[str, Any] | None = None, realm: str = "realm1") -> int:
        self.send([1, realm, {"roles": roles or {"caller": {}, "callee": {},
                                                  "publisher": {}, "subscriber": {}}}])
        welcome = await self.recv()
        assert welcome[0] == 2, welcome
        self.session_id = welcome[1]
        return self.session_id

    async def at_eof(self, timeout: float = 5.0) -> bytes:
        """Read until the router closes the connection; return what came before."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()
