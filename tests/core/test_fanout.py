"""Event fan-out and publish filters, on both builds, against a plain model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


class Receiver:
    def __init__(self, sid: int, authid: str, authrole: str) -> None:
        self.id = sid
        self.authid = authid
        self.authrole = authrole
        self.got: list = []

    def send(self, msg) -> None:
        self.got.append(msg)


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


@settings(max_examples=400, deadline=None)
@given(
    people=st.lists(st.tuples(names, names), min_size=0, max_size=6),
    exclude_id=st.integers(0, 6),
    sets=st.tuples(maybe_ids, maybe_ids, maybe_names, maybe_names, maybe_names, maybe_names),
    want=st.frozensets(ids),
    start=st.integers(0, 6),
)
def test_send_to_matches_model(impl, people, exclude_id, sets, want, start):
    receivers = [Receiver(i + 1, a, r) for i, (a, r) in enumerate(people)]
    flt = impl.ReceiverFilter(exclude_id, *sets)
    start = min(start, len(receivers))
    event, disclosed = ["event"], ["disclosed"]
    sent = impl.send_to(receivers, start, len(receivers), event, disclosed, want, flt)
    expected = 0
    for i, r in enumerate(receivers):
        admitted = i >= start and model_admits(r, exclude_id, sets)
        expected += admitted
        if not admitted:
            assert r.got == []
        else:
            assert r.got == [disclosed if r.id in want else event]
    assert sent == expected


def test_no_filter_sends_to_all(impl):
    receivers = [Receiver(i, "x", "y") for i in range(1, 5)]
    assert impl.send_to(receivers, 1, 3, ["e"], None, frozenset(), None) == 2
    assert [len(r.got) for r in receivers] == [0, 1, 1, 0]
