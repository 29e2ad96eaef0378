"""Autobahn|Python (asyncio) client helpers for the interop tests.

Each test runs its own event loop (``asyncio.run`` inside a plain sync test,
see :func:`async_test`), so pytest-timeout and pytest-asyncio settings do not
matter here and a hung router fails one test instead of the whole session.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec
from uuid import uuid4

import pytest
import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.interfaces import ISerializer  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp.types import CloseDetails, ComponentConfig, SessionDetails  # noqa: E402

if TYPE_CHECKING:
    from .conftest import RouterEndpoints

P = ParamSpec("P")

#: Seconds to connect and join.
JOIN_TIMEOUT = 10.0
#: Default upper bound for a whole test coroutine.
TEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Kind:
    """How a client reaches the router."""

    transport: str  # "websocket" | "rawsocket"
    serializer: str  # "json" | "msgpack" | "cbor"

    @property
    def id(self) -> str:
        return f"{'ws' if self.transport == 'websocket' else 'rs'}-{self.serializer}"

    def __str__(self) -> str:
        return self.id


WS_JSON = Kind("websocket", "json")
WS_MSGPACK = Kind("websocket", "msgpack")
WS_CBOR = Kind("websocket", "cbor")
RS_JSON = Kind("rawsocket", "json")
RS_MSGPACK = Kind("rawsocket", "msgpack")
RS_CBOR = Kind("rawsocket", "cbor")

ALL_KINDS = [WS_JSON, WS_MSGPACK, WS_CBOR, RS_JSON, RS_MSGPACK, RS_CBOR]
BINARY_KINDS = [k for k in ALL_KINDS if k.serializer != "json"]


def kinds_param(kinds: list[Kind] = ALL_KINDS) -> pytest.MarkDecorator:
    """``@kinds_param()`` parametrizes ``kind`` over transport x serializer."""
    return pytest.mark.parametrize("kind", kinds, ids=[k.id for k in kinds])


def unique_uri(name: str) -> str:
    """A URI no other test (or earlier run on the shared router) uses."""
    return f"com.fastwamp.interop.{name}.u{uuid4().hex[:12]}"


def make_serializer(name: str) -> ISerializer:
    if name == "json":
        return JsonSerializer()
    if name == "msgpack":
        return MsgPackSerializer()
    if name == "cbor":
        return CBORSerializer()
    raise ValueError(name)


def async_test(
    timeout: float = TEST_TIMEOUT,
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, None]]:
    """Run an ``async def`` test in a fresh event loop, bounded by ``timeout`` seconds."""

    def deco(fn: Callable[P, Awaitable[None]]) -> Callable[P, None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
            async def bounded() -> None:
                try:
                    await asyncio.wait_for(fn(*args, **kwargs), timeout)
                except asyncio.TimeoutError:
                    pytest.fail(f"test did not finish within {timeout} s")

            asyncio.run(bounded())

        return wrapper

    return deco


class Client(ApplicationSession):
    """An ApplicationSession whose join/leave/disconnect can be awaited."""

    def __init__(self, config: ComponentConfig, kind: Kind) -> None:
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.kind = kind
        self.joined: asyncio.Future[SessionDetails] = loop.create_future()
        self.left: asyncio.Future[CloseDetails] = loop.create_future()
        self.disconnected: asyncio.Future[None] = loop.create_future()
        #: The asyncio transport below WAMP (for abrupt disconnects).
        self.socket: asyncio.Transport | None = None

    def onJoin(self, details: SessionDetails) -> None:
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details: CloseDetails) -> None:
        if not self.left.done():
            self.left.set_result(details)
        if not self.joined.done():
            self.joined.set_exception(
                ConnectionError(f"join failed: {details.reason} {details.message or ''}")
            )
        # Not super().onLeave(): it warns about every reason but wamp.close.normal,
        # including the router's correct reply to our GOODBYE.
        self.disconnect()

    def onDisconnect(self) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("transport closed before WELCOME"))
        super().onDisconnect()

    async def close(self, timeout: float = 5.0) -> None:
        """GOODBYE (if joined) and wait for the transport to close."""
        if self.disconnected.done():
            return
        if self.is_attached() and not self._goodbye_sent:
            self.leave()
        try:
            await asyncio.wait_for(asyncio.shield(self.disconnected), timeout)
        except asyncio.TimeoutError:
            if self.socket is not None:
                self.socket.abort()
            raise AssertionError(
                f"{self.kind}: router did not close the session within {timeout} s"
            )

    def drop(self) -> None:
        """Close the socket abruptly: no GOODBYE, no WebSocket close handshake."""
        assert self.socket is not None
        self.socket.abort()


async def connect(endpoints: RouterEndpoints, kind: Kind, realm: str | None = None) -> Client:
    """Open a transport of ``kind`` to the router and join ``realm`` (default: realm1)."""
    loop = asyncio.get_running_loop()
    session = Client(ComponentConfig(realm=realm or endpoints.realm), kind)
    serializer = make_serializer(kind.serializer)
    factory: Any
    if kind.transport == "websocket":
        host, port = endpoints.ws_host_port
        factory = WampWebSocketClientFactory(
            lambda: session, url=endpoints.ws_url, serializers=[serializer]
        )
        factory.setProtocolOptions(
            autoPingInterval=0, maxMessagePayloadSize=0, maxFramePayloadSize=0
        )
    elif kind.transport == "rawsocket":
        host, port = endpoints.rs_host_port
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
    else:
        raise ValueError(kind.transport)
    transport, _protocol = await asyncio.wait_for(
        loop.create_connection(factory, host, port), JOIN_TIMEOUT
    )
    session.socket = transport
    try:
        await asyncio.wait_for(asyncio.shield(session.joined), JOIN_TIMEOUT)
    except BaseException:
        transport.abort()
        raise
    return session


class Peers:
    """Sessions opened by one test; all are closed when the test ends."""

    def __init__(self, endpoints: RouterEndpoints) -> None:
        self.endpoints = endpoints
        self.sessions: list[Client] = []

    async def connect(self, kind: Kind) -> Client:
        session = await connect(self.endpoints, kind)
        self.sessions.append(session)
        return session

    async def close_all(self) -> None:
        for s in self.sessions:
            if not s.disconnected.done():
                try:
                    await s.close(timeout=3.0)
                except AssertionError:
                    pass


@asynccontextmanager
async def peers(endpoints: RouterEndpoints) -> AsyncIterator[Peers]:
    p = Peers(endpoints)
    try:
        yield p
    finally:
        await p.close_all()


async def barrier(session: Client) -> None:
    """A round trip answered by the router itself.

    The router handles one session's messages in order and writes to one
    transport in order, so anything it sent to ``session`` because of earlier
    messages (from any session) has been delivered once this returns.
    """
    with pytest.raises(ApplicationError) as ei:
        await session.call("com.fastwamp.interop.barrier.nobody_registered_this")
    assert ei.value.error == ApplicationError.NO_SUCH_PROCEDURE


class EventSink:
    """Collects events of one subscription; ``await sink.wait(n)`` for the first n."""

    def __init__(self) -> None:
        self.events: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self._changed = asyncio.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("details", None)
        self.events.append((args, kwargs))
        self._changed.set()

    async def wait(
        self, n: int = 1, timeout: float = 5.0
    ) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        async def until() -> None:
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"expected {n} event(s) within {timeout} s, got {len(self.events)}"
            )
        return self.events[:n]
