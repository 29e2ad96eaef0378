"""Hostile input at the core: each defect class of the hardening issue, at the lowest layer
that shows it.  A bystander caller/callee pair must keep working after each case."""

from __future__ import annotations

import logging

import pytest

from fastwamp.config import Config, RealmConfig, config_from_dict
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

_requests = iter(range(1000, 10**9))


def rid() -> int:
    return next(_requests)


def make(config: Config | None = None):
    router, clock = make_router(config or Config(realms=[RealmConfig("realm1")]))

    def peer(**kwargs) -> LinkedPeer:
        p = LinkedPeer(router, **kwargs)
        assert p.hello()[0] == m.WELCOME
        return p

    return router, clock, peer


def call(p: LinkedPeer, procedure: str, args=None, kwargs=None, options=None) -> list:
    msg = [m.CALL, rid(), options or {}, procedure]
    if args is not None or kwargs is not None:
        msg.append(args if args is not None else [])
    if kwargs is not None:
        msg.append(kwargs)
    p.send(msg)
    out = p.take()
    assert len(out) == 1 and out[0][0] in (m.RESULT, m.ERROR), out
    return out[0]


def request(p: LinkedPeer, msg: list) -> list:
    p.send(msg)
    out = p.take()
    assert len(out) == 1, out
    return out[0]


def check_bystanders(peer) -> None:
    """A fresh callee and caller still get a call through."""
    callee, caller = peer(), peer()
    procedure = f"com.bystander.p{rid()}"
    assert request(callee, [m.REGISTER, rid(), {}, procedure])[0] == m.REGISTERED
    caller.send([m.CALL, 7, {}, procedure, [1]])
    inv = callee.take_one()
    assert inv[0] == m.INVOCATION
    callee.send([m.YIELD, inv[1], {}, [2]])
    assert caller.take_one() == [m.RESULT, 7, {}, [2]]


# -- isolation ---------------------------------------------------------------------


class ExplodingPeer(LinkedPeer):
    def send_messages(self, msgs: list[list]) -> None:
        raise RuntimeError("transport bug")


def test_a_sink_that_raises_is_closed_and_others_are_served():
    router, clock, peer = make()
    monitor = peer()
    assert request(monitor, [m.SUBSCRIBE, rid(), {}, "com.news"])[0] == m.SUBSCRIBED
    bad = ExplodingPeer(router)
    bad.send([m.HELLO, "realm1", {"roles": {"subscriber": {}}}])  # WELCOME delivery raises
    assert bad.closed
    late = peer()
    assert request(late, [m.SUBSCRIBE, rid(), {}, "com.news"])[0] == m.SUBSCRIBED
    pub = peer()
    pub.send([m.PUBLISH, rid(), {}, "com.news", [1]])
    assert monitor.take_one()[0] == m.EVENT and late.take_one()[0] == m.EVENT
    check_bystanders(peer)


@pytest.mark.parametrize(
    ("procedure", "args", "kwargs"),
    [
        ("wamp.registration.lookup", ["com.x", ["not", "a", "dict"]], None),
        ("wamp.subscription.lookup", [{"not": "a str"}], None),
        ("wamp.registration.match", [12], None),
        ("wamp.session.get", [[1, 2]], None),
        ("wamp.session.count", [{"a": 1}], None),
        ("wamp.session.list", [[1, 2, 3]], None),
        ("wamp.session.add_testament", ["com.t", [], {}, ["opts"]], None),
        ("wamp.session.add_testament", ["com.t", [], {}, {"eligible": "x"}], None),
        ("wamp.session.flush_testaments", [["destroyed"]], None),
        ("wamp.subscription.get_events", [1], {"from_publication": [1]}),
        ("wamp.registration.get", [], {"unknown_kw": 1}),
        ("fastwamp.router.get_stats", [1, 2, 3], None),
    ],
)
def test_meta_procedures_answer_wrong_argument_types_with_an_error(procedure, args, kwargs):
    # A trusted role: the others would not reach the argument checks of get, list, ...
    router, clock, peer = make(Config(realms=[RealmConfig("realm1",
                                                          admin_authroles=["anonymous"])]))
    monitor = peer()
    assert request(monitor, [m.SUBSCRIBE, rid(), {}, "wamp.session.on_join"])[0] == m.SUBSCRIBED
    caller = peer()
    monitor.take()
    reply = call(caller, procedure, args, kwargs)
    assert reply[0] == m.ERROR
    assert reply[4] in (uris.INVALID_ARGUMENT, uris.NO_SUCH_SUBSCRIPTION,
                        uris.NO_SUCH_REGISTRATION), reply
    # The session queued behind the router's own in that flush still receives.
    newcomer = peer()
    assert monitor.take_one()[4][0]["session"] == newcomer.session.id
    check_bystanders(peer)


def test_meta_filter_lists_are_capped():
    router, clock, peer = make()
    caller = peer()
    reply = call(caller, "wamp.session.count", [["anonymous"] * 1_000_001])
    assert reply[4] == uris.INVALID_ARGUMENT and "max_list_length" in reply[5][0]
    assert call(caller, "wamp.session.count", [["anonymous", "x"]])[3] == [1]


def test_absurd_call_timeout_is_invalid_argument():
    router, clock, peer = make()
    callee, caller = peer(), peer()
    request(callee, [m.REGISTER, rid(), {}, "com.p"])
    for timeout in (2**40, 2**70, -1):
        reply = call(caller, "com.p", options={"timeout": timeout})
        assert reply[4] == uris.INVALID_ARGUMENT, reply
    assert callee.take() == []


# -- every call is answered ----------------------------------------------------------


def test_invocation_that_cannot_be_sent_ends_the_call():
    router, clock, peer = make()
    callee, caller = peer(), peer()
    request(callee, [m.REGISTER, rid(), {}, "com.p"])
    caller.send([m.CALL, 5, {}, "com.p", ["x" * 100]])
    inv = callee.take_one()
    callee.session.undeliverable(inv, uris.PAYLOAD_SIZE_EXCEEDED, "too large")
    router.flush()
    err = caller.take_one()
    assert err[:5] == [m.ERROR, m.CALL, 5, {}, uris.PAYLOAD_SIZE_EXCEEDED]
    assert callee.take()[0][0] == m.INTERRUPT
    assert not caller.session.member.calls and not callee.session.member.invocations
    callee.send([m.YIELD, inv[1], {}, []])  # a late answer is dropped
    assert caller.take() == []


def test_result_that_cannot_be_sent_becomes_an_error():
    router, clock, peer = make()
    callee, caller = peer(), peer()
    request(callee, [m.REGISTER, rid(), {}, "com.p"])
    caller.send([m.CALL, 5, {}, "com.p"])
    inv = callee.take_one()
    callee.send([m.YIELD, inv[1], {}, [{"huge": "x"}]])
    result = caller.take_one()
    caller.session.undeliverable(result, uris.UNENCODABLE, "cannot encode")
    router.flush()
    assert caller.take_one()[:5] == [m.ERROR, m.CALL, 5, {}, uris.UNENCODABLE]
    # The replacement ERROR failing too ends there (no loop).
    caller.session.undeliverable([m.ERROR, m.CALL, 5, {}, uris.UNENCODABLE, ["x"]],
                                 uris.UNENCODABLE, "again")
    router.flush()
    assert caller.take() == []
    assert router.stats["undeliverable_messages"] == 2


def test_progressive_result_that_cannot_be_sent_cancels_the_call():
    router, clock, peer = make()
    callee, caller = peer(), peer()
    request(callee, [m.REGISTER, rid(), {}, "com.p"])
    caller.send([m.CALL, 5, {"receive_progress": True}, "com.p"])
    inv = callee.take_one()
    callee.send([m.YIELD, inv[1], {"progress": True}, [1]])
    progress = caller.take_one()
    caller.session.undeliverable(progress, uris.PAYLOAD_SIZE_EXCEEDED, "too large")
    router.flush()
    assert caller.take_one()[4] == uris.PAYLOAD_SIZE_EXCEEDED
    assert callee.take_one()[0] == m.INTERRUPT
    callee.send([m.YIELD, inv[1], {}, [2]])
    assert caller.take() == []


def test_undeliverable_welcome_or_reply_aborts_the_session():
    router, clock, peer = make()
    p = LinkedPeer(router)
    welcome = p.hello()
    p.session.undeliverable(welcome, uris.PAYLOAD_SIZE_EXCEEDED, "too large")
    router.flush()
    abort = p.take_one()
    assert abort[0] == m.ABORT and abort[2] == uris.PAYLOAD_SIZE_EXCEEDED and p.closed
    q = peer()
    reply = request(q, [m.SUBSCRIBE, rid(), {}, "com.t"])
    q.session.undeliverable(reply, uris.UNENCODABLE, "cannot encode")
    router.flush()
    assert q.take_one()[0] == m.ABORT and q.closed
    check_bystanders(peer)


def test_undeliverable_event_is_counted():
    router, clock, peer = make()
    sub, pub = peer(), peer()
    request(sub, [m.SUBSCRIBE, rid(), {}, "com.t"])
    pub.send([m.PUBLISH, rid(), {}, "com.t", [1]])
    event = sub.take_one()
    sub.session.undeliverable(event, uris.UNENCODABLE, "cannot encode")
    assert router.stats["undeliverable_events"] == 1


# -- reserved namespaces -----------------------------------------------------------------


def test_patterns_never_capture_reserved_calls():
    router, clock, peer = make()
    thief, caller = peer(), peer()
    for uri, match in (("", "prefix"), ("wam", "prefix"), ("fast", "prefix"),
                       (".session.count", "wildcard"), (".session.nothing", "wildcard")):
        reply = request(thief, [m.REGISTER, rid(), {"match": match}, uri])
        assert reply[0] == m.REGISTERED, reply
    for uri in ("wamp.session.nothing", "fastwamp.router.nothing"):
        assert call(caller, uri)[4] == uris.NO_SUCH_PROCEDURE
    assert call(caller, "wamp.session.count")[0] == m.RESULT
    assert thief.take() == []
    for uri in ("wamp.x", "fastwamp.x", "fastwamp"):
        assert request(thief, [m.REGISTER, rid(), {}, uri])[4] == uris.NOT_AUTHORIZED


def test_patterns_never_capture_reserved_events():
    router, clock, peer = make()
    thief, monitor = peer(), peer()
    request(thief, [m.SUBSCRIBE, rid(), {"match": "prefix"}, ""])
    request(thief, [m.SUBSCRIBE, rid(), {"match": "wildcard"}, ".session.on_join"])
    request(monitor, [m.SUBSCRIBE, rid(), {"match": "prefix"}, "wamp.session."])
    newcomer = peer()
    assert thief.take() == []
    assert monitor.take_one()[4][0]["session"] == newcomer.session.id
    pub = peer()
    reply = request(pub, [m.PUBLISH, rid(), {"acknowledge": True}, "fastwamp.session.on_overflow"])
    assert reply[4] == uris.NOT_AUTHORIZED


def test_testaments_cannot_target_reserved_topics():
    router, clock, peer = make()
    p = peer()
    for topic in ("wamp.session.on_leave", "fastwamp.session.on_overflow"):
        reply = call(p, "wamp.session.add_testament", [topic, [1], {}])
        assert reply[4] == uris.NOT_AUTHORIZED


# -- limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        ([m.SUBSCRIBE, 1, {"match": "wildcard"}, "." * 200_000], uris.INVALID_URI),
        ([m.REGISTER, 1, {"match": "wildcard"}, "." * 200_000], uris.INVALID_URI),
        ([m.SUBSCRIBE, 1, {}, "a" * 1025], uris.INVALID_URI),
        ([m.REGISTER, 1, {}, ".".join(["a"] * 65)], uris.INVALID_URI),
        ([m.CALL, 1, {}, ".".join(["a"] * 200_000)], uris.INVALID_URI),
        ([m.PUBLISH, 1, {"acknowledge": True}, ".".join(["a"] * 200_000)], uris.INVALID_URI),
    ],
)
def test_uri_limits(msg, error):
    router, clock, peer = make()
    p = peer()
    reply = request(p, msg)
    assert reply[0] == m.ERROR and reply[4] == error
    assert len(str(reply)) < 2000  # the URI is not echoed in full
    check_bystanders(peer)


def test_registrations_and_subscriptions_per_session():
    config = Config(realms=[RealmConfig("realm1", max_registrations_per_session=2,
                                        max_subscriptions_per_session=2)])
    router, clock, peer = make(config)
    p = peer()
    for i in range(2):
        assert request(p, [m.REGISTER, rid(), {}, f"com.p{i}"])[0] == m.REGISTERED
        assert request(p, [m.SUBSCRIBE, rid(), {}, f"com.t{i}"])[0] == m.SUBSCRIBED
    assert request(p, [m.REGISTER, rid(), {}, "com.p9"])[4] == uris.LIMIT_EXCEEDED
    assert request(p, [m.SUBSCRIBE, rid(), {}, "com.t9"])[4] == uris.LIMIT_EXCEEDED
    assert request(p, [m.SUBSCRIBE, rid(), {}, "com.t0"])[0] == m.SUBSCRIBED  # already held
    other = peer()
    assert request(other, [m.SUBSCRIBE, rid(), {}, "com.t9"])[0] == m.SUBSCRIBED


def test_publish_list_options_are_capped():
    config = Config(realms=[RealmConfig("realm1", max_list_length=3)])
    router, clock, peer = make(config)
    p = peer()
    reply = request(p, [m.PUBLISH, rid(), {"acknowledge": True, "eligible": [1, 2, 3, 4]},
                        "com.t"])
    assert reply[4] == uris.INVALID_ARGUMENT
    reply = request(p, [m.PUBLISH, rid(), {"acknowledge": True, "exclude_authid": ["a"] * 3},
                        "com.t"])
    assert reply[0] == m.PUBLISHED


def test_sessions_per_realm():
    config = Config(realms=[RealmConfig("realm1", max_sessions=2)])
    router, clock, peer = make(config)
    peer(), peer()
    third = LinkedPeer(router)
    abort = third.hello()
    assert abort[0] == m.ABORT and abort[2] == uris.LIMIT_EXCEEDED and third.closed


def test_retained_events_are_bounded_in_bytes():
    config = Config(realms=[RealmConfig("realm1", retained_bytes_max=10_000)])
    router, clock, peer = make(config)
    p = peer()
    for i in range(50):
        p.send([m.PUBLISH, rid(), {"retain": True}, f"com.t{i}", ["x" * 1000]])
    broker = router.realms["realm1"].broker
    assert 0 < broker.retained_bytes <= 10_000
    assert "com.t49" in broker.retained and "com.t0" not in broker.retained
    # An event larger than the whole budget is not kept, and costs nothing.
    p.send([m.PUBLISH, rid(), {"retain": True}, "com.big", ["x" * 20_000]])
    assert "com.big" not in broker.retained and broker.retained_bytes <= 10_000
    # A huge eligible list counts too.
    p.send([m.PUBLISH, rid(), {"retain": True, "eligible": list(range(1, 1000))}, "com.f",
            []])
    assert broker.retained_bytes <= 10_000


def test_testaments_are_bounded():
    config = Config(realms=[RealmConfig("realm1", testaments_per_session=3,
                                        testament_bytes_per_session=5_000)])
    router, clock, peer = make(config)
    p = peer()
    assert call(p, "wamp.session.add_testament", ["com.t", ["x" * 6000], {}])[4] == \
        uris.LIMIT_EXCEEDED
    for _ in range(3):
        assert call(p, "wamp.session.add_testament", ["com.t", ["x"], {}])[0] == m.RESULT
    assert call(p, "wamp.session.add_testament", ["com.t", ["x"], {}])[4] == \
        uris.LIMIT_EXCEEDED
    assert call(p, "wamp.session.flush_testaments", [])[0] == m.RESULT
    assert p.session.member.testament_bytes == 0
    assert call(p, "wamp.session.add_testament", ["com.t", ["x"], {}])[0] == m.RESULT


def test_history_is_bounded_in_bytes():
    config = config_from_dict({"realms": [{
        "name": "realm1", "history_bytes_max": 20_000,
        "event_history": [{"uri": "com.a", "limit": 1000}, {"uri": "com.b", "limit": 1000}]}]})
    router, clock, peer = make(config)
    p = peer()
    for i in range(100):
        p.send([m.PUBLISH, rid(), {}, "com.a" if i % 2 else "com.b", ["x" * 500]])
    history = router.realms["realm1"].history
    assert history is not None and 0 < history.bytes <= 20_000
    kept = [len(r.events) for r in history.rules.values()]
    assert all(kept) and sum(kept) < 100


def test_fanout_beyond_a_turn_pauses_the_publisher(set_broker_constant):
    set_broker_constant("FANOUT_CHUNK", 4)
    set_broker_constant("TURN_EVENTS", 4)
    router, clock, peer = make()
    subs = [peer() for _ in range(3)]
    for s in subs:
        request(s, [m.SUBSCRIBE, rid(), {}, "com.t"])
    clock.advance(0)
    pub, other = peer(), peer()
    pub.send([m.PUBLISH, rid(), {}, "com.t", [1]])  # 3 receivers: within this turn's room
    assert not pub.input_paused and all(len(s.take()) == 1 for s in subs)
    pub.send([m.PUBLISH, rid(), {}, "com.t", [2]])  # over the room: queued, publisher paused
    assert pub.input_paused and all(s.take() == [] for s in subs)
    other.send([m.PUBLISH, rid(), {}, "com.t", [3]])  # queued behind it, in order
    assert other.input_paused
    broker = router.realms["realm1"].broker
    assert broker.backlog_bytes > 0
    while pub.input_paused:  # next turns: the first queued publication goes out first
        assert other.input_paused and clock.step()
    clock.advance(0)  # the following turns: the rest
    assert broker.backlog_bytes == 0 and not other.input_paused
    assert all([e[4] for e in s.take()] == [[2], [3]] for s in subs)
    pub.disconnect()  # a paused publisher that leaves is forgotten
    assert not broker._paused_publishers


def test_teardown_of_a_session_with_many_routes():
    router, clock, peer = make()
    p = peer()
    for i in range(1000):
        p.session.receive([m.SUBSCRIBE, rid(), {}, f"com.t{i}"])
        p.session.receive([m.REGISTER, rid(), {}, f"com.p{i}"])
    router.flush()
    p.disconnect()
    realm = router.realms["realm1"]
    assert not realm.broker.subscriptions
    assert all(r.uri.startswith(("wamp.", "fastwamp.")) for r in realm.dealer.registrations.values())
    check_bystanders(peer)


# -- logging ------------------------------------------------------------------------


def test_client_text_cannot_forge_log_lines(caplog):
    router, clock, peer = make()
    p = peer()
    with caplog.at_level(logging.INFO, logger="fastwamp"):
        p.send([m.ABORT, {"message": "bye\nCRITICAL forged line"}, "com.x\nforged"])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "forged" in text and "\nCRITICAL" not in text and "\nforged" not in text


def test_bad_input_logging_is_rate_limited(caplog):
    router, clock, peer = make()
    p = peer()
    with caplog.at_level(logging.INFO, logger="fastwamp"):
        for _ in range(1000):
            p.send([m.PUBLISH, rid(), {}, "bad uri#"])
    lines = [r for r in caplog.records if "invalid topic" in r.getMessage()]
    assert 1 <= len(lines) <= 20
