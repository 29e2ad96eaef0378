"""The realm's view across nodes (sans-I/O): subscription and registration meta
procedures, meta events, retained events and event history."""

from __future__ import annotations

from typing import Any

from fastwamp.config import HistoryConfig, RealmConfig
from fastwamp.testing import LinkedPeer
from fastwamp.wamp import messages as m

from .memory import Cluster

ADMIN = RealmConfig("realm1", admin_authroles=["anonymous"])


def _call(c: Cluster, peer: LinkedPeer, uri: str, *args: Any) -> list:
    request = peer.next_request()
    peer.send([m.CALL, request, {}, uri, list(args)])
    c.bus.pump()
    reply = peer.take_one()
    assert reply[1] == request or reply[2] == request, reply
    return reply


def _result(c: Cluster, peer: LinkedPeer, uri: str, *args: Any) -> Any:
    reply = _call(c, peer, uri, *args)
    assert reply[0] == m.RESULT, reply
    return reply[3][0]


def _subscribe(c: Cluster, node: int, uri: str, **options: Any) -> tuple[LinkedPeer, int]:
    peer = c.peer(node)
    peer.send([m.SUBSCRIBE, 1, options, uri])
    reply = peer.take_one()
    assert reply[0] == m.SUBSCRIBED, reply
    return peer, reply[2]


def test_subscription_meta_procedures_describe_every_node() -> None:
    c = Cluster(3, ADMIN)
    s0, id0 = _subscribe(c, 0, "com.t")
    s1, id1 = _subscribe(c, 1, "com.t")
    s1b, _ = _subscribe(c, 1, "com.t")
    p1, pid1 = _subscribe(c, 1, "com.p.", match="prefix")
    c.settle()
    asker = c.peer(2)  # a node with no subscriber of its own
    listed = _result(c, asker, "wamp.subscription.list")
    assert len(listed["exact"]) == 1 and listed["prefix"] == [pid1]
    shown = listed["exact"][0]
    assert shown in (id0, id1)
    assert _result(c, asker, "wamp.subscription.lookup", "com.t") == shown
    assert _result(c, asker, "wamp.subscription.lookup", "com.p.", {"match": "prefix"}) == pid1
    assert sorted(_result(c, asker, "wamp.subscription.match", "com.p.x")) == [pid1]
    everyone = sorted([s0.session.id, s1.session.id, s1b.session.id])
    # any node's id for the subscription is accepted on any node
    for node, peer in ((2, asker), (0, s0), (1, s1)):
        for sub_id in (id0, id1):
            assert sorted(_result(c, peer, "wamp.subscription.list_subscribers", sub_id)) == \
                everyone, node
            assert _result(c, peer, "wamp.subscription.count_subscribers", sub_id) == 3
            got = _result(c, peer, "wamp.subscription.get", sub_id)
            assert got["id"] == sub_id and got["uri"] == "com.t" and got["match"] == "exact"
    # node 0 lists its own id, once
    assert _result(c, s0, "wamp.subscription.list")["exact"] == [id0]
    assert _result(c, s0, "wamp.subscription.match", "com.t") == [id0]
    s1.disconnect()
    s1b.disconnect()
    c.settle()
    assert _result(c, asker, "wamp.subscription.list_subscribers", id0) == [s0.session.id]
    reply = _call(c, asker, "wamp.subscription.get", id1)
    assert reply[0] == m.ERROR and reply[4] == "wamp.error.no_such_subscription"


def test_registration_ids_of_other_nodes_are_accepted() -> None:
    c = Cluster(2, ADMIN)
    callee = c.peer(1)
    callee.send([m.REGISTER, 1, {"invoke": "roundrobin"}, "com.p"])
    reg_b = callee.take_one()[2]
    c.settle()
    asker = c.peer(0)
    reg_a = _result(c, asker, "wamp.registration.lookup", "com.p")
    assert reg_a != reg_b
    for reg in (reg_a, reg_b):
        assert _result(c, asker, "wamp.registration.list_callees", reg) == [callee.session.id]
        assert _result(c, asker, "wamp.registration.get", reg)["id"] == reg
    callee.disconnect()
    c.settle()
    reply = _call(c, asker, "wamp.registration.get", reg_b)
    assert reply[4] == "wamp.error.no_such_registration"


def _meta_events(peer: LinkedPeer) -> list[tuple[str, list]]:
    return [(e[3].get("topic", ""), e[4]) for e in peer.take() if e[0] == m.EVENT]


def test_meta_events_reach_subscribers_on_every_node() -> None:
    c = Cluster(2, ADMIN)
    watcher = c.peer(0)
    for request, topic in enumerate(("wamp.session.", "wamp.registration.",
                                     "wamp.subscription."), 1):
        watcher.send([m.SUBSCRIBE, request, {"match": "prefix"}, topic])
        assert watcher.take_one()[0] == m.SUBSCRIBED
    c.settle()
    other = c.peer(1, authid="bob")
    c.bus.pump()
    [(topic, args)] = _meta_events(watcher)
    assert topic == "wamp.session.on_join" and args[0]["session"] == other.session.id
    other.send([m.REGISTER, 1, {}, "com.p"])
    reg = other.take_one()[2]
    other.send([m.SUBSCRIBE, 2, {}, "com.t"])
    sub = other.take_one()[2]
    c.bus.pump()
    seen = _meta_events(watcher)
    assert [t for t, _ in seen] == ["wamp.registration.on_create",
                                    "wamp.registration.on_register",
                                    "wamp.subscription.on_create",
                                    "wamp.subscription.on_subscribe"]
    assert seen[1][1] == [other.session.id, reg] and seen[3][1] == [other.session.id, sub]
    c.settle()
    # a subscriber on the watcher's node too: the subscription already exists (no on_create)
    local, _ = _subscribe(c, 0, "com.t")
    c.settle()
    assert [t for t, _ in _meta_events(watcher)] == ["wamp.session.on_join",
                                                      "wamp.subscription.on_subscribe"]
    other.disconnect()
    c.bus.pump()
    assert [t for t, _ in _meta_events(watcher)] == [
        "wamp.registration.on_unregister", "wamp.registration.on_delete",
        "wamp.subscription.on_unsubscribe", "wamp.session.on_leave"]  # no on_delete yet
    c.settle()
    local.send([m.UNSUBSCRIBE, 3, local.session.member.subscriptions.copy().pop()])
    c.bus.pump()
    assert [t for t, _ in _meta_events(watcher)] == ["wamp.subscription.on_unsubscribe",
                                                      "wamp.subscription.on_delete"]


def test_sessions_of_a_lost_node_leave_for_meta_subscribers() -> None:
    c = Cluster(2, ADMIN)
    watcher = c.peer(0)
    watcher.send([m.SUBSCRIBE, 1, {}, "wamp.session.on_leave"])
    watcher.take_one()
    gone = c.peer(1)
    c.settle()
    c.bus.cut.add("n1")
    c.settle(4.0)
    [(_, args)] = _meta_events(watcher)
    assert args == [gone.session.id, gone.session.authid, "anonymous"]


def test_retained_event_published_on_one_node_is_served_on_another() -> None:
    c = Cluster(3)
    pub = c.peer(0)
    pub.send([m.PUBLISH, 1, {"retain": True, "acknowledge": True}, "com.r", ["first"]])
    pub.send([m.PUBLISH, 2, {"retain": True, "acknowledge": True}, "com.r", ["last"]])
    c.bus.pump()
    for node in (1, 2):
        sub = c.peer(node)
        sub.send([m.SUBSCRIBE, 1, {"get_retained": True}, "com.r"])
        c.bus.pump()
        subscribed, event = sub.take()
        assert subscribed[0] == m.SUBSCRIBED
        assert event[0] == m.EVENT and event[3]["retained"] is True and event[4] == ["last"]
    # newer retained publication on another node wins everywhere
    other = c.peer(2)
    other.send([m.PUBLISH, 1, {"retain": True}, "com.r", ["from n2"]])
    c.bus.pump()
    for node in (0, 1, 2):
        sub = c.peer(node)
        sub.send([m.SUBSCRIBE, 1, {"get_retained": True}, "com.r"])
        c.bus.pump()
        assert sub.take()[1][4] == ["from n2"]


def test_a_node_that_joins_later_gets_the_retained_events() -> None:
    c = Cluster(2)
    c.bus.cut.add("n1")
    c.settle(4.0)
    pub = c.peer(0)
    pub.send([m.PUBLISH, 1, {"retain": True}, "com.r", ["while cut off"]])
    c.bus.pump()
    c.bus.cut.clear()
    c.settle(2.0)
    sub = c.peer(1)
    sub.send([m.SUBSCRIBE, 1, {"get_retained": True}, "com.r"])
    c.bus.pump()
    got = sub.take()
    assert len(got) == 2 and got[1][4] == ["while cut off"]


def test_event_history_holds_events_published_on_every_node() -> None:
    realm = RealmConfig("realm1", event_history=[HistoryConfig("com.h.", "prefix", 10)])
    c = Cluster(3, realm)
    for node in (0, 1):
        pub = c.peer(node)
        pub.send([m.PUBLISH, 1, {"acknowledge": True}, f"com.h.n{node}", [node]])
        assert pub.take_one()[0] == m.PUBLISHED
        c.bus.pump()
    # private publications are not kept, anywhere
    pub.send([m.PUBLISH, 2, {"eligible": [pub.session.id]}, "com.h.private", []])
    c.bus.pump()
    for node in (0, 1, 2):
        reader, sub_id = _subscribe(c, node, "com.h.", match="prefix")
        events = _call(c, reader, "wamp.subscription.get_events", sub_id)[3]
        assert [e["topic"] for e in events] == ["com.h.n0", "com.h.n1"], node
        assert [e["args"] for e in events] == [[0], [1]]
        assert all(e["subscription"] == sub_id for e in events)


def test_plain_publication_goes_only_to_nodes_with_subscribers() -> None:
    c = Cluster(3)
    _subscribe(c, 1, "com.t")
    c.settle()
    pub = c.peer(0)
    c.bus.pump()
    sent = c.nodes[0].stats["cluster_messages_out"]
    pub.send([m.PUBLISH, 1, {}, "com.t", []])
    c.bus.pump()
    assert c.nodes[0].stats["cluster_messages_out"] - sent == 1


def test_testament_reaches_subscribers_on_other_nodes() -> None:
    c = Cluster(2, ADMIN)
    sub, sub_id = _subscribe(c, 1, "com.will")
    c.settle()
    dying = c.peer(0)
    assert _call(c, dying, "wamp.session.add_testament", "com.will", ["gone"], {"k": 1},
                 {"exclude_me": False})[0] == m.RESULT
    dying.session.detach()  # abnormally: no GOODBYE
    c.bus.pump()
    event = sub.take_one()
    assert event[0] == m.EVENT and event[1] == sub_id and event[4:] == [["gone"], {"k": 1}]
    assert event[3]["publisher"] == dying.session.id
