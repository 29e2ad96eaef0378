"""The bridge of one realm to the other nodes (sans-I/O).

It is one more observer of the realm's events, and one more kind of peer behind
the routing pipeline:

* **Observer.**  Registrations and subscriptions of this node's sessions become
  entries of the node's replicated state; each accepted publication is sent once
  to every node whose replicated subscriptions match its topic (``EVENT``).
* **Remote callees.**  Each callee of another node is a proxy :class:`Member`
  registered in this node's dealer with the same options, so ``single``,
  shared policies, patterns and meta procedures see every callee of the cluster.
  The INVOCATIONs and INTERRUPTs the dealer queues for a proxy go to the callee's
  node (``INVOKE``, ``INTERRUPT``); the answers come back as ``ANSWER`` and enter
  the dealer as the proxy's YIELD or ERROR.  The caller's dealer keeps the call:
  timeouts, cancellation and "every call is answered exactly once" stay there.
* **Remote callers.**  On the callee's node, an ``INVOKE`` is relayed to the
  callee through this node's dealer on behalf of a proxy of the remote caller, so
  YIELD, ERROR, progressive results and a callee leaving are handled as for a
  local caller; what the dealer sends the proxy goes back as ``ANSWER``.
* **Events.**  An ``EVENT`` is delivered by this node's broker with the
  publication's own filters (session ids are unique in the cluster), so exclusion,
  eligibility and disclosure give what one node would give.  A publication to be
  retained, or kept in event history, goes to every node (each keeps it as the
  publisher's node does); the others go only where there are subscribers.
* **Meta API.**  Each subscriber is an entry of the replicated state (for the meta
  procedures, not for routing), and the meta events of this node's sessions go to
  the nodes with subscribers of them, as ``EVENT`` s from publisher 0.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .._core.trie import UriTrie
from .._core.uri import MATCH_POLICIES
from ..router.broker import RetainedEvent
from ..router.ids import publication_id
from ..router.member import Member
from ..router.options import make_publish_filter
from ..wamp import messages as m
from ..wamp import uris
from . import wire

if TYPE_CHECKING:
    from ..router.broker import Subscription
    from ..router.dealer import Registration
    from ..router.realm import Realm
    from ..router.session import RouterSession
    from .node import ClusterNode

log = logging.getLogger("fastwamp.cluster")

#: PUBLISH options that decide who receives an event (carried with it to other nodes).
FILTER_OPTIONS = ("exclude_me", "eligible", "exclude", "eligible_authid", "exclude_authid",
                  "eligible_authrole", "exclude_authrole", "disclose_me")
# Registration flags (as in the dealer).
_DISCLOSE_CALLER = 1
_FORWARD_TIMEOUT = 2


class _Publisher:
    """The identity of a remote publisher, as the receiver filter reads it."""

    __slots__ = ("id", "authid", "authrole", "exclude_me_filter")

    def __init__(self, session: int, authid: str, authrole: str) -> None:
        self.id = session
        self.authid = authid
        self.authrole = authrole
        self.exclude_me_filter: Any = None


class _Interest:
    """Nodes with subscribers of one (uri, match)."""

    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes: set[str] = set()


class RemoteSession:
    """The owner of a proxy member: a session of another node (what the router and the
    dealer ask of a session, answered for one that is not here)."""

    __slots__ = ("bridge", "node", "session", "member", "requests")

    def __init__(self, bridge: RealmBridge, node: str, session: int, member: Member) -> None:
        self.bridge = bridge
        self.node = node
        self.session = session
        self.member = member
        #: (remote callers only) request id here -> (callee session, invocation id there)
        self.requests: dict[int, tuple[int, int]] = {}

    @property
    def id(self) -> int:
        return self.session

    @property
    def peer(self) -> str:
        return f"cluster node {self.node}"

    def deliver(self) -> None:
        """The router's flush: what the dealer queued for the proxy goes to its node."""
        out = self.member.outbox
        self.member.outbox = []
        self.bridge.forward(self, out)

    def delivery_failed(self) -> None:
        pass

    def refused(self, request_type: int, error: str, message: object) -> None:
        pass

    def log_bad_input(self, msg: str, *values: object, level: int = 20) -> None:
        pass

    def pause_input(self) -> None:
        pass

    def resume_input(self) -> None:
        pass


class RealmBridge:
    """One realm's link to the other nodes (see the module docstring)."""

    def __init__(self, node: ClusterNode, realm: Realm) -> None:
        self.node = node
        self.realm = realm
        self.name = realm.name
        self.dealer = realm.dealer
        self.broker = realm.broker
        self._queue = realm.router.queue_delivery
        #: Remote subscriptions: (uri, match) -> the nodes that have subscribers.
        self.interest = UriTrie()
        #: Proxies of remote callees and of remote callers, by (node, session id).
        self.callees: dict[tuple[str, int], Member] = {}
        self.callers: dict[tuple[str, int], Member] = {}
        #: Invocations relayed here: (node, callee session, invocation id there) ->
        #: (caller proxy, request id here).
        self.relayed: dict[tuple[str, int, int], tuple[Member, int]] = {}
        self._request = 0
        #: realm's locality: how many tiers of nearer callees a call tries first.
        self._locality = realm.config.locality
        #: How many remote callees and subscribers carry each id their node gave.
        self._id_refs: dict[int, int] = {}
        #: topic -> (publisher's wall-clock time, publisher's node, the EVENT if this node
        #: published it) of the retained event: the newest wins on every node.
        self._retained_from: dict[str, tuple[float, str, list | None]] = {}
        self._retention = realm.broker._retention
        meta = realm.meta
        meta.forward_event = self._forward_meta_event
        meta.remote_owner = RemoteSession
        meta.forward_publication = self.published

    # -- observer: this node's sessions ------------------------------------------------

    def session_joined(self, session: RouterSession) -> None:
        self.node.change([wire.SES, self.name, session.id,
                          self.realm.meta._session_details(session)], True)

    def session_left(self, session: RouterSession) -> None:
        self.node.change([wire.SES, self.name, session.id], False)

    def registration_added(self, member: Member, reg: Registration) -> None:
        if isinstance(member.owner, RemoteSession):
            return
        self.node.change([wire.REG, self.name, member.id, reg.uri, reg.match_name,
                          reg.policy_name, reg.flags.get(member.id, 0) if reg.flags else 0,
                          member.features, member.authid, member.authrole, reg.created,
                          reg.group.rank_of(member.callee), reg.id],
                         True)

    def registration_removed(self, member: Member, reg: Registration, deleted: bool) -> None:
        if isinstance(member.owner, RemoteSession):
            return
        self.node.change([wire.REG, self.name, member.id, reg.uri, reg.match_name], False)

    def subscription_created(self, member: Member, sub: Subscription) -> None:
        self.node.change([wire.SUB, self.name, sub.uri, sub.match_name], True)

    def subscription_added(self, member: Member, sub: Subscription) -> None:
        self.node.change([wire.SBR, self.name, member.id, sub.uri, sub.match_name, sub.id,
                          sub.created], True)

    def subscription_removed(self, member: Member, sub: Subscription, deleted: bool) -> None:
        self.node.change([wire.SBR, self.name, member.id, sub.uri, sub.match_name], False)
        if deleted:
            self.node.change([wire.SUB, self.name, sub.uri, sub.match_name], False)

    def published(self, member: Member, topic: str, publication: int, payload: list,
                  options: dict[str, Any]) -> None:
        extra: dict[str, Any] | None = None
        if options.get("retain") is True and self._retention:
            extra = {"retain": True, "ts": time.time()}
        history = self.realm.history
        if history is not None and history.keeps(topic, options):
            if extra is None:
                extra = {"ts": time.time()}
            extra["history"] = True
        interests = self.interest.match_all(topic)
        if not interests and extra is None:
            return
        filters = {k: options[k] for k in FILTER_OPTIONS if k in options}
        message = [wire.EVENT, self.node.name, self.name, topic, publication, payload, filters,
                   member.id, member.authid, member.authrole]
        if extra is None:
            nodes: set[str] = set()
            for interest in interests:
                nodes |= interest.nodes
        else:  # every node keeps it
            message.append(extra)
            nodes = set(self.node.peers)
            if "retain" in extra:
                self._note_retained(topic, extra["ts"], self.node.name, message)
        for name in sorted(nodes):
            self.node.send_to(name, message)

    def _forward_meta_event(self, topic: str, args: list) -> None:
        """A meta event of this node's sessions: to the nodes with subscribers of it."""
        interests = self.interest.match_all(topic)
        if not interests:
            return
        nodes: set[str] = set()
        for interest in interests:
            nodes |= interest.nodes
        message = [wire.EVENT, self.node.name, self.name, topic, publication_id(), [args], {},
                   0, "", ""]
        for name in sorted(nodes):
            self.node.send_to(name, message)

    # -- retained events ------------------------------------------------------------------

    def _note_retained(self, topic: str, ts: float, origin: str, message: list | None) -> None:
        retained = self._retained_from
        retained.pop(topic, None)
        retained[topic] = (ts, origin, message)
        if len(retained) > 2 * len(self.broker.retained) + 64:  # topics the broker let go
            for gone in [t for t in retained if t not in self.broker.retained]:
                del retained[gone]

    def _newer_retained(self, topic: str, ts: float, origin: str) -> bool:
        """Whether a retained event stamped (ts, origin) is newer than the one kept."""
        current = self._retained_from.get(topic)
        return current is None or topic not in self.broker.retained or \
            (ts, origin) > current[:2]

    def resend_retained(self, node: str) -> None:
        """``node`` (re)joined or resynchronises: send it the retained events published
        here that are still kept (it keeps them if newer than its own)."""
        for topic, (_ts, origin, message) in list(self._retained_from.items()):
            if origin != self.node.name or message is None:
                continue
            kept = self.broker.retained.get(topic)
            if kept is None or kept.publication != message[4]:
                continue
            self.node.send_to(node, [*message[:10], {**message[10], "replay": True}])

    # -- replicated state of other nodes -----------------------------------------------

    def apply(self, node: str, entry: list, added: bool) -> None:
        """An entry of ``node``'s state appeared or went."""
        kind = entry[0]
        if kind == wire.SUB:
            self._apply_subscription(node, entry[2], MATCH_POLICIES[entry[3]], added)
        elif kind == wire.SBR:
            self._apply_subscriber(entry, added)
        elif kind == wire.SES:
            if added:
                self.realm.meta.remote_sessions[entry[2]] = entry[3]
            else:
                self.realm.meta.remote_sessions.pop(entry[2], None)
        else:
            self._apply_registration(node, entry, added)
            if len(entry) > 12 and type(entry[12]) is int:
                self._remote_id(self.realm.meta.remote_registration_ids, entry[12],
                                (entry[3], entry[4]), added)

    def _remote_id(self, ids: dict[int, tuple[str, str]], remote_id: int,
                   key: tuple[str, str], added: bool) -> None:
        """Count a use of the id another node gave (uri, match); forget it with the last."""
        refs = self._id_refs.get(remote_id, 0) + (1 if added else -1)
        if refs > 0:
            self._id_refs[remote_id] = refs
            ids[remote_id] = key
        else:
            self._id_refs.pop(remote_id, None)
            ids.pop(remote_id, None)

    def _apply_subscriber(self, entry: list, added: bool) -> None:
        _, _, session, uri, match_name, sub_id, created = entry[:7]
        meta = self.realm.meta
        key = (uri, match_name)
        subscribers = meta.remote_subscribers.get(key)
        if added:
            if subscribers is None:
                subscribers = meta.remote_subscribers[key] = {}
            subscribers[session] = (sub_id, created)
        elif subscribers is not None:
            subscribers.pop(session, None)
            if not subscribers:
                del meta.remote_subscribers[key]
        self._remote_id(meta.remote_subscription_ids, sub_id, key, added)

    def _apply_subscription(self, node: str, uri: str, match: int, added: bool) -> None:
        interest = self.interest.get(uri, match)
        if added:
            if interest is None:
                interest = _Interest()
                self.interest.add(uri, match, interest)
            interest.nodes.add(node)
        elif interest is not None:
            interest.nodes.discard(node)
            if not interest.nodes:
                self.interest.remove(uri, match)

    def _apply_registration(self, node: str, entry: list, added: bool) -> None:
        session, uri, match_name = entry[2], entry[3], entry[4]
        key = (node, session)
        proxy = self.callees.get(key)
        if not added:
            if proxy is None:
                return
            reg = self.dealer.lookup(uri, MATCH_POLICIES[match_name])
            if reg is not None and reg.id in (proxy.registrations or ()):
                self._untier(reg.id, proxy)
                self._request += 1
                self.dealer.unregister(proxy, [m.UNREGISTER, self._request, reg.id])
            self._forget_callee(key, proxy)
            return
        invoke, flags, features, authid, authrole = entry[5:10]
        if proxy is None:
            proxy = self._proxy(node, session, authid, authrole, features)
            self.callees[key] = proxy
        options = {"match": match_name, "invoke": invoke,
                   "disclose_caller": bool(flags & _DISCLOSE_CALLER),
                   "forward_timeout": bool(flags & _FORWARD_TIMEOUT)}
        # Where the callee stands among the registration's callees: the wall-clock
        # time it registered on its node, so that first/last agree on every node.
        rank = entry[11] if len(entry) > 11 and type(entry[11]) is float else None
        self._request += 1
        self.dealer.register(proxy, [m.REGISTER, self._request, options, uri], rank)
        reg = self.dealer.lookup(uri, MATCH_POLICIES[match_name])
        if reg is not None and reg.id not in (proxy.registrations or ()) and \
                self._yield_to(node, entry[10] if len(entry) > 10 else "", reg):
            self._request += 1
            self.dealer.register(proxy, [m.REGISTER, self._request, options, uri], rank)
            reg = self.dealer.lookup(uri, MATCH_POLICIES[match_name])
        if reg is not None and reg.id in (proxy.registrations or ()):
            self._tier(reg.id, node, proxy)

    def _yield_to(self, node: str, created: str, reg: Registration) -> bool:
        """A remote registration conflicts with this node's ``reg`` (``single``, or another
        invoke policy): both were made before either node heard of the other.  The older
        one stays (creation time, then node name, decide the same way on both nodes); if
        it is the remote one, this node's callees lose theirs (UNREGISTERED with
        Details.registration and reason, as the spec's router-initiated
        unregistration).  True if this node's registration was removed."""
        callees = [c.session for c in reg.group.callees()]
        if any(isinstance(member.owner, RemoteSession) for member in callees):
            return False  # a conflict between other nodes: they settle it
        if (created, node) >= (reg.created, self.node.name):
            log.warning("cluster: realm %s: node %s registered %r too; this node's older "
                        "registration stays", self.name, node, reg.uri)
            return False
        log.warning("cluster: realm %s: node %s registered %r first; this node's "
                    "registration is revoked", self.name, node, reg.uri)
        for member in callees:
            self.dealer._remove_callee(reg, member)
            member.send([m.UNREGISTERED, 0, {"registration": reg.id,
                                             "reason": uris.PROCEDURE_ALREADY_EXISTS}])
        return True

    def _tier(self, reg_id: int, node: str, proxy: Member) -> None:
        """Place a remote callee in the locality tiers of registration ``reg_id``: excluded
        from the first tier (this node's callees) and, when its node is in another region,
        from the second (this region's)."""
        if self._locality == "global":
            return
        tiers = self.dealer.callee_tiers.get(reg_id)
        if tiers is None:
            tiers = [set(), set()] if self._locality == "local_first" else [set()]
            self.dealer.callee_tiers[reg_id] = tiers
        peer = self.node.peers.get(node)
        other_region = peer is None or peer.region != self.node.region
        if self._locality == "local_first":
            tiers[0].add(proxy.callee)
            if other_region:
                tiers[1].add(proxy.callee)
        elif other_region:
            tiers[0].add(proxy.callee)

    def _untier(self, reg_id: int, proxy: Member) -> None:
        tiers = self.dealer.callee_tiers.get(reg_id)
        if tiers is None:
            return
        for excluded in tiers:
            excluded.discard(proxy.callee)
        if not tiers[0]:
            del self.dealer.callee_tiers[reg_id]

    def _proxy(self, node: str, session: int, authid: str, authrole: str,
               features: int) -> Member:
        member = Member(None, self._queue)
        member.owner = RemoteSession(self, node, session, member)
        member.id = session
        member.authid = authid
        member.authrole = authrole
        member.features = features
        return member

    def _forget_callee(self, key: tuple[str, int], proxy: Member) -> None:
        if not proxy.registrations and not proxy.invocations:
            self.callees.pop(key, None)

    def node_gone(self, node: str, sessions: list[list] | None = None) -> None:
        """``node`` left or was lost: its callees leave the dealer (their calls in flight
        are answered wamp.error.canceled), its callers' invocations here are interrupted,
        and its ``sessions`` (SES entries it had not removed) leave, as this node's meta
        subscribers hear."""
        for entry in sessions or ():
            details = entry[3] if type(entry[3]) is dict else {}
            self.realm.meta.publish_local("wamp.session.on_leave", [
                entry[2], details.get("authid"), details.get("authrole")])
        for key, proxy in list(self.callees.items()):
            if key[0] == node:
                del self.callees[key]
                for reg_id in list(proxy.registrations or ()):
                    self._untier(reg_id, proxy)
                self.dealer.detach(proxy)
                proxy.closed = True
        for key, proxy in list(self.callers.items()):
            if key[0] == node:
                del self.callers[key]
                self.dealer.detach(proxy)
                proxy.closed = True
        for relayed in [k for k in self.relayed if k[0] == node]:
            del self.relayed[relayed]
        self.realm.router.flush_soon()

    # -- output of proxies ----------------------------------------------------------

    def forward(self, owner: RemoteSession, out: list[list]) -> None:
        """Messages the dealer queued for a proxy: to the node of the session."""
        node = self.node
        for msg in out:
            code = msg[0]
            if code == m.INVOCATION:
                inv = owner.member.invocations.get(msg[1])
                if inv is None:
                    continue
                reg = inv.registration
                caller = inv.caller
                node.send_to(owner.node, [
                    wire.INVOKE, node.name, self.name, owner.session, msg[1], reg.uri,
                    reg.match_name, msg[3], msg[4:], caller.id, caller.authid,
                    caller.authrole])
            elif code == m.INTERRUPT:
                node.send_to(owner.node, [wire.INTERRUPT, node.name, self.name, owner.session,
                                          msg[1], msg[2]])
            elif code == m.RESULT or (code == m.ERROR and msg[1] == m.CALL):
                self._answer(owner, msg)
            elif code == m.ERROR and msg[1] == m.REGISTER:
                log.warning("cluster: realm %s: a registration of node %s conflicts with this "
                            "node's: %s", self.name, owner.node, msg[5:6])

    def _answer(self, owner: RemoteSession, msg: list) -> None:
        """A RESULT or ERROR for a remote caller: back to the caller's node."""
        request = msg[1] if msg[0] == m.RESULT else msg[2]
        final = not (msg[0] == m.RESULT and msg[2].get("progress") is True)
        target = owner.requests.pop(request, None) if final else owner.requests.get(request)
        if target is None:
            return
        callee, invocation = target
        if final:
            self.relayed.pop((owner.node, callee, invocation), None)
            if not owner.requests:
                self.callers.pop((owner.node, owner.session), None)
        self.node.send_to(owner.node, [wire.ANSWER, self.node.name, self.name, callee,
                                       invocation, msg])

    # -- input from other nodes -----------------------------------------------------

    def receive(self, kind: int, message: list) -> None:
        if kind == wire.EVENT:
            self._on_event(message)
        elif kind == wire.INVOKE:
            self._on_invoke(message)
        elif kind == wire.ANSWER:
            self._on_answer(message)
        elif kind == wire.INTERRUPT:
            self._on_interrupt(message)
        self.realm.router.flush_soon()

    def _on_event(self, message: list) -> None:
        topic, publication, payload, filters, session, authid, authrole = message[3:10]
        if session == 0:  # a meta event of another node's sessions
            self.broker.deliver(topic, publication, payload, None)
            return
        extra = message[10] if len(message) > 10 and type(message[10]) is dict else None
        publisher = _Publisher(session, authid, authrole)
        receiver_filter = make_publish_filter(publisher, filters,  # type: ignore[arg-type]
                                              self.realm.config.max_list_length)
        disclosure = self.realm.config.disclosure
        disclose = disclosure == "always" or (
            disclosure == "on_request" and filters.get("disclose_me") is True)
        details = None
        if disclosure != "never":
            details = {"publisher": session, "publisher_authid": authid,
                       "publisher_authrole": authrole}
        if extra is not None:
            stamp = extra.get("ts")
            ts = float(stamp) if isinstance(stamp, (int, float)) else time.time()
            if extra.get("retain") is True and self._retention and \
                    self._newer_retained(topic, ts, message[1]):
                self.broker._retain(RetainedEvent(topic, publication, payload, receiver_filter,
                                                  details, disclose, 0))
                self._note_retained(topic, ts, message[1], None)
            if extra.get("replay") is True:
                return  # kept, not delivered again
            history = self.realm.history
            if extra.get("history") is True and history is not None:
                history.record_publication(topic, publication, payload, filters, ts)
        self.broker.deliver(topic, publication, payload, receiver_filter, details, disclose)

    def _on_invoke(self, message: list) -> None:
        (node, _, callee_id, invocation, uri, match_name, details, payload, caller_id,
         caller_authid, caller_authrole) = message[1:12]
        key = (node, callee_id, invocation)
        relayed = self.relayed.get(key)
        if relayed is not None:  # a further chunk of a progressive call invocation
            proxy, request = relayed
            inv = proxy.calls.get(request)
            if inv is not None and inv.callee is not None:
                chunk = {"progress": True} if details.get("progress") is True else {}
                if not chunk:
                    inv.streaming_in = False
                inv.callee.send([m.INVOCATION, inv.id, inv.registration.id, chunk, *payload])
            return
        session = self.realm.sessions.get(callee_id)
        reg = self.dealer.lookup(uri, MATCH_POLICIES[match_name])
        callee = session.member if session is not None else None
        if callee is None or reg is None or callee.callee is None or \
                callee.callee not in reg.group:
            # Gone meanwhile: the caller's node tries another callee.
            self.node.send_to(node, [wire.ANSWER, self.node.name, self.name, callee_id,
                                     invocation, [m.ERROR, m.CALL, 0, {}, uris.UNAVAILABLE,
                                                  ["the callee left"]]])
            return
        caller_key = (node, caller_id)
        caller = self.callers.get(caller_key)
        if caller is None:
            caller = self._proxy(node, caller_id, caller_authid, caller_authrole, 0)
            self.callers[caller_key] = caller
        self._request += 1
        request = self._request
        caller.owner.requests[request] = (callee_id, invocation)
        self.relayed[key] = (caller, request)
        self.dealer.relay(caller, request, details.get("procedure", uri), reg, callee.callee,
                          details, payload)

    def _on_answer(self, message: list) -> None:
        node, _, callee_id, invocation, answer = message[1:6]
        proxy = self.callees.get((node, callee_id))
        if proxy is None:
            return
        if invocation not in proxy.invocations:
            # Answered already (canceled when the node was lost, then it came back): the
            # call is closed; this is no protocol error of anyone's.
            log.debug("cluster: realm %s: late answer from node %s to invocation %s dropped",
                      self.name, node, invocation)
            return
        if answer[0] == m.RESULT:
            options = {"progress": True} if answer[2].get("progress") is True else {}
            self.dealer.yield_(proxy, [m.YIELD, invocation, options, *answer[3:]])
        else:
            self.dealer.invocation_error(proxy, [m.ERROR, m.INVOCATION, invocation, answer[3],
                                                 answer[4], *answer[5:]])
        self._forget_callee((node, callee_id), proxy)

    def _on_interrupt(self, message: list) -> None:
        node, _, callee_id, invocation, options = message[1:6]
        relayed = self.relayed.get((node, callee_id, invocation))
        if relayed is None:
            return
        proxy, request = relayed
        mode = options.get("mode")
        self.dealer.cancel(proxy, [m.CANCEL, request,
                                   {"mode": mode if mode in ("kill", "killnowait") else
                                    "killnowait"}])
