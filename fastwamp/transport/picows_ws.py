"""WAMP over WebSocket on picows: its C handshake and frame parser, fastwamp's own output.

picows parses frames in C (SIMD unmasking).  With output framed here and
written once per read, an echoed message costs about 1.5 us of server CPU,
against ~7 us for websockets' sans-I/O core; picows' own ``WSTransport.send()``
makes one system call per frame (~9 us), so output never goes through it.

How it is wired.  picows normally owns the socket: ``ws_create_server`` makes
its ``WSProtocol`` the asyncio protocol and calls a ``WSListener`` per frame.
Here the connection stays the asyncio protocol (a :class:`BaseConnection`, like
the other transports: same server code, open timeout, flow control and output
queue) and drives a picows ``WSProtocol`` of its own as a parser: the bytes of
each read are copied into its buffer, it parses the HTTP upgrade and the frames
and calls the connection back (the connection is also its ``WSListener``).
Replies, pongs and close frames are framed here (an unmasked server frame is a
2-10 byte header and the payload) and what one read or one router flush
produces leaves in a single ``transport.write``.

What picows leaves to its user, done here: reassembling fragmented messages
(and bounding their total size: picows checks single frames), answering PING
(its automatic PONG would be one more system call) and CLOSE, choosing the
subprotocol.  Its quirks worked around: it refuses ``Connection: keep-alive,
Upgrade`` (what Firefox sends), so the header is normalised before its check;
it logs every connection at INFO and protocol errors at ERROR, so its log goes
through :class:`_Listener`, which lowers those to DEBUG (the connection logs a
failure once, like the websockets engine).  No permessage-deflate: a listener
with ``compression = true`` runs on the websockets engine ("auto", the
default, picks it; an explicit ``implementation = "picows"`` with compression
is a configuration error).

The default engine: about 35% less router CPU per routed call than the
websockets engine, end to end (tests/transport/call_cost.py isolates the
transport's share).  Memory per idle connection: picows keeps a 2 KiB read
buffer (its minimum), a 1 KiB write buffer (unused: output is framed here) and
two futures; after the upgrade the request's and response's headers and
request line are dropped (the session's transport info has what it needs).

Limits (see :mod:`fastwamp.transport.base`), as in the websockets engine:
picows checks the listener's ``max_message_size`` per frame header; until the
session is established the smaller ``max_handshake_message_size`` is checked
here, from the size of each delivered frame and the bytes picows holds unparsed
(``WSFrame.tail_size``), so an unauthenticated peer holds at most that much
input.  Text messages that are not UTF-8 close with 1007, messages of the wrong
type for the serializer are a protocol violation.  Messages beyond
``messages_per_turn`` in one read (or arriving while the core paused input) wait
in ``_inbox`` for a later turn.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections import deque
from http import HTTPStatus
from typing import Any

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

# WSProtocol is what picows' ws_create_server() puts on the socket; it is not in
# picows' documented API (hence the upper bound on the picows version).
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from fastwamp.config import ListenerConfig
from fastwamp.transport.base import (
    CLOSE_TIMEOUT,
    WEBSOCKET_TRAFFIC,
    BaseConnection,
    ConnectionLimits,
    RouterLike,
    _monotonic,
    frame_key,
    write_parts,
)
from fastwamp.transport.tls import is_tls_client_hello
from fastwamp.transport.websocket import (
    WEBSOCKET_IMPLEMENTATIONS,
    _frame_header,
    frame_shared,
    http_path,
    is_utf8,
    origin_refused,
    received_headers,
    serializers_by_subprotocol,
    server_frame_length,
)
from fastwamp.wamp.serializers import SerializationError, SharedMessage

#: What a handled request's and response's headers are replaced with (see on_ws_connected).
_NO_HEADERS: Any = ()

log = logging.getLogger("fastwamp.transport.picows")
#: picows' own log; a child of the websockets engine's wire logger, so that the
#: same setting (WARNING unless debugging, see ``configure_logging``) applies.
wire_log = logging.getLogger("fastwamp.transport.websocket.wire.picows")

_TEXT, _BINARY, _CONT = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_PING, _CLOSE = WSMsgType.PING, WSMsgType.CLOSE
_OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
#: Longest frame header (2 bytes, 8 of length, 4 of mask).
_MAX_HEADER = 14
#: Initial size of picows' read buffer per connection (it doubles when needed;
#: 2 KiB is picows' minimum, and holds most WAMP messages).
READ_BUFFER_SIZE = 2048


def _close_frame(code: int | None) -> bytes:
    """A CLOSE frame with ``code`` (no reason), or an empty one."""
    if code is None:
        return _frame_header(_OP_CLOSE, 0)
    return _frame_header(_OP_CLOSE, 2) + code.to_bytes(2, "big")


# picows' stub declares WSCloseCode a plain Enum; at runtime it is an IntEnum.
_CLOSE_NORMAL = _close_frame(int(WSCloseCode.OK))  # type: ignore[call-overload]


class _Switching(WSUpgradeResponse):  # type: ignore[misc]
    """The 101 response to an accepted upgrade, as picows' own would be written.

    picows' ``WSUpgradeResponse`` keeps its headers in a multidict and formats
    each one when written; here the bytes up to ``Sec-WebSocket-Accept`` (the
    only header that differs between connections with one subprotocol) are
    made once per subprotocol.  picows adds that header (or, for a request it
    refuses, ``Connection: close``) before :meth:`to_bytes`.
    """

    __slots__ = ("_head",)

    def __init__(self, subprotocol: str) -> None:
        self.version = b"HTTP/1.1"
        self.status = HTTPStatus.SWITCHING_PROTOCOLS
        # A dict: picows only sets an item and to_bytes() reads them in order.
        self.headers = {  # type: ignore[assignment]
            "Sec-WebSocket-Protocol": subprotocol, "Connection": "upgrade", "Upgrade": "websocket"
        }
        self.body = None
        head = _SWITCHING_HEADS.get(subprotocol)
        if head is None:
            head = _SWITCHING_HEADS[subprotocol] = bytes(super().to_bytes())[:-2]
        self._head = head

    def to_bytes(self) -> bytearray:
        headers = self.headers
        if len(headers) != 4 or "Sec-WebSocket-Accept" not in headers:
            return super().to_bytes()  # type: ignore[no-any-return]
        out = bytearray(self._head)
        out += b"Sec-WebSocket-Accept: %s\r\n\r\n" % headers["Sec-WebSocket-Accept"].encode()
        return out


#: Subprotocol -> the start of its 101 response (see _Switching).
_SWITCHING_HEADS: dict[str, bytes] = {}


_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY)


class _ParserTransport:
    """The transport as picows' parser is given it (``WSProtocol.connection_made``).

    picows reads the addresses and four socket options of each new connection
    for its "New connection accepted" log line (which :class:`_Listener` keeps at
    DEBUG): through uvloop, about 12 us of system calls per connection.  Given
    this object, it gets no addresses, and this object as the socket: the
    options picows sets reach the socket, the ones it reads back are not read.
    Everything else is the connection's transport.
    """

    __slots__ = ("_transport", "_sock", "write", "get_write_buffer_size")

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._sock: Any = None
        # What picows keeps and calls: the transport's own bound methods.
        self.write = transport.write
        self.get_write_buffer_size = transport.get_write_buffer_size

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            if self._sock is None:
                self._sock = self._transport.get_extra_info("socket")
            return self
        if name == "peername" or name == "sockname":
            return default  # only logged, at DEBUG
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:  # close, abort, writelines, ...
        return getattr(self._transport, name)

    # The socket, as picows uses it.

    def setsockopt(self, level: int, option: int, value: int) -> None:
        # TCP_NODELAY is on already: uvloop and asyncio set it on every TCP transport.
        if self._sock is not None and (level, option) != _NODELAY:
            self._sock.setsockopt(level, option, value)

    def getsockopt(self, *args: Any) -> int:
        return 0  # only logged

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1


class _Listener(WSListener):
    """What picows calls back for one connection: its listener, its listener
    factory and its logger, in one slotted object.

    picows wants a :class:`WSListener`, whose C layout cannot share a class with
    the slotted :class:`BaseConnection`.  ``on_ws_frame`` is the connection's own
    bound method, stored in a slot, so that picows calls it directly (its
    dispatch to Python overrides finds the slot), with no frame in between.  As
    the factory (``__call__``) it hands the upgrade request to the connection.
    As the logger it prefixes picows' lines with the peer; its per-connection
    INFO lines ("New connection accepted", "Disconnected") and its parser errors
    (the connection logs those itself) go out at DEBUG.
    """

    __slots__ = ("on_ws_frame", "_conn")

    def __init__(self, conn: PicowsConnection) -> None:
        self.on_ws_frame = conn.on_ws_frame  # type: ignore[method-assign]
        self._conn = conn

    def __call__(self, request: WSUpgradeRequest) -> Any:
        return self._conn._upgrade(request, self)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._conn.on_ws_connected(transport)

    # The logger's methods picows calls.

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging.Logger's name
        return wire_log.isEnabledFor(level)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level == logging.INFO or (
            level == logging.ERROR and isinstance(msg, str) and msg.startswith("WS parser error")
        ):
            level = logging.DEBUG
        if wire_log.isEnabledFor(level):
            kwargs.setdefault("stacklevel", 2)
            wire_log.log(level, f"{self._conn.peer}: {msg}", *args, **kwargs)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        # Twice per connection ("New connection accepted", "Disconnected"): at DEBUG.
        if wire_log.isEnabledFor(logging.DEBUG):
            self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info, **kwargs)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)


class PicowsConnection(BaseConnection):
    """One WAMP-over-WebSocket client connection (engine: picows)."""

    transport_type = "websocket"
    # A shared frame's header is 2 bytes or more: a frame over max_out + 2 bytes takes
    # send_messages, which checks its payload's exact length.
    _direct_frame_header = 2
    _traffic = WEBSOCKET_TRAFFIC
    #: Name under which :data:`WEBSOCKET_IMPLEMENTATIONS` lists this class.
    implementation = "picows"

    __slots__ = (
        "_opcode",
        "_text",
        "_max_in",
        "_inbox",
        "_left",
        "_tail",
        "_unparsed",
        "_frames_in_read",
        "_pings",
        "_parser",
        "_info",
        "_pending",
        "_fragments",
        "_fragments_text",
        "_fed",
        "_open",
        "_failed",
        "_logged",
        "_close_sent",
        "_close_rcvd",
        "_eof",
        "_received",
    )

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(router, listener, connections, limits)
        self._serializer: Any = None
        self._opcode = _OP_TEXT
        self._text = True  # the negotiated serializer takes text messages (JSON)
        #: Largest message accepted now: smaller until the session is established.
        self._max_in = min(listener.max_message_size, self._limits.max_handshake_message_size)
        #: Messages waiting for a later turn (turn budget, pause_input): (payload, text);
        #: None until there is one.
        self._inbox: deque[tuple[bytes, bool]] | None = None
        self._left = 0  # messages this read may still feed
        self._tail = -1  # tail_size of the last frame of the current chunk (-1: none)
        self._unparsed = 0  # bytes picows holds that are not a complete frame yet
        self._frames_in_read = False
        self._pings = 0
        self._parser: Any = None  # picows' WSProtocol, from connection_made on
        self._info: dict[str, Any] | None = None  # transport_info of the accepted upgrade
        #: Control frames (PONG, CLOSE) to write with the next output (None: none).
        self._pending: list[bytes] | None = None
        self._fragments: bytearray | None = None
        self._fragments_text = False
        self._fed = False  # messages went to the session during this read
        self._open = False  # the upgrade succeeded: data frames flow
        self._failed = False  # input is no longer parsed (refused, protocol error, EOF)
        self._logged = False  # why the connection failed has been logged
        self._close_sent = False
        self._close_rcvd = False
        self._eof = False  # end the TCP connection once the output is written
        self._received = False  # any bytes arrived

    # asyncio.Protocol callbacks.

    def _transport_open(self, transport: Any) -> None:
        listener = _Listener(self)
        self._parser = parser = WSProtocol(
            host_port=None,
            ws_path=None,
            is_client_side=False,
            ws_listener_factory=listener,
            logger=listener,
            disconnect_on_exception=True,
            websocket_handshake_timeout=None,  # handshake_timeout, in BaseConnection
            enable_auto_ping=False,
            auto_ping_idle_timeout=20,
            auto_ping_reply_timeout=20,
            auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
            enable_auto_pong=False,  # PONGs leave with the other output
            max_frame_size=self._listener.max_message_size,
            extra_headers=None,
            read_buffer_init_size=READ_BUFFER_SIZE,
        )
        parser.connection_made(_ParserTransport(transport))

    def data_received(self, data: bytes) -> None:
        self._last_read = now = _monotonic()
        WEBSOCKET_TRAFFIC.received += len(data)
        if self._failed:
            return
        if not self._received and self._tls is None and is_tls_client_hello(data):
            self._logged = self._failed = True
            self._tls_client_on_plain_listener()
            return
        self._received = True
        self._left = self._limits.messages_per_turn
        self._frames_in_read = False
        parser = self._parser
        n = len(data)
        buf = parser.get_buffer(-1)
        if len(buf) >= n:
            buf[:n] = data
            self._tail = -1
            parser.buffer_updated(n)
            self._unparsed = self._tail if self._tail >= 0 else self._unparsed + n
        else:  # more than picows' free buffer space: it grows as it is filled
            view = memoryview(data)
            pos = 0
            ws = parser.transport
            while pos < n and not self._failed and not ws.is_close_frame_sent:
                buf = parser.get_buffer(-1)
                k = min(len(buf), n - pos)
                buf[:k] = view[pos : pos + k]
                self._tail = -1
                parser.buffer_updated(k)
                self._unparsed = self._tail if self._tail >= 0 else self._unparsed + k
                pos += k
        self._after_read(now)

    def eof_received(self) -> bool:
        if not self._logged:
            if not self._open:
                # A bare TCP connect-and-close (port probe, health check) is not worth a line.
                self._limits.log(
                    "ws_eof",
                    logging.INFO if self._received else logging.DEBUG,
                    "%s: connection closed before a complete HTTP request",
                    self.peer,
                    logger=log,
                )
            elif not self._close_rcvd:
                log.debug("%s: connection closed without a WebSocket close frame", self.peer)
            self._logged = True
        self._failed = True
        self._reading = False
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        parser, self._parser = self._parser, None  # it refers back to this connection
        if parser is not None:
            parser.connection_lost(exc)
        super().connection_lost(exc)

    # picows callbacks (WSListener).

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._open = True
        self._tail = 0  # what picows holds now is the start of the first frame
        info = self._info
        assert info is not None  # set by _upgrade
        self._info = None
        serializers = serializers_by_subprotocol(self._listener)
        serializer = self._serializer = serializers[info["websocket_protocol"]]
        self._encode = serializer.encode
        self._frame_key = frame_key(serializer.name, "websocket")
        self._opcode = _OP_BINARY if serializer.binary else _OP_TEXT
        self._text = not serializer.binary
        # picows keeps the request and response for the connection's life: drop
        # their headers and the request line (what the session needs is copied
        # into the transport info).
        request = transport.request
        if request is not None:
            request.headers = _NO_HEADERS
            request.method = request.path = request.version = b""
        if transport.response is not None:
            transport.response.headers = _NO_HEADERS
        self._attach(serializer.name, info)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self._tail = frame.tail_size
        self._frames_in_read = True
        if self._failed:
            return
        if frame.rsv1 or frame.rsv2 or frame.rsv3:  # no extension was negotiated
            self._fail(WSCloseCode.PROTOCOL_ERROR, "reserved bits must be 0")
            return
        opcode = frame.msg_type
        if opcode is _BINARY or opcode is _TEXT:
            if self._fragments is not None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            elif frame.payload_size > self._max_in:  # before WELCOME (picows checks after)
                self._too_big()
            elif frame.fin:
                self._deliver(frame.get_payload_as_bytes(), opcode is _TEXT)
            else:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
                self._fragments_text = opcode is _TEXT
        elif opcode is _CONT:
            fragments = self._fragments
            if fragments is None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
            elif len(fragments) + frame.payload_size > self._max_in:
                self._too_big()
            else:
                fragments += frame.get_payload_as_memoryview()
                if frame.fin:
                    self._fragments = None
                    self._deliver(bytes(fragments), self._fragments_text)
        elif opcode is _PING:
            if not self._close_sent:
                payload = frame.get_payload_as_bytes()
                self._control(_frame_header(_OP_PONG, len(payload)) + payload)
        elif opcode is _CLOSE:
            self._on_close_frame(frame)
        # PONG needs nothing.

    # Sink methods called by the router during flush().

    def send_messages(self, msgs: list[list]) -> None:
        """Encode and frame ``msgs``; write them, and pending control frames, at once;
        hold them while writing is paused (see :class:`BaseConnection`).

        A message that cannot be encoded, or larger than the listener's
        ``max_message_size``, is reported to the session as undeliverable and skipped.
        """
        if self._closing or self._close_sent or not self._open:
            return
        if not self._established:
            self._check_welcome(msgs)
        parts = self._pending
        if parts is None:
            if len(msgs) == 1 and not self._write_paused:
                msg = msgs[0]
                if type(msg) is SharedMessage:  # fan-out: one EVENT per receiver
                    self._write_shared(msg)
                else:
                    self._write_one(msg)
                return
            parts = []
        else:
            self._pending = None
            self._sync_frame_path()
        if self._write_paused:
            self._hold(parts, msgs)
            return
        encode = self._serializer.encode
        limit = self._listener.max_message_size
        opcode = self._opcode
        size = 0
        for msg in msgs:
            if type(msg) is SharedMessage:
                # The same frame for every receiver (an EVENT's fan-out): made once.
                frame: Any = msg.encoded.get(self._frame_key)  # type: ignore[arg-type]
                if frame is None:
                    frame = frame_shared(self, msg, opcode)
                    if frame is None:
                        continue
                n = server_frame_length(frame)
                if n > limit:
                    self._too_large(msg, n)
                    continue
                parts.append(frame)
                size += n
                continue
            try:
                data = encode(msg)
            except Exception as exc:  # any encoder failure: not representable
                self._unencodable(msg, exc)
                continue
            n = len(data)
            if n > limit:
                self._too_large(msg, n)
                continue
            parts.append(_frame_header(opcode, n))
            parts.append(data)
            size += n
        transport = self._transport
        if parts and transport is not None and not transport.is_closing():
            write_parts(transport, parts, size, WEBSOCKET_TRAFFIC)
        if self._write_paused:
            self._check_backlog()

    def _write_one(self, msg: list) -> None:
        """:meth:`send_messages` of a single message, writing allowed and nothing of
        the connection's own waiting: one frame, one write."""
        try:
            data = self._serializer.encode(msg)
        except Exception as exc:  # any encoder failure: not representable
            self._unencodable(msg, exc)
            return
        n = len(data)
        if n > self._listener.max_message_size:
            self._too_large(msg, n)
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            frame = _frame_header(self._opcode, n) + data
            transport.write(frame)
            WEBSOCKET_TRAFFIC.sent += len(frame)
            if self._write_paused:  # the write filled the transport's buffer
                self._check_backlog()

    # Output queue hooks (see BaseConnection).

    def _frame(self, parts: list[bytes], data: bytes) -> None:
        parts.append(_frame_header(self._opcode, len(data)))
        parts.append(data)

    def _frame_shared(self, msg: SharedMessage) -> bytes | None:
        return frame_shared(self, msg, self._opcode)

    def _direct_frame_opcode(self) -> int:
        return self._opcode

    def _frame_payload_length(self, frame: bytes) -> int:
        return server_frame_length(frame)

    def _write_now(self, parts: list[bytes], size: int = 0) -> None:
        transport = self._transport
        if parts and transport is not None and not transport.is_closing():
            write_parts(transport, parts, size, WEBSOCKET_TRAFFIC)

    def _send_ping(self) -> None:
        if self._open and not self._close_sent:
            self._pings = (self._pings + 1) & 0xFFFFFFFF
            self._write([_frame_header(_OP_PING, 4) + struct.pack("!I", self._pings)])

    def _on_established(self) -> None:
        self._max_in = self._listener.max_message_size

    def _feed_deferred(self) -> bool:
        inbox = self._inbox
        if inbox is None:  # pragma: no cover - deferred input is always in the inbox
            return False
        left = self._limits.messages_per_turn
        while inbox and left and not self._input_paused and self._reading:
            payload, text = inbox.popleft()
            left -= 1
            self._receive(payload, text)
        if not self._reading or not inbox:
            self._inbox = inbox = None
        self._finish_input()
        if inbox:
            return True
        if self._reading:
            self._note_partial(
                self._unparsed > 0 or self._fragments is not None, False, _monotonic()
            )
        return False

    # Internals.

    def _upgrade(self, request: WSUpgradeRequest, listener: _Listener) -> Any:
        """picows' listener factory (through ``listener``): check the path, choose
        the subprotocol."""
        if self._refused:  # max_connections_per_address (logged when it connected)
            self._logged = self._failed = True
            self._reading = False
            response = WSUpgradeResponse.create_error_response(
                503, b"Too many connections from this address\n"
            )
            return WSUpgradeResponseWithListener(response, None)
        path = request.path.decode("latin-1")
        if path.partition("?")[0] != self._listener.path:
            self._refuse(404, f"no WebSocket endpoint at path {self._limits.clip(path)}")
            return None  # picows answers 404 Not Found
        refused = origin_refused(
            request.headers.getall("Origin", ()), self._listener, self._limits
        )
        if refused:
            self._refuse(403, refused)
            response = WSUpgradeResponse.create_error_response(
                403, b"Forbidden: origin not allowed\n"
            )
            return WSUpgradeResponseWithListener(response, None)
        offered = []
        for value in request.headers.getall("Sec-WebSocket-Protocol", ()):
            for name in value.split(","):
                name = name.strip()
                if name:
                    offered.append(name)
        # WAMP clients list subprotocols in their order of preference: the client's order wins.
        serializers = serializers_by_subprotocol(self._listener)
        chosen = next((name for name in offered if name in serializers), None)
        if chosen is None:
            reason = (
                f"no supported WAMP subprotocol offered (offered: {', '.join(offered) or 'none'}; "
                f"supported: {', '.join(serializers)})"
            )
            self._refuse(400, self._limits.clip(reason))
            response = WSUpgradeResponse.create_error_response(400, reason.encode() + b"\n")
            return WSUpgradeResponseWithListener(response, None)
        self._info = {
            "http_headers_received": received_headers(request.headers.items()),
            "http_path": http_path(path, self._listener),
            "websocket_protocol": serializers[chosen].subprotocol,
            "websocket_extensions": (),
        }
        # picows wants "Connection: upgrade" exactly; RFC 6455 allows a token list.
        connection = request.headers.getall("Connection", ())
        if len(connection) != 1 or connection[0].lower() != "upgrade":
            tokens = {t.strip().lower() for v in connection for t in v.split(",")}
            if "upgrade" in tokens:
                request.headers["Connection"] = "upgrade"
        return WSUpgradeResponseWithListener(_Switching(chosen), listener)

    def _refuse(self, status: int, reason: str) -> None:
        self._limits.log(
            "ws_refused",
            logging.WARNING,
            "%s: WebSocket handshake refused (HTTP %d): %s",
            self.peer,
            status,
            reason,
            logger=log,
        )
        self._logged = self._failed = True
        self._reading = False

    def _after_read(self, now: float) -> None:
        """After picows has parsed one read: note its failures, flush, write."""
        assert self._transport is not None  # set by connection_made, before any read
        parser = self._parser
        ws = parser.transport
        if not self._open and not self._logged and ws.response is not None:
            # picows itself refused the request (malformed, or not a valid upgrade).
            body = self._limits.clip(
                (ws.response.body or b"").decode("utf-8", "replace").strip()
            )
            if self._info:
                self._limits.log(
                    "ws_refused",
                    logging.WARNING,
                    "%s: WebSocket handshake refused (HTTP %d): %s",
                    self.peer,
                    ws.response.status,
                    body,
                    logger=log,
                )
            else:
                self._limits.log(
                    "ws_http", logging.WARNING, "%s: invalid HTTP request: %s", self.peer, body,
                    logger=log,
                )
            self._logged = self._failed = True
            self._reading = False
        elif not self._open and not self._logged and self._transport.is_closing():
            # picows dropped the connection without an answer: its only reason is
            # a request whose headers do not end within its limit.
            self._limits.log(
                "ws_http", logging.WARNING, "%s: invalid HTTP request: headers over 16 KiB",
                self.peer, logger=log,
            )
            self._logged = self._failed = True
            self._reading = False
        elif ws.is_close_frame_sent and not self._close_sent:
            # picows failed the connection (a protocol error, a frame over the size
            # limit): it sent the CLOSE frame and closes the transport shortly.
            self._close_sent = self._failed = True
            self._stop_frame_path()
            self._reading = False
            self._fragments = None
            if not self._logged:
                self._logged = True
                sent = ws.close_handshake.sent if ws.close_handshake is not None else None
                reason = sent.reason if sent is not None else "?"
                code = int(sent.code) if sent is not None else 0
                if code == 1009:
                    self._limits.count("oversize_frames")
                self._limits.log(
                    "ws_error",
                    logging.WARNING,
                    "%s: WebSocket protocol error: %s (close code %d)",
                    self.peer,
                    self._limits.clip(reason),
                    code,
                    logger=log,
                )
        elif (
            self._open
            and not self._established
            and not self._failed
            and self._unparsed > self._max_in + _MAX_HEADER
        ):
            self._too_big()  # a frame growing past the limit before WELCOME
        self._finish_input()
        if self._inbox and self._reading:
            self._defer_input()
        elif self._open and self._reading and not self._deferred:
            if self._unparsed > 0 or self._fragments is not None:
                self._note_partial(True, self._frames_in_read, now)
            else:
                self._partial_since = 0.0  # _note_partial's usual case, without a call

    def _finish_input(self) -> None:
        """Flush what the messages fed produced; write pending control frames; close."""
        if self._fed:
            self._fed = False
            self._router.flush_soon(self._last_read)
        pending = self._pending
        if pending:
            self._pending = None
            self._write(pending)
            self._sync_frame_path()
        if self._eof:
            self._eof = False
            self._start_closing()
            self._close_after_output(self._close_transport)

    def _deliver(self, payload: bytes, text: bool) -> None:
        """Feed one message to the session now, or keep it for a later turn."""
        if self._session is None or not self._reading:
            return  # input closed: discard
        if self._inbox or not self._left or self._input_paused:
            if self._inbox is None:
                self._inbox = deque()
            self._inbox.append((payload, text))
            return
        self._left -= 1
        self._receive(payload, text)

    def _receive(self, payload: bytes, text: bool) -> None:
        """Decode one WAMP message and feed it to the session."""
        session = self._session
        if session is None or not self._reading:
            return  # input closed: discard
        serializer = self._serializer
        if text is not self._text:
            if text and not is_utf8(payload):
                self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8 in a text message")
                return
            # The router logs the protocol violation (one line per bad input).
            self._fed = True
            self._reading = False  # the router aborts the session; read nothing more
            session.receive_invalid(
                f"{'text' if text else 'binary'} WebSocket message on a "
                f"{serializer.subprotocol} connection (it takes "
                f"{'text' if self._text else 'binary'} messages)"
            )
            return
        try:
            msg = serializer.decode(payload)
        except SerializationError as exc:
            if text and not is_utf8(payload):
                self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8 in a text message")
                return
            # The router logs the protocol violation (one line per bad input).
            log.debug("%s: undecodable %s message: %s", self.peer, serializer.name, exc)
            self._fed = True
            self._reading = False  # the router aborts the session; read nothing more
            session.receive_invalid(str(exc))
            return
        self._fed = True
        session.receive(msg)

    def _too_big(self) -> None:
        self._limits.count("oversize_frames")
        self._fail(
            WSCloseCode.MESSAGE_TOO_BIG,
            f"message over {self._max_in} bytes"
            + ("" if self._established else " before the session is established"),
        )

    def _on_close_frame(self, frame: WSFrame) -> None:
        """The peer's CLOSE: answer it (unless ours went first), end TCP, detach."""
        inbox = self._inbox
        if inbox is not None:
            while inbox and self._reading:  # what it sent before closing (one read at most)
                self._receive(*inbox.popleft())
            self._inbox = None
        self._reading = False
        self._close_rcvd = True
        self._failed = True  # nothing may follow a CLOSE frame
        if self._fed:
            self._fed = False
            self._router.flush()  # replies to this read's messages go before our CLOSE
        if not self._close_sent:
            self._close_sent = True
            payload = frame.get_payload_as_bytes()
            # Echo the status code (RFC 6455 §5.5.1), without the reason.
            self._control(_close_frame(int.from_bytes(payload[:2], "big") if payload else None))
        # The server ends the TCP connection first (RFC 6455 §7.1.1).
        self._eof = True
        self._detach()

    def _fail(self, code: WSCloseCode, reason: str) -> None:
        """A protocol error picows does not see: CLOSE with ``code``, then end TCP."""
        self._limits.log(
            "ws_error",
            logging.WARNING,
            "%s: WebSocket protocol error: %s (close code %d)",
            self.peer,
            reason,
            int(code),  # type: ignore[call-overload]
            logger=log,
        )
        self._logged = self._failed = True
        self._reading = False
        self._fragments = None
        self._inbox = None
        if not self._close_sent:
            self._close_sent = True
            # picows' stub declares WSCloseCode a plain Enum; at runtime it is an IntEnum.
            self._control(_close_frame(int(code)))  # type: ignore[call-overload]
        self._eof = True

    def _control(self, frame: bytes) -> None:
        """Queue a control frame for the next output."""
        if self._pending is None:
            self._pending = [frame]
            self._stop_frame_path()
        else:
            self._pending.append(frame)

    def _own_output_waiting(self) -> bool:
        return self._pending is not None or self._close_sent or not self._open

    def _close_transport(self) -> None:
        self._cancel_timer()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _end_connection(self) -> None:
        """Start the WebSocket closing handshake (all output is written)."""
        if self._open and not self._close_sent:
            self._close_sent = True
            self._control(_CLOSE_NORMAL)
            pending, self._pending = self._pending, None
            assert pending is not None
            self._write(pending)
            self._set_timer(CLOSE_TIMEOUT, self._close_timed_out)
        elif not self._open and self._transport is not None:
            self._transport.close()


WEBSOCKET_IMPLEMENTATIONS[PicowsConnection.implementation] = PicowsConnection
