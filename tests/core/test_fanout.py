"""Publish filters, on both builds, against a plain model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


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


@settings(max_examples=400, deadline=None)
@given(
    people=st.lists(st.tuples(names, names), min_size=0, max_size=6),
    exclude_id=st.integers(0, 6),
    sets=st.tuples(maybe_ids, maybe_ids, maybe_names, maybe_names, maybe_names, maybe_names),
)
def test_receiver_filter_matches_model(impl, people, exclude_id, sets):
    receivers = [Receiver(i + 1, a, r) for i, (a, r) in enumerate(people)]
    flt = impl.ReceiverFilter(exclude_id, *sets)
    assert flt.has_lists == any(s is not None for s in sets)
    for r in receivers:
        assert flt.admits(r) == model_admits(r, exclude_id, sets)
