"""The node-to-node channel: what core NATS loses between nodes is sent again, in
order and once (in-memory bus with injected losses and duplicates)."""

from __future__ import annotations

import pytest

from fastwamp.cluster import node as node_module
from fastwamp.cluster import wire
from fastwamp.config import RealmConfig
from fastwamp.wamp import messages as m

from .memory import Cluster


def _faults(plan: dict[int, str], kind: int):
    """A bus fault: the n-th CHANNEL message carrying ``kind`` (1-based) gets
    ``plan[n]``, once."""
    seen = [0]

    def fault(origin: str, subject: str, data: bytes) -> str | None:
        message = wire.decode(data)
        if message[0] != wire.CHANNEL or message[5][0] != kind:
            return None
        seen[0] += 1
        return plan.pop(seen[0], None)

    return fault


def _subscriber(c: Cluster):
    """A subscriber of com.t on node 1, known to node 0."""
    subscriber = c.peer(1)
    subscriber.send([m.SUBSCRIBE, 1, {}, "com.t"])
    subscriber.take()
    c.settle()
    return subscriber


def _callee_and_caller(c: Cluster):
    callee = c.peer(1)
    callee.send([m.REGISTER, 1, {}, "com.p"])
    assert callee.take_one()[0] == m.REGISTERED
    c.settle()
    return callee, c.peer(0)


def test_a_lost_invocation_is_sent_again_and_answered_once():
    c = Cluster(2)
    callee, caller = _callee_and_caller(c)
    c.bus.fault = _faults({1: "lose"}, wire.INVOKE)
    caller.send([m.CALL, 1, {}, "com.p", [5]])
    c.bus.pump()
    assert not callee.received  # lost on the way, and nothing after it shows the gap
    c.settle(1.5)  # two heartbeats say what was sent: asked for again
    inv = callee.take_one()
    assert inv[0] == m.INVOCATION and inv[4] == [5]
    callee.send([m.YIELD, inv[1], {}, [6]])
    c.bus.pump()
    assert caller.take() == [[m.RESULT, 1, {}, [6]]]
    assert c.nodes[1].stats["cluster_resent"] == 0  # the callee's node resent nothing
    assert c.nodes[0].stats["cluster_resent"] == 1


def test_a_lost_answer_is_sent_again():
    c = Cluster(2)
    callee, caller = _callee_and_caller(c)
    c.bus.fault = _faults({1: "lose"}, wire.ANSWER)
    caller.send([m.CALL, 1, {}, "com.p"])
    c.bus.pump()
    inv = callee.take_one()
    callee.send([m.YIELD, inv[1], {}, ["ok"]])
    c.bus.pump()
    assert not caller.received
    c.settle(1.5)
    assert caller.take() == [[m.RESULT, 1, {}, ["ok"]]]


def test_events_arrive_in_order_and_once_despite_a_loss_and_a_duplicate():
    c = Cluster(2)
    subscriber = _subscriber(c)
    publisher = c.peer(0)
    c.bus.fault = _faults({2: "lose", 4: "twice"}, wire.EVENT)
    for n in range(6):
        publisher.send([m.PUBLISH, n + 1, {"acknowledge": True}, "com.t", [n]])
    c.bus.pump()  # event 3 shows the gap: held until event 2 is sent again
    c.settle(0.5)
    assert [event[4] for event in subscriber.take()] == [[n] for n in range(6)]


def test_what_the_sender_no_longer_keeps_is_skipped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(node_module, "RESEND_KEEP_BYTES", 1)  # keeps only the last
    c = Cluster(2)
    subscriber = _subscriber(c)
    publisher = c.peer(0)
    c.bus.fault = _faults({2: "lose"}, wire.EVENT)
    for n in range(4):
        publisher.send([m.PUBLISH, n + 1, {}, "com.t", [n]])
    c.bus.pump()
    c.settle(0.5)
    assert [event[4] for event in subscriber.take()] == [[0], [2], [3]]
    assert c.nodes[1].stats["cluster_lost"] == 1
    publisher.send([m.PUBLISH, 9, {}, "com.t", ["after"]])  # the channel goes on
    c.bus.pump()
    assert [event[4] for event in subscriber.take()] == [["after"]]


def test_numbering_starts_over_when_a_node_is_dropped_and_returns():
    c = Cluster(2, RealmConfig("realm1"))
    subscriber = _subscriber(c)
    publisher = c.peer(0)
    publisher.send([m.PUBLISH, 1, {}, "com.t", ["before"]])
    c.bus.pump()
    assert len(subscriber.take()) == 1
    c.bus.cut.add("n1")
    publisher.send([m.PUBLISH, 2, {}, "com.t", ["lost in the partition"]])
    c.settle(5.0)  # each drops the other
    c.bus.cut.clear()
    c.settle(2.0)  # back: snapshots, interest
    subscriber.take()
    publisher.send([m.PUBLISH, 3, {}, "com.t", ["after"]])
    c.bus.pump()
    assert [event[4] for event in subscriber.take()] == [["after"]]
