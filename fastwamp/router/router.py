"""The router: its realms, and delivery of queued output to transports.

Everything here is sans-I/O.  Transports call :meth:`Router.attach` per
connection, feed decoded messages to the returned session, and call
:meth:`Router.flush` after each batch; timers come from ``scheduler``, which
the server sets (tests use a fake one).  There is one routing thread, so no
locks anywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..auth.guard import FailedAuthentications
from ..config import Config
from ..wamp import uris
from .clock import Clock, Scheduler
from .ids import random_id
from .member import Member, MessageCounts, deliver_all
from .realm import Realm
from .session import RouterSession, Sink

log = logging.getLogger("fastwamp.router")

#: Seconds between the end of a flush and the next read below which the router
#: counts as busy, and :meth:`Router.flush_soon` joins flushes per loop iteration.
#: Reads in one iteration, or in iterations that find input waiting, come a few
#: microseconds apart (a ``read`` system call and the loop's bookkeeping); a
#: reply from another process takes tens.
BUSY_GAP = 5e-6


class Router:
    """A WAMP router: realms of sessions, with a dealer and a broker each."""

    agent = f"fastwamp-{__version__}"

    def __init__(self, config: Config, scheduler: Scheduler | None = None) -> None:
        self.config = config
        #: Time and timers for the core; the server (or a test) sets the scheduler.
        self.clock = Clock(scheduler)
        self.realms: dict[str, Realm] = {}
        #: Every session that has joined a realm, by id.
        self.sessions: dict[int, RouterSession] = {}
        #: Members (sessions' routing records) with queued output, in the order they got it
        #: (one list for the router's life: members append to it without a Python call).
        self.pending: list[Member] = []
        #: ``queue_delivery(member)``: ``member`` has output (or a close) for the next flush.
        self.queue_delivery: Callable[[Member], None] = self.pending.append
        self._anonymous_count = 0
        #: Draws a session id (a cluster node replaces it with its own partition).
        self.draw_session_id: Callable[[], int] = random_id
        #: Failed authentications by client address (max_auth_failures_per_address).
        self.failed_authentications = FailedAuthentications(
            config.max_auth_failures_per_address, config.auth_failure_window)
        #: ``loop.call_soon``, set by the server: lets the router defer a flush to the
        #: end of a loop iteration (see :meth:`flush_soon`).
        self.call_soon: Callable[[Callable[[], None]], Any] | None = None
        #: The clock of :meth:`flush_soon` (``time.monotonic``; tests replace it).
        self.monotonic: Callable[[], float] = time.monotonic
        self._flush_scheduled = False
        #: Reads that asked for a flush while a deferred one was scheduled.
        self._flushes_joined = 0
        #: Flush at the end of a read (True) or of the loop iteration (False).
        self._flush_at_once = True
        #: When the last flush of :meth:`flush_soon` ended (``monotonic``).
        self._flushed_at = 0.0
        #: Counters served by fastwamp.router.get_stats.
        self.stats: dict[str, int] = {
            "sessions_joined": 0,
            "overflow_dropped_messages": 0,
            "overflow_dropped_bytes": 0,
            "overflow_disconnects": 0,
            "undeliverable_messages": 0,
            "undeliverable_events": 0,
            #: requests answered with a bad-input error (invalid_uri, invalid_argument,
            #: not_authorized, quota/limit exceeded); of those, limits hit (and refused HELLOs)
            "refused_requests": 0,
            "limits_hit": 0,
            "protocol_violations": 0,
            #: HELLOs and AUTHENTICATEs refused (wrong credentials, no usable method)
            "authentication_failures": 0,
        }
        #: Messages queued for client sessions by type code, when metrics are on (set
        #: before sessions attach); None: not counted.
        self.sent_counts: MessageCounts | None = None
        #: ``count_refusal(session, request_type, error)``: called for each error the
        #: router answers a request with, when metrics are on; None: nothing to do.
        self.count_refusal: Callable[[RouterSession, int, str], None] | None = None
        for realm_config in config.realms:
            self.realms[realm_config.name] = Realm(self, realm_config)

    @property
    def scheduler(self) -> Scheduler | None:
        """The loop's (or a fake) timers; None in a bare core."""
        return self.clock.scheduler

    @scheduler.setter
    def scheduler(self, scheduler: Scheduler | None) -> None:
        self.clock.scheduler = scheduler

    def attach(self, sink: Sink, transport_info: dict[str, Any]) -> RouterSession:
        """A new connection is ready; return the session to feed its messages to."""
        return RouterSession(self, sink, transport_info)

    def flush(self) -> None:
        """Deliver every queued message to its transport, and close finished sessions.

        Never raises: a failure while delivering to one session is logged and ends
        that session's connection; the other sessions are served all the same.
        """
        deliver_all(self.pending)

    def reload(self, config: Config) -> None:
        """Apply a configuration read again (SIGHUP) without dropping sessions.

        The caller has validated ``config``.  Realms named in both the old and the new
        configuration take their new settings through :meth:`Realm.reconfigure`; realms
        are neither added nor removed while sessions may be joined to them (a restart
        does that), and router-wide keys other than the realms' stay as they were.
        """
        for realm_config in config.realms:
            realm = self.realms.get(realm_config.name)
            if realm is not None:
                realm.reconfigure(realm_config)
            else:
                log.warning("reload: realm %s is new; it is created at the next start",
                            realm_config.name)
        for name in self.realms.keys() - {rc.name for rc in config.realms}:
            log.warning("reload: realm %s is gone from the configuration; it stays until "
                        "the next start", name)

    def release_memory(self) -> None:
        """Give back what the session tables kept after many sessions left: a dict never
        shrinks by itself, so one far below its peak is rebuilt (the server calls this
        when it is idle after mass disconnects)."""
        self.sessions = dict(self.sessions)
        for realm in self.realms.values():
            realm.sessions = dict(realm.sessions)

    def flush_soon(self, read_at: float | None = None) -> None:
        """Deliver the output of the read just fed, now or at the end of the loop
        iteration.

        Transports call this after feeding a read's messages, with the
        ``monotonic()`` time the read arrived.  While the router is quiet (the read
        arrived :data:`BUSY_GAP` or more after the last flush ended) the output
        leaves at once, a turn of the loop sooner.  When reads come back to back
        (several in one loop iteration, or each iteration starting with one), flushes
        wait for the end of the iteration, so the output for each peer leaves in one
        write; they go back to at once after an iteration with one such read.
        Without ``call_soon`` (a bare core, tests) it flushes at once.
        """
        if self._flush_scheduled:
            self._flushes_joined += 1
            return
        call_soon = self.call_soon
        if call_soon is None:
            self.flush()
            return
        if self._flush_at_once:
            if read_at is None:
                read_at = self.monotonic()
            if read_at - self._flushed_at >= BUSY_GAP:
                deliver_all(self.pending)  # self.flush(), without its frame
                self._flushed_at = self.monotonic()
                return
            self._flush_at_once = False  # back to back with the last flush
        self._flush_scheduled = True
        call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        # Other reads joined this flush: keep waiting for the end of the iteration.
        self._flush_at_once = not self._flushes_joined
        self._flushes_joined = 0
        deliver_all(self.pending)
        self._flushed_at = self.monotonic()

    def shutdown(self) -> None:
        """Say GOODBYE (``wamp.close.system_shutdown``) to every session, then flush."""
        for realm in self.realms.values():
            for session in list(realm.sessions.values()):
                session.goodbye(uris.CLOSE_SYSTEM_SHUTDOWN, "the router is shutting down")
                session.request_close()
        self.flush()
        for realm in self.realms.values():
            realm.close()

    # -- identifiers -----------------------------------------------------------

    def new_session_id(self) -> int:
        sessions = self.sessions
        draw = self.draw_session_id
        while True:
            session_id = draw()
            if session_id not in sessions:
                return session_id

    def new_anonymous_authid(self) -> str:
        self._anonymous_count += 1
        return f"anonymous-{random_id():x}"
