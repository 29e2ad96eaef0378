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

Implementations are chosen by name (:data:`WEBSOCKET_IMPLEMENTATIONS`, see
:func:`websocket_connection_class`, and the listener's ``implementation``):
another engine is a class with the same constructor and sink methods.  The
picows one (:mod:`fastwamp.transport.picows_ws`) registers itself when its
optional dependency is first needed.
"""

from __future__ import annotations

import importlib
import logging
import struct
from collections.abc import Sequence
from typing import Any

from websockets.exceptions import NegotiationError
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.frames import BINARY, CLOSE, CONT, TEXT, CloseCode, Frame
from websockets.http11 import Request
from websockets.protocol import CONNECTING, OPEN, SEND_EOF
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from fastwamp.config import ListenerConfig
from fastwamp.transport.base import CLOSE_TIMEOUT, BaseConnection, RouterLike
from fastwamp.wamp.serializers import SerializationError, Serializer, make_serializer

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


def serializers_by_subprotocol(listener: ListenerConfig) -> dict[str, Serializer]:
    """A new serializer for each of the listener's serializers, by WAMP subprotocol."""
    serializers = (make_serializer(name) for name in listener.serializers)
    return {serializer.subprotocol: serializer for serializer in serializers}


class WebSocketConnection(BaseConnection):
    """One WAMP-over-WebSocket client connection (engine: ``websockets`` sans-I/O)."""

    transport_type = "websocket"
    #: Name under which :data:`WEBSOCKET_IMPLEMENTATIONS` lists this class.
    implementation = "websockets"

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
    ) -> None:
        super().__init__(router, listener, connections)
        self._serializers = serializers_by_subprotocol(listener)
        self._ws = ServerProtocol(
            subprotocols=[Subprotocol(p) for p in self._serializers],
            select_subprotocol=_select_subprotocol,
            extensions=enable_server_permessage_deflate(None) if listener.compression else None,
            max_size=listener.max_message_size,
            logger=wire_log,
        )
        self._serializer: Any = None
        self._opcode = TEXT
        self._fast_frames = True
        self._fragments: bytearray | None = None
        self._failed_logged = False
        self._request_started = False

    # asyncio.Protocol callbacks.

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        if self._session is None:
            self._request_started = True
        ws.receive_data(data)
        events = ws.events_received()
        if events:
            fed = False
            for event in events:
                if type(event) is Frame:
                    opcode = event.opcode
                    if opcode is TEXT or opcode is BINARY:
                        if event.fin:
                            # websockets types Frame.data as BytesLike, but its parser
                            # only makes bytes (a memoryview would not reach here).
                            fed = self._deliver(event.data) or fed  # type: ignore[arg-type]
                        else:
                            self._fragments = bytearray(event.data)
                    elif opcode is CONT:
                        # websockets checked the sequence and the size limit.
                        assert self._fragments is not None
                        self._fragments += event.data
                        if event.fin:
                            payload, self._fragments = self._fragments, None
                            fed = self._deliver(payload) or fed
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
            if fed:
                self._router.flush_soon()
        if not self._failed_logged and (ws.parser_exc is not None or ws.handshake_exc is not None):
            self._log_failure()
        self._write(ws.data_to_send())

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

        A message larger than the listener's ``max_message_size`` is dropped (logged).
        """
        ws = self._ws
        if ws.state is not OPEN or self._closing:
            return
        parts = ws.data_to_send()
        if self._write_paused:
            self._hold(parts, msgs)
            return
        encode = self._serializer.encode
        limit = self._listener.max_message_size
        for msg in msgs:
            try:
                data = encode(msg)
            except SerializationError as exc:
                self._log_unencodable(msg, exc)
                continue
            if len(data) > limit:
                self._log_too_large(msg, len(data))
                continue
            if self._fast_frames:
                parts.append(_frame_header(self._opcode, len(data)))
                parts.append(data)
            else:
                if self._opcode is TEXT:
                    ws.send_text(data)
                else:
                    ws.send_binary(data)
                parts.extend(ws.data_to_send())
        self._write_now(parts)
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

    def _write_now(self, parts: list[bytes]) -> None:
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
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))
        if eof:
            # The server ends the TCP connection first (RFC 6455 §7.1.1).
            self._cancel_timer()
            transport.close()

    # Internals.

    def _handshake(self, request: Request) -> None:
        ws = self._ws
        path = request.path.partition("?")[0]
        if path != self._listener.path:
            response = ws.reject(404, "Not Found\n")
            reason = f"no WebSocket endpoint at path {request.path!r}"
        else:
            response = ws.accept(request)
            reason = str(ws.handshake_exc) if ws.handshake_exc is not None else ""
        ws.send_response(response)
        if response.status_code != 101:
            self._failed_logged = True
            log.warning(
                "%s: WebSocket handshake refused (HTTP %d): %s",
                self.peer,
                response.status_code,
                reason,
            )
            self._reading = False
            return
        assert ws.subprotocol is not None
        serializer = self._serializer = self._serializers[ws.subprotocol]
        self._encode = serializer.encode
        self._opcode = BINARY if serializer.binary else TEXT
        self._fast_frames = not ws.extensions
        headers: dict[str, str] = {}
        for name, value in request.headers.raw_items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._attach(
            serializer.name,
            {
                "http_headers_received": headers,
                "http_path": request.path,
                "websocket_protocol": ws.subprotocol,
                "websocket_extensions": [ext.name for ext in ws.extensions],
            },
        )

    def _deliver(self, payload: bytes | bytearray) -> bool:
        """Decode one WAMP message and feed it to the session; True if fed."""
        session = self._session
        if session is None or not self._reading:
            return False  # refused handshake, or input closed: discard
        try:
            msg = self._serializer.decode(payload)
        except SerializationError as exc:
            # The router logs the protocol violation (one line per bad input).
            log.debug("%s: undecodable %s message: %s", self.peer, self._serializer.name, exc)
            self._reading = False  # the router aborts the session; read nothing more
            session.receive_invalid(str(exc))
            return True
        session.receive(msg)
        return True

    def _log_failure(self) -> None:
        """Log, once, why websockets failed the connection."""
        self._failed_logged = True
        self._reading = False
        ws = self._ws
        if self._session is None and ws.handshake_exc is not None:
            exc = ws.handshake_exc
            if isinstance(exc.__cause__, EOFError):
                # A bare TCP connect-and-close (port probe, health check) is not worth a line.
                log.log(
                    logging.INFO if self._request_started else logging.DEBUG,
                    "%s: connection closed before a complete HTTP request",
                    self.peer,
                )
            else:
                cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
                log.warning("%s: invalid HTTP request: %s%s", self.peer, exc, cause)
        elif isinstance(ws.parser_exc, EOFError):
            # The peer closed TCP without a closing handshake (possibly mid-frame).
            log.debug("%s: connection closed without a WebSocket close frame", self.peer)
        else:
            log.warning("%s: WebSocket protocol error: %s", self.peer, ws.parser_exc)

    def _end_connection(self) -> None:
        """Start the WebSocket closing handshake (all output is written)."""
        ws = self._ws
        if ws.state is OPEN:
            ws.send_close(CloseCode.NORMAL_CLOSURE)
            self._write(ws.data_to_send())
            self._set_timer(CLOSE_TIMEOUT, self._close_timed_out)
        elif ws.state is CONNECTING and self._transport is not None:
            self._transport.close()

    def _log_unencodable(self, msg: list, exc: Exception) -> None:
        log.error("%s: cannot encode message %r: %s", self.peer, msg[:1], exc)

    def _log_too_large(self, msg: list, length: int) -> None:
        log.warning(
            "%s: dropped an outgoing message of %d bytes (type %r): over %d bytes",
            self.peer,
            length,
            msg[0] if msg else None,
            self._listener.max_message_size,
        )


#: WebSocket engines by name; ``serve()`` looks the listener's engine up here.
WEBSOCKET_IMPLEMENTATIONS: dict[str, type[BaseConnection]] = {
    WebSocketConnection.implementation: WebSocketConnection,
}
#: Engines on optional dependencies: the module that registers each when imported.
OPTIONAL_IMPLEMENTATIONS = {"picows": "fastwamp.transport.picows_ws"}


def websocket_connection_class(name: str = "websockets") -> type[BaseConnection]:
    """Return the WebSocket connection class registered under ``name``.

    Raises:
        KeyError: no such implementation.
        ImportError: the implementation's optional dependency is not installed.
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
