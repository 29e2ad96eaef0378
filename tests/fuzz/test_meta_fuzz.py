"""Every meta procedure, called with random arguments by an ordinary session.

Whatever the arguments (number, types, sizes, keyword names), the call is
answered once, with a RESULT or an ERROR that is not an internal error (or, for
Arguments/ArgumentsKw that are not a list/dict, the session is aborted with
``wamp.error.protocol_violation``); nothing raises out of the router, it logs no
error, and bystanders (a caller/callee pair and a subscriber) keep working and
are not closed.
"""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fastwamp.config import Config, HistoryConfig, RealmConfig
from fastwamp.router import ids as router_ids
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

from .common import GOOD_ROLES, META_CALLS, META_PROCEDURES, ErrorLog, internal
from .strategies import PROC, TOPIC, materialize


def joined(router) -> LinkedPeer:
    p = LinkedPeer(router)
    assert p.hello("realm1", roles=GOOD_ROLES)[0] == m.WELCOME
    return p


def reply_to(peer: LinkedPeer, code: int, request: int) -> list:
    out = peer.take()
    assert len(out) == 1 and out[0][0] == code + 1 and out[0][1] == request, out
    return out[0]


@pytest.mark.parametrize("procedure", sorted(META_PROCEDURES))
@settings(max_examples=40, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
          report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_meta_procedure_with_random_arguments(procedure, data):
    saved_rng = router_ids.use_generator(random.Random(0))  # ids replay
    errors = ErrorLog()
    logging.getLogger("fastwamp").addHandler(errors)
    try:
        run_meta_call(procedure, data, errors)
    finally:
        router_ids.use_generator(saved_rng)
        logging.getLogger("fastwamp").removeHandler(errors)


def run_meta_call(procedure, data, errors: ErrorLog) -> None:
    router, clock = make_router(Config(realms=[RealmConfig(
        "realm1", event_history=[HistoryConfig(TOPIC, "exact", 10)])]))
    callee, subscriber, bystander, caller = (joined(router) for _ in range(4))
    callee.send([m.REGISTER, 1, {}, PROC])
    reg_id = reply_to(callee, m.REGISTER, 1)[2]
    subscriber.send([m.SUBSCRIBE, 1, {}, TOPIC])
    sub_id = reply_to(subscriber, m.SUBSCRIBE, 1)[2]
    bystander.send([m.PUBLISH, 1, {"retain": True}, TOPIC, ["before"]])
    assert len(subscriber.take()) == 1
    ids = {"session": [p.session.id for p in (callee, subscriber, bystander, caller)],
           "registration": [reg_id], "subscription": [sub_id]}
    msg = materialize(data.draw(META_CALLS[procedure], label="message"), ids)
    msg[1] = 7
    caller.send(msg)
    out = caller.take()
    if len(msg) > 4 and (type(msg[4]) is not list or len(msg) > 5 and type(msg[5]) is not dict):
        assert len(out) == 1 and out[0][0] == m.ABORT, out
        assert out[0][2] == uris.PROTOCOL_VIOLATION, out
    else:
        assert len(out) == 1, f"expected one answer, got {out!r}"
        answer = out[0]
        assert answer[0] in (m.RESULT, m.ERROR), answer
        if answer[0] == m.ERROR:
            assert answer[1:3] == [m.CALL, 7] and not internal(answer[4]), answer
        else:
            assert answer[1] == 7, answer
    clock.advance(10.0)
    assert not errors.records, "the router logged an error: " + "\n".join(
        errors.format(r) for r in errors.records)

    # The bystanders were not closed, and still call, are invoked and receive events.
    for p in (callee, subscriber, bystander):
        for left in p.take():
            assert left[0] not in (m.ABORT, m.GOODBYE), f"a bystander was closed: {left!r}"
    bystander.send([m.CALL, 2, {}, PROC, ["ping"]])
    invocation = callee.take_one()
    assert invocation[0] == m.INVOCATION, invocation
    callee.send([m.YIELD, invocation[1], {}, ["pong"]])
    assert bystander.take_one()[:4] == [m.RESULT, 2, {}, ["pong"]]
    bystander.send([m.PUBLISH, 3, {"acknowledge": True}, TOPIC, ["after"]])
    assert reply_to(bystander, m.PUBLISH, 3)
    event = subscriber.take_one()
    assert event[0] == m.EVENT and event[4] == ["after"], event
