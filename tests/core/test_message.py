"""The checks of decoded client messages, on both builds, against plain models."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core.message_py import LAYOUTS, MAX_ID
from fastwamp.wamp.messages import ProtocolViolation, check_message

KIND_OK = {
    0: lambda v: type(v) is int and 0 < v <= MAX_ID,
    1: lambda v: type(v) is str,
    2: lambda v: type(v) is dict,
    3: lambda v: type(v) is int and 0 <= v <= MAX_ID,
}


def model_ok(msg) -> bool:
    if type(msg) is not list or not msg or type(msg[0]) is not int or msg[0] not in LAYOUTS:
        return False
    lo, hi, kinds = LAYOUTS[msg[0]]
    if not lo <= len(msg) <= hi:
        return False
    if not all(KIND_OK[k](v) for k, v in zip(kinds, msg[1:], strict=False)):
        return False
    rest = msg[1 + len(kinds):]
    return (len(rest) < 1 or type(rest[0]) is list) and (len(rest) < 2 or type(rest[1]) is dict)


class Weird:
    """An object whose comparisons and hash raise: the check must not touch them."""

    def __eq__(self, other):
        raise RuntimeError("compared")

    def __lt__(self, other):
        raise RuntimeError("compared")

    __le__ = __gt__ = __ge__ = __lt__

    def __hash__(self):
        raise RuntimeError("hashed")


class IntSub(int):
    pass


BIG = [2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -(2**70), -(2**63) - 1, 10**400]
values = st.one_of(
    st.integers(-2, 2**53 + 2), st.booleans(), st.text(max_size=3), st.none(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2), st.floats(allow_nan=False),
    # What no serializer should let through, and the check must survive anyway.
    st.sampled_from(BIG), st.integers(), st.floats(), st.sampled_from([math.nan, math.inf, 1.0, 0.0]),
    st.binary(max_size=3), st.tuples(st.integers()), st.sets(st.integers(), max_size=2),
    st.builds(IntSub, st.integers(0, 10)), st.builds(Weird),
    st.sampled_from([bytearray(b"x"), frozenset(), object(), type, ...]),
)
codes = st.one_of(st.sampled_from([*LAYOUTS, 0, 2, 7, 36, 50, 999, -1]),
                  st.sampled_from([True, False, 1.0, 48.0, "48", None, *BIG]), st.integers())


@settings(max_examples=3000, deadline=None)
@given(code=codes, rest=st.lists(values, max_size=7))
def test_matches_model(impl, code, rest):
    msg = [code, *rest]
    problem = impl.message_problem(msg)
    assert problem is None or type(problem) is str
    assert (problem is None) == model_ok(msg)


@settings(max_examples=2000, deadline=None)
@given(code=st.sampled_from(sorted(LAYOUTS)), position=st.integers(1, 6), value=values,
       fill=st.lists(values, min_size=6, max_size=6))
def test_every_head_position_any_value(impl, code, position, value, fill):
    """A well formed message with one element replaced by an arbitrary value."""
    lo, hi, kinds = LAYOUTS[code]
    good = {0: 1, 1: "x", 2: {}, 3: 68}
    msg = [code, *(good[k] for k in kinds), [], {}][:hi]
    if position >= len(msg):
        msg = [code, *fill][:hi]
    else:
        msg[position] = value
    problem = impl.message_problem(msg)
    assert (problem is None) == model_ok(msg)
    # check_message (on the selected build) raises ProtocolViolation and nothing else.
    try:
        assert check_message(msg) == code and problem is None
    except ProtocolViolation as exc:
        assert problem is not None and str(exc)


@pytest.mark.parametrize("msg", [[48, 1, {}, "com.x"], [48, 1, {}, "com.x", [], {}],
                                 [70, 3, {}], [8, 68, 1, {}, "e", [1]], [1, "realm", {}],
                                 [8, MAX_ID, MAX_ID, {}, "e"], [8, 0, 1, {}, "e"]])
def test_well_formed(impl, msg):
    assert impl.message_problem(msg) is None


@pytest.mark.parametrize("msg", [None, [], {}, "x", [True, 1], [48, True, {}, "x"],
                                 [48, 0, {}, "x"], [48, 2**53 + 1, {}, "x"],
                                 [48, 1, {}, "x", {}], [48, 1, {}, "x", [], []],
                                 [2**70, 1, {}, "x"], [-(2**70), 1, {}, "x"], [48.0, 1, {}, "x"],
                                 [48, 2**70, {}, "x"], [48, -(2**70), {}, "x"], [48, 1.0, {}, "x"],
                                 [8, 2**70, 1, {}, "e"], [8, -1, 1, {}, "e"], [8, True, 1, {}, "e"],
                                 [8, 68.0, 1, {}, "e"], [8, MAX_ID + 1, 1, {}, "e"],
                                 [34, 1, 2**64], [66, False, 1], [10**400, 1]])
def test_malformed(impl, msg):
    assert type(impl.message_problem(msg)) is str
    with pytest.raises(ProtocolViolation):
        check_message(msg)


def test_huge_code_is_not_formatted():
    with pytest.raises(ProtocolViolation, match="out of the 64-bit range"):
        check_message([10**5000])
    with pytest.raises(ProtocolViolation, match="unknown message type -5"):
        check_message([-5])


# value_problem: the data model every serializer can carry, and the depth limit.

def model_value_problem(value, max_depth, depth=1) -> bool:
    """True if there is a problem (recursive: tests only use small depths)."""
    t = type(value)
    if t is list or t is dict:
        if depth > max_depth:
            return True
        if t is dict and any(type(k) is not str for k in value):
            return True
        items = value.values() if t is dict else value
        return any(model_value_problem(v, max_depth, depth + 1) for v in items)
    if t is int:
        return not -(2**63) <= value <= 2**64 - 1
    return not (t in (str, bytes, float, bool) or value is None)


scalars = st.one_of(
    st.none(), st.booleans(), st.floats(), st.text(max_size=3), st.binary(max_size=3),
    st.integers(), st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30]),
    st.tuples(st.integers()), st.sets(st.integers(), max_size=1), st.builds(IntSub, st.integers()),
    st.sampled_from([bytearray(b"x"), object(), frozenset()]),
)
keys = st.one_of(st.text(max_size=3), st.integers(), st.binary(max_size=2), st.none())
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(keys, children, max_size=3)),
    max_leaves=20,
)


@settings(max_examples=2000, deadline=None)
@given(value=trees, max_depth=st.integers(0, 6))
def test_value_problem_matches_model(impl, value, max_depth):
    problem = impl.value_problem(value, max_depth, None)
    assert problem is None or type(problem) is str
    assert (problem is not None) == model_value_problem(value, max_depth)


def test_value_problem_replaces_undefined(impl):
    undefined = object()
    msg = [48, 1, {"a": undefined}, "p", [undefined, [undefined]], {"k": [{"x": undefined}]}]
    assert impl.value_problem(msg, 10, undefined) is None
    assert msg == [48, 1, {"a": None}, "p", [None, [None]], {"k": [{"x": None}]}]
    assert impl.value_problem(undefined, 10, undefined) is None  # top level: left as is
    assert impl.value_problem([object()], 10, undefined) is not None


@pytest.mark.parametrize("depth", [1, 2, 127, 128, 129, 100_000])
def test_value_problem_deep_nesting(impl, depth):
    lists = dicts = 1
    for _ in range(depth - 1):
        lists = [lists]
        dicts = {"k": dicts}
    lists, dicts = [lists], {"k": dicts}  # depth containers around the scalar
    for value in (lists, dicts):
        problem = impl.value_problem(value, 128, None)
        assert (problem is None) == (depth <= 128), problem
        assert impl.depth_exceeds(value, 128) == (depth > 128)


def test_value_problem_wide_and_cyclic(impl):
    wide = [[i, {"k": [i]}] for i in range(10_000)]
    assert impl.value_problem(wide, 4, None) is None
    assert impl.value_problem(wide, 3, None) == "nesting deeper than 3 levels"
    cycle: list = []
    cycle.append(cycle)
    assert impl.value_problem(cycle, 128, None) == "nesting deeper than 128 levels"
    assert impl.depth_exceeds(cycle, 1024)
    assert impl.value_problem([2**64 - 1, -(2**63)], 1, None) is None
    assert "64-bit" in impl.value_problem([[2**64]], 5, None)
    assert "key" in impl.value_problem([{b"k": 1}], 5, None)


@settings(max_examples=500, deadline=None)
@given(value=trees, max_depth=st.integers(0, 6))
def test_depth_exceeds_matches_model(impl, value, max_depth):
    def depth(v) -> int:
        if isinstance(v, (list, tuple, dict)):
            items = v.values() if isinstance(v, dict) else v
            return 1 + max((depth(x) for x in items), default=0)
        return 0

    assert impl.depth_exceeds(value, max_depth) == (depth(value) > max_depth)
