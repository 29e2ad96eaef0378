"""What the metrics count, in plain integers, fed by the core (sans-I/O).

:func:`install_counters` turns counting on for a router before any client
attaches: ``Realm.received_counts`` counts messages dispatched by type,
``Router.sent_counts`` messages queued for clients, ``Router.count_refusal`` the
errors the router answers requests with, and ``Dealer.call_stats_limit`` makes
each new registration count its calls in the compiled dealer
(:class:`~fastwamp.router.dealer.CallStats`: calls, a duration histogram, error
URIs, the callee that answered).  One :class:`RealmCounters` per realm observes
its events: publications (events by subscription) and callees leaving a
registration (their load-split series go; a deleted registration's counts are
kept under its URI and match policy, so a service that registers again
continues its series).  Nothing is formatted here: the exposition reads these
numbers when it is scraped (:mod:`fastwamp.ops.exposition`).

Cardinality is bounded: series are keyed by a registration's or subscription's
URI and match policy (never the concrete URI called or published), and each
family keeps at most ``series_max`` label sets (error URIs and callees: per
registration); beyond that, new ones are summed up under :data:`OTHER`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..router.dealer import CALL_DURATION_BUCKETS, OTHER
from ..router.member import MessageCounts

if TYPE_CHECKING:
    from ..router.broker import Subscription
    from ..router.dealer import Registration
    from ..router.member import Member
    from ..router.realm import Realm
    from ..router.router import Router
    from ..router.session import RouterSession

__all__ = ["CALL_DURATION_BUCKETS", "OTHER", "CallTotals", "RealmCounters", "RouterCounters",
           "install_counters"]

class CallTotals:
    """The calls of one registration URI and match policy, summed over registrations."""

    __slots__ = ("calls", "seconds", "buckets", "errors")

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(CALL_DURATION_BUCKETS) + 1)
        self.errors: dict[str, int] = {}

    def add(self, stats: Any) -> None:
        """Add a registration's CallStats (or another CallTotals)."""
        self.calls += stats.calls
        self.seconds += stats.seconds
        self.buckets = [a + b for a, b in zip(self.buckets, stats.buckets, strict=True)]
        for error, n in stats.errors.items():
            self.errors[error] = self.errors.get(error, 0) + n


class RealmCounters:
    """One realm's counters; an observer of its events (see the module docstring)."""

    def __init__(self, realm: Realm, series_max: int) -> None:
        self.realm = realm
        self.series_max = series_max
        #: (procedure, match) -> the calls of registrations deleted since.
        self.retired: dict[tuple[str, str], CallTotals] = {}
        #: (topic, match) -> EVENTs addressed to the subscribers of that subscription.
        self.events: dict[tuple[str, str], int] = {}
        #: (request type code, error URI) -> errors the router answered requests with.
        self.refusals: dict[tuple[int, str], int] = {}

    def _room(self, table: dict[Any, Any]) -> bool:
        return len(table) < self.series_max

    def calls(self) -> dict[tuple[str, str], CallTotals]:
        """(procedure, match) -> calls of every registration since the start (scrape time)."""
        totals: dict[tuple[str, str], CallTotals] = {}
        for key, retired in self.retired.items():
            totals[key] = CallTotals()
            totals[key].add(retired)
        for reg in self.realm.dealer.registrations.values():
            if reg.stats is not None:
                key = (reg.uri, reg.match_name)
                total = totals.get(key)
                if total is None:
                    total = totals[key] = CallTotals()
                total.add(reg.stats)
        return totals

    # -- realm events ----------------------------------------------------------

    def registration_removed(self, member: Member, reg: Registration, deleted: bool) -> None:
        stats = reg.stats
        if stats is None:
            return
        stats.callees.pop(member.id, None)
        if deleted and stats.calls:
            key = (reg.uri, reg.match_name)
            retired = self.retired
            if key not in retired and not self._room(retired):
                key = (OTHER, OTHER)
            total = retired.get(key)
            if total is None:
                total = retired[key] = CallTotals()
            total.add(stats)

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
        self.received = MessageCounts()
        #: Messages queued for client sessions, by type code.
        self.sent = MessageCounts()
        self.realms = {name: RealmCounters(realm, series_max)
                       for name, realm in router.realms.items()}


def install_counters(router: Router, series_max: int) -> RouterCounters:
    """Start counting on ``router`` (call it before clients attach); return the counters."""
    counters = RouterCounters(router, series_max)
    for name, realm in router.realms.items():
        realm.received_counts = counters.received
        realm.dealer.call_stats_limit = series_max
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
