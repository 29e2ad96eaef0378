"""Fairness: at most ``messages_per_turn`` messages per connection per loop turn,
and the core's backpressure (``pause_input`` / ``resume_input``), on every engine.

No timing assertions: a bystander's request is answered while a flooder still
has thousands of messages waiting, and messages keep their order.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import pytest
from websockets.asyncio.client import connect

from fastwamp.config import ListenerConfig
from fastwamp.transport.rawsocket import RawSocketConnection

from .conftest import (
    FakeTransport,
    RawSocketClient,
    StubRouter,
    make_config,
    real_router,
    rs_frame,
    running,
    wait_for,
)

FLOOD = 20_000
ENGINES = ["rawsocket", "websockets", "picows"]


def listener_for(engine: str) -> ListenerConfig:
    if engine == "rawsocket":
        return ListenerConfig("rawsocket", port=0)
    pytest.importorskip(engine)
    return ListenerConfig("websocket", port=0, implementation=engine)


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (mask 0: the payload goes as is)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return header + b"\0\0\0\0" + payload


class RawClient:
    """Writes pre-framed messages of one engine; drains whatever comes back."""

    def __init__(self, engine: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.engine, self.reader, self.writer = engine, reader, writer
        self.drained = 0
        self._drain_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, engine: str, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if engine == "rawsocket":
            writer.write(b"\x7f\xf1\x00\x00")
            assert await reader.readexactly(4) == b"\x7f\xf1\x00\x00"
        else:
            writer.write(
                b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
            )
            response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert response.startswith(b"HTTP/1.1 101"), response
        return cls(engine, reader, writer)

    def frame(self, msg: Any) -> bytes:
        payload = json.dumps(msg).encode()
        return rs_frame(payload) if self.engine == "rawsocket" else ws_frame(payload)

    def send(self, *msgs: Any) -> None:
        self.writer.write(b"".join(self.frame(msg) for msg in msgs))

    def drain_in_background(self) -> None:
        async def drain() -> None:
            while data := await self.reader.read(65536):
                self.drained += len(data)

        self._drain_task = asyncio.ensure_future(drain())

    def close(self) -> None:
        if self._drain_task is not None:
            self._drain_task.cancel()
        self.writer.close()


async def bystander_round_trip(engine: str, server: Any) -> None:
    port = server.listeners[0].port
    if engine == "rawsocket":
        client = await RawSocketClient.connect(port)
        client.send(["bystander"])
        assert await client.recv() == ["bystander"]
        client.close()
    else:
        async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
            await ws.send('["bystander"]')
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == ["bystander"]


@pytest.mark.parametrize("engine", ENGINES)
def test_flooder_does_not_starve_a_bystander(run, engine):
    async def main():
        async with running(listener_for(engine)) as (server, router):
            flooder = await RawClient.open(engine, server.listeners[0].port)
            flooder.drain_in_background()
            flooder.send(*(["f", i] for i in range(FLOOD)))
            await wait_for(lambda: router.sessions and router.sessions[0].received)
            flood = router.sessions[0]
            await bystander_round_trip(engine, server)
            # Answered while most of the flood still waits for its turns.
            assert len(flood.received) < FLOOD - 1000, len(flood.received)
            await wait_for(lambda: len(flood.received) == FLOOD, timeout=60)
            assert flood.received == [["f", i] for i in range(FLOOD)]
            flooder.close()

    run(main, timeout=90)


@pytest.mark.parametrize("engine", ENGINES)
def test_pause_input_stops_feeding_mid_read(run, engine):
    async def main():
        async with running(listener_for(engine)) as (server, router):
            client = await RawClient.open(engine, server.listeners[0].port)
            client.drain_in_background()
            client.send(["a"], ["pause"], ["b"], ["c"])
            await wait_for(lambda: router.sessions and len(router.sessions[0].received) >= 2)
            (session,) = router.sessions
            (conn,) = server.connections
            await asyncio.sleep(0.1)
            assert session.received == [["a"], ["pause"]]
            assert conn._read_paused
            client.send(["d"])  # arrives while the socket is not read
            await asyncio.sleep(0.1)
            assert session.received == [["a"], ["pause"]]
            conn.resume_input()
            assert session.received == [["a"], ["pause"]]  # fed on a later turn
            await wait_for(lambda: len(session.received) == 5)
            assert session.received == [["a"], ["pause"], ["b"], ["c"], ["d"]]
            await wait_for(lambda: not conn._read_paused)
            client.close()

    run(main)


@pytest.mark.parametrize("engine", ENGINES)
def test_pause_and_resume_inside_the_same_message(run, engine):
    async def main():
        async with running(listener_for(engine)) as (server, router):
            client = await RawClient.open(engine, server.listeners[0].port)
            client.drain_in_background()
            client.send(["pause"], ["resume"], ["x"])
            await wait_for(lambda: router.sessions and len(router.sessions[0].received) >= 1)
            (conn,) = server.connections
            await asyncio.sleep(0.05)
            assert router.sessions[0].received == [["pause"]]
            conn.resume_input()
            await wait_for(lambda: len(router.sessions[0].received) == 3)
            client.close()

    run(main)


@pytest.mark.parametrize("engine", ENGINES)
def test_reading_resumes_only_when_no_reason_to_pause_holds(run, engine):
    async def main():
        router = StubRouter()
        transport = FakeTransport()
        if engine == "rawsocket":
            conn: Any = RawSocketConnection(router, ListenerConfig("rawsocket"))
            conn.connection_made(transport)
            conn.data_received(b"\x7f\xf1\x00\x00")
        else:
            from fastwamp.transport.websocket import websocket_connection_class

            listener = ListenerConfig("websocket", implementation=engine)
            conn = websocket_connection_class(engine)(router, listener)
            conn.connection_made(transport)
        conn.pause_writing()
        assert transport.paused
        conn.pause_input()
        conn.resume_writing()
        assert transport.paused  # the core still pauses input
        conn.pause_writing()
        conn.resume_input()
        await asyncio.sleep(0.01)
        assert transport.paused  # writing is still paused
        conn.resume_writing()
        assert not transport.paused

    run(main)


def test_deferred_input_and_write_pause(run):
    """Input waiting for its turn is fed while writing is paused (it is one read at
    most); reading resumes only once both are over."""

    async def main():
        router = StubRouter(make_config(messages_per_turn=10))
        transport = FakeTransport()
        conn = RawSocketConnection(router, ListenerConfig("rawsocket"))
        conn.connection_made(transport)  # type: ignore[arg-type]
        frames = b"".join(rs_frame(json.dumps(["m", i]).encode()) for i in range(100))
        conn.data_received(b"\x7f\xf1\x00\x00" + frames)
        (session,) = router.sessions
        assert len(session.received) == 10 and transport.paused
        conn.pause_writing()
        await wait_for(lambda: len(session.received) == 100)
        assert session.received == [["m", i] for i in range(100)]
        await asyncio.sleep(0.01)
        assert transport.paused  # the input is done, writing is still paused
        conn.resume_writing()
        assert not transport.paused

    run(main)


def test_real_router_publish_flood_and_a_bystander_call(run):
    """20,000 unacknowledged PUBLISHes from one client; another's call is answered
    while most of them are still unread."""

    async def main():
        listener = ListenerConfig("rawsocket", port=0)
        router = real_router(listener)
        async with running(listener, router=router) as (server, _):
            port = server.listeners[0].port
            callee = await RawSocketClient.connect(port)
            await callee.join()
            callee.send([64, 1, {}, "com.example.echo"])
            assert (await callee.recv())[0] == 65
            caller = await RawSocketClient.connect(port)
            await caller.join()
            flooder = await RawSocketClient.connect(port)
            flooder_id = await flooder.join()
            session = router.sessions[flooder_id]
            fed = 0
            receive = session.receive

            def counting(msg: Any) -> None:
                nonlocal fed
                fed += 1
                receive(msg)

            session.receive = counting  # type: ignore[method-assign]
            frames = b"".join(
                rs_frame(json.dumps([16, i + 1, {}, "com.example.nobody", [i]]).encode())
                for i in range(FLOOD)
            )
            flooder.writer.write(frames)
            await wait_for(lambda: fed > 0)
            caller.send([48, 1, {}, "com.example.echo", ["hi"]])
            invocation = await callee.recv()
            callee.send([70, invocation[1], {}, ["hi"]])
            result = await caller.recv()
            assert result[:2] == [50, 1] and result[3] == ["hi"]
            assert fed < FLOOD - 1000, fed
            await wait_for(lambda: fed == FLOOD, timeout=60)
            for client in (callee, caller, flooder):
                client.close()

    run(main, timeout=90)
