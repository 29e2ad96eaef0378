"""The fan-out loop over a subscription's members (``member.send_to``), on the
interpreted source and the compiled twin: it sends to the members in range that
the publish filter admits (the filter itself is held to a plain model in
``tests/core/test_fanout.py``), the disclosed EVENT to those who asked for it,
nothing to a closed member."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core import fanout
from fastwamp.router.twins import interpreted_module


def _builds() -> dict[str, tuple[ModuleType, Any] | None]:
    try:
        compiled = importlib.import_module("fastwamp.router.member_c")
    except ImportError:
        compiled = None
    return {
        "py": (interpreted_module("fastwamp.router.member"), fanout.ReceiverFilterPy),
        "c": None if compiled is None or fanout.ReceiverFilterC is None
        else (compiled, fanout.ReceiverFilterC),
    }


BUILDS = _builds()


@pytest.fixture(scope="module", params=["py", "c"])
def build(request: pytest.FixtureRequest) -> tuple[ModuleType, Any]:
    found = BUILDS[request.param]
    if found is None:
        pytest.skip("compiled router not built")
    return found


def members(module: ModuleType, people: list[tuple[str, str]]) -> tuple[list[Any], list[Any]]:
    """Members with ids 1.. and the given (authid, authrole); and the delivery queue."""
    queued: list[Any] = []
    out = []
    for i, (authid, authrole) in enumerate(people):
        record = module.Member(None, queued.append)
        record.id, record.authid, record.authrole = i + 1, authid, authrole
        out.append(record)
    return out, queued


ids = st.integers(1, 6)
names = st.sampled_from(["a", "b", "c"])
maybe_ids = st.none() | st.frozensets(ids)
maybe_names = st.none() | st.frozensets(names)


@settings(max_examples=300, deadline=None)
@given(
    people=st.lists(st.tuples(names, names), min_size=0, max_size=6),
    exclude_id=st.integers(0, 6),
    sets=st.tuples(maybe_ids, maybe_ids, maybe_names, maybe_names, maybe_names, maybe_names),
    want=st.frozensets(ids),
    start=st.integers(0, 6),
    closed=st.frozensets(ids),
)
def test_send_to_matches_model(build, people, exclude_id, sets, want, start, closed):
    module, receiver_filter = build
    receivers, queued = members(module, people)
    for record in receivers:
        record.closed = record.id in closed
    flt = receiver_filter(exclude_id, *sets)
    start = min(start, len(receivers))
    event, disclosed = ["event"], ["disclosed"]
    sent = module.send_to(receivers, start, len(receivers), event, disclosed, want, flt)
    expected = 0
    for i, record in enumerate(receivers):
        admitted = i >= start and flt.admits(record)
        expected += admitted
        if not admitted or record.closed:  # a closed member takes nothing more
            assert record.outbox == []
        else:
            assert record.outbox == [disclosed if record.id in want else event]
    assert sent == expected
    assert queued == [r for r in receivers if r.outbox]


def test_no_filter_sends_to_the_range(build):
    module, _ = build
    receivers, queued = members(module, [("x", "y")] * 4)
    assert module.send_to(receivers, 1, 3, ["e"], None, frozenset(), None) == 2
    assert [len(r.outbox) for r in receivers] == [0, 1, 1, 0]
    assert queued == receivers[1:3]


@pytest.mark.skipif(BUILDS["c"] is None, reason="compiled router not built")
def test_compiled_loop_takes_only_members():
    module, _ = BUILDS["c"]  # type: ignore[misc]
    with pytest.raises(TypeError):
        module.send_to([object()], 0, 1, ["e"], None, frozenset(), None)
