"""The counters in the sans-I/O core: what the dealer's CallStats and the realm's
observers count, and get_stats' per-registration figures for the console."""

from __future__ import annotations

from fastwamp.config import Config, RealmConfig
from fastwamp.ops.counters import install_counters
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m


def shared_registration(router, callees: int) -> tuple[list[LinkedPeer], int]:  # noqa: ANN001
    peers = [LinkedPeer(router) for _ in range(callees)]
    reg_id = 0
    for peer in peers:
        peer.hello()
        peer.send([m.REGISTER, 1, {"invoke": "roundrobin"}, "com.x"])
        reg_id = peer.take_one()[2]
    return peers, reg_id


def answer(callees: list[LinkedPeer], error: str | None = None) -> int:
    """The callee that got an INVOCATION answers it; its session id."""
    for callee in callees:
        for msg in callee.take():
            if msg[0] == m.INVOCATION:
                if error is None:
                    callee.send([m.YIELD, msg[1], {}])
                else:
                    callee.send([m.ERROR, m.INVOCATION, msg[1], {}, error])
                return callee.session.id
    raise AssertionError("no INVOCATION")


def test_call_stats_keep_their_series_across_registrations_and_callees():
    router, clock = make_router(Config(realms=[RealmConfig("realm1", admin_authroles=["anonymous"])]))
    counters = install_counters(router, series_max=2)
    callees, reg_id = shared_registration(router, 2)
    caller = LinkedPeer(router)
    caller.hello()
    for request, error in enumerate([None, None, "com.err.a", "com.err.b", "com.err.c"], 1):
        caller.send([m.CALL, request, {}, "com.x", []])
        answer(callees, error)
    stats = router.realms["realm1"].dealer.registrations[reg_id].stats
    assert stats.calls == 5 and sum(stats.buckets) == 5
    # series_max = 2: the third error URI is summed up under "_other".
    assert stats.errors == {"com.err.a": 1, "com.err.b": 1, "_other": 1}
    assert sorted(stats.callees.values()) == [2, 3]
    realm_counters = counters.realms["realm1"]
    for callee in callees:  # the registration goes with its last callee
        callee.disconnect()
    totals = realm_counters.calls()
    assert totals[("com.x", "exact")].calls == 5
    callees, reg_id = shared_registration(router, 1)  # registered again: the series goes on
    caller.send([m.CALL, 9, {}, "com.x", []])
    answer(callees)
    assert realm_counters.calls()[("com.x", "exact")].calls == 6
    assert counters.received.get(m.CALL) == 6 and counters.sent.get(m.INVOCATION) == 6


def test_get_stats_reports_per_registration_counters_for_the_console():
    router, clock = make_router(Config(realms=[RealmConfig("realm1", admin_authroles=["anonymous"])]))
    install_counters(router, series_max=100)
    callees, reg_id = shared_registration(router, 2)
    caller = LinkedPeer(router)
    caller.hello()
    for request in range(1, 5):
        caller.send([m.CALL, request, {}, "com.x", []])
        answer(callees, "com.err" if request == 4 else None)
        caller.take()
    caller.send([m.CALL, 10, {}, "fastwamp.router.get_stats", []])
    stats = caller.take_one()[3][0]
    assert stats["registrations"] == {str(reg_id): {
        "calls": 4, "errors": 1,
        "callees": {str(callees[0].session.id): 2, str(callees[1].session.id): 2}}}


def test_without_metrics_nothing_is_counted():
    router, clock = make_router(Config(realms=[RealmConfig("realm1", admin_authroles=["anonymous"])]))
    callees, reg_id = shared_registration(router, 1)
    assert router.realms["realm1"].dealer.registrations[reg_id].stats is None
    caller = LinkedPeer(router)
    caller.hello()
    caller.send([m.CALL, 1, {}, "fastwamp.router.get_stats", []])
    assert "registrations" not in caller.take_one()[3][0]
