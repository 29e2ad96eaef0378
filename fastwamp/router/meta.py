"""The WAMP meta API of one realm: meta events, meta procedures, testaments.

The router takes part in each realm as a session of its own (the *service
session*): meta procedures are ordinary registrations of that session, served
through the same dealer as every other call, and meta events are ordinary
publications through the same broker, so they obey the same rules.  When
nobody subscribes to a meta topic, publishing it costs one trie lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.uri import MATCH_EXACT, MATCH_POLICIES, validate_uri
from ..logsafe import clip
from ..wamp import messages as m
from ..wamp import uris
from ..wamp.payload import expand
from .authorization import ALLOW_SUBSCRIBE
from .history import pattern_matches
from .ids import publication_id
from .member import CALLEE_CALLER_IDENTIFICATION
from .options import is_reserved, make_publish_filter, match_policy, uri_over_limits
from .session import ESTABLISHED, RouterSession
from .sizes import estimate_size

if TYPE_CHECKING:
    from .broker import Subscription
    from .dealer import Registration
    from .member import Member
    from .realm import Realm

log = logging.getLogger("fastwamp.meta")

TESTAMENT_SCOPES = ("detached", "destroyed")
HISTORY_UNAVAILABLE = "wamp.error.history_unavailable"
_MATCH_NAMES = {code: name for name, code in MATCH_POLICIES.items()}
#: A meta procedure failed for a reason that is not the caller's (logged with a traceback).
INTERNAL_ERROR = "fastwamp.error.internal_error"


#: Meta errors that refuse a caller's bad or forbidden request (logged and counted).
_REFUSALS = frozenset({uris.INVALID_ARGUMENT, uris.INVALID_URI, uris.NOT_AUTHORIZED,
                       uris.LIMIT_EXCEEDED})


class MetaError(Exception):
    """A meta procedure failed with a WAMP error URI."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class _NullSink:
    def send_messages(self, msgs: list[list]) -> None:  # pragma: no cover - never used
        pass

    def close(self) -> None:  # pragma: no cover - never used
        pass

    def pause_input(self) -> None:  # the router's own publications are never paused
        pass

    def resume_input(self) -> None:
        pass


class ServiceSession(RouterSession):
    """The router's own session in a realm: it serves the meta procedures.

    INVOCATIONs addressed to it are answered when the router flushes, in the
    same pass, so meta calls cost no I/O.
    """

    is_service = True

    def __init__(self, realm: Realm, meta: MetaApi) -> None:
        super().__init__(realm.router, _NullSink(), {"type": "internal", "peer": "router"})
        self.meta = meta
        member = self.member
        member.id = realm.router.new_session_id()
        member.authid = "fastwamp"
        member.authrole = "trusted"
        member.features = CALLEE_CALLER_IDENTIFICATION
        self.authmethod = "internal"
        self.authprovider = "fastwamp"
        self.state = ESTABLISHED
        self.realm = realm

    def deliver(self) -> None:
        member = self.member
        out, member.outbox = member.outbox, []
        for msg in out:
            if msg[0] == m.INVOCATION:
                self.meta.invoke(self, expand(msg))


class MetaApi:
    """Meta events and procedures (wamp.session.*, wamp.registration.*, wamp.subscription.*)."""

    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self.service = ServiceSession(realm, self)
        #: Session details of the realm's sessions on other cluster nodes, by id (kept by
        #: the cluster bridge; empty on a single router).
        self.remote_sessions: dict[int, dict[str, Any]] = {}
        #: Subscribers on other cluster nodes: (uri, match name) -> session id ->
        #: (that node's subscription id, its creation time); and those subscription
        #: ids -> (uri, match name).  Kept by the cluster bridge.
        self.remote_subscribers: dict[tuple[str, str], dict[int, tuple[int, str]]] = {}
        self.remote_subscription_ids: dict[int, tuple[str, str]] = {}
        #: Registration ids other nodes gave their callees -> (uri, match name).
        self.remote_registration_ids: dict[int, tuple[str, str]] = {}
        #: Set by the cluster bridge: where meta events of this node's sessions also go
        #: (the other nodes' subscribers), and the owner type of its proxies of remote
        #: sessions (whose registrations raise no meta events here: their node raises them).
        self.forward_event: Callable[[str, list], None] | None = None
        self.remote_owner: type | None = None
        #: Set by the cluster bridge: a testament published here also goes to the other
        #: nodes' subscribers (publisher, topic, publication id, payload, PUBLISH options).
        self.forward_publication: Callable[[Member, str, int, list, dict], None] | None = None
        self._procedures: dict[int, Callable[..., Any]] = {}
        #: registration id -> procedure URI (who may call it: realm.authorization)
        self._uris: dict[int, str] = {}
        self._handlers: dict[str, Callable[..., Any]] = {
            "wamp.session.count": self.session_count,
            "wamp.session.list": self.session_list,
            "wamp.session.get": self.session_get,
            "wamp.session.kill": self.session_kill,
            "wamp.session.kill_by_authid": self.session_kill_by_authid,
            "wamp.session.kill_by_authrole": self.session_kill_by_authrole,
            "wamp.session.kill_all": self.session_kill_all,
            "wamp.session.add_testament": self.add_testament,
            "wamp.session.flush_testaments": self.flush_testaments,
            "wamp.registration.list": self.registration_list,
            "wamp.registration.lookup": self.registration_lookup,
            "wamp.registration.match": self.registration_match,
            "wamp.registration.get": self.registration_get,
            "wamp.registration.list_callees": self.registration_list_callees,
            "wamp.registration.count_callees": self.registration_count_callees,
            "wamp.subscription.list": self.subscription_list,
            "wamp.subscription.lookup": self.subscription_lookup,
            "wamp.subscription.match": self.subscription_match,
            "wamp.subscription.get": self.subscription_get,
            "wamp.subscription.list_subscribers": self.subscription_list_subscribers,
            "wamp.subscription.count_subscribers": self.subscription_count_subscribers,
            "wamp.subscription.get_events": self.subscription_get_events,
            "fastwamp.router.get_stats": self.router_stats,
            "fastwamp.authorizer.flush_cache": self.authorizer_flush_cache,
        }

    def start(self) -> None:
        """Register every meta procedure through the realm's dealer."""
        dealer = self.realm.dealer
        service = self.service.member
        for request, uri in enumerate(self._handlers, 1):
            dealer.register(service, [m.REGISTER, request, {"disclose_caller": True}, uri])
            reply = service.outbox.pop()
            assert reply[0] == m.REGISTERED, reply
            self._procedures[reply[2]] = self._handlers[uri]
            self._uris[reply[2]] = uri
        service.outbox.clear()

    # -- serving calls -------------------------------------------------------------

    def invoke(self, service: ServiceSession, msg: list) -> None:
        invocation_id, reg_id, details = msg[1], msg[2], msg[3]
        args = msg[4] if len(msg) > 4 else []
        kwargs = msg[5] if len(msg) > 5 else {}
        handler = self._procedures.get(reg_id)
        caller = self.realm.sessions.get(details.get("caller", 0))
        try:
            if handler is None or caller is None:
                raise MetaError(uris.CANCELED, "the caller left")
            if not self.realm.authorization.may_call_meta(caller.authrole, self._uris[reg_id]):
                raise MetaError(uris.NOT_AUTHORIZED, f"the role {caller.authrole!r} may not "
                                f"call {self._uris[reg_id]} (a role with trusted = true, or "
                                "in the realm's admin_authroles, may)")
            if type(args) is not list or type(kwargs) is not dict:
                raise MetaError(uris.INVALID_ARGUMENT, "arguments must be a list and a dict")
            result = handler(caller, *args, **kwargs)
        except MetaError as exc:
            if exc.error in _REFUSALS and caller is not None:
                stats = self.realm.router.stats
                stats["refused_requests"] += 1
                if exc.error == uris.LIMIT_EXCEEDED:
                    stats["limits_hit"] += 1
                caller.log_bad_input("meta procedure call refused with %s: %s", exc.error,
                                     str(exc))
            service.receive([m.ERROR, m.INVOCATION, invocation_id, {}, exc.error, [str(exc)]])
            return
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            # Arguments of the wrong number or type: the caller's mistake, not ours.
            service.receive([m.ERROR, m.INVOCATION, invocation_id, {}, uris.INVALID_ARGUMENT,
                             [clip(str(exc))]])
            return
        except Exception:
            log.exception("meta procedure for registration %s failed", reg_id)
            service.receive([m.ERROR, m.INVOCATION, invocation_id, {}, INTERNAL_ERROR,
                             ["the meta procedure failed; see the router's log"]])
            return
        reply: list = [m.YIELD, invocation_id, {}]
        if result is not None:
            reply.append(result)
        service.receive(reply)

    # -- meta events ---------------------------------------------------------------------

    def _publish(self, topic: str, args: list) -> None:
        """A meta event for this node's subscribers and, in a cluster, the other nodes'."""
        self.publish_local(topic, args)
        if self.forward_event is not None:
            self.forward_event(topic, args)

    def publish_local(self, topic: str, args: list) -> None:
        """A meta event for this node's subscribers only."""
        broker = self.realm.broker
        if broker.subscriptions:
            broker.deliver(topic, 0, [args], None)  # 0: an id is drawn if anyone receives it

    def _is_proxy(self, member: Member) -> bool:
        """A cluster proxy of another node's session (its node raises its meta events)."""
        return self.remote_owner is not None and type(member.owner) is self.remote_owner

    def session_joined(self, session: RouterSession) -> None:
        broker = self.realm.broker
        # The details are built only for a subscriber here or on another node (a
        # session joining is frequent).
        if self.forward_event is not None or (
                broker.subscriptions and broker.trie.match_all("wamp.session.on_join")):
            self._publish("wamp.session.on_join", [self._session_details(session)])

    def session_left(self, session: RouterSession) -> None:
        # Nothing to build without a subscriber here or another node (as on_join).
        if self.forward_event is not None or self.realm.broker.subscriptions:
            self._publish("wamp.session.on_leave", [session.id, session.authid, session.authrole])

    # Realm events (see fastwamp.router.events): the router's own registrations and
    # subscriptions to meta topics ("wamp.*") raise no meta events.

    def registration_created(self, member: Member, reg: Registration) -> None:
        if not member.is_service and not self._is_proxy(member):
            self._publish("wamp.registration.on_create", [member.id, reg.details()])

    def registration_added(self, member: Member, reg: Registration) -> None:
        if not member.is_service and not self._is_proxy(member):
            self._publish("wamp.registration.on_register", [member.id, reg.id])

    def registration_removed(self, member: Member, reg: Registration, deleted: bool) -> None:
        if member.is_service or self._is_proxy(member):
            return
        self._publish("wamp.registration.on_unregister", [member.id, reg.id])
        if deleted:
            self._publish("wamp.registration.on_delete", [member.id, reg.id])

    # In a cluster, a subscription exists while it has a subscriber on any node: on_create
    # and on_delete are left out while another node has subscribers of it.

    def subscription_created(self, session: Member, sub: Subscription) -> None:
        if not sub.uri.startswith("wamp.") and \
                (sub.uri, sub.match_name) not in self.remote_subscribers:
            self._publish("wamp.subscription.on_create", [session.id, sub.details()])

    def subscription_added(self, session: Member, sub: Subscription) -> None:
        if not sub.uri.startswith("wamp."):
            self._publish("wamp.subscription.on_subscribe", [session.id, sub.id])

    def subscription_removed(self, session: Member, sub: Subscription, deleted: bool) -> None:
        if sub.uri.startswith("wamp."):
            return
        self._publish("wamp.subscription.on_unsubscribe", [session.id, sub.id])
        if deleted and (sub.uri, sub.match_name) not in self.remote_subscribers:
            self._publish("wamp.subscription.on_delete", [session.id, sub.id])

    def session_overflow(self, session: RouterSession, dropped_messages: int,
                         dropped_bytes: int, disconnected: bool) -> None:
        """A slow session's output queue overflowed (fastwamp's own meta event)."""
        self._publish("fastwamp.session.on_overflow", [session.id, {
            "policy": self.realm.config.overflow_policy,
            "dropped_messages": dropped_messages,
            "dropped_bytes": dropped_bytes,
            "disconnected": disconnected,
        }])

    # -- testaments ------------------------------------------------------------------------

    def publish_testaments(self, session: Member) -> None:
        """The session left abnormally: publish its testaments, detached then destroyed."""
        held = session.testaments
        if held is None:
            return
        broker = self.realm.broker
        details = {"publisher": session.id, "publisher_authid": session.authid,
                   "publisher_authrole": session.authrole}
        forward = self.forward_publication
        for scope in TESTAMENT_SCOPES:
            testaments, held[scope] = held[scope], []
            for topic, args, kwargs, receiver_filter, disclose, _size, options in testaments:
                publication = publication_id()
                broker.deliver(topic, publication, [args, kwargs], receiver_filter, details,
                               disclose or self.realm.config.disclosure == "always")
                if forward is not None:
                    forward(session, topic, publication, [args, kwargs], options)
        session.testament_bytes = 0

    @staticmethod
    def _check_scope(scope: Any) -> str:
        if type(scope) is not str or scope not in TESTAMENT_SCOPES:
            raise MetaError(uris.INVALID_ARGUMENT, f"testament scope must be one of "
                            f"{TESTAMENT_SCOPES}, not {clip(scope)}")
        return scope

    def add_testament(self, caller: RouterSession, topic: str, args: list, kwargs: dict,
                      publish_options: dict | None = None, scope: str = "destroyed") -> None:
        """Keep a publication to make if ``caller`` leaves abnormally (within the realm's
        testaments_per_session and testament_bytes_per_session)."""
        scope = self._check_scope(scope)
        config = self.realm.config
        router_config = self.realm.router.config
        if (type(topic) is not str or not validate_uri(topic, MATCH_EXACT, False)
                or uri_over_limits(topic, router_config.max_uri_length,
                                   router_config.max_uri_components)):
            raise MetaError(uris.INVALID_URI, f"invalid testament topic {clip(topic)}")
        if is_reserved(topic):
            raise MetaError(uris.NOT_AUTHORIZED, f"testaments cannot publish to the reserved "
                            f"topic {topic!r}")
        if type(args) is not list or type(kwargs) is not dict:
            raise MetaError(uris.INVALID_ARGUMENT, "testament args must be a list, kwargs a dict")
        if publish_options is None:
            publish_options = {}
        elif type(publish_options) is not dict:
            raise MetaError(uris.INVALID_ARGUMENT, "testament publish_options must be a dict")
        member = caller.member
        held = member.testaments
        if held is None:
            held = member.testaments = {"detached": [], "destroyed": []}
        if len(held["detached"]) + len(held["destroyed"]) >= config.testaments_per_session:
            raise MetaError(uris.LIMIT_EXCEEDED, f"a session may hold at most "
                            f"{config.testaments_per_session} testaments "
                            "(testaments_per_session)")
        room = config.testament_bytes_per_session - member.testament_bytes
        size = estimate_size([topic, args, kwargs, publish_options], room)
        if size > room:
            raise MetaError(uris.LIMIT_EXCEEDED, f"a session's testaments may hold at most "
                            f"{config.testament_bytes_per_session} bytes "
                            "(testament_bytes_per_session)")
        try:
            receiver_filter = make_publish_filter(member, publish_options,
                                                  config.max_list_length)
        except ValueError as exc:
            raise MetaError(uris.INVALID_ARGUMENT, str(exc)) from exc
        disclose = publish_options.get("disclose_me") is True
        held[scope].append((topic, args, kwargs, receiver_filter, disclose, size,
                            publish_options))
        member.testament_bytes += size

    def flush_testaments(self, caller: RouterSession, scope: str = "destroyed") -> None:
        """Forget the testaments of ``scope`` (the spec: no return value)."""
        scope = self._check_scope(scope)
        member = caller.member
        held = member.testaments
        if held is None:
            return
        dropped, held[scope] = held[scope], []
        member.testament_bytes -= sum(t[5] for t in dropped)

    # -- session procedures ------------------------------------------------------------

    @staticmethod
    def _session_details(session: RouterSession) -> dict[str, Any]:
        return {
            "session": session.id,
            "authid": session.authid,
            "authrole": session.authrole,
            "authmethod": session.authmethod,
            "authprovider": session.authprovider,
            "transport": MetaApi._transport_details(session.transport_info),
        }

    @staticmethod
    def _transport_details(info: dict[str, Any]) -> dict[str, Any]:
        """The transport info a meta caller sees: plain values, and the TLS summary
        without its channel binding (bytes, and a secret of the connection)."""
        details = {k: v for k, v in info.items() if type(v) in (str, int, bool)}
        tls = info.get("tls")
        if type(tls) is dict:
            details["tls"] = {k: v for k, v in tls.items() if k != "channel_binding"}
        return details

    def _sessions(self, filter_authroles: list | None) -> list[RouterSession]:
        sessions = self.realm.sessions.values()
        if filter_authroles is None:
            return list(sessions)
        roles = self._string_set(filter_authroles, "filter_authroles")
        return [s for s in sessions if s.authrole in roles]

    def _string_set(self, values: Any, name: str) -> frozenset[str]:
        """A list argument of strings as a set, its length capped by max_list_length."""
        limit = self.realm.config.max_list_length
        if type(values) is not list or len(values) > limit or any(
                type(v) is not str for v in values):
            raise MetaError(uris.INVALID_ARGUMENT, f"{name} must be a list of at most {limit} "
                            "strings (max_list_length)")
        return frozenset(values)

    def _remote_sessions(self, filter_authroles: list | None) -> list[dict[str, Any]]:
        """Details of the realm's sessions on other cluster nodes (none alone)."""
        remote = self.remote_sessions.values()
        if filter_authroles is None or not remote:
            return list(remote)
        roles = self._string_set(filter_authroles, "filter_authroles")
        return [d for d in remote if d.get("authrole") in roles]

    def session_count(self, caller: RouterSession, filter_authroles: list | None = None) -> list:
        return [len(self._sessions(filter_authroles))
                + len(self._remote_sessions(filter_authroles))]

    def session_list(self, caller: RouterSession, filter_authroles: list | None = None) -> list:
        return [[s.id for s in self._sessions(filter_authroles)]
                + [d["session"] for d in self._remote_sessions(filter_authroles)]]

    def session_get(self, caller: RouterSession, session_id: int) -> list:
        session = self.realm.sessions.get(session_id)
        if session is None:
            details = self.remote_sessions.get(session_id) if type(session_id) is int else None
            if details is not None:
                return [details]
            raise MetaError(uris.NO_SUCH_SESSION, f"no session {session_id} on this realm")
        return [self._session_details(session)]

    @staticmethod
    def _close_reason(reason: str | None) -> str:
        if reason is None:
            return uris.CLOSE_KILLED
        if type(reason) is not str or not validate_uri(reason, MATCH_EXACT, False):
            raise MetaError(uris.INVALID_URI, f"invalid close reason {reason!r}")
        return reason

    def _kill(self, sessions: list[RouterSession], reason: str | None,
              message: str | None) -> None:
        close_reason = self._close_reason(reason)
        if message is not None and type(message) is not str:
            raise MetaError(uris.INVALID_ARGUMENT, "message must be a string")
        for session in sessions:
            session.goodbye(close_reason, message)

    def session_kill(self, caller: RouterSession, session_id: int, reason: str | None = None,
                     message: str | None = None) -> None:
        session = self.realm.sessions.get(session_id)
        if session is None or session is caller:
            raise MetaError(uris.NO_SUCH_SESSION, f"no session {session_id} to kill")
        self._kill([session], reason, message)

    def session_kill_by_authid(self, caller: RouterSession, authid: str,
                               reason: str | None = None, message: str | None = None) -> list:
        victims = [s for s in self.realm.sessions.values()
                   if s.authid == authid and s is not caller]
        self._kill(victims, reason, message)
        return [[s.id for s in victims]]

    def session_kill_by_authrole(self, caller: RouterSession, authrole: str,
                                 reason: str | None = None, message: str | None = None) -> list:
        victims = [s for s in self.realm.sessions.values()
                   if s.authrole == authrole and s is not caller]
        self._kill(victims, reason, message)
        return [len(victims)]

    def session_kill_all(self, caller: RouterSession, reason: str | None = None,
                         message: str | None = None) -> list:
        victims = [s for s in self.realm.sessions.values() if s is not caller]
        self._kill(victims, reason, message)
        return [len(victims)]

    # -- registration procedures ------------------------------------------------------------

    @staticmethod
    def _by_match(items: Any, hide: Callable[[Any], bool]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {"exact": [], "prefix": [], "wildcard": []}
        for item in items:
            if not hide(item):
                out[item.match_name].append(item.id)
        return out

    def _is_meta(self, reg: Registration) -> bool:
        """The router's own procedures are not listed by the meta API."""
        return reg.id in self._procedures

    def _registration(self, reg_id: int) -> Registration:
        """The registration ``reg_id`` (this node's id, or the id another node gave it)."""
        dealer = self.realm.dealer
        reg = dealer.registrations.get(reg_id)
        if reg is None and type(reg_id) is int:
            alias = self.remote_registration_ids.get(reg_id)
            if alias is not None:
                reg = dealer.lookup(alias[0], MATCH_POLICIES[alias[1]])
        if reg is None or self._is_meta(reg):
            raise MetaError(uris.NO_SUCH_REGISTRATION, f"no registration {reg_id}")
        return reg

    def _uri_arg(self, uri: Any) -> str:
        """A URI argument: a string within the router's URI limits."""
        config = self.realm.router.config
        if type(uri) is not str:
            raise MetaError(uris.INVALID_ARGUMENT, "the URI must be a string")
        too_long = uri_over_limits(uri, config.max_uri_length, config.max_uri_components)
        if too_long is not None:
            raise MetaError(uris.INVALID_URI, too_long)
        return uri

    @staticmethod
    def _match_option(options: dict | None) -> int:
        if options is None:
            options = {}
        elif type(options) is not dict:
            raise MetaError(uris.INVALID_ARGUMENT, "options must be a dict")
        match, match_name = match_policy(options)
        if match is None:
            raise MetaError(uris.INVALID_ARGUMENT, f"unknown match policy {match_name!r}")
        return match

    def registration_list(self, caller: RouterSession) -> list:
        return [self._by_match(self.realm.dealer.registrations.values(), self._is_meta)]

    def registration_lookup(self, caller: RouterSession, uri: str,
                            options: dict | None = None) -> list:
        reg = self.realm.dealer.lookup(self._uri_arg(uri), self._match_option(options))
        return [reg.id if reg is not None and not self._is_meta(reg) else None]

    def registration_match(self, caller: RouterSession, uri: str) -> list:
        reg = self.realm.dealer.match(self._uri_arg(uri))
        return [reg.id if reg is not None and not self._is_meta(reg) else None]

    def registration_get(self, caller: RouterSession, reg_id: int) -> list:
        return [{**self._registration(reg_id).details(), "id": reg_id}]

    def registration_list_callees(self, caller: RouterSession, reg_id: int) -> list:
        return [[c.session.id for c in self._registration(reg_id).group.callees()]]

    def registration_count_callees(self, caller: RouterSession, reg_id: int) -> list:
        return [len(self._registration(reg_id).group)]

    # -- subscription procedures -----------------------------------------------------------

    def _subscription(self, sub_id: int) -> tuple[str, str, Subscription | None]:
        """(uri, match name, this node's subscription or None) of subscription ``sub_id``:
        this node's id, or the id another node gave it."""
        sub = self.realm.broker.subscriptions.get(sub_id)
        if sub is not None:
            return sub.uri, sub.match_name, sub
        key = self.remote_subscription_ids.get(sub_id) if type(sub_id) is int else None
        if key is None:
            raise MetaError(uris.NO_SUCH_SUBSCRIPTION, f"no subscription {sub_id}")
        return key[0], key[1], self.realm.broker.trie.get(key[0], MATCH_POLICIES[key[1]])

    def _remote_only(self) -> dict[tuple[str, str], int]:
        """Subscriptions with subscribers on other nodes only: (uri, match name) -> the id
        this node shows for them (the least of the ids their nodes gave them)."""
        trie = self.realm.broker.trie
        return {key: min(sub_id for sub_id, _ in subscribers.values())
                for key, subscribers in self.remote_subscribers.items()
                if trie.get(key[0], MATCH_POLICIES[key[1]]) is None}

    def subscription_list(self, caller: RouterSession) -> list:
        listed = self._by_match(self.realm.broker.subscriptions.values(), lambda s: False)
        for (_uri, match_name), sub_id in self._remote_only().items():
            listed[match_name].append(sub_id)
        return [listed]

    def subscription_lookup(self, caller: RouterSession, uri: str,
                            options: dict | None = None) -> list:
        match = self._match_option(options)
        sub = self.realm.broker.trie.get(self._uri_arg(uri), match)
        if sub is not None:
            return [sub.id]
        remote = self.remote_subscribers.get((uri, _MATCH_NAMES[match]))
        return [min(sub_id for sub_id, _ in remote.values()) if remote else None]

    def subscription_match(self, caller: RouterSession, uri: str) -> list:
        subs = self.realm.broker.trie.match_all(self._uri_arg(uri))
        ids = [s.id for s in subs] if subs else []
        for (pattern, match_name), sub_id in self._remote_only().items():
            if pattern_matches(pattern, MATCH_POLICIES[match_name], uri):
                ids.append(sub_id)
        return [ids or None]

    def subscription_get(self, caller: RouterSession, sub_id: int) -> list:
        uri, match_name, sub = self._subscription(sub_id)
        if sub is not None:
            created = sub.created
        else:
            created = min(c for _, c in self.remote_subscribers[(uri, match_name)].values())
        return [{"id": sub_id, "created": created, "uri": uri, "match": match_name}]

    def _subscribers(self, sub_id: int) -> list[int]:
        uri, match_name, sub = self._subscription(sub_id)
        local = list(sub.subscribers) if sub is not None else []
        return local + list(self.remote_subscribers.get((uri, match_name), ()))

    def subscription_list_subscribers(self, caller: RouterSession, sub_id: int) -> list:
        return [self._subscribers(sub_id)]

    def subscription_count_subscribers(self, caller: RouterSession, sub_id: int) -> list:
        return [len(self._subscribers(sub_id))]

    def subscription_get_events(self, caller: RouterSession, sub_id: int,
                                **filters: Any) -> list:
        uri, match_name, _ = self._subscription(sub_id)
        match = MATCH_POLICIES[match_name]
        if not self.realm.authorization.allows(caller.member, ALLOW_SUBSCRIBE, uri, match):
            raise MetaError(uris.NOT_AUTHORIZED, f"the role {caller.authrole!r} may not "
                            f"subscribe to {uri!r} ({match_name}), so not read its "
                            "history")
        history = self.realm.history
        rule = history.rules.get((uri, match)) if history is not None else None
        if rule is None:
            raise MetaError(HISTORY_UNAVAILABLE,
                            f"no event history is kept for {uri!r} ({match_name})")
        try:
            return history.query(rule, sub_id, caller, filters)  # type: ignore[union-attr]
        except ValueError as exc:
            raise MetaError(uris.INVALID_ARGUMENT, str(exc)) from exc

    # -- fastwamp's own procedures -------------------------------------------------------------

    def authorizer_flush_cache(self, caller: RouterSession) -> list:
        """Forget the dynamic authorizer's remembered answers; return how many."""
        return [self.realm.authorization.flush_authorizer_cache()]

    def router_stats(self, caller: RouterSession) -> list:
        """Router-wide counters, and this realm's sizes; when metrics count calls, per
        registration: ``{"registrations": {id: {calls, errors, callees: {session id:
        calls}}}}`` (ids as strings; what the live console shows as calls/s, error rate
        and load split)."""
        router = self.realm.router
        realm = self.realm
        stats = {
            **router.stats,
            "sessions": len(router.sessions),
            "realm": {
                "name": realm.name,
                "sessions": len(realm.sessions),
                "registrations": sum(1 for r in realm.dealer.registrations.values()
                                     if not self._is_meta(r)),
                "subscriptions": len(realm.broker.subscriptions),
            },
        }
        counted = {
            str(reg.id): {"calls": reg.stats.calls, "errors": sum(reg.stats.errors.values()),
                          "callees": {str(k): n for k, n in reg.stats.callees.items()}}
            for reg in realm.dealer.registrations.values() if reg.stats is not None
        }
        if counted:
            stats["registrations"] = counted
        return [stats]
