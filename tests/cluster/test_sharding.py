"""Sharded registrations and first/last order across nodes (in-memory bus)."""

from __future__ import annotations

import importlib

import pytest

from fastwamp.config import RealmConfig
from fastwamp.wamp import messages as m

from .memory import Cluster


def _register(c: Cluster, node: int, uri: str, settle: bool = True, **options):
    callee = c.peer(node)
    callee.send([m.REGISTER, 1, options, uri])
    assert callee.take_one()[0] == m.REGISTERED
    if settle:
        c.settle()
    return callee


def _reached(c: Cluster, callees, caller, request: int, options: dict) -> int:
    caller.send([m.CALL, request, options, "com.shard"])
    c.bus.pump()
    got = [i for i, callee in enumerate(callees) if callee.received]
    assert len(got) == 1, got
    inv = callees[got[0]].take_one()
    callees[got[0]].send([m.YIELD, inv[1], {}, [got[0]]])
    c.bus.pump()
    assert caller.take_one()[:2] == [m.RESULT, request]
    return got[0]


@pytest.mark.parametrize("locality", ["local_first", "global"])
def test_a_key_reaches_the_same_callee_from_every_node(locality):
    c = Cluster(3, RealmConfig("realm1", locality=locality))
    callees = [_register(c, i % 3, "com.shard", invoke="roundrobin") for i in range(6)]
    callers = [c.peer(i) for i in range(3)]
    request = 0
    for key in range(30):
        reached = set()
        for caller in callers:
            request += 1
            reached.add(_reached(c, callees, caller, request,
                                 {"runmode": "partition", "rkey": f"k{key}"}))
        assert len(reached) == 1, (key, reached)  # locality does not split a key


def test_a_dead_nodes_keys_move_and_no_others():
    c = Cluster(3, RealmConfig("realm1"))
    callees = [_register(c, i % 3, "com.shard", invoke="jump_consistent_hash")
               for i in range(6)]
    caller = c.peer(0)
    keys = [f"user-{i}" for i in range(60)]
    before = {key: _reached(c, callees, caller, i + 1, {"rkey": key})
              for i, key in enumerate(keys)}
    c.bus.cut.add("n2")  # node 2 (callees 2 and 5) goes silent
    c.settle(10.0)
    alive = [callee if i % 3 != 2 else None for i, callee in enumerate(callees)]
    after = {}
    for i, key in enumerate(keys):
        live = [x for x in alive if x is not None]
        after[key] = callees.index(live[_reached(c, live, caller, 100 + i, {"rkey": key})])
    moved = [key for key in keys if before[key] != after[key]]
    assert all(before[key] % 3 == 2 for key in moved)
    assert len(moved) == sum(1 for key in keys if before[key] % 3 == 2)


def test_first_and_last_follow_registration_time_on_every_node(monkeypatch):
    """Callees heard of out of order (node 1's first, though node 2's registered
    earlier) still stand in registration-time order on every node."""
    fake_now = [50.0]
    for name in ("fastwamp.router.dealer", "fastwamp.router.dealer_c"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        monkeypatch.setattr(module, "time", lambda: fake_now[0])
    c = Cluster(3, RealmConfig("realm1", locality="global"))
    fake_now[0] = 200.0
    late = _register(c, 1, "com.shard", settle=False, invoke="first")
    fake_now[0] = 100.0
    early = _register(c, 2, "com.shard", settle=False, invoke="first")
    c.settle()
    callees = [late, early]
    for node in range(3):
        caller = c.peer(node)
        assert _reached(c, callees, caller, 1, {}) == 1  # "first": the earliest
    for node in range(3):
        reg = c.routers[node].realms["realm1"].dealer.match("com.shard")
        assert [callee.ident for callee in reg.group.callees()] == [
            early.session.id, late.session.id]
