"""A small, fast WAMP load generator: RawSocket or WebSocket, MessagePack, asyncio protocols.

It is deliberately not built on Autobahn: a load generator has to cost less CPU
per message than the router it measures.  Each WAMP session is one
``asyncio.Protocol``; frames are cut out of the bytes ``data_received`` got, and
everything a session has to send while handling one read goes out in a single
``write``.  Hot messages (CALL, YIELD, PUBLISH) are encoded from pre-packed
MessagePack pieces.

The transport (:class:`Wire`) is RawSocket (default) or WebSocket: a minimal
client side of RFC 6455, subprotocol ``wamp.2.msgpack``, binary frames masked
with a random key per connection (the XOR runs on Python ints, a few hundred
nanoseconds per small message), PINGs answered, a CLOSE frame sent on close.

Every role runs in its own process (``multiprocessing``, fork), so the router,
not a client's event loop, is the bottleneck as far as two cores allow:

* caller processes: one session each, pipelined with a window of outstanding CALLs;
* callee processes: one or more sessions, each answering INVOCATION with YIELD;
* subscriber processes: many sessions each, recording publish-to-receive latency
  from a timestamp in the event payload;
* one publisher process, gated by subscriber progress (see ``PublisherSession``).

The parent (``run_scenario``) starts the workers, waits until every session is
set up, and gives them one measurement window in ``time.monotonic()`` (one clock
for all processes on Linux): warm-up first, then ``duration`` seconds in which
completions are counted.  Everything connects to 127.0.0.1 only.

Stand-alone use against a router that is already running::

    python bench/loadgen.py --port 8081 --scenario rpc --duration 5
    python bench/loadgen.py --transport websocket --port 8080 --path /ws --scenario rpc

``bench/e2e.py`` starts fastwamp and Crossbar itself and measures router CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import msgpack
import psutil

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a fastwamp dependency on Linux
    uvloop = None  # type: ignore[assignment]

# WAMP message codes used here.
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

REALM = "realm1"
RPC_PROCEDURE = "bench.rpc.echo"
PREFIX_REGISTRATION = "bench.prefix."
PREFIX_PROCEDURE = "bench.prefix.proc"
#: (FASTWAMP_BENCH_TOPIC: another topic, e.g. one per load generator against a cluster)
TOPIC = os.environ.get("FASTWAMP_BENCH_TOPIC", "bench.pubsub.topic")

_WORD = struct.Struct("!I")
_pack_word = _WORD.pack
_unpack_word = _WORD.unpack_from
_U64 = struct.Struct("!Q")
_packb = msgpack.packb
_unpackb = msgpack.unpackb

#: RawSocket client handshake: max receive length 2**(9+15) = 16 MiB, serializer 2 (msgpack).
HANDSHAKE = bytes((0x7F, 0xF2, 0, 0))
#: RawSocket serializer ids and WebSocket subprotocols.
RAWSOCKET_SERIALIZERS = {"json": 1, "msgpack": 2}
WS_SUBPROTOCOLS = {"json": "wamp.2.json", "msgpack": "wamp.2.msgpack"}


def _json_dumps(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def _json_int(value: int) -> bytes:
    return b"%d" % value


class Codec:
    """One serializer: whole messages, and the pieces hot messages are built from."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "msgpack":
            self.encode: Callable[[Any], bytes] = _packb
            self.decode: Callable[[bytes], Any] = _unpackb
            #: Encodes one int (request id, sequence, timestamp) as an array element.
            self.int: Callable[[int], bytes] = _packb
        elif name == "json":
            self.encode = _json_dumps
            self.decode = json.loads
            self.int = _json_int
        else:
            raise ValueError(f"unknown serializer {name!r}")

    def head(self, length: int, code: int) -> bytes:
        """The bytes before element 1 of an array of ``length`` starting with ``code``."""
        return bytes((0x90 | length, code)) if self.name == "msgpack" else b"[%d," % code

    def tail(self, *elements: Any) -> bytes:
        """Encoded ``elements`` to follow element 1 (the request id) up to the end."""
        if self.name == "msgpack":
            return b"".join(_packb(e) for e in elements)
        return b"".join(b"," + _json_dumps(e) for e in elements) + b"]"

    def sep(self) -> bytes:
        """What goes between two elements (nothing in msgpack)."""
        return b"" if self.name == "msgpack" else b","


_CODECS = {name: Codec(name) for name in ("msgpack", "json")}
#: Small constant payloads (args) for calls and results.
CALL_ARGS = ["hello", 42]
RESULT_ARGS = ["ok"]


def records_payload(size: int) -> list[Any]:
    """Args of about ``size`` bytes (MessagePack) of records, as an API returns them:
    the ``payload_bytes`` of a scenario, each way."""
    records: list[dict[str, Any]] = []
    packed = 0
    i = 0
    while packed < size:
        record = {"id": 100_000 + i, "name": f"user-{i:06d}", "score": i / 7,
                  "tags": ["alpha", "beta"], "active": i % 2 == 0}
        records.append(record)
        packed += len(msgpack.packb(record))
        i += 1
    return [records]


class WampError(Exception):
    """A WAMP ERROR or ABORT answering one of our setup requests."""


@dataclass
class Wire:
    """How sessions reach the router: ``rawsocket``, or ``websocket`` on ``path``;
    the serializer (``msgpack`` or ``json``); and the write pattern:

    * ``batch``: everything a session has to send while handling one read goes
      out in one ``write`` (a pipelining client);
    * ``each``: every message is written as soon as it is made, one ``write``
      per CALL, YIELD or PUBLISH (as Autobahn|Python and wampy.js do).
    """

    transport: str = "rawsocket"
    path: str = "/ws"
    serializer: str = "msgpack"
    write: str = "batch"
    #: Connect over TLS (the router's certificate is not verified: loopback only).
    tls: bool = False

    def label(self) -> str:
        short = {"rawsocket": "rs", "websocket": "ws"}.get(self.transport, self.transport)
        return f"{short}{'+tls' if self.tls else ''}/{self.serializer}/{self.write}"


_TLS_CONTEXT: Any = None


def client_tls_context() -> Any:
    """The load generator's TLS client context (no certificate verification: it only
    measures a router on this machine)."""
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        import ssl

        _TLS_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _TLS_CONTEXT.check_hostname = False
        _TLS_CONTEXT.verify_mode = ssl.CERT_NONE
    return _TLS_CONTEXT


#: The wire of the sessions of this process (set by the worker from its spec).
WIRE = Wire()

#: WebSocket: the subprotocol offered, and RFC 6455's handshake GUID.
WS_SUBPROTOCOL = "wamp.2.msgpack"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_WS_HEAD16 = struct.Struct("!BBH")
_WS_HEAD64 = struct.Struct("!BBQ")
_U16 = struct.Struct("!H")


def ws_upgrade_request(
    host: str, port: int, path: str, subprotocol: str = WS_SUBPROTOCOL
) -> tuple[bytes, bytes]:
    """A WebSocket opening handshake offering ``subprotocol`` (default
    ``wamp.2.msgpack``), and the ``Sec-WebSocket-Accept`` value the server must
    answer with."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()
    return request, accept


def ws_check_response(head: bytes, accept: bytes, subprotocol: str = WS_SUBPROTOCOL) -> str | None:
    """Why the HTTP response ``head`` (up to the blank line) refuses the upgrade; None if OK."""
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 101"):
        return f"WebSocket upgrade refused: {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("sec-websocket-accept", "").encode() != accept:
        return "WebSocket upgrade: wrong Sec-WebSocket-Accept"
    if headers.get("sec-websocket-protocol") != subprotocol:
        return f"WebSocket upgrade: subprotocol {headers.get('sec-websocket-protocol')!r}"
    return None


# ---------------------------------------------------------------------------
# Sessions


class WampSession(asyncio.Protocol):
    """One WAMP session over RawSocket or WebSocket (``WIRE``, default RawSocket,
    msgpack, batched writes): handshake, HELLO/WELCOME, setup requests.

    Subclasses override the hot-path handlers (``on_result``, ``on_invocation``,
    ``on_event``) and ``after_batch``.  ``_put(payload)`` queues (``batch``) or
    writes (``each``) one encoded message; ``flush()`` writes what is queued.
    ``codec`` encodes and decodes messages in the wire's serializer.
    """

    def __init__(self, realm: str = REALM) -> None:
        self.realm = realm
        self.transport: asyncio.Transport | None = None
        self.session_id = 0
        self._buf = b""
        self._handshaken = False
        self._out: list[bytes] = []
        #: Appends one encoded message, framed for the wire, to the output.
        self._put: Callable[[bytes], None]
        self.codec = _CODECS[WIRE.serializer]
        self._decode = self.codec.decode
        self._each = WIRE.write == "each"
        self._websocket = WIRE.transport == "websocket"
        if self._websocket:
            self._put = self._put_websocket
            self._mask_key = os.urandom(4)
            # Per payload length: the frame header (with the key) and the mask as an int.
            self._ws_frames: dict[int, tuple[bytes, int]] = {}
            self._ws_accept = b""
            self._ws_close_sent = False
            self._ws_opcode = 0x82 if WIRE.serializer == "msgpack" else 0x81
        else:
            self._put = self._put_rawsocket_each if self._each else self._put_rawsocket
        self._request = 0
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        loop = asyncio.get_running_loop()
        self._welcome: asyncio.Future[list[Any]] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._handlers: dict[int, Callable[[list[Any]], None]] = {
            RESULT: self.on_result,
            INVOCATION: self.on_invocation,
            EVENT: self.on_event,
            WELCOME: self._on_welcome,
            ABORT: self._on_abort,
            GOODBYE: self._on_goodbye,
            ERROR: self.on_error,
            REGISTERED: self._on_reply,
            SUBSCRIBED: self._on_reply,
            PUBLISHED: self._on_reply,
        }

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        if self._websocket:
            host, port = transport.get_extra_info("peername")[:2]
            request, self._ws_accept = ws_upgrade_request(
                host, port, WIRE.path, WS_SUBPROTOCOLS[WIRE.serializer]
            )
            transport.write(request)  # type: ignore[attr-defined]
        else:
            handshake = bytes((0x7F, 0xF0 | RAWSOCKET_SERIALIZERS[WIRE.serializer], 0, 0))
            transport.write(handshake)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        err = exc or ConnectionError("connection closed by the router")
        if not self._welcome.done():
            self._welcome.set_exception(err)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if self._websocket:
            self._read_websocket(data)
        else:
            self._read_rawsocket(data)

    def _read_rawsocket(self, data: bytes) -> None:
        pos = 0
        n = len(data)
        if not self._handshaken:
            if n < 4:
                self._buf = data
                return
            if data[0] != 0x7F or data[1] & 0x0F != RAWSOCKET_SERIALIZERS[WIRE.serializer]:
                self._fail(f"RawSocket handshake refused: {data[:4].hex()}")
                return
            self._handshaken = True
            self._send([HELLO, self.realm, {"roles": _ROLES}])
            pos = 4
        self.before_batch()
        handlers = self._handlers
        decode = self._decode
        while n - pos >= 4:
            (word,) = _unpack_word(data, pos)
            end = pos + 4 + (word & 0xFFFFFF)
            if end > n:
                break
            kind = word >> 24
            if kind == 0:
                msg = decode(data[pos + 4 : end])
                handler = handlers.get(msg[0])
                if handler is not None:
                    handler(msg)
            elif kind == 1:  # PING: answer with a PONG carrying the same payload
                self._out.append(_pack_word((2 << 24) | (end - pos - 4)) + data[pos + 4 : end])
                if self._each:
                    self.flush()
            elif kind != 2:
                self._fail(f"bad RawSocket frame header {word:#010x}")
                return
            pos = end
        if pos < n:
            self._buf = data[pos:]
        self.after_batch()

    def _read_websocket(self, data: bytes) -> None:
        pos = 0
        n = len(data)
        if not self._handshaken:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buf = data
                return
            refused = ws_check_response(
                data[:end], self._ws_accept, WS_SUBPROTOCOLS[WIRE.serializer]
            )
            if refused:
                self._fail(refused)
                return
            self._handshaken = True
            self._send([HELLO, self.realm, {"roles": _ROLES}])
            pos = end + 4
        self.before_batch()
        handlers = self._handlers
        decode = self._decode
        while n - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1]  # server frames are not masked: the MASK bit is 0
            start = pos + 2
            if length >= 126:
                if length == 126:
                    if n - pos < 4:
                        break
                    (length,) = _U16.unpack_from(data, start)
                    start += 2
                elif length == 127:
                    if n - pos < 10:
                        break
                    (length,) = _U64.unpack_from(data, start)
                    start += 8
                else:
                    self._fail("masked frame from the server")
                    return
            end = start + length
            if end > n:
                break
            if b0 == 0x82 or b0 == 0x81:  # final binary or text frame: one message
                msg = decode(data[start:end])
                handler = handlers.get(msg[0])
                if handler is not None:
                    handler(msg)
            elif b0 == 0x89:  # PING: answer with a PONG carrying the same payload
                self._put_websocket(data[start:end], 0x8A)
            elif b0 == 0x88:  # CLOSE: echo its code, then end the connection
                if not self._ws_close_sent:
                    self._ws_close_sent = True
                    self._put_websocket(data[start : start + 2], 0x88)
                    self.flush()
                self.close()
                return
            elif b0 != 0x8A:
                self._fail(f"unexpected WebSocket frame (first byte {b0:#04x})")
                return
            pos = end
        if pos < n:
            self._buf = data[pos:]
        self.after_batch()

    # -- sending ------------------------------------------------------------

    def _send(self, msg: list[Any]) -> None:
        self._put(self.codec.encode(msg))

    def _put_rawsocket(self, payload: bytes) -> None:
        self._out.append(_pack_word(len(payload)))
        self._out.append(payload)

    def _put_rawsocket_each(self, payload: bytes) -> None:
        self.transport.write(_pack_word(len(payload)) + payload)  # type: ignore[union-attr]

    def _put_websocket(self, payload: bytes, first: int | None = None) -> None:
        """Append a masked frame carrying ``payload`` (default: final, binary for
        msgpack, text for json), or write it at once with ``each``."""
        n = len(payload)
        data = first is None or first == self._ws_opcode
        if first is None:
            first = self._ws_opcode
        frame = self._ws_frames.get(n) if data else None
        if frame is None:
            key = self._mask_key
            if n < 126:
                head = bytes((first, 0x80 | n)) + key
            elif n < 65536:
                head = _WS_HEAD16.pack(first, 0xFE, n) + key
            else:
                head = _WS_HEAD64.pack(first, 0xFF, n) + key
            frame = (head, int.from_bytes((key * (n // 4 + 1))[:n], "big"))
            if data and len(self._ws_frames) < 4096:
                self._ws_frames[n] = frame
        head, mask = frame
        if self._each:
            self.transport.write(  # type: ignore[union-attr]
                head + (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big")
            )
            return
        self._out.append(head)
        self._out.append((int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big"))

    def flush(self) -> None:
        out = self._out
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            out.clear()

    def next_request(self) -> int:
        self._request += 1
        return self._request

    def close(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._websocket and self._handshaken and not self._ws_close_sent:
            self._ws_close_sent = True
            self._out.clear()
            self._put_websocket(b"\x03\xe8", 0x88)  # CLOSE, 1000 normal closure
            self.flush()
        transport.close()

    def _fail(self, reason: str) -> None:
        if not self._welcome.done():
            self._welcome.set_exception(WampError(reason))
        self.close()

    # -- setup requests -----------------------------------------------------

    async def joined(self) -> None:
        await self._welcome

    def request(self, msg_type: int, *rest: Any) -> asyncio.Future[list[Any]]:
        """Queue a REGISTER/SUBSCRIBE/PUBLISH(acknowledged); the caller flushes."""
        request = self.next_request()
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[request] = fut
        self._send([msg_type, request, *rest])
        return fut

    async def register(self, procedure: str, options: dict[str, Any] | None = None) -> int:
        fut = self.request(REGISTER, options or {}, procedure)
        self.flush()
        return (await fut)[2]

    async def subscribe(self, topic: str, options: dict[str, Any] | None = None) -> int:
        fut = self.request(SUBSCRIBE, options or {}, topic)
        self.flush()
        return (await fut)[2]

    # -- handlers -----------------------------------------------------------

    def _on_welcome(self, msg: list[Any]) -> None:
        self.session_id = msg[1]
        if not self._welcome.done():
            self._welcome.set_result(msg)

    def _on_abort(self, msg: list[Any]) -> None:
        self._fail(f"ABORT {msg[2]} {msg[1]}")

    def _on_goodbye(self, msg: list[Any]) -> None:
        self.close()

    def _on_reply(self, msg: list[Any]) -> None:
        fut = self._pending.pop(msg[1], None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def on_error(self, msg: list[Any]) -> None:
        fut = self._pending.pop(msg[2], None)
        if fut is not None and not fut.done():
            fut.set_exception(WampError(f"{msg[4]} (answering message type {msg[1]})"))

    def on_result(self, msg: list[Any]) -> None:
        pass

    def on_invocation(self, msg: list[Any]) -> None:
        pass

    def on_event(self, msg: list[Any]) -> None:
        pass

    def before_batch(self) -> None:
        pass

    def after_batch(self) -> None:
        self.flush()


_ROLES: dict[str, Any] = {
    "caller": {"features": {}},
    "callee": {"features": {"shared_registration": True, "pattern_based_registration": True}},
    "publisher": {"features": {}},
    "subscriber": {"features": {"pattern_based_subscription": True}},
}


class CallerSession(WampSession):
    """Keeps ``window`` CALLs outstanding; counts completions and round-trip times."""

    def __init__(self, procedure: str, window: int, args: list[Any] | None = None) -> None:
        super().__init__()
        self.window = window
        # CALL = [48, Request, {}, Procedure, Args]: a fixarray of 5, code 48, then the
        # request id, then a pre-packed constant tail.
        codec = self.codec
        self._int = codec.int
        self._call_head = codec.head(5, CALL)
        self._call_tail = codec.tail({}, procedure, CALL_ARGS if args is None else args)
        self.running = False
        self.outstanding = 0
        self.completed = 0
        self.errors = 0
        self.error_uris: dict[str, int] = {}
        self.recording = False
        self.rtt_ns = array("q")
        self._sent_at: dict[int, int] = {}
        self._now = 0
        self.drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self.running = True
        self._now = time.monotonic_ns()
        for _ in range(self.window):
            self._call()
        self.flush()

    def stop(self) -> None:
        self.running = False
        if self.outstanding == 0 and not self.drained.done():
            self.drained.set_result(None)

    def _call(self) -> None:
        self._request += 1
        request = self._request
        self._sent_at[request] = self._now
        self.outstanding += 1
        self._put(self._call_head + self._int(request) + self._call_tail)

    def before_batch(self) -> None:
        self._now = time.monotonic_ns()

    def _complete(self, request: int) -> None:
        self.outstanding -= 1
        self.completed += 1
        sent = self._sent_at.pop(request, 0)
        if self.recording and sent:
            self.rtt_ns.append(self._now - sent)
        if self.running:
            self._call()
        elif self.outstanding == 0 and not self.drained.done():
            self.drained.set_result(None)

    def on_result(self, msg: list[Any]) -> None:
        self._complete(msg[1])

    def on_error(self, msg: list[Any]) -> None:
        if msg[1] == CALL:
            self.errors += 1
            self.error_uris[msg[4]] = self.error_uris.get(msg[4], 0) + 1
            self._complete(msg[2])
        else:
            super().on_error(msg)


class CalleeSession(WampSession):
    """Answers every INVOCATION with a constant YIELD."""

    def __init__(self, args: list[Any] | None = None) -> None:
        super().__init__()
        # YIELD = [70, Request, {}, Args]
        self._int = self.codec.int
        self._yield_head = self.codec.head(4, YIELD)
        self._yield_tail = self.codec.tail({}, RESULT_ARGS if args is None else args)
        self.invocations = 0

    def on_invocation(self, msg: list[Any]) -> None:
        self.invocations += 1
        self._put(self._yield_head + self._int(msg[1]) + self._yield_tail)


class SubscriberStats:
    """Counters shared by all subscriber sessions of one process."""

    def __init__(self, report: Callable[[int], None] | None) -> None:
        self.received = 0
        self.recording = False
        self.latency_ns = array("q")
        self.max_samples = 4_000_000
        self.gaps = 0
        self._report = report
        self._report_scheduled = False
        self._loop = asyncio.get_running_loop()

    def schedule_report(self) -> None:
        # At most one progress report per event-loop iteration, whatever the
        # number of sessions that read something in it.
        if self._report is not None and not self._report_scheduled:
            self._report_scheduled = True
            self._loop.call_soon(self._send_report)

    def _send_report(self) -> None:
        self._report_scheduled = False
        if self._report is not None:
            self._report(self.received)


class SubscriberSession(WampSession):
    """Counts EVENTs; payload args are [monotonic_ns at publish, sequence number]."""

    def __init__(self, stats: SubscriberStats) -> None:
        super().__init__()
        self.stats = stats
        self.last_seq = 0
        self._now = 0

    def before_batch(self) -> None:
        self._now = time.monotonic_ns()

    def on_event(self, msg: list[Any]) -> None:
        stats = self.stats
        stats.received += 1
        ts, seq = msg[4]
        if seq != self.last_seq + 1:
            stats.gaps += 1
        self.last_seq = seq
        if stats.recording and len(stats.latency_ns) < stats.max_samples:
            stats.latency_ns.append(self._now - ts)

    def after_batch(self) -> None:
        if self._out:
            self.flush()
        self.stats.schedule_report()


class PublisherSession(WampSession):
    """Publishes without acknowledgement, gated by subscriber progress.

    Every subscriber process reports, over a pipe, how many events its sessions
    have received in total.  Publication ``P`` may go out only while, for every
    subscriber process ``p`` holding ``n_p`` sessions, ``P <= window +
    received_p // n_p``: on average no subscriber session is more than
    ``window`` publications behind.  This keeps the router at its sustainable
    rate instead of letting event queues (and the measured latency) grow without
    bound.  If progress stops for 0.5 s (a router dropping events), the gate
    opens once and ``stalls`` counts it.
    """

    def __init__(self, topic: str, window: int, sessions_per_reader: list[int]) -> None:
        super().__init__()
        self.window = window
        codec = self.codec
        self._head = codec.head(5, PUBLISH)  # [16, Request, {}, Topic, Args]
        if codec.name == "msgpack":
            self._tail_opts_topic = _packb({}) + _packb(topic)
            self._args = lambda now, seq: _packb([now, seq])
        else:
            self._tail_opts_topic = b",{}," + _json_dumps(topic) + b","
            self._args = lambda now, seq: b"[%d,%d]]" % (now, seq)
        self.published = 0
        self.running = False
        self.sessions = sessions_per_reader
        self.received = [0] * len(sessions_per_reader)
        self.allowance = 0  # added to the limit after a stall
        self.stalls = 0
        self._last_progress = time.monotonic()

    def limit(self) -> int:
        return (
            self.window
            + self.allowance
            + min(r // n for r, n in zip(self.received, self.sessions, strict=True))
        )

    def pump(self) -> None:
        if not self.running:
            return
        limit = self.limit()
        if self.published >= limit:
            return
        now = time.monotonic_ns()
        head, tail, put = self._head, self._tail_opts_topic, self._put
        req, args = self.codec.int, self._args
        while self.published < limit:
            self.published += 1
            self._request += 1
            put(head + req(self._request) + tail + args(now, self.published))
        self.flush()

    def on_progress(self, index: int, received: int) -> None:
        if received != self.received[index]:
            self.received[index] = received
            self._last_progress = time.monotonic()

    def check_stall(self) -> None:
        if self.running and time.monotonic() - self._last_progress > 0.5:
            self.stalls += 1
            self.allowance += self.window
            self._last_progress = time.monotonic()
            self.pump()


async def connect(
    host: str, port: int, factory: Callable[[], WampSession], timeout: float = 30.0
) -> WampSession:
    loop = asyncio.get_running_loop()
    tls = client_tls_context() if WIRE.tls else None
    _, session = await loop.create_connection(factory, host, port, ssl=tls)
    await asyncio.wait_for(session.joined(), timeout)
    return session


async def connect_many(
    host: str, port: int, factory: Callable[[], WampSession], count: int, batch: int = 50
) -> list[WampSession]:
    sessions: list[WampSession] = []
    for start in range(0, count, batch):
        sessions += await asyncio.gather(
            *(connect(host, port, factory) for _ in range(min(batch, count - start)))
        )
    return sessions


# ---------------------------------------------------------------------------
# Worker processes


@dataclass
class Window:
    """The measurement window, in time.monotonic() seconds (shared by all processes)."""

    go: float
    start: float
    end: float


async def _recv(conn: multiprocessing.connection.Connection) -> Any:
    """Await one message from the parent without blocking the event loop."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    fd = conn.fileno()

    def readable() -> None:
        loop.remove_reader(fd)
        os.set_blocking(fd, True)  # the event loop made it non-blocking
        try:
            fut.set_result(conn.recv())
        except BaseException as exc:  # parent gone
            fut.set_exception(exc)

    loop.add_reader(fd, readable)
    return await fut


def _at(when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    loop = asyncio.get_running_loop()
    return loop.call_later(max(0.0, when - time.monotonic()), callback)


async def _sleep_until(when: float) -> None:
    await asyncio.sleep(max(0.0, when - time.monotonic()))


def _cpu() -> float:
    return time.process_time()


async def _caller(host: str, port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    args = records_payload(spec["payload_bytes"]) if spec.get("payload_bytes") else None
    session = await connect(host, port,
                            lambda: CallerSession(spec["procedure"], spec["window"], args))
    assert isinstance(session, CallerSession)
    conn.send(("ready", {}))
    window = Window(*(await _recv(conn))[1:])
    await _sleep_until(window.go)
    session.start()
    snap: dict[str, float] = {}

    def mark_start() -> None:
        snap["n0"], snap["e0"], snap["cpu0"] = session.completed, session.errors, _cpu()
        session.recording = True

    def mark_end() -> None:
        snap["n1"], snap["e1"], snap["cpu1"] = session.completed, session.errors, _cpu()
        session.recording = False
        session.stop()

    _at(window.start, mark_start)
    _at(window.end, mark_end)
    await _sleep_until(window.end)
    try:
        await asyncio.wait_for(asyncio.shield(session.drained), 10)
    except asyncio.TimeoutError:
        pass
    session.close()
    if "n1" not in snap:
        raise RuntimeError("measurement window never ended (event loop starved?)")
    return {
        "completed": int(snap["n1"] - snap["n0"]),
        "errors": int(snap["e1"] - snap["e0"]),
        "error_uris": session.error_uris,
        "cpu": snap["cpu1"] - snap["cpu0"],
        "lost": session.outstanding,
        "rtt_ns": session.rtt_ns.tobytes(),
    }


async def _callee(host: str, port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    sessions: list[CalleeSession] = []
    args = records_payload(spec["payload_bytes"]) if spec.get("payload_bytes") else None
    for _ in range(spec["sessions"]):
        session = await connect(host, port, lambda: CalleeSession(args))
        assert isinstance(session, CalleeSession)
        await session.register(spec["procedure"], spec["options"])
        sessions.append(session)
    conn.send(("ready", {}))
    window = Window(*(await _recv(conn))[1:])
    snap: dict[str, float] = {}
    _at(window.start, lambda: snap.update(cpu0=_cpu()))
    _at(window.end, lambda: snap.update(cpu1=_cpu()))
    counts0: list[int] = []
    _at(window.start, lambda: counts0.extend(s.invocations for s in sessions))
    counts1: list[int] = []
    _at(window.end, lambda: counts1.extend(s.invocations for s in sessions))
    await _recv(conn)  # "stop"
    for session in sessions:
        session.close()
    return {
        "cpu": snap.get("cpu1", 0.0) - snap.get("cpu0", 0.0),
        "invocations": [b - a for a, b in zip(counts0, counts1, strict=False)],
    }


#: Registrations or subscriptions one filler session holds (fastwamp's default
#: per-session cap is 1,000).
FILLER_PER_SESSION = 500


def filler_topics(count: int) -> list[tuple[str, str]]:
    """``count`` (topic, match) pairs, a third each exact, prefix and wildcard,
    none of which matches TOPIC (``bench.pubsub.topic``)."""
    topics: list[tuple[str, str]] = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            topics.append((f"bench.sub.e{i}.topic", "exact"))
        elif kind == 1:
            topics.append((f"bench.sub.q{i}.", "prefix"))
        else:
            topics.append((f"bench..s{i}", "wildcard"))
    return topics


async def _filler(host: str, port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    """Sessions that hold ``registrations`` and ``subscriptions`` nobody uses,
    at most FILLER_PER_SESSION of each per session."""
    sessions: list[WampSession] = []
    for kind, uris in (
        (REGISTER, filler_uris(spec.get("registrations", 0))),
        (SUBSCRIBE, filler_topics(spec.get("subscriptions", 0))),
    ):
        for start in range(0, len(uris), FILLER_PER_SESSION):
            if len(sessions) <= start // FILLER_PER_SESSION:
                sessions.append(await connect(host, port, WampSession))
            session = sessions[start // FILLER_PER_SESSION]
            futs = [
                session.request(kind, {"match": match} if match != "exact" else {}, uri)
                for uri, match in uris[start : start + FILLER_PER_SESSION]
            ]
            session.flush()
            await asyncio.gather(*futs)
    conn.send(("ready", {}))
    await _recv(conn)  # "go"
    await _recv(conn)  # "stop"
    for session in sessions:
        session.close()
    return {"cpu": 0.0, "sessions": len(sessions)}


async def _connector(host: str, port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    """Session establishment: at "go", open ``count`` sessions (connect, transport
    handshake, HELLO, WELCOME), ``concurrency`` at a time; keep them idle until
    "stop", then close them all."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    warm = await connect(host, port, WampSession)
    conn.send(("ready", {}))
    window = Window(*(await _recv(conn))[1:])
    await _sleep_until(window.go)
    count, concurrency = spec["count"], spec["concurrency"]
    sessions: list[WampSession] = []
    remaining = count
    cpu0 = _cpu()

    async def opener() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            sessions.append(await connect(host, port, WampSession))

    await asyncio.gather(*(opener() for _ in range(min(concurrency, count))))
    conn.send(("connected", {"done": time.monotonic(), "cpu": _cpu() - cpu0}))
    await _recv(conn)  # "stop"
    for session in sessions:
        session.close()
    warm.close()
    await asyncio.sleep(0.2)
    return {"sessions": len(sessions), "cpu": _cpu() - cpu0}


def filler_uris(count: int) -> list[tuple[str, str]]:
    """``count`` (procedure, match) pairs, a third each exact, prefix and wildcard,
    none of which matches PREFIX_PROCEDURE (``bench.prefix.proc``)."""
    uris: list[tuple[str, str]] = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            uris.append((f"bench.exact.e{i}.proc", "exact"))
        elif kind == 1:
            uris.append((f"bench.prefix.q{i}.", "prefix"))
        else:
            uris.append((f"bench..w{i}", "wildcard"))
    return uris


async def register_filler(session: WampSession, count: int, chunk: int = 500) -> None:
    uris = filler_uris(count)
    for start in range(0, count, chunk):
        futs = [
            session.request(REGISTER, {"match": match} if match != "exact" else {}, uri)
            for uri, match in uris[start : start + chunk]
        ]
        session.flush()
        await asyncio.gather(*futs)


async def _subscriber(host: str, port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    progress: int | None = spec["progress"]  # write end of this process's progress pipe
    os.set_blocking(progress, False)

    def report(received: int) -> None:
        # One 8-byte write: atomic on a pipe.  Never block: once the publisher is
        # gone nobody needs the figure, so a full or closed pipe just drops it.
        nonlocal progress
        if progress is None:
            return
        try:
            os.write(progress, _U64.pack(received))
        except BlockingIOError:
            pass
        except OSError:
            os.close(progress)
            progress = None

    stats = SubscriberStats(report)
    sessions = await connect_many(host, port, lambda: SubscriberSession(stats), spec["sessions"])
    for start in range(0, len(sessions), 100):
        await asyncio.gather(*(s.subscribe(spec["topic"]) for s in sessions[start : start + 100]))
    conn.send(("ready", {}))
    window = Window(*(await _recv(conn))[1:])
    snap: dict[str, float] = {}

    def mark_start() -> None:
        snap["n0"], snap["cpu0"] = stats.received, _cpu()
        stats.recording = True

    def mark_end() -> None:
        snap["n1"], snap["cpu1"] = stats.received, _cpu()
        stats.recording = False

    _at(window.start, mark_start)
    _at(window.end, mark_end)
    await _recv(conn)  # "stop"
    for session in sessions:
        session.close()
    return {
        "received": int(snap.get("n1", 0) - snap.get("n0", 0)),
        "total_received": stats.received,
        "gaps": stats.gaps,
        "cpu": snap.get("cpu1", 0.0) - snap.get("cpu0", 0.0),
        "latency_ns": stats.latency_ns.tobytes(),
    }


async def _publisher(host: str, port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    readers: list[int] = spec["progress"]  # read ends of the subscribers' progress pipes
    session = await connect(
        host, port, lambda: PublisherSession(spec["topic"], spec["window"], spec["sessions"])
    )
    assert isinstance(session, PublisherSession)
    loop = asyncio.get_running_loop()

    def make_reader(index: int, reader: int) -> None:
        os.set_blocking(reader, False)

        def readable() -> None:
            try:
                data = os.read(reader, 65536)  # whole 8-byte reports: each write was atomic
            except BlockingIOError:
                return
            if not data:
                loop.remove_reader(reader)
                return
            (received,) = _U64.unpack_from(data, len(data) - 8)
            session.on_progress(index, received)
            session.pump()

        loop.add_reader(reader, readable)

    for index, reader in enumerate(readers):
        make_reader(index, reader)
    conn.send(("ready", {}))
    window = Window(*(await _recv(conn))[1:])
    await _sleep_until(window.go)
    session.running = True
    session.pump()
    snap: dict[str, float] = {}

    def mark_start() -> None:
        snap["n0"], snap["cpu0"] = session.published, _cpu()

    def mark_end() -> None:
        snap["n1"], snap["cpu1"] = session.published, _cpu()
        session.running = False

    _at(window.start, mark_start)
    _at(window.end, mark_end)
    while time.monotonic() < window.end:
        await asyncio.sleep(0.1)
        session.check_stall()
    await asyncio.sleep(0.2)
    session.close()
    return {
        "published": int(snap["n1"] - snap["n0"]),
        "cpu": snap["cpu1"] - snap["cpu0"],
        "stalls": session.stalls,
    }


_ROLE_MAINS = {
    "filler": _filler,
    "connector": _connector,
    "caller": _caller,
    "callee": _callee,
    "subscriber": _subscriber,
    "publisher": _publisher,
}


def _worker(role: str, host: str, port: int, spec: dict[str, Any], conn: Any) -> None:
    """Entry point of a worker process."""
    # The parent cleans up on Ctrl-C and stops workers with SIGTERM: a worker
    # neither reacts to SIGINT itself nor inherits the parent's SIGTERM handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global WIRE
    WIRE = Wire(**spec.get("wire", {}))
    if uvloop is not None and not os.environ.get("LOADGEN_NO_UVLOOP"):
        runner: Callable[..., Any] = uvloop.run
    else:
        runner = asyncio.run
    try:
        result = runner(_ROLE_MAINS[role](host, port, spec, conn))
    except BaseException as exc:  # report every failure to the parent
        try:
            conn.send(("error", f"{role}: {type(exc).__name__}: {exc}"))
        except OSError:
            pass
        raise SystemExit(1)
    conn.send(("result", result))


# ---------------------------------------------------------------------------
# Scenarios


@dataclass
class Scenario:
    """One load pattern; see bench/README.md, section End-to-end."""

    name: str
    description: str
    kind: str = "rpc"  # "rpc", "pubsub" or "sessions"
    callers: int = 1  # caller processes, one session each
    callee_sessions: int = 1  # all in one callee process
    procedure: str = RPC_PROCEDURE  # what callers call
    registration: str = RPC_PROCEDURE  # what callees register
    register_options: dict[str, Any] | None = None
    filler: int = 0  # other registrations, held by filler sessions (500 each)
    filler_subscriptions: int = 0  # other subscriptions, ditto
    subscribers: int = 0
    subscriber_procs: int = 2
    window: int | None = None  # outstanding CALLs per caller, if not the run's window
    payload_bytes: int = 0  # rpc: args of about this many bytes of records each way


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("rpc", "1 caller, 1 callee, exact registration"),
        Scenario("rpc2", "2 callers (separate processes), 1 callee", callers=2),
        Scenario(
            "roundrobin",
            "1 caller, 4 callees sharing a registration (invoke=roundrobin)",
            callee_sessions=4,
            register_options={"invoke": "roundrobin"},
        ),
        Scenario(
            "prefix",
            "1 caller, 1 callee on a prefix registration, 10,000 other registrations",
            procedure=PREFIX_PROCEDURE,
            registration=PREFIX_REGISTRATION,
            register_options={"match": "prefix"},
            filler=10_000,
        ),
        Scenario("rpc1", "as rpc, 1 call in flight (sequential round trip)", window=1),
        Scenario("rpc_1k", "as rpc, about 1 KiB of records in each CALL and YIELD",
                 payload_bytes=1024),
        Scenario("rpc_16k", "as rpc, about 16 KiB of records in each CALL and YIELD",
                 payload_bytes=16384),
        Scenario(
            "rpc_full",
            "as rpc, 1,000 other registrations and 1,000 other subscriptions on the realm",
            filler=1000,
            filler_subscriptions=1000,
        ),
        Scenario("pubsub10", "1 publisher, 10 subscribers", kind="pubsub", subscribers=10),
        Scenario("pubsub100", "1 publisher, 100 subscribers", kind="pubsub", subscribers=100),
        Scenario("pubsub1000", "1 publisher, 1000 subscribers", kind="pubsub", subscribers=1000),
        Scenario(
            "pubsub10_full",
            "as pubsub10, 1,000 other registrations and 1,000 other subscriptions on the realm",
            kind="pubsub",
            subscribers=10,
            filler=1000,
            filler_subscriptions=1000,
        ),
        Scenario(
            "sessions",
            "open idle sessions (connect, HELLO, WELCOME), 2 processes; rate and memory",
            kind="sessions",
        ),
    ]
}


@dataclass
class Result:
    scenario: str
    ops: int  # completed calls, or delivered events, inside the window
    duration: float
    ops_per_s: float
    errors: int
    router_cpu: float | None  # seconds of router CPU inside the window
    router_cpu_util: float | None  # router CPU seconds per second (1.0 = one core)
    router_cpu_us_per_op: float | None
    loadgen_cpu_us_per_op: float
    machine_busy: float | None  # busy cores (of all) during the window
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    extra: dict[str, Any]


def _percentile(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] / 1e6


def machine_busy_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds over all CPUs since boot (idle and I/O wait are
    not busy; guest time is already in user time)."""
    times = psutil.cpu_times()
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


class _Workers:
    """The worker processes of one scenario; kills whatever is left on exit."""

    def __init__(self, wire: Wire) -> None:
        self.ctx = multiprocessing.get_context("fork")
        self.procs: list[tuple[str, multiprocessing.process.BaseProcess, Any]] = []
        self.wire = wire

    def start(self, role: str, host: str, port: int, spec: dict[str, Any]) -> Any:
        parent, child = self.ctx.Pipe()
        spec = {**spec, "wire": asdict(self.wire)}
        proc = self.ctx.Process(
            target=_worker, args=(role, host, port, spec, child), name=f"loadgen-{role}"
        )
        proc.daemon = True
        proc.start()
        child.close()
        self.procs.append((role, proc, parent))
        return parent

    @staticmethod
    def expect(conn: Any, what: str, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise RuntimeError(f"worker gave no {what!r} within {timeout:.0f} s")
        tag, payload = conn.recv()
        if tag == "error":
            raise RuntimeError(payload)
        if tag != what:
            raise RuntimeError(f"worker sent {tag!r}, expected {what!r}")
        return payload

    def close(self) -> None:
        for _, proc, conn in self.procs:
            proc.join(timeout=3)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self.procs.clear()

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_scenario(
    scenario: Scenario,
    host: str = "127.0.0.1",
    port: int = 8081,
    duration: float = 5.0,
    warmup: float = 1.0,
    window: int = 64,
    pub_window: int = 16,
    router_cpu: Callable[[], float] | None = None,
    setup_timeout: float = 120.0,
    wire: Wire | None = None,
    router_rss: Callable[[], int] | None = None,
    sessions: int = 10_000,
    settle: float = 1.0,
) -> Result:
    """Run one scenario against the router at host:port and return its figures.

    ``router_cpu`` returns the router's cumulative CPU seconds; it is sampled at
    the start and the end of the measurement window.  ``wire``: RawSocket
    (default) or WebSocket.  The ``sessions`` scenario opens ``sessions`` idle
    sessions and needs ``router_rss`` (the router's resident bytes) as well; see
    :func:`run_sessions`.
    """
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator only targets the local machine")
    if scenario.kind == "sessions":
        return run_sessions(
            host, port, sessions, router_cpu, router_rss, wire, settle, setup_timeout
        )
    with _Workers(wire or Wire()) as workers:
        servers: list[Any] = []  # callees / subscribers: answer "stop"
        drivers: list[Any] = []  # callers / publisher: finish by themselves
        fillers: list[Any] = []  # hold registrations and subscriptions; answer "stop"
        if scenario.filler or scenario.filler_subscriptions:
            spec = {
                "registrations": scenario.filler,
                "subscriptions": scenario.filler_subscriptions,
            }
            fillers.append(workers.start("filler", host, port, spec))
            _Workers.expect(fillers[0], "ready", setup_timeout)
        if scenario.kind == "rpc":
            servers.append(
                workers.start(
                    "callee",
                    host,
                    port,
                    {
                        "sessions": scenario.callee_sessions,
                        "procedure": scenario.registration,
                        "options": scenario.register_options or {},
                        "payload_bytes": scenario.payload_bytes,
                    },
                )
            )
            _Workers.expect(servers[0], "ready", setup_timeout)
            for _ in range(scenario.callers):
                drivers.append(
                    workers.start(
                        "caller",
                        host,
                        port,
                        {"procedure": scenario.procedure, "window": scenario.window or window,
                         "payload_bytes": scenario.payload_bytes},
                    )
                )
        else:
            procs = max(1, min(scenario.subscriber_procs, scenario.subscribers))
            per_proc = [
                scenario.subscribers // procs + (1 if i < scenario.subscribers % procs else 0)
                for i in range(procs)
            ]
            readers: list[int] = []
            for n in per_proc:
                reader, writer = os.pipe()
                servers.append(
                    workers.start(
                        "subscriber",
                        host,
                        port,
                        {"sessions": n, "topic": TOPIC, "progress": writer},
                    )
                )
                os.close(writer)
                readers.append(reader)
            for conn in servers:
                _Workers.expect(conn, "ready", setup_timeout)
            drivers.append(
                workers.start(
                    "publisher",
                    host,
                    port,
                    {
                        "topic": TOPIC,
                        "window": pub_window,
                        "sessions": per_proc,
                        "progress": readers,
                    },
                )
            )
            for reader in readers:
                os.close(reader)
        for conn in drivers:
            _Workers.expect(conn, "ready", setup_timeout)

        go = time.monotonic() + 0.2
        win = Window(go, go + warmup, go + warmup + duration)
        for conn in servers + drivers + fillers:
            conn.send(("go", win.go, win.start, win.end))
        # The router's CPU time is sampled here, the operations are counted in the
        # workers.  If this process wakes up late on a busy machine, the CPU delta
        # is rescaled from the interval actually sampled to the window length.
        time.sleep(max(0.0, win.start - time.monotonic()))
        cpu0 = router_cpu() if router_cpu else None
        t0 = time.monotonic()
        busy0 = machine_busy_ticks()
        time.sleep(max(0.0, win.end - time.monotonic()))
        cpu1 = router_cpu() if router_cpu else None
        t1 = time.monotonic()
        busy1 = machine_busy_ticks()
        driver_results = [_Workers.expect(c, "result", duration + 30) for c in drivers]
        for conn in servers + fillers:
            conn.send(("stop",))
        server_results = [_Workers.expect(c, "result", 60) for c in servers]
        for conn in fillers:
            _Workers.expect(conn, "result", 60)

    gen_cpu = sum(r["cpu"] for r in driver_results + server_results)
    extra: dict[str, Any] = {}
    latencies: list[int] = []
    if scenario.kind == "rpc":
        ops = sum(r["completed"] for r in driver_results)
        errors = sum(r["errors"] for r in driver_results)
        for r in driver_results:
            latencies += array("q", r["rtt_ns"])
            for uri, n in r["error_uris"].items():
                extra.setdefault("error_uris", {})[uri] = n
        extra["invocations_per_callee"] = server_results[0]["invocations"]
        unanswered = sum(r["lost"] for r in driver_results)
        if unanswered:
            extra["calls_unanswered_at_exit"] = unanswered
    else:
        ops = sum(r["received"] for r in server_results)
        published = driver_results[0]["published"]
        errors = sum(r["gaps"] for r in server_results)
        extra["published_per_s"] = round(published / duration, 1)
        extra["stalls"] = driver_results[0]["stalls"]
        extra["gaps"] = errors
        for r in server_results:
            latencies += array("q", r["latency_ns"])
    latencies.sort()
    util = (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else None
    router = util * duration if util is not None else None
    busy_ticks = busy1[0] - busy0[0]
    total_ticks = busy1[1] - busy0[1]
    return Result(
        scenario=scenario.name,
        ops=ops,
        duration=duration,
        ops_per_s=ops / duration,
        errors=errors,
        router_cpu=router,
        router_cpu_util=util,
        router_cpu_us_per_op=(router / ops * 1e6) if router is not None and ops else None,
        loadgen_cpu_us_per_op=gen_cpu / ops * 1e6 if ops else 0.0,
        machine_busy=(busy_ticks / total_ticks * (os.cpu_count() or 1)) if total_ticks else None,
        latency_p50_ms=_percentile(latencies, 0.50),
        latency_p99_ms=_percentile(latencies, 0.99),
        extra=extra,
    )


def run_sessions(
    host: str,
    port: int,
    count: int,
    router_cpu: Callable[[], float] | None,
    router_rss: Callable[[], int] | None,
    wire: Wire | None = None,
    settle: float = 1.0,
    setup_timeout: float = 120.0,
    procs: int = 2,
    concurrency: int = 64,
    release_wait: float = 6.0,
) -> Result:
    """Open ``count`` idle sessions from ``procs`` processes, as fast as the
    router takes them (``concurrency`` handshakes in flight per process).

    Figures: sessions/s (wall clock, from "go" to the last WELCOME), router CPU
    per session established, and the router's RSS before, with all sessions
    idle (``settle`` s after the last WELCOME), ``2 * settle`` s after they
    all closed, and ``release_wait`` s after they closed (once fastwamp's
    periodic memory check has run).  Every process holds one warm session, opened before the
    baseline, so first-use costs are not counted per session.
    """
    with _Workers(wire or Wire()) as workers:
        per_proc = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        conns = [
            workers.start("connector", host, port, {"count": n, "concurrency": concurrency})
            for n in per_proc
            if n
        ]
        for conn in conns:
            _Workers.expect(conn, "ready", setup_timeout)
        time.sleep(settle / 2)
        rss0 = router_rss() if router_rss else None
        go = time.monotonic() + 0.1
        cpu0 = router_cpu() if router_cpu else None
        busy0 = machine_busy_ticks()
        for conn in conns:
            conn.send(("go", go, go, go))
        done = [_Workers.expect(c, "connected", setup_timeout) for c in conns]
        cpu1 = router_cpu() if router_cpu else None
        busy1 = machine_busy_ticks()
        elapsed = max(d["done"] for d in done) - go
        time.sleep(settle)
        rss1 = router_rss() if router_rss else None
        for conn in conns:
            conn.send(("stop",))
        results = [_Workers.expect(c, "result", 60) for c in conns]
        time.sleep(2 * settle)
        rss2 = router_rss() if router_rss else None
        # fastwamp checks every 5 s whether many connections closed, and if so
        # hands their memory back (fastwamp.server.RELEASE_CHECK_INTERVAL).
        time.sleep(max(0.0, release_wait - 2 * settle))
        rss3 = router_rss() if router_rss else None
    opened = sum(r["sessions"] for r in results)
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    extra: dict[str, Any] = {"sessions": opened, "elapsed_s": round(elapsed, 3)}
    if rss0 is not None and rss1 is not None and rss2 is not None:
        extra.update(
            rss_before=rss0,
            rss_idle=rss1,
            rss_after=rss2,
            rss_released=rss3,
            kib_per_session=round((rss1 - rss0) / opened / 1024, 2) if opened else None,
        )
    busy_ticks, total_ticks = busy1[0] - busy0[0], busy1[1] - busy0[1]
    return Result(
        scenario="sessions",
        ops=opened,
        duration=elapsed,
        ops_per_s=opened / elapsed if elapsed > 0 else 0.0,
        errors=count - opened,
        router_cpu=cpu,
        router_cpu_util=cpu / elapsed if cpu is not None and elapsed > 0 else None,
        router_cpu_us_per_op=cpu / opened * 1e6 if cpu is not None and opened else None,
        loadgen_cpu_us_per_op=sum(d["cpu"] for d in done) / opened * 1e6 if opened else 0.0,
        machine_busy=(busy_ticks / total_ticks * (os.cpu_count() or 1)) if total_ticks else None,
        latency_p50_ms=None,
        latency_p99_ms=None,
        extra=extra,
    )


def _tree(root: int) -> list[psutil.Process]:
    """``root`` and every live descendant of it (psutil), children after parents."""
    try:
        process = psutil.Process(root)
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def _descendants(root: int) -> list[int]:
    """The pids of every live descendant of ``root``, children first."""
    return [p.pid for p in _tree(root)[1:]]


def proc_tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants."""
    total = 0
    for process in _tree(root):
        try:
            total += process.memory_info().rss
        except psutil.Error:  # gone meanwhile
            pass
    return total


# ---------------------------------------------------------------------------
# Stand-alone command line


def proc_tree_cpu(root: int) -> float:
    """User + system CPU seconds of ``root`` and all its live descendants."""
    total = 0.0
    for process in _tree(root):
        try:
            times = process.cpu_times()
        except psutil.Error:  # gone meanwhile
            continue
        total += times.user + times.system
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--transport", choices=("rawsocket", "websocket"), default="rawsocket", help="the wire"
    )
    parser.add_argument("--path", default="/ws", help="WebSocket: the HTTP path")
    parser.add_argument("--tls", action="store_true", help="connect over TLS (wss://, rss://)")
    parser.add_argument("--serializer", choices=("msgpack", "json"), default="msgpack")
    parser.add_argument(
        "--write",
        choices=("each", "batch"),
        default="batch",
        help="each: one write per message as made; batch: one write per read (default)",
    )
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions scenario: count")
    parser.add_argument(
        "--scenario", default="rpc", help=f"one of: {', '.join(SCENARIOS)} (comma-separated)"
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=int, default=64, help="outstanding calls per caller")
    parser.add_argument("--pub-window", type=int, default=16, help="publications ahead")
    parser.add_argument("--router-pid", type=int, help="sample this process tree's CPU time")
    args = parser.parse_args(argv)
    sampler = (lambda: proc_tree_cpu(args.router_pid)) if args.router_pid else None
    rss = (lambda: proc_tree_rss(args.router_pid)) if args.router_pid else None
    for name in args.scenario.split(","):
        result = run_scenario(
            SCENARIOS[name],
            args.host,
            args.port,
            args.duration,
            args.warmup,
            args.window,
            args.pub_window,
            sampler,
            wire=Wire(args.transport, args.path, args.serializer, args.write, args.tls),
            router_rss=rss,
            sessions=args.sessions,
        )
        print(json.dumps(asdict(result)))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
