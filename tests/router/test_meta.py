"""Meta API: meta events, meta procedures and testaments."""

from __future__ import annotations

import pytest

from fastwamp.wamp import messages as m

_requests = iter(range(100, 10**6))


def call(p, procedure, args=None, kwargs=None):
    msg = [m.CALL, next(_requests), {}, procedure]
    if args is not None or kwargs is not None:
        msg.append(args or [])
    if kwargs is not None:
        msg.append(kwargs)
    p.send(msg)
    reply = p.take_one()
    assert reply[0] in (m.RESULT, m.ERROR), reply
    return reply


def subscribe(p, topic, request):
    p.send([m.SUBSCRIBE, request, {}, topic])
    reply = p.take_one()
    assert reply[0] == m.SUBSCRIBED, reply
    return reply[2]


def test_session_meta_events(peer):
    monitor = peer()
    subscribe(monitor, "wamp.session.on_join", 1)
    subscribe(monitor, "wamp.session.on_leave", 2)
    p = peer()
    ev = monitor.take_one()
    details = ev[4][0]
    assert details["session"] == p.session.id and details["authrole"] == "anonymous"
    p.disconnect()
    ev = monitor.take_one()
    assert ev[4] == [p.session.id, p.session.authid, "anonymous"]


def test_registration_meta_events_in_order(peer):
    monitor = peer()
    topics = ["on_create", "on_register", "on_unregister", "on_delete"]
    subs = {subscribe(monitor, f"wamp.registration.{t}", i): t for i, t in enumerate(topics, 1)}
    callee = peer()
    callee.send([m.REGISTER, 1, {"invoke": "roundrobin"}, "com.p"])
    reg = callee.take_one()[2]
    events = monitor.take()
    assert [subs[e[1]] for e in events] == ["on_create", "on_register"]
    assert events[0][4][0] == callee.session.id
    assert events[0][4][1]["uri"] == "com.p" and events[0][4][1]["invoke"] == "roundrobin"
    assert events[1][4] == [callee.session.id, reg]
    callee.disconnect()
    events = monitor.take()
    assert [subs[e[1]] for e in events] == ["on_unregister", "on_delete"]
    assert events[1][4] == [callee.session.id, reg]


def test_subscription_meta_events(peer):
    monitor = peer()
    topics = ["on_create", "on_subscribe", "on_unsubscribe", "on_delete"]
    subs = {subscribe(monitor, f"wamp.subscription.{t}", i): t for i, t in enumerate(topics, 1)}
    s = peer()
    sid = subscribe(s, "com.t", 1)
    events = monitor.take()
    assert [subs[e[1]] for e in events] == ["on_create", "on_subscribe"]
    s.send([m.UNSUBSCRIBE, 2, sid])
    s.take()
    events = monitor.take()
    assert [subs[e[1]] for e in events] == ["on_unsubscribe", "on_delete"]


def test_session_procedures(admin_config, peer):
    a, b = peer(), peer()
    assert call(a, "wamp.session.count")[3] == [2]
    assert sorted(call(a, "wamp.session.list")[3][0]) == sorted([a.session.id, b.session.id])
    assert call(a, "wamp.session.count", [["nobody"]])[3] == [0]
    got = call(a, "wamp.session.get", [b.session.id])[3][0]
    assert got["session"] == b.session.id and got["authid"] == b.session.authid
    err = call(a, "wamp.session.get", [12345])
    assert err[0] == m.ERROR and err[4] == "wamp.error.no_such_session"


@pytest.fixture
def admin_config(config):
    """realm1 with every (anonymous) session trusted with the whole meta API (kill,
    get, list, ...: by default only the public meta procedures)."""
    config.realms[0].admin_authroles = ["anonymous"]
    return config


def test_kill_refused_to_roles_not_admin(peer):
    a, b = peer(), peer()
    for procedure, args in (("wamp.session.kill", [b.session.id]),
                            ("wamp.session.kill_by_authid", [b.session.authid]),
                            ("wamp.session.kill_by_authrole", ["anonymous"]),
                            ("wamp.session.kill_all", [])):
        assert call(a, procedure, args)[4] == "wamp.error.not_authorized", procedure
    assert not b.closed and b.take() == []


def test_session_kill(admin_config, peer):
    a, b, c = peer(), peer(), peer()
    assert call(a, "wamp.session.kill", [a.session.id])[4] == "wamp.error.no_such_session"
    assert call(a, "wamp.session.kill", [b.session.id], {"reason": "bad uri!"})[4] == \
        "wamp.error.invalid_uri"
    reply = call(a, "wamp.session.kill", [b.session.id], {"message": "bye"})
    assert reply[0] == m.RESULT
    assert b.take_one() == [m.GOODBYE, {"message": "bye"}, "wamp.close.killed"]
    b.send([m.GOODBYE, {}, "wamp.close.goodbye_and_out"])
    assert b.closed
    assert call(a, "wamp.session.kill_by_authrole", ["anonymous"])[3] == [1]
    assert c.take_one()[2] == "wamp.close.killed"


def test_kill_by_authid_and_kill_all(admin_config, peer):
    a, b, c = peer(), peer(), peer()
    assert call(a, "wamp.session.kill_by_authid", [b.session.authid])[3] == [[b.session.id]]
    assert call(a, "wamp.session.kill_all")[3] == [1]
    assert c.take_one()[0] == m.GOODBYE


def test_registration_procedures(admin_config, peer):
    callee1, callee2, q = peer(), peer(), peer()
    callee1.send([m.REGISTER, 1, {"invoke": "roundrobin"}, "com.p"])
    reg = callee1.take_one()[2]
    callee2.send([m.REGISTER, 1, {"invoke": "roundrobin"}, "com.p"])
    callee2.take()
    callee1.send([m.REGISTER, 2, {"match": "prefix"}, "com.app."])
    prefix_reg = callee1.take_one()[2]
    listing = call(q, "wamp.registration.list")[3][0]
    assert listing == {"exact": [reg], "prefix": [prefix_reg], "wildcard": []}
    assert call(q, "wamp.registration.lookup", ["com.p"])[3] == [reg]
    assert call(q, "wamp.registration.lookup", ["com.app.", {"match": "prefix"}])[3] == \
        [prefix_reg]
    assert call(q, "wamp.registration.lookup", ["com.none"])[3] == [None]
    assert call(q, "wamp.registration.match", ["com.app.x"])[3] == [prefix_reg]
    assert call(q, "wamp.registration.match", ["org.x"])[3] == [None]
    got = call(q, "wamp.registration.get", [reg])[3][0]
    assert got["uri"] == "com.p" and got["match"] == "exact" and got["invoke"] == "roundrobin"
    assert call(q, "wamp.registration.list_callees", [reg])[3] == \
        [[callee1.session.id, callee2.session.id]]
    assert call(q, "wamp.registration.count_callees", [reg])[3] == [2]
    for proc in ("get", "list_callees", "count_callees"):
        assert call(q, f"wamp.registration.{proc}", [999])[4] == \
            "wamp.error.no_such_registration"


def test_subscription_procedures(admin_config, peer):
    s1, s2, q = peer(), peer(), peer()
    sid = subscribe(s1, "com.t", 1)
    subscribe(s2, "com.t", 1)
    wid = None
    s1.send([m.SUBSCRIBE, 2, {"match": "wildcard"}, "com."])
    wid = s1.take_one()[2]
    assert call(q, "wamp.subscription.list")[3][0] == {"exact": [sid], "prefix": [],
                                                      "wildcard": [wid]}
    assert call(q, "wamp.subscription.lookup", ["com.t"])[3] == [sid]
    assert sorted(call(q, "wamp.subscription.match", ["com.t"])[3][0]) == sorted([sid, wid])
    assert call(q, "wamp.subscription.match", ["org.t.x"])[3] == [None]
    assert call(q, "wamp.subscription.get", [sid])[3][0]["uri"] == "com.t"
    assert call(q, "wamp.subscription.list_subscribers", [sid])[3] == \
        [[s1.session.id, s2.session.id]]
    assert call(q, "wamp.subscription.count_subscribers", [sid])[3] == [2]
    assert call(q, "wamp.subscription.get", [1])[4] == "wamp.error.no_such_subscription"


def test_testaments(peer):
    listener, dying, polite = peer(), peer(), peer()
    subscribe(listener, "com.obituary", 1)
    for p, name in ((dying, "dying"), (polite, "polite")):
        reply = call(p, "wamp.session.add_testament", ["com.obituary", [name], {"k": 1}])
        assert reply[0] == m.RESULT
    reply = call(dying, "wamp.session.add_testament",
                 ["com.obituary", ["early"], {}], {"scope": "detached"})
    assert reply[0] == m.RESULT
    assert call(dying, "wamp.session.add_testament", ["com.obituary", [], {}],
                {"scope": "later"})[4] == "wamp.error.invalid_argument"
    dying.disconnect()
    assert [e[4] for e in listener.take()] == [["early"], ["dying"]]
    call(polite, "wamp.session.flush_testaments")
    polite.disconnect()
    assert listener.take() == []


def test_router_stats_and_overflow_event(admin_config, router, peer):
    monitor, slow = peer(), peer()
    monitor.send([m.SUBSCRIBE, 1, {}, "fastwamp.session.on_overflow"])
    monitor.take()
    # The transport reports an overflow of the slow session's output queue.
    slow.session.output_overflow(5, 500, False)
    router.flush()
    event = monitor.take_one()
    assert event[4] == [slow.session.id, {"policy": "drop_oldest", "dropped_messages": 5,
                                          "dropped_bytes": 500, "disconnected": False}]
    stats = call(monitor, "fastwamp.router.get_stats")[3][0]
    assert stats["overflow_dropped_messages"] == 5 and stats["overflow_disconnects"] == 0
    assert stats["realm"]["sessions"] == 2 and stats["sessions"] == 2


def test_killed_session_that_never_replies_is_closed(admin_config, peer, clock):
    a, b = peer(), peer()
    call(a, "wamp.session.kill", [b.session.id])
    assert b.take_one()[0] == m.GOODBYE and not b.closed
    clock.advance(6)
    assert b.closed
