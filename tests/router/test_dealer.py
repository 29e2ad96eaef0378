"""Dealer behaviour as message scripts through the sans-I/O core."""

from __future__ import annotations

import collections

import pytest

from fastwamp.testing import DEFAULT_ROLES
from fastwamp.wamp import messages as m

NO_CANCEL_ROLES = {"caller": {}, "callee": {}}


def register(p, uri, request=1, **options):
    p.send([m.REGISTER, request, options, uri])
    reply = p.take_one()
    assert reply[0] == m.REGISTERED, reply
    return reply[2]


def answer(callee, *payload):
    inv = callee.take_one()
    assert inv[0] == m.INVOCATION, inv
    callee.send([m.YIELD, inv[1], {}, *payload])
    return inv


def test_call_roundtrip_args_kwargs(peer):
    callee, caller = peer(), peer()
    reg = register(callee, "com.add")
    caller.send([m.CALL, 7, {}, "com.add", [1, 2], {"k": "v"}])
    inv = callee.take_one()
    assert inv[:3] == [m.INVOCATION, 1, reg] and inv[4:] == [[1, 2], {"k": "v"}]
    assert "procedure" not in inv[3] and "caller" not in inv[3]
    callee.send([m.YIELD, inv[1], {}, [3], {"x": 1}])
    assert caller.take_one() == [m.RESULT, 7, {}, [3], {"x": 1}]


def test_invocation_ids_are_sequential_per_callee(peer):
    callee, caller = peer(), peer()
    register(callee, "com.p")
    for i in range(1, 4):
        caller.send([m.CALL, i, {}, "com.p"])
    assert [inv[1] for inv in callee.take()] == [1, 2, 3]


def test_application_error_is_relayed_unchanged(peer):
    callee, caller = peer(), peer()
    register(callee, "com.fail")
    caller.send([m.CALL, 1, {}, "com.fail"])
    inv = callee.take_one()
    callee.send([m.ERROR, m.INVOCATION, inv[1], {}, "com.app.oops", ["a", 1], {"b": [2]}])
    assert caller.take_one() == [m.ERROR, m.CALL, 1, {}, "com.app.oops", ["a", 1], {"b": [2]}]


def test_no_such_procedure_and_invalid_uri(peer):
    caller = peer()
    caller.send([m.CALL, 1, {}, "com.nothing"])
    err = caller.take_one()
    assert err[:5] == [m.ERROR, m.CALL, 1, {}, "wamp.error.no_such_procedure"]
    caller.send([m.CALL, 2, {}, "com..bad"])
    assert caller.take_one()[4] == "wamp.error.invalid_uri"
    caller.send([m.CALL, 3, {}, "com.has space"])
    assert caller.take_one()[4] == "wamp.error.invalid_uri"


def test_register_errors(peer):
    a, b = peer(), peer()
    register(a, "com.single")
    b.send([m.REGISTER, 1, {}, "com.single"])
    assert b.take_one()[4] == "wamp.error.procedure_already_exists"
    b.send([m.REGISTER, 2, {}, "wamp.session.count"])
    assert b.take_one()[4] == "wamp.error.not_authorized"
    b.send([m.REGISTER, 3, {}, "com.bad..uri"])
    assert b.take_one()[4] == "wamp.error.invalid_uri"
    b.send([m.REGISTER, 4, {"invoke": "sometimes"}, "com.x"])
    assert b.take_one()[4] == "wamp.error.invalid_argument"
    b.send([m.REGISTER, 5, {"match": "fuzzy"}, "com.x"])
    assert b.take_one()[4] == "wamp.error.invalid_argument"


def test_unregister(peer):
    callee, other, caller = peer(), peer(), peer()
    reg = register(callee, "com.p")
    other.send([m.UNREGISTER, 1, reg])
    assert other.take_one()[4] == "wamp.error.no_such_registration"
    callee.send([m.UNREGISTER, 2, reg])
    assert callee.take_one() == [m.UNREGISTERED, 2]
    callee.send([m.UNREGISTER, 3, reg])
    assert callee.take_one()[4] == "wamp.error.no_such_registration"
    caller.send([m.CALL, 1, {}, "com.p"])
    assert caller.take_one()[4] == "wamp.error.no_such_procedure"


def test_callee_leaving_cancels_calls_in_flight(peer):
    callee, caller = peer(), peer()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {}, "com.slow"])
    caller.send([m.CALL, 2, {}, "com.slow"])
    callee.take()
    callee.disconnect()
    errors = caller.take()
    assert sorted(e[2] for e in errors) == [1, 2]
    assert all(e[0] == m.ERROR and e[4] == "wamp.error.canceled" and e[5] for e in errors)


def test_caller_leaving_interrupts_callee(peer):
    callee, caller = peer(), peer()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {}, "com.slow"])
    inv = callee.take_one()
    caller.disconnect()
    assert callee.take_one() == [m.INTERRUPT, inv[1], {"mode": "killnowait",
                                                       "reason": "wamp.error.canceled"}]
    callee.send([m.YIELD, inv[1], {}, [1]])  # late answer: dropped, no protocol violation
    assert callee.take() == [] and not callee.closed


def test_yield_for_unknown_invocation_is_protocol_violation(peer):
    callee = peer()
    callee.send([m.YIELD, 99, {}])
    assert callee.take_one()[2] == "wamp.error.protocol_violation"


@pytest.mark.parametrize("policy", ["roundrobin", "random", "first", "last",
                                    "least_inflight", "p2c"])
def test_shared_registration_policy_mismatch(peer, policy):
    a, b = peer(), peer()
    register(a, "com.shared", invoke=policy)
    other = "single" if policy != "single" else "roundrobin"
    b.send([m.REGISTER, 1, {"invoke": other}, "com.shared"])
    assert b.take_one()[4] == "wamp.error.procedure_already_exists"
    register(b, "com.shared", invoke=policy)


def _who_answers(callees, caller, n, start=1):
    counts = collections.Counter()
    for i in range(start, start + n):
        caller.send([m.CALL, i, {}, "com.shared"])
        for idx, c in enumerate(callees):
            got = c.take()
            if got:
                counts[idx] += 1
                c.send([m.YIELD, got[0][1], {}])
        assert caller.take()[0][0] == m.RESULT
    return counts


def test_roundrobin_rotates_strictly(peer):
    callees = [peer() for _ in range(3)]
    caller = peer()
    for c in callees:
        register(c, "com.shared", invoke="roundrobin")
    order = []
    for i in range(1, 7):
        caller.send([m.CALL, i, {}, "com.shared"])
        for idx, c in enumerate(callees):
            got = c.take()
            if got:
                order.append(idx)
                c.send([m.YIELD, got[0][1], {}])
    assert order == [0, 1, 2, 0, 1, 2]


def test_first_and_last_failover(peer):
    for policy, expect_first in (("first", 0), ("last", 2)):
        callees = [peer() for _ in range(3)]
        caller = peer()
        for c in callees:
            register(c, "com.shared", invoke=policy)
        counts = _who_answers(callees, caller, 5)
        assert counts == {expect_first: 5}
        callees[expect_first].disconnect()
        counts = _who_answers(callees, caller, 5, start=6)
        assert counts == {1: 5}
        for c in callees[1:]:
            c.disconnect()


def test_failover_and_rejoin(peer):
    a, b = peer(), peer()
    caller = peer()
    register(a, "com.shared", invoke="roundrobin")
    register(b, "com.shared", invoke="roundrobin")
    a.disconnect()
    assert _who_answers([a, b], caller, 4) == {1: 4}
    c = peer()
    register(c, "com.shared", invoke="roundrobin")
    assert _who_answers([a, b, c], caller, 4, start=10) == {1: 2, 2: 2}


def test_prefix_and_wildcard_registration(peer):
    users, audit, exact, caller = peer(), peer(), peer(), peer()
    register(users, "com.myapp.users.", match="prefix")
    register(audit, "com.myapp..audit", match="wildcard")
    register(exact, "com.myapp.users.audit")
    caller.send([m.CALL, 1, {}, "com.myapp.users.get", [123]])
    inv = users.take_one()
    assert inv[3]["procedure"] == "com.myapp.users.get"
    caller.send([m.CALL, 2, {}, "com.myapp.orders.audit"])
    assert audit.take_one()[3]["procedure"] == "com.myapp.orders.audit"
    caller.send([m.CALL, 3, {}, "com.myapp.users.audit"])  # exact beats prefix and wildcard
    assert exact.take_one()[3] == {}


def test_caller_disclosure(peer):
    callee, caller = peer(), peer()
    register(callee, "com.who", disclose_caller=True)
    caller.send([m.CALL, 1, {}, "com.who"])
    details = callee.take_one()[3]
    assert details["caller"] == caller.session.id
    assert details["caller_authid"] == caller.session.authid
    assert details["caller_authrole"] == "anonymous"
    callee2, = [peer()]
    register(callee2, "com.who2")
    caller.send([m.CALL, 2, {"disclose_me": True}, "com.who2"])
    assert callee2.take_one()[3]["caller"] == caller.session.id


def test_disclosure_refused_by_realm(config, peer):
    from fastwamp.testing import LinkedPeer, make_router

    config.realms[0].disclosure = "never"
    router, _ = make_router(config)
    callee, caller = LinkedPeer(router), LinkedPeer(router)
    callee.hello()
    caller.hello()
    callee.send([m.REGISTER, 1, {"disclose_caller": True}, "com.p"])
    assert callee.take_one()[4] == "wamp.error.option_disallowed.disclose_me"
    register(callee, "com.p", request=2)
    caller.send([m.CALL, 1, {"disclose_me": True}, "com.p"])
    assert caller.take_one()[4] == "wamp.error.option_disallowed.disclose_me"


def test_trustlevel_by_role(config):
    from fastwamp.testing import LinkedPeer, make_router

    config.realms[0].trustlevels = {"anonymous": 1}
    router, _ = make_router(config)
    callee, caller = LinkedPeer(router), LinkedPeer(router)
    callee.hello()
    caller.hello()
    register(callee, "com.p")
    caller.send([m.CALL, 1, {}, "com.p"])
    assert callee.take_one()[3]["trustlevel"] == 1


def test_timeout_errors_caller_and_interrupts_callee(peer, clock):
    callee, caller = peer(), peer()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {"timeout": 250}, "com.slow"])
    inv = callee.take_one()
    clock.advance(0.249)
    assert caller.take() == []
    clock.advance(0.002)
    err = caller.take_one()
    assert err[:5] == [m.ERROR, m.CALL, 1, {}, "wamp.error.timeout"]
    assert callee.take_one() == [m.INTERRUPT, inv[1], {"mode": "killnowait",
                                                       "reason": "wamp.error.timeout"}]
    callee.send([m.YIELD, inv[1], {}, [1]])  # late: dropped
    assert caller.take() == []


def test_timeout_without_canceling_callee_sends_no_interrupt(peer, clock):
    callee, caller = peer(roles=NO_CANCEL_ROLES), peer()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {"timeout": 100}, "com.slow"])
    callee.take()
    clock.advance(0.2)
    assert caller.take_one()[4] == "wamp.error.timeout"
    assert callee.take() == []


def test_forward_timeout(peer, clock):
    roles = {"callee": {"features": {"call_timeout": True, "call_canceling": True}}}
    callee, caller = peer(roles=roles), peer()
    register(callee, "com.slow", forward_timeout=True)
    caller.send([m.CALL, 1, {"timeout": 100}, "com.slow"])
    assert callee.take_one()[3]["timeout"] == 100
    clock.advance(1)
    assert caller.take() == []


def test_router_default_and_max_timeout(config):
    from fastwamp.testing import LinkedPeer, make_router

    config.call_timeout_default_ms = 1000
    config.call_timeout_max_ms = 2000
    router, clock = make_router(config)
    callee, caller = LinkedPeer(router), LinkedPeer(router)
    callee.hello()
    caller.hello()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {}, "com.slow"])
    caller.send([m.CALL, 2, {"timeout": 60000}, "com.slow"])
    clock.advance(1.001)
    assert [e[2] for e in caller.take()] == [1]
    clock.advance(1.0)
    assert [e[2] for e in caller.take()] == [2]


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait"])
def test_cancel_modes(peer, mode):
    callee, caller = peer(), peer()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {}, "com.slow"])
    inv = callee.take_one()
    caller.send([m.CANCEL, 1, {"mode": mode}])
    if mode == "skip":
        assert callee.take() == []
        assert caller.take_one()[4] == "wamp.error.canceled"
    elif mode == "killnowait":
        assert callee.take_one() == [m.INTERRUPT, inv[1], {"mode": "killnowait"}]
        assert caller.take_one()[4] == "wamp.error.canceled"
    else:
        assert callee.take_one() == [m.INTERRUPT, inv[1], {"mode": "kill"}]
        assert caller.take() == []
        callee.send([m.ERROR, m.INTERRUPT, inv[1], {}, "wamp.error.canceled"])
        assert caller.take_one()[4] == "wamp.error.canceled"
    callee.send([m.YIELD, inv[1], {}])
    assert caller.take() == []


def test_cancel_to_callee_without_canceling_is_skip(peer):
    callee, caller = peer(roles=NO_CANCEL_ROLES), peer()
    register(callee, "com.slow")
    caller.send([m.CALL, 1, {}, "com.slow"])
    callee.take()
    caller.send([m.CANCEL, 1, {"mode": "kill"}])
    assert callee.take() == []
    assert caller.take_one()[4] == "wamp.error.canceled"


def test_receive_progress_reaches_callees_that_did_not_announce_it(peer):
    """wampy 8 announces progressive_call_results for its caller role only; its callees
    still get INVOCATION.Details.receive_progress (as Crossbar does)."""
    callee = peer(roles={"callee": {}, "caller": {}})
    caller = peer()
    register(callee, "com.stream")
    caller.send([m.CALL, 1, {"receive_progress": True}, "com.stream"])
    inv = callee.take_one()
    assert inv[3]["receive_progress"] is True
    callee.send([m.YIELD, inv[1], {"progress": True}, [0]])
    callee.send([m.YIELD, inv[1], {}, ["done"]])
    assert caller.take() == [[m.RESULT, 1, {"progress": True}, [0]],
                             [m.RESULT, 1, {}, ["done"]]]


def test_progressive_results(peer):
    callee, caller = peer(), peer()
    register(callee, "com.stream")
    caller.send([m.CALL, 1, {"receive_progress": True}, "com.stream"])
    inv = callee.take_one()
    assert inv[3]["receive_progress"] is True
    for i in range(3):
        callee.send([m.YIELD, inv[1], {"progress": True}, [i]])
    callee.send([m.YIELD, inv[1], {}, ["done"]])
    assert caller.take() == [
        [m.RESULT, 1, {"progress": True}, [0]],
        [m.RESULT, 1, {"progress": True}, [1]],
        [m.RESULT, 1, {"progress": True}, [2]],
        [m.RESULT, 1, {}, ["done"]],
    ]


def test_progressive_invocations(peer):
    roles = dict(DEFAULT_ROLES)
    roles["callee"] = {"features": {"progressive_call_invocations": True,
                                    "call_canceling": True}}
    roles["caller"] = {"features": {"progressive_call_invocations": True}}
    callee, caller = peer(roles=roles), peer(roles=roles)
    register(callee, "com.upload")
    caller.send([m.CALL, 1, {"progress": True}, "com.upload", ["a"]])
    caller.send([m.CALL, 1, {"progress": True}, "com.upload", ["b"]])
    caller.send([m.CALL, 1, {}, "com.upload", ["c"]])
    invs = callee.take()
    assert [i[1] for i in invs] == [1, 1, 1]
    assert [i[3].get("progress", False) for i in invs] == [True, True, False]
    assert [i[4] for i in invs] == [["a"], ["b"], ["c"]]
    callee.send([m.YIELD, 1, {}, ["ok"]])
    assert caller.take_one() == [m.RESULT, 1, {}, ["ok"]]


def test_reroute_on_unavailable(peer):
    a, b, caller = peer(), peer(), peer()
    register(a, "com.shared", invoke="roundrobin")
    register(b, "com.shared", invoke="roundrobin")
    caller.send([m.CALL, 1, {}, "com.shared", [42]])
    inv = a.take_one()
    a.send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.unavailable"])
    inv_b = b.take_one()
    assert inv_b[4] == [42]
    b.send([m.ERROR, m.INVOCATION, inv_b[1], {}, "wamp.error.unavailable"])
    err = caller.take_one()
    assert err[4] == "wamp.error.no_available_callee"


def test_single_unavailable_gives_no_available_callee(peer):
    a, caller = peer(), peer()
    register(a, "com.p")
    caller.send([m.CALL, 1, {}, "com.p"])
    inv = a.take_one()
    a.send([m.ERROR, m.INVOCATION, inv[1], {}, "wamp.error.unavailable"])
    assert caller.take_one()[4] == "wamp.error.no_available_callee"


def test_default_disclosure_always_discloses_caller():
    from fastwamp.config import default_config
    from fastwamp.testing import LinkedPeer, make_router

    router, _ = make_router(default_config())
    callee, caller = LinkedPeer(router), LinkedPeer(router)
    callee.hello()
    caller.hello()
    register(callee, "com.p")
    caller.send([m.CALL, 1, {}, "com.p"])
    details = callee.take_one()[3]
    assert details["caller"] == caller.session.id
    assert details["caller_authrole"] == "anonymous"


def test_calls_in_flight_quota(config):
    from fastwamp.testing import LinkedPeer, make_router

    config.realms[0].max_calls_in_flight = 3
    router, _ = make_router(config)
    callee, caller, other = LinkedPeer(router), LinkedPeer(router), LinkedPeer(router)
    for p in (callee, caller, other):
        p.hello()
    register(callee, "com.slow")
    for i in range(1, 5):
        caller.send([m.CALL, i, {}, "com.slow"])
    err = caller.take_one()
    assert err[:5] == [m.ERROR, m.CALL, 4, {}, "fastwamp.error.quota_exceeded"]
    assert len(callee.take()) == 3
    other.send([m.CALL, 1, {}, "com.slow"])  # the quota is per session
    assert callee.take_one()[0] == m.INVOCATION
    callee.send([m.YIELD, 1, {}])
    caller.take()
    caller.send([m.CALL, 5, {}, "com.slow"])  # an answer frees a place
    assert callee.take_one()[0] == m.INVOCATION
