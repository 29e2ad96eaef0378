"""Micro benchmark: what authorization adds to one routed call.

The call of ``test_bench_router.test_call_decode_dispatch_encode`` (decode CALL, route,
encode INVOCATION; decode YIELD, route, encode RESULT) on an open realm (no hook at
all), and on a realm whose role has 1,000 permission rules (exact, prefix and wildcard),
without and with rate limits.

Run: ``pytest bench/test_bench_authz.py --benchmark-only``.
"""

from __future__ import annotations

import pytest
from test_bench_router import joined_session

from fastwamp.config import Config, PermissionConfig, RealmConfig, RoleConfig
from fastwamp.router import Router
from fastwamp.testing import FakeScheduler
from fastwamp.wamp import messages as m
from fastwamp.wamp.serializers import MsgpackSerializer

ALL = ["call", "register", "publish", "subscribe"]


def thousand_rules() -> list[PermissionConfig]:
    """1,000 rules: 400 exact, 400 prefix, 199 wildcard, and the one that governs the
    benchmark's procedure (a prefix rule, so the lookup walks the radix tree)."""
    rules = []
    for i in range(400):
        rules.append(PermissionConfig(f"com.svc{i}.proc{i}", "exact", ["call"]))
        rules.append(PermissionConfig(f"com.svc{i}.", "prefix", ALL))
    for i in range(199):
        rules.append(PermissionConfig(f"com.svc{i}..get", "wildcard", ["call"]))
    rules.append(PermissionConfig("com.example.", "prefix", ALL))
    return rules


CONFIGS = {
    "open": RealmConfig("realm1", disclosure="on_request"),
    "roles-1000": RealmConfig("realm1", disclosure="on_request", roles=[
        RoleConfig("anonymous", permissions=thousand_rules())]),
    "roles-1000-ratelimited": RealmConfig(
        "realm1", disclosure="on_request", session_calls_per_second=1e9,
        roles=[RoleConfig("anonymous", permissions=thousand_rules(), calls_per_second=1e9)]),
}


@pytest.mark.parametrize("realm", list(CONFIGS))
def test_call_with_authorization(benchmark, realm):
    router = Router(Config(realms=[CONFIGS[realm]]))
    router.scheduler = FakeScheduler(router)
    ser = MsgpackSerializer()
    callee, _ = joined_session(router, ser)
    caller, caller_sink = joined_session(router, ser)
    callee.receive([m.REGISTER, 1, {}, "com.example.add"])
    router.flush()
    assert (router.realms["realm1"].authorize is None) == (realm == "open")
    decode = ser.decode
    state = {"request": 0}

    def one_call() -> None:
        state["request"] += 1
        call = ser.encode([m.CALL, state["request"], {}, "com.example.add", [1, 2]])
        caller.receive(decode(call))
        router.flush()
        yield_ = ser.encode([m.YIELD, callee.member.last_invocation_id, {}, [3]])
        callee.receive(decode(yield_))
        router.flush()

    benchmark(one_call)
    assert caller_sink.out and caller_sink.out[-1].startswith(b"\x94\x32")  # RESULT


@pytest.mark.parametrize("case", ["cached", "uncached", "prefix-pattern", "wildcard-pattern"])
def test_decision_of_1000_rules(benchmark, case):
    """One permission decision: from the role's cache, or computed for a URI (trie
    lookup), for a prefix pattern (``com.``: every rule under it) or a wildcard pattern
    (what a client sending distinct patterns makes the router compute each time)."""
    from fastwamp.router.authorization import Role

    role = Role(RoleConfig("r", permissions=thousand_rules()), False, 0.0)
    uri = "com.example.add"
    if case == "cached":
        role.cache[uri] = role.decide(uri, 0)
        benchmark(role.cache.get, uri)
    elif case == "uncached":
        benchmark(role.decide, uri, 0)
    elif case == "prefix-pattern":
        benchmark(role.decide, "com.", 1)
    else:
        benchmark(role.decide, "com.svc3..get", 2)
