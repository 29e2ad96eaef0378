"""A realm: a routing namespace with its own sessions, dealer, broker and observers.

Every message of an established session enters the realm through one door,
:meth:`Realm.dispatch`: (authorize) → handler → (count).  Authorization and
metrics are one hook each there (``authorize``, ``count``), so they need no
change to the dealer or broker.  The dealer and broker are built from plain
values (their options, the router's clock, the realm's events); the realm
composes the observers of those events: the meta API first, event history next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..auth import RealmAuthenticator
from ..config import RealmConfig
from ..wamp import messages as m
from .authorization import Authorization
from .broker import Broker
from .caller import procedure_caller
from .dealer import Dealer
from .events import RealmEvents
from .history import EventHistory
from .meta import MetaApi
from .options import BrokerOptions, DealerOptions

if TYPE_CHECKING:
    from .member import Member, MessageCounts
    from .router import Router
    from .session import RouterSession

log = logging.getLogger("fastwamp.realm")

#: The messages the ``authorize`` hook is asked about: the requests that act on a URI.
#: (YIELD, ERROR, CANCEL, UNREGISTER and UNSUBSCRIBE only continue or undo what an
#: authorized request started: asking about them would cost every call a second hook.)
AUTHORIZED_REQUESTS = frozenset((m.CALL, m.PUBLISH, m.SUBSCRIBE, m.REGISTER))

#: ``authorize(member, code, msg)``: True to let the message through; False when it was
#: refused (the hook answered the client).
Authorizer = Callable[["Member", int, list], bool]
#: ``count(member, code, msg)``: called after the handler.
Counter = Callable[["Member", int, list], None]


class Realm:
    """Sessions joined to one realm, and the dealer and broker that route between them."""

    def __init__(self, router: Router, config: RealmConfig) -> None:
        self.router = router
        self.config = config
        self.name = config.name
        self.sessions: dict[int, RouterSession] = {}
        #: Decides HELLOs (methods, users); rebuilt by reconfigure.
        self.authenticator = RealmAuthenticator(config, procedure_caller(router))
        self.events = RealmEvents()
        router_config = router.config
        self.dealer = Dealer(DealerOptions.from_config(config, router_config), router.clock,
                             self.events)
        self.broker = Broker(BrokerOptions.from_config(config, router_config), router.clock,
                             self.events)
        self.history: EventHistory | None = None
        if config.event_history:
            self.history = EventHistory(
                [{"uri": h.uri, "match": h.match, "limit": h.limit, "max_age": h.max_age}
                 for h in config.event_history],
                config.history_store,
                config.history_bytes_max,
            )
        self.welcome_roles: dict[str, Any] = {
            "broker": {"features": self.broker.features()},
            "dealer": {"features": self.dealer.features()},
        }
        dealer, broker = self.dealer, self.broker
        self._handlers: dict[int, Callable[[Member, list], None]] = {
            m.CALL: dealer.call,
            m.YIELD: dealer.yield_,
            m.REGISTER: dealer.register,
            m.UNREGISTER: dealer.unregister,
            m.CANCEL: dealer.cancel,
            m.ERROR: self._on_error,
            m.PUBLISH: broker.publish,
            m.SUBSCRIBE: broker.subscribe,
            m.UNSUBSCRIBE: broker.unsubscribe,
        }
        self._strict_request_ids = router_config.strict_request_ids
        #: Roles, permissions, meta API protection, rate limits (fastwamp.router.authorization).
        self.authorization = self._authorization(config)
        #: The pipeline's hooks (None: nothing to do).
        self.authorize: Authorizer | None = self.authorization.hook()
        self.count: Counter | None = None
        #: Messages dispatched, by type code, when metrics count them (a MessageCounts;
        #: rather than a ``count`` hook: a Python call per message costs 2 % of a routed
        #: call, bench/README.md "Metrics").  None: not counted.
        self.received_counts: MessageCounts | None = None
        # Observers of realm events, in order: the meta API, then event history.
        self.meta = MetaApi(self)
        self.events.add(self.meta)
        if self.history is not None:
            self.events.add(self.history)
        self.meta.start()

    def dispatch(self, member: Member, code: int, msg: list) -> None:
        """Route one message of an established session (already checked by check_message):
        the single path every such message takes."""
        if self._strict_request_ids and code != m.YIELD and code != m.ERROR:
            self._check_request_id(member, code, msg)
        authorize = self.authorize
        if authorize is not None and code in AUTHORIZED_REQUESTS and not authorize(
                member, code, msg):
            return
        self._handlers[code](member, msg)
        received = self.received_counts
        if received is not None:
            received.add(code)
        count = self.count
        if count is not None:
            count(member, code, msg)

    def _check_request_id(self, member: Member, code: int, msg: list) -> None:
        session = member.owner
        request_id = msg[1]
        expected = session.last_request_id + 1
        if request_id == expected:
            session.last_request_id = request_id
            return
        if code == m.CALL and request_id in member.calls:
            return  # progressive call continuation (checked by the dealer)
        if code == m.CANCEL:
            return  # CANCEL carries the CALL's request id
        raise m.ProtocolViolation(
            f"request id {request_id} of {m.MESSAGE_NAMES[code]} is not sequential "
            f"(expected {expected})"
        )

    def _on_error(self, member: Member, msg: list) -> None:
        request_type = msg[1]
        if request_type == m.INVOCATION or request_type == m.INTERRUPT:
            self.dealer.invocation_error(member, msg)
        else:
            raise m.ProtocolViolation(f"ERROR for request type {request_type} is not allowed")

    # -- membership ------------------------------------------------------------

    def join(self, session: RouterSession) -> None:
        session.realm = self
        self.sessions[session.id] = session
        self.router.sessions[session.id] = session
        self.router.stats["sessions_joined"] += 1

    def joined(self, session: RouterSession) -> None:
        """Called after WELCOME was queued (meta events go after it)."""
        log.debug("realm %s: session %s joined", self.name, session.id)
        self.events.session_joined(session)

    def leave(self, session: RouterSession, abnormal: bool) -> None:
        """Remove every trace of ``session``: registrations, subscriptions, calls."""
        self.sessions.pop(session.id, None)
        self.router.sessions.pop(session.id, None)
        member = session.member
        # Routing sends it nothing more (its GOODBYE or ABORT is queued already), also
        # while the broker removes a large set of subscriptions over several turns.
        member.closed = True
        self.dealer.detach(member)
        self.broker.detach(member)
        if abnormal:
            self.meta.publish_testaments(member)
        self.events.session_left(session)
        log.debug("realm %s: session %s left", self.name, session.id)

    def reconfigure(self, config: RealmConfig) -> None:
        """Take the settings of a reloaded configuration (SIGHUP); sessions stay.

        Authentication (users) and authorization (roles, permissions) follow the new
        configuration from the next HELLO and the next message of each session.
        """
        self.config = config
        self.authenticator = RealmAuthenticator(config, procedure_caller(self.router))
        self.authorization = self._authorization(config)
        self.authorize = self.authorization.hook()
        regs, subs = self.authorization.revoke(self.dealer, self.broker)
        if regs or subs:
            log.info("realm %s: reload revoked %d registrations and %d subscriptions that "
                     "the new roles do not allow", self.name, regs, subs)

    def _authorization(self, config: RealmConfig) -> Authorization:
        return Authorization(config, self.router.stats, self.router.clock, lambda: self.sessions,
                             self)

    def handle(self, member: Member, code: int, msg: list) -> None:
        """Run the handler of a message already authorized (a request the dynamic
        authorizer held until its answer): the rest of :meth:`dispatch`."""
        self._handlers[code](member, msg)
        count = self.count
        if count is not None:
            count(member, code, msg)

    def close(self) -> None:
        """The router stops: release what the realm holds outside memory."""
        if self.history is not None:
            self.history.close()
