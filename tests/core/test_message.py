"""The structural message check, on both builds, against a plain model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core.message_py import LAYOUTS, MAX_ID

KIND_OK = {
    0: lambda v: type(v) is int and 0 < v <= MAX_ID,
    1: lambda v: type(v) is str,
    2: lambda v: type(v) is dict,
    3: lambda v: type(v) is int and v >= 0,
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


values = st.one_of(
    st.integers(-2, 2**53 + 2), st.booleans(), st.text(max_size=3), st.none(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2), st.floats(allow_nan=False),
)
codes = st.sampled_from([*LAYOUTS, 0, 2, 7, 36, 50, 999, -1])


@settings(max_examples=3000, deadline=None)
@given(code=codes, rest=st.lists(values, max_size=7))
def test_matches_model(impl, code, rest):
    msg = [code, *rest]
    assert (impl.message_problem(msg) is None) == model_ok(msg)


@pytest.mark.parametrize("msg", [[48, 1, {}, "com.x"], [48, 1, {}, "com.x", [], {}],
                                 [70, 3, {}], [8, 68, 1, {}, "e", [1]], [1, "realm", {}]])
def test_well_formed(impl, msg):
    assert impl.message_problem(msg) is None


@pytest.mark.parametrize("msg", [None, [], {}, "x", [True, 1], [48, True, {}, "x"],
                                 [48, 0, {}, "x"], [48, 2**53 + 1, {}, "x"],
                                 [48, 1, {}, "x", {}], [48, 1, {}, "x", [], []]])
def test_malformed(impl, msg):
    assert impl.message_problem(msg) is not None
