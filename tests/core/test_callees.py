"""CalleeGroup: invoke policies (§5.1), re-routing exclusions (§5.10), load-aware picks."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core.callees import (
    INVOKE_FIRST,
    INVOKE_LAST,
    INVOKE_LEAST_INFLIGHT,
    INVOKE_P2C,
    INVOKE_POLICIES,
    INVOKE_RANDOM,
    INVOKE_ROUNDROBIN,
    INVOKE_SINGLE,
)

ALL_POLICIES = list(INVOKE_POLICIES.values())

# Chi-square critical values at p = 0.001, by degrees of freedom.
CHI2_CRIT_001 = {2: 13.816, 4: 18.467, 9: 27.877}


def chi_square(counts: Counter, keys: list, total: int) -> float:
    expected = total / len(keys)
    return sum((counts[k] - expected) ** 2 / expected for k in keys)


def make_group(impl, policy: int, n: int, seed: int = 1):
    group = impl.CalleeGroup(policy, random.Random(seed))
    callees = [impl.Callee(f"s{i}") for i in range(n)]
    for callee in callees:
        group.add(callee)
    return group, callees


def test_policy_codes() -> None:
    assert INVOKE_POLICIES == {
        "single": 0,
        "roundrobin": 1,
        "random": 2,
        "first": 3,
        "last": 4,
        "least_inflight": 5,
        "p2c": 6,
        "jump_consistent_hash": 7,
    }
    codes = (
        INVOKE_SINGLE,
        INVOKE_ROUNDROBIN,
        INVOKE_RANDOM,
        INVOKE_FIRST,
        INVOKE_LAST,
        INVOKE_LEAST_INFLIGHT,
        INVOKE_P2C,
    )
    assert codes == tuple(range(7))


def test_callee_attributes(impl) -> None:
    session = object()
    callee = impl.Callee(session)
    assert callee.session is session and callee.inflight == 0
    callee.inflight += 2
    callee.inflight -= 1
    assert callee.inflight == 1
    assert "inflight=1" in repr(callee)
    assert len({callee, impl.Callee(session)}) == 2  # identity hash and equality


def test_group_bookkeeping(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_ROUNDROBIN, 3)
    assert group.policy == INVOKE_ROUNDROBIN
    assert len(group) == 3 and a in group and group.callees() == [a, b, c]
    with pytest.raises(ValueError):
        group.add(b)
    with pytest.raises(TypeError):
        group.add("not a callee")
    assert group.remove(b) is True
    assert group.remove(b) is False
    assert group.remove("not a callee") is False
    assert b not in group and "x" not in group
    assert group.callees() == [a, c]
    group.callees().clear()  # a copy
    assert len(group) == 2


@pytest.mark.parametrize("policy", [-1, 8])
def test_unknown_policy(impl, policy: int) -> None:
    with pytest.raises(ValueError):
        impl.CalleeGroup(policy)


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_empty_and_all_excluded(impl, policy: int) -> None:
    group = impl.CalleeGroup(policy, random.Random(0))
    assert group.select() is None
    group, callees = make_group(impl, policy, 3)
    assert group.select(set(callees)) is None
    assert group.select(frozenset(callees)) is None


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_select_never_changes_inflight(impl, policy: int) -> None:
    group, callees = make_group(impl, policy, 4)
    for i, callee in enumerate(callees):
        callee.inflight = i % 2
    for _ in range(50):
        assert group.select() in callees
        assert group.select({callees[0]}) in callees[1:]
    assert [c.inflight for c in callees] == [0, 1, 0, 1]


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_excluded_is_never_picked(impl, policy: int) -> None:
    group, callees = make_group(impl, policy, 5)
    excluded = {callees[0], callees[2], callees[4]}
    picks = {group.select(excluded) for _ in range(100)}
    assert picks <= {callees[1], callees[3]} and picks
    # An empty exclusion set behaves like none.
    assert group.select(set()) in callees


def test_single(impl) -> None:
    group, (a,) = make_group(impl, INVOKE_SINGLE, 1)
    assert [group.select() for _ in range(3)] == [a, a, a]
    assert group.select({a}) is None  # re-routing: no_available_callee
    group.remove(a)
    assert group.select() is None


# -- roundrobin ---------------------------------------------------------------


def test_roundrobin_strict_rotation(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_ROUNDROBIN, 3)
    assert [group.select() for _ in range(7)] == [a, b, c, a, b, c, a]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
@pytest.mark.parametrize("m", [1, 10, 99, 1000])
def test_roundrobin_distributes_evenly(impl, n: int, m: int) -> None:
    group, callees = make_group(impl, INVOKE_ROUNDROBIN, n)
    counts = Counter(group.select() for _ in range(m))
    assert all(abs(counts[c] - m / n) < 1 for c in callees), counts


def test_roundrobin_join_takes_its_turn(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_ROUNDROBIN, 3)
    assert [group.select() for _ in range(3)] == [a, b, c]
    d = impl.Callee("d")
    group.add(d)  # appended after c, which was served last: d is next
    assert [group.select() for _ in range(5)] == [d, a, b, c, d]
    e = impl.Callee("e")
    group.add(e)  # d was served last: e is next
    assert [group.select() for _ in range(3)] == [e, a, b]
    f = impl.Callee("f")
    group.add(f)  # mid-round: served at the end of this round
    assert [group.select() for _ in range(6)] == [c, d, e, f, a, b]


def test_roundrobin_leave_continues_with_next(impl) -> None:
    group, (a, b, c, d) = make_group(impl, INVOKE_ROUNDROBIN, 4)
    assert [group.select() for _ in range(2)] == [a, b]
    group.remove(c)  # the one due next leaves: d continues
    assert group.select() is d
    group.remove(d)  # the one served last leaves: wrap to a
    assert group.select() is a
    group.remove(a)  # the only remaining one other than b
    assert [group.select() for _ in range(3)] == [b, b, b]
    group.remove(b)
    assert group.select() is None
    e = impl.Callee("e")
    group.add(e)
    assert group.select() is e


def test_roundrobin_fair_with_joins_and_leaves(impl) -> None:
    """Between membership changes, each phase of whole rounds is split evenly."""
    group, callees = make_group(impl, INVOKE_ROUNDROBIN, 5)
    rng = random.Random(7)
    for phase in range(30):
        members = group.callees()
        calls = rng.randrange(1, 40)
        counts = Counter(group.select() for _ in range(calls))
        assert set(counts) <= set(members)
        assert all(abs(counts[c] - calls / len(members)) < 1 for c in members), (phase, counts)
        if len(members) > 1 and rng.random() < 0.5:
            group.remove(rng.choice(members))
        else:
            group.add(impl.Callee(f"j{phase}"))


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from("aaarsx"), st.integers(0, 30)), max_size=60))
def test_roundrobin_matches_rotation_model(impl, ops: list[tuple[str, int]]) -> None:
    """Model: next = first member registered after the last one served (wrapping).

    Members are numbered in registration order; a leaver's turn passes to the
    member after it, a joiner is served after the current last member.
    """
    group = impl.CalleeGroup(INVOKE_ROUNDROBIN)
    order: dict[object, int] = {}  # callee -> registration number
    last_served = -1
    seq = 0
    for op, k in ops:
        members = sorted(order, key=order.__getitem__)
        if op == "a":
            callee = impl.Callee(seq)
            group.add(callee)
            order[callee] = seq
            seq += 1
        elif op == "r" and members:
            callee = members[k % len(members)]
            group.remove(callee)
            del order[callee]
        else:
            excluded = set(members[k % 3 :: 3]) if op == "x" and members else None
            eligible = [c for c in members if not excluded or c not in excluded]
            after = [c for c in eligible if order[c] > last_served]
            expected = (after or eligible or [None])[0]
            assert group.select(excluded) is expected
            if expected is not None:
                last_served = order[expected]


def test_roundrobin_rerouting_skips_excluded(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_ROUNDROBIN, 3)
    assert group.select() is a
    assert group.select({b}) is c  # b answered "unavailable": next one
    assert group.select() is a


# -- random -------------------------------------------------------------------


def test_random_is_uniform(impl) -> None:
    group, callees = make_group(impl, INVOKE_RANDOM, 5, seed=12345)
    total = 10_000
    counts = Counter(group.select() for _ in range(total))
    assert chi_square(counts, callees, total) < CHI2_CRIT_001[4], counts


def test_random_is_uniform_among_eligible(impl) -> None:
    group, callees = make_group(impl, INVOKE_RANDOM, 10, seed=99)
    excluded = set(callees[::2])
    eligible = callees[1::2]
    total = 5_000
    counts = Counter(group.select(excluded) for _ in range(total))
    assert set(counts) == set(eligible)
    assert chi_square(counts, eligible, total) < CHI2_CRIT_001[4], counts


def test_random_uses_injected_rng(impl) -> None:
    picks = []
    for _ in range(2):
        group, callees = make_group(impl, INVOKE_RANDOM, 10, seed=42)
        picks.append([callees.index(group.select()) for _ in range(30)])
    assert picks[0] == picks[1]
    assert len(set(picks[0])) > 3


def test_random_default_rng(impl) -> None:
    group = impl.CalleeGroup(INVOKE_RANDOM)
    callees = [impl.Callee(i) for i in range(3)]
    for callee in callees:
        group.add(callee)
    assert {group.select() for _ in range(200)} == set(callees)


# -- first / last (hot standby) -----------------------------------------------


def test_first_hot_standby(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_FIRST, 3)
    assert {group.select() for _ in range(5)} == {a}
    group.remove(a)
    assert group.select() is b
    group.add(a)  # re-registers: now the newest
    assert group.select() is b
    group.remove(b)
    assert group.select() is c
    assert group.select({c}) is a  # re-routing: the one registered after it
    group.remove(c)
    assert group.select() is a


def test_last_hot_standby(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_LAST, 3)
    assert {group.select() for _ in range(5)} == {c}
    group.remove(c)
    assert group.select() is b
    assert group.select({b}) is a  # re-routing: the one registered before it
    d = impl.Callee("d")
    group.add(d)
    assert group.select() is d
    group.remove(d)
    group.remove(b)
    assert group.select() is a


# -- least_inflight -----------------------------------------------------------


def test_least_inflight_picks_least_loaded(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_LEAST_INFLIGHT, 3)
    a.inflight, b.inflight, c.inflight = 3, 1, 2
    assert group.select() is b
    assert group.select({b}) is c
    b.inflight = 5
    assert group.select() is c


def test_least_inflight_ties_rotate(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_LEAST_INFLIGHT, 3)
    # Calls that complete at once: all idle, so strict rotation.
    assert [group.select() for _ in range(6)] == [a, b, c, a, b, c]
    # Calls that stay in flight (the router counts them): spread evenly.
    for _ in range(3):
        callee = group.select()
        callee.inflight += 1
    assert [x.inflight for x in (a, b, c)] == [1, 1, 1]
    a.inflight = b.inflight = 0
    assert [group.select() for _ in range(4)] == [a, b, a, b]


@settings(max_examples=200, deadline=None)
@given(
    loads=st.lists(st.integers(0, 3), min_size=1, max_size=8),
    steps=st.lists(st.tuples(st.integers(0, 7), st.integers(-1, 1), st.booleans()), max_size=30),
)
def test_least_inflight_matches_model(impl, loads: list[int], steps: list) -> None:
    """Model: the minimum load among eligible callees; ties go to rotation order."""
    group = impl.CalleeGroup(INVOKE_LEAST_INFLIGHT)
    callees = [impl.Callee(i) for i in range(len(loads))]
    for callee, load in zip(callees, loads, strict=True):
        group.add(callee)
        callee.inflight = load
    last_served = -1
    for k, delta, exclude in steps:
        callees[k % len(callees)].inflight = max(0, callees[k % len(callees)].inflight + delta)
        excluded = {callees[k % len(callees)]} if exclude else None
        eligible = [c for c in callees if not excluded or c not in excluded]
        rotation = [c for c in eligible if c.session > last_served] + [
            c for c in eligible if c.session <= last_served
        ]
        expected = min(rotation, key=lambda c: c.inflight) if rotation else None
        assert group.select(excluded) is expected
        if expected is not None:
            last_served = expected.session


# -- p2c ----------------------------------------------------------------------


def test_p2c_two_callees_always_least_loaded(impl) -> None:
    group, (a, b) = make_group(impl, INVOKE_P2C, 2)
    a.inflight, b.inflight = 4, 1
    assert {group.select() for _ in range(100)} == {b}
    a.inflight = 0
    assert {group.select() for _ in range(100)} == {a}


def test_p2c_never_picks_the_most_loaded(impl) -> None:
    group, callees = make_group(impl, INVOKE_P2C, 5, seed=3)
    for i, callee in enumerate(callees):
        callee.inflight = i
    counts = Counter(group.select() for _ in range(5_000))
    assert callees[4] not in counts
    # The idle callee wins whenever it is sampled: with probability 2/5.
    assert abs(counts[callees[0]] / 5_000 - 0.4) < 0.03, counts
    assert counts[callees[0]] > counts[callees[1]] > counts[callees[2]] > counts[callees[3]]


def test_p2c_equal_load_is_uniform(impl) -> None:
    group, callees = make_group(impl, INVOKE_P2C, 3, seed=8)
    total = 6_000
    counts = Counter(group.select() for _ in range(total))
    assert chi_square(counts, callees, total) < CHI2_CRIT_001[2], counts


def test_p2c_respects_exclusion_and_single_eligible(impl) -> None:
    group, (a, b, c) = make_group(impl, INVOKE_P2C, 3)
    a.inflight = 9
    assert {group.select({b, c}) for _ in range(20)} == {a}
    assert {group.select({b}) for _ in range(50)} == {c}


# -- ranks (cluster-wide first/last order) and keyed selection (sharding, §5.9) --------


def test_rank_orders_callees_and_equal_ranks_keep_insertion_order(impl) -> None:
    group = impl.CalleeGroup(INVOKE_FIRST)
    a, b, c, d = (impl.Callee(name, i) for i, name in enumerate("abcd"))
    group.add(b, 2.0)
    group.add(d, 4.0)
    group.add(a, 1.0)  # registered earlier on another node, heard of later
    group.add(c, 2.0)  # same rank as b: after it
    assert group.callees() == [a, b, c, d]
    assert group.select() is a
    assert group.rank_of(c) == 2.0
    group.remove(b)
    assert group.callees() == [a, c, d]
    group.add(b)  # no rank: last
    assert group.callees() == [a, c, d, b]


def test_insert_before_the_cursor_keeps_the_rotation(impl) -> None:
    group = impl.CalleeGroup(INVOKE_ROUNDROBIN)
    a, b, c = (impl.Callee(name, i) for i, name in enumerate("abc"))
    group.add(a, 1.0)
    group.add(c, 3.0)
    assert group.select() is a
    assert group.select() is c
    group.add(b, 2.0)  # lands before the cursor: a and b have had (or skip) their turn
    assert [group.select() for _ in range(3)] == [a, b, c]


def _owners(group, keys) -> dict[int, object]:
    return {key: group.select_keyed(key) for key in keys}


def test_keyed_selection_is_stable_and_spread(impl) -> None:
    rng = random.Random(7)
    group = impl.CalleeGroup(INVOKE_POLICIES["jump_consistent_hash"])
    callees = [impl.Callee(f"s{i}", rng.getrandbits(53)) for i in range(5)]
    for callee in callees:
        group.add(callee)
    keys = [rng.getrandbits(64) for _ in range(5000)]
    owners = _owners(group, keys)
    assert owners == _owners(group, keys)  # the same key, the same callee
    counts = Counter(owners[key] for key in keys)
    assert chi_square(counts, callees, len(keys)) < CHI2_CRIT_001[4]


def test_keyed_selection_does_not_depend_on_callee_order(impl) -> None:
    rng = random.Random(8)
    idents = [rng.getrandbits(53) for _ in range(6)]
    one, two = impl.CalleeGroup(7), impl.CalleeGroup(7)
    for ident in idents:
        one.add(impl.Callee(None, ident))
    for ident in reversed(idents):
        two.add(impl.Callee(None, ident))
    keys = [rng.getrandbits(64) for _ in range(2000)]
    assert [one.select_keyed(k).ident for k in keys] == [two.select_keyed(k).ident for k in keys]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 12), leaver=st.integers(0, 11), seed=st.integers(0, 2**32))
def test_only_the_keys_of_a_callee_that_leaves_or_joins_move(impl, n, leaver, seed) -> None:
    rng = random.Random(seed)
    leaver %= n
    group = impl.CalleeGroup(7)
    callees = [impl.Callee(None, rng.getrandbits(53)) for _ in range(n)]
    for callee in callees:
        group.add(callee)
    keys = [rng.getrandbits(64) for _ in range(300)]
    before = _owners(group, keys)
    group.remove(callees[leaver])  # from anywhere in the group, not only the end
    after = _owners(group, keys)
    moved = [k for k in keys if before[k] is not after[k]]
    assert all(before[k] is callees[leaver] for k in moved)
    assert len(moved) == sum(1 for k in keys if before[k] is callees[leaver])
    group.add(callees[leaver])  # it comes back: exactly its keys return to it
    assert _owners(group, keys) == before


def test_keyed_selection_skips_excluded_callees_to_the_next_scorer(impl) -> None:
    group = impl.CalleeGroup(7)
    callees = [impl.Callee(None, i + 1) for i in range(4)]
    for callee in callees:
        group.add(callee)
    first = group.select_keyed(12345)
    second = group.select_keyed(12345, {first})
    assert second is not None and second is not first
    assert group.select_keyed(12345, set(callees)) is None
    assert impl.CalleeGroup(7).select_keyed(1) is None


def test_keyed_selection_agrees_between_builds(impl) -> None:
    """Nodes of a cluster may run either build: they must shard alike."""
    from fastwamp._core import callees_py

    rng = random.Random(9)
    idents = [rng.getrandbits(53) for _ in range(5)]
    ours, reference = impl.CalleeGroup(7), callees_py.CalleeGroup(7)
    for ident in idents:
        ours.add(impl.Callee(None, ident))
        reference.add(callees_py.Callee(None, ident))
    for key in [0, 2**64 - 1, *(rng.getrandbits(64) for _ in range(500))]:
        assert ours.select_keyed(key).ident == reference.select_keyed(key).ident
