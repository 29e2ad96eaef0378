"""WAMP over RawSocket (TCP): the 4-byte handshake and 4-byte frame headers.

Handshake (client → router): ``0x7F | LLLL SSSS | 0 | 0``; ``2**(9+L)`` is the
largest message the client accepts, ``S`` its serializer.  The router answers
``0x7F | LLLL SSSS | 0 | 0`` with its own ``L`` and the echoed serializer, or
``0x7F | EEEE 0000 | 0 | 0`` with an error code and closes.  A first octet other
than 0x7F closes the connection without an answer.

Frames: ``RRRR XTTT`` then a 24-bit big-endian length, then the payload.  ``X``
is a 25th length bit, set only for a length of exactly 2**24.  ``T`` is 0 for a
WAMP message, 1 for PING (answered at once with a PONG carrying the same
payload), 2 for PONG (ignored); types 3-7 and nonzero ``R`` bits fail the
connection.  The router sends PING itself to a peer it has not heard from for
the listener's ``auto_ping_interval`` (see :mod:`fastwamp.transport.base`), if
the peer has shown it handles PING/PONG (it sent one of them) or the listener's
``rawsocket_ping`` is ``"always"``: Autobahn|Python's RawSocket clients fail the
connection on a PING frame (asyncio: ``ping()`` raises NotImplementedError;
Twisted: the type bits make the length too large).

Limits: until the session is established, frames over
``max_handshake_message_size`` close the connection (the handshake reply
announces the listener's ``max_message_size``, which applies after WELCOME).  A
client over ``max_connections_per_address`` gets the error reply
``0x7F 0x40 0 0`` (maximum connection count reached) to its handshake.  At most
``messages_per_turn`` frames of one connection are handled per loop turn.

Input is parsed in place: when no partial frame is pending, frames are cut
straight out of the bytes ``data_received`` got; only an incomplete tail is
copied into a ``bytearray`` buffer, which later reads extend (and which is
dropped once empty, so an idle connection holds no buffer).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from fastwamp.config import ListenerConfig
from fastwamp.transport.base import (
    RAWSOCKET_TRAFFIC,
    BaseConnection,
    ConnectionLimits,
    RouterLike,
    _monotonic,
    frame_key,
    write_parts,
)
from fastwamp.transport.rawsocket_reader import FrameReader
from fastwamp.transport.tls import is_tls_client_hello
from fastwamp.wamp.serializers import SerializationError, SharedMessage, make_serializer

log = logging.getLogger("fastwamp.transport.rawsocket")

MAGIC = 0x7F
#: Frame types (the TTT bits).
MSG_REGULAR, MSG_PING, MSG_PONG = 0, 1, 2
#: Handshake error codes (the EEEE bits of an error reply).
ERROR_SERIALIZER_UNSUPPORTED = 1
ERROR_MAX_LENGTH_UNACCEPTABLE = 2
ERROR_RESERVED_BITS = 3
ERROR_CONNECTION_COUNT = 4
#: The largest payload a frame can carry.
MAX_LENGTH = 1 << 24

_unpack_word = struct.Struct("!I").unpack_from
_pack_word = struct.Struct("!I").pack


def length_exponent(max_size: int) -> int:
    """The handshake's ``LLLL`` for a receive limit: the largest ``L`` (0-15) with
    ``2**(9+L) <= max_size``, so the peer never sends more than we accept."""
    return max(0, min(15, max_size.bit_length() - 1 - 9))


def handshake_reply(serializer_id: int, max_size: int) -> bytes:
    """The success reply announcing ``max_size`` (rounded down to a power of two)."""
    reply = _REPLIES.get((serializer_id, max_size))
    if reply is None:
        reply = bytes((MAGIC, (length_exponent(max_size) << 4) | serializer_id, 0, 0))
        if len(_REPLIES) < 64:  # a few listeners' settings
            _REPLIES[(serializer_id, max_size)] = reply
    return reply


_REPLIES: dict[tuple[int, int], bytes] = {}


def handshake_error(code: int) -> bytes:
    """The error reply for one of the ``ERROR_*`` codes."""
    return bytes((MAGIC, code << 4, 0, 0))


#: Largest message a client accepts, by the handshake's LLLL (shared int objects).
_MAX_OUT = tuple(1 << (9 + exponent) for exponent in range(16))
_SERIALIZER_IDS: dict[tuple[str, ...], dict[int, str]] = {}


def serializer_ids(serializers: list[str]) -> dict[int, str]:
    """RawSocket serializer id -> name, for a listener's serializers (one dict per listener)."""
    key = tuple(serializers)
    ids = _SERIALIZER_IDS.get(key)
    if ids is None:
        ids = _SERIALIZER_IDS[key] = {make_serializer(name).rawsocket_id: name for name in key}
    return ids


def frame_header(msg_type: int, length: int) -> bytes:
    """The 4-byte header of a frame of ``msg_type`` carrying ``length`` bytes (<= 2**24)."""
    if length == MAX_LENGTH:
        return bytes((0x08 | msg_type, 0, 0, 0))
    return _pack_word((msg_type << 24) | length)


class RawSocketConnection(BaseConnection):
    """One WAMP-over-RawSocket client connection."""

    transport_type = "rawsocket"
    _direct_frame_header = 4
    _traffic = RAWSOCKET_TRAFFIC

    __slots__ = (
        "_supported",
        "_buffer",
        "_decode",
        "_max_in_open",
        "_max_in",
        "_stalled",
        "_pings",
        "_out",
        "_reader",
    )

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(router, listener, connections, limits)
        self._supported = serializer_ids(listener.serializers)
        #: Input not parsed yet (handshake, an incomplete frame); None when there is none.
        self._buffer: bytearray | None = None
        self._decode: Callable[[Any], Any] | None = None
        #: Largest message we accept once the session is established (announced).
        self._max_in_open = min(listener.max_message_size, MAX_LENGTH)
        #: Largest message we accept now (checked on input): smaller until WELCOME.
        self._max_in = min(self._max_in_open, self._limits.max_handshake_message_size)
        #: _parse() stopped with frames left (turn budget or pause_input).
        self._stalled = False
        self._pings = 0
        self._pingable = listener.rawsocket_ping == "always"
        #: Largest message the client accepts (announced in its handshake).
        self._max_out = 512
        #: Output produced while reading (handshake reply, PONGs), written at the
        #: end of the read together with the router's replies (None: nothing).
        self._out: list[bytes] | None = None
        #: What the event loop calls with each read (see ``data_received``).
        self._reader = FrameReader(self)

    # asyncio.Protocol callbacks.

    @property
    def data_received(self) -> FrameReader:  # type: ignore[override]
        """The read callback: the connection's compiled :class:`FrameReader`, which
        takes a read of whole frames on an established session itself and hands
        every other read (and an incomplete last frame) to :meth:`read_data`. (The
        event loop looks it up once, when the connection starts; a property costs no
        bound method per connection.)"""
        return self._reader

    def read_data(self, data: bytes) -> None:
        """Handle one read of the socket: the general path (handshake, partial and
        joined frames, PING/PONG, limits, buffered or paused input)."""
        self._last_read = _monotonic()
        RAWSOCKET_TRAFFIC.received += len(data)
        if not self._reading:
            return
        buf = self._buffer
        if self._deferred:
            assert buf is not None
            buf += data  # behind input that waits for its turn (reading is paused)
            return
        if buf is not None or self._decode is None:
            if buf is None:
                buf = self._buffer = bytearray(data)
            else:
                buf += data
            if self._decode is None and not self._handshake(buf):
                self._write_out()
                return
            consumed = self._parse(buf)
            if consumed:
                del buf[:consumed]
            if not buf and not self._stalled:
                self._buffer = buf = None
        else:
            consumed = self._parse(data)
            if consumed < len(data) and self._reading:
                self._buffer = buf = bytearray(memoryview(data)[consumed:])
        if self._out:
            self._write_out()
        if self._stalled:
            self._defer_input()
        elif self._reading:
            if buf is None:
                self._partial_since = 0.0  # _note_partial's usual case, without a call
            else:
                self._note_partial(True, consumed > 0, self._last_read)

    def eof_received(self) -> bool:
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reading and self._buffer:
            self._limits.log(
                "rawsocket_lost",
                logging.INFO,
                "%s: connection closed in the middle of a %s (%d bytes pending)",
                self.peer,
                "frame" if self._decode is not None else "handshake",
                len(self._buffer),
                logger=log,
            )
        self._buffer = None
        self._reader.close()
        super().connection_lost(exc)

    # Sink methods called by the router during flush().

    def send_messages(self, msgs: list[list]) -> None:
        """Frame and write ``msgs`` (and pending PONGs) at once; hold them while
        writing is paused (see :class:`BaseConnection`).

        A message that cannot be encoded, or larger than the client's announced
        limit, is reported to the session as undeliverable and skipped.
        """
        if self._closing:
            return
        if not self._established:
            self._check_welcome(msgs)
        parts = self._out
        if parts is None:
            if len(msgs) == 1 and not self._write_paused:
                msg = msgs[0]
                if type(msg) is SharedMessage:  # fan-out: one EVENT per receiver
                    # A frame another receiver made usually goes out through the
                    # member (Member.deliver); here the first receiver makes it.
                    self._write_shared(msg)
                else:
                    self._write_one(msg)
                return
            parts = []
        else:
            self._out = None
            self._sync_frame_path()
        if self._write_paused:
            self._hold(parts, msgs)
            return
        encode = self._encode
        assert encode is not None
        limit = self._max_out
        size = 0
        for msg in msgs:
            if type(msg) is SharedMessage:
                # The same frame for every receiver (an EVENT's fan-out): made once.
                frame: Any = msg.encoded.get(self._frame_key)  # type: ignore[arg-type]
                if frame is None:
                    frame = self._frame_shared(msg)
                    if frame is None:
                        continue
                length = len(frame) - 4
                if length > limit:
                    self._too_large(msg, length)
                    continue
                parts.append(frame)
                size += length
                continue
            try:
                data = encode(msg)
            except Exception as exc:  # any encoder failure: not representable
                self._unencodable(msg, exc)
                continue
            length = len(data)
            if length > limit:
                self._too_large(msg, length)
                continue
            parts.append(_pack_word(length) if length < MAX_LENGTH else frame_header(0, length))
            parts.append(data)
            size += length
        transport = self._transport
        if parts and transport is not None and not transport.is_closing():
            write_parts(transport, parts, size, RAWSOCKET_TRAFFIC)
        if self._write_paused:
            self._check_backlog()

    def _write_one(self, msg: list) -> None:
        """:meth:`send_messages` of a single message, writing allowed and nothing of
        the connection's own waiting: one frame, one write."""
        try:
            data = self._encode(msg)  # type: ignore[misc]
        except Exception as exc:  # any encoder failure: not representable
            self._unencodable(msg, exc)
            return
        length = len(data)
        if length > self._max_out:
            self._too_large(msg, length)
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            frame = (_pack_word(length) if length < MAX_LENGTH else frame_header(0, length)) + data
            transport.write(frame)
            RAWSOCKET_TRAFFIC.sent += len(frame)
            if self._write_paused:  # the write filled the transport's buffer
                self._check_backlog()

    def _frame_payload_length(self, frame: bytes) -> int:
        return len(frame) - 4

    def _frame_shared(self, msg: SharedMessage) -> bytes | None:
        """Encode and frame ``msg`` and keep the frame in it for the other receivers;
        None if it cannot be encoded (reported)."""
        try:
            data = self._encode(msg)  # type: ignore[misc]
        except Exception as exc:  # any encoder failure: not representable
            self._unencodable(msg, exc)
            return None
        length = len(data)
        head = _pack_word(length) if length < MAX_LENGTH else frame_header(0, length)
        frame = msg.encoded[self._frame_key] = head + data  # type: ignore[index]
        return frame

    def close(self) -> None:
        """Close the connection once the output already given is written."""
        if not self._closing:
            self._write_out()  # the handshake reply and PONGs produced while reading
        super().close()

    def _end_connection(self) -> None:
        self._close_transport()

    def _send_ping(self) -> None:
        self._pings = (self._pings + 1) & 0xFFFFFFFF
        self._write([frame_header(MSG_PING, 4) + _pack_word(self._pings)])

    def _on_established(self) -> None:
        self._max_in = self._max_in_open
        self._reader.open(self._session, self._decode, self._max_in)

    def _peer_pings(self) -> None:
        """The peer sent a PING or PONG: it can be pinged from now on."""
        self._pingable = True
        interval = self._listener.auto_ping_interval
        if interval > 0 and self._established:
            self._poke_watchdog(self._last_read + interval)

    def _feed_deferred(self) -> bool:
        buf = self._buffer
        if buf is None:  # pragma: no cover - deferred input is always buffered
            return False
        consumed = self._parse(buf)
        if consumed:
            del buf[:consumed]
        if self._out:
            self._write_out()
        if self._stalled:
            return True
        if not buf:
            self._buffer = None
        if self._reading:
            self._note_partial(bool(buf), consumed > 0, _monotonic())
        return False

    # Output queue hooks (see BaseConnection).

    def _frame(self, parts: list[bytes], data: bytes) -> None:
        length = len(data)
        parts.append(_pack_word(length) if length < MAX_LENGTH else frame_header(0, length))
        parts.append(data)

    def _write_now(self, parts: list[bytes], size: int = 0) -> None:
        transport = self._transport
        if parts and transport is not None and not transport.is_closing():
            write_parts(transport, parts, size, RAWSOCKET_TRAFFIC)

    # Internals.

    def _handshake(self, buf: bytearray) -> bool:
        """Process the client's handshake in ``buf``; True once the connection is open."""
        if buf[0] != MAGIC:
            if self._tls is None and is_tls_client_hello(buf):
                if len(buf) < 2:
                    return False  # one more byte tells
                self._buffer = None
                self._tls_client_on_plain_listener()
                return False
            self._fail(f"not a RawSocket client (first octet 0x{buf[0]:02x})")
            return False
        if len(buf) < 4:
            return False
        if self._refused:  # max_connections_per_address (logged when it connected)
            self._output(handshake_error(ERROR_CONNECTION_COUNT))
            self._fail(None)
            return False
        octet = buf[1]
        serializer_id = octet & 0x0F
        if buf[2] or buf[3]:
            self._refuse(ERROR_RESERVED_BITS, "RawSocket handshake uses reserved octets")
            return False
        name = self._supported.get(serializer_id)
        if name is None:
            self._refuse(
                ERROR_SERIALIZER_UNSUPPORTED, f"unsupported RawSocket serializer {serializer_id}"
            )
            return False
        del buf[:4]
        self._max_out = _MAX_OUT[octet >> 4]
        self._output(handshake_reply(serializer_id, self._max_in_open))
        serializer = self._serializer = make_serializer(name)
        self._decode = serializer.decode
        self._encode = serializer.encode
        self._frame_key = frame_key(name, "rawsocket")
        self._attach(name, {"rawsocket_max_message_size": self._max_out})
        return True

    def _parse(self, buf: bytes | bytearray) -> int:
        """Feed the complete frames of ``buf`` to the session, at most
        ``messages_per_turn`` and none once input is paused; return the bytes used.

        Sets ``self._stalled`` when it stopped early with input left.
        """
        pos = 0
        end_of_data = len(buf)
        fed = False
        left = self._limits.messages_per_turn
        self._stalled = False
        # One frame per read is the usual case (a client writes each message as it
        # makes it): the session's methods and limits are read where used, not first
        # copied to locals, and a regular frame's header needs one test.
        while end_of_data - pos >= 4:
            if not left or self._input_paused:
                self._stalled = self._reading
                break
            if not self._reading:
                break
            (word,) = _unpack_word(buf, pos)
            if word >> 24:  # not a regular frame under 2**24 bytes: flags or type set
                head = word >> 24
                length = word & 0xFFFFFF
                msg_type = head & 0x07
                if head & 0xF0 or msg_type > MSG_PONG:
                    self._fail(f"RawSocket frame with reserved bits or type (0x{head:02x})")
                    break
                if head & 0x08:
                    if length:
                        self._fail("RawSocket frame length over 2**24")
                        break
                    length = MAX_LENGTH
            else:
                length = word
                msg_type = MSG_REGULAR
            if length > self._max_in:
                self._limits.count("oversize_frames")
                self._fail(
                    f"RawSocket frame of {length} bytes exceeds the {self._max_in} limit"
                    + ("" if self._established else " before the session is established")
                )
                break
            end = pos + 4 + length
            if end > end_of_data:
                break  # incomplete frame: wait for more data
            payload = buf[pos + 4 : end]
            pos = end
            left -= 1
            if msg_type == MSG_REGULAR:
                try:
                    msg = self._decode(payload)  # type: ignore[misc]
                except SerializationError as exc:
                    # The router logs the protocol violation (one line per bad input).
                    log.debug(
                        "%s: undecodable %s message: %s", self.peer, self._serializer.name, exc
                    )
                    self._reading = False  # the router aborts the session; read no more
                    self._session.receive_invalid(str(exc))  # type: ignore[union-attr]
                    fed = True
                    break
                self._session.receive(msg)  # type: ignore[union-attr]
                fed = True
            else:  # PING or PONG: the peer speaks them, it can be pinged
                if not self._pingable:
                    self._peer_pings()
                if msg_type == MSG_PONG:
                    continue  # nothing to do (any input counts as a sign of life)
                if length > self._max_out:
                    self._limits.log(
                        "rawsocket_ping",
                        logging.WARNING,
                        "%s: PING of %d bytes not answered: the client accepts at most %d",
                        self.peer,
                        length,
                        self._max_out,
                        logger=log,
                    )
                else:
                    self._output(frame_header(MSG_PONG, length), bytes(payload))
        if fed:
            self._router.flush_soon(self._last_read)
        return pos

    def _refuse(self, code: int, reason: str) -> None:
        self._limits.log(
            "rawsocket_refused", logging.WARNING, "%s: %s; refusing the connection",
            self.peer, reason, logger=log,
        )
        self._output(handshake_error(code))
        self._fail(None)

    def _fail(self, reason: str | None) -> None:
        """Fail the connection: stop reading, write what is pending, close."""
        if reason is not None:
            self._limits.log(
                "rawsocket_error", logging.WARNING, "%s: %s; closing the connection",
                self.peer, reason, logger=log,
            )
        self._reading = False
        self._stalled = False
        self._buffer = None
        self._write_out()
        self._start_closing()
        self._close_after_output(self._close_transport)

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _output(self, *parts: bytes) -> None:
        """Queue ``parts`` for the end of this read (see ``_out``)."""
        if self._out is None:
            self._out = list(parts)
            self._stop_frame_path()
        else:
            self._out.extend(parts)

    def _own_output_waiting(self) -> bool:
        return self._out is not None

    def _write_out(self) -> None:
        parts = self._out
        if parts is not None:
            self._out = None
            if parts:
                self._write(parts)
            self._sync_frame_path()
