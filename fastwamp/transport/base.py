"""What WebSocket and RawSocket connections share: attaching to the router,
detaching exactly once, flow control, the bounded output queue and timeouts.

A connection is an :class:`asyncio.Protocol` and also the router's *sink*: the
router calls :meth:`send_messages` and :meth:`close` on it during
``router.flush()``.  After feeding the messages of one read to the session, a
connection calls ``router.flush_soon(read_at)``: the replies leave at once while
the router is quiet, and at the end of the loop iteration while reads come back
to back, so the replies produced for the same peer in a busy iteration leave in
a single ``transport.write``.

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

Messages that cannot be sent.  A message the peer's serializer cannot encode
(any exception from the encoder: unsupported types such as bytes keys in JSON,
integers beyond 64 bits, nesting deeper than the encoder allows; the
serializers refuse most such values when they are decoded), or that
encodes larger than the peer accepts, is not written: the connection calls the
session's ``undeliverable(msg, error, reason)`` with
``fastwamp.error.unencodable`` or ``wamp.error.payload_size_exceeded`` and goes
on with the rest of the batch.  The core turns that into an ERROR for the
caller whose call depended on it (an EVENT is counted), so no call waits
forever on a message that was never sent.

Reading.  Input is fed to the session at most ``messages_per_turn`` messages
per turn of the event loop; what is left of a read is kept and fed on later
turns (``loop.call_soon``) while the socket is not read, so a client that
floods cannot starve the others.  The core may also stop a connection's input
(``pause_input`` / ``resume_input``, backpressure from fan-out): feeding stops
after the current message and resumes on a later turn.  The socket is read only
when none of the reasons to pause holds: writing paused, input paused by the
core, buffered input waiting for its turn.

Limits (keys of the top-level configuration unless marked "listener"; what a
client gets when it reaches each):

* ``handshake_timeout`` (10 s): from TCP connect until the session is
  established (WELCOME sent), covering the RawSocket or WebSocket opening
  handshake and HELLO.  On expiry: ABORT ``wamp.error.timeout`` if the
  transport handshake was done (a WAMP session exists), then the connection is
  closed; before that the connection is just dropped.
* ``max_handshake_message_size`` (64 KiB): largest message accepted until the
  session is established; the listener's ``max_message_size`` applies after
  WELCOME.  A larger frame closes the connection (RawSocket: closed; WebSocket:
  close 1009).  So a client that never authenticates holds at most this much
  input (plus one read).
* ``frame_timeout`` (30 s): a RawSocket frame or WebSocket message that stops
  halfway must be complete within this time from its start; else the connection
  is dropped (its session detaches as on a lost connection).
* ``messages_per_turn`` (100): input fed per connection per loop turn (above).
* ``max_connections_per_address`` (1000): connections open at once from one
  client IP address; one more is refused: RawSocket error reply 4 ("maximum
  connection count reached") then closed, WebSocket HTTP 503.
* listener ``auto_ping_interval`` (30 s, 0 = off) and ``auto_ping_timeout``
  (10 s): after ``auto_ping_interval`` seconds in which nothing arrived from an
  established peer, the router sends a PING (WebSocket PING frame, RawSocket
  frame type 1); if nothing at all arrives within ``auto_ping_timeout`` after
  it, the connection is dropped and the session detached at once (its
  registrations and subscriptions go, its in-flight calls are answered, shared
  registrations fail over).  Time while the router itself does not read the
  peer (input paused) does not count, nor does it while the peer drains output.
  One deadline per connection, rescheduled only when it fires, all of them on
  one event-loop timer (:class:`Watchdogs`, 1/64 s ticks; the last time the
  peer was heard from is a timestamp written per read).
* listener ``rawsocket_ping`` (``"auto"``): RawSocket peers get PINGs only once
  they have sent a PING or PONG frame themselves; ``"always"``: every one.
  Autobahn|Python's RawSocket clients (asyncio and Twisted) fail the connection
  when they receive a PING frame; peers that are not pinged rely on TCP
  keepalive, which notices a dead host or network but not a frozen process.
* listener ``tcp_keepalive`` (true): SO_KEEPALIVE with, where the platform has
  them, TCP_KEEPIDLE = interval + timeout, TCP_KEEPINTVL = timeout / 3 (at least
  1 s) and TCP_KEEPCNT = 3 (with pings off: 40 s idle).
* listener ``max_message_size`` (16 MiB): largest message accepted from and
  sent to a peer (RawSocket: sent up to the size the client announced).  A
  larger incoming frame closes the connection (WebSocket close 1009); a larger
  outgoing message is undeliverable (above).
* WebSocket frame rules: invalid UTF-8 in a text message closes with 1007; a
  binary message on ``wamp.2.json`` or a text message on ``wamp.2.msgpack`` /
  ``wamp.2.cbor`` is ABORT ``wamp.error.protocol_violation``, then closed.

TLS (listener ``tls_certificate``, see :mod:`fastwamp.transport.tls`): the
connection is accepted as plain TCP (counted per address, watched by the
``handshake_timeout`` deadline) and the TLS handshake runs on it
(``loop.start_tls``); once it succeeds the engine starts on the TLS transport
(:meth:`BaseConnection._transport_open`) and the session's transport info has
``"tls"`` (:func:`fastwamp.transport.tls.tls_info`).  A failed handshake is
logged (a plain client on a TLS listener says so) and closes the connection; a
connection over ``max_connections_per_address`` is closed before its
handshake.  On a plain listener, a client whose first bytes are a TLS
ClientHello is logged as such and closed.

Each refusal or timeout is logged through a per-kind rate limit
(:class:`fastwamp.logsafe.LogBudget`, values clipped and escaped) and counted in
the router's stats (``fastwamp.router.get_stats``): ``connections_refused``,
``handshake_timeouts``, ``frame_timeouts``, ``ping_timeouts``,
``oversize_frames``, ``accept_failures``, ``tls_handshake_failures``,
``tls_clients_on_plain_listeners``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from fastwamp.config import OVERFLOW_POLICIES, Config, ListenerConfig
from fastwamp.logsafe import LogBudget, clip
from fastwamp.transport.tls import is_tls_client_hello, plain_client_reason, tls_info
from fastwamp.wamp import uris
from fastwamp.wamp.messages import EVENT, WELCOME

log = logging.getLogger("fastwamp.transport")

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
#: Output of one write at least this large (bytes) goes out with ``writelines``
#: (one vectored write of the pieces) rather than joined first: joining copies
#: it into a fresh buffer, ~30 us at 64 KiB, for nothing.  Below it a join is as
#: cheap as the vectored write.
WRITELINES_MIN = 16 * 1024
#: While a peer keeps overflowing, on_overflow reports come at most this often
#: (seconds); the first overflow and a disconnect are reported at once.
OVERFLOW_REPORT_INTERVAL = 1.0
#: Log lines per second, per kind of connection event (refusals, timeouts, protocol
#: errors), for the whole server, as a multiple of ``log_lines_per_session``.
SERVER_LOG_FACTOR = 4.0
#: An accepted socket whose descriptor number is this close to the soft
#: RLIMIT_NOFILE means accept is about to fail for want of descriptors (logged).
FD_HEADROOM = 32
#: TCP keepalive probes before the kernel drops a silent peer.
KEEPALIVE_COUNT = 3
#: TCP keepalive idle time (seconds) when auto-ping is off.
KEEPALIVE_IDLE_NO_PING = 40

#: Counters the transports keep in the router's stats.
TRANSPORT_STATS = (
    "connections_refused",
    "handshake_timeouts",
    "frame_timeouts",
    "ping_timeouts",
    "oversize_frames",
    "accept_failures",
    "tls_handshake_failures",
    "tls_clients_on_plain_listeners",
)
#: The answer to a plain HTTP request on a TLS listener.
_PLAIN_HTTP_ON_TLS = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 46\r\n\r\nThis is a TLS endpoint: connect with wss://.\r\n"
)
#: The loop's TLS protocol class, by loop class (uvloop has its own, in C).
_TLS_PROTOCOLS: dict[type, Any] = {}


def tls_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The TLS protocol class (``SSLProtocol``) that goes with ``loop``'s transports."""
    cls = _TLS_PROTOCOLS.get(type(loop))
    if cls is None:
        if type(loop).__module__.startswith("uvloop"):
            import uvloop.loop

            cls = uvloop.loop.SSLProtocol  # type: ignore[attr-defined]
        else:
            from asyncio.sslproto import SSLProtocol

            cls = SSLProtocol
        _TLS_PROTOCOLS[type(loop)] = cls
    return cls

OverflowCallback = Callable[[int, int, bool], None]
#: Type code of held output that is not a WAMP message (already framed bytes).
_FRAMED = -1
_INF = math.inf
#: Timers may fire this early (loop clock resolution); a deadline that close is due.
_EPSILON = 0.002
_monotonic = time.monotonic


class Session(Protocol):
    """The router's per-connection session, as the transports use it."""

    def receive(self, msg: Any) -> None: ...
    def receive_invalid(self, reason: str) -> None: ...
    def detach(self) -> None: ...
    def undeliverable(self, msg: list, error: str, reason: str) -> None: ...
    def abort(self, reason: str, message: str) -> None: ...


class RouterLike(Protocol):
    """The part of :class:`fastwamp.router.Router` the transports use."""

    def attach(self, sink: Any, transport_info: dict[str, Any]) -> Session: ...
    def flush(self) -> None: ...
    def flush_soon(self, read_at: float | None = None) -> None: ...


class Traffic:
    """Bytes read from and written to the client connections of one transport kind, by
    every server of the process (the metrics' ``fastwamp_bytes_received_total`` and
    ``fastwamp_bytes_sent_total``, labelled by transport)."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


#: This process's client traffic, by transport (connections add to it as they read and
#: write; one object per kind, so counting costs one attribute add as before).
RAWSOCKET_TRAFFIC = Traffic()
WEBSOCKET_TRAFFIC = Traffic()
TRAFFIC_BY_TRANSPORT = {"rawsocket": RAWSOCKET_TRAFFIC, "websocket": WEBSOCKET_TRAFFIC}


class _TotalTraffic:
    """All transports together (read-only)."""

    @property
    def received(self) -> int:
        return sum(t.received for t in TRAFFIC_BY_TRANSPORT.values())

    @property
    def sent(self) -> int:
        return sum(t.sent for t in TRAFFIC_BY_TRANSPORT.values())


#: This process's client traffic, every transport together.
TRAFFIC = _TotalTraffic()


def write_parts(transport: Any, parts: list[bytes], size: int, traffic: Traffic) -> None:
    """Write ``parts`` (``size`` bytes or more in all) in one call (see WRITELINES_MIN),
    counting them in ``traffic``."""
    if len(parts) == 1:
        data = parts[0]
        transport.write(data)
        traffic.sent += len(data)
    elif size >= WRITELINES_MIN:
        transport.writelines(parts)
        traffic.sent += sum(map(len, parts))
    else:
        data = b"".join(parts)
        transport.write(data)
        traffic.sent += len(data)


def frame_key(serializer_name: str, framing: str) -> str:
    """The key of a message framed for ``framing`` in :attr:`SharedMessage.encoded`
    (one string object per pair, shared by the connections)."""
    key = _FRAME_KEYS.get((serializer_name, framing))
    if key is None:
        key = _FRAME_KEYS[(serializer_name, framing)] = sys.intern(f"{serializer_name}/{framing}")
    return key


_FRAME_KEYS: dict[tuple[str, str], str] = {}


def format_peer(transport: asyncio.BaseTransport) -> str:
    """Describe the remote end like Autobahn does: ``tcp4:127.0.0.1:54321``."""
    return _format_peer(transport.get_extra_info("peername"), transport.get_extra_info("socket"))


def _format_peer(peer: Any, sock: Any) -> str:
    """:func:`format_peer` of a transport's ``peername`` and ``socket``."""
    family = getattr(sock, "family", None)
    if isinstance(peer, tuple) and len(peer) >= 2:
        kind = "tcp6" if family == socket.AF_INET6 or len(peer) == 4 else "tcp4"
        return f"{kind}:{peer[0]}:{peer[1]}"
    if family == getattr(socket, "AF_UNIX", None):
        return f"unix:{peer or ''}"
    return f"unknown:{peer!r}"


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The client's IP address (what ``max_connections_per_address`` counts), if any."""
    return _peer_address(transport.get_extra_info("peername"))


def _peer_address(peer: Any) -> str | None:
    """:func:`peer_address` of a transport's ``peername``."""
    if isinstance(peer, tuple) and len(peer) >= 2 and isinstance(peer[0], str):
        return peer[0]
    return None


def write_limit(listener: ListenerConfig) -> int:
    """Bytes of output waiting for one peer beyond which it is dropped (see WRITE_BUFFER_LIMIT)."""
    return max(WRITE_BUFFER_LIMIT, 2 * listener.max_message_size)


def soft_fd_limit() -> int:
    """The soft RLIMIT_NOFILE (0 where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover
        return 0
    return 0 if soft == resource.RLIM_INFINITY else int(soft)


def keepalive_settings(interval: float, timeout: float) -> tuple[int, int, int]:
    """``(idle, probe interval, probe count)`` for TCP keepalive, from the ping settings.

    With auto-ping on, the kernel gives up on a silent peer a little after the
    pings would (idle = interval + timeout, then 3 probes timeout/3 apart); with
    auto-ping off it is the only detection, after about 40 s + timeout.
    """
    idle = interval + timeout if interval > 0 else KEEPALIVE_IDLE_NO_PING
    probe = max(1, math.ceil(timeout / KEEPALIVE_COUNT))
    return max(1, math.ceil(idle)), probe, KEEPALIVE_COUNT


def keepalive_options(interval: float, timeout: float) -> tuple[tuple[int, int, int], ...]:
    """The ``setsockopt`` arguments (level, option, value) that turn on TCP keepalive with
    :func:`keepalive_settings` (made once per pair of settings)."""
    found = _KEEPALIVE_OPTIONS.get((interval, timeout))
    if found is None:
        idle, probe, count = keepalive_settings(interval, timeout)
        options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        idle_opt = getattr(socket, "TCP_KEEPIDLE", None)
        if idle_opt is None:  # macOS names it TCP_KEEPALIVE
            idle_opt = getattr(socket, "TCP_KEEPALIVE", None)
        if idle_opt is not None:
            options.append((socket.IPPROTO_TCP, idle_opt, idle))
        if hasattr(socket, "TCP_KEEPINTVL"):
            options.append((socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, probe))
        if hasattr(socket, "TCP_KEEPCNT"):
            options.append((socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count))
        found = _KEEPALIVE_OPTIONS[(interval, timeout)] = tuple(options)
    return found


_KEEPALIVE_OPTIONS: dict[tuple[float, float], tuple[tuple[int, int, int], ...]] = {}


def enable_keepalive(sock: Any, interval: float, timeout: float) -> None:
    """Turn on TCP keepalive on ``sock`` with :func:`keepalive_settings` (best effort)."""
    try:
        for level, option, value in keepalive_options(interval, timeout):
            sock.setsockopt(level, option, value)
    except (OSError, AttributeError, TypeError):
        pass  # not a TCP socket (Unix socket, test double): nothing to keep alive


class Watchdogs:
    """Every connection's watchdog deadline on one event-loop timer.

    A per-connection ``call_later`` handle costs about 600 bytes (the handle,
    uvloop's timer and its libuv struct) for as long as the connection lives,
    and an established connection always has a deadline (the auto-ping).  Here
    a deadline costs an entry in the bucket of its tick (``1 / TICKS`` s,
    rounded up), the buckets' ticks sit in a heap, and one timer is armed for
    the earliest.  When it fires, each connection of every bucket that is due
    gets its ``_watch()`` (which acts on what is due and schedules its next
    deadline); a deadline is so honoured at most one tick late, never early.
    """

    __slots__ = ("_buckets", "_ticks", "_handle", "_armed")

    #: Buckets per second.
    TICKS = 64

    def __init__(self) -> None:
        #: tick -> the connections whose deadline falls in it (a dict: ordered).
        self._buckets: dict[int, dict[BaseConnection, None]] = {}
        self._ticks: list[int] = []  # heap of the buckets' ticks
        self._handle: asyncio.TimerHandle | None = None
        self._armed = _INF  # the tick the timer is set for

    def __len__(self) -> int:
        return sum(map(len, self._buckets.values()))

    def add(self, conn: BaseConnection, when: float, loop: asyncio.AbstractEventLoop) -> None:
        """Call ``conn._watch()`` at ``when`` (``time.monotonic()``), or up to one tick later."""
        tick = math.ceil(when * self.TICKS)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            heapq.heappush(self._ticks, tick)
            if tick < self._armed:
                self._arm(tick, loop)
        bucket[conn] = None

    def remove(self, conn: BaseConnection, when: float) -> None:
        """Undo :meth:`add` (``when`` as given to it)."""
        buckets = self._buckets
        tick = math.ceil(when * self.TICKS)
        bucket = buckets.get(tick)
        if bucket is not None:
            bucket.pop(conn, None)
            if not bucket:
                # Empty buckets go at once (they would pin memory while many
                # connections leave); their ticks leave the heap when due, or
                # now if they are most of it.
                del buckets[tick]
                ticks = self._ticks
                if len(ticks) > 2 * len(buckets) + 64:
                    # Also a new dict: a dict keeps the table of its largest size.
                    self._buckets = buckets = dict(buckets)
                    self._ticks = list(buckets)
                    heapq.heapify(self._ticks)

    def _arm(self, tick: int, loop: asyncio.AbstractEventLoop) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = tick
        self._handle = loop.call_later(max(tick / self.TICKS - _monotonic(), 0.0), self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        self._armed = _INF
        # A connection's _watch() treats a deadline within _EPSILON as due.
        due = (_monotonic() + _EPSILON) * self.TICKS
        # The heap and the dict are looked up anew each time: a _watch() may add
        # and remove deadlines, and remove() may rebuild both.
        while self._ticks and self._ticks[0] <= due:
            for conn in self._buckets.pop(heapq.heappop(self._ticks), ()):
                try:
                    conn._watch()
                except Exception:  # pragma: no cover - one connection's bug spares the rest
                    log.exception("%s: watchdog failed", conn.peer)
        if self._ticks and not loop.is_closed():
            self._arm(self._ticks[0], loop)


class _TLSGate(asyncio.Protocol):
    """The socket's protocol on a TLS listener until the client's first bytes
    arrive: a TLS ClientHello hands the socket to the TLS protocol, anything else
    is a plain client (logged, closed)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: BaseConnection) -> None:
        self._conn: BaseConnection | None = conn

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or conn._lost or conn._closing:
            return
        transport = conn._transport
        if is_tls_client_hello(data):
            self._conn = None  # the TLS protocol reports to the connection from now on
            conn._begin_tls(transport, data)
        else:
            conn._plain_client_on_tls_listener(data)  # its connection_lost() comes here

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn._lost:
            conn.connection_lost(exc)


class ConnectionLimits:
    """The limits of one server's connections and what those connections share.

    Built from the top-level :class:`~fastwamp.config.Config` (see the module
    docstring for each key); holds the count of open connections per client
    address, the rate limits of connection-level log lines (one
    :class:`~fastwamp.logsafe.LogBudget` per kind of event, for the whole
    server, since a client can cause such lines by reconnecting), and the
    counters, kept in ``stats`` (the router's, so that
    ``fastwamp.router.get_stats`` shows them).
    """

    def __init__(self, config: Config | None = None, stats: dict[str, int] | None = None) -> None:
        if config is None:
            config = Config()
        self.handshake_timeout = config.handshake_timeout
        self.max_handshake_message_size = config.max_handshake_message_size
        self.frame_timeout = config.frame_timeout
        self.messages_per_turn = config.messages_per_turn
        self.max_connections_per_address = config.max_connections_per_address
        self.value_max = config.log_value_max
        self._log_rate = config.log_lines_per_session * SERVER_LOG_FACTOR
        self._budgets: dict[str, LogBudget] = {}
        #: Open connections by client address (only addresses with at least one).
        self.per_address: dict[str, int] = {}
        self.stats: dict[str, int] = stats if stats is not None else {}
        for key in TRANSPORT_STATS:
            self.stats.setdefault(key, 0)
        self.fd_alarm = 0
        self.refresh_fd_limit()
        #: The connections' deadlines, on one timer.
        self.watchdogs = Watchdogs()

    def refresh_fd_limit(self) -> None:
        """Re-read the descriptor limit (after raising it)."""
        soft = soft_fd_limit()
        self.fd_alarm = max(0, soft - FD_HEADROOM) if soft else 0

    def acquire(self, address: str) -> bool:
        """Count one more connection from ``address``; False (not counted) if over the limit."""
        count = self.per_address.get(address, 0)
        if count >= self.max_connections_per_address:
            return False
        self.per_address[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self.per_address.get(address, 0) - 1
        if count > 0:
            self.per_address[address] = count
        else:
            self.per_address.pop(address, None)

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def log(
        self,
        kind: str,
        level: int,
        msg: str,
        *args: object,
        logger: logging.Logger = log,
        rate: float = 0.0,
    ) -> None:
        """Log one line of kind ``kind``, within that kind's rate limit (lines per
        second: ``rate``, by default ``log_lines_per_session * SERVER_LOG_FACTOR``)."""
        budget = self._budgets.get(kind)
        if budget is None:
            budget = self._budgets[kind] = LogBudget(rate or self._log_rate)
        budget.log(logger, level, msg, *args)

    def clip(self, value: object) -> str:
        """``value`` (client-supplied) quoted for a log line."""
        return clip(value, self.value_max)


class OutputQueue:
    """What a connection holds while its transport's writing is paused.

    Created the first time writing pauses or an overflow is counted (most
    connections never need one); the limits stay on the connection.  ``held``
    is ``(type code, payload)`` oldest first: the encoded message, or a list of
    framed bytes for type ``_FRAMED``.
    """

    __slots__ = (
        "held",
        "bytes",
        "messages",
        "events",
        "after_drain",
        "episode_messages",
        "episode_bytes",
        "unreported_messages",
        "unreported_bytes",
        "last_report",
    )

    def __init__(self) -> None:
        self.held: deque[tuple[int, Any]] = deque()
        self.bytes = self.messages = self.events = 0
        #: Runs once the held output is written (a close that must not overtake it).
        self.after_drain: Callable[[], None] | None = None
        # The current overflow episode (from the first drop until the queue drains),
        # and the drops not yet reported to on_overflow.
        self.episode_messages = self.episode_bytes = 0
        self.unreported_messages = self.unreported_bytes = 0
        self.last_report = 0.0

    def clear(self) -> None:
        self.held.clear()
        self.bytes = self.messages = self.events = 0
        self.after_drain = None


class BaseConnection(asyncio.Protocol):
    """One client connection: glue between an asyncio transport and a router session.

    Subclasses parse bytes into WAMP messages, call :meth:`_attach` once the
    transport's own handshake succeeded, feed messages with ``self._session.receive``
    (at most ``messages_per_turn`` per turn, and none while ``self._input_paused``:
    what is left waits, see :meth:`_defer_input` and :meth:`_feed_deferred`) and
    then call ``self._router.flush_soon(self._last_read)``.  Each read starts by
    setting ``self._last_read``.  For the output queue they provide :meth:`_frame` and
    :meth:`_write_now`, call :meth:`_hold` from ``send_messages`` while
    ``self._write_paused``, and report messages they cannot send with
    :meth:`_unencodable` / :meth:`_too_large`.  They also provide
    :meth:`_send_ping` and :meth:`_on_established` (raise the input size limit).

    Memory: an idle connection holds only what it must (slots, no instance
    dict; subclasses declare ``__slots__`` too): the output queue, input
    buffers and timers are created when first needed, and the serializer is
    the process's shared one.
    """

    __slots__ = (
        "__weakref__",
        "_router",
        "_listener",
        "_connections",
        "_limits",
        "_transport",
        "_loop",
        "_session",
        "_serializer",
        "_encode",
        "_frame_key",
        "_max_out",
        "peer",
        "_detached",
        "_closing",
        "_closing_at",
        "_lost",
        "_reading",
        "_write_paused",
        "_timer",
        "_queue",
        "_held_max_bytes",
        "_held_max_messages",
        "_policy",
        "_on_overflow",
        "_watch_at",
        "_established",
        "_direct_member",
        "_opened_at",
        "_last_read",
        "_ping_sent",
        "_partial_since",
        "_write_mark",
        "_pingable",
        "_input_paused",
        "_deferred",
        "_read_paused",
        "_deferred_handle",
        "_address",
        "_refused",
        "_tls",
        "keepalive_inherited",
    )

    #: ``transport_info["type"]`` for the router.
    transport_type = ""

    def __init__(
        self,
        router: RouterLike,
        listener: ListenerConfig,
        connections: set[BaseConnection] | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self._router = router
        self._listener = listener
        self._connections = connections
        if limits is None:
            limits = ConnectionLimits(getattr(router, "config", None), getattr(router, "stats", None))
        self._limits = limits
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: Session | None = None
        self._serializer: Any = None
        self._detached = False
        self._closing = False  # no more output: close() was called or the connection died
        self._closing_at = 0.0
        self._lost = False  # connection_lost() ran
        self._reading = True  # False once input must be ignored (failed, invalid, closing)
        self._write_paused = False
        self._timer: asyncio.TimerHandle | None = None  # closing handshake, draining
        #: The session's serializer's encode, set once the transport handshake chose it.
        self._encode: Callable[[list], bytes] | None = None
        #: Where a SharedMessage keeps its frame for this connection (frame_key);
        #: None: frames are not shared (compression).
        self._frame_key: str | None = None
        #: Largest message the peer accepts (RawSocket: announced in its handshake).
        self._max_out = listener.max_message_size
        self.peer = "unknown"
        #: Output held while writing is paused (created when first needed).
        self._queue: OutputQueue | None = None
        # Its limits: until the session sets them, as many bytes as the hard cap,
        # then disconnect (see set_output_limits).
        self._held_max_bytes = write_limit(listener)
        self._held_max_messages = sys.maxsize
        self._policy = "disconnect"
        self._on_overflow: OverflowCallback | None = None
        # Time limits: one deadline (the watchdog) per connection, see _watch(),
        # kept by the server's Watchdogs (one timer for every connection).
        self._watch_at = _INF  # when the watchdog fires next
        self._established = False  # WELCOME was sent
        #: The session's member while it may write frames itself (_sync_frame_path).
        self._direct_member: Any = None
        self._opened_at = 0.0
        #: When bytes last arrived from the peer (set by the engines on every read).
        self._last_read = 0.0
        self._ping_sent = 0.0  # when the unanswered PING went out (0: none)
        self._partial_since = 0.0  # when the incomplete frame being received started
        self._write_mark = -1  # transport buffer size when last checked, writing paused
        #: The peer is known to answer PINGs (RawSocket: see ``rawsocket_ping``).
        self._pingable = True
        # Input flow: reading is paused while any of these three holds.
        self._input_paused = False  # the core's backpressure (pause_input)
        self._deferred = False  # input left over from a turn waits for a later one
        self._read_paused = False  # transport.pause_reading() is in effect
        self._deferred_handle: asyncio.Handle | None = None
        # max_connections_per_address.
        self._address: str | None = None
        self._refused = False
        #: TLS: the listener's context until the handshake is done, then the
        #: session's ``transport_info["tls"]``; None on a plain listener.
        self._tls: ssl.SSLContext | dict[str, Any] | None = None
        #: The accepted socket has TCP keepalive from its listening socket (Linux
        #: copies the options at accept): nothing to set per connection.
        self.keepalive_inherited = False

    # Sink methods called by the session.

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
        reported as ``on_overflow(dropped_messages, dropped_bytes, disconnected)``;
        with ``on_overflow=None``, to the session's ``output_overflow`` method if it
        has one (so that a session need not keep a bound method per connection).
        """
        if policy not in OVERFLOW_POLICIES:
            raise ValueError(f"unknown overflow policy {policy!r}")
        if max_bytes < 1 or max_messages < 1:
            raise ValueError("output limits must be >= 1")
        self._held_max_bytes = max_bytes
        self._held_max_messages = max_messages
        self._policy = policy
        self._on_overflow = on_overflow

    def pause_input(self) -> None:
        """Feed no further message to the session until :meth:`resume_input` (the
        core's backpressure); what is already read stays buffered, the socket unread."""
        if not self._input_paused:
            self._input_paused = True
            self._sync_reading()

    def resume_input(self) -> None:
        """Undo :meth:`pause_input`: buffered input is fed on a later turn."""
        if self._input_paused:
            self._input_paused = False
            if self._deferred:
                self._schedule_deferred()
            else:
                self._sync_reading()

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._transport is not None:  # the TLS transport, its handshake done
            self._tls_established(transport)
            return
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self._loop = asyncio.get_running_loop()
        peername = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        self.peer = _format_peer(peername, sock)
        self._opened_at = self._last_read = _monotonic()
        if self._connections is not None:
            self._connections.add(self)
        limits = self._limits
        address = _peer_address(peername)
        if address is not None:
            address = sys.intern(address)  # one string per client address, not per connection
            if limits.acquire(address):
                self._address = address
            else:
                # Answered at the transport handshake (RawSocket error 4, HTTP 503).
                self._refused = True
                limits.count("connections_refused")
                limits.log(
                    "refused",
                    logging.WARNING,
                    "%s: refusing the connection: %d connections from this address are "
                    "open (max_connections_per_address)",
                    self.peer,
                    limits.per_address.get(address, 0),
                )
        if sock is not None:
            listener = self._listener
            if listener.tcp_keepalive and not self.keepalive_inherited:
                enable_keepalive(sock, listener.auto_ping_interval, listener.auto_ping_timeout)
            if limits.fd_alarm:
                try:
                    fd = sock.fileno()
                except (OSError, AttributeError):
                    fd = -1
                if fd >= limits.fd_alarm:
                    limits.log(
                        "descriptors",
                        logging.WARNING,
                        "%s: file descriptor %d in use, the limit is %d: the router is about "
                        "to run out of descriptors, and connections accepted without one are "
                        "closed at once (raise the open-files limit)",
                        self.peer,
                        fd,
                        limits.fd_alarm + FD_HEADROOM,
                        rate=1.0,
                    )
        self._watch()
        context = self._tls
        if context is None:
            self._transport_open(transport)
        elif self._refused:
            self._abort()  # no TLS handshake for a connection over the limit (logged)
        else:
            self._start_tls(transport, context)  # type: ignore[arg-type]

    def _transport_open(self, transport: Any) -> None:
        """The transport is ready for the engine's handshake: at once on a plain
        listener, after the TLS handshake on a TLS one (``transport`` is then the
        TLS transport)."""

    def _start_tls(self, transport: Any, context: ssl.SSLContext) -> None:
        """Read the client's first bytes (:class:`_TLSGate`): a ClientHello starts
        the TLS handshake (:meth:`_begin_tls`), anything else is a plain client."""
        transport.set_protocol(_TLSGate(self))

    def _begin_tls(self, transport: Any, first: bytes) -> None:
        """Put the loop's TLS protocol between the socket and this connection and
        give it the ``first`` bytes read.

        Once the handshake is done the TLS protocol calls ``connection_made``
        again, with the TLS transport, before any data (:meth:`_tls_established`);
        if it fails, the waiter tells (:meth:`_tls_handshake_done`).
        """
        loop = self._loop
        context = self._tls
        assert loop is not None and isinstance(context, ssl.SSLContext)
        waiter = loop.create_future()
        tls_protocol = tls_protocol_class(loop)(
            loop,
            self,
            context,
            waiter,
            server_side=True,
            server_hostname=None,
            # The connection's own deadline fires first; this one is the loop's backstop.
            ssl_handshake_timeout=self._limits.handshake_timeout + 1.0,
        )
        transport.set_protocol(tls_protocol)
        tls_protocol.connection_made(transport)
        waiter.add_done_callback(self._tls_handshake_done)
        view = memoryview(first)
        while view and not transport.is_closing():
            buf = tls_protocol.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            tls_protocol.buffer_updated(n)
            view = view[n:]

    def _plain_client_on_tls_listener(self, first: bytes) -> None:
        """The first bytes are not a TLS ClientHello, on a TLS listener: log, close
        (an HTTP request gets a 400 that says why)."""
        limits = self._limits
        limits.count("tls_handshake_failures")
        http = first[:4] in (b"GET ", b"HEAD", b"POST", b"PUT ", b"OPTI")
        limits.log(
            "tls_plain_client",
            logging.INFO,
            "%s: TLS handshake failed: %s on a TLS listener; closing",
            self.peer,
            "a plain HTTP request (ws:// instead of wss://?)" if http
            else f"not TLS (first octet 0x{first[0]:02x}; a plain client?)",
        )
        transport = self._transport
        if http and transport is not None:
            transport.write(_PLAIN_HTTP_ON_TLS)
            self._start_closing()
            self._reading = False
            transport.close()
        else:
            self._abort()

    def _tls_established(self, tls_transport: Any) -> None:
        """``connection_made`` from the TLS protocol: the handshake succeeded."""
        if self._lost or self._closing:
            self._tls = None  # the TLS protocol reports the end (connection_lost)
            tls_transport.abort()
            return
        self._transport = tls_transport
        try:
            self._tls = tls_info(tls_transport.get_extra_info("ssl_object"))
        except Exception:  # pragma: no cover - the ssl object of a finished handshake
            log.exception("%s: reading the TLS session failed", self.peer)
            self._abort()
            return
        self._transport_open(tls_transport)

    def _tls_handshake_done(self, waiter: asyncio.Future[Any]) -> None:
        if not isinstance(self._tls, ssl.SSLContext) or self._lost:
            return  # established (the TLS protocol reports its end as usual)
        # Failed, or closed during the handshake: the TLS protocol will not call
        # connection_lost() for a connection it never handed over.
        exc = None if waiter.cancelled() else waiter.exception()
        if exc is not None:
            self._tls_failed(exc)
        self._abort()
        self.connection_lost(exc if isinstance(exc, Exception) else None)

    def _tls_failed(self, exc: BaseException) -> None:
        """The TLS handshake failed: log why (rate-limited), close."""
        if self._lost or self._closing:
            # We closed it (handshake_timeout, shutdown: logged there).
            log.debug("%s: TLS handshake ended: %r", self.peer, exc)
            self._abort()
            return
        limits = self._limits
        limits.count("tls_handshake_failures")
        plain = plain_client_reason(exc)
        if plain is not None:
            limits.log(
                "tls_plain_client",
                logging.INFO,
                "%s: TLS handshake failed: %s on a TLS listener; closing",
                self.peer,
                plain,
            )
        else:
            limits.log(
                "tls_failed",
                logging.INFO,
                "%s: TLS handshake failed: %s; closing",
                self.peer,
                limits.clip(str(exc) or type(exc).__name__),
            )
        self._abort()

    def _tls_client_on_plain_listener(self) -> None:
        """The first bytes are a TLS ClientHello, on a plain listener: log it, close."""
        limits = self._limits
        limits.count("tls_clients_on_plain_listeners")
        limits.log(
            "tls_on_plain",
            logging.WARNING,
            "%s: a TLS client reached a plain (non-TLS) listener (wss:// or TLS RawSocket "
            "to a port without tls_certificate?); closing",
            self.peer,
        )
        self._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return  # at most once (a TLS handshake cut short reports it too)
        self._lost = True
        self._cancel_timer()
        self._stop_watchdog()
        if self._deferred_handle is not None:
            self._deferred_handle.cancel()
            self._deferred_handle = None
        self._deferred = False
        self._closing = True
        self._reading = False
        self._stop_frame_path()
        if self._address is not None:
            self._limits.release(self._address)
            self._address = None
        if self._connections is not None:
            self._connections.discard(self)
        q = self._queue
        if q is not None:
            q.clear()
            if q.episode_messages:
                self._log_episode_end("the connection was lost")
            self._report(False)
        self._detach()

    def pause_writing(self) -> None:
        # The peer reads slower than we write: hold further output (bounded by
        # the output limits) and stop reading its requests until it catches up.
        self._write_paused = True
        self._stop_frame_path()
        self._sync_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._write_mark = -1
        q = self._queue
        if q is None:
            self._sync_frame_path()
            self._sync_reading()
            return
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
        self._sync_frame_path()
        self._sync_reading()

    # Output: to be provided by subclasses.

    def close(self) -> None:
        """Close the connection once the output already given (held output included)
        is written, with the transport's own closing handshake (sink method)."""
        if self._closing:
            return
        self._start_closing()
        self._reading = False  # the router is done with this session
        self._close_after_output(self._end_connection)

    def _end_connection(self) -> None:
        """The transport's way to end a connection whose output is all written."""
        raise NotImplementedError

    def _send_ping(self) -> None:
        """Send the transport's PING (only called on an established connection)."""
        raise NotImplementedError

    def _on_established(self) -> None:
        """The session is established: from now on the listener's limits apply."""

    def _feed_deferred(self) -> bool:
        """Feed buffered input (at most ``messages_per_turn`` messages) to the session;
        True if input is left for a later turn."""
        return False

    # Messages that cannot be sent.

    def _unencodable(self, msg: list, exc: BaseException) -> None:
        """``msg`` could not be encoded: the session answers for it (see the module doc)."""
        name = getattr(self._serializer, "name", "its serializer")
        self._undeliverable(
            msg,
            uris.UNENCODABLE,
            f"cannot be encoded in {name} ({type(exc).__name__}: {self._limits.clip(str(exc))})",
        )

    def _frame_shared(self, msg: Any) -> bytes | None:
        """Encode and frame a SharedMessage for this connection's serializer and framing,
        keeping the frame in ``msg`` for its other receivers; None if it cannot be
        encoded (reported as undeliverable)."""
        raise NotImplementedError

    def _frame_payload_length(self, frame: bytes) -> int:
        """The payload length of a frame made by :meth:`_frame_shared`."""
        raise NotImplementedError

    def _write_shared(self, msg: Any) -> None:
        """Write one fan-out EVENT alone: its frame is made once per serializer and
        framing, kept in ``msg``, and written as it is to every receiver."""
        frame = msg.encoded.get(self._frame_key)
        if frame is None:
            frame = self._frame_shared(msg)
            if frame is None:
                return
        length = self._frame_payload_length(frame)
        if length > self._max_out:
            self._too_large(msg, length)
            return
        self._write_now([frame])
        if self._write_paused:
            self._check_backlog()

    def _too_large(self, msg: list, length: int) -> None:
        """``msg`` encodes to ``length`` bytes, more than the peer accepts."""
        self._undeliverable(
            msg,
            uris.PAYLOAD_SIZE_EXCEEDED,
            f"{length} bytes, over the {self._max_out} bytes the peer accepts",
        )

    def _undeliverable(self, msg: list, error: str, reason: str) -> None:
        session = self._session
        if session is None:  # pragma: no cover - the router sends only to attached sessions
            return
        try:
            session.undeliverable(msg, error, reason)
        except Exception:  # a bug in the core must not break this flush
            log.exception("%s: reporting an undeliverable message failed", self.peer)

    def _encode_out(self, msg: list) -> bytes | None:
        """Encode one outgoing message; None if it cannot be sent (reported)."""
        encode = self._encode
        assert encode is not None
        try:
            data = encode(msg)
        except Exception as exc:  # any encoder failure means: not representable
            self._unencodable(msg, exc)
            return None
        if len(data) > self._max_out:
            self._too_large(msg, len(data))
            return None
        return data

    def _frame(self, parts: list[bytes], data: bytes) -> None:
        """Append the frame(s) carrying the encoded message ``data`` to ``parts``."""
        raise NotImplementedError

    def _write_now(self, parts: list[bytes], size: int = 0) -> None:
        """Write ``parts`` (``size`` bytes of payload, if known) to the transport in
        one call (see :func:`write_parts`)."""
        raise NotImplementedError


    # Output: the queue.

    def _write(self, parts: list[bytes]) -> None:
        """Write framed ``parts``, after any held output (which they must not overtake)."""
        if not parts:
            return
        q = self._queue
        if q is not None and q.held:
            q.held.append((_FRAMED, parts))
            q.bytes += sum(map(len, parts))
        else:
            self._write_now(parts)

    def _hold(self, framed: list[bytes], msgs: list[list]) -> None:
        """Keep ``framed`` output and the messages ``msgs`` until writing resumes,
        then apply the overflow policy if the held output is over a limit."""
        q = self._queue
        if q is None:
            q = self._queue = OutputQueue()
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
        if self._over(q):
            self._overflow(q)

    def _over(self, q: OutputQueue) -> bool:
        return q.bytes > self._held_max_bytes or q.messages > self._held_max_messages

    def _overflow(self, q: OutputQueue) -> None:
        """The held output is over a limit: drop the oldest EVENTs, or disconnect."""
        if self._policy == "drop_oldest":
            dropped, size = self._drop_oldest_events(q)
            q.unreported_messages += dropped
            q.unreported_bytes += size
            if not self._over(q):
                first = not q.episode_messages
                q.episode_messages += dropped
                q.episode_bytes += size
                if first:
                    log.warning(
                        "%s: output queue full (limits: %d messages, %d bytes): dropping the "
                        "oldest events until the peer reads again",
                        self.peer,
                        self._held_max_messages,
                        self._held_max_bytes,
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
            self._held_max_messages,
            self._held_max_bytes,
            reason,
        )
        q.unreported_messages += q.messages
        q.unreported_bytes += q.bytes
        q.episode_messages = q.episode_bytes = 0
        self._report(True)
        self._abort()

    def _drop_oldest_events(self, q: OutputQueue) -> tuple[int, int]:
        """Drop held EVENTs, oldest first, until within the limits; (messages, bytes)."""
        held = q.held
        kept = []
        dropped = size = 0
        while q.events and self._over(q):
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
        assert q is not None
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
                    self._write_now(parts, size)
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
                self._write_now(parts, size)
                parts, size = [], 0
        if parts:
            self._write_now(parts, size)

    def _report(self, disconnected: bool) -> None:
        """Tell the session what overflowed since the last report (if anything)."""
        q = self._queue
        if q is None:
            q = self._queue = OutputQueue()
        dropped, size = q.unreported_messages, q.unreported_bytes
        if not (dropped or size or disconnected):
            return
        q.unreported_messages = q.unreported_bytes = 0
        q.last_report = time.monotonic()
        on_overflow = self._on_overflow
        if on_overflow is None:
            on_overflow = getattr(self._session, "output_overflow", None)
        if on_overflow is not None:
            try:
                on_overflow(dropped, size, disconnected)
            except Exception:  # the router's bug must not break this flush
                log.exception("%s: on_overflow callback failed", self.peer)

    def _log_episode_end(self, why: str) -> None:
        q = self._queue
        assert q is not None
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
        q = self._queue
        if q is not None and q.held:
            q.after_drain = close
            self._set_timer(CLOSE_TIMEOUT, self._close_timed_out)
        else:
            close()

    # Helpers for subclasses.

    def _attach(self, serializer_name: str, info: dict[str, Any]) -> None:
        """Hand the connection to the router once the transport handshake is done."""
        info = {
            "type": self.transport_type,
            "serializer": serializer_name,
            "peer": self.peer,
            **info,
        }
        if self._tls is not None:
            info["tls"] = self._tls
        self._session = self._router.attach(self, info)

    def _detach(self) -> None:
        """Tell the router the session is gone (at most once), then flush its output."""
        if self._session is not None and not self._detached:
            self._detached = True
            self._session.detach()
            self._router.flush()

    #: Bytes of framing in front of a shared frame's payload, for connections whose
    #: session's member may write fan-out frames straight to the transport (0: it
    #: may not); with :attr:`_traffic`, the counter of the bytes it writes.
    _direct_frame_header = 0
    _traffic: Traffic | None = None

    def _sync_frame_path(self) -> None:
        """Let the session's member write fan-out EVENT frames straight to the
        transport (see ``Member.deliver``) while nothing may come before them: the
        session established, the connection open, writing not paused, no output of
        the connection's own waiting; else stop it.  Called where one of these
        changes."""
        q = self._queue
        if (self._direct_frame_header and self._established and not self._closing
                and not self._write_paused and self._transport is not None
                and (q is None or not q.held) and not self._own_output_waiting()):
            member = getattr(self._session, "member", None)
            if member is not None:
                member.frame_key = self._frame_key
                member.frame_limit = self._max_out + self._direct_frame_header
                member.frame_traffic = self._traffic
                member.frame_encode = self._encode
                member.frame_pack = getattr(self._serializer, "encode_plain", None)
                member.frame_opcode = self._direct_frame_opcode()
                member.frame_payload_limit = self._max_out
                member.frame_transport = self._transport
                self._direct_member = member
        else:
            self._stop_frame_path()

    def _stop_frame_path(self) -> None:
        """Output must go through :meth:`send_messages` from now on (see
        :meth:`_sync_frame_path`)."""
        member = self._direct_member
        if member is not None:
            member.frame_transport = None
            self._direct_member = None

    def _direct_frame_opcode(self) -> int:
        """How the member frames a message it writes itself: 0 for a RawSocket
        frame, else the WebSocket opcode (see :meth:`_sync_frame_path`)."""
        return 0

    def after_direct_write(self) -> None:
        """The member wrote output straight to the transport and the write filled its
        buffer (writing is paused now): drop the peer if too much piles up, as a
        write of the connection's own would."""
        if self._write_paused:
            self._check_backlog()

    def _own_output_waiting(self) -> bool:
        """Output of the connection's own (not the router's) waits to go first."""
        return False

    def _check_backlog(self) -> bool:
        """Drop a peer that lets too much output pile up; True if it was dropped.

        The last resort behind the output queue: the transport's own buffer
        grows past the queue's limits only by one huge batch of output.
        """
        transport = self._transport
        if self._write_paused and transport is not None:
            size = transport.get_write_buffer_size()
            if size > write_limit(self._listener):
                log.warning(
                    "%s: dropping connection: peer does not read (%d bytes waiting)",
                    self.peer,
                    size,
                )
                q = self._queue
                if q is None:
                    q = self._queue = OutputQueue()
                q.unreported_bytes += size
                self._report(True)
                self._abort()
                return True
        return False

    def _abort(self) -> None:
        self._closing = True
        self._reading = False
        self._stop_frame_path()
        if self._queue is not None:
            self._queue.clear()
        if self._transport is not None:
            self._transport.abort()

    def _drop(self) -> None:
        """Drop the connection now and detach the session at once (timeouts)."""
        self._abort()
        self._detach()

    def _start_closing(self) -> None:
        """No more output: the connection must be gone within twice CLOSE_TIMEOUT."""
        if not self._closing:
            self._closing = True
            self._stop_frame_path()
            self._closing_at = _monotonic()
            self._poke_watchdog(self._closing_at + 2 * CLOSE_TIMEOUT)

    def _set_timer(self, delay: float, callback: Any) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close_timed_out(self) -> None:
        self._timer = None
        log.info("%s: peer did not complete the closing handshake; dropping it", self.peer)
        self._abort()

    # Reading: fairness and backpressure.

    def _sync_reading(self) -> None:
        """Read the socket if and only if no reason to pause holds."""
        transport = self._transport
        if transport is None or self._lost:
            return
        pause = self._write_paused or self._input_paused or self._deferred
        if pause == self._read_paused or transport.is_closing():
            return
        self._read_paused = pause
        if pause:
            transport.pause_reading()
        else:
            self._last_read = _monotonic()  # the pause does not count as the peer's silence
            transport.resume_reading()

    def _defer_input(self) -> None:
        """The engine stopped feeding with input left (turn budget, pause_input):
        stop reading the socket and feed the rest on a later turn."""
        if not self._deferred:
            self._deferred = True
            self._sync_reading()
        self._schedule_deferred()

    def _schedule_deferred(self) -> None:
        if (
            self._deferred_handle is None
            and not self._input_paused
            and self._reading
            and self._loop is not None
        ):
            self._deferred_handle = self._loop.call_soon(self._run_deferred)

    def _run_deferred(self) -> None:
        self._deferred_handle = None
        if not self._deferred or self._input_paused:
            return  # resume_input() schedules again
        if not self._reading:
            self._deferred = False  # closing: the rest of the input is not wanted
            return
        try:
            more = self._feed_deferred()
        except Exception:  # pragma: no cover - the session's receive() never raises
            log.exception("%s: feeding buffered input failed", self.peer)
            more = False
        if more and self._reading:
            self._schedule_deferred()
        else:
            self._deferred = False
            self._sync_reading()

    # Time limits: one watchdog deadline per connection (on the server's Watchdogs).

    def _watch(self) -> None:
        """Check the connection's deadlines; act on the ones due, arm for the next.

        Deadlines: opening (``handshake_timeout`` until WELCOME), a frame that
        stopped halfway (``frame_timeout``), liveness (``auto_ping_interval`` of
        silence, then ``auto_ping_timeout`` after a PING), and, once closing,
        ``2 * CLOSE_TIMEOUT``.  The timer is rescheduled only here, when it fires
        (or when a deadline moves earlier), never per message.
        """
        self._watch_at = _INF  # Watchdogs forgot it (or it was never armed)
        if self._lost or self._transport is None:
            return
        now = _monotonic()
        if self._closing:
            due = self._closing_at + 2 * CLOSE_TIMEOUT
            if now >= due - _EPSILON:
                log.info("%s: connection still open %g s after closing began; dropping it",
                         self.peer, 2 * CLOSE_TIMEOUT)
                self._abort()
            else:
                self._arm(due, now)
            return
        limits = self._limits
        deadline = _INF
        if not self._established:
            due = self._opened_at + limits.handshake_timeout
            if now >= due - _EPSILON:
                self._handshake_timed_out()
                return
            deadline = due
        since = self._partial_since
        if since:
            if self._read_paused:  # we do not read it: the delay is not the peer's
                self._partial_since = since = now
            due = since + limits.frame_timeout
            if now >= due - _EPSILON:
                self._frame_timed_out()
                return
            deadline = min(deadline, due)
        interval = self._listener.auto_ping_interval
        if interval > 0 and self._established and self._pingable:
            alive_due = self._check_alive(now, interval)
            if alive_due is None:
                return  # dropped
            deadline = min(deadline, alive_due)
        self._arm(deadline, now)

    def _check_alive(self, now: float, interval: float) -> float | None:
        """Ping a silent peer, drop one that stays silent; the next deadline (None: dropped)."""
        seen = self._last_read
        if self._write_paused:
            # Its PONG would wait unread behind our paused reading: the peer taking
            # our output (the transport's buffer shrinking) shows it is alive.
            transport = self._transport
            assert transport is not None
            size = transport.get_write_buffer_size()
            if 0 <= size < self._write_mark:
                seen = self._last_read = now
            self._write_mark = size
        elif self._read_paused:
            seen = self._last_read = now  # we do not read it: its silence means nothing
        timeout = self._listener.auto_ping_timeout
        sent = self._ping_sent
        if sent:
            if seen > sent:
                self._ping_sent = 0.0  # heard from since the PING
            elif now >= sent + timeout - _EPSILON:
                self._peer_silent(now - seen)
                return None
            else:
                return sent + timeout
        due = seen + interval
        if now >= due - _EPSILON:
            self._ping_sent = now
            self._send_ping()
            return now + timeout
        return due

    def _arm(self, deadline: float, now: float) -> None:
        if deadline < _INF:
            assert self._loop is not None
            self._watch_at = deadline
            self._limits.watchdogs.add(self, deadline, self._loop)

    def _poke_watchdog(self, when: float) -> None:
        """A deadline at ``when`` appeared: make the watchdog fire by then."""
        if when < self._watch_at and not self._lost and self._loop is not None:
            self._stop_watchdog()
            self._arm(when, _monotonic())

    def _stop_watchdog(self) -> None:
        if self._watch_at < _INF:
            self._limits.watchdogs.remove(self, self._watch_at)
            self._watch_at = _INF

    def _check_welcome(self, msgs: list[list]) -> None:
        """Called with outgoing messages until the session is established (WELCOME)."""
        for msg in msgs:
            if msg and msg[0] == WELCOME:
                self._established = True
                self._opened_at = 0.0  # only the opening deadline needed it (a float less)
                self._on_established()
                self._sync_frame_path()
                if self._listener.auto_ping_interval > 0:
                    self._poke_watchdog(self._last_read + self._listener.auto_ping_interval)
                return

    def _note_partial(self, pending: bool, progressed: bool, now: float) -> None:
        """After a read: ``pending`` if an incomplete frame or message remains,
        ``progressed`` if a frame completed (so the pending one started in this read)."""
        if not pending:
            self._partial_since = 0.0
        elif progressed or not self._partial_since:
            self._partial_since = now
            self._poke_watchdog(now + self._limits.frame_timeout)

    def _handshake_timed_out(self) -> None:
        limits = self._limits
        limits.count("handshake_timeouts")
        session = self._session
        limits.log(
            "handshake_timeout",
            logging.WARNING,
            "%s: no session established within %g s of connecting (%s); closing",
            self.peer,
            limits.handshake_timeout,
            "no HELLO" if session is not None
            else "TLS handshake not completed" if isinstance(self._tls, ssl.SSLContext)
            else "transport handshake not completed",
        )
        if session is not None:
            try:
                session.abort(
                    uris.TIMEOUT,
                    f"no session established within {limits.handshake_timeout:g} s of connecting",
                )
                self._router.flush()  # the ABORT, then the session closes this sink
            except Exception:  # pragma: no cover - abort() never raises
                log.exception("%s: aborting the session failed", self.peer)
            if self._closing:
                return  # closing after the ABORT, bounded by the watchdog
        self._abort()

    def _frame_timed_out(self) -> None:
        limits = self._limits
        limits.count("frame_timeouts")
        limits.log(
            "frame_timeout",
            logging.WARNING,
            "%s: a frame stayed incomplete for %g s (frame_timeout); dropping the connection",
            self.peer,
            limits.frame_timeout,
        )
        self._drop()

    def _peer_silent(self, silence: float) -> None:
        limits = self._limits
        limits.count("ping_timeouts")
        limits.log(
            "ping_timeout",
            logging.WARNING,
            "%s: nothing received for %.1f s, no answer to a PING within %g s; "
            "dropping the connection",
            self.peer,
            silence,
            self._listener.auto_ping_timeout,
        )
        self._drop()
