"""The floor: a bare relay on uvloop that pairs loadgen's caller with its callee.

It is what a Python process on uvloop needs at least per routed message, the
reference ``bench/e2e.py`` shows beside fastwamp and Crossbar.  It is NOT a WAMP
router.  What it does:

* one TCP port for both wires: a first byte 0x7F starts a RawSocket handshake
  (json or msgpack, answered with the same serializer and a 16 MiB limit),
  anything else is read as an HTTP WebSocket upgrade (subprotocol
  ``wamp.2.msgpack`` or ``wamp.2.json``, the first of them the client offers);
* set-up messages are decoded and answered with constants: HELLO gets a
  WELCOME, REGISTER a REGISTERED, SUBSCRIBE a SUBSCRIBED, GOODBYE a GOODBYE;
  the connection that registered last is "the callee", every connection that
  subscribed is "a subscriber";
* the hot messages are not decoded.  Their type code sits at a fixed offset
  (byte 1 of the payload: the msgpack array's first element, or the digits after
  ``[`` in JSON), and the relay rewrites only that: CALL (48) becomes
  INVOCATION (68) and goes to the callee, and the connection it came from
  becomes "the caller"; YIELD (70) becomes RESULT (50) and goes to the caller;
  PUBLISH (16) becomes EVENT (36), framed once and queued for every subscriber
  but the publisher.  Other elements stay as they were, which loadgen's
  sessions accept (they read only the request id of an INVOCATION and a RESULT
  and the arguments of an EVENT), but a real WAMP client would not;
* output: what one turn of the event loop produces for a receiver goes out in
  one write at the end of that turn (``call_soon``), as fastwamp does;
* WebSocket: client frames are unmasked (XOR on Python ints), server frames are
  unmasked binary (msgpack) or text (json) frames, PING gets PONG, CLOSE is
  echoed and closes.

What it does not do: no procedure or topic lookup, no URI checks, no request
ids of its own (so one caller at a time: two callers' YIELDs cannot be told
apart), no validation of anything, no limits, no back-pressure, fragmented
WebSocket messages are refused (the connection is closed), no UTF-8 check of
text frames, no whitespace in JSON before the type code.

    python bench/relay.py --port 0        # prints "relay: listening on PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import struct

import msgpack
import uvloop

_WORD = struct.Struct("!I")
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MSGPACK, JSON = 2, 1  # RawSocket serializer ids
CALL, YIELD, PUBLISH = 48, 70, 16
#: Hot type code -> what replaces it: the msgpack byte, the JSON digits.
REWRITE = {
    MSGPACK: {48: b"\x44", 70: b"\x32", 16: b"\x24"},
    JSON: {48: b"68", 70: b"50", 16: b"36"},
}


def _json(msg: list) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


DECODE = {MSGPACK: msgpack.unpackb, JSON: json.loads}
ENCODE = {MSGPACK: msgpack.packb, JSON: _json}


class Hub:
    """Who is the callee, the caller, the subscribers; output queued in this turn."""

    def __init__(self) -> None:
        self.callee: Peer | None = None
        self.caller: Peer | None = None
        self.subscribers: set[Peer] = set()
        self.ids = 0
        self.dirty: list[Peer] = []

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for peer in dirty:
            if peer.transport is not None:
                peer.transport.write(b"".join(peer.out))
            peer.out.clear()


class Peer(asyncio.Protocol):
    __slots__ = ("hub", "transport", "buf", "open", "ser", "ws", "out")

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.open = False  # transport handshake done
        self.ser = MSGPACK
        self.ws = False
        self.out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        hub = self.hub
        hub.subscribers.discard(self)
        if hub.callee is self:
            hub.callee = None
        if hub.caller is self:
            hub.caller = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.open:
            start = self._handshake(data)
            if start is None:
                return
            data = data[start:]
        pos = self._read_ws(data) if self.ws else self._read_rawsocket(data)
        if pos < len(data):
            self.buf = data[pos:]

    def _handshake(self, data: bytes) -> int | None:
        """Answer the RawSocket or WebSocket opening; where frames start, or None."""
        transport = self.transport
        assert transport is not None
        if data[0] == 0x7F:
            if len(data) < 4:
                self.buf = data
                return None
            self.ser = data[1] & 0x0F
            if self.ser not in DECODE:
                transport.write(bytes((0x7F, 0x10, 0, 0)))  # serializer unsupported
                transport.close()
                return None
            transport.write(bytes((0x7F, 0xF0 | self.ser, 0, 0)))
            self.open = True
            return 4
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buf = data
            return None
        headers = {}
        for line in data[:end].decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        chosen = next((p for p in offered if p in ("wamp.2.msgpack", "wamp.2.json")), None)
        key = headers.get("sec-websocket-key", "").encode()
        if chosen is None or not key:
            transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            transport.close()
            return None
        self.ser = MSGPACK if chosen == "wamp.2.msgpack" else JSON
        self.ws = self.open = True
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
        transport.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {chosen}\r\n\r\n".encode()
        )
        return end + 4

    def _read_rawsocket(self, data: bytes) -> int:
        pos, n = 0, len(data)
        while n - pos >= 4:
            (word,) = _WORD.unpack_from(data, pos)
            end = pos + 4 + (word & 0xFFFFFF)
            if end > n:
                break
            if word >> 24 == 0:
                self._message(data[pos + 4 : end])
            elif word >> 24 == 1:  # PING: PONG with the same payload
                self._put(data[pos + 4 : end], 2 << 24)
            pos = end
        return pos

    def _read_ws(self, data: bytes) -> int:
        pos, n = 0, len(data)
        while n - pos >= 6:
            b0, length = data[pos], data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                (length,) = struct.unpack_from("!H", data, start)
                start += 2
            elif length == 127:
                if n - pos < 14:
                    break
                (length,) = struct.unpack_from("!Q", data, start)
                start += 8
            end = start + 4 + length
            if end > n:
                break
            key = data[start : start + 4]
            mask = int.from_bytes((key * (length // 4 + 1))[:length], "big")
            payload = (int.from_bytes(data[start + 4 : end], "big") ^ mask).to_bytes(length, "big")
            pos = end
            if b0 == 0x81 or b0 == 0x82:
                self._message(payload)
            elif b0 == 0x89:
                self._put(payload, 0x8A)
            else:  # CLOSE, or a fragment: echo a CLOSE and hang up
                assert self.transport is not None
                self.transport.write(b"\x88\x02" + (payload[:2] if b0 == 0x88 else b"\x03\xf0"))
                self.transport.close()
                return n
        return pos

    def _put(self, payload: bytes, kind: int = 0) -> None:
        """Queue one framed payload (a data frame unless ``kind``) for the end of the turn."""
        hub = self.hub
        if not self.out:
            if not hub.dirty:
                asyncio.get_running_loop().call_soon(hub.flush)
            hub.dirty.append(self)
        n = len(payload)
        if not self.ws:
            self.out.append(_WORD.pack(kind | n))
        else:
            first = kind or (0x82 if self.ser == MSGPACK else 0x81)
            if n < 126:
                self.out.append(bytes((first, n)))
            elif n < 65536:
                self.out.append(struct.pack("!BBH", first, 126, n))
            else:
                self.out.append(struct.pack("!BBQ", first, 127, n))
        self.out.append(payload)

    def _message(self, payload: bytes) -> None:
        hub, ser = self.hub, self.ser
        code = payload[1] if ser == MSGPACK else int(payload[1:3].rstrip(b","))
        if code == CALL:
            hub.caller = self
            peer = hub.callee
        elif code == YIELD:
            peer = hub.caller
        elif code == PUBLISH:
            event = _rewrite(payload, ser, code)
            for peer in hub.subscribers:
                if peer is not self:
                    if peer.ser != ser:  # not a relay's job
                        raise ValueError("the relay does not translate between serializers")
                    peer._put(event)
            return
        else:
            self._control(DECODE[ser](payload))
            return
        if peer is not None:
            if peer.ser != ser:
                raise ValueError("the relay does not translate between serializers")
            peer._put(_rewrite(payload, ser, code))

    def _control(self, msg: list) -> None:
        hub = self.hub
        hub.ids += 1
        code = msg[0]
        if code == 1:  # HELLO
            reply = [2, hub.ids, {"roles": {"broker": {}, "dealer": {}}}]
        elif code == 64:  # REGISTER
            hub.callee = self
            reply = [65, msg[1], hub.ids]
        elif code == 32:  # SUBSCRIBE
            hub.subscribers.add(self)
            reply = [33, msg[1], hub.ids]
        elif code == 6:  # GOODBYE
            reply = [6, {}, "wamp.close.goodbye_and_out"]
        else:
            return
        self._put(ENCODE[self.ser](reply))


def _rewrite(payload: bytes, ser: int, code: int) -> bytes:
    """The payload with its type code replaced (a fixed offset)."""
    if ser == MSGPACK:
        return payload[:1] + REWRITE[MSGPACK][code] + payload[2:]
    return b"[" + REWRITE[JSON][code] + payload[3:]


async def serve(host: str, port: int) -> None:
    hub = Hub()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Peer(hub), host, port, backlog=4096)
    print(f"relay: listening on {server.sockets[0].getsockname()[1]}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
