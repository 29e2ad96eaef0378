"""A realm: a routing namespace with its own sessions, dealer and broker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..config import RealmConfig
from ..wamp import messages as m
from .broker import Broker
from .dealer import Dealer
from .meta import MetaApi

if TYPE_CHECKING:
    from .router import Router
    from .session import RouterSession

log = logging.getLogger("fastwamp.realm")


class Realm:
    """Sessions joined to one realm, and the dealer and broker that route between them."""

    def __init__(self, router: Router, config: RealmConfig) -> None:
        self.router = router
        self.config = config
        self.name = config.name
        self.sessions: dict[int, RouterSession] = {}
        #: The meta API publisher, or None when meta events are off.
        self.meta: Any = None
        self.dealer = Dealer(self)
        self.broker = Broker(self)
        self.welcome_roles: dict[str, Any] = {
            "broker": {"features": self.broker.features()},
            "dealer": {"features": self.dealer.features()},
        }
        dealer, broker = self.dealer, self.broker
        self._handlers = {
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
        self._strict_request_ids = router.config.strict_request_ids
        self.meta = MetaApi(self)
        self.meta.start()

    def dispatch(self, session: RouterSession, code: int, msg: list) -> None:
        """Route one message of an established session (already checked by check_message)."""
        if self._strict_request_ids and code != m.YIELD and code != m.ERROR:
            self._check_request_id(session, code, msg)
        self._handlers[code](session, msg)

    def _check_request_id(self, session: RouterSession, code: int, msg: list) -> None:
        request_id = msg[1]
        expected = session.last_request_id + 1
        if request_id == expected:
            session.last_request_id = request_id
            return
        if code == m.CALL and request_id in session.calls:
            return  # progressive call continuation (checked by the dealer)
        if code == m.CANCEL:
            return  # CANCEL carries the CALL's request id
        raise m.ProtocolViolation(
            f"request id {request_id} of {m.MESSAGE_NAMES[code]} is not sequential "
            f"(expected {expected})"
        )

    def _on_error(self, session: RouterSession, msg: list) -> None:
        request_type = msg[1]
        if request_type == m.INVOCATION or request_type == m.INTERRUPT:
            self.dealer.invocation_error(session, msg)
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
        self.meta.session_joined(session)

    def leave(self, session: RouterSession, abnormal: bool) -> None:
        """Remove every trace of ``session``: registrations, subscriptions, calls."""
        self.sessions.pop(session.id, None)
        self.router.sessions.pop(session.id, None)
        self.dealer.detach(session)
        self.broker.detach(session)
        if abnormal:
            self.meta.publish_testaments(session)
        self.meta.session_left(session)
        log.debug("realm %s: session %s left", self.name, session.id)
