"""WAMP over WebSocket: websockets' sans-I/O ``ServerProtocol`` on a plain asyncio Protocol.

websockets' asyncio server costs 25-40 us per message; driving its sans-I/O core
from an :class:`asyncio.Protocol` (uvloop) costs about 6 us, with the same
handshake, framing and RFC 6455 checks.  Per read: feed the bytes, turn the
frames into WAMP messages for the session, flush the router, and write what
this connection owes (handshake response, pongs, close frames and the router's
replies) in one ``transport.write``.

Outgoing data frames are framed here rather than by ``Frame.serialize`` when no
extension was negotiated: a server frame is unmasked, so it is a 2-10 byte
header and the payload (about 0.2 us instead of 1 us per message).  With
permessage-deflate, websockets frames (and compresses) them.

Limits (see :mod:`fastwamp.transport.base`): until the session is
established the largest message is ``max_handshake_message_size`` (the
listener's ``max_message_size`` after WELCOME; over it: close 1009); a text
message that is not UTF-8 closes with 1007; a binary message on
``wamp.2.json`` or a text one on ``wamp.2.msgpack`` / ``wamp.2.cbor`` is a
protocol violation (ABORT); a client over ``max_connections_per_address`` gets
HTTP 503; the router PINGs a silent peer (``auto_ping_interval``).  At most
``messages_per_turn`` messages of one connection are fed per loop turn: the
rest of the events of a read wait in ``_events``.

Implementations are chosen by name (:data:`WEBSOCKET_IMPLEMENTATIONS`, see
:func:`websocket_connection_class`, and the listener's ``implementation``,
whose default "auto" is picows unless the listener negotiates compression):
another engine is a class with the same constructor and sink methods.  The
picows one (:mod:`fastwamp.transport.picows_ws`, the default) registers itself
when it is first needed.
"""

from __future__ import annotations

import importlib
import logging
import struct
import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from websockets.exceptions import NegotiationError
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.frames import BINARY, CLOSE, CONT, TEXT, CloseCode, Frame
from websockets.http11 import Request
from websockets.protocol import CONNECTING, OPEN, SEND_EOF, Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.typing import Subprotocol

from fastwamp.config import ListenerConfig
from fastwamp.origins import origin_policy
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
from fastwamp.wamp.serializers import (
    SerializationError,
    Serializer,
    SharedMessage,
    make_serializer,
)

log = logging.getLogger("fastwamp.transport.websocket")
#: Logger handed to websockets; keep it at WARNING unless debugging the wire
#: (at INFO it logs every connection opening and closing).
wire_log = logging.getLogger("fastwamp.transport.websocket.wire")

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def _frame_header(opcode: int, length: int) -> bytes:
    """Header of an unmasked, final, uncompressed frame (RFC 6455 §5.2)."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 65536:
        return _pack_short(0x80 | opcode, 126, length)
    return _pack_long(0x80 | opcode, 127, length)


def server_frame_length(frame: bytes) -> int:
    """The payload length of a frame made with :func:`_frame_header` and its payload."""
    b1 = frame[1]
    return len(frame) - (2 if b1 < 126 else 4 if b1 == 126 else 10)


def frame_shared(conn: Any, msg: SharedMessage, opcode: int) -> bytes | None:
    """Encode ``msg`` for ``conn`` and frame it as ``opcode``, keeping the frame in
    ``msg`` for its other receivers; None if it cannot be encoded (reported)."""
    try:
        data = conn._encode(msg)
    except Exception as exc:  # any encoder failure: not representable
        conn._unencodable(msg, exc)
        return None
    frame = msg.encoded[conn._frame_key] = _frame_header(opcode, len(data)) + data
    return frame


def _select_subprotocol(protocol: ServerProtocol,
                        offered: Sequence[Subprotocol]) -> Subprotocol:
    """Pick the first WAMP subprotocol the client offers that this listener supports.

    WAMP clients list subprotocols in their order of preference, so the client's
    order wins.  Offering none of the supported ones fails the handshake (HTTP 400).
    """
    available = protocol.available_subprotocols or ()
    for subprotocol in offered:
        if subprotocol in available:
            return subprotocol
    raise NegotiationError(
        f"no supported WAMP subprotocol offered (offered: {', '.join(offered) or 'none'}; "
        f"supported: {', '.join(available)})"
    )


def is_utf8(data: bytes | bytearray) -> bool:
    """Whether ``data`` is valid UTF-8 (RFC 3629: no surrogates, no overlong forms)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _set_max_size(ws: ServerProtocol, size: int) -> None:
    """Change the largest message websockets accepts (its attribute name varies)."""
    if hasattr(ws, "max_message_size"):  # websockets >= 15
        ws.max_message_size = size
    else:  # pragma: no cover - older websockets
        ws.max_size = size  # type: ignore[attr-defined]


_BY_SUBPROTOCOL: dict[tuple[str, ...], dict[str, Serializer]] = {}


def serializers_by_subprotocol(listener: ListenerConfig) -> dict[str, Serializer]:
    """The listener's serializers by WAMP subprotocol (one shared dict per list of names)."""
    key = tuple(listener.serializers)
    found = _BY_SUBPROTOCOL.get(key)
    if found is None:
        serializers = (make_serializer(name) for name in key)
        found = _BY_SUBPROTOCOL[key] = {s.subprotocol: s for s in serializers}
    return found


_PROTOCOL_SETUP: dict[tuple[tuple[str, ...], bool], tuple[list[Subprotocol], Any]] = {}


def _protocol_setup(listener: ListenerConfig) -> tuple[list[Subprotocol], Any]:
    """websockets' subprotocols and extension factories for a listener (shared, read-only)."""
    key = (tuple(listener.serializers), listener.compression)
    found = _PROTOCOL_SETUP.get(key)
    if found is None:
        subprotocols = [Subprotocol(p) for p in serializers_by_subprotocol(listener)]
        extensions = enable_server_permessage_deflate(None) if listener.compression else None
        found = _PROTOCOL_SETUP[key] = (subprotocols, extensions)
    return found


class _ServerProtocol(ServerProtocol):
    """websockets' server protocol, choosing the WAMP subprotocol (:func:`_select_subprotocol`)
    without a bound method per connection."""

    def select_subprotocol(self, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        return _select_subprotocol(self, subprotocols)


#: Request headers that serve the opening handshake only (RFC 6455 §4.2.1, §9.1,
#: §11.3.4, and HTTP caching directives): not kept in ``http_headers_received``.
HANDSHAKE_ONLY_HEADERS = frozenset({
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "pragma",
    "cache-control",
})


def received_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The request headers kept for the session's ``transport_info["http_headers_received"]``.

    Names lowercased (and shared between connections), repeated headers joined
    with ", ", the handshake-only ones (:data:`HANDSHAKE_ONLY_HEADERS`) left
    out: they are not needed once the connection is open, and every byte kept
    here is kept for the life of the session.
    """
    headers: dict[str, str] = {}
    keys = _HEADER_KEYS
    for name, value in items:
        key = keys.get(name)
        if key is None:
            key = name.lower()
            key = "" if key in HANDSHAKE_ONLY_HEADERS else sys.intern(key)
            if len(keys) < _HEADER_KEYS_MAX:  # names are the client's: a bounded cache
                keys[name] = key
        if not key:
            continue
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


#: Header name as received -> its key in received_headers ("": left out).
_HEADER_KEYS: dict[str, str] = {}
_HEADER_KEYS_MAX = 512


def origin_refused(
    origins: Sequence[str], listener: ListenerConfig, limits: ConnectionLimits
) -> str:
    """Why a handshake with these ``Origin`` header values is refused (HTTP 403) by
    the listener's ``allowed_origins``; "" if it is accepted (no header: not a
    browser).  More than one ``Origin`` header is refused (RFC 6454 allows one)."""
    if not origins:
        return ""
    if len(origins) > 1:
        return f"{len(origins)} Origin headers (a request has at most one)"
    origin = origins[0]
    if origin_policy(listener.allowed_origins).allows(origin):
        return ""
    return (
        f"origin {limits.clip(origin)} is not in allowed_origins "
        "(add it to the listener's allowed_origins to accept it)"
    )


def http_path(path: str, listener: ListenerConfig) -> str:
    """``path``, or the listener's equal string (shared by its connections)."""
    return listener.path if path == listener.path else path


#: Replaces each connection's random ``ServerProtocol.id`` (only websockets'
#: asyncio layer logs it; a UUID per connection costs 170 bytes).
_NO_ID = uuid.UUID(int=0)
#: The negotiated extensions of a connection that has none (never changed after
#: the handshake).
_NO_EXTENSIONS: list[Any] = []
#: StreamReader.at_eof: where websockets' frame parser waits between frames.
_AT_EOF_CODE = StreamReader.at_eof.__code__
#: End of an HTTP request's header block.
_END_OF_HEAD = b"\r\n\r\n"


class WebSocketConnection(BaseConnection):
    """One WAMP-over-WebSocket client connection (engine: ``websockets`` sans-I/O)."""

    transport_type = "websocket"
    #: Name under which :data:`WEBSOCKET_IMPLEMENTATIONS` lists this class.
    implementation = "websockets"

    __slots__ = (
        "_ws",
        "_opcode",
        "_text",
        "_fast_frames",
        "_fragments",
        "_fragments_text",
        "_failed_logged",
        "_request_started",
        "_head",
        "_events",
        "_events_pos",
        "_pings",
    )

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(router, listener, connections, limits)
        subprotocols, extensions = _protocol_setup(listener)
        self._ws = ws = _ServerProtocol(
            subprotocols=subprotocols,
            extensions=extensions,
            # Until WELCOME; the listener's max_message_size after (_on_established).
            max_size=min(listener.max_message_size, self._limits.max_handshake_message_size),
            logger=wire_log,
        )
        ws.id = _NO_ID
        self._serializer: Any = None
        self._opcode = TEXT
        self._text = True  # the negotiated serializer takes text messages (JSON)
        self._fast_frames = True
        self._fragments: bytearray | None = None
        self._fragments_text = False
        self._failed_logged = False
        self._request_started = False
        #: Until the HTTP request is complete: its last bytes (to find its end across
        #: reads); None after.
        self._head: bytes | None = b""
        #: Events of a read not handled yet (turn budget, pause_input), from _events_pos.
        self._events: list[Any] | None = None
        self._events_pos = 0
        self._pings = 0

    # asyncio.Protocol callbacks.

    def data_received(self, data: bytes) -> None:
        self._last_read = now = _monotonic()
        WEBSOCKET_TRAFFIC.received += len(data)
        ws = self._ws
        if self._head is not None:
            if not self._request_started and self._tls is None and is_tls_client_hello(data):
                self._failed_logged = True
                self._head = None
                self._tls_client_on_plain_listener()
                return
            self._request_started = True
            data = self._receive_request(data)
        more = False
        events = None
        if data:
            ws.receive_data(data)
            events = ws.events_received()
        if events:
            if self._events:  # behind events waiting for their turn (reading is paused)
                self._events.extend(events)
            else:
                more = self._handle_events(events, 0)
        if not self._failed_logged and (ws.parser_exc is not None or ws.handshake_exc is not None):
            self._log_failure()
        self._write(ws.data_to_send())
        if more:
            self._defer_input()
        elif self._session is not None and self._reading and not self._deferred:
            self._note_partial(
                bool(ws.reader.buffer) or self._fragments is not None, bool(events), now
            )

    def _receive_request(self, data: bytes) -> bytes:
        """Feed the HTTP request to websockets, up to its end and no further; once
        it is complete, handle it and return what follows it (else ``b""``).

        After the handshake, websockets' parser stays suspended in the generator
        that parsed the request, and so keeps the request (its headers) alive for
        the life of the connection: it is replaced by a fresh frame parser, which
        is only equivalent at a frame boundary, hence the exact split.
        """
        tail = self._head
        assert tail is not None
        joined = tail + data if tail else data
        end = joined.find(_END_OF_HEAD)
        ws = self._ws
        if end < 0:
            self._head = joined[-3:]
            ws.receive_data(data)
            if ws.state is not CONNECTING:  # refused, failed: no request to wait for
                self._head = None
            return b""
        self._head = None
        split = end + 4 - len(tail)
        ws.receive_data(data[:split] if split < len(data) else data)
        events = ws.events_received()
        if events:
            self._handle_events(events, 0)
        if ws.state is OPEN:
            ws.parser = Protocol.parse(ws)  # the frame parser alone, without the request
            next(ws.parser)
        return data[split:]

    def _handle_events(self, events: list[Any], pos: int) -> bool:
        """Handle ``events[pos:]``: at most ``messages_per_turn`` messages, none once
        input is paused (all of them when the peer is closing); True if some are left
        (kept in ``self._events`` for a later turn)."""
        left = self._limits.messages_per_turn
        last = events[-1]
        closing = type(last) is Frame and last.opcode is CLOSE  # nothing follows a CLOSE
        fed = False
        end = len(events)
        while pos < end:
            event = events[pos]
            if type(event) is Frame:
                opcode = event.opcode
                if opcode is TEXT or opcode is BINARY or opcode is CONT:
                    if (not left or self._input_paused) and self._reading and not closing:
                        break
                    if opcode is CONT:
                        # websockets checked the sequence and the size limit.
                        assert self._fragments is not None
                        self._fragments += event.data
                        if event.fin:
                            payload, self._fragments = self._fragments, None
                            if self._deliver(payload, self._fragments_text):
                                fed = True
                                left -= 1
                    elif event.fin:
                        # websockets types Frame.data as BytesLike, but its parser
                        # only makes bytes (a memoryview would not reach here).
                        if self._deliver(event.data, opcode is TEXT):  # type: ignore[arg-type]
                            fed = True
                            left -= 1
                    else:
                        self._fragments = bytearray(event.data)
                        self._fragments_text = opcode is TEXT
                elif opcode is CLOSE:
                    # websockets echoed the close frame and will end the TCP stream.
                    self._reading = False
                    if fed:
                        self._router.flush()
                        fed = False
                    self._detach()
                # PING is answered by websockets; PONG needs nothing.
            elif isinstance(event, Request):
                self._handshake(event)
            pos += 1
        if fed:
            self._router.flush_soon(self._last_read)
        if pos < end:
            self._events, self._events_pos = events, pos
            return True
        self._events, self._events_pos = None, 0
        return False

    def _feed_deferred(self) -> bool:
        if not self._events:  # pragma: no cover - deferred input is always kept here
            return False
        more = self._handle_events(self._events, self._events_pos)
        ws = self._ws
        self._write(ws.data_to_send())
        if not more and self._reading:
            self._note_partial(
                bool(ws.reader.buffer) or self._fragments is not None, False, _monotonic()
            )
        return more

    def eof_received(self) -> bool:
        ws = self._ws
        ws.receive_eof()
        if not self._failed_logged and (ws.parser_exc is not None or ws.handshake_exc is not None):
            self._log_failure()
        self._write(ws.data_to_send())
        return False  # let the transport close itself

    # Sink methods called by the router during flush().

    def send_messages(self, msgs: list[list]) -> None:
        """Encode and frame ``msgs``; write them, and anything pending, at once;
        hold them while writing is paused (see :class:`BaseConnection`).

        A message that cannot be encoded, or larger than the listener's
        ``max_message_size``, is reported to the session as undeliverable and skipped.
        """
        ws = self._ws
        if ws.state is not OPEN or self._closing:
            return
        if not self._established:
            self._check_welcome(msgs)
        key = self._frame_key  # None with compression: frames are per connection
        if key is not None and len(msgs) == 1 and not ws.writes and not self._write_paused:
            msg = msgs[0]
            if type(msg) is SharedMessage:  # fan-out: one EVENT per receiver
                self._write_shared(msg)
                return
        parts = ws.data_to_send()
        if self._write_paused:
            self._hold(parts, msgs)
            return
        encode = self._serializer.encode
        limit = self._listener.max_message_size
        size = 0
        for msg in msgs:
            if key is not None and type(msg) is SharedMessage:
                # The same frame for every receiver (an EVENT's fan-out): made once.
                frame: Any = msg.encoded.get(key)
                if frame is None:
                    frame = frame_shared(self, msg, self._opcode)
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
            if self._fast_frames:
                parts.append(_frame_header(self._opcode, n))
                parts.append(data)
            else:
                if self._opcode is TEXT:
                    ws.send_text(data)
                else:
                    ws.send_binary(data)
                parts.extend(ws.data_to_send())
            size += n
        self._write_now(parts, size)
        if self._write_paused:
            self._check_backlog()

    # Output queue hooks (see BaseConnection).

    def _frame(self, parts: list[bytes], data: bytes) -> None:
        if self._fast_frames:
            parts.append(_frame_header(self._opcode, len(data)))
            parts.append(data)
            return
        # permessage-deflate: websockets compresses, in the order messages are written.
        ws = self._ws
        if ws.state is not OPEN:
            return  # the client's close frame came first; it gets no more data frames
        if self._opcode is TEXT:
            ws.send_text(data)
        else:
            ws.send_binary(data)
        parts.extend(ws.data_to_send())

    def _frame_shared(self, msg: SharedMessage) -> bytes | None:
        return frame_shared(self, msg, self._opcode)

    def _frame_payload_length(self, frame: bytes) -> int:
        return server_frame_length(frame)

    def _write_now(self, parts: list[bytes], size: int = 0) -> None:
        """Write ``parts`` in one call; close the transport when they end with EOF."""
        if not parts:
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        eof = SEND_EOF in parts
        if eof:
            parts = [part for part in parts if part]
        if parts:
            write_parts(transport, parts, size, WEBSOCKET_TRAFFIC)
        if eof:
            # The server ends the TCP connection first (RFC 6455 §7.1.1).
            self._cancel_timer()
            self._start_closing()  # bounded: a peer that never reads is dropped
            transport.close()

    def _send_ping(self) -> None:
        ws = self._ws
        if ws.state is OPEN:
            self._fresh_parser()  # the peer has been idle: drop its last frame
            self._pings = (self._pings + 1) & 0xFFFFFFFF
            ws.send_ping(struct.pack("!I", self._pings))
            self._write(ws.data_to_send())

    def _on_established(self) -> None:
        _set_max_size(self._ws, self._listener.max_message_size)
        self._fresh_parser()  # drop the HELLO frame

    def _fresh_parser(self) -> None:
        """Replace websockets' frame parser by a new one if it waits between frames.

        Its generator keeps the last frame it parsed (a local variable) until
        the next frame arrives: an idle connection would keep its last message
        (the HELLO, or a large payload) for good.  Done when the session is
        established and when an idle peer gets a PING, not per message (a new
        parser costs about a microsecond).
        """
        ws = self._ws
        waiting = getattr(ws.parser, "gi_yieldfrom", None)
        if (
            ws.state is OPEN
            and waiting is not None
            and waiting.gi_code is _AT_EOF_CODE
            and not ws.reader.buffer
        ):
            ws.parser = Protocol.parse(ws)
            next(ws.parser)

    # Internals.

    def _handshake(self, request: Request) -> None:
        ws = self._ws
        path = request.path.partition("?")[0]
        if self._refused:  # max_connections_per_address (logged when it connected)
            response = ws.reject(503, "Too many connections from this address\n")
            reason = ""
        elif path != self._listener.path:
            response = ws.reject(404, "Not Found\n")
            reason = f"no WebSocket endpoint at path {self._limits.clip(request.path)}"
        elif refused := origin_refused(
            request.headers.get_all("Origin"), self._listener, self._limits
        ):
            response = ws.reject(403, "Forbidden: origin not allowed\n")
            reason = refused
        else:
            response = ws.accept(request)
            reason = (
                self._limits.clip(str(ws.handshake_exc)) if ws.handshake_exc is not None else ""
            )
        ws.send_response(response)
        if response.status_code != 101:
            self._failed_logged = True
            if reason:
                self._limits.log(
                    "ws_refused",
                    logging.WARNING,
                    "%s: WebSocket handshake refused (HTTP %d): %s",
                    self.peer,
                    response.status_code,
                    reason,
                    logger=log,
                )
            self._reading = False
            return
        assert ws.subprotocol is not None
        serializer = self._serializer = serializers_by_subprotocol(self._listener)[ws.subprotocol]
        self._encode = serializer.encode
        self._opcode = BINARY if serializer.binary else TEXT
        self._text = not serializer.binary
        self._fast_frames = not ws.extensions
        if self._fast_frames:
            self._frame_key = frame_key(serializer.name, "websocket")
        # Shared objects where websockets made one per connection.
        ws.subprotocol = Subprotocol(serializer.subprotocol)
        if not ws.extensions:
            ws.extensions = _NO_EXTENSIONS
        self._attach(
            serializer.name,
            {
                "http_headers_received": received_headers(request.headers.raw_items()),
                "http_path": http_path(request.path, self._listener),
                "websocket_protocol": serializer.subprotocol,
                "websocket_extensions": tuple(ext.name for ext in ws.extensions),
            },
        )

    def _deliver(self, payload: bytes | bytearray, text: bool) -> bool:
        """Decode one WAMP message and feed it to the session; True if fed."""
        session = self._session
        if session is None or not self._reading:
            return False  # refused handshake, or input closed: discard
        serializer = self._serializer
        if text is not self._text:
            if text and not is_utf8(payload):
                self._invalid_utf8()
                return False
            # The router logs the protocol violation (one line per bad input).
            self._reading = False  # the router aborts the session; read nothing more
            session.receive_invalid(
                f"{'text' if text else 'binary'} WebSocket message on a "
                f"{serializer.subprotocol} connection (it takes "
                f"{'text' if self._text else 'binary'} messages)"
            )
            return True
        try:
            msg = serializer.decode(payload)
        except SerializationError as exc:
            if text and not is_utf8(payload):
                self._invalid_utf8()
                return False
            # The router logs the protocol violation (one line per bad input).
            log.debug("%s: undecodable %s message: %s", self.peer, serializer.name, exc)
            self._reading = False  # the router aborts the session; read nothing more
            session.receive_invalid(str(exc))
            return True
        session.receive(msg)
        return True

    def _invalid_utf8(self) -> None:
        """A text message that is not UTF-8: fail the WebSocket with 1007 (RFC 6455 §8.1)."""
        self._reading = False
        self._failed_logged = True
        self._limits.log(
            "ws_error",
            logging.WARNING,
            "%s: WebSocket protocol error: invalid UTF-8 in a text message (close code 1007)",
            self.peer,
            logger=log,
        )
        self._ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")

    def _log_failure(self) -> None:
        """Log, once, why websockets failed the connection."""
        self._failed_logged = True
        self._reading = False
        ws = self._ws
        if self._session is None and ws.handshake_exc is not None:
            exc = ws.handshake_exc
            if isinstance(exc.__cause__, EOFError):
                # A bare TCP connect-and-close (port probe, health check) is not worth a line.
                self._limits.log(
                    "ws_eof",
                    logging.INFO if self._request_started else logging.DEBUG,
                    "%s: connection closed before a complete HTTP request",
                    self.peer,
                    logger=log,
                )
            else:
                cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
                self._limits.log(
                    "ws_http",
                    logging.WARNING,
                    "%s: invalid HTTP request: %s",
                    self.peer,
                    self._limits.clip(f"{exc}{cause}"),
                    logger=log,
                )
        elif isinstance(ws.parser_exc, EOFError):
            # The peer closed TCP without a closing handshake (possibly mid-frame).
            log.debug("%s: connection closed without a WebSocket close frame", self.peer)
        else:
            if type(ws.parser_exc).__name__ == "PayloadTooBig":
                self._limits.count("oversize_frames")
            self._limits.log(
                "ws_error",
                logging.WARNING,
                "%s: WebSocket protocol error: %s%s",
                self.peer,
                self._limits.clip(str(ws.parser_exc)),
                "" if self._established else " (before the session was established)",
                logger=log,
            )

    def _end_connection(self) -> None:
        """Start the WebSocket closing handshake (all output is written)."""
        ws = self._ws
        if ws.state is OPEN:
            ws.send_close(CloseCode.NORMAL_CLOSURE)
            self._write(ws.data_to_send())
            self._set_timer(CLOSE_TIMEOUT, self._close_timed_out)
        elif ws.state is CONNECTING and self._transport is not None:
            self._transport.close()


#: WebSocket engines by name; ``serve()`` looks the listener's engine up here.
WEBSOCKET_IMPLEMENTATIONS: dict[str, type[BaseConnection]] = {
    WebSocketConnection.implementation: WebSocketConnection,
}
#: Engines imported when first needed: the module that registers each.
OPTIONAL_IMPLEMENTATIONS = {"picows": "fastwamp.transport.picows_ws"}


def websocket_connection_class(name: str = "websockets") -> type[BaseConnection]:
    """Return the WebSocket connection class registered under ``name``.

    Raises:
        KeyError: no such implementation.
        ImportError: the implementation's package is not installed.
    """
    cls = WEBSOCKET_IMPLEMENTATIONS.get(name)
    if cls is None and name in OPTIONAL_IMPLEMENTATIONS:
        importlib.import_module(OPTIONAL_IMPLEMENTATIONS[name])
        cls = WEBSOCKET_IMPLEMENTATIONS.get(name)
    if cls is None:
        raise KeyError(
            f"unknown WebSocket implementation {name!r} (available: "
            f"{', '.join(sorted({*WEBSOCKET_IMPLEMENTATIONS, *OPTIONAL_IMPLEMENTATIONS}))})"
        )
    return cls
