"""The router side of one WAMP session: its state machine and its outbox.

A :class:`RouterSession` is fed decoded messages with :meth:`receive` and
queues what it must send in ``outbox``; :meth:`Router.flush` hands queued
messages to the session's sink (the transport).  It never touches a socket.

States: ``HANDSHAKE`` (waiting for HELLO) -> ``CHALLENGING`` (CHALLENGE sent,
waiting for AUTHENTICATE; only AUTHENTICATE, ABORT and GOODBYE are accepted) ->
``ESTABLISHED`` -> ``CLOSING`` (router sent GOODBYE, waiting for the reply) ->
``CLOSED``.  The realm's :class:`~fastwamp.auth.RealmAuthenticator` decides HELLO
and AUTHENTICATE; the session sends WELCOME, CHALLENGE or ABORT.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .._core.message import message_problem
from ..auth import Challenge, Deferred, Failure, HelloRequest, Identity, Outcome, PendingStep
from ..auth.guard import client_address
from ..logsafe import LogBudget, clip
from ..wamp import messages as m
from ..wamp import uris
from ..wamp.messages import ProtocolViolation, check_message
from .member import FEATURE_BITS, Member

if TYPE_CHECKING:
    from .realm import Realm
    from .router import Router

log = logging.getLogger("fastwamp.session")

#: Lines about connections lost without GOODBYE, for all sessions together: one client
#: dropping many connections at once (or a flood of connect-and-drop) must not spend
#: the loop on a log line each (≈ 15-40 us per line).
_LOST_LOG = LogBudget(20.0)
#: Lines about failed authentications, for all sessions together (a password-guessing
#: flood must not flood the log).
_AUTH_LOG = LogBudget(20.0)

CLIENT_ROLES = ("publisher", "subscriber", "caller", "callee")

#: Role -> the ((feature, bit), ...) of FEATURE_BITS it may announce (empty: none routing
#: acts on), for every role a client may announce.
_ROLE_FEATURES: dict[str, tuple[tuple[str, int], ...]] = {
    role: tuple((feature, bit) for (r, feature), bit in FEATURE_BITS.items() if r == role)
    for role in CLIENT_ROLES
}
#: HELLO.Details.authmethods when the client gives none (shared, never changed).
_ANONYMOUS_ONLY: list[str] = ["anonymous"]

#: Seconds a peer has to answer the router's GOODBYE before its connection is closed.
GOODBYE_REPLY_TIMEOUT = 5.0

#: Errors that answer a client's bad input: each is logged (one line).
_BAD_INPUT_ERRORS = frozenset({uris.INVALID_URI, uris.INVALID_ARGUMENT, uris.NOT_AUTHORIZED,
                               uris.QUOTA_EXCEEDED, uris.LIMIT_EXCEEDED})
#: Of those, the ones that mean a configured limit was hit (counted as limits_hit).
_LIMIT_ERRORS = frozenset({uris.QUOTA_EXCEEDED, uris.LIMIT_EXCEEDED})


class SessionState(enum.IntEnum):
    HANDSHAKE = 0
    ESTABLISHED = 1
    CLOSING = 2
    CLOSED = 3
    CHALLENGING = 4


HANDSHAKE = SessionState.HANDSHAKE
CHALLENGING = SessionState.CHALLENGING
ESTABLISHED = SessionState.ESTABLISHED
CLOSING = SessionState.CLOSING
CLOSED = SessionState.CLOSED

#: What an established session handles itself; every other message is routed.
_SESSION_CODES = frozenset((m.HELLO, m.AUTHENTICATE, m.GOODBYE, m.ABORT))

#: The authextra of every session whose authenticator gave none: one empty dict shared
#: (read-only through ``RouterSession.authextra``), not one per session (64 bytes each).
NO_AUTHEXTRA: Mapping[str, Any] = {}


class _Handshake:
    """A session's authentication in progress (HELLO until WELCOME or ABORT)."""

    __slots__ = ("realm", "features", "authid", "agent", "pending", "waiting")

    def __init__(self, realm: Realm, features: int, authid: str,
                 agent: object = None) -> None:
        #: The realm HELLO asked for, the FEATURE_BITS its roles announced, its authid
        #: ("" if none), and the client's HELLO.Details.agent (for the join log line).
        self.realm = realm
        self.features = features
        self.authid = authid
        self.agent = agent
        #: The method's step that checks the next AUTHENTICATE (after a CHALLENGE).
        self.pending: PendingStep | None = None
        #: The token of a deferred decision being waited for (dynamic authenticator).
        self.waiting: object | None = None


class Sink(Protocol):
    """What a transport provides to the router for one connection.

    ``send_messages`` must not raise for a message it cannot send: it reports it
    with :meth:`RouterSession.undeliverable` and goes on with the rest.
    ``pause_input``/``resume_input`` are backpressure from the core: while paused,
    the transport feeds no further message of this connection to the session
    (unprocessed input stays buffered, and the socket is not read).
    """

    def send_messages(self, msgs: list[list]) -> None: ...

    def close(self) -> None: ...

    def pause_input(self) -> None: ...

    def resume_input(self) -> None: ...


class RouterSession:
    """One client connection's WAMP session, as the router sees it.

    It keeps the state machine, the handshake, the identity and the transport
    (``sink``); what routing needs lives in its :class:`Member` (``member``),
    which the realm's dealer and broker work on.
    """

    #: True only for the router's own session in each realm (it may use "wamp.").
    is_service = False

    def __init__(self, router: Router, sink: Sink, transport_info: dict[str, Any]) -> None:
        self.router = router
        self.sink = sink
        self.transport_info = transport_info
        self.state = HANDSHAKE
        self.realm: Realm | None = None
        self.authmethod = ""
        self.authprovider = ""
        #: WELCOME.Details.authextra: the authenticator's, or the shared empty one.
        self.authextra: Mapping[str, Any] = NO_AUTHEXTRA
        #: The routing record: identity, features, outbox, calls, registrations...
        self.member = Member(self, router.queue_delivery, self.is_service)
        #: The member hands its output to the sink directly until the session closes
        #: (or is asked to): then it goes through deliver() here, as it always does for
        #: sessions that deliver otherwise (the router's own).
        if type(self).deliver is RouterSession.deliver:
            self.member.sink = sink
        if not self.is_service:  # the router's own sessions are not counted
            self.member.sent_counts = router.sent_counts
        self.close_requested = False
        self._sink_closed = False
        #: Highest client request id seen (for strict request-id checking).
        self.last_request_id = 0
        #: Log lines this session's bad input may still cause (created on first use).
        self._log_budget: LogBudget | None = None
        #: From HELLO until WELCOME or ABORT: what authentication needs (None after).
        self._handshake: _Handshake | None = None

    # -- identity (kept on the member, which routing reads) ----------------------

    @property
    def id(self) -> int:
        return self.member.id

    @property
    def authid(self) -> str:
        return self.member.authid

    @property
    def authrole(self) -> str:
        return self.member.authrole

    def has_feature(self, role: str, feature: str) -> bool:
        """Whether the client announced ``feature`` for ``role`` in HELLO (the features
        routing acts on, :data:`~fastwamp.router.member.FEATURE_BITS`)."""
        bit = FEATURE_BITS.get((role, feature), 0)
        return bool(self.member.features & bit)

    # -- logging ------------------------------------------------------------

    def log_bad_input(self, msg: str, *values: object, level: int = logging.INFO) -> None:
        """Log one line about this session's input, rate-limited per session
        (``Config.log_lines_per_session``); client-supplied ``values`` are clipped
        and escaped (``Config.log_value_max``)."""
        if not log.isEnabledFor(level):
            return
        budget = self._log_budget
        config = self.router.config
        if budget is None:
            budget = self._log_budget = LogBudget(config.log_lines_per_session)
        limit = config.log_value_max
        budget.log(log, level, "%s session %s: " + msg, self.peer, self.id,
                   *[clip(v, limit) for v in values])

    def refused(self, request_type: int, error: str, message: object) -> None:
        """A request of this session is answered with ``error``: bad-input errors are
        logged and counted."""
        count = self.router.count_refusal
        if count is not None:
            count(self, request_type, error)
        if error in _BAD_INPUT_ERRORS:
            stats = self.router.stats
            stats["refused_requests"] += 1
            if error in _LIMIT_ERRORS:
                stats["limits_hit"] += 1
            self.log_bad_input("%s refused with %s: %s",
                               m.MESSAGE_NAMES.get(request_type, request_type), error, message)

    # -- backpressure -----------------------------------------------------------

    def pause_input(self) -> None:
        self.sink.pause_input()

    def resume_input(self) -> None:
        if not self._sink_closed:
            self.sink.resume_input()

    # -- output -------------------------------------------------------------

    def send(self, msg: list) -> None:
        """Queue ``msg`` for this session; the router delivers it on flush."""
        self.member.send(msg)

    def send_error(self, request_type: int, request_id: int, error: str,
                   args: list | None = None, kwargs: dict | None = None) -> None:
        self.member.send_error(request_type, request_id, error, args, kwargs)

    def undeliverable(self, msg: list, error: str, reason: str) -> None:
        """The transport could not send ``msg`` to this peer and dropped it.

        ``error`` is ``wamp.error.payload_size_exceeded`` (larger than the peer
        accepts) or ``fastwamp.error.unencodable`` (its serializer cannot represent
        a value).  A call that depended on the message is answered with an ERROR
        instead, so no caller waits forever; a dropped EVENT is counted; any other
        message the peer waits for (WELCOME, a reply to REGISTER, SUBSCRIBE...) aborts
        the session, since the peer could not go on without it.
        """
        code: int = msg[0] if msg else 0
        stats = self.router.stats
        stats["undeliverable_messages"] += 1
        self.log_bad_input("could not send %s: %s", m.MESSAGE_NAMES.get(code, code), reason)
        realm = self.realm
        if code == m.EVENT:
            stats["undeliverable_events"] += 1
        elif realm is None:
            return
        elif code == m.INVOCATION:
            realm.dealer.invocation_undeliverable(self.member, msg[1], error, reason)
        elif code == m.RESULT or (code == m.ERROR and msg[1] == m.CALL):
            if code == m.ERROR and msg[4] in (uris.PAYLOAD_SIZE_EXCEEDED, uris.UNENCODABLE):
                return  # the replacement itself cannot be sent: nothing smaller to say
            realm.dealer.result_undeliverable(self.member,
                                              msg[1] if code == m.RESULT else msg[2],
                                              error, reason)
        elif code != m.INTERRUPT and code != m.ABORT and code != m.GOODBYE:
            # WELCOME, or the reply to a request: without it the peer would wait forever.
            self.abort(error, f"the router could not send a {m.MESSAGE_NAMES.get(code, code)} "
                       f"message to this client: {reason}")

    def request_close(self) -> None:
        """Close the connection once the output queued so far is delivered."""
        if not self.close_requested:
            self.close_requested = True
            self.member.sink = None
            if not self.member.outbox:
                self.router.queue_delivery(self.member)

    def delivery_failed(self) -> None:
        """Handing output to the sink raised (a bug): drop the output, leave, close."""
        self.member.outbox = []
        self.member.sink = None
        if self.state is not CLOSED:
            self._leave(abnormal=True, why="delivering output failed")
            self._mark_closed()
        if not self._sink_closed:
            self._sink_closed = True
            try:
                self.sink.close()
            except Exception:
                log.exception("%s session %s: closing the connection failed", self.peer, self.id)

    def deliver(self) -> None:
        """Hand queued output to the sink, and close it once asked to (the router's flush
        calls this through :meth:`Member.deliver` once the member has no sink of its own)."""
        member = self.member
        out = member.outbox
        if out:
            member.outbox = []
            if not self._sink_closed:
                self.sink.send_messages(out)
        if self.close_requested and not self._sink_closed:
            self._sink_closed = True
            self.sink.close()

    # -- input --------------------------------------------------------------

    def receive(self, msg: Any) -> None:
        """Process one decoded message from the client.  Never raises."""
        state = self.state
        if state is CLOSED:
            return
        try:
            if message_problem(msg) is None:  # the compiled check, without a frame around it
                code = msg[0]
            else:
                code = check_message(msg)  # raises ProtocolViolation, saying what is wrong
            if state is ESTABLISHED:
                if code not in _SESSION_CODES:  # one test on the way of every routed message
                    self.realm.dispatch(self.member, code, msg)  # type: ignore[union-attr]
                elif code == m.GOODBYE:
                    self._on_goodbye(msg)
                elif code == m.ABORT:
                    self._on_abort(msg)
                else:
                    raise ProtocolViolation(
                        f"{m.MESSAGE_NAMES[code]} received on an established session")
            elif state is HANDSHAKE:
                if code == m.HELLO:
                    self._on_hello(msg)
                elif code == m.ABORT:
                    self._on_abort(msg)
                elif code == m.AUTHENTICATE:
                    raise ProtocolViolation("AUTHENTICATE received without a CHALLENGE")
                else:
                    raise ProtocolViolation(
                        f"{m.MESSAGE_NAMES[code]} received before the session was established"
                    )
            elif state is CHALLENGING:
                if code == m.AUTHENTICATE:
                    self._on_authenticate(msg)
                elif code == m.ABORT or code == m.GOODBYE:
                    self._on_abort(msg)
                else:
                    raise ProtocolViolation(
                        f"{m.MESSAGE_NAMES[code]} received while authenticating "
                        "(only AUTHENTICATE may answer a CHALLENGE)"
                    )
            else:  # CLOSING: only the GOODBYE reply matters
                if code == m.GOODBYE or code == m.ABORT:
                    self._finish()
        except ProtocolViolation as exc:
            self.protocol_violation(str(exc))
        except Exception:  # a bug must not take the router down
            log.exception("session %s: internal error while handling %r", self.id, msg[:1])
            self.abort("wamp.error.internal_error", "internal router error")

    def receive_invalid(self, reason: str) -> None:
        """The transport got a frame that could not be decoded."""
        if self.state is not CLOSED:
            self.protocol_violation(reason)

    def detach(self) -> None:
        """The transport is gone: leave the realm and forget the session."""
        if self.state is CLOSED:
            return
        if self.state is ESTABLISHED and log.isEnabledFor(logging.INFO):
            _LOST_LOG.log(log, logging.INFO, "%s session %s: connection lost without GOODBYE "
                          "(%d calls, %d invocations in flight)", self.peer, self.id,
                          len(self.member.calls), len(self.member.invocations))
        self._sink_closed = True
        self.member.sink = None
        self._leave(abnormal=True, why="connection lost")
        self._mark_closed()

    # -- handlers -------------------------------------------------------------

    def _on_hello(self, msg: list) -> None:
        realm_name, details = msg[1], msg[2]
        roles = details.get("roles")
        if type(roles) is not dict or not roles:
            raise ProtocolViolation("HELLO.Details.roles must be a non-empty dict")
        features = 0
        for role, info in roles.items():
            role_features = _ROLE_FEATURES.get(role)
            if role_features is None:
                raise ProtocolViolation(f"HELLO.Details.roles has unknown role {role!r}")
            if role_features and type(info) is dict:
                announced = info.get("features")
                if type(announced) is dict and announced:
                    for feature, bit in role_features:
                        if announced.get(feature) is True:
                            features |= bit
        realm = self.router.realms.get(realm_name)
        if realm is None:
            self.log_bad_input("HELLO for unknown realm %s", realm_name)
            self.abort(uris.NO_SUCH_REALM, f"no realm named {clip(realm_name)!r}")
            return
        if len(realm.sessions) >= realm.config.max_sessions:
            self.router.stats["limits_hit"] += 1
            self.log_bad_input("HELLO refused: realm %s is full", realm_name,
                               level=logging.WARNING)
            self.abort(uris.LIMIT_EXCEEDED, f"realm {realm_name!r} has reached its limit of "
                       f"{realm.config.max_sessions} sessions")
            return
        authmethods = details.get("authmethods")
        if authmethods is None:
            authmethods = _ANONYMOUS_ONLY
        elif type(authmethods) is not list:
            raise ProtocolViolation("HELLO.Details.authmethods must be a list")
        authid = details.get("authid")
        if authid is not None and type(authid) is not str:
            raise ProtocolViolation("HELLO.Details.authid must be a string")
        authrole = details.get("authrole")
        if authrole is not None and type(authrole) is not str:
            raise ProtocolViolation("HELLO.Details.authrole must be a string")
        authextra = details.get("authextra")
        if authextra is None:
            authextra = {}
        elif type(authextra) is not dict:
            raise ProtocolViolation("HELLO.Details.authextra must be a dict")
        router = self.router
        if (authmethods is not _ANONYMOUS_ONLY
                and any(method != "anonymous" for method in authmethods)
                and router.failed_authentications.blocked(client_address(self.peer),
                                                          router.clock.time())):
            router.stats["limits_hit"] += 1
            _AUTH_LOG.log(log, logging.WARNING,
                          "%s: authentication refused on realm %s: too many failed "
                          "attempts from this address (max_auth_failures_per_address)",
                          self.peer, realm.name)
            self.abort(uris.AUTHENTICATION_FAILED,
                       "too many failed authentication attempts; try again later")
            return
        self.member.id = router.new_session_id()
        self._handshake = _Handshake(realm, features, authid or "", details.get("agent"))
        authenticator = realm.authenticator
        outcome: Outcome | None = authenticator.anonymous_only(authmethods,
                                                              router.new_anonymous_authid)
        if outcome is None:
            request = HelloRequest(realm.name, authid, authrole, authextra, self.transport_info,
                                   self.member.id)
            outcome = authenticator.hello(authmethods, request, router.new_anonymous_authid)
        self._apply_auth(outcome)

    def _on_authenticate(self, msg: list) -> None:
        handshake = self._handshake
        assert handshake is not None
        pending = handshake.pending
        if pending is None:
            raise ProtocolViolation("AUTHENTICATE received while the previous one is checked")
        handshake.pending = None
        self._apply_auth(pending.authenticate(msg[1], msg[2]))

    def _apply_auth(self, outcome: Outcome) -> None:
        """Send what authentication decided: WELCOME, CHALLENGE or ABORT (or wait)."""
        if type(outcome) is Identity:
            self._welcome(outcome)
        elif type(outcome) is Challenge:
            assert self._handshake is not None
            self._handshake.pending = outcome.pending
            self.state = CHALLENGING
            self.send([m.CHALLENGE, outcome.method, outcome.extra])
        elif type(outcome) is Deferred:
            assert self._handshake is not None
            self.state = CHALLENGING  # with no pending step: only ABORT/GOODBYE accepted
            token = self._handshake.waiting = object()
            outcome.start(lambda result: self._resume_auth(token, result))
        else:
            assert type(outcome) is Failure
            self._auth_failed(outcome)

    def _resume_auth(self, token: object, outcome: Outcome) -> None:
        """A deferred decision arrived (ignored once the session is gone)."""
        handshake = self._handshake
        if handshake is None or handshake.waiting is not token or self.state is not CHALLENGING:
            return
        handshake.waiting = None
        try:
            self._apply_auth(outcome)
        except Exception:  # a bug must not reach the code that answered
            log.exception("session %s: internal error while authenticating", self.id)
            self.abort("wamp.error.internal_error", "internal router error")

    def _auth_failed(self, failure: Failure) -> None:
        self.router.stats["authentication_failures"] += 1
        self.router.failed_authentications.failed(client_address(self.peer),
                                                  self.router.clock.time())
        handshake = self._handshake
        _AUTH_LOG.log(log, logging.WARNING,
                      "%s: authentication refused on realm %s (authid %s, %s): %s",
                      self.peer, handshake.realm.name if handshake is not None else "?",
                      clip(handshake.authid if handshake is not None and handshake.authid
                           else "-", self.router.config.log_value_max),
                      failure.method or "no method", clip(failure.detail or failure.message))
        self.abort(failure.reason, failure.message)

    def _welcome(self, identity: Identity) -> None:
        handshake = self._handshake
        assert handshake is not None
        realm = handshake.realm
        self._handshake = None
        if len(realm.sessions) >= realm.config.max_sessions:  # filled up meanwhile
            self.router.stats["limits_hit"] += 1
            self.log_bad_input("authenticated, but realm %s is full", realm.name,
                               level=logging.WARNING)
            self.abort(uris.LIMIT_EXCEEDED, f"realm {realm.name!r} has reached its limit of "
                       f"{realm.config.max_sessions} sessions")
            return
        member = self.member
        if member.id in self.router.sessions:  # taken while this one authenticated
            member.id = self.router.new_session_id()
        self.authmethod = identity.authmethod
        self.authprovider = identity.authprovider
        self.authextra = identity.authextra or NO_AUTHEXTRA
        member.authid = identity.authid
        member.authrole = identity.authrole
        member.features = handshake.features
        self.state = ESTABLISHED
        realm.join(self)
        self.send(
            [
                m.WELCOME,
                self.id,
                {
                    "roles": realm.welcome_roles,
                    "realm": realm.name,
                    "authid": self.authid,
                    "authrole": self.authrole,
                    "authmethod": self.authmethod,
                    "authprovider": self.authprovider,
                    "authextra": self.authextra,
                    "agent": self.router.agent,
                },
            ]
        )
        set_limits = getattr(self.sink, "set_output_limits", None)
        if set_limits is not None:
            rc = realm.config
            # No callback: the transport reports to output_overflow (no bound method kept).
            set_limits(rc.output_queue_bytes, rc.output_queue_messages, rc.overflow_policy,
                       None)
        realm.joined(self)
        if log.isEnabledFor(logging.INFO):
            self._log_membership("joined", realm, handshake.agent)

    def output_overflow(self, dropped_messages: int, dropped_bytes: int,
                            disconnected: bool) -> None:
        """The transport's output queue for this session overflowed (see RealmConfig)."""
        stats = self.router.stats
        stats["overflow_dropped_messages"] += dropped_messages
        stats["overflow_dropped_bytes"] += dropped_bytes
        if disconnected:
            stats["overflow_disconnects"] += 1
        realm = self.realm
        if realm is not None:
            realm.meta.session_overflow(self, dropped_messages, dropped_bytes, disconnected)

    def _on_goodbye(self, msg: list) -> None:
        self.send([m.GOODBYE, {}, uris.CLOSE_GOODBYE_AND_OUT])
        self._leave(abnormal=False, why="goodbye")
        self._mark_closed()
        self.request_close()

    def _on_abort(self, msg: list) -> None:
        self.log_bad_input("client aborted: %s %s", msg[2], msg[1].get("message", ""))
        self._leave(abnormal=True, why="client aborted")
        self._mark_closed()
        self.request_close()

    # -- closing ---------------------------------------------------------------

    def _mark_closed(self) -> None:
        self.state = CLOSED
        self._handshake = None
        self.member.closed = True  # nothing more is queued for it

    def protocol_violation(self, message: str) -> None:
        """Abort the session with ``wamp.error.protocol_violation``."""
        self.router.stats["protocol_violations"] += 1
        self.log_bad_input("protocol violation: %s", message, level=logging.WARNING)
        self.abort(uris.PROTOCOL_VIOLATION, message)

    def abort(self, reason: str, message: str) -> None:
        """Send ABORT and close the connection."""
        if self.state is CLOSED:
            return
        self.send([m.ABORT, {"message": message}, reason])
        self._leave(abnormal=True, why=f"aborted: {reason}")
        self._mark_closed()
        self.request_close()

    def goodbye(self, reason: str, message: str | None = None) -> None:
        """Start a router-initiated close (kill, shutdown): GOODBYE, then wait for the reply."""
        if self.state is HANDSHAKE or self.state is CHALLENGING:
            self.abort(reason, message or "router closing")
            return
        if self.state is not ESTABLISHED:
            return
        details = {"message": message} if message else {}
        self.send([m.GOODBYE, details, reason])
        self._leave(abnormal=True, why=f"closed by the router: {reason}")
        self.state = CLOSING
        scheduler = self.router.scheduler
        if scheduler is not None:  # a peer that never answers is closed all the same
            scheduler.call_later(GOODBYE_REPLY_TIMEOUT, self._goodbye_timed_out)

    def _goodbye_timed_out(self) -> None:
        if self.state is CLOSING:
            log.info("%s session %s: no GOODBYE reply; closing", self.peer, self.id)
            self._mark_closed()
            self.request_close()

    def _finish(self) -> None:
        self._leave(abnormal=False, why="goodbye")
        self._mark_closed()
        self.request_close()

    def _leave(self, abnormal: bool, why: str) -> None:
        realm = self.realm
        if realm is not None:
            self.realm = None
            realm.leave(self, abnormal)
            if log.isEnabledFor(logging.INFO):
                self._log_membership("left", realm, why=why)

    def _log_membership(self, event: str, realm: Realm, agent: object = None,
                        why: str = "") -> None:
        """One INFO line per session joining or leaving a realm (fields also in ``extra``,
        for the JSON log format); client-supplied values are clipped."""
        if not log.isEnabledFor(logging.INFO):
            return
        limit = self.router.config.log_value_max
        fields: dict[str, Any] = {
            "event": f"session_{event}", "realm": realm.name, "session": self.id,
            "authid": clip(self.authid, limit), "authrole": clip(self.authrole, limit),
            "transport": str(self.transport_info.get("type", "?")), "peer": self.peer,
        }
        if event == "joined":
            fields["authmethod"] = self.authmethod
            fields["agent"] = clip(agent, limit) if agent is not None else ""
            log.info("%s session %s joined realm %s (authid %s, authrole %s, authmethod %s, "
                     "%s, agent %s)", self.peer, self.id, realm.name, fields["authid"],
                     fields["authrole"], self.authmethod, fields["transport"],
                     fields["agent"] or "-", extra=fields)
        else:
            fields["reason"] = why
            log.info("%s session %s left realm %s (%s; authid %s, authrole %s, %s)", self.peer,
                     self.id, realm.name, why, fields["authid"], fields["authrole"],
                     fields["transport"], extra=fields)

    @property
    def peer(self) -> str:
        return str(self.transport_info.get("peer", "?"))

    def __repr__(self) -> str:
        return f"<RouterSession {self.id} {self.authid!r} {self.state.name}>"
