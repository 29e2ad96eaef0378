"""Bad input against a real router process: each case gets the spec's answer and a log
line, the router stays up, and a well-behaved Autobahn caller/callee pair on the same
router keeps working after every case."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
import pytest

from .abclient import RS_MSGPACK, WS_JSON, async_test, connect
from .conftest import RouterEndpoints, RouterProcess

pytestmark = pytest.mark.interop

HELLO = [1, "realm1", {"roles": {"caller": {}, "callee": {}, "publisher": {}}}]


class RawSocketClient:
    """A RawSocket + MessagePack peer that can say anything, malformed or not."""

    def __init__(self, endpoints: RouterEndpoints) -> None:
        self.host, self.port = endpoints.rs_host_port

    async def open(self, handshake: bytes = b"\x7f\xf2\x00\x00") -> bytes:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(handshake)
        return await self.reader.read(4)

    def frame(self, payload: bytes, msg_type: int = 0) -> None:
        self.writer.write(bytes([msg_type]) + len(payload).to_bytes(3, "big") + payload)

    def send(self, msg: object) -> None:
        self.frame(msgpack.packb(msg))

    async def recv(self) -> list | None:
        """The next message, or None once the router closed the connection."""
        try:
            header = await asyncio.wait_for(self.reader.readexactly(4), 5)
            payload = await asyncio.wait_for(
                self.reader.readexactly(int.from_bytes(header[1:], "big")), 5
            )
        except asyncio.IncompleteReadError:
            return None
        return msgpack.unpackb(payload)

    async def closed(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(), 5) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.writer.transport.abort()


class WebSocketClient:
    """A bare WebSocket peer (handshake and masked frames by hand)."""

    def __init__(self, endpoints: RouterEndpoints) -> None:
        self.host, self.port = endpoints.ws_host_port

    async def open(self, protocol: str | None = "wamp.2.json") -> int:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /ws HTTP/1.1", f"Host: {self.host}:{self.port}", "Upgrade: websocket",
            "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
        ]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        return int(response.split(b" ", 2)[1])

    def send_text(self, data: bytes) -> None:
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big"))
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def frames(self) -> list[tuple[int, bytes]]:
        """Every frame the router sends until it closes the connection."""
        out = []
        while True:
            try:
                head = await asyncio.wait_for(self.reader.readexactly(2), 5)
            except asyncio.IncompleteReadError:
                return out
            n = head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            out.append((head[0] & 0x0F, await self.reader.readexactly(n)))
            if head[0] & 0x0F == 8:  # close
                return out


async def _rs_abort_reason(endpoints: RouterEndpoints, *msgs: object, hello: bool = True) -> str:
    client = RawSocketClient(endpoints)
    await client.open()
    if hello:
        client.send(HELLO)
        assert (await client.recv())[0] == 2
    for msg in msgs:
        client.send(msg)
    reply = await client.recv()
    assert reply is not None and reply[0] == 3, reply  # ABORT
    assert await client.closed()
    return reply[2]


async def garbage_bytes(endpoints: RouterEndpoints) -> None:
    client = RawSocketClient(endpoints)
    await client.open()
    client.frame(b"\xc1\xc1 this is not msgpack")
    reply = await client.recv()
    assert reply[0] == 3 and reply[2] == "wamp.error.protocol_violation"
    assert await client.closed()


async def non_hello_first(endpoints: RouterEndpoints) -> None:
    reason = await _rs_abort_reason(endpoints, [48, 1, {}, "com.x"], hello=False)
    assert reason == "wamp.error.protocol_violation"


async def unknown_message_type(endpoints: RouterEndpoints) -> None:
    assert await _rs_abort_reason(endpoints, [999, 1]) == "wamp.error.protocol_violation"


async def malformed_message(endpoints: RouterEndpoints) -> None:
    reason = await _rs_abort_reason(endpoints, [48, "one", {}, "com.x"])
    assert reason == "wamp.error.protocol_violation"


async def second_hello(endpoints: RouterEndpoints) -> None:
    assert await _rs_abort_reason(endpoints, HELLO) == "wamp.error.protocol_violation"


async def unknown_realm(endpoints: RouterEndpoints) -> None:
    client = RawSocketClient(endpoints)
    await client.open()
    client.send([1, "no.such.realm", HELLO[2]])
    reply = await client.recv()
    assert reply[0] == 3 and reply[2] == "wamp.error.no_such_realm"


async def invalid_uri(endpoints: RouterEndpoints) -> None:
    client = RawSocketClient(endpoints)
    await client.open()
    client.send(HELLO)
    await client.recv()
    client.send([48, 1, {}, "com..no such uri"])
    reply = await client.recv()
    assert reply[0] == 8 and reply[4] == "wamp.error.invalid_uri"
    client.send([48, 2, {}, "wamp.session.count"])  # the session is still fine
    assert (await client.recv())[0] == 50
    client.close()


async def oversize_frame(endpoints: RouterEndpoints) -> None:
    # The listener accepts 16 MiB, the most RawSocket can express: go over it on WebSocket.
    client = WebSocketClient(endpoints)
    assert await client.open() == 101
    client.writer.write(b"\x82\xff" + (32 * 1024 * 1024).to_bytes(8, "big") + os.urandom(4))
    frames = await client.frames()
    assert frames and frames[-1][0] == 8
    assert int.from_bytes(frames[-1][1][:2], "big") == 1009  # message too big


async def closed_mid_frame(endpoints: RouterEndpoints) -> None:
    client = RawSocketClient(endpoints)
    await client.open()
    client.send(HELLO)
    await client.recv()
    client.writer.write(b"\x00\x00\x01\x00" + b"\x93" * 10)  # 10 of 256 bytes
    await client.writer.drain()
    client.close()


async def bad_handshake(endpoints: RouterEndpoints) -> None:
    client = RawSocketClient(endpoints)
    assert await client.open(b"\x7f\xf9\x00\x00") == b"\x7f\x10\x00\x00"  # serializer 9
    client = RawSocketClient(endpoints)
    await client.open(b"GET / HTTP/1.1\r\n\r\n")
    assert await client.closed()


async def flood_then_vanish(endpoints: RouterEndpoints) -> None:
    client = RawSocketClient(endpoints)
    await client.open()
    client.send(HELLO)
    await client.recv()
    for i in range(1, 5001):
        client.send([16, i, {}, "com.flood.nobody", [i]])
    client.send([48, 5001, {}, "com.flood.nothing"])
    await client.writer.drain()
    client.close()


async def websocket_garbage(endpoints: RouterEndpoints) -> None:
    client = WebSocketClient(endpoints)
    assert await client.open() == 101
    client.send_text(b'[1, "realm1", {"roles": {"caller": {}}}]')
    client.send_text(b"{{{ not json")
    frames = await client.frames()
    texts = [data for opcode, data in frames if opcode == 1]
    assert b"wamp.error.protocol_violation" in texts[-1]
    assert frames[-1][0] == 8


async def websocket_without_wamp(endpoints: RouterEndpoints) -> None:
    assert await WebSocketClient(endpoints).open(protocol="chat") == 400
    assert await WebSocketClient(endpoints).open(protocol=None) == 400


CASES: dict[str, Callable[[RouterEndpoints], Awaitable[None]]] = {
    "garbage_bytes": garbage_bytes,
    "non_hello_first": non_hello_first,
    "unknown_message_type": unknown_message_type,
    "malformed_message": malformed_message,
    "second_hello": second_hello,
    "unknown_realm": unknown_realm,
    "invalid_uri": invalid_uri,
    "oversize_frame": oversize_frame,
    "closed_mid_frame": closed_mid_frame,
    "bad_handshake": bad_handshake,
    "flood_then_vanish": flood_then_vanish,
    "websocket_garbage": websocket_garbage,
    "websocket_without_wamp": websocket_without_wamp,
}


@pytest.fixture(scope="module")
def bad_input_router(tmp_path_factory: pytest.TempPathFactory):
    rp = RouterProcess(tmp_path_factory.mktemp("bad-input"), "bad-input")
    rp.start()
    yield rp
    rp.stop(check=True)


@pytest.mark.parametrize("case", list(CASES))
@async_test()
async def test_bad_input_is_answered_logged_and_harmless(
    bad_input_router: RouterProcess, case: str
) -> None:
    rp = bad_input_router
    endpoints = rp.endpoints
    assert endpoints is not None
    callee = await connect(endpoints, RS_MSGPACK)
    caller = await connect(endpoints, WS_JSON)
    await callee.register(lambda x: x * 2, f"com.bad_input.{case}")
    assert await caller.call(f"com.bad_input.{case}", 1) == 2
    log_before = len(Path(rp.stderr_path).read_text().splitlines())

    await CASES[case](endpoints)

    # The router is up, and the sessions that did nothing wrong still work.
    assert rp.running
    for i in range(3):
        assert await caller.call(f"com.bad_input.{case}", i) == 2 * i
    # ... and the bad input left a line in the log.
    for _ in range(50):
        if len(Path(rp.stderr_path).read_text().splitlines()) > log_before:
            break
        await asyncio.sleep(0.05)
    assert len(Path(rp.stderr_path).read_text().splitlines()) > log_before, (
        f"no log line for {case}"
    )
    await callee.leave()
    await caller.leave()
