"""What WebSocket and RawSocket connections share: attaching to the router,
detaching exactly once, flow control, the bounded output queue and timeouts.

A connection is an :class:`asyncio.Protocol` and also the router's *sink*: the
router calls :meth:`send_messages` and :meth:`close` on it during
``router.flush()``.  After feeding the messages of one read to the session, a
connection calls ``router.flush_soon()``, so the replies produced for the same
peer in one loop iteration leave in a single ``transport.write``.

Output queue.  While the transport's buffer is above its high-water mark
(between ``pause_writing`` and ``resume_writing``) nothing is written: each
encoded message is *held*, unframed, with its WAMP type code, and so is any
other output (PONGs, close frames) that must not overtake it.  Held output is
bounded by :meth:`BaseConnection.set_output_limits` (the realm's
``output_queue_bytes`` / ``output_queue_messages``); past a limit the policy
either drops the oldest held EVENTs (never a reply) or disconnects.  Messages
are framed only when written, so a dropped EVENT leaves no gap in a
permessage-deflate stream.  Reading stays paused while writing is, so a client
that floods requests without reading the replies is throttled.

Overflows go to the session's ``on_overflow`` callback (which publishes
``fastwamp.session.on_overflow``): the first of an episode at once, further
drops at most every :data:`OVERFLOW_REPORT_INTERVAL` seconds and the rest when
the peer catches up or goes, so that slow subscribers of that meta topic cannot
feed each other's overflows.  The log gets one line when an episode starts and
one when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from fastwamp.config import OVERFLOW_POLICIES, ListenerConfig
from fastwamp.wamp.messages import EVENT
from fastwamp.wamp.serializers import SerializationError

log = logging.getLogger("fastwamp.transport")

#: Seconds a client has to complete the opening handshake (HTTP upgrade or RawSocket).
OPEN_TIMEOUT = 10.0
#: Seconds to wait for the peer's side of a closing handshake before dropping it.
CLOSE_TIMEOUT = 5.0
#: A peer that stops reading is dropped when this much output waits for it (bytes);
#: the limit grows to twice the listener's max_message_size when that is larger.
#: It caps the transport's own buffer (a last resort) and, until the session sets
#: its limits, the held output too.
WRITE_BUFFER_LIMIT = 64 * 1024 * 1024
#: On resume_writing, held output is written in pieces of about this many bytes,
#: so that the rest stays held (and droppable) if writing pauses again.
DRAIN_CHUNK = 256 * 1024
#: While a peer keeps overflowing, on_overflow reports come at most this often
#: (seconds); the first overflow and a disconnect are reported at once.
OVERFLOW_REPORT_INTERVAL = 1.0

OverflowCallback = Callable[[int, int, bool], None]
#: Type code of held output that is not a WAMP message (already framed bytes).
_FRAMED = -1


class Session(Protocol):
    """The router's per-connection session, as the transports use it."""

    def receive(self, msg: Any) -> None: ...
    def receive_invalid(self, reason: str) -> None: ...
    def detach(self) -> None: ...


class RouterLike(Protocol):
    """The part of :class:`fastwamp.router.Router` the transports use."""

    def attach(self, sink: Any, transport_info: dict[str, Any]) -> Session: ...
    def flush(self) -> None: ...
    def flush_soon(self) -> None: ...


def format_peer(transport: asyncio.BaseTransport) -> str:
    """Describe the remote end like Autobahn does: ``tcp4:127.0.0.1:54321``."""
    peer = transport.get_extra_info("peername")
    sock = transport.get_extra_info("socket")
    family = getattr(sock, "family", None)
    if isinstance(peer, tuple) and len(peer) >= 2:
        kind = "tcp6" if family == socket.AF_INET6 or len(peer) == 4 else "tcp4"
        return f"{kind}:{peer[0]}:{peer[1]}"
    if family == getattr(socket, "AF_UNIX", None):
        return f"unix:{peer or ''}"
    return f"unknown:{peer!r}"


class OutputQueue:
    """What a connection holds while its transport's writing is paused, and the limits.

    ``held`` is ``(type code, payload)`` oldest first: the encoded message, or a
    list of framed bytes for type ``_FRAMED``.  Kept apart from the connection
    (few instance attributes keep the connection's attribute access fast).
    """

    __slots__ = (
        "held",
        "bytes",
        "messages",
        "events",
        "max_bytes",
        "max_messages",
        "policy",
        "on_overflow",
        "after_drain",
        "episode_messages",
        "episode_bytes",
        "unreported_messages",
        "unreported_bytes",
        "last_report",
    )

    def __init__(self, max_bytes: int) -> None:
        self.held: deque[tuple[int, Any]] = deque()
        self.bytes = self.messages = self.events = 0
        # Until the session sets its limits: as many bytes as the hard cap, then disconnect.
        self.max_bytes = max_bytes
        self.max_messages = sys.maxsize
        self.policy = "disconnect"
        self.on_overflow: OverflowCallback | None = None
        #: Runs once the held output is written (a close that must not overtake it).
        self.after_drain: Callable[[], None] | None = None
        # The current overflow episode (from the first drop until the queue drains),
        # and the drops not yet reported to on_overflow.
        self.episode_messages = self.episode_bytes = 0
        self.unreported_messages = self.unreported_bytes = 0
        self.last_report = 0.0

    def over(self) -> bool:
        return self.bytes > self.max_bytes or self.messages > self.max_messages

    def clear(self) -> None:
        self.held.clear()
        self.bytes = self.messages = self.events = 0
        self.after_drain = None


class BaseConnection(asyncio.Protocol):
    """One client connection: glue between an asyncio transport and a router session.

    Subclasses parse bytes into WAMP messages, call :meth:`_attach` once the
    transport's own handshake succeeded, feed messages with ``self._session.receive``
    and then call ``self._router.flush()``.  For the output queue they provide
    :meth:`_encode_out`, :meth:`_frame` and :meth:`_write_now`, and call
    :meth:`_hold` from ``send_messages`` while ``self._write_paused``.
    """

    #: ``transport_info["type"]`` for the router.
    transport_type = ""

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
    ) -> None:
        self._router = router
        self._listener = listener
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._detached = False
        self._closing = False  # no more output: close() was called or the connection died
        self._reading = True  # False once input must be ignored (failed, invalid, closing)
        self._write_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._write_limit = max(WRITE_BUFFER_LIMIT, 2 * listener.max_message_size)
        #: The session's serializer's encode, set once the transport handshake chose it.
        self._encode: Callable[[list], bytes] | None = None
        #: Largest message the peer accepts (RawSocket: announced in its handshake).
        self._max_out = listener.max_message_size
        self.peer = "unknown"
        #: Output held while writing is paused, and its limits.
        self._queue = OutputQueue(self._write_limit)

    # Sink method called by the session.

    def set_output_limits(
        self,
        max_bytes: int,
        max_messages: int,
        policy: str,
        on_overflow: OverflowCallback | None,
    ) -> None:
        """Bound the output held for a peer that reads too slowly.

        Past ``max_bytes`` or ``max_messages`` of held output, ``policy``
        ``"drop_oldest"`` drops the oldest held EVENTs (and disconnects if that is
        not enough), ``"disconnect"`` aborts the connection.  Each overflow is
        reported as ``on_overflow(dropped_messages, dropped_bytes, disconnected)``.
        """
        if policy not in OVERFLOW_POLICIES:
            raise ValueError(f"unknown overflow policy {policy!r}")
        if max_bytes < 1 or max_messages < 1:
            raise ValueError("output limits must be >= 1")
        q = self._queue
        q.max_bytes = max_bytes
        q.max_messages = max_messages
        q.policy = policy
        q.on_overflow = on_overflow

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.peer = format_peer(transport)
        if self._connections is not None:
            self._connections.add(self)
        self._set_timer(OPEN_TIMEOUT, self._open_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._closing = True
        self._reading = False
        self._queue.clear()
        if self._connections is not None:
            self._connections.discard(self)
        if self._queue.episode_messages:
            self._log_episode_end("the connection was lost")
        self._report(False)
        self._detach()

    def pause_writing(self) -> None:
        # The peer reads slower than we write: hold further output (bounded by
        # the output limits) and stop reading its requests until it catches up.
        self._write_paused = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        q = self._queue
        if q.held:
            self._drain()
            if self._write_paused:
                return  # paused again: the rest stays held, reading stays paused
        if q.episode_messages:
            self._log_episode_end("the peer reads again")
        if q.unreported_messages or q.unreported_bytes:
            self._report(False)
            self._router.flush()  # deliver the meta event the report published
        after, q.after_drain = q.after_drain, None
        if after is not None:
            self._cancel_timer()
            after()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    # Output: to be provided by subclasses.

    def close(self) -> None:
        """Close the connection once the output already given (held output included)
        is written, with the transport's own closing handshake (sink method)."""
        if self._closing:
            return
        self._closing = True
        self._reading = False  # the router is done with this session
        self._close_after_output(self._end_connection)

    def _end_connection(self) -> None:
        """The transport's way to end a connection whose output is all written."""
        raise NotImplementedError

    def _log_unencodable(self, msg: list, exc: Exception) -> None:
        """Log that ``msg`` could not be encoded (and is dropped)."""
        raise NotImplementedError

    def _log_too_large(self, msg: list, length: int) -> None:
        """Log that ``msg`` encodes to ``length`` bytes, over the limit (and is dropped)."""
        raise NotImplementedError

    def _encode_out(self, msg: list) -> bytes | None:
        """Encode one outgoing message; None if it cannot be sent (logged)."""
        encode = self._encode
        assert encode is not None
        try:
            data = encode(msg)
        except SerializationError as exc:
            self._log_unencodable(msg, exc)
            return None
        if len(data) > self._max_out:
            self._log_too_large(msg, len(data))
            return None
        return data

    def _frame(self, parts: list[bytes], data: bytes) -> None:
        """Append the frame(s) carrying the encoded message ``data`` to ``parts``."""
        raise NotImplementedError

    def _write_now(self, parts: list[bytes]) -> None:
        """Write ``parts`` to the transport in one call."""
        raise NotImplementedError

    # Output: the queue.

    def _write(self, parts: list[bytes]) -> None:
        """Write framed ``parts``, after any held output (which they must not overtake)."""
        if not parts:
            return
        q = self._queue
        if q.held:
            q.held.append((_FRAMED, parts))
            q.bytes += sum(map(len, parts))
        else:
            self._write_now(parts)

    def _hold(self, framed: list[bytes], msgs: list[list]) -> None:
        """Keep ``framed`` output and the messages ``msgs`` until writing resumes,
        then apply the overflow policy if the held output is over a limit."""
        q = self._queue
        held = q.held
        if framed:
            held.append((_FRAMED, framed))
            q.bytes += sum(map(len, framed))
        encode = self._encode_out
        size = count = events = 0
        for msg in msgs:
            data = encode(msg)
            if data is None:
                continue
            code = msg[0]
            held.append((code, data))
            size += len(data)
            count += 1
            if code == EVENT:
                events += 1
        q.bytes += size
        q.messages += count
        q.events += events
        if q.over():
            self._overflow()

    def _overflow(self) -> None:
        """The held output is over a limit: drop the oldest EVENTs, or disconnect."""
        q = self._queue
        if q.policy == "drop_oldest":
            dropped, size = self._drop_oldest_events()
            q.unreported_messages += dropped
            q.unreported_bytes += size
            if not q.over():
                first = not q.episode_messages
                q.episode_messages += dropped
                q.episode_bytes += size
                if first:
                    log.warning(
                        "%s: output queue full (limits: %d messages, %d bytes): dropping the "
                        "oldest events until the peer reads again",
                        self.peer,
                        q.max_messages,
                        q.max_bytes,
                    )
                if first or time.monotonic() - q.last_report >= OVERFLOW_REPORT_INTERVAL:
                    self._report(False)
                return
            reason = "nothing but replies"
        else:
            reason = "policy disconnect"
        log.warning(
            "%s: dropping connection: %d messages (%d bytes) wait for a peer that does not "
            "read (limits: %d messages, %d bytes; %s)",
            self.peer,
            q.messages,
            q.bytes,
            q.max_messages,
            q.max_bytes,
            reason,
        )
        q.unreported_messages += q.messages
        q.unreported_bytes += q.bytes
        q.episode_messages = q.episode_bytes = 0
        self._report(True)
        self._abort()

    def _drop_oldest_events(self) -> tuple[int, int]:
        """Drop held EVENTs, oldest first, until within the limits; (messages, bytes)."""
        q = self._queue
        held = q.held
        kept = []
        dropped = size = 0
        while q.events and q.over():
            item = held.popleft()
            if item[0] == EVENT:
                n = len(item[1])
                q.bytes -= n
                q.messages -= 1
                q.events -= 1
                dropped += 1
                size += n
            else:
                kept.append(item)
        if kept:
            held.extendleft(reversed(kept))
        return dropped, size

    def _drain(self) -> None:
        """Frame and write held output in order until done or writing pauses again."""
        q = self._queue
        held = q.held
        transport = self._transport
        parts: list[bytes] = []
        size = 0
        frame = self._frame
        while held and not self._write_paused:
            if transport is None or transport.is_closing():
                q.clear()
                return
            code, data = held.popleft()
            if code == _FRAMED:
                q.bytes -= sum(map(len, data))
                if parts:
                    self._write_now(parts)
                    parts, size = [], 0
                self._write_now(data)
                continue
            n = len(data)
            q.bytes -= n
            q.messages -= 1
            if code == EVENT:
                q.events -= 1
            frame(parts, data)
            size += n
            if size >= DRAIN_CHUNK:
                self._write_now(parts)
                parts, size = [], 0
        if parts:
            self._write_now(parts)

    def _report(self, disconnected: bool) -> None:
        """Tell the session what overflowed since the last report (if anything)."""
        q = self._queue
        dropped, size = q.unreported_messages, q.unreported_bytes
        if not (dropped or size or disconnected):
            return
        q.unreported_messages = q.unreported_bytes = 0
        q.last_report = time.monotonic()
        if q.on_overflow is not None:
            try:
                q.on_overflow(dropped, size, disconnected)
            except Exception:  # the router's bug must not break this flush
                log.exception("%s: on_overflow callback failed", self.peer)

    def _log_episode_end(self, why: str) -> None:
        q = self._queue
        log.warning(
            "%s: %s; %d events (%d bytes) were dropped while it was slow",
            self.peer,
            why,
            q.episode_messages,
            q.episode_bytes,
        )
        q.episode_messages = q.episode_bytes = 0

    def _close_after_output(self, close: Callable[[], None]) -> None:
        """Run ``close`` now, or once the held output is written (bounded by CLOSE_TIMEOUT)."""
        if self._queue.held:
            self._queue.after_drain = close
            self._set_timer(CLOSE_TIMEOUT, self._close_timed_out)
        else:
            close()

    # Helpers for subclasses.

    def _attach(self, serializer_name: str, info: dict[str, Any]) -> None:
        """Hand the connection to the router once the transport handshake is done."""
        self._cancel_timer()
        info = {
            "type": self.transport_type,
            "serializer": serializer_name,
            "peer": self.peer,
            **info,
        }
        self._session = self._router.attach(self, info)

    def _detach(self) -> None:
        """Tell the router the session is gone (at most once), then flush its output."""
        if self._session is not None and not self._detached:
            self._detached = True
            self._session.detach()
            self._router.flush()

    def _check_backlog(self) -> bool:
        """Drop a peer that lets too much output pile up; True if it was dropped.

        The last resort behind the output queue: the transport's own buffer
        grows past the queue's limits only by one huge batch of output.
        """
        transport = self._transport
        if self._write_paused and transport is not None:
            size = transport.get_write_buffer_size()
            if size > self._write_limit:
                log.warning(
                    "%s: dropping connection: peer does not read (%d bytes waiting)",
                    self.peer,
                    size,
                )
                self._queue.unreported_bytes += size
                self._report(True)
                self._abort()
                return True
        return False

    def _abort(self) -> None:
        self._closing = True
        self._reading = False
        self._queue.clear()
        if self._transport is not None:
            self._transport.abort()

    def _set_timer(self, delay: float, callback: Any) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _open_timed_out(self) -> None:
        self._timer = None
        log.warning("%s: opening handshake not completed in %.0f s", self.peer, OPEN_TIMEOUT)
        self._abort()

    def _close_timed_out(self) -> None:
        self._timer = None
        log.info("%s: peer did not complete the closing handshake; dropping it", self.peer)
        self._abort()
