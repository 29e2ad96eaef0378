"""Sharded registrations (§5.9): ``runmode = "partition"`` with ``rkey`` on any shared
registration, and Bondy's ``invoke = "jump_consistent_hash"`` with ``rkey`` or
``_routing_key``."""

from __future__ import annotations

import pytest

from fastwamp.wamp import messages as m


def register(p, uri: str, **options) -> int:
    p.send([m.REGISTER, 1, options, uri])
    reply = p.take_one()
    assert reply[0] == m.REGISTERED, reply
    return reply[2]


def _callee_of(callees, caller, request: int, options: dict, uri: str = "com.shard") -> int:
    """Make one call; return the index of the callee it reached (answering it)."""
    caller.send([m.CALL, request, options, uri, [request]])
    got = [i for i, c in enumerate(callees) if c.received]
    assert len(got) == 1, got
    inv = callees[got[0]].take_one()
    assert inv[0] == m.INVOCATION
    callees[got[0]].send([m.YIELD, inv[1], {}, [got[0]]])
    assert caller.take_one()[:2] == [m.RESULT, request]
    return got[0]


@pytest.mark.parametrize("invoke, key_option", [
    ("roundrobin", {"runmode": "partition", "rkey": "{}"}),
    ("random", {"runmode": "partition", "rkey": "{}"}),
    ("jump_consistent_hash", {"rkey": "{}"}),
    ("jump_consistent_hash", {"_routing_key": "{}"}),
])
def test_the_same_key_reaches_the_same_callee(peer, invoke, key_option):
    callees = [peer() for _ in range(4)]
    for callee in callees:
        register(callee, "com.shard", invoke=invoke)
    caller = peer()
    request = 0
    owner = {}
    for _round in range(3):
        for key in range(40):
            request += 1
            options = {name: value.format(key) for name, value in key_option.items()}
            reached = _callee_of(callees, caller, request, options)
            assert owner.setdefault(key, reached) == reached
    assert len(set(owner.values())) == 4  # 40 keys spread over all four


def test_integer_keys_and_string_keys_of_the_same_text_agree(peer):
    callees = [peer() for _ in range(3)]
    for callee in callees:
        register(callee, "com.shard", invoke="jump_consistent_hash")
    caller = peer()
    for key in range(10):
        as_int = _callee_of(callees, caller, 2 * key + 1, {"rkey": key})
        as_str = _callee_of(callees, caller, 2 * key + 2, {"rkey": str(key)})
        assert as_int == as_str


def test_a_leaving_callee_moves_only_its_keys(peer):
    callees = [peer() for _ in range(5)]
    for callee in callees:
        register(callee, "com.shard", invoke="roundrobin")
    caller = peer()
    keys = [f"user-{i}" for i in range(100)]
    request = 0

    def owners(alive):
        nonlocal request
        result = {}
        for key in keys:
            request += 1
            result[key] = alive[_callee_of(alive, caller, request,
                                           {"runmode": "partition", "rkey": key})]
        return result

    before = owners(callees)
    leaver = callees[1]  # not the last one registered
    leaver.disconnect()
    alive = [c for c in callees if c is not leaver]
    after = owners(alive)
    moved = [key for key in keys if before[key] is not after[key]]
    assert moved and all(before[key] is leaver for key in moved)
    assert len(moved) == sum(1 for key in keys if before[key] is leaver)


@pytest.mark.parametrize("options, why", [
    ({"runmode": "partition"}, "needs CALL.Options.rkey"),
    ({"runmode": "partition", "rkey": ""}, "needs CALL.Options.rkey"),
    ({"runmode": "partition", "rkey": [1]}, "needs CALL.Options.rkey"),
    ({"runmode": "partition", "_routing_key": "k"}, "needs CALL.Options.rkey"),
    ({"runmode": "broadcast", "rkey": "k"}, "unknown CALL.Options.runmode"),
    ({"runmode": 3, "rkey": "k"}, "unknown CALL.Options.runmode"),
])
def test_partitioned_call_without_a_usable_key_is_invalid(peer, options, why):
    callee, caller = peer(), peer()
    register(callee, "com.shard", invoke="roundrobin")
    caller.send([m.CALL, 1, options, "com.shard"])
    err = caller.take_one()
    assert err[:2] == [m.ERROR, m.CALL] and err[4] == "wamp.error.invalid_argument"
    assert why in err[5][0]
    assert not callee.received


def test_sharded_registration_needs_a_key(peer):
    callee, caller = peer(), peer()
    register(callee, "com.shard", invoke="jump_consistent_hash")
    caller.send([m.CALL, 1, {}, "com.shard"])
    err = caller.take_one()
    assert err[4] == "wamp.error.invalid_argument"
    assert "rkey or _routing_key" in err[5][0]


def test_policies_do_not_mix(peer):
    a, b = peer(), peer()
    register(a, "com.shard", invoke="jump_consistent_hash")
    b.send([m.REGISTER, 1, {"invoke": "roundrobin"}, "com.shard"])
    assert b.take_one()[4] == "wamp.error.procedure_already_exists"


def test_unavailable_reroutes_to_the_keys_next_callee_and_back(peer):
    callees = [peer() for _ in range(3)]
    for callee in callees:
        register(callee, "com.shard", invoke="jump_consistent_hash")
    caller = peer()
    first = _callee_of(callees, caller, 1, {"rkey": "k"})
    caller.send([m.CALL, 2, {"rkey": "k"}, "com.shard"])
    inv = callees[first].take_one()
    callees[first].send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.unavailable"])
    second = [i for i, c in enumerate(callees) if c.received]
    assert len(second) == 1 and second[0] != first
    inv = callees[second[0]].take_one()
    callees[second[0]].send([m.YIELD, inv[1], {}, ["fallback"]])
    assert caller.take_one() == [m.RESULT, 2, {}, ["fallback"]]
    # the next call with the key goes back to its own callee
    assert _callee_of(callees, caller, 3, {"rkey": "k"}) == first


def test_single_registration_accepts_a_partitioned_call(peer):
    callee, caller = peer(), peer()
    register(callee, "com.shard")
    assert _callee_of([callee], caller, 1, {"runmode": "partition", "rkey": "k"}) == 0


def test_progressive_call_chunks_follow_the_first_calls_callee(peer):
    roles = {"callee": {"features": {"progressive_call_invocations": True,
                                     "call_canceling": True}},
             "caller": {"features": {"progressive_call_invocations": True}}}
    callees = [peer(roles=roles) for _ in range(3)]
    for callee in callees:
        register(callee, "com.shard", invoke="jump_consistent_hash")
    caller = peer(roles=roles)
    caller.send([m.CALL, 1, {"rkey": "k", "progress": True}, "com.shard", [1]])
    got = [c for c in callees if c.received]
    assert len(got) == 1
    inv = got[0].take_one()
    # continuation chunks carry no key and still go to the same callee
    caller.send([m.CALL, 1, {}, "com.shard", [2]])
    assert got[0].take_one()[:2] == [m.INVOCATION, inv[1]]


def test_welcome_announces_sharded_registration(router):
    from fastwamp.testing import LinkedPeer

    welcome = LinkedPeer(router).hello("realm1")
    assert welcome[2]["roles"]["dealer"]["features"]["sharded_registration"] is True
