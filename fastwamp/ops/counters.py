"""What the metrics count, in plain integers, fed by the core's hooks (sans-I/O).

:func:`install_counters` puts a :class:`RouterCounters` on a router before any
client attaches: the realm pipeline's ``count`` hook counts messages received,
``Router.sent_counts`` messages queued for clients, ``Router.count_refusal``
the errors the router answers requests with, and one :class:`RealmCounters`
per realm observes its events (calls finished, publications, callees leaving
a registration).  Nothing is formatted here: the exposition reads these
numbers when it is scraped (:mod:`fastwamp.ops.exposition`).

Cardinality is bounded: series are keyed by a registration's or subscription's
URI and match policy (never the concrete URI called or published), error URIs
and callee session ids are labels only where noted, and each family keeps at
most ``series_max`` label sets; beyond that, new ones are summed up under the
label value :data:`OTHER`.  A callee's load-split series goes when it leaves
the registration.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..router.broker import Subscription
    from ..router.dealer import Invocation, Registration
    from ..router.member import Member
    from ..router.realm import Realm
    from ..router.router import Router
    from ..router.session import RouterSession

#: Upper bounds (seconds) of the call latency histogram's buckets (+Inf is implied).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)
#: Label value that sums up series beyond ``series_max``.
OTHER = "_other"
#: Message type codes are below this (the lists of counters by type are this long).
MESSAGE_CODES = 256


class CallSeries:
    """The calls of one registration (URI and match policy), in the life of the router."""

    __slots__ = ("calls", "buckets", "seconds")

    def __init__(self) -> None:
        self.calls = 0
        #: Calls per latency bucket (not cumulative; the last one is +Inf).
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.seconds = 0.0


class RealmCounters:
    """One realm's counters; an observer of its events (see the module docstring)."""

    def __init__(self, realm: Realm, series_max: int) -> None:
        self.realm = realm
        self.series_max = series_max
        #: (procedure, match) -> calls finished, latency histogram.
        self.calls: dict[tuple[str, str], CallSeries] = {}
        #: (procedure, match, error URI) -> calls that ended with that error.
        self.call_errors: dict[tuple[str, str, str], int] = {}
        #: (procedure, match, callee session id) -> calls finished by that callee, for
        #: registrations shared by several callees (removed when the callee leaves).
        self.invocations: dict[tuple[str, str, int], int] = {}
        #: (topic, match) -> EVENTs addressed to the subscribers of that subscription.
        self.events: dict[tuple[str, str], int] = {}
        #: (request type code, error URI) -> errors the router answered requests with.
        self.refusals: dict[tuple[int, str], int] = {}

    def _room(self, table: dict[Any, Any]) -> bool:
        return len(table) < self.series_max

    # -- realm events ----------------------------------------------------------

    def call_finished(self, inv: Invocation, error: str | None, duration: float) -> None:
        reg = inv.registration
        key = (reg.uri, reg.match_name)
        series = self.calls.get(key)
        if series is None:
            if not self._room(self.calls):
                key = (OTHER, OTHER)
                series = self.calls.get(key)
            if series is None:
                series = self.calls[key] = CallSeries()
        series.calls += 1
        if duration < 0.0:
            duration = 0.0
        series.buckets[bisect_left(LATENCY_BUCKETS, duration)] += 1
        series.seconds += duration
        if error is not None:
            errors = self.call_errors
            ekey = (key[0], key[1], error)
            if ekey not in errors and not self._room(errors):
                ekey = (OTHER, OTHER, OTHER)
            errors[ekey] = errors.get(ekey, 0) + 1
        callee = inv.callee
        if reg.policy_name != "single" and callee is not None:
            split = self.invocations
            ckey = (reg.uri, reg.match_name, callee.id)
            count = split.get(ckey)
            if count is not None:
                split[ckey] = count + 1
            elif self._room(split) and reg.id in self.realm.dealer.registrations:
                split[ckey] = 1

    def registration_removed(self, member: Member, reg: Registration, deleted: bool) -> None:
        self.invocations.pop((reg.uri, reg.match_name, member.id), None)

    def published(self, member: Member, topic: str, publication: int, payload: list,
                  options: dict[str, Any]) -> None:
        excluded = member.id if options.get("exclude_me") is not False else 0
        events = self.events
        for sub in self.realm.broker.trie.match_all(topic):
            subscribers = sub.subscribers
            n = len(subscribers)
            if excluded and excluded in subscribers:
                n -= 1
            if n > 0:
                self._count_events(events, sub, n)

    def _count_events(self, events: dict[tuple[str, str], int], sub: Subscription,
                      n: int) -> None:
        key = (sub.uri, sub.match_name)
        if key not in events and not self._room(events):
            key = (OTHER, OTHER)
        events[key] = events.get(key, 0) + n

    def refused(self, request_type: int, error: str) -> None:
        refusals = self.refusals
        key = (request_type, error)
        if key not in refusals and not self._room(refusals):
            key = (request_type, OTHER)
        refusals[key] = refusals.get(key, 0) + 1


class RouterCounters:
    """Every counter of one router (see the module docstring)."""

    def __init__(self, router: Router, series_max: int) -> None:
        self.router = router
        #: Messages received from established sessions (routed), by type code.
        self.received = [0] * MESSAGE_CODES
        #: Messages queued for client sessions, by type code.
        self.sent = [0] * MESSAGE_CODES
        self.realms = {name: RealmCounters(realm, series_max)
                       for name, realm in router.realms.items()}


def install_counters(router: Router, series_max: int) -> RouterCounters:
    """Start counting on ``router`` (call it before clients attach); return the counters."""
    counters = RouterCounters(router, series_max)
    received = counters.received

    def count(member: Member, code: int, msg: list) -> None:
        received[code] += 1

    for name, realm in router.realms.items():
        realm.count = count
        realm.events.add(counters.realms[name])
    router.sent_counts = counters.sent
    realms = counters.realms

    def count_refusal(session: RouterSession, request_type: int, error: str) -> None:
        realm = session.realm
        if realm is not None:
            realm_counters = realms.get(realm.name)
            if realm_counters is not None:
                realm_counters.refused(request_type, error)

    router.count_refusal = count_refusal
    return counters
