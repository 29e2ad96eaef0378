"""Property tests: the permission matcher against an obviously correct model.

Random permission tables over a few overlapping components; the model finds the
governing rule of a URI by brute force (exact, else the longest string prefix, else
the best wildcard: literal before empty, from the left).  Patterns are held to the
safety property the broker and dealer rely on: a pattern allowed for an action
matches no URI (of a finite universe) whose governing rule denies that action.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp._core.uri import MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD
from fastwamp.config import PermissionConfig, RealmConfig, RoleConfig
from fastwamp.router.authorization import (
    ALLOW_CALL,
    ALLOW_PUBLISH,
    ALLOW_REGISTER,
    ALLOW_SUBSCRIBE,
    Authorization,
    Role,
)
from fastwamp.router.clock import Clock

COMPONENTS = ["a", "ab", "b"]
ACTIONS = ["call", "register", "publish", "subscribe"]
BITS = {"call": ALLOW_CALL, "register": ALLOW_REGISTER, "publish": ALLOW_PUBLISH,
        "subscribe": ALLOW_SUBSCRIBE}
MATCH_NAMES = {MATCH_EXACT: "exact", MATCH_PREFIX: "prefix", MATCH_WILDCARD: "wildcard"}

#: Every URI of 1 to 4 components over COMPONENTS (120 of them).
UNIVERSE = [".".join(parts) for n in range(1, 5)
            for parts in itertools.product(COMPONENTS, repeat=n)]

concrete = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4).map(".".join)
wildcards = st.lists(st.sampled_from([*COMPONENTS, "", ""]), min_size=1, max_size=4).map(
    ".".join)
prefixes = st.builds(lambda uri, cut: uri[: round(cut * len(uri))], concrete, st.floats(0, 1))
patterns = st.one_of(
    st.tuples(concrete, st.just(MATCH_EXACT)),
    st.tuples(prefixes, st.just(MATCH_PREFIX)),
    st.tuples(wildcards, st.just(MATCH_WILDCARD)),
)
tables = st.dictionaries(patterns, st.lists(st.sampled_from(ACTIONS), unique=True),
                         max_size=8)


def wildcard_matches(pattern: str, uri: str) -> bool:
    pparts, uparts = pattern.split("."), uri.split(".")
    return len(pparts) == len(uparts) and all(
        p in ("", u) for p, u in zip(pparts, uparts, strict=True))


def model_governing(table: dict, uri: str) -> list[str] | None:
    """The allowed actions of the rule that decides for ``uri`` (None: no rule)."""
    if (uri, MATCH_EXACT) in table:
        return table[(uri, MATCH_EXACT)]
    prefix_rules = [p for p, match in table if match == MATCH_PREFIX and uri.startswith(p)]
    if prefix_rules:
        return table[(max(prefix_rules, key=len), MATCH_PREFIX)]
    wild = [p for p, match in table if match == MATCH_WILDCARD and wildcard_matches(p, uri)]
    if wild:
        best = min(wild, key=lambda p: [part == "" for part in p.split(".")])
        return table[(best, MATCH_WILDCARD)]
    return None


def pattern_matches(uri: str, match: int, concrete_uri: str) -> bool:
    if match == MATCH_EXACT:
        return uri == concrete_uri
    if match == MATCH_PREFIX:
        return concrete_uri.startswith(uri)
    return wildcard_matches(uri, concrete_uri)


def make_role(table: dict) -> Role:
    perms = [PermissionConfig(uri, MATCH_NAMES[match], list(allow))
             for (uri, match), allow in table.items()]
    return Role(RoleConfig("r", permissions=perms), False, 0.0)


@settings(max_examples=200, deadline=None)
@given(table=tables, uri=concrete)
def test_concrete_uris_follow_the_most_specific_rule(table, uri):
    role = make_role(table)
    expected = model_governing(table, uri)
    bits = role.decide(uri, MATCH_EXACT)
    for action in ACTIONS:
        assert bool(bits & BITS[action]) == (expected is not None and action in expected), (
            action, uri, table)


@settings(max_examples=250, deadline=None)
@given(table=tables, pattern=patterns, action=st.sampled_from(ACTIONS))
def test_an_allowed_pattern_matches_no_forbidden_uri(table, pattern, action):
    uri, match = pattern
    role = make_role(table)
    if not role.decide(uri, match) & BITS[action]:
        return
    for candidate in UNIVERSE:
        if pattern_matches(uri, match, candidate):
            allowed = model_governing(table, candidate)
            assert allowed is not None and action in allowed, (candidate, pattern, table)


@settings(max_examples=100, deadline=None)
@given(pattern=patterns, action=st.sampled_from(ACTIONS))
def test_a_pattern_inside_one_uniform_prefix_rule_is_allowed(pattern, action):
    """Not over-strict where it is easy to be exact: a pattern whose every URI is
    governed by one prefix rule that allows the action (nothing more specific inside)."""
    uri, match = pattern
    lead = uri.split(".")[0] if match == MATCH_WILDCARD else uri
    table = {(lead, MATCH_PREFIX): [action]}
    role = make_role(table)
    assert role.decide(uri, match) & BITS[action]


@settings(max_examples=50, deadline=None)
@given(table=tables, uris=st.lists(concrete, min_size=1, max_size=20))
def test_the_decision_cache_never_changes_an_answer(table, uris):
    perms = [PermissionConfig(uri, MATCH_NAMES[match], list(allow))
             for (uri, match), allow in table.items()]
    config = RealmConfig("r", roles=[RoleConfig("r", permissions=perms)],
                         authorization_cache_entries=3)
    authz = Authorization(config, {}, Clock(), dict)

    class FakeMember:
        authrole = "r"
        calls: dict = {}

        def send_error(self, *args) -> None:
            pass

        def log_bad_input(self, *args, **kwargs) -> None:
            pass

    member = FakeMember()
    for i, uri in enumerate(uris * 2):
        expected = model_governing(table, uri)
        got = authz.authorize(member, 48, [48, i, {}, uri])  # type: ignore[arg-type]
        assert got == (expected is not None and "call" in expected)


@settings(max_examples=60, deadline=None)
@given(table=tables,
       patterns_=st.lists(patterns, min_size=1, max_size=6),
       uris=st.lists(concrete, min_size=1, max_size=12))
def test_through_the_router_no_event_or_invocation_reaches_a_forbidden_role(
        table, patterns_, uris):
    """The whole path: sessions of role ``r`` (random table) subscribe and register
    random patterns; a session of an all-powerful role publishes and calls random URIs.
    Every EVENT and INVOCATION an ``r`` session receives is for a URI its role may
    subscribe to, or register, exactly; every allowed exact subscription gets its
    events."""
    from fastwamp.config import Config
    from fastwamp.testing import LinkedPeer, make_router
    from fastwamp.wamp import messages as m

    perms = [PermissionConfig(uri, MATCH_NAMES[match], list(allow))
             for (uri, match), allow in table.items()]
    config = Config(realms=[RealmConfig("realm1", roles=[
        RoleConfig("r", permissions=perms),
        RoleConfig("all", permissions=[PermissionConfig("", "prefix", ACTIONS)])])])
    router, _ = make_router(config)

    def join(role: str) -> LinkedPeer:
        p = LinkedPeer(router)
        p.hello("realm1")
        p.session.member.authrole = role
        return p

    subscriber, callee, boss = join("r"), join("r"), join("all")
    subscribed = set()
    for i, (uri, match) in enumerate(patterns_, 1):
        options = {"match": MATCH_NAMES[match]}
        subscriber.send([m.SUBSCRIBE, i, options, uri])
        reply = subscriber.take_one()
        if reply[0] == m.SUBSCRIBED and match == MATCH_EXACT:
            subscribed.add(uri)
        callee.send([m.REGISTER, i, {**options, "invoke": "roundrobin"}, uri])
        callee.take_one()
    for i, uri in enumerate(uris, 100):
        boss.send([m.PUBLISH, i, {}, uri, [uri]])
        boss.send([m.CALL, i, {}, uri, [uri]])
    for msg in subscriber.take():
        assert msg[0] == m.EVENT
        topic = msg[4][0]
        allowed = model_governing(table, topic)
        assert allowed is not None and "subscribe" in allowed, (topic, table)
        subscribed.discard(topic)
    assert not subscribed & set(uris), "an allowed exact subscription missed its event"
    for msg in callee.take():
        assert msg[0] == m.INVOCATION
        procedure = msg[4][0]
        allowed = model_governing(table, procedure)
        assert allowed is not None and "register" in allowed, (procedure, table)
