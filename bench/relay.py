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
  PUBLISH (16) becomes EVENT (36), framed once and written to every subscriber
  but the publisher.  Other element positions stay as they were, which
  loadgen's sessions accept (they read only the request id of an INVOCATION and
  RESULT and the arguments of an EVENT), but a real WAMP client would not;
* output: everything one read produces goes to each receiver in one write;
* WebSocket: client frames are unmasked (XOR on Python ints), server frames
  are unmasked binary (msgpack) or text (json) frames, PING gets PONG, CLOSE is
  echoed and closes.

What it does not do: no procedure or topic lookup, no URI checks, no request
ids of its own (so one caller at a time: two callers' YIELDs cannot be told
apart), no validation of anything, no limits, fragmented WebSocket messages are
refused (the connection is closed), no UTF-8 check of text frames.

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
_ROUTER_ROLES = {"broker": {}, "dealer": {}}


def _json(msg: list) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


#: Per serializer: decode, encode, key of the type code in a payload, hot rewrites.
MSGPACK, JSON = 2, 1
CODECS = {
    MSGPACK: (msgpack.unpackb, msgpack.packb, {48: b"\x44", 70: b"\x32", 16: b"\x24"}),
    JSON: (json.loads, _json, {48: b"68", 70: b"50", 16: b"36"}),
}
CALL, YIELD, PUBLISH = 48, 70, 16


class Hub:
    """Who is the callee, the caller, the subscribers (one realm, everything in it)."""

    def __init__(self) -> None:
        self.callee: Peer | None = None
        self.caller: Peer | None = None
        self.subscribers: set[Peer] = set()
        self.ids = 0


class Peer(asyncio.Protocol):
    __slots__ = ("hub", "transport", "buf", "state", "ser", "ws", "out", "_consumed")

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.state = 0  # 0: transport handshake, 1: frames
        self.ser = MSGPACK
        self.ws = False
        self.out: list[bytes] = []
        self._consumed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        hub = self.hub
        hub.subscribers.discard(self)
        if hub.callee is self:
            hub.callee = None
        if hub.caller is self:
            hub.caller = None

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if self.state == 0 and not self._handshake(data):
            return
        if self.state == 2:
            data = data[self._consumed :]
            self.state = 1
        targets: list[Peer] = []
        pos = self._read_ws(data, targets) if self.ws else self._read_rawsocket(data, targets)
        if pos < len(data):
            self.buf = data[pos:]
        for peer in targets:  # one write per receiver per read
            if peer.out and peer.transport is not None:
                peer.transport.write(b"".join(peer.out))
                peer.out.clear()

    # -- transport handshakes -------------------------------------------------

    def _handshake(self, data: bytes) -> bool:
        """Answer the RawSocket or WebSocket opening; False while incomplete."""
        assert self.transport is not None
        if data[0] == 0x7F:
            if len(data) < 4:
                self.buf = data
                return False
            ser = data[1] & 0x0F
            if ser not in CODECS:
                self.transport.write(bytes((0x7F, 0x10, 0, 0)))  # serializer unsupported
                self.transport.close()
                return False
            self.ser = ser
            self.transport.write(bytes((0x7F, 0xF0 | ser, 0, 0)))
            self._consumed = 4
        else:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return False
            headers = {}
            for line in data[:end].decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
            chosen = next((p for p in offered if p in ("wamp.2.msgpack", "wamp.2.json")), None)
            key = headers.get("sec-websocket-key", "").encode()
            if chosen is None or not key:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
                return False
            self.ser = MSGPACK if chosen == "wamp.2.msgpack" else JSON
            self.ws = True
            accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
            self.transport.write(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {chosen}\r\n\r\n".encode()
            )
            self._consumed = end + 4
        self.state = 2
        return True

    # -- frames -------------------------------------------------------------------

    def _read_rawsocket(self, data: bytes, targets: list[Peer]) -> int:
        pos, n = 0, len(data)
        while n - pos >= 4:
            (word,) = _WORD.unpack_from(data, pos)
            end = pos + 4 + (word & 0xFFFFFF)
            if end > n:
                break
            if word >> 24 == 0:
                self._message(data[pos + 4 : end], targets)
            elif word >> 24 == 1:  # PING: PONG with the same payload
                self._put(data[pos + 4 : end], 2 << 24)
                targets.append(self)
            pos = end
        return pos

    def _read_ws(self, data: bytes, targets: list[Peer]) -> int:
        pos, n = 0, len(data)
        while n - pos >= 6:
            b0, b1 = data[pos], data[pos + 1] & 0x7F
            start = pos + 2
            if b1 == 126:
                (b1,) = struct.unpack_from("!H", data, start)
                start += 2
            elif b1 == 127:
                if n - pos < 14:
                    break
                (b1,) = struct.unpack_from("!Q", data, start)
                start += 8
            end = start + 4 + b1
            if end > n:
                break
            key = data[start : start + 4]
            raw = data[start + 4 : end]
            mask = int.from_bytes((key * (b1 // 4 + 1))[:b1], "big")
            payload = (int.from_bytes(raw, "big") ^ mask).to_bytes(b1, "big")
            pos = end
            if b0 in (0x81, 0x82):
                self._message(payload, targets)
            elif b0 == 0x89:
                self._put(payload, 0x8A)
                targets.append(self)
            else:  # CLOSE, or a fragment: echo a CLOSE and hang up
                assert self.transport is not None
                self.transport.write(b"\x88\x02" + (payload[:2] if b0 == 0x88 else b"\x03\xf0"))
                self.transport.close()
                return n
        return pos

    def _put(self, payload: bytes, kind: int | None = None) -> None:
        """Queue one framed payload for this connection (a data frame unless ``kind``)."""
        n = len(payload)
        if not self.ws:
            self.out.append(_WORD.pack((kind or 0) | n))
        else:
            first = kind or (0x82 if self.ser == MSGPACK else 0x81)
            if n < 126:
                self.out.append(bytes((first, n)))
            elif n < 65536:
                self.out.append(struct.pack("!BBH", first, 126, n))
            else:
                self.out.append(struct.pack("!BBQ", first, 127, n))
        self.out.append(payload)

    # -- messages -----------------------------------------------------------------

    def _message(self, payload: bytes, targets: list[Peer]) -> None:
        hub = self.hub
        ser = self.ser
        code = payload[1] if ser == MSGPACK else int(payload[1:3].rstrip(b","))
        if code == CALL:
            hub.caller = self
            peer = hub.callee
        elif code == YIELD:
            peer = hub.caller
        elif code == PUBLISH:
            framed: dict[int, list[bytes]] = {}
            for peer in hub.subscribers:
                if peer is not self:
                    out = framed.get(peer.ser + 4 * peer.ws)
                    if out is None:
                        peer._put(_rewrite(payload, ser, peer.ser, code))
                        framed[peer.ser + 4 * peer.ws] = peer.out[-2:]
                    else:
                        peer.out += out
                    targets.append(peer)
            return
        else:
            self._control(CODECS[ser][0](payload), targets)
            return
        if peer is not None:
            peer._put(_rewrite(payload, ser, peer.ser, code))
            targets.append(peer)

    def _control(self, msg: list, targets: list[Peer]) -> None:
        hub = self.hub
        hub.ids += 1
        code = msg[0]
        if code == 1:  # HELLO
            reply = [2, hub.ids, {"roles": _ROUTER_ROLES}]
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
        self._put(CODECS[self.ser][1](reply))
        targets.append(self)


def _rewrite(payload: bytes, ser: int, out_ser: int, code: int) -> bytes:
    """The payload with its type code replaced (fixed offset); same serializer only."""
    if ser != out_ser:  # not a relay's job: the benchmark never mixes serializers
        raise ValueError("the relay does not translate between serializers")
    if ser == MSGPACK:
        return payload[:1] + CODECS[MSGPACK][2][code] + payload[2:]
    return b"[" + CODECS[JSON][2][code] + payload[3:]


async def serve(host: str, port: int) -> None:
    hub = Hub()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Peer(hub), host, port, backlog=4096)
    print(f"relay: listening on {server.sockets[0].getsockname()[1]}", flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
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
