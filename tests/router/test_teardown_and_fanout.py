"""Tearing down a session that holds many subscriptions, in slices; fan-out chunks.

A departed session's subscriptions beyond TEARDOWN_AT_ONCE go over later turns
of the loop: each turn removes at most TEARDOWN_SLICE, the departed session receives
nothing meanwhile, everyone else is served between slices, and in the end every
trace (trie, ids, meta events) is gone as with a teardown in one piece.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from fastwamp.config import Config, RealmConfig
from fastwamp.router.broker import TEARDOWN_AT_ONCE, TEARDOWN_SLICE
from fastwamp.router.router import Router
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m

_requests = itertools.count(1000)

HELD = max(3 * TEARDOWN_SLICE, TEARDOWN_AT_ONCE) + 7


def rid() -> int:
    return next(_requests)


def make(**realm):
    config = Config(realms=[RealmConfig("realm1", max_subscriptions_per_session=HELD + 10,
                                        **realm)])
    router, clock = make_router(config)

    def peer() -> LinkedPeer:
        p = LinkedPeer(router)
        assert p.hello()[0] == m.WELCOME
        return p

    return router, clock, peer


def hold(p: LinkedPeer, n: int = HELD, prefix: str = "com.t") -> None:
    for i in range(n):
        p.session.receive([m.SUBSCRIBE, rid(), {}, f"{prefix}{i}"])
    p.router.flush()
    assert len(p.take()) == n


def held_by(broker, member) -> int:
    return sum(1 for sub in broker.subscriptions.values() if member.id in sub.subscribers)


def call_through(callee: LinkedPeer, caller: LinkedPeer, procedure: str) -> None:
    caller.send([m.CALL, rid(), {}, procedure, [1]])
    inv = callee.take_one()
    assert inv[0] == m.INVOCATION
    callee.send([m.YIELD, inv[1], {}, [2]])
    assert caller.take_one()[0] == m.RESULT


def test_a_large_session_is_torn_down_in_slices_and_others_are_served():
    router, clock, peer = make()
    broker = router.realms["realm1"].broker
    holder, other = peer(), peer()
    hold(holder)
    other.send([m.SUBSCRIBE, rid(), {}, "com.t5"])  # shares one of the holder's topics
    shared_id = other.take_one()[2]
    callee, caller = peer(), peer()
    callee.send([m.REGISTER, rid(), {}, "com.ping"])
    callee.take()
    member = holder.session.member

    holder.disconnect()
    # One slice at once (com.t5, shared, may be in it and stays).
    assert len(broker.subscriptions) - HELD + TEARDOWN_SLICE in (0, 1)
    turns = 0
    while len(broker.subscriptions) > 1:
        left = len(broker.subscriptions)
        call_through(callee, caller, "com.ping")  # served between slices
        pub = peer()
        pub.send([m.PUBLISH, rid(), {}, "com.t5", ["between"]])
        assert [e[4] for e in other.take()] == [["between"]]
        assert clock.step()
        turns += 1
        assert left - len(broker.subscriptions) <= TEARDOWN_SLICE
    assert turns >= (HELD - 1) // TEARDOWN_SLICE
    assert holder.received == [] and held_by(broker, member) == 0
    assert not member.subscriptions
    # The shared topic's subscription stays (same id) with its other subscriber.
    assert list(broker.subscriptions) == [shared_id]
    assert not clock.step()


def test_a_departed_session_receives_nothing_while_its_slices_are_pending():
    router, clock, peer = make(admin_authroles=["anonymous"])
    victim, admin, pub = peer(), peer(), peer()
    hold(victim)
    admin.send([m.CALL, rid(), {}, "wamp.session.kill", [victim.session.id]])
    assert admin.take_one()[0] == m.RESULT
    assert victim.take_one()[0] == m.GOODBYE  # CLOSING: waits for the GOODBYE reply
    broker = router.realms["realm1"].broker
    assert held_by(broker, victim.session.member) > 0
    topic = next(s.uri for s in broker.subscriptions.values()
                 if victim.session.id in s.subscribers)
    pub.send([m.PUBLISH, rid(), {}, topic, ["late"]])
    assert victim.take() == []
    victim.send([m.GOODBYE, {}, "wamp.close.goodbye_and_out"])
    assert victim.closed
    clock.advance(0)
    assert not broker.subscriptions


def test_sliced_teardown_raises_every_meta_event():
    router, clock, peer = make()
    watcher = peer()
    for topic in ("wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete"):
        watcher.send([m.SUBSCRIBE, rid(), {}, topic])
    watcher.take()
    holder = peer()
    hold(holder)
    holder_id = holder.session.id
    holder.disconnect()
    clock.advance(0)
    events = watcher.take()
    unsubscribed = [e for e in events if e[3] == {} and len(e) > 4]
    assert len(unsubscribed) == 2 * HELD
    assert all(e[4][0] == holder_id for e in unsubscribed)
    broker = router.realms["realm1"].broker
    assert set(broker.subscriptions) == {s.id for s in broker.subscriptions.values()
                                         if s.uri.startswith("wamp.")}
    assert len(broker._ids._used) == len(broker.subscriptions)


def test_a_new_subscriber_of_a_lingering_topic_keeps_its_subscription():
    router, clock, peer = make()
    broker = router.realms["realm1"].broker
    holder = peer()
    hold(holder)
    holder.disconnect()
    lingering = next(s for s in broker.subscriptions.values()
                     if holder.session.id in s.subscribers)
    newcomer = peer()
    newcomer.send([m.SUBSCRIBE, rid(), {}, lingering.uri])
    assert newcomer.take_one()[2] == lingering.id  # joins the lingering subscription
    clock.advance(0)
    assert list(broker.subscriptions) == [lingering.id]
    assert list(lingering.subscribers) == [newcomer.session.id]
    pub = peer()
    pub.send([m.PUBLISH, rid(), {}, lingering.uri, ["x"]])
    assert [e[4] for e in newcomer.take()] == [["x"]]


def test_without_a_loop_the_teardown_is_done_at_once():
    config = Config(realms=[RealmConfig("realm1", max_subscriptions_per_session=HELD + 10)])
    router = Router(config)  # bare core: no scheduler, no later turns
    holder = LinkedPeer(router)
    holder.hello()
    hold(holder)
    holder.disconnect()
    assert not router.realms["realm1"].broker.subscriptions


def test_within_the_default_cap_the_teardown_is_done_at_once():
    router, clock, peer = make()
    holder = peer()
    hold(holder, TEARDOWN_AT_ONCE)
    holder.disconnect()
    assert not router.realms["realm1"].broker.subscriptions


@pytest.mark.parametrize("how", ["goodbye", "abort"])
def test_leaving_by_goodbye_or_abort_is_sliced_too(how):
    router, clock, peer = make()
    holder = peer()
    hold(holder)
    if how == "goodbye":
        holder.send([m.GOODBYE, {}, "wamp.close.close_realm"])
        assert holder.take_one()[0] == m.GOODBYE
    else:
        holder.send([m.ABORT, {}, "com.bye"])
    broker = router.realms["realm1"].broker
    assert 0 < len(broker.subscriptions) < HELD
    clock.advance(0)
    assert not broker.subscriptions and holder.take() == []


def test_a_fanout_turn_serves_at_most_one_chunk(set_broker_constant):
    set_broker_constant("FANOUT_CHUNK", 3)
    router, clock = make_router(Config(realms=[RealmConfig("realm1")]))
    subs = []
    for _ in range(7):
        s = LinkedPeer(router)
        s.hello()
        s.send([m.SUBSCRIBE, rid(), {}, "com.big"])
        s.take()
        subs.append(s)
    pub = LinkedPeer(router)
    pub.hello()
    pub.send([m.PUBLISH, rid(), {}, "com.big", ["e"]])
    assert pub.input_paused and not any(s.received for s in subs)
    served = []
    while clock.step():
        served.append(sum(1 for s in subs if s.received))
    assert served == [3, 6, 7] and not pub.input_paused



def test_a_mass_disconnect_logs_a_bounded_number_of_lines(caplog):
    router, clock, peer = make()
    peers = [peer() for _ in range(200)]
    with caplog.at_level(logging.INFO, logger="fastwamp.session"):
        for p in peers:
            p.disconnect()
    lost = [r for r in caplog.records if "connection lost without GOODBYE" in r.getMessage()]
    assert len(lost) <= 41  # a router-wide budget (bursts of 40 lines), not one per session
    assert not router.realms["realm1"].sessions
