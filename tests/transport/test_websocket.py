"""WAMP over WebSocket against a stub router: handshake, framing, closing.

Most tests run on each WebSocket engine (the ``ws_impl`` fixture: websockets,
picows) and, through ``run``, on uvloop and asyncio: the behaviour is the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import sys
from collections.abc import Callable
from typing import Any

import cbor2
import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CLOSE, CONT, PING, TEXT, CloseCode, Frame
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.transport.websocket import (
    WebSocketConnection,
    _frame_header,
    websocket_connection_class,
)

from .conftest import ABORT_INVALID, HAVE_PICOWS, FakeTransport, StubRouter, running, wait_for


@pytest.fixture
def ws_listener(ws_impl: str) -> Callable[..., ListenerConfig]:
    """``ws_listener(**kwargs)``: a WebSocket ListenerConfig on port 0 using ``ws_impl``."""

    def make(**kwargs: Any) -> ListenerConfig:
        return ListenerConfig("websocket", port=0, implementation=ws_impl, **kwargs)

    return make


def test_handshake_json_echo(run, ws_listener):
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
                assert info["websocket_protocol"] == "wamp.2.json"
                assert info["http_path"] == "/ws"
                headers = info["http_headers_received"]
                assert "host" in headers
                # The handshake-only headers are not kept for the session's life.
                assert "sec-websocket-protocol" not in headers
                assert "sec-websocket-key" not in headers and "upgrade" not in headers
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
def test_client_preference_wins(run, offered, chosen, ws_listener):
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
def test_handshake_without_acceptable_subprotocol_is_refused(
    run, caplog, offered, serializers, ws_listener
):
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


def test_wrong_path_gets_404(run, caplog, ws_listener):
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


def test_fragmented_message_is_reassembled(run, ws_listener):
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


def test_ping_is_answered(run, ws_listener):
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


def test_invalid_payload_aborts_session(run, caplog, ws_listener):
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


def test_invalid_utf8_in_text_frame_is_invalid(run, ws_listener):
    async def main():
        async with running(ws_listener()) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                # websockets' client only sends valid UTF-8 in text frames; send the
                # bytes as a binary frame: JSON payloads are decoded from bytes anyway.
                await ws.send(b'["\xff\xfe"]')
                assert json.loads(await ws.recv()) == ABORT_INVALID
            assert len(router.sessions[0].invalid) == 1

    run(main)


def test_oversize_message_fails_only_that_connection(run, caplog, ws_listener):
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


def test_outgoing_message_over_limit_is_reported(run, ws_listener):
    async def main():
        async with (
            running(ws_listener(max_message_size=1024)) as (server, router),
            connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws,
        ):
            await ws.send('["big", 2000]')
            assert json.loads(await ws.recv()) == ["after"]
            ((msg, error, _reason),) = router.sessions[0].undeliverable_msgs
            assert msg[0] == "big" and error == "wamp.error.payload_size_exceeded"

    run(main)


def test_router_close_sends_close_frame(run, ws_listener):
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


def test_abrupt_disconnect_detaches_once(run, ws_listener):
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
def test_compression_only_when_configured(run, compression, ws_listener, ws_impl):
    if compression and ws_impl == "picows":
        pytest.skip("picows has no permessage-deflate; the configuration refuses it")

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
            assert extensions == (("permessage-deflate",) if compression else ())

    run(main)


def test_shutdown_says_goodbye(run, ws_listener):
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


def _open_fake(
    router: StubRouter,
    listener: ListenerConfig,
    subprotocol: str,
    transport: FakeTransport | None = None,
):
    """A connection of the listener's engine on a FakeTransport, past the handshake."""
    conn = websocket_connection_class(listener.implementation)(router, listener)
    transport = transport if transport is not None else FakeTransport()
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


def test_one_write_per_read(run, ws_impl):
    async def main():
        router = StubRouter()
        listener = ListenerConfig("websocket", implementation=ws_impl)
        conn, transport, client = _open_fake(router, listener, "wamp.2.json")
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
    with pytest.raises(KeyError, match="picows"):  # the message lists the known engines
        websocket_connection_class("nonesuch")
    if HAVE_PICOWS:
        from fastwamp.transport.picows_ws import PicowsConnection

        assert websocket_connection_class("picows") is PicowsConnection


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"garbage\r\n\r\n", "invalid HTTP request"),
        (b"GET /ws HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", "invalid HTTP request"),
        (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n",
            "handshake refused (HTTP 400)",  # no Sec-WebSocket-Key
        ),
    ],
    ids=["garbage", "huge-header", "no-key"],
)
def test_invalid_http_request_is_logged_once(run, caplog, ws_listener, request_bytes, expected):
    async def main():
        async with running(ws_listener()) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(request_bytes)
            try:
                answer = await reader.read()  # until the server closes the connection
            except ConnectionResetError:  # closed with unread input
                answer = b""
            # Either an error response or nothing (websockets just closes on garbage).
            assert answer == b"" or re.match(rb"HTTP/1.1 4\d\d ", answer)
            writer.close()
            assert router.sessions == []

    # The engines' own wire logs stay at WARNING, as configure_logging() sets them.
    caplog.set_level(logging.WARNING, logger="fastwamp.transport.websocket.wire")
    with caplog.at_level(logging.INFO, logger="fastwamp.transport"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("fastwamp.transport")]
    assert len(lines) == 1 and expected in lines[0], lines


def test_open_timeout_drops_silent_clients(run, caplog, ws_listener):
    async def main():
        async with running(
            ws_listener(), ListenerConfig("rawsocket", port=0), handshake_timeout=0.05
        ) as (server, router):
            for listener in server.listeners:
                reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
                assert await reader.read(100) == b""  # dropped by the server
                writer.close()
            assert router.sessions == []
            assert router.stats["handshake_timeouts"] == 2

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("transport handshake not completed" in line for line in lines) == 2, lines


def test_close_timeout_drops_peer_that_does_not_answer(run, monkeypatch, ws_listener, ws_impl):
    module = sys.modules[websocket_connection_class(ws_impl).__module__]
    monkeypatch.setattr(module, "CLOSE_TIMEOUT", 0.05)

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


# Engine-independent behaviour checked below the websockets client (raw frames).


async def _raw_client(
    port: int, subprotocol: str = "wamp.2.json", connection_header: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ClientProtocol]:
    """Open a WebSocket by hand: the caller writes frames and reads the bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"), subprotocols=[subprotocol])
    request = client.connect()
    if connection_header is not None:
        del request.headers["Connection"]
        request.headers["Connection"] = connection_header
    client.send_request(request)
    writer.write(b"".join(client.data_to_send()))
    while client.state.name == "CONNECTING":
        data = await reader.read(4096)
        assert data, "connection closed during the handshake"
        client.receive_data(data)
    assert client.state.name == "OPEN", client.handshake_exc
    client.events_received()  # the handshake response
    return reader, writer, client


def _raw_frame(opcode: Any, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


def _serialize_any(frame: Frame) -> bytes:
    """Serialize ``frame`` (masked), reserved bits included (websockets refuses them)."""
    rsv = frame.rsv1 << 6 | frame.rsv2 << 5 | frame.rsv3 << 4
    data = bytearray(
        Frame(frame.opcode, frame.data, fin=frame.fin).serialize(mask=True, extensions=[])
    )
    data[0] |= rsv
    return bytes(data)


async def _read_until_closed(reader: asyncio.StreamReader, client: ClientProtocol) -> list[Frame]:
    """Feed everything the server sends until it closes TCP; the frames received."""
    while data := await reader.read(65536):
        client.receive_data(data)
    client.receive_eof()
    return [e for e in client.events_received() if isinstance(e, Frame)]


@pytest.mark.parametrize(
    "frames, reason",
    [
        ([Frame(CONT, b"[1]")], "unexpected continuation"),
        ([Frame(TEXT, b"[1,", fin=False), Frame(TEXT, b"2]")], "expected a continuation"),
        ([Frame(TEXT, b"[1]", rsv1=True)], "reserved bits must be 0"),  # no extension
    ],
    ids=["continuation", "no-continuation", "rsv1"],
)
def test_bad_frame_sequence_fails_connection(run, caplog, ws_listener, frames, reason):
    async def main():
        async with running(ws_listener()) as (server, router):
            reader, writer, client = await _raw_client(server.listeners[0].port)
            writer.write(b"".join(map(_serialize_any, frames)))
            await _read_until_closed(reader, client)
            assert client.close_rcvd is not None
            assert client.close_rcvd.code == CloseCode.PROTOCOL_ERROR
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            assert router.sessions[0].received == []
            writer.close()

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    errors = [r.getMessage() for r in caplog.records if "protocol error" in r.getMessage()]
    assert len(errors) == 1 and reason in errors[0]


def test_fragmented_message_over_limit_fails_connection(run, caplog, ws_listener):
    async def main():
        async with running(ws_listener(max_message_size=1024)) as (server, router):
            reader, writer, client = await _raw_client(server.listeners[0].port)
            part = b"x" * 600  # each frame is within the limit, the message is not
            writer.write(
                _raw_frame(TEXT, b'["' + part, False)
                + _raw_frame(CONT, part, False)
                + _raw_frame(CONT, b'"]', True)
            )
            await _read_until_closed(reader, client)
            assert client.close_rcvd is not None
            assert client.close_rcvd.code == CloseCode.MESSAGE_TOO_BIG
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            assert router.sessions[0].received == []
            writer.close()

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert sum("protocol error" in r.getMessage() for r in caplog.records) == 1


def test_client_close_is_echoed_and_detaches_once(run, ws_listener):
    async def main():
        async with running(ws_listener()) as (server, router):
            reader, writer, client = await _raw_client(server.listeners[0].port)
            writer.write(_raw_frame(TEXT, b'["hi"]'))
            client.receive_data(await reader.read(4096))
            assert [json.loads(f.data) for f in client.events_received()] == [["hi"]]
            # A ping and the close frame in one write: the pong goes out before
            # the echoed close (same code), then the server ends TCP.
            writer.write(
                _raw_frame(PING, b"p")
                + _raw_frame(CLOSE, CloseCode.GOING_AWAY.to_bytes(2, "big") + b"bye")
            )
            frames = await _read_until_closed(reader, client)
            assert [f.opcode.name for f in frames] == ["PONG", "CLOSE"]
            assert client.close_rcvd.code == CloseCode.GOING_AWAY
            (session,) = router.sessions
            await wait_for(lambda: session.detach_count == 1)
            await wait_for(lambda: not server.connections)
            assert session.detach_count == 1
            writer.close()

    run(main)


def test_connection_header_token_list_is_accepted(run, ws_listener):
    """RFC 6455 allows ``Connection: keep-alive, Upgrade`` (Firefox sends it)."""

    async def main():
        async with running(ws_listener()) as (server, router):
            reader, writer, client = await _raw_client(
                server.listeners[0].port, connection_header="keep-alive, Upgrade"
            )
            writer.write(_raw_frame(TEXT, b"[7]"))
            client.receive_data(await reader.read(4096))
            [frame] = client.events_received()
            assert json.loads(frame.data) == [7]
            headers = router.sessions[0].info["http_headers_received"]
            assert "connection" not in headers  # a handshake-only header
            writer.close()

    run(main)


def _request(port: int, *extra: str) -> bytes:
    """A client's opening handshake, with ``extra`` header lines."""
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: wamp.2.json",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """The HTTP response head (checked: 101)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return head


async def _read_text(reader: asyncio.StreamReader) -> bytes:
    """The payload of one unmasked, unfragmented server frame of < 126 bytes."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
    assert b0 == 0x81 and b1 < 126, (b0, b1)
    return await reader.readexactly(b1)


def test_request_headers_kept_for_the_session(run, ws_listener):
    """transport_info keeps the request's headers but the handshake-only ones:
    lowercased, repeated ones joined."""

    async def main():
        async with running(ws_listener()) as (server, router):
            port = server.listeners[0].port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(port, "X-Forwarded-For: 10.0.0.1", "Cookie: a=1",
                                  "X-Custom: one", "x-custom: two", "Pragma: no-cache"))
            await _read_response(reader)
            writer.write(_raw_frame(TEXT, b"[1]"))
            assert await _read_text(reader) == b"[1]"
            info = router.sessions[0].info
            assert info["http_headers_received"] == {
                "host": f"127.0.0.1:{port}",
                "x-forwarded-for": "10.0.0.1",
                "cookie": "a=1",
                "x-custom": "one, two",
            }
            writer.close()

    run(main)


@pytest.mark.parametrize("split", ["one_write", "byte_by_byte"])
def test_request_and_frames_pipelined(run, ws_listener, split):
    """Frames sent right behind the request (RFC 6455 says to wait for the
    response; some clients do not) are read, however the bytes are cut: the
    request's end is found across reads and the frames after it parsed."""

    async def main():
        async with running(ws_listener()) as (server, router):
            port = server.listeners[0].port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.transport.set_write_buffer_limits(0)
            data = _request(port) + _raw_frame(TEXT, b"[1]") + _raw_frame(TEXT, b"[2]")
            if split == "one_write":
                writer.write(data)
            else:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for i in range(len(data)):
                    writer.write(data[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(0)
            await _read_response(reader)
            assert await _read_text(reader) == b"[1]"
            assert await _read_text(reader) == b"[2]"
            assert router.sessions[0].received == [[1], [2]]
            writer.close()

    run(main)


def test_websockets_engine_keeps_no_request_and_no_last_frame(run):
    """websockets' parser keeps what it parsed last in its generator: the engine
    swaps it for a fresh one after the request and once the session is
    established, so an idle session holds neither the request nor the HELLO."""

    async def main():
        listener = ListenerConfig("websocket", port=0, implementation="websockets")
        async with running(listener) as (server, router):
            port = server.listeners[0].port
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(port, "X-Big: " + "x" * 1000))
            await _read_response(reader)
            (conn,) = server.connections
            parser = conn._ws.parser
            assert "request" not in parser.gi_frame.f_locals
            writer.write(_raw_frame(TEXT, b'["welcome", "' + b"y" * 100 + b'"]'))
            await asyncio.wait_for(reader.readexactly(2 + 8), 5)  # [2,1,{}]
            assert conn._established
            locals_ = conn._ws.parser.gi_frame.f_locals
            assert "frame" not in locals_
            writer.close()

    run(main)


def test_output_held_while_paused_then_written_once(run, ws_impl):
    """The engines share BaseConnection's output queue: nothing is written while the
    transport is paused, everything in order (and one write) on resume, and the
    router's close waits for the held output."""

    async def main():
        router = StubRouter()
        listener = ListenerConfig("websocket", implementation=ws_impl)
        conn, transport, client = _open_fake(router, listener, "wamp.2.msgpack")
        reports: list[tuple[int, int, bool]] = []
        conn.set_output_limits(10**6, 5, "drop_oldest", lambda *r: reports.append(r))
        conn.pause_writing()
        assert transport.paused  # reading paused too
        events = [[36, 1, i, {}, ["e"]] for i in range(8)]
        conn.send_messages(events[:4] + [[50, 1, {}, ["r"]]])
        conn.send_messages(events[4:])
        assert transport.writes == []
        assert sum(r[0] for r in reports) == 4  # 9 held, limit 5: the 4 oldest EVENTs dropped
        conn.close()
        assert transport.writes == [] and not transport.closed
        conn.resume_writing()
        assert len(transport.writes) == 2  # the held messages, then the close frame
        client.receive_data(b"".join(transport.writes))
        frames = client.events_received()
        assert [msgpack.unpackb(f.data) for f in frames[:-1]] == [[50, 1, {}, ["r"]], *events[4:]]
        assert frames[-1].opcode.name == "CLOSE"
        assert not transport.paused

    run(main)


# The implementation key of the configuration.


def test_implementation_config_key():
    from fastwamp.config import ConfigError, config_from_toml

    def listener(extra: str) -> str:
        return f'[[listeners]]\ntype = "websocket"\nport = 0\n{extra}\n'

    config = config_from_toml(listener(""))
    assert config.listeners[0].implementation == "auto"
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.implementation: must be one of"):
        config_from_toml(listener('implementation = "tornado"'))
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.implementation: applies to websocket"):
        config_from_toml('[[listeners]]\ntype = "rawsocket"\nimplementation = "picows"\n')
    with pytest.raises(ConfigError, match=r"listeners\[0\]\.compression: the picows"):
        config_from_toml(listener('implementation = "picows"\ncompression = true'))
    if HAVE_PICOWS:
        config = config_from_toml(listener('implementation = "picows"'))
        assert config.listeners[0].implementation == "picows"


def test_picows_refused_when_not_installed(run, monkeypatch):
    import importlib.util

    from fastwamp.config import ConfigError, config_from_toml
    from fastwamp.server import serve

    from .conftest import make_config

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "picows" else find_spec(name, *a),
    )
    with pytest.raises(
        ConfigError, match=r"listeners\[0\]\.implementation: picows is not installed"
    ):
        config_from_toml('[[listeners]]\ntype = "websocket"\nimplementation = "picows"\n')

    async def main():
        config = make_config(ListenerConfig("websocket", port=0, implementation="picows"))
        with pytest.raises(ConfigError, match=r"listeners\[0\]\.implementation: picows is not"):
            await serve(config, router=StubRouter())
        # "auto" falls back to the websockets engine.
        config = make_config(ListenerConfig("websocket", port=0))
        server = await serve(config, router=StubRouter())
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            await wait_for(lambda: len(server.connections) == 1)
            assert type(next(iter(server.connections))) is WebSocketConnection
            writer.close()
        finally:
            server.abort()
            server.close_listeners()

    run(main)


@pytest.mark.parametrize(
    "implementation, compression, engine",
    [
        ("auto", False, "picows"),
        ("auto", True, "websockets"),
        ("websockets", False, "websockets"),
        ("websockets", True, "websockets"),
        ("picows", False, "picows"),
    ],
)
def test_default_engine_is_picows_but_for_compression(run, implementation, compression, engine):
    """implementation = "auto" (the default) runs picows, or websockets when the
    listener negotiates compression; permessage-deflate works either way it is asked."""
    from fastwamp.config import websocket_engine

    listener = ListenerConfig("websocket", port=0, implementation=implementation,
                              compression=compression)
    assert websocket_engine(listener) == engine
    assert ListenerConfig("websocket").implementation == "auto"

    async def main():
        async with running(listener) as (server, router), connect(
            server.urls[0],
            subprotocols=["wamp.2.json"],
            compression="deflate" if compression else None,
        ) as ws:
            await ws.send(json.dumps(["x" * 200]))
            assert json.loads(await ws.recv()) == ["x" * 200]
            negotiated = [e.name for e in ws.protocol.extensions]
            assert negotiated == (["permessage-deflate"] if compression else [])
            (conn,) = server.connections
            assert type(conn) is websocket_connection_class(engine)

    run(main)


def test_real_socket_slow_reader_drop_oldest(run, ws_listener):
    """A client that stops reading: the transport pauses, the oldest EVENTs are
    dropped within the limits, every reply arrives, in order, before the close."""

    async def main():
        loop = asyncio.get_running_loop()
        async with running(ws_listener()) as (server, router):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            try:
                port = server.listeners[0].port
                await loop.sock_connect(sock, ("127.0.0.1", port))
                client = ClientProtocol(
                    parse_uri(f"ws://127.0.0.1:{port}/ws"), subprotocols=["wamp.2.json"]
                )
                client.send_request(client.connect())
                await loop.sock_sendall(sock, b"".join(client.data_to_send()))
                while client.state.name == "CONNECTING":
                    client.receive_data(await loop.sock_recv(sock, 4096))
                client.events_received()
                await wait_for(lambda: bool(router.sessions))
                conn = router.sessions[0].sink
                conn._transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
                )
                reports: list[tuple[int, int, bool]] = []
                conn.set_output_limits(64 * 1024, 200, "drop_oldest", lambda *r: reports.append(r))
                results = []
                for i in range(2000):  # ~2 MB of events, a reply every 25
                    batch = [[36, 1, i, {}, ["x" * 1000]]]
                    if i % 25 == 0:
                        batch.append([50, i, {}, []])
                        results.append(batch[-1])
                    conn.send_messages(batch)
                    if i % 50 == 0:
                        await asyncio.sleep(0)
                assert conn._write_paused
                assert conn._queue.messages <= 200 and conn._queue.bytes <= 64 * 1024
                assert reports and not any(r[2] for r in reports)
                conn.close()  # after the peer has read what is held
                while data := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 10):
                    client.receive_data(data)
                    if client.close_rcvd is not None:
                        break
            finally:
                sock.close()
        frames = [f for f in client.events_received() if isinstance(f, Frame)]
        assert frames[-1].opcode.name == "CLOSE"
        got = [json.loads(f.data) for f in frames[:-1]]
        assert [m for m in got if m[0] == 50] == results  # every reply, in order
        events = [m[2] for m in got if m[0] == 36]
        assert events == sorted(events) and events[-1] == 1999  # oldest dropped
        assert sum(r[0] for r in reports) == 2000 - len(events) > 0

    run(main)
