"""Dead-peer detection: the router pings a silent peer and drops one that stays silent.

Short intervals (0.2 s) on loopback.  Nothing here asserts how fast things
happen, only that they happen within generous bounds, and in which order.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import PING, Frame
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.transport.rawsocket import RawSocketConnection

from .conftest import FakeTransport, RawSocketClient, StubRouter, rs_frame, running, wait_for

INTERVAL = 0.2
TIMEOUT = 0.2
#: Upper bound for anything that should happen within a few intervals.
SLACK = 5.0


def rs_listener(**kwargs: Any) -> ListenerConfig:
    kwargs.setdefault("rawsocket_ping", "always")
    return ListenerConfig(
        "rawsocket", port=0, auto_ping_interval=INTERVAL, auto_ping_timeout=TIMEOUT, **kwargs
    )


async def rs_established(server: Any) -> RawSocketClient:
    client = await RawSocketClient.connect(server.listeners[0].port)
    client.send(["welcome"])
    assert (await client.recv())[0] == 2
    return client


def test_rawsocket_peer_that_answers_is_kept(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            client = await rs_established(server)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SLACK
            while len(client.pings) < 3:  # reading answers the PINGs
                with pytest.raises(asyncio.TimeoutError):
                    await client.recv(timeout=max(0.01, min(0.5, deadline - loop.time())))
                assert loop.time() < deadline, "no PINGs"
            assert all(len(p) == 4 for p in client.pings)
            client.send(["still", "here"])
            assert await client.recv() == ["still", "here"]
            assert router.stats["ping_timeouts"] == 0
            assert router.sessions[0].detach_count == 0
            client.close()

    run(main)


def test_rawsocket_silent_peer_is_dropped_and_detached(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            client = await rs_established(server)
            client.answer_pings = False
            with pytest.raises(asyncio.IncompleteReadError):
                await client.recv(timeout=SLACK)  # a PING, then the end of the stream
            assert len(client.pings) == 1
            (session,) = router.sessions
            assert session.detach_count == 1
            assert router.stats["ping_timeouts"] == 1
            assert not server.connections
            client.close()

    run(main)


def test_rawsocket_auto_pings_only_peers_that_speak_ping(run):
    """With ``rawsocket_ping = "auto"`` a peer that never sent PING or PONG (as
    Autobahn|Python, which fails on a PING frame) is not pinged, and not dropped."""

    async def main():
        async with running(rs_listener(rawsocket_ping="auto")) as (server, router):
            quiet = await rs_established(server)
            speaker = await rs_established(server)
            speaker.writer.write(rs_frame(b"hi", 1))  # it sends a PING: it knows them
            await asyncio.sleep(5 * (INTERVAL + TIMEOUT))
            assert quiet.pings == []
            quiet.send(["quiet", "is", "fine"])
            assert await quiet.recv() == ["quiet", "is", "fine"]
            speaker.answer_pings = False
            with pytest.raises(asyncio.IncompleteReadError):
                await speaker.recv(timeout=SLACK)  # its PONG, PINGs, then dropped
            assert speaker.pings
            assert router.stats["ping_timeouts"] == 1
            quiet.close()

    run(main)


def test_any_input_counts_as_an_answer(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            client = await rs_established(server)
            client.answer_pings = False
            for i in range(12):  # a message every half interval: never silent
                client.send(["tick", i])
                assert await client.recv() == ["tick", i]
                await asyncio.sleep(INTERVAL / 2)
            assert client.pings == []
            assert router.stats["ping_timeouts"] == 0
            client.close()

    run(main)


def test_no_pings_before_the_session_is_established(run):
    async def main():
        async with running(rs_listener(), handshake_timeout=1.0) as (server, router):
            client = await RawSocketClient.connect(server.listeners[0].port)
            assert (await client.recv(timeout=SLACK))[0] == 3  # ABORT: no HELLO in time
            with pytest.raises(asyncio.IncompleteReadError):
                await client.recv(timeout=SLACK)
            assert client.pings == []
            assert router.stats["handshake_timeouts"] == 1
            assert router.stats["ping_timeouts"] == 0

    run(main)


def test_pings_off(run):
    async def main():
        listener = ListenerConfig("rawsocket", port=0, auto_ping_interval=0)
        async with running(listener, handshake_timeout=0.2) as (server, router):
            client = await rs_established(server)
            (conn,) = server.connections
            await asyncio.sleep(0.4)  # past the opening deadline, which was armed
            assert client.pings == []
            # Established, nothing pending: no deadline at all (and no timer armed).
            assert conn._watch_at == float("inf")
            assert len(server.limits.watchdogs) == 0
            client.close()

    run(main)


# WebSocket, both engines.


class WsClient:
    """A sans-I/O websockets client on asyncio streams; answers PINGs only if told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 protocol: ClientProtocol) -> None:
        self.reader, self.writer, self.protocol = reader, writer, protocol
        self.answer_pings = True
        self.pings = 0

    @classmethod
    async def connect(cls, port: int) -> WsClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}/ws"), subprotocols=["wamp.2.json"]
        )
        protocol.send_request(protocol.connect())
        client = cls(reader, writer, protocol)
        client.flush()
        while protocol.state.name == "CONNECTING":
            protocol.receive_data(await asyncio.wait_for(reader.read(65536), 5))
        protocol.events_received()
        return client

    def flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.writer.write(chunk)

    def send(self, msg: Any) -> None:
        self.protocol.send_text(json.dumps(msg).encode())
        self.flush()

    async def recv(self, timeout: float = 5.0) -> Any:
        """The next text message within ``timeout`` seconds; None at the end of the stream."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame):
                    if event.opcode is PING:
                        self.pings += 1
                        if self.answer_pings:
                            self.flush()  # the PONG websockets queued
                        else:
                            self.protocol.data_to_send()  # drop it
                    elif event.opcode.name == "TEXT":
                        return json.loads(event.data)
            data = await asyncio.wait_for(
                self.reader.read(65536), max(0.0, deadline - loop.time())
            )
            if not data:
                return None
            self.protocol.receive_data(data)


@pytest.fixture
def ws_listener(ws_impl: str):
    return ListenerConfig(
        "websocket",
        port=0,
        implementation=ws_impl,
        auto_ping_interval=INTERVAL,
        auto_ping_timeout=TIMEOUT,
    )


def test_websocket_peer_that_answers_is_kept(run, ws_listener):
    async def main():
        async with running(ws_listener) as (server, router):
            client = await WsClient.connect(server.listeners[0].port)
            client.send(["welcome"])
            assert (await client.recv())[0] == 2
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SLACK
            while client.pings < 3:
                with pytest.raises(asyncio.TimeoutError):
                    await client.recv(timeout=0.2)
                assert loop.time() < deadline, "no PINGs"
            client.send(["still", "here"])
            assert await client.recv() == ["still", "here"]
            assert router.stats["ping_timeouts"] == 0
            client.writer.close()

    run(main)


def test_websocket_silent_peer_is_dropped_and_detached(run, ws_listener):
    async def main():
        async with running(ws_listener) as (server, router):
            client = await WsClient.connect(server.listeners[0].port)
            client.send(["welcome"])
            assert (await client.recv())[0] == 2
            client.answer_pings = False
            assert await client.recv(timeout=SLACK) is None  # dropped: end of stream
            assert client.pings == 1
            assert router.sessions[0].detach_count == 1
            assert router.stats["ping_timeouts"] == 1
            client.writer.close()

    run(main)


# Writing paused: a peer that takes our output is alive though its PONG is unread.


class DrainingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.buffered = 10_000_000

    def get_write_buffer_size(self) -> int:
        return self.buffered


def test_peer_draining_output_is_not_dropped_while_writing_is_paused(run):
    async def main():
        listener = ListenerConfig("rawsocket", auto_ping_interval=0.05, auto_ping_timeout=0.05,
                                  rawsocket_ping="always")
        router = StubRouter()
        conn = RawSocketConnection(router, listener)
        transport = DrainingTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"\x7f\xf1\x00\x00" + struct.pack("!I", 11) + b'["welcome"]')
        conn.pause_writing()
        assert transport.paused
        for _ in range(20):  # 0.5 s, ten intervals: the peer keeps taking output
            transport.buffered -= 1000
            await asyncio.sleep(0.025)
        assert not transport.aborted
        await wait_for(lambda: transport.aborted, timeout=SLACK)  # it stopped taking any
        assert router.stats["ping_timeouts"] == 1

    run(main)


def test_input_paused_by_the_core_does_not_count_as_silence(run):
    async def main():
        listener = ListenerConfig("rawsocket", auto_ping_interval=0.05, auto_ping_timeout=0.05,
                                  rawsocket_ping="always")
        router = StubRouter()
        conn = RawSocketConnection(router, listener)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"\x7f\xf1\x00\x00" + struct.pack("!I", 11) + b'["welcome"]')
        conn.pause_input()
        await asyncio.sleep(0.5)
        assert not transport.aborted  # we do not read it: its silence means nothing
        conn.resume_input()
        await wait_for(lambda: transport.aborted, timeout=SLACK)

    run(main)
