# cython: annotation_typing=False
"""The dealer: registrations, callee selection and the life of every call.

URI matching and callee selection run in the compiled core
(:mod:`fastwamp._core`); this module holds the policy around them: options,
disclosure, timeouts, cancellation, progressive results and invocations,
re-routing, and clean-up when a caller or callee leaves.

Invariant: every CALL gets exactly one final answer (RESULT or ERROR), and an
invocation is in ``caller.calls`` and ``callee.invocations`` exactly while it
is open.  A late YIELD/ERROR for a closed invocation is dropped.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from time import perf_counter, time
from typing import TYPE_CHECKING, Any
from zlib import crc32

from .._core.callees import (
    INVOKE_POLICIES,
    INVOKE_SHARDED,
    INVOKE_SINGLE,
    Callee,
    CalleeGroup,
)
from .._core.trie import UriTrie
from .._core.uri import MATCH_EXACT, validate_uri
from ..logsafe import LogBudget, clip
from ..wamp import messages as m
from ..wamp import uris
from ..wamp.messages import INVOCATION, RESULT, ProtocolViolation
from .clock import Clock, utcnow_iso
from .events import RealmEvents
from .ids import MAX_ID, IdPool
from .member import (
    CALLEE_CALL_CANCELING,
    CALLEE_CALL_TIMEOUT,
    CALLEE_PROGRESSIVE_CALL_INVOCATIONS,
    CALLER_PROGRESSIVE_CALL_INVOCATIONS,
)
from .options import (
    RESERVED_PREFIXES,
    DealerOptions,
    is_reserved,
    read_pattern,
    uri_over_limits,
)

if TYPE_CHECKING:
    from .member import Member

log = logging.getLogger("fastwamp.dealer")
#: Lines about call timeouts, for the whole process (a slow callee must not flood the log).
_TIMEOUT_LOG = LogBudget(20.0)

CANCEL_MODES = ("skip", "kill", "killnowait")
#: Largest CALL.Options.timeout accepted (ms, about 24.8 days); beyond: invalid_argument.
MAX_TIMEOUT_MS = 2**31 - 1

#: Upper bounds (seconds) of the call duration buckets of CallStats (+Inf is implied).
CALL_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                         1.0, 2.5, 5.0, 10.0, 30.0)
#: CallStats.errors / CallStats.callees key for what is beyond the limit.
OTHER = "_other"

# Per-callee flags of a registration.
DISCLOSE_CALLER = 1
FORWARD_TIMEOUT = 2


class Registration:
    """A procedure URI with a match policy, and the callees attached to it."""

    __slots__ = ("id", "uri", "match", "match_name", "policy", "policy_name", "group", "flags", "created",
                 "stats")

    def __init__(self, reg_id: int, uri: str, match: int, match_name: str,
                 policy: int, policy_name: str) -> None:
        self.id = reg_id
        self.uri = uri
        self.match = match
        self.match_name = match_name
        self.policy = policy
        self.policy_name = policy_name
        self.group = CalleeGroup(policy)
        #: callee session id -> DISCLOSE_CALLER | FORWARD_TIMEOUT bits
        self.flags: dict[int, int] = {}
        self.created = utcnow_iso()
        #: The calls it routed, when metrics count them (Dealer.call_stats_limit), else None.
        self.stats: CallStats | None = None

    def details(self) -> dict[str, Any]:
        """RegistrationDetails as the meta API describes it."""
        return {"id": self.id, "created": self.created, "uri": self.uri,
                "match": self.match_name, "invoke": self.policy_name}


class CallStats:
    """The calls one registration routed, counted in plain numbers (metrics read them).

    ``record`` runs once per finished call: a count, the duration's bucket and sum,
    the error URI if any, and for shared registrations the callee that answered.
    ``errors`` and ``callees`` keep at most ``limit`` keys; beyond, ``OTHER`` / 0.
    """

    __slots__ = ("calls", "seconds", "buckets", "errors", "callees", "limit")

    def __init__(self, limit: int) -> None:
        self.calls = 0
        self.seconds = 0.0
        #: Calls per duration bucket (CALL_DURATION_BUCKETS, then +Inf), not cumulative.
        self.buckets = [0] * (len(CALL_DURATION_BUCKETS) + 1)
        #: error URI -> calls that ended with it
        self.errors: dict[str, int] = {}
        #: callee session id -> calls it answered (shared registrations only)
        self.callees: dict[int, int] = {}
        self.limit = limit

    def record(self, duration: float, error: str | None, callee_id: int) -> None:
        self.calls += 1
        if duration < 0.0:
            duration = 0.0
        self.seconds += duration
        self.buckets[bisect_left(CALL_DURATION_BUCKETS, duration)] += 1
        if error is not None:
            errors = self.errors
            if error not in errors and len(errors) >= self.limit:
                error = OTHER
            errors[error] = errors.get(error, 0) + 1
        if callee_id:
            callees = self.callees
            count = callees.get(callee_id)
            if count is not None:
                callees[callee_id] = count + 1
            elif len(callees) < self.limit:
                callees[callee_id] = 1


class Invocation:
    """One call in flight: the CALL on the caller's side, the INVOCATION on the callee's."""

    __slots__ = (
        "id", "caller", "call_request", "callee", "callee_ref", "registration", "procedure",
        "payload", "disclose", "receive_progress", "timeout_ms", "timer", "excluded",
        "interrupted", "streaming_in", "started", "shard_key",
    )

    def __init__(self, caller: Member, call_request: int, procedure: str,
                 registration: Registration, payload: list) -> None:
        self.id = 0
        self.caller = caller
        self.call_request = call_request
        self.callee: Member | None = None
        self.callee_ref: Callee | None = None
        self.registration = registration
        self.procedure = procedure
        self.payload = payload  # [Arguments, ArgumentsKw] tail of the CALL, may be empty
        self.disclose = False
        self.receive_progress = False
        self.timeout_ms = 0
        self.timer: Any = None
        self.excluded: set | None = None  # callees that answered wamp.error.unavailable
        self.interrupted = False  # INTERRUPT(kill) sent, waiting for the callee's answer
        self.streaming_in = False  # progressive call invocation: more CALL chunks to come
        self.shard_key: int | None = None  # a partitioned call: the hash of its routing key
        #: perf_counter() at the CALL when its registration counts calls, else -1.0.
        self.started = -1.0


class Dealer:
    """Routes the calls of one realm.

    Built from plain values: its options, a clock for call timeouts, and the realm's
    events (registrations created, added, removed).  Its verbs take the caller's or
    callee's :class:`~fastwamp.router.member.Member` and a checked message, and
    answer by queuing messages on members.
    """

    def __init__(self, options: DealerOptions, clock: Clock, events: RealmEvents) -> None:
        self.options = options
        self.trie = UriTrie()
        self.registrations: dict[int, Registration] = {}
        self._ids = IdPool()
        self._clock = clock
        self._events = events
        self._limits = options.uris
        self._strict = options.uris.strict
        #: "always", "on_request" or "never" (RealmConfig.disclosure)
        self._disclosure = options.disclosure
        self._trustlevels = options.trustlevels
        self._max_calls_in_flight = options.max_calls_in_flight
        self._max_registrations = options.max_registrations
        self._default_timeout_ms = options.default_timeout_ms
        self._max_timeout_ms = options.max_timeout_ms
        self._max_uri_length = options.uris.max_length
        self._max_uri_components = options.uris.max_components
        #: Registrations created from now on count their calls (CallStats) with this
        #: limit on error URIs and callees each, when > 0 (metrics on); 0: not counted.
        self.call_stats_limit = 0
        #: Cluster locality: registration id -> sets of callees to exclude, tried in
        #: order before choosing among all (the cluster bridge keeps it; empty alone).
        self.callee_tiers: dict[int, list[set]] = {}
        self._last_rank = 0.0

    @staticmethod
    def features() -> dict[str, bool]:
        """Dealer features announced in WELCOME (only what is implemented and tested)."""
        return {
            "shared_registration": True,
            "pattern_based_registration": True,
            "caller_identification": True,
            "call_trustlevels": True,
            "call_timeout": True,
            "call_canceling": True,
            "progressive_call_results": True,
            "progressive_call_invocations": True,
            "call_reroute": True,
            "sharded_registration": True,
            "registration_meta_api": True,
            "session_meta_api": True,
            "testament_meta_api": True,
        }

    # -- registrations ---------------------------------------------------------

    def register(self, session: Member, msg: list, rank: float | None = None) -> None:
        """REGISTER: add ``session`` as a callee of the procedure (created if new).

        ``rank`` orders the callee among those of a shared registration (``first``,
        ``last``, and the round-robin rotation): the wall-clock time it registered,
        now unless given (a cluster bridge passes the time on the callee's node)."""
        request, options, uri = msg[1], msg[2], msg[3]
        pattern = read_pattern(session, m.REGISTER, request, options, uri, self._limits,
                               "procedure")
        if pattern is None:
            return
        match, match_name = pattern
        if not session.is_service:
            if is_reserved(uri):
                session.send_error(m.REGISTER, request, uris.NOT_AUTHORIZED,
                                   [f"the URI namespaces {' and '.join(RESERVED_PREFIXES)} are "
                                    f"reserved: cannot register {uri!r}"])
                return
            if len(session.registrations or ()) >= self._max_registrations:
                session.send_error(m.REGISTER, request, uris.LIMIT_EXCEEDED,
                                   [f"a session may hold at most {self._max_registrations} "
                                    "registrations (max_registrations_per_session)"])
                return
        policy_name = options.get("invoke")
        if type(policy_name) is not str:
            policy_name = "single"
        policy = INVOKE_POLICIES.get(policy_name)
        if policy is None:
            session.send_error(m.REGISTER, request, uris.INVALID_ARGUMENT,
                               [f"unknown invocation policy {policy_name!r}"])
            return
        flags = 0
        if options.get("disclose_caller") is True:
            if self._disclosure == "never" and not session.is_service:
                session.send_error(m.REGISTER, request, uris.OPTION_DISALLOWED_DISCLOSE_ME,
                                   ["caller disclosure is disabled on this realm"])
                return
            flags |= DISCLOSE_CALLER
        if options.get("forward_timeout") is True:
            flags |= FORWARD_TIMEOUT
        callee = session.callee
        if callee is None:
            callee = session.callee = Callee(session, session.id)
        reg = self.trie.get(uri, match)
        created = reg is None
        if reg is not None:
            if policy == INVOKE_SINGLE or reg.policy != policy:
                why = (f"procedure {uri!r} is already registered" if reg.policy == INVOKE_SINGLE
                       else f"procedure {uri!r} is registered with invocation policy "
                            f"{reg.policy_name!r}, not {policy_name!r}")
                session.send_error(m.REGISTER, request, uris.PROCEDURE_ALREADY_EXISTS, [why])
                return
            if callee in reg.group:
                session.send_error(m.REGISTER, request, uris.PROCEDURE_ALREADY_EXISTS,
                                   [f"this session already registered {uri!r}"])
                return
        else:
            reg = Registration(self._ids.take(), uri, match, match_name, policy, policy_name)
            if self.call_stats_limit > 0:
                reg.stats = CallStats(self.call_stats_limit)
            self.trie.add(uri, match, reg)
            self.registrations[reg.id] = reg
        if rank is None:
            rank = time()
            if rank <= self._last_rank:  # the wall clock stepped back: keep local order
                rank = self._last_rank + 1e-6
            self._last_rank = rank
        reg.group.add(callee, rank)
        if flags:
            reg.flags[session.id] = flags
        held = session.registrations
        if held is None:
            held = session.registrations = set()
        held.add(reg.id)
        session.send([m.REGISTERED, request, reg.id])
        events = self._events
        if created:
            events.registration_created(session, reg)
        events.registration_added(session, reg)

    def unregister(self, session: Member, msg: list) -> None:
        """UNREGISTER: remove ``session`` as a callee (the registration goes with its last)."""
        request, reg_id = msg[1], msg[2]
        reg = self.registrations.get(reg_id)
        if reg is None or reg_id not in (session.registrations or ()):
            session.send_error(m.UNREGISTER, request, uris.NO_SUCH_REGISTRATION,
                               [f"no registration {reg_id} held by this session"])
            return
        self._remove_callee(reg, session)
        session.send([m.UNREGISTERED, request])

    def revoke(self, session: Member, reg: Registration) -> None:
        """Remove ``session`` as a callee of ``reg`` on the router's initiative (its role
        lost the permission in a reload): the meta events of an unregistration follow;
        the callee is not told, and calls it was already invoked for go on."""
        if reg.id in (session.registrations or ()):
            self._remove_callee(reg, session)

    def _remove_callee(self, reg: Registration, session: Member) -> None:
        reg.group.remove(session.callee)
        reg.flags.pop(session.id, None)
        if session.registrations is not None:
            session.registrations.discard(reg.id)
        deleted = not len(reg.group)
        if deleted:
            self.trie.remove(reg.uri, reg.match)
            del self.registrations[reg.id]
            self._ids.release(reg.id)
        self._events.registration_removed(session, reg, deleted)

    # -- calls ---------------------------------------------------------------

    def call(self, caller: Member, msg: list) -> None:
        """CALL: route a call to a callee (or continue a progressive call invocation)."""
        request, options, uri = msg[1], msg[2], msg[3]
        open_call = caller.calls.get(request)
        if open_call is not None:
            self._call_continuation(caller, open_call, msg)
            return
        if len(caller.calls) >= self._max_calls_in_flight:
            caller.send_error(m.CALL, request, uris.QUOTA_EXCEEDED,
                              [f"this session already has {len(caller.calls)} calls waiting for "
                               "an answer (max_calls_in_flight)"])
            return
        streaming = options.get("progress") is True
        if streaming and not caller.features & CALLER_PROGRESSIVE_CALL_INVOCATIONS:
            raise ProtocolViolation(
                "CALL.Options.progress used without announcing progressive_call_invocations")
        reg = self.trie.match_best(uri)  # exact first: a registered URI is a valid one
        if reg is None or reg.match != MATCH_EXACT:
            if (not validate_uri(uri, MATCH_EXACT, self._strict)
                    or uri_over_limits(uri, self._max_uri_length, self._max_uri_components)):
                caller.send_error(m.CALL, request, uris.INVALID_URI,
                                  [f"invalid procedure URI {clip(uri)!r}"])
                return
            if reg is not None and is_reserved(uri):
                reg = None  # patterns outside wamp.*/fastwamp.* never capture calls inside
        if reg is None:
            caller.send_error(m.CALL, request, uris.NO_SUCH_PROCEDURE,
                              [f"no callee registered for procedure {uri!r}"])
            return
        callee_ref = None
        shard_key = None
        if reg.policy == INVOKE_SHARDED or options.get("runmode") is not None:
            shard_key = self._shard_key(caller, request, reg, options)
            if shard_key is None:
                return
            # Every node picks the same callee for a key: locality does not apply.
            callee_ref = reg.group.select_keyed(shard_key, None)
        elif self.callee_tiers:  # a cluster: callees nearer the caller first
            tiers = self.callee_tiers.get(reg.id)
            if tiers is not None:
                for excluded in tiers:
                    callee_ref = reg.group.select(excluded)
                    if callee_ref is not None:
                        break
        if callee_ref is None:
            callee_ref = reg.group.select(None)
        if callee_ref is None:  # pragma: no cover - empty registrations are deleted
            caller.send_error(m.CALL, request, uris.NO_SUCH_PROCEDURE,
                              [f"no callee registered for procedure {uri!r}"])
            return
        inv = Invocation(caller, request, uri, reg, msg[4:])
        inv.shard_key = shard_key
        disclosure = self._disclosure
        if disclosure == "always":
            inv.disclose = True
        elif options.get("disclose_me") is True:
            if disclosure == "never":
                caller.send_error(m.CALL, request, uris.OPTION_DISALLOWED_DISCLOSE_ME,
                                  ["caller disclosure is disabled on this realm"])
                return
            inv.disclose = True
        inv.receive_progress = options.get("receive_progress") is True
        if streaming:
            callee: Member = callee_ref.session
            wanted = CALLEE_PROGRESSIVE_CALL_INVOCATIONS | CALLEE_CALL_CANCELING
            if callee.features & wanted != wanted:
                caller.send_error(m.CALL, request, uris.FEATURE_NOT_SUPPORTED,
                                  [f"the callee of {uri!r} does not support progressive call "
                                   "invocations"])
                return
            inv.streaming_in = True
        timeout = options.get("timeout")
        if type(timeout) is not int:  # absent, or a value we cannot read: ignored
            timeout = 0
        elif not 0 <= timeout <= MAX_TIMEOUT_MS:
            caller.send_error(m.CALL, request, uris.INVALID_ARGUMENT,
                              [f"CALL.Options.timeout must be an integer from 0 to "
                               f"{MAX_TIMEOUT_MS} (ms)"])
            return
        if not timeout:
            timeout = self._default_timeout_ms
        if self._max_timeout_ms and (not timeout or timeout > self._max_timeout_ms):
            timeout = self._max_timeout_ms
        inv.timeout_ms = timeout
        if reg.stats is not None:
            inv.started = perf_counter()
        caller.calls[request] = inv
        self._invoke(inv, callee_ref)

    @staticmethod
    def _shard_key(caller: Member, request: int, reg: Registration,
                   options: dict[str, Any]) -> int | None:
        """The routing key hash of a partitioned call (``runmode = "partition"`` with
        ``rkey``, or a ``jump_consistent_hash`` registration with ``rkey`` or
        ``_routing_key``); None after answering a CALL that lacks a usable one."""
        runmode = options.get("runmode")
        if runmode is not None and runmode != "partition":
            caller.send_error(m.CALL, request, uris.INVALID_ARGUMENT,
                              [f"unknown CALL.Options.runmode {clip(str(runmode))!r} "
                               "(only \"partition\" is defined)"])
            return None
        rkey = options.get("rkey")
        if rkey is None and runmode is None:
            rkey = options.get("_routing_key")
        kind = type(rkey)
        if kind is int:
            rkey = str(rkey)
        elif kind is not str or not rkey:
            why = ("CALL.Options.runmode \"partition\" needs CALL.Options.rkey"
                   if runmode is not None else
                   f"procedure {reg.uri!r} is sharded (invoke \"jump_consistent_hash\"): "
                   "calls need CALL.Options.rkey or _routing_key")
            caller.send_error(m.CALL, request, uris.INVALID_ARGUMENT,
                              [why + " (a non-empty string or an integer)"])
            return None
        # CRC-32: cheap (0.1 µs) and stable across processes and builds; keyed
        # selection mixes it with each callee's id, which spreads the keys.
        return crc32(rkey.encode("utf-8", "surrogatepass"))

    def _call_continuation(self, caller: Member, inv: Invocation, msg: list) -> None:
        """A CALL reusing the request id of an open call: a progressive invocation chunk."""
        if not inv.streaming_in:
            raise ProtocolViolation(f"CALL request id {msg[1]} is already in use")
        more = msg[2].get("progress") is True
        inv.streaming_in = more
        details: dict[str, Any] = {"progress": True} if more else {}
        callee = inv.callee
        assert callee is not None
        callee.send([INVOCATION, inv.id, inv.registration.id, details, *msg[4:]])

    def _invoke(self, inv: Invocation, callee_ref: Callee) -> None:
        """Send the INVOCATION for ``inv`` to ``callee_ref``."""
        callee: Member = callee_ref.session
        reg = inv.registration
        invocation_id = callee.last_invocation_id + 1
        if invocation_id > MAX_ID:
            invocation_id = 1
        callee.last_invocation_id = invocation_id
        inv.id = invocation_id
        inv.callee = callee
        inv.callee_ref = callee_ref
        details: dict[str, Any] = {}
        if reg.match != MATCH_EXACT:
            details["procedure"] = inv.procedure
        flags = reg.flags.get(callee.id, 0) if reg.flags else 0
        caller = inv.caller
        if inv.disclose or flags & DISCLOSE_CALLER:
            details["caller"] = caller.id
            details["caller_authid"] = caller.authid
            details["caller_authrole"] = caller.authrole
        if self._trustlevels:
            level = self._trustlevels.get(caller.authrole, self._trustlevels.get("*"))
            if level is not None:
                details["trustlevel"] = level
        if inv.receive_progress:
            # Also to callees that did not announce progressive_call_results (wampy 8
            # announces it for its caller role only, yet relays progressive YIELDs):
            # one that does not know the key ignores it.
            details["receive_progress"] = True
        if inv.streaming_in:
            details["progress"] = True
        if inv.timeout_ms:
            if flags & FORWARD_TIMEOUT and callee.features & CALLEE_CALL_TIMEOUT:
                details["timeout"] = inv.timeout_ms
            elif inv.timer is None:
                self._start_timer(inv)
        callee.invocations[invocation_id] = inv
        callee_ref.inflight += 1
        callee.send([INVOCATION, invocation_id, reg.id, details, *inv.payload])

    def relay(self, caller: Member, request: int, procedure: str, reg: Registration,
              callee_ref: Callee, details: dict[str, Any], payload: list) -> None:
        """An invocation whose callee another node's dealer chose (the cluster bridge):
        sent to ``callee_ref`` with this node's ids and ``details`` as that dealer made
        them.  The answer goes to ``caller`` (the bridge's proxy of the remote caller);
        the caller's node keeps the timeout."""
        inv = Invocation(caller, request, procedure, reg, payload)
        inv.receive_progress = details.get("receive_progress") is True
        inv.streaming_in = details.get("progress") is True
        callee: Member = callee_ref.session
        invocation_id = callee.last_invocation_id + 1
        if invocation_id > MAX_ID:
            invocation_id = 1
        callee.last_invocation_id = invocation_id
        inv.id = invocation_id
        inv.callee = callee
        inv.callee_ref = callee_ref
        caller.calls[request] = inv
        callee.invocations[invocation_id] = inv
        callee_ref.inflight += 1
        callee.send([INVOCATION, invocation_id, reg.id, details, *payload])

    def _start_timer(self, inv: Invocation) -> None:
        inv.timer = self._clock.call_later(inv.timeout_ms / 1000.0, lambda: self._expire(inv))
        if inv.timer is None:  # pragma: no cover - the server always sets a scheduler
            log.warning("no scheduler: call timeout of %s ms not enforced", inv.timeout_ms)

    def _close(self, inv: Invocation, error: str | None) -> None:
        """Forget ``inv`` on both sides (it has been or is being answered, with ``error``
        or, if None, a RESULT); the registration's CallStats count it, if it has them."""
        callee = inv.callee
        if callee is not None and callee.invocations.pop(inv.id, None) is not None:
            inv.callee_ref.inflight -= 1  # type: ignore[union-attr]
        inv.caller.calls.pop(inv.call_request, None)
        if inv.timer is not None:
            inv.timer.cancel()
            inv.timer = None
        started = inv.started
        if started >= 0.0:
            inv.started = -1.0
            reg = inv.registration
            reg.stats.record(perf_counter() - started, error,  # type: ignore[union-attr]
                             callee.id if callee is not None and reg.policy != INVOKE_SINGLE
                             else 0)

    def _interrupt(self, inv: Invocation, mode: str, reason: str | None = None) -> bool:
        """Send INTERRUPT to the callee if it supports call canceling."""
        callee = inv.callee
        if callee is None or not callee.features & CALLEE_CALL_CANCELING:
            return False
        options: dict[str, Any] = {"mode": mode}
        if reason:
            options["reason"] = reason
        callee.send([m.INTERRUPT, inv.id, options])
        return True

    def _expire(self, inv: Invocation) -> None:
        inv.timer = None
        if inv.caller.calls.get(inv.call_request) is not inv:
            return
        callee = inv.callee
        _TIMEOUT_LOG.log(log, logging.INFO, "call to %s timed out after %d ms (registration %s "
                         "%s, caller session %s, callee session %s)", clip(inv.procedure),
                         inv.timeout_ms, inv.registration.uri, inv.registration.match_name,
                         inv.caller.id, callee.id if callee is not None else "-")
        self._interrupt(inv, "killnowait", uris.TIMEOUT)
        self._close(inv, uris.TIMEOUT)
        inv.caller.send_error(m.CALL, inv.call_request, uris.TIMEOUT,
                              [f"call to {inv.procedure!r} timed out after {inv.timeout_ms} ms"])

    def _open_invocation(self, callee: Member, invocation_id: int, what: str) -> Invocation | None:
        inv = callee.invocations.get(invocation_id)
        if inv is None and not 0 < invocation_id <= callee.last_invocation_id:
            raise ProtocolViolation(f"{what} for invocation {invocation_id} that was never sent")
        return inv  # None: a late answer to a call that already ended; dropped

    def yield_(self, callee: Member, msg: list) -> None:
        """YIELD: a callee's (progressive or final) result, relayed to the caller."""
        inv = self._open_invocation(callee, msg[1], "YIELD")
        if inv is None:
            return
        if msg[2].get("progress") is True:
            if inv.receive_progress:
                inv.caller.send([RESULT, inv.call_request, {"progress": True}, *msg[3:]])
                if inv.timer is not None:  # the timeout measures the gap between results
                    inv.timer.cancel()
                    inv.timer = None
                    self._start_timer(inv)
            return
        self._close(inv, None)
        inv.caller.send([RESULT, inv.call_request, {}, *msg[3:]])

    def invocation_error(self, callee: Member, msg: list) -> None:
        """ERROR for an INVOCATION: relayed to the caller (``unavailable`` re-routes)."""
        inv = self._open_invocation(callee, msg[2], "ERROR")
        if inv is None:
            return
        error = msg[4]
        if error == uris.UNAVAILABLE and not inv.streaming_in:
            self._reroute(inv)
            return
        self._close(inv, error)
        inv.caller.send([m.ERROR, m.CALL, inv.call_request, msg[3], error, *msg[5:]])

    def _reroute(self, inv: Invocation) -> None:
        """The callee answered wamp.error.unavailable: try the next eligible callee."""
        callee_ref = inv.callee_ref
        assert callee_ref is not None and inv.callee is not None
        inv.callee.invocations.pop(inv.id, None)
        callee_ref.inflight -= 1
        if inv.excluded is None:
            inv.excluded = set()
        inv.excluded.add(callee_ref)
        reg = inv.registration
        nxt = None
        if reg.policy != INVOKE_SINGLE and self.registrations.get(reg.id) is reg:
            if inv.shard_key is not None:  # the key's next callee
                nxt = reg.group.select_keyed(inv.shard_key, inv.excluded)
            else:
                nxt = reg.group.select(inv.excluded)
        if nxt is None:
            self._close(inv, uris.NO_AVAILABLE_CALLEE)
            inv.caller.send_error(m.CALL, inv.call_request, uris.NO_AVAILABLE_CALLEE,
                                  [f"every callee of {inv.procedure!r} is unavailable"])
            return
        self._invoke(inv, nxt)

    def cancel(self, caller: Member, msg: list) -> None:
        """CANCEL: end a call early in the mode the caller asks (skip, kill, killnowait)."""
        request, options = msg[1], msg[2]
        mode = options.get("mode")
        if type(mode) is not str:
            mode = "killnowait"
        elif mode not in CANCEL_MODES:
            caller.send_error(m.CANCEL, request, uris.INVALID_ARGUMENT,
                              [f"unknown cancel mode {mode!r}"])
            return
        inv = caller.calls.get(request)
        if inv is None or inv.interrupted:
            return  # unknown, finished or already being canceled: ignored
        if mode == "kill" and self._interrupt(inv, mode):
            inv.interrupted = True  # the callee's answer ends the call
            return
        if mode == "killnowait":
            self._interrupt(inv, mode)
        self._close(inv, uris.CANCELED)
        caller.send_error(m.CALL, request, uris.CANCELED, ["call canceled by the caller"])

    # -- messages the transport could not send ---------------------------------------

    def invocation_undeliverable(self, callee: Member, invocation_id: int, error: str,
                                 reason: str) -> None:
        """An INVOCATION (or a chunk of one) could not be sent to ``callee``: the call
        ends with ``error`` for its caller, and the callee's part is canceled."""
        inv = callee.invocations.get(invocation_id)
        if inv is None:
            return
        self._interrupt(inv, "killnowait", error)  # it may have had earlier chunks
        self._close(inv, error)
        inv.caller.send_error(m.CALL, inv.call_request, error,
                              [f"the invocation of {inv.procedure!r} could not be sent to its "
                               f"callee: {reason}"])

    def result_undeliverable(self, caller: Member, request: int, error: str,
                             reason: str) -> None:
        """A RESULT or ERROR for ``caller``'s call ``request`` could not be sent: the call
        ends with ``error`` instead (a progressive call is canceled at its callee)."""
        inv = caller.calls.get(request)
        if inv is not None:  # a progressive result: the call is still open
            self._interrupt(inv, "killnowait", error)
            self._close(inv, error)
        caller.send_error(m.CALL, request, error,
                          [f"the answer to this call could not be sent: {reason}"])

    # -- sessions leaving ---------------------------------------------------------

    def detach(self, session: Member) -> None:
        """Clean up after ``session`` left: its calls, its invocations, its registrations."""
        for inv in list(session.calls.values()):
            # The caller is gone: stop the callee's work if it can be stopped.
            self._interrupt(inv, "killnowait", uris.CANCELED)
            self._close(inv, uris.CANCELED)
        for inv in list(session.invocations.values()):
            self._close(inv, uris.CANCELED)
            inv.caller.send_error(m.CALL, inv.call_request, uris.CANCELED,
                                  [f"the callee of {inv.procedure!r} left before answering"])
        for reg_id in list(session.registrations or ()):
            reg = self.registrations.get(reg_id)
            if reg is not None:
                self._remove_callee(reg, session)

    # -- queries (meta API) -------------------------------------------------------

    def lookup(self, uri: str, match: int) -> Registration | None:
        """The registration of ``uri`` with exactly this match policy."""
        return self.trie.get(uri, match)

    def match(self, uri: str) -> Registration | None:
        """The registration a CALL of ``uri`` would be routed to (exact, prefix, wildcard)."""
        return self.trie.match_best(uri)


if __name__ == "fastwamp.router.dealer":  # the interpreted module: use the compiled twin
    from .twins import compiled_twin

    globals().update(compiled_twin(__name__, ("Registration", "CallStats", "Invocation", "Dealer")))
