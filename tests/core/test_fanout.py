"""Publish filters against a plain model, and the fan-out loop over a subscription's
members (``fastwamp.router.member.send_to``) against the filter, on both builds."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp.router.twins import interpreted_module


class Receiver:
    def __init__(self, sid: int, authid: str, authrole: str) -> None:
        self.id = sid
        self.authid = authid
        self.authrole = authrole


def model_admits(r, exclude_id, sets) -> bool:
    if r.id == exclude_id:
        return False
    for (eligible, excluded), value in zip(
        (sets[0:2], sets[2:4], sets[4:6]), (r.id, r.authid, r.authrole), strict=True
    ):
        if eligible is not None and value not in eligible:
            return False
        if excluded is not None and value in excluded:
            return False
    return True


ids = st.integers(1, 6)
names = st.sampled_from(["a", "b", "c"])
maybe_ids = st.none() | st.frozensets(ids)
maybe_names = st.none() | st.frozensets(names)
#: (authid, authrole) of receivers 1..n; the filter's exclude_id; its six sets.
people = st.lists(st.tuples(names, names), min_size=0, max_size=6)
exclude_ids = st.integers(0, 6)
filter_sets = st.tuples(maybe_ids, maybe_ids, maybe_names, maybe_names, maybe_names, maybe_names)


@settings(max_examples=400, deadline=None)
@given(people=people, exclude_id=exclude_ids, sets=filter_sets)
def test_receiver_filter_matches_model(impl, people, exclude_id, sets):
    receivers = [Receiver(i + 1, a, r) for i, (a, r) in enumerate(people)]
    flt = impl.ReceiverFilter(exclude_id, *sets)
    assert flt.has_lists == any(s is not None for s in sets)
    for r in receivers:
        assert flt.admits(r) == model_admits(r, exclude_id, sets)


def member_module(impl: Any) -> ModuleType:
    """``fastwamp.router.member`` of the build: its source, or the compiled twin."""
    if impl.name == "py":
        return interpreted_module("fastwamp.router.member")
    try:
        return importlib.import_module("fastwamp.router.member_c")
    except ImportError:
        pytest.skip("compiled router not built")


def members(module: ModuleType, people: list[tuple[str, str]]) -> tuple[list[Any], list[Any]]:
    """Members with ids 1.. and the given (authid, authrole); and the delivery queue."""
    queued: list[Any] = []
    out = []
    for i, (authid, authrole) in enumerate(people):
        record = module.Member(None, queued.append)
        record.id, record.authid, record.authrole = i + 1, authid, authrole
        out.append(record)
    return out, queued


@settings(max_examples=300, deadline=None)
@given(people=people, exclude_id=exclude_ids, sets=filter_sets, want=st.frozensets(ids),
       start=st.integers(0, 6), closed=st.frozensets(ids))
def test_send_to_members_follows_the_filter(impl, people, exclude_id, sets, want, start,
                                            closed):
    module = member_module(impl)
    receivers, queued = members(module, people)
    for record in receivers:
        record.closed = record.id in closed
    flt = impl.ReceiverFilter(exclude_id, *sets)
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


def test_send_to_without_filter_sends_to_the_range(impl):
    module = member_module(impl)
    receivers, queued = members(module, [("x", "y")] * 4)
    assert module.send_to(receivers, 1, 3, ["e"], None, frozenset(), None) == 2
    assert [len(r.outbox) for r in receivers] == [0, 1, 1, 0]
    assert queued == receivers[1:3]


def test_compiled_send_to_takes_only_members(impl):
    if impl.name == "py":
        pytest.skip("the interpreted loop takes anything with send()")
    module = member_module(impl)
    with pytest.raises(TypeError):
        module.send_to([object()], 0, 1, ["e"], None, frozenset(), None)


class _Sink:
    def __init__(self, written: list, fail: bool = False) -> None:
        self.written, self.fail = written, fail

    def send_messages(self, msgs: list) -> None:
        if self.fail:
            raise RuntimeError("a bug in a transport")
        self.written.extend(msgs)


class _Owner:
    peer = "tcp4:127.0.0.1:1"

    def __init__(self, session_id: int, failed: list) -> None:
        self.id, self._failed = session_id, failed

    def delivery_failed(self) -> None:
        self._failed.append(self.id)


def test_deliver_all_serves_every_member_when_one_fails(impl, caplog):
    """The router's flush (``member.deliver_all``): each member with output gets it,
    also what delivering queues meanwhile; one whose delivery raises is logged and
    its session told, and the others are served all the same."""
    module = member_module(impl)
    pending: list[Any] = []
    written: list = []
    failed: list = []
    records = []
    for i in range(3):
        record = module.Member(_Owner(i + 1, failed), pending.append)
        record.id = i + 1
        record.sink = _Sink(written, fail=i == 1)
        records.append(record)
    later = module.Member(_Owner(4, failed), pending.append)
    later.id = 4
    later.sink = _Sink(written)

    class Chained(_Sink):  # delivering to the first queues output for another
        def send_messages(self, msgs: list) -> None:
            super().send_messages(msgs)
            later.send(["later"])

    records[0].sink = Chained(written)
    for i, record in enumerate(records):
        record.send([f"m{i}"])
    with caplog.at_level("ERROR", logger="fastwamp.router"):
        module.deliver_all(pending)
    assert written == [["m0"], ["m2"], ["later"]]
    assert failed == [2] and pending == []
    assert "session 2: delivering output failed" in caplog.text
