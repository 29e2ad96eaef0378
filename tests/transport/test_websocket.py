"""WAMP over WebSocket against a stub router: handshake, framing, closing."""

from __future__ import annotations

import asyncio
import json
import logging

import cbor2
import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.transport.websocket import (
    WebSocketConnection,
    _frame_header,
    websocket_connection_class,
)

from .conftest import ABORT_INVALID, FakeTransport, StubRouter, running, wait_for


def ws_listener(**kwargs: object) -> ListenerConfig:
    return ListenerConfig("websocket", port=0, **kwargs)  # type: ignore[arg-type]


def test_handshake_json_echo(run):
    async def main():
        async with running(ws_listener()) as (server, router):
            url = server.urls[0]
            async with connect(url, subprotocols=["wamp.2.json"]) as ws:
                assert ws.subprotocol == "wamp.2.json"
                await ws.send(json.dumps([1, "realm1", {}]))
                reply = await ws.recv()
                assert isinstance(reply, str)  # text frame for JSON
                assert json.loads(reply) == [1, "realm1", {}]
                (session,) = router.sessions
                info = session.info
                assert info["type"] == "websocket"
                assert info["serializer"] == "json"
                assert info["peer"].startswith("tcp4:127.0.0.1:")
                assert info["http_headers_received"]["sec-websocket-protocol"] == "wamp.2.json"
                assert "host" in info["http_headers_received"]
            await wait_for(lambda: session.detach_count == 1)
            assert session.received == [[1, "realm1", {}]]

    run(main)


@pytest.mark.parametrize(
    "offered, chosen",
    [
        (["wamp.2.cbor", "wamp.2.json"], "wamp.2.cbor"),
        (["wamp.2.msgpack", "wamp.2.cbor"], "wamp.2.msgpack"),
        (["wamp.2.json.batched", "wamp.2.json"], "wamp.2.json"),
    ],
)
def test_client_preference_wins(run, offered, chosen):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=offered) as ws:
                assert ws.subprotocol == chosen
                msg = [1, "realm1", {"b": b"\x00\x01"}]
                if chosen == "wamp.2.cbor":
                    await ws.send(cbor2.dumps(msg))
                    assert cbor2.loads(await ws.recv()) == msg
                elif chosen == "wamp.2.msgpack":
                    await ws.send(msgpack.packb(msg))
                    reply = await ws.recv()
                    assert isinstance(reply, bytes)  # binary frame
                    assert msgpack.unpackb(reply) == msg
                else:
                    await ws.send(json.dumps([1, "realm1", {}]))
                    assert json.loads(await ws.recv()) == [1, "realm1", {}]
            assert router.sessions[0].info["serializer"] == chosen.split(".")[2]

    run(main)


@pytest.mark.parametrize(
    "offered, serializers",
    [
        (["wamp.2.ubjson"], ["json", "msgpack", "cbor"]),
        (["wamp.2.msgpack"], ["json"]),
        (None, ["json", "msgpack", "cbor"]),
    ],
)
def test_handshake_without_acceptable_subprotocol_is_refused(run, caplog, offered, serializers):
    async def main():
        async with running(ws_listener(serializers=serializers)) as (server, router):
            with pytest.raises(InvalidStatus) as info:
                async with connect(server.urls[0], subprotocols=offered):
                    pass
            assert info.value.response.status_code == 400
            assert router.sessions == []

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    refused = [r for r in caplog.records if "handshake refused" in r.getMessage()]
    assert len(refused) == 1
    assert "tcp4:127.0.0.1:" in refused[0].getMessage()


def test_wrong_path_gets_404(run, caplog):
    async def main():
        async with running(ws_listener(path="/wamp")) as (server, router):
            url = server.urls[0]
            assert url.endswith("/wamp")
            with pytest.raises(InvalidStatus) as info:
                async with connect(url.replace("/wamp", "/ws"), subprotocols=["wamp.2.json"]):
                    pass
            assert info.value.response.status_code == 404
            # A query string does not change the path.
            async with connect(url + "?x=1", subprotocols=["wamp.2.json"]) as ws:
                await ws.send("[1]")
                assert await ws.recv() == "[1]"
            assert len(router.sessions) == 1

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("/ws" in r.getMessage() and "404" in r.getMessage() for r in caplog.records)


def test_fragmented_message_is_reassembled(run):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send(['[1,"realm1",', '{"x":', '"' + "y" * 1000 + '"}]'])
                reply = json.loads(await ws.recv())
                assert reply == [1, "realm1", {"x": "y" * 1000}]
            async with connect(server.urls[0], subprotocols=["wamp.2.msgpack"]) as ws:
                data = msgpack.packb([16, 1, {}, "a.b", ["z" * 300]])
                await ws.send([data[:7], data[7:100], data[100:]])
                assert msgpack.unpackb(await ws.recv()) == [16, 1, {}, "a.b", ["z" * 300]]
            assert [len(s.received) for s in router.sessions] == [1, 1]

    run(main)


def test_ping_is_answered(run):
    async def main():
        async with (
            running(ws_listener()) as (server, _router),
            connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws,
        ):
            pong = await ws.ping(b"hello")
            await pong
            await ws.send("[2]")
            assert await ws.recv() == "[2]"

    run(main)


def test_invalid_payload_aborts_session(run, caplog):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send("[1, not json")
                assert json.loads(await ws.recv()) == ABORT_INVALID
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == CloseCode.NORMAL_CLOSURE
            (session,) = router.sessions
            assert len(session.invalid) == 1
            await wait_for(lambda: session.detach_count == 1)

    with caplog.at_level(logging.DEBUG, logger="fastwamp.transport"):
        run(main)
    assert any("undecodable json" in r.getMessage() for r in caplog.records)


def test_invalid_utf8_in_text_frame_is_invalid(run):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                # websockets' client only sends valid UTF-8 in text frames; send the
                # bytes as a binary frame: JSON payloads are decoded from bytes anyway.
                await ws.send(b'["\xff\xfe"]')
                assert json.loads(await ws.recv()) == ABORT_INVALID
            assert len(router.sessions[0].invalid) == 1

    run(main)


def test_oversize_message_fails_only_that_connection(run, caplog):
    async def main():
        async with running(ws_listener(max_message_size=1024)) as (server, router):
            url = server.urls[0]
            async with (
                connect(url, subprotocols=["wamp.2.json"]) as good,
                connect(url, subprotocols=["wamp.2.json"], max_size=None) as bad,
            ):
                await bad.send(json.dumps(["x" * 2000]))
                with pytest.raises(ConnectionClosed) as info:
                    await bad.recv()
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
                await good.send("[3]")
                assert await good.recv() == "[3]"
            await wait_for(lambda: all(s.detach_count == 1 for s in router.sessions))
            assert router.sessions[1].received == []

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("protocol error" in r.getMessage() for r in caplog.records)


def test_outgoing_message_over_limit_is_dropped(run, caplog):
    async def main():
        async with (
            running(ws_listener(max_message_size=1024)) as (server, _router),
            connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws,
        ):
            await ws.send('["big", 2000]')
            assert json.loads(await ws.recv()) == ["after"]

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("dropped an outgoing message" in r.getMessage() for r in caplog.records)


def test_router_close_sends_close_frame(run):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send('["close"]')
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == CloseCode.NORMAL_CLOSURE
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            await wait_for(lambda: not server.connections)

    run(main)


def test_abrupt_disconnect_detaches_once(run):
    async def main():
        async with running(ws_listener()) as (server, router):
            host, port = server.listeners[0].config.host, server.listeners[0].port
            reader, writer = await asyncio.open_connection(host, port)
            client = ClientProtocol(
                parse_uri(f"ws://{host}:{port}/ws"), subprotocols=["wamp.2.json"]
            )
            client.send_request(client.connect())
            writer.write(b"".join(client.data_to_send()))
            while client.state.name == "CONNECTING":
                client.receive_data(await reader.read(4096))
            client.send_text(b"[1]")
            frame = b"".join(client.data_to_send())
            writer.write(frame + frame[:5])  # one message, then half a frame
            await writer.drain()
            await wait_for(lambda: bool(router.sessions and router.sessions[0].received))
            writer.transport.abort()
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            await wait_for(lambda: not server.connections)
            assert router.sessions[0].received == [[1]]
            assert router.sessions[0].detach_count == 1

    run(main)


@pytest.mark.parametrize("compression", [False, True])
def test_compression_only_when_configured(run, compression):
    async def main():
        async with running(ws_listener(compression=compression)) as (server, router):
            async with connect(
                server.urls[0], subprotocols=["wamp.2.json"], compression="deflate"
            ) as ws:
                negotiated = [e.name for e in ws.protocol.extensions]
                assert negotiated == (["permessage-deflate"] if compression else [])
                await ws.send(json.dumps(["many", 3]))
                assert [json.loads(await ws.recv()) for _ in range(3)] == [
                    ["m", i] for i in range(3)
                ]
            extensions = router.sessions[0].info["websocket_extensions"]
            assert extensions == (["permessage-deflate"] if compression else [])

    run(main)


def test_shutdown_says_goodbye(run):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send("[1]")
                await ws.recv()
                shutdown = asyncio.create_task(server.shutdown())
                assert json.loads(await ws.recv()) == [6, {}, "wamp.close.system_shutdown"]
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            await shutdown
            assert not server.connections

    run(main)


def _open_fake(router: StubRouter, listener: ListenerConfig, subprotocol: str):
    """A WebSocketConnection on a FakeTransport, past the handshake."""
    conn = WebSocketConnection(router, listener)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), subprotocols=[subprotocol])
    client.send_request(client.connect())
    conn.data_received(b"".join(client.data_to_send()))
    for chunk in transport.writes:
        client.receive_data(chunk)
    assert client.state.name == "OPEN"
    client.events_received()
    transport.writes.clear()
    return conn, transport, client


def test_one_write_per_read(run):
    async def main():
        router = StubRouter()
        conn, transport, client = _open_fake(router, ListenerConfig("websocket"), "wamp.2.json")
        for i in range(20):
            client.send_text(json.dumps([16, i]).encode())
        client.send_ping(b"p")
        conn.data_received(b"".join(client.data_to_send()))
        assert len(transport.writes) == 1
        assert router.flushes >= 1
        client.receive_data(transport.writes[0])
        frames = client.events_received()
        assert [f.opcode.name for f in frames] == ["PONG"] + ["TEXT"] * 20
        assert [json.loads(f.data) for f in frames[1:]] == [[16, i] for i in range(20)]

    run(main)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
def test_fast_frame_header_matches_websockets(length):
    from websockets.frames import BINARY as OP_BINARY
    from websockets.frames import Frame

    payload = b"a" * length
    expected = Frame(OP_BINARY, payload).serialize(mask=False, extensions=[])
    assert _frame_header(OP_BINARY, length) + payload == expected


def test_implementation_registry():
    assert websocket_connection_class() is WebSocketConnection
    assert websocket_connection_class("websockets") is WebSocketConnection
    with pytest.raises(KeyError, match="picows"):
        websocket_connection_class("picows")


def test_invalid_http_request_is_logged_once(run, caplog):
    async def main():
        async with running(ws_listener()) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(b"garbage\r\n\r\n")
            assert await reader.read(100) == b""
            writer.close()
            assert router.sessions == []

    with caplog.at_level(logging.INFO, logger="fastwamp.transport"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("fastwamp.transport")]
    assert len(lines) == 1 and "invalid HTTP request" in lines[0]


def test_open_timeout_drops_silent_clients(run, monkeypatch, caplog):
    import fastwamp.transport.base as base

    monkeypatch.setattr(base, "OPEN_TIMEOUT", 0.05)

    async def main():
        async with running(ws_listener(), ListenerConfig("rawsocket", port=0)) as (server, router):
            for listener in server.listeners:
                reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
                assert await reader.read(100) == b""  # dropped by the server
                writer.close()
            assert router.sessions == []

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert sum("opening handshake not completed" in r.getMessage() for r in caplog.records) == 2


def test_close_timeout_drops_peer_that_does_not_answer(run, monkeypatch):
    import fastwamp.transport.websocket as websocket

    monkeypatch.setattr(websocket, "CLOSE_TIMEOUT", 0.05)

    async def main():
        async with running(ws_listener()) as (server, router):
            host, port = "127.0.0.1", server.listeners[0].port
            reader, writer = await asyncio.open_connection(host, port)
            client = ClientProtocol(
                parse_uri(f"ws://{host}:{port}/ws"), subprotocols=["wamp.2.json"]
            )
            client.send_request(client.connect())
            writer.write(b"".join(client.data_to_send()))
            while client.state.name == "CONNECTING":
                client.receive_data(await reader.read(4096))
            client.send_text(b'["close"]')
            writer.write(b"".join(client.data_to_send()))
            # Read the close frame but never answer it: the server drops us.
            while data := await reader.read(4096):
                client.receive_data(data)
            assert client.close_rcvd is not None and client.close_rcvd.code == 1000
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            writer.close()

    run(main)
