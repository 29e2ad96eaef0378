"""WAMP over RawSocket against a stub router: handshake replies, framing, limits."""

from __future__ import annotations

import asyncio
import json
import logging

import msgpack
import pytest

from fastwamp.config import ListenerConfig
from fastwamp.transport.rawsocket import (
    RawSocketConnection,
    frame_header,
    handshake_reply,
    length_exponent,
)

from .conftest import (
    ABORT_INVALID,
    FakeTransport,
    StubRouter,
    rs_frame,
    rs_read_frame,
    running,
    wait_for,
)


def rs_listener(**kwargs: object) -> ListenerConfig:
    return ListenerConfig("rawsocket", port=0, **kwargs)  # type: ignore[arg-type]


async def rs_open(server, handshake: bytes):
    listener = server.listeners[0]
    reader, writer = await asyncio.open_connection(listener.config.host, listener.port)
    writer.write(handshake)
    return reader, writer


async def rs_connect(server, serializer: int = 1, length_bits: int = 15):
    reader, writer = await rs_open(server, bytes((0x7F, (length_bits << 4) | serializer, 0, 0)))
    reply = await reader.readexactly(4)
    assert reply[0] == 0x7F and reply[1] & 0x0F == serializer, reply
    return reader, writer, reply


def test_helpers():
    assert length_exponent(2**24) == 15
    assert length_exponent(2**24 + 5) == 15
    assert length_exponent(2**20) == 11
    assert length_exponent(2**20 - 1) == 10
    assert length_exponent(512) == 0
    assert handshake_reply(2, 2**24) == b"\x7f\xf2\x00\x00"
    assert frame_header(0, 5) == b"\x00\x00\x00\x05"
    assert frame_header(1, 2**24 - 1) == b"\x01\xff\xff\xff"
    assert frame_header(0, 2**24) == b"\x08\x00\x00\x00"
    assert frame_header(2, 2**24) == b"\x0a\x00\x00\x00"


@pytest.mark.parametrize(
    "ser_id, name, encode, decode",
    [
        (1, "json", lambda m: json.dumps(m).encode(), json.loads),
        (2, "msgpack", msgpack.packb, msgpack.unpackb),
    ],
)
def test_handshake_and_echo(run, ser_id, name, encode, decode):
    async def main():
        async with running(rs_listener(max_message_size=2**20)) as (server, router):
            reader, writer, reply = await rs_connect(server, ser_id, length_bits=3)
            # The router announces its own limit (2**20 = 2**(9+11)) and echoes S.
            assert reply == bytes((0x7F, (11 << 4) | ser_id, 0, 0))
            writer.write(rs_frame(encode([1, "realm1", {}])))
            msg_type, payload = await rs_read_frame(reader)
            assert msg_type == 0 and decode(payload) == [1, "realm1", {}]
            (session,) = router.sessions
            assert session.info["type"] == "rawsocket"
            assert session.info["serializer"] == name
            assert session.info["peer"].startswith("tcp4:127.0.0.1:")
            writer.close()
            await wait_for(lambda: session.detach_count == 1)

    run(main)


@pytest.mark.parametrize(
    "handshake, error, reason",
    [
        (b"\x7f\xf0\x00\x00", 0x10, "serializer 0"),
        (b"\x7f\xf4\x00\x00", 0x10, "serializer 4"),
        (b"\x7f\xff\x00\x00", 0x10, "serializer 15"),
        (b"\x7f\xf1\x01\x00", 0x30, "reserved"),
        (b"\x7f\xf1\x00\x80", 0x30, "reserved"),
    ],
)
def test_handshake_errors(run, caplog, handshake, error, reason):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer = await rs_open(server, handshake)
            assert await reader.read(100) == bytes((0x7F, error, 0, 0))
            assert await reader.read(100) == b""  # then closed
            writer.close()
            assert router.sessions == []

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("fastwamp.transport")]
    assert len(lines) == 1
    assert "tcp4:127.0.0.1:" in lines[0] and reason.split()[0] in lines[0]


def test_serializer_not_offered_by_listener(run):
    async def main():
        async with running(rs_listener(serializers=["cbor"])) as (server, router):
            reader, writer = await rs_open(server, b"\x7f\xf1\x00\x00")  # json
            assert await reader.read(100) == b"\x7f\x10\x00\x00"
            writer.close()
            reader, writer, reply = await rs_connect(server, 3)
            assert reply == b"\x7f\xf3\x00\x00"
            writer.close()

    run(main)


def test_first_octet_not_magic_closes_without_reply(run, caplog):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer = await rs_open(server, b"GET / HTTP/1.1\r\n\r\n")
            assert await reader.read(100) == b""
            writer.close()
            assert router.sessions == []

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("first octet 0x47" in r.getMessage() for r in caplog.records)


def test_oversize_frame_closes_only_that_connection(run, caplog):
    async def main():
        async with running(rs_listener(max_message_size=1024)) as (server, router):
            good_r, good_w, _ = await rs_connect(server)
            bad_r, bad_w, reply = await rs_connect(server)
            assert reply == b"\x7f\x11\x00\x00"  # 2**(9+1) = 1024
            bad_w.write(rs_frame(b"[" + b"1," * 600 + b"1]"))
            assert await bad_r.read(100) == b""
            good_w.write(rs_frame(b"[7]"))
            assert await rs_read_frame(good_r) == (0, b"[7]")
            await wait_for(lambda: router.sessions[1].detach_count == 1)
            assert router.sessions[1].received == []
            assert router.sessions[0].detach_count == 0
            good_w.close()
            bad_w.close()

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("exceeds the 1024 limit" in r.getMessage() for r in caplog.records)


def test_ping_gets_pong_with_same_payload(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer, _ = await rs_connect(server)
            writer.write(rs_frame(b"ping-payload", msg_type=1) + rs_frame(b"", msg_type=1))
            assert await rs_read_frame(reader) == (2, b"ping-payload")
            assert await rs_read_frame(reader) == (2, b"")
            # A PONG from the client is ignored; messages still flow.
            writer.write(rs_frame(b"x", msg_type=2) + rs_frame(b"[5]"))
            assert await rs_read_frame(reader) == (0, b"[5]")
            assert router.sessions[0].received == [[5]]
            writer.close()

    run(main)


@pytest.mark.parametrize("head", [0x03, 0x07, 0x10, 0x80, 0x09])
def test_reserved_frame_bits_fail_connection(run, caplog, head):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer, _ = await rs_connect(server)
            writer.write(bytes((head, 0, 0, 1)) + b"1")
            assert await reader.read(100) == b""
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            assert router.sessions[0].received == []
            writer.close()

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("closing the connection" in r.getMessage() for r in caplog.records)


def test_mid_frame_close_detaches_once(run, caplog):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer, _ = await rs_connect(server)
            writer.write(rs_frame(b"[1]") + rs_frame(b"[2, 3, 4]")[:6])
            assert await rs_read_frame(reader) == (0, b"[1]")
            writer.close()
            await wait_for(lambda: bool(router.detached))
            await wait_for(lambda: not server.connections)
            assert router.sessions[0].detach_count == 1
            assert router.sessions[0].received == [[1]]

    with caplog.at_level(logging.INFO, logger="fastwamp.transport"):
        run(main)
    assert any("middle of a frame" in r.getMessage() for r in caplog.records)


def test_outgoing_over_client_limit_is_reported(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer, _ = await rs_connect(server, length_bits=0)  # client takes 512 B
            writer.write(rs_frame(b'["big", 600]'))
            assert await rs_read_frame(reader) == (0, b'["after"]')
            writer.write(rs_frame(b'["big", 400]'))
            msg_type, payload = await rs_read_frame(reader)
            assert json.loads(payload) == ["big", "x" * 400]
            writer.close()
            ((msg, error, reason),) = router.sessions[0].undeliverable_msgs
            assert msg == ["big", "x" * 600]
            assert error == "wamp.error.payload_size_exceeded"
            assert "over the 512 bytes" in reason

    run(main)


def test_invalid_payload_aborts_session(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            reader, writer, _ = await rs_connect(server)
            writer.write(rs_frame(b"[1, oops") + rs_frame(b"[2]"))
            msg_type, payload = await rs_read_frame(reader)
            assert json.loads(payload) == ABORT_INVALID
            assert await reader.read(100) == b""
            (session,) = router.sessions
            assert len(session.invalid) == 1 and session.received == []
            writer.close()

    run(main)


def test_router_close_and_shutdown(run):
    async def main():
        async with running(rs_listener()) as (server, router):
            r1, w1, _ = await rs_connect(server)
            w1.write(rs_frame(b'["close"]'))
            assert await r1.read(100) == b""
            r2, w2, _ = await rs_connect(server)
            w2.write(rs_frame(b"[1]"))
            assert await rs_read_frame(r2) == (0, b"[1]")
            await server.shutdown()
            assert json.loads((await rs_read_frame(r2))[1]) == [6, {}, "wamp.close.system_shutdown"]
            assert await r2.read(100) == b""
            assert not server.connections
            assert [s.detach_count for s in router.sessions] == [1, 1]
            w1.close()
            w2.close()

    run(main)


def _open_fake(
    router: StubRouter, listener: ListenerConfig, handshake: bytes = b"\x7f\xf1\x00\x00"
):
    conn = RawSocketConnection(router, listener)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def test_byte_by_byte_input(run):
    async def main():
        router = StubRouter()
        conn, transport = _open_fake(router, ListenerConfig("rawsocket"))
        stream = b"\x7f\xf1\x00\x00" + rs_frame(b"[1]") + rs_frame(b"p", 1) + rs_frame(b'["a",2]')
        for i in range(len(stream)):
            conn.data_received(stream[i : i + 1])
        assert transport.data == (
            b"\x7f\xf1\x00\x00" + rs_frame(b"[1]") + rs_frame(b"p", 2) + rs_frame(b'["a",2]')
        )
        assert router.sessions[0].received == [[1], ["a", 2]]

    run(main)


def test_one_write_per_read(run):
    async def main():
        router = StubRouter()
        conn, transport = _open_fake(router, ListenerConfig("rawsocket"))
        frames = b"".join(rs_frame(json.dumps([16, i]).encode()) for i in range(50))
        conn.data_received(b"\x7f\xf1\x00\x00" + frames + rs_frame(b"p", 1) + frames[:10])
        assert len(transport.writes) == 1
        assert transport.writes[0].startswith(b"\x7f\xf1\x00\x00")
        assert len(router.sessions[0].received) == 50
        conn.data_received(frames[10:])
        assert len(transport.writes) == 2
        assert len(router.sessions[0].received) == 100

    run(main)


def test_frame_of_exactly_2_24_bytes(run):
    """The X bit: a payload of exactly 2**24 bytes, in and out."""

    async def main():
        router = StubRouter()
        conn, transport = _open_fake(router, ListenerConfig("rawsocket", serializers=["msgpack"]))
        blob = b"\xab" * (2**24 - 6)  # fixarray(1) + bin32 header (5) + blob
        payload = msgpack.packb([blob])
        assert len(payload) == 2**24
        conn.data_received(b"\x7f\xf2\x00\x00" + b"\x08\x00\x00\x00")
        for i in range(0, len(payload), 1 << 20):
            conn.data_received(payload[i : i + (1 << 20)])
        assert router.sessions[0].received == [[blob]]
        out = transport.data
        assert out[:4] == b"\x7f\xf2\x00\x00"
        assert out[4:8] == b"\x08\x00\x00\x00"
        assert out[8:] == payload

    run(main)


@pytest.mark.parametrize(
    "header",
    [
        b"\x08\x00\x00\x01",  # X bit with nonzero length bits
        b"\x08\x00\x00\x00",  # 2**24 over a smaller limit
    ],
)
def test_bad_x_bit(run, header):
    async def main():
        router = StubRouter()
        conn, transport = _open_fake(router, ListenerConfig("rawsocket", max_message_size=2**20))
        conn.data_received(b"\x7f\xf1\x00\x00" + header)
        assert transport.closed
        assert router.sessions[0].received == []

    run(main)
