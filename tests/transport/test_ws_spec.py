"""WebSocket answers the RFC and the WAMP spec require, on both engines.

Neither websockets' sans-I/O core nor picows checks that a text message is
UTF-8 (websockets' asyncio layer does, when it decodes to ``str``); the
connection does it when a text message cannot be decoded: close 1007.  A
message of the wrong type for the negotiated serializer is a protocol
violation: ABORT, then the closing handshake.
"""

from __future__ import annotations

import asyncio
import json
import struct

import cbor2
import msgpack
import pytest

from fastwamp.config import ListenerConfig
from fastwamp.wamp import uris

from .conftest import real_router, running, wait_for
from .test_fairness import ws_frame


@pytest.fixture
def ws_listener(ws_impl: str) -> ListenerConfig:
    return ListenerConfig("websocket", port=0, implementation=ws_impl)


async def ws_open(port: int, subprotocol: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        ).encode()
    )
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert response.startswith(b"HTTP/1.1 101"), response
    return reader, writer


async def read_frames(reader: asyncio.StreamReader) -> list[tuple[int, bytes]]:
    """Unmasked server frames up to a CLOSE frame or the end of the stream:
    (opcode, payload)."""
    frames: list[tuple[int, bytes]] = []
    while not frames or frames[-1][0] != 0x8:
        try:
            head = await asyncio.wait_for(reader.readexactly(2), 5)
        except asyncio.IncompleteReadError:
            break
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        frames.append((opcode, await reader.readexactly(length)))
    return frames


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0]


@pytest.mark.parametrize("subprotocol", ["wamp.2.json", "wamp.2.msgpack"])
@pytest.mark.parametrize(
    "text",
    [b'["\xff"]', b'["\xc0\xaf"]', b'["\xed\xa0\x80"]', b"\xf4\x90\x80\x80"],
    ids=["ff", "overlong", "surrogate", "beyond-u10ffff"],
)
def test_invalid_utf8_text_closes_with_1007(run, ws_listener, subprotocol, text):
    async def main():
        async with running(ws_listener) as (server, router):
            reader, writer = await ws_open(server.listeners[0].port, subprotocol)
            writer.write(ws_frame(text, opcode=0x1))
            frames = await read_frames(reader)
            assert frames and frames[-1][0] == 0x8, frames
            assert close_code(frames[-1][1]) == 1007
            assert router.sessions[0].received == []
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            writer.close()

    run(main)


def test_invalid_utf8_across_fragments_closes_with_1007(run, ws_listener):
    async def main():
        async with running(ws_listener) as (server, router):
            reader, writer = await ws_open(server.listeners[0].port, "wamp.2.json")
            first = ws_frame(b'["\xe2\x82', opcode=0x1)
            writer.write(bytes((first[0] & 0x7F,)) + first[1:])  # FIN clear
            writer.write(ws_frame(b'("]', opcode=0x0))  # \xe2\x82 then "(": invalid
            frames = await read_frames(reader)
            assert close_code(frames[-1][1]) == 1007
            writer.close()

    run(main)


def test_valid_utf8_across_fragments_is_accepted(run, ws_listener):
    async def main():
        async with running(ws_listener) as (server, router):
            reader, writer = await ws_open(server.listeners[0].port, "wamp.2.json")
            first = ws_frame(b'["\xe2\x82', opcode=0x1)
            writer.write(bytes((first[0] & 0x7F,)) + first[1:])
            writer.write(ws_frame(b'\xac"]', opcode=0x0))  # the euro sign, split
            await wait_for(lambda: router.sessions and router.sessions[0].received)
            assert router.sessions[0].received == [["\u20ac"]]
            writer.close()

    run(main)


def test_text_that_is_utf8_but_not_json_is_a_protocol_violation(run, ws_listener):
    async def main():
        listener = ws_listener
        router = real_router(listener)
        async with running(listener, router=router) as (server, _):
            reader, writer = await ws_open(server.listeners[0].port, "wamp.2.json")
            writer.write(ws_frame("[1, «oops»".encode(), opcode=0x1))
            frames = await read_frames(reader)
            abort = json.loads(frames[0][1])
            assert abort[0] == 3 and abort[2] == uris.PROTOCOL_VIOLATION, abort
            assert close_code(frames[-1][1]) == 1000
            writer.close()

    run(main)


@pytest.mark.parametrize(
    "subprotocol, opcode, payload, decode",
    [
        ("wamp.2.json", 0x2, b'[1, "realm1", {}]', json.loads),
        ("wamp.2.msgpack", 0x1, b'[1, "realm1", {}]', msgpack.unpackb),
        ("wamp.2.cbor", 0x1, b'[1, "realm1", {}]', cbor2.loads),
    ],
    ids=["binary-on-json", "text-on-msgpack", "text-on-cbor"],
)
def test_wrong_frame_type_is_a_protocol_violation(run, ws_listener, subprotocol, opcode,
                                                   payload, decode):
    async def main():
        listener = ws_listener
        router = real_router(listener)
        async with running(listener, router=router) as (server, _):
            reader, writer = await ws_open(server.listeners[0].port, subprotocol)
            writer.write(ws_frame(payload, opcode=opcode))
            frames = await read_frames(reader)
            kind, data = frames[0]
            assert kind == (0x1 if subprotocol == "wamp.2.json" else 0x2)  # the right type
            abort = decode(data)
            assert abort[0] == 3 and abort[2] == uris.PROTOCOL_VIOLATION, abort
            assert "message on a " + subprotocol in abort[1]["message"]
            assert frames[-1][0] == 0x8 and close_code(frames[-1][1]) == 1000
            writer.close()

    run(main)
