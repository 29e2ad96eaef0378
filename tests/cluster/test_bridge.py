"""The cluster bridge without a network: routers linked by an in-memory bus."""

from __future__ import annotations

from fastwamp.config import RealmConfig
from fastwamp.wamp import messages as m

from .memory import Cluster


def test_event_crosses_to_a_subscriber_on_another_node():
    c = Cluster(2)
    sub = c.peer(1)
    sub.send([m.SUBSCRIBE, 1, {}, "com.t"])
    sub_id = sub.take_one()[2]
    c.settle()
    pub = c.peer(0)
    pub.send([m.PUBLISH, 1, {"acknowledge": True}, "com.t", [1], {"k": 2}])
    assert pub.take_one()[0] == m.PUBLISHED
    c.bus.pump()
    event = sub.take_one()
    assert event[0] == m.EVENT and event[1] == sub_id and event[4:] == [[1], {"k": 2}]
    assert event[3]["publisher"] == pub.session.id


def test_call_crosses_and_returns():
    c = Cluster(2)
    callee = c.peer(1)
    callee.send([m.REGISTER, 1, {}, "com.p"])
    assert callee.take_one()[0] == m.REGISTERED
    c.settle()
    caller = c.peer(0)
    caller.send([m.CALL, 1, {}, "com.p", [5]])
    c.bus.pump()
    inv = callee.take_one()
    assert inv[0] == m.INVOCATION and inv[4] == [5]
    assert inv[3]["caller"] == caller.session.id
    callee.send([m.YIELD, inv[1], {}, [6]])
    c.bus.pump()
    assert caller.take_one() == [m.RESULT, 1, {}, [6]]


def _register(c: Cluster, node: int, uri: str, **options):
    callee = c.peer(node)
    callee.send([m.REGISTER, 1, options, uri])
    reply = callee.take_one()
    c.settle()
    return callee, reply


def test_single_registration_is_enforced_across_nodes():
    c = Cluster(2)
    _, reply = _register(c, 0, "com.p")
    assert reply[0] == m.REGISTERED
    _, reply = _register(c, 1, "com.p")
    assert reply[0] == m.ERROR and reply[4] == "wamp.error.procedure_already_exists"


def test_shared_registration_rotates_over_every_callee_of_the_cluster():
    c = Cluster(3, RealmConfig("realm1", locality="global"))
    callees = [_register(c, i, "com.p", invoke="roundrobin")[0] for i in range(3)]
    caller = c.peer(0)
    for request in range(1, 7):
        caller.send([m.CALL, request, {}, "com.p"])
        c.bus.pump()
        got = [p for p in callees if p.received]
        assert len(got) == 1
        inv = got[0].take_one()
        got[0].send([m.YIELD, inv[1], {}, [callees.index(got[0])]])
        c.bus.pump()
        assert caller.take_one()[0] == m.RESULT
    # each of the three got two of the six calls
    assert sorted(callees[i].session.member.last_invocation_id for i in range(3)) == [2, 2, 2]


def test_node_death_cancels_calls_in_flight_and_fails_over():
    c = Cluster(3)
    a, _ = _register(c, 1, "com.p", invoke="roundrobin")
    b, _ = _register(c, 2, "com.p", invoke="roundrobin")
    caller = c.peer(0)
    caller.send([m.CALL, 1, {}, "com.p"])
    c.bus.pump()
    victim = a if a.received else b
    survivor = b if victim is a else a
    victim.take()
    c.bus.cut.add(c.nodes[1 if victim is a else 2].name)
    c.settle(4.0)  # beyond node_timeout
    answer = caller.take_one()
    assert answer[0] == m.ERROR and answer[4] == "wamp.error.canceled"
    caller.send([m.CALL, 2, {}, "com.p"])
    c.bus.pump()
    inv = survivor.take_one()
    survivor.send([m.YIELD, inv[1], {}, ["ok"]])
    c.bus.pump()
    assert caller.take_one() == [m.RESULT, 2, {}, ["ok"]]


def test_callee_leaving_cancels_the_remote_call():
    c = Cluster(2)
    callee, _ = _register(c, 1, "com.p")
    caller = c.peer(0)
    caller.send([m.CALL, 1, {}, "com.p"])
    c.bus.pump()
    callee.take_one()
    callee.disconnect()
    c.bus.pump()
    answer = caller.take_one()
    assert answer[0] == m.ERROR and answer[4] == "wamp.error.canceled"
    c.settle()
    caller.send([m.CALL, 2, {}, "com.p"])
    assert caller.take_one()[4] == "wamp.error.no_such_procedure"


def test_error_progressive_results_and_cancel_cross_nodes():
    c = Cluster(2)
    callee, _ = _register(c, 1, "com.p")
    caller = c.peer(0)
    caller.send([m.CALL, 1, {"receive_progress": True}, "com.p"])
    c.bus.pump()
    inv = callee.take_one()
    assert inv[3].get("receive_progress") is True
    callee.send([m.YIELD, inv[1], {"progress": True}, [1]])
    callee.send([m.YIELD, inv[1], {"progress": True}, [2]])
    callee.send([m.ERROR, m.INVOCATION, inv[1], {}, "com.err", ["bad"]])
    c.bus.pump()
    assert caller.take() == [[m.RESULT, 1, {"progress": True}, [1]],
                             [m.RESULT, 1, {"progress": True}, [2]],
                             [m.ERROR, m.CALL, 1, {}, "com.err", ["bad"]]]
    caller.send([m.CALL, 2, {}, "com.p"])
    c.bus.pump()
    inv = callee.take_one()
    caller.send([m.CANCEL, 2, {"mode": "killnowait"}])
    c.bus.pump()
    assert caller.take_one()[4] == "wamp.error.canceled"
    interrupt = callee.take_one()
    assert interrupt[0] == m.INTERRUPT and interrupt[1] == inv[1]
    callee.send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.canceled"])
    c.bus.pump()
    assert caller.take() == []


def test_timeout_on_the_callers_node_interrupts_the_remote_callee():
    c = Cluster(2)
    callee, _ = _register(c, 1, "com.p")
    caller = c.peer(0)
    caller.send([m.CALL, 1, {"timeout": 500}, "com.p"])
    c.bus.pump()
    inv = callee.take_one()
    c.settle(1.0)
    assert caller.take_one()[4] == "wamp.error.timeout"
    assert callee.take_one()[0] == m.INTERRUPT
    callee.send([m.YIELD, inv[1], {}, ["late"]])
    c.bus.pump()
    assert caller.take() == []


def test_unavailable_reroutes_to_a_callee_on_another_node():
    c = Cluster(2)
    a, _ = _register(c, 0, "com.p", invoke="first")
    b, _ = _register(c, 1, "com.p", invoke="first")
    caller = c.peer(0)
    caller.send([m.CALL, 1, {}, "com.p"])
    c.bus.pump()
    inv = a.take_one()
    a.send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.unavailable"])
    c.bus.pump()
    inv = b.take_one()
    b.send([m.YIELD, inv[1], {}, ["b"]])
    c.bus.pump()
    assert caller.take_one() == [m.RESULT, 1, {}, ["b"]]


def test_event_filters_apply_on_the_receiving_node():
    c = Cluster(2)
    subs = [c.peer(1, authid=f"user{i}") for i in range(3)]
    for s in subs:
        s.send([m.SUBSCRIBE, 1, {}, "com.t"])
        s.take()
    c.settle()
    pub = c.peer(0)
    ids = [s.session.id for s in subs]
    pub.send([m.PUBLISH, 1, {"eligible": ids[:2], "exclude": [ids[1]]}, "com.t", ["x"]])
    pub.send([m.PUBLISH, 2, {"exclude_authid": [subs[2].session.authid]}, "com.t", ["y"]])
    c.bus.pump()
    assert [e[4] for e in subs[0].take()] == [["x"], ["y"]]
    assert [e[4] for e in subs[1].take()] == [["y"]]
    assert subs[2].take() == []


def test_one_message_per_node_and_order_kept():
    c = Cluster(2)
    subs = []
    for uri, match in (("com.t", "exact"), ("com", "prefix"), ("com.", "wildcard")):
        for _ in range(2):
            s = c.peer(1)
            s.send([m.SUBSCRIBE, 1, {"match": match}, uri])
            s.take()
            subs.append(s)
    c.settle()
    pub = c.peer(0)
    before = c.nodes[0].stats["cluster_messages_out"]
    for i in range(50):
        pub.send([m.PUBLISH, i + 1, {}, "com.t", [i]])
    assert c.nodes[0].stats["cluster_messages_out"] - before == 50  # one per publication
    c.bus.pump()
    for s in subs:
        assert [e[4][0] for e in s.take()] == list(range(50))


def test_session_ids_are_partitioned_by_node():
    from fastwamp.cluster.node import SLOT_BITS

    c = Cluster(2)
    ids = [c.peer(i).session.id >> (53 - SLOT_BITS) for i in (0, 1, 0, 1)]
    assert ids[0] == ids[2] == c.nodes[0].slot
    assert ids[1] == ids[3] == c.nodes[1].slot


def test_rejoin_after_partition_resynchronises_without_ghosts():
    c = Cluster(2)
    callee, _ = _register(c, 1, "com.p", invoke="roundrobin")
    sub = c.peer(1)
    sub.send([m.SUBSCRIBE, 1, {}, "com.t"])
    sub.take()
    c.settle()
    c.bus.cut.add("n1")
    c.settle(4.0)
    assert c.routers[0].realms["realm1"].dealer.lookup("com.p", 0) is None
    callee.send([m.UNREGISTER, 2, callee.session.member.registrations and
                 next(iter(callee.session.member.registrations))])
    callee.take()
    c.bus.cut.clear()
    c.settle(2.0)
    dealer = c.routers[0].realms["realm1"].dealer
    assert dealer.lookup("com.p", 0) is None  # the unregistration made while cut off
    callee.send([m.REGISTER, 3, {}, "com.q"])
    callee.take()
    c.settle()
    reg = dealer.lookup("com.q", 0)
    assert reg is not None and len(reg.group) == 1  # no duplicate
    bridge = c.nodes[0].bridges["realm1"]
    assert bridge.interest.get("com.t", 0) is not None


def test_malformed_cluster_messages_are_dropped():
    c = Cluster(2)
    node = c.nodes[0]
    for data in (b"", b"\x91\xa1x", b"\x93\x06\xa2n1\x01", b"\xc1", b"\x92\x07\x00"):
        node.receive("fastwamp.node.n0", data)
    assert node.stats["cluster_bad_messages"] >= 3
    test_event_crosses_to_a_subscriber_on_another_node()


def test_invocation_from_a_node_not_heard_of_yet_is_served():
    c = Cluster(2)
    callee, _ = _register(c, 1, "com.p")
    c.nodes[1].peers.clear()  # node 1 has not heard node 0's heartbeat yet
    caller = c.peer(0)
    caller.send([m.CALL, 1, {}, "com.p"])
    c.bus.pump()
    inv = callee.take_one()
    callee.send([m.YIELD, inv[1], {}, []])
    c.bus.pump()
    assert caller.take_one() == [m.RESULT, 1, {}, []]


def _served_by(c: Cluster, caller, callees, request: int) -> int:
    caller.send([m.CALL, request, {}, "com.p"])
    c.bus.pump()
    got = [i for i, p in enumerate(callees) if p.received]
    assert len(got) == 1, got
    inv = callees[got[0]].take_one()
    callees[got[0]].send([m.YIELD, inv[1], {}, []])
    c.bus.pump()
    assert caller.take_one()[0] == m.RESULT
    return got[0]


def test_locality_local_first_then_region_then_anywhere():
    c = Cluster(3, regions=["east", "east", "west"])
    callees = [_register(c, i, "com.p", invoke="roundrobin")[0] for i in range(3)]
    caller = c.peer(0)
    assert {_served_by(c, caller, callees, r) for r in range(1, 5)} == {0}
    callees[0].disconnect()
    c.settle()
    assert {_served_by(c, caller, callees, r) for r in range(5, 9)} == {1}
    callees[1].disconnect()
    c.settle()
    assert {_served_by(c, caller, callees, r) for r in range(9, 11)} == {2}


def test_locality_region_first_and_global():
    c = Cluster(3, RealmConfig("realm1", locality="region_first"),
                regions=["east", "east", "west"])
    callees = [_register(c, i, "com.p", invoke="roundrobin")[0] for i in (1, 2)]
    caller = c.peer(0)
    assert {_served_by(c, caller, callees, r) for r in range(1, 5)} == {0}
    g = Cluster(3, RealmConfig("realm1", locality="global"), regions=["east", "east", "west"])
    callees = [_register(g, i, "com.p", invoke="roundrobin")[0] for i in (1, 2)]
    caller = g.peer(0)
    assert {_served_by(g, caller, callees, r) for r in range(1, 5)} == {0, 1}


def test_single_registered_on_two_nodes_at_once_keeps_the_older():
    c = Cluster(2)
    callees = [c.peer(i) for i in (0, 1)]
    for callee in callees:
        callee.send([m.REGISTER, 1, {}, "com.p"])
        assert callee.take_one()[0] == m.REGISTERED  # neither knows of the other yet
    c.settle()
    revoked = [callee.take() for callee in callees]
    assert revoked[0] == []  # n0 wins the tie (same creation time: node name)
    assert len(revoked[1]) == 1 and revoked[1][0][0] == m.UNREGISTERED
    assert revoked[1][0][2]["reason"] == "wamp.error.procedure_already_exists"
    for node in (0, 1):
        caller = c.peer(node)
        caller.send([m.CALL, 1, {}, "com.p"])
        c.bus.pump()
        inv = callees[0].take_one()
        callees[0].send([m.YIELD, inv[1], {}, []])
        c.bus.pump()
        assert caller.take_one()[0] == m.RESULT
    assert callees[1].take() == []


def test_session_meta_procedures_describe_the_cluster():
    c = Cluster(2, RealmConfig("realm1", admin_authroles=["anonymous"]))  # may list sessions
    a = c.peer(0, authid="alice")
    b = c.peer(1, authid="bob")
    c.settle()
    a.send([m.CALL, 1, {}, "wamp.session.count"])
    assert a.take_one()[3] == [2]
    a.send([m.CALL, 2, {}, "wamp.session.list"])
    assert sorted(a.take_one()[3][0]) == sorted([a.session.id, b.session.id])
    a.send([m.CALL, 3, {}, "wamp.session.get", [b.session.id]])
    details = a.take_one()[3][0]
    assert details["session"] == b.session.id and details["authrole"] == "anonymous"
    b.disconnect()
    c.settle()
    a.send([m.CALL, 4, {}, "wamp.session.count"])
    assert a.take_one()[3] == [1]
    a.send([m.CALL, 5, {}, "wamp.session.get", [b.session.id]])
    assert a.take_one()[4] == "wamp.error.no_such_session"


def test_router_stats_count_cluster_traffic():
    c = Cluster(3, RealmConfig("realm1", admin_authroles=["anonymous"]))
    peer = c.peer(0)
    peer.send([m.CALL, 1, {}, "fastwamp.router.get_stats"])
    stats = peer.take_one()[3][0]
    assert stats["cluster_nodes"] == 2  # the others
    assert stats["cluster_messages_in"] > 0 and stats["cluster_bad_messages"] == 0


def test_late_answer_after_the_node_came_back_is_dropped_quietly(caplog):
    """An ANSWER sent just before a partition (held in the sender's buffers) arrives after
    the caller's node dropped the callee's node and heard of it again: dropped, no error."""
    c = Cluster(2)
    callee, _ = _register(c, 1, "com.p", invoke="roundrobin")
    caller = c.peer(0)
    caller.send([m.CALL, 1, {}, "com.p"])
    c.bus.pump()
    inv = callee.take_one()
    callee.send([m.YIELD, inv[1], {}, ["late"]])
    held = [q for q in c.bus.queue if q[0] == "n1"]  # the ANSWER, still in n1's buffers
    c.bus.queue.clear()
    c.bus.cut.add("n1")
    c.settle(4.0)  # n0 drops n1: the call is canceled
    assert caller.take_one()[4] == "wamp.error.canceled"
    c.bus.cut.clear()
    c.settle(2.0)  # n1 is back, with a new proxy of the same callee on n0
    c.bus.queue.extend(held)
    c.bus.pump()
    assert caller.take() == []
    assert c.nodes[0].stats["cluster_bad_messages"] == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_snapshot_in_parts_with_one_part_lost(monkeypatch):
    """A snapshot larger than SNAPSHOT_PART_BYTES goes in parts; a lost part leaves the peer
    unsynchronised until the next heartbeat asks again."""
    from fastwamp.cluster import node as node_module
    from fastwamp.cluster import wire

    monkeypatch.setattr(node_module, "SNAPSHOT_PART_BYTES", 400)
    c = Cluster(2, RealmConfig("realm1", admin_authroles=["anonymous"]))
    sessions = [c.peer(1) for _ in range(30)]
    c.bus.cut.add("n0")
    c.settle(4.0)  # n0 and n1 drop each other
    c.bus.cut.clear()
    parts = node_module.ClusterNode._snapshot_parts(c.nodes[1])
    assert len(parts) > 3
    lost = []
    original = c.nodes[0].receive

    def lose_one_part(subject, data):
        message = wire.decode(data)
        if message[0] == wire.SNAPSHOT and message[1] == "n1" and not lost:
            lost.append(message[5])
            return
        original(subject, data)

    monkeypatch.setattr(c.nodes[0], "receive", lose_one_part)
    c.settle(3.0)
    assert lost, "no snapshot part was sent"
    assert c.nodes[0].peers["n1"].synced
    asker = c.peer(0)
    asker.send([m.CALL, 1, {}, "wamp.session.count"])
    assert asker.take_one()[3] == [len(sessions) + 1]
