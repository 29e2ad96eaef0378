"""Event history (wamp.subscription.get_events), in memory and in SQLite."""

from __future__ import annotations

from fastwamp.config import Config, HistoryConfig, RealmConfig
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m


def _router(store: str = ""):
    realm = RealmConfig("realm1", disclosure="on_request", history_store=store,
                        event_history=[HistoryConfig("com.hist", limit=5),
                                       HistoryConfig("com.logs.", match="prefix")])
    router, _ = make_router(Config(realms=[realm]))
    return router


def _peer(router):
    p = LinkedPeer(router)
    welcome = p.hello()
    assert welcome[2]["roles"]["broker"]["features"]["event_history"] is True
    return p


def _get_events(p, sub_id, request, **filters):
    p.send([m.CALL, request, {}, "wamp.subscription.get_events", [sub_id], filters])
    reply = p.take_one()
    assert reply[0] == m.RESULT, reply
    return reply[3] if len(reply) > 3 else []


def _subscribe(p, topic, match="exact"):
    p.send([m.SUBSCRIBE, 1, {"match": match}, topic])
    return p.take_one()[2]


def test_history_keeps_the_last_events_with_filters():
    router = _router()
    pub, reader = _peer(router), _peer(router)
    for i in range(8):
        pub.send([m.PUBLISH, i + 1, {"acknowledge": True}, "com.hist", [i], {"n": i}])
    pubs = [msg[2] for msg in pub.take()]
    sub = _subscribe(reader, "com.hist")
    events = _get_events(reader, sub, 2)
    assert [e["args"] for e in events] == [[3], [4], [5], [6], [7]]  # limit 5
    assert events[0]["kwargs"] == {"n": 3} and events[0]["subscription"] == sub
    assert events[0]["publication"] == pubs[3] and events[0]["timestamp"].endswith("Z")
    assert [e["args"] for e in _get_events(reader, sub, 3, limit=2)] == [[6], [7]]
    assert [e["args"] for e in _get_events(reader, sub, 4, limit=2, reverse=True)] == \
        [[7], [6]]
    assert [e["args"] for e in _get_events(reader, sub, 5, after_publication=pubs[5])] == \
        [[6], [7]]
    assert [e["args"] for e in _get_events(reader, sub, 6, until_publication=pubs[4])] == \
        [[3], [4]]
    assert _get_events(reader, sub, 7, after_time="2999-01-01T00:00:00Z") == []
    assert len(_get_events(reader, sub, 8, from_time="2000-01-01T00:00:00Z")) == 5


def test_history_for_prefix_rule_and_topic_filter_and_restrictions():
    router = _router()
    pub, reader = _peer(router), _peer(router)
    pub.send([m.PUBLISH, 1, {}, "com.logs.a", ["a"]])
    pub.send([m.PUBLISH, 2, {}, "com.logs.b", ["b"]])
    pub.send([m.PUBLISH, 3, {"eligible": [reader.session.id]}, "com.logs.a", ["private"]])
    pub.send([m.PUBLISH, 4, {"exclude_authrole": ["anonymous"]}, "com.logs.a", ["hidden"]])
    sub = _subscribe(reader, "com.logs.", "prefix")
    assert [e["args"] for e in _get_events(reader, sub, 2)] == [["a"], ["b"]]
    assert [e["topic"] for e in _get_events(reader, sub, 3, topic="com.logs.b")] == ["com.logs.b"]


def test_no_history_for_unconfigured_subscription():
    router = _router()
    reader = _peer(router)
    sub = _subscribe(reader, "com.other")
    reader.send([m.CALL, 2, {}, "wamp.subscription.get_events", [sub]])
    assert reader.take_one()[4] == "wamp.error.history_unavailable"


def test_sqlite_history_survives_a_restart(tmp_path):
    store = str(tmp_path / "history.sqlite")
    router = _router(store)
    pub = _peer(router)
    for i in range(7):
        pub.send([m.PUBLISH, i + 1, {}, "com.hist", [i], {"b": b"\x00\x01"}])
    router.realms["realm1"].history.close()
    restarted = _router(store)
    reader = _peer(restarted)
    sub = _subscribe(reader, "com.hist")
    events = _get_events(reader, sub, 2)
    assert [e["args"] for e in events] == [[2], [3], [4], [5], [6]]
    assert events[0]["kwargs"] == {"b": b"\x00\x01"}
