"""Authorization as message scripts: roles and permissions, patterns, disclosure, the meta
API's default protection, rate limits, and reloading the rules (sans-I/O, fake clock)."""

from __future__ import annotations

import itertools

import pytest

from fastwamp.config import (
    Config,
    ConfigError,
    PermissionConfig,
    RealmConfig,
    RoleConfig,
    config_from_toml,
)
from fastwamp.router.authorization import RATE_LIMITED
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

NOT_AUTHORIZED = uris.NOT_AUTHORIZED
_ids = itertools.count(1)


def perm(uri: str, match: str = "exact", *allow: str, **switches: bool) -> PermissionConfig:
    return PermissionConfig(uri, match, list(allow), **switches)


def realm(*roles: RoleConfig, **keys) -> Config:
    return Config(realms=[RealmConfig("realm1", roles=list(roles), **keys)])


def join(router, authrole: str | None = None) -> LinkedPeer:
    p = LinkedPeer(router)
    assert p.hello("realm1")[0] == m.WELCOME
    if authrole is not None:  # authentication is someone else's: set the role directly
        p.session.member.authrole = authrole
    return p


def request(p: LinkedPeer, msg: list) -> list:
    p.send(msg)
    return p.take_one()


def call(p, uri, args=None, options=None):
    return request(p, [m.CALL, next(_ids), options or {}, uri, args or []])


def register(p, uri, match="exact"):
    return request(p, [m.REGISTER, next(_ids), {"match": match}, uri])


def subscribe(p, uri, match="exact"):
    return request(p, [m.SUBSCRIBE, next(_ids), {"match": match}, uri])


def publish(p, uri, acknowledge=True, **options):
    p.send([m.PUBLISH, next(_ids), {"acknowledge": acknowledge, **options}, uri, ["x"]])
    return p.take()


BACKEND = RoleConfig("backend", permissions=[
    perm("com.app.", "prefix", "call", "register", "publish", "subscribe")])
FRONTEND = RoleConfig("frontend", permissions=[
    perm("com.app.", "prefix", "call", "subscribe"),
    perm("com.app.secret", "exact"),                      # most specific: nothing
    perm("com.app.news", "exact", "publish", "subscribe"),
    perm("com.app..status", "wildcard", "subscribe"),
])


@pytest.fixture
def roles_router():
    router, clock = make_router(realm(BACKEND, FRONTEND, disclosure="on_request"))
    return router, clock


def test_each_permission_kind_allows_and_denies(roles_router):
    router, _ = roles_router
    backend, frontend = join(router, "backend"), join(router, "frontend")
    assert register(backend, "com.app.add")[0] == m.REGISTERED
    assert register(frontend, "com.app.other")[4] == NOT_AUTHORIZED
    # call: allowed by the prefix rule, denied by the more specific exact rule
    frontend.send([m.CALL, 1, {}, "com.app.add", [1]])
    inv = backend.take_one()
    assert inv[0] == m.INVOCATION
    backend.send([m.YIELD, inv[1], {}, [2]])
    assert frontend.take_one()[0] == m.RESULT
    assert register(backend, "com.app.secret")[0] == m.REGISTERED
    err = call(frontend, "com.app.secret")
    assert err[:2] == [m.ERROR, m.CALL] and err[4] == NOT_AUTHORIZED
    assert backend.take() == []  # the callee never saw it
    # publish: only on the exact rule that allows it; unacknowledged denial: dropped
    assert publish(frontend, "com.app.add")[0][4] == NOT_AUTHORIZED
    assert publish(frontend, "com.app.add", acknowledge=False) == []
    assert publish(frontend, "com.app.news")[0][0] == m.PUBLISHED
    # subscribe
    assert subscribe(frontend, "com.app.news")[0] == m.SUBSCRIBED
    assert subscribe(frontend, "com.app.secret")[4] == NOT_AUTHORIZED
    assert subscribe(frontend, "com.other")[4] == NOT_AUTHORIZED
    stats = router.stats
    assert stats["not_authorized"] == 6 and stats["refused_requests"] >= 5


def test_unknown_role_gets_nothing(roles_router):
    router, _ = roles_router
    stranger = join(router, "stranger")
    assert call(stranger, "com.app.add")[4] == NOT_AUTHORIZED
    assert register(stranger, "com.app.x")[4] == NOT_AUTHORIZED
    assert subscribe(stranger, "com.app.news")[4] == NOT_AUTHORIZED
    assert subscribe(stranger, "wamp.session.on_join")[4] == NOT_AUTHORIZED
    assert publish(stranger, "com.app.news")[0][4] == NOT_AUTHORIZED
    assert call(stranger, "wamp.session.count")[4] == NOT_AUTHORIZED


def test_anonymous_sessions_get_the_configured_anonymous_authrole():
    router, _ = make_router(realm(FRONTEND, anonymous_authrole="frontend"))
    p = LinkedPeer(router)
    welcome = p.hello("realm1")
    assert welcome[2]["authrole"] == "frontend"
    assert subscribe(p, "com.app.news")[0] == m.SUBSCRIBED
    assert register(p, "com.app.x")[4] == NOT_AUTHORIZED


def test_pattern_subscriptions_need_every_matched_topic(roles_router):
    router, _ = roles_router
    frontend, backend = join(router, "frontend"), join(router, "backend")
    # "com.app." holds the denied exact rule com.app.secret: the prefix pattern is refused
    assert subscribe(frontend, "com.app.", "prefix")[4] == NOT_AUTHORIZED
    # "com.app.n" is covered by the prefix rule, and com.app.news allows subscribe too
    assert subscribe(frontend, "com.app.n", "prefix")[0] == m.SUBSCRIBED
    # wildcard "com.app..status": covered by the prefix rule com.app. (which governs)
    assert subscribe(frontend, "com.app..status", "wildcard")[0] == m.SUBSCRIBED
    # a wildcard reaching outside every rule
    assert subscribe(frontend, "com..news", "wildcard")[4] == NOT_AUTHORIZED
    # the backend may subscribe to the whole prefix: it gets the event of com.app.secret,
    # which the frontend's pattern subscription never could
    assert subscribe(backend, "com.app.", "prefix")[0] == m.SUBSCRIBED
    assert publish(backend, "com.app.secret")[0][0] == m.PUBLISHED
    assert frontend.take() == []


def test_pattern_registration_needs_every_matched_procedure():
    router, _ = make_router(realm(RoleConfig("svc", permissions=[
        perm("com.svc.", "prefix", "register", "call"),
        perm("com.svc.admin.", "prefix", "call"),
    ])))
    svc = join(router, "svc")
    assert register(svc, "com.svc.", "prefix")[4] == NOT_AUTHORIZED
    assert register(svc, "com.svc.user.", "prefix")[0] == m.REGISTERED
    assert register(svc, "com.svc..get", "wildcard")[4] == NOT_AUTHORIZED  # com.svc.admin.x.get
    assert register(svc, "com.svc.user..get", "wildcard")[0] == m.REGISTERED


def test_wildcard_rules_govern_where_no_prefix_rule_does():
    router, _ = make_router(realm(RoleConfig("r", permissions=[
        perm("com..status", "wildcard", "subscribe"),
        perm("com.db.status", "exact"),
    ])))
    p = join(router, "r")
    assert subscribe(p, "com.web.status")[0] == m.SUBSCRIBED
    assert subscribe(p, "com.db.status")[4] == NOT_AUTHORIZED
    assert subscribe(p, "com..status", "wildcard")[4] == NOT_AUTHORIZED  # com.db.status
    assert subscribe(p, "com.web.", "prefix")[4] == NOT_AUTHORIZED  # not all of it


def test_open_realm_installs_no_hook_and_keeps_todays_behaviour():
    router, _ = make_router(Config(realms=[RealmConfig("realm1")]))
    assert router.realms["realm1"].authorize is None
    p = join(router)
    assert register(p, "com.x.", "prefix")[0] == m.REGISTERED
    assert subscribe(p, "", "prefix")[0] == m.SUBSCRIBED


def test_disclosure_switches_of_a_permission():
    router, _ = make_router(realm(
        RoleConfig("caller", permissions=[
            perm("com.open.", "prefix", "call", "publish", disclose_caller=True,
                 disclose_publisher=True),
            perm("com.quiet.", "prefix", "call", "publish")]),
        RoleConfig("svc", permissions=[perm("com.", "prefix", "register", "subscribe")]),
        disclosure="on_request"))
    caller, svc = join(router, "caller"), join(router, "svc")
    register(svc, "com.open.p")
    register(svc, "com.quiet.p")
    subscribe(svc, "com.open.t")
    subscribe(svc, "com.quiet.t")
    caller.send([m.CALL, 1, {}, "com.open.p"])
    assert svc.take_one()[3]["caller"] == caller.session.id
    caller.send([m.CALL, 2, {}, "com.quiet.p"])
    assert "caller" not in svc.take_one()[3]
    publish(caller, "com.open.t")
    assert svc.take_one()[3]["publisher"] == caller.session.id
    publish(caller, "com.quiet.t")
    assert "publisher" not in svc.take_one()[3]


def test_disclosure_switch_refused_on_a_realm_that_never_discloses():
    with pytest.raises(ConfigError, match="disclose_caller"):
        config_from_toml("""
[[realms]]
name = "r"
disclosure = "never"
[[realms.roles]]
name = "a"
[[realms.roles.permissions]]
uri = "com."
match = "prefix"
allow = ["call"]
disclose_caller = true
""")


@pytest.mark.parametrize("toml, key", [
    ('[[realms.roles]]\nname = ""', "roles[0].name"),
    ('[[realms.roles]]\nname = "a"\n[[realms.roles]]\nname = "a"', "roles[1].name"),
    ('[[realms.roles]]\nname = "a"\n[[realms.roles.permissions]]\nuri = "x"\nallow = ["read"]',
     "permissions[0].allow[0]"),
    ('[[realms.roles]]\nname = "a"\n[[realms.roles.permissions]]\nuri = "x"\nmatch = "glob"',
     "permissions[0].match"),
    ('[[realms.roles]]\nname = "a"\n[[realms.roles.permissions]]\nuri = "a..b"',
     "permissions[0].uri"),
    ('[[realms.roles]]\nname = "a"\ncalls_per_second = -1.0', "roles[0].calls_per_second"),
    ('session_publish_burst = -1', "session_publish_burst"),
])
def test_bad_roles_are_refused_naming_the_key(toml, key):
    text = f'[[realms]]\nname = "r"\n{toml}\n'
    with pytest.raises(ConfigError) as info:
        config_from_toml(text)
    assert key in info.value.key


# -- the meta API ---------------------------------------------------------------------


PROTECTED = [("wamp.session.list", []), ("wamp.session.get", [1]),
             ("wamp.session.kill_all", []), ("wamp.registration.list", []),
             ("wamp.registration.get", [1]), ("wamp.registration.list_callees", [1]),
             ("wamp.subscription.list", []), ("wamp.subscription.get", [1]),
             ("wamp.subscription.list_subscribers", [1]), ("fastwamp.router.get_stats", [])]
PUBLIC = [("wamp.session.count", []), ("wamp.registration.lookup", ["com.x"]),
          ("wamp.registration.match", ["com.x"]), ("wamp.subscription.lookup", ["com.x"]),
          ("wamp.subscription.match", ["com.x"]),
          ("wamp.session.add_testament", ["com.t", [], {}]),
          ("wamp.session.flush_testaments", [])]


@pytest.mark.parametrize("procedure, args", PROTECTED)
def test_meta_default_protection_on_the_embedded_default(procedure, args):
    router, _ = make_router()  # the embedded default: realm1, anonymous, no roles
    p = join(router)
    reply = call(p, procedure, args)
    assert reply[0] == m.ERROR and reply[4] == NOT_AUTHORIZED, reply


@pytest.mark.parametrize("procedure, args", PUBLIC)
def test_public_meta_procedures_on_the_embedded_default(procedure, args):
    router, _ = make_router()
    p = join(router)
    assert call(p, procedure, args)[0] == m.RESULT
    assert subscribe(p, "wamp.registration.on_create")[0] == m.SUBSCRIBED


@pytest.mark.parametrize("procedure, args", PROTECTED)
def test_trusted_roles_may_call_every_meta_procedure(procedure, args):
    router, _ = make_router(realm(RoleConfig("ops", trusted=True)))
    p = join(router, "ops")
    reply = call(p, procedure, args)
    assert reply[0] == m.RESULT or reply[4] != NOT_AUTHORIZED, reply
    # trust is about the meta API: no application permission comes with it
    assert call(p, "com.app.x")[4] == NOT_AUTHORIZED


def test_admin_authroles_is_an_alias_of_trusted():
    router, _ = make_router(Config(realms=[RealmConfig("realm1", admin_authroles=["ops"])]))
    ops, anon = join(router, "ops"), join(router)
    assert call(ops, "wamp.session.list")[0] == m.RESULT
    assert call(anon, "wamp.session.list")[4] == NOT_AUTHORIZED


def test_reserved_rules_of_a_role_grant_or_withdraw_meta_procedures_and_events():
    router, _ = make_router(realm(RoleConfig("monitor", permissions=[
        perm("wamp.session.list", "exact", "call"),
        perm("wamp.session.count", "exact"),
        perm("wamp.session.", "prefix", "call", "subscribe"),  # kill_all: the exact rule below
        perm("wamp.session.kill_all", "exact"),
        perm("wamp.session.on_join", "exact"),
        perm("", "prefix", "call", "subscribe"),  # never opens wamp.* or fastwamp.*
    ])))
    p = join(router, "monitor")
    assert call(p, "wamp.session.list")[0] == m.RESULT
    assert call(p, "wamp.session.count")[4] == NOT_AUTHORIZED
    assert call(p, "wamp.session.kill_all")[4] == NOT_AUTHORIZED
    assert call(p, "wamp.registration.list")[4] == NOT_AUTHORIZED
    assert subscribe(p, "wamp.session.on_join")[4] == NOT_AUTHORIZED
    assert subscribe(p, "wamp.session.on_leave")[0] == m.SUBSCRIBED
    assert subscribe(p, "wamp.session.", "prefix")[4] == NOT_AUTHORIZED


def test_event_history_is_read_only_by_roles_that_may_subscribe():
    from fastwamp.config import HistoryConfig

    router, _ = make_router(realm(
        RoleConfig("reader", permissions=[perm("com.h", "exact", "subscribe")]),
        RoleConfig("other", permissions=[perm("com.other", "exact", "subscribe")]),
        event_history=[HistoryConfig("com.h", "exact", 10)]))
    reader, other = join(router, "reader"), join(router, "other")
    sub_id = subscribe(reader, "com.h")[2]
    assert call(reader, "wamp.subscription.get_events", [sub_id])[0] == m.RESULT
    assert call(other, "wamp.subscription.get_events", [sub_id])[4] == NOT_AUTHORIZED


# -- rate limits ----------------------------------------------------------------------


def test_session_rate_limit_is_a_token_bucket():
    router, clock = make_router(Config(realms=[RealmConfig(
        "realm1", session_calls_per_second=2.0, session_call_burst=3,
        session_publishes_per_second=1.0)]))
    realm_ = router.realms["realm1"]
    assert realm_.authorize is not None
    p, q = join(router), join(router)
    replies = [call(p, "wamp.session.count")[0] for _ in range(5)]
    assert replies == [m.RESULT] * 3 + [m.ERROR] * 2
    err = call(p, "wamp.session.count")
    assert err[4] == RATE_LIMITED
    assert call(q, "wamp.session.count")[0] == m.RESULT  # another session's own bucket
    clock.advance(1.0)  # two more tokens
    assert [call(p, "wamp.session.count")[0] for _ in range(3)] == [m.RESULT, m.RESULT, m.ERROR]
    assert publish(p, "com.t")[0][0] == m.PUBLISHED
    assert publish(p, "com.t")[0][4] == RATE_LIMITED
    assert publish(p, "com.t", acknowledge=False) == []
    assert router.stats["rate_limited"] == 6


def test_role_rate_limit_is_shared_by_the_roles_sessions():
    router, clock = make_router(realm(
        RoleConfig("crowd", permissions=[perm("com.", "prefix", "publish")],
                   publishes_per_second=1.0, publish_burst=2),
        RoleConfig("other", permissions=[perm("com.", "prefix", "publish")])))
    a, b, c = join(router, "crowd"), join(router, "crowd"), join(router, "other")
    assert publish(a, "com.t")[0][0] == m.PUBLISHED
    assert publish(b, "com.t")[0][0] == m.PUBLISHED
    assert publish(a, "com.t")[0][4] == RATE_LIMITED
    assert publish(b, "com.t")[0][4] == RATE_LIMITED
    assert all(publish(c, "com.t")[0][0] == m.PUBLISHED for _ in range(5))
    clock.advance(1.0)
    assert publish(b, "com.t")[0][0] == m.PUBLISHED


def test_progressive_call_chunks_count_once():
    router, clock = make_router(Config(realms=[RealmConfig(
        "realm1", session_calls_per_second=1.0, session_call_burst=1)]))
    roles = {"caller": {"features": {"progressive_call_invocations": True}},
             "callee": {"features": {"progressive_call_invocations": True,
                                     "call_canceling": True}}}
    callee, caller = LinkedPeer(router), LinkedPeer(router)
    callee.hello("realm1", roles=roles)
    caller.hello("realm1", roles=roles)
    register(callee, "com.stream")
    caller.send([m.CALL, 1, {"progress": True}, "com.stream", [1]])
    caller.send([m.CALL, 1, {"progress": True}, "com.stream", [2]])
    caller.send([m.CALL, 1, {}, "com.stream", [3]])
    assert [msg[0] for msg in callee.take()] == [m.INVOCATION] * 3
    assert caller.take() == []


def test_rate_buckets_of_departed_sessions_are_forgotten():
    router, _ = make_router(Config(realms=[RealmConfig("realm1", session_calls_per_second=5.0)]))
    authz = router.realms["realm1"].authorization
    for _ in range(300):
        p = join(router)
        call(p, "wamp.session.count")
        p.disconnect()
    assert len(authz._call_buckets) < 200


# -- reload ---------------------------------------------------------------------------


def test_reconfigure_holds_sessions_to_the_new_rules_and_revokes():
    old = realm(BACKEND, FRONTEND)
    router, _ = make_router(old)
    realm1 = router.realms["realm1"]
    backend, frontend, monitor = (join(router, "backend"), join(router, "frontend"),
                                  join(router, "backend"))
    assert subscribe(monitor, "wamp.registration.on_unregister")[0] == m.SUBSCRIBED
    assert subscribe(monitor, "wamp.subscription.on_unsubscribe")[0] == m.SUBSCRIBED
    reg_id = register(backend, "com.app.add")[2]
    frontend_subs = [subscribe(frontend, "com.app.news")[2],
                     subscribe(frontend, "com.app.n", "prefix")[2]]
    monitor.take()
    # the new rules: the frontend may no longer subscribe to news, the backend not register
    new = realm(
        RoleConfig("backend", permissions=[perm("com.app.", "prefix", "call", "subscribe",
                                                "publish")]),
        RoleConfig("frontend", permissions=[perm("com.app.", "prefix", "call"),
                                            perm("com.app.nothing", "exact", "subscribe")]))
    router.reload(new)
    router.flush()
    events = monitor.take()  # the meta events of the revocations
    assert sorted(e[4][1] for e in events) == sorted([reg_id, *frontend_subs])
    assert realm1.dealer.registrations.get(reg_id) is None
    assert publish(backend, "com.app.news")[0][0] == m.PUBLISHED
    assert frontend.take() == []  # no event reached the revoked subscriptions
    assert subscribe(frontend, "com.app.news")[4] == NOT_AUTHORIZED  # the next message
    assert register(backend, "com.app.add")[4] == NOT_AUTHORIZED
    assert subscribe(frontend, "com.app.nothing")[0] == m.SUBSCRIBED
    # back to an open realm: no hook, everything allowed again
    router.reload(Config(realms=[RealmConfig("realm1")]))
    assert realm1.authorize is None
    assert register(backend, "com.app.add")[0] == m.REGISTERED


def test_the_readme_example_configuration_is_valid():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("A production example:")[1].split("```toml")[1].split("```")[0]
    config = config_from_toml(block)
    roles = {r.name: r for r in config.realms[0].roles}
    assert roles["ops"].trusted and roles["visitor"].permissions[1].disclose_publisher
    router, _ = make_router(config)
    visitor = LinkedPeer(router)
    assert visitor.hello("app")[2]["authrole"] == "visitor"
    assert call(visitor, "com.app.public.get")[4] == uris.NO_SUCH_PROCEDURE
    assert call(visitor, "com.app.private.get")[4] == NOT_AUTHORIZED


# -- the dynamic authorizer -------------------------------------------------------------


def dynamic_router(**keys):
    config = realm(
        RoleConfig("authz", trusted=True, permissions=[
            perm("com.authz.decide", "exact", "register")]),
        RoleConfig("svc", permissions=[perm("com.app.", "prefix", "register")]),
        authorizer="com.authz.decide", **keys)
    router, clock = make_router(config)
    decider = join(router, "authz")
    svc = join(router, "svc")
    assert register(svc, "com.app.echo")[0] == m.REGISTERED
    return router, clock, decider, svc


def test_dynamic_authorizer_decides_unlisted_roles_and_remembers():
    router, clock, decider, svc = dynamic_router(authorizer_cache_ttl=10.0)
    assert register(decider, "com.authz.decide")[0] == m.REGISTERED
    guest = join(router, "guest")
    guest.send([m.CALL, 1, {}, "com.app.echo", [1]])
    assert guest.take() == [] and guest.input_paused  # held until the answer
    inv = decider.take_one()
    assert inv[0] == m.INVOCATION
    details, uri, action, options = inv[4]
    assert (uri, action, options) == ("com.app.echo", "call", {"match": "exact"})
    assert details["authrole"] == "guest" and details["session"] == guest.session.id
    decider.send([m.YIELD, inv[1], {}, [True]])
    assert svc.take_one()[0] == m.INVOCATION  # the held CALL went on
    assert not guest.input_paused
    # remembered: no second question
    guest.send([m.CALL, 2, {}, "com.app.echo", [2]])
    assert svc.take_one()[0] == m.INVOCATION and decider.take() == []
    # another action: asked, denied (dict form), remembered
    guest.send([m.SUBSCRIBE, 3, {"match": "prefix"}, "com.app."])
    inv = decider.take_one()
    assert inv[4][1:] == ["com.app.", "subscribe", {"match": "prefix"}]
    decider.send([m.YIELD, inv[1], {}, [{"allow": False}]])
    assert guest.take_one()[4] == NOT_AUTHORIZED
    assert subscribe(guest, "com.app.", "prefix")[4] == NOT_AUTHORIZED
    assert decider.take() == []
    # flushed by a trusted role: asked again; not by others
    assert call(guest, "fastwamp.authorizer.flush_cache")[4] == NOT_AUTHORIZED
    assert call(decider, "fastwamp.authorizer.flush_cache")[3] == [2]
    guest.send([m.CALL, 5, {}, "com.app.echo"])
    inv = decider.take_one()
    decider.send([m.YIELD, inv[1], {}, [True]])
    assert svc.take_one()[0] == m.INVOCATION
    # an expired answer is asked again too
    clock.advance(11.0)
    guest.send([m.CALL, 6, {}, "com.app.echo"])
    assert decider.take_one()[0] == m.INVOCATION and svc.take() == []


def test_dynamic_authorizer_failures_deny():
    router, clock, decider, svc = dynamic_router(authorizer_timeout_ms=500)
    guest = join(router, "guest")
    # not registered: denied at once
    assert call(guest, "com.app.echo")[4] == NOT_AUTHORIZED
    # registered by an untrusted role: denied
    rogue = join(router, "svc")
    rogue.session.member.authrole = "authz"  # registers as a trusted role could...
    assert register(rogue, "com.authz.decide")[0] == m.REGISTERED
    rogue.session.member.authrole = "svc"  # ...then is not trusted any more
    assert call(guest, "com.app.echo")[4] == NOT_AUTHORIZED
    rogue.disconnect()
    # no answer in time: denied
    assert register(decider, "com.authz.decide")[0] == m.REGISTERED
    guest.send([m.CALL, 10, {}, "com.app.echo"])
    assert decider.take_one()[0] == m.INVOCATION and guest.take() == []
    clock.advance(1.0)
    assert guest.take_one()[4] == NOT_AUTHORIZED and not guest.input_paused
    # an error: denied
    guest.send([m.CALL, 11, {}, "com.app.other"])
    inv = [msg for msg in decider.take() if msg[0] == m.INVOCATION][-1]
    decider.send([m.ERROR, m.INVOCATION, inv[1], {}, "com.authz.broken"])
    assert guest.take_one()[4] == NOT_AUTHORIZED
    assert svc.take() == []


def test_dynamic_sessions_keep_the_public_meta_api():
    router, clock, decider, svc = dynamic_router()
    guest = join(router, "guest")
    assert call(guest, "wamp.session.count")[0] == m.RESULT
    assert call(guest, "wamp.session.list")[4] == NOT_AUTHORIZED
    assert subscribe(guest, "wamp.session.on_join")[0] == m.SUBSCRIBED
    assert decider.take() == []  # never asked about the meta API


def test_reload_from_open_to_roles_revokes_what_unlisted_roles_hold():
    router, _ = make_router(Config(realms=[RealmConfig("realm1")]))
    p = join(router)  # anonymous
    reg_id = register(p, "com.x")[2]
    subscribe(p, "com.y")
    router.reload(realm(FRONTEND))
    realm1 = router.realms["realm1"]
    assert realm1.dealer.registrations.get(reg_id) is None
    assert not realm1.broker.subscriptions


def test_admin_authroles_on_a_realm_with_roles_are_trusted_roles_without_rules():
    router, _ = make_router(realm(FRONTEND, admin_authroles=["ops"]))
    ops = join(router, "ops")
    assert call(ops, "wamp.session.list")[0] == m.RESULT
    assert subscribe(ops, "wamp.session.on_join")[0] == m.SUBSCRIBED
    assert call(ops, "com.app.x")[4] == NOT_AUTHORIZED
