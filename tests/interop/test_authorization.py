"""Authorization with Autobahn|Python peers over real sockets: each permission kind (call,
register, publish, subscribe, patterns, disclosure), the meta API's default protection on
a realm like the embedded default, realm isolation, and rate limits.

Sessions get their role from the realm's ``anonymous_authrole`` (authentication is not
this test's business).  One private router serves every test of the module.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions

from .abclient import (
    RS_MSGPACK,
    WS_CBOR,
    WS_JSON,
    EventSink,
    Kind,
    async_test,
    barrier,
    connect,
    kinds_param,
)
from .conftest import RouterEndpoints, RouterProcess

pytestmark = pytest.mark.interop

NOT_AUTHORIZED = "wamp.error.not_authorized"
RATE_LIMITED = "fastwamp.error.rate_limited"
KINDS = [WS_JSON, RS_MSGPACK, WS_CBOR]

APP = "authz.app"
OPS = "authz.ops"
LIMITED = "authz.limited"
ISO_A = "authz.iso_a"
ISO_B = "authz.iso_b"

REALMS = f"""
[[realms]]
name = "{APP}"
disclosure = "on_request"
anonymous_authrole = "app"
[[realms.roles]]
name = "app"
[[realms.roles.permissions]]
uri = "com.app."
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]
[[realms.roles.permissions]]
uri = "com.app.secret"
allow = []
[[realms.roles.permissions]]
uri = "com.app.announce"
allow = ["publish"]
[[realms.roles.permissions]]
uri = "com.app.ro."
match = "prefix"
allow = ["call", "subscribe"]
[[realms.roles.permissions]]
uri = "com.app.audit."
match = "prefix"
allow = ["call", "register"]
disclose_caller = true

[[realms]]
name = "{OPS}"
admin_authroles = ["anonymous"]

[[realms]]
name = "{LIMITED}"
session_calls_per_second = 0.01
session_call_burst = 3
anonymous_authrole = "crowd"
[[realms.roles]]
name = "crowd"
publishes_per_second = 0.01
publish_burst = 2
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["call", "register", "publish", "subscribe"]

[[realms]]
name = "{ISO_A}"

[[realms]]
name = "{ISO_B}"
"""


@pytest.fixture(scope="module")
def authz_router() -> Iterator[RouterEndpoints]:
    with tempfile.TemporaryDirectory(prefix="fastwamp-authz-") as tmp:
        # realm1 as on the embedded default: anonymous clients, no roles, nobody trusted
        rp = RouterProcess(Path(tmp), "authz", extra_config=REALMS, realm_config="")
        endpoints = rp.start()
        try:
            yield endpoints
        finally:
            if rp.running:
                rp.stop(check=True)
            else:
                rp._finish_io()
                pytest.fail("the authorization router died\n" + rp.diagnostics())


async def app_barrier(session) -> None:
    """A round trip answered by the router (abclient.barrier's URI is not allowed here)."""
    await refused(session.call("com.app.nobody_registered_this"),
                  "wamp.error.no_such_procedure")


async def refused(awaitable, error: str = NOT_AUTHORIZED) -> None:
    with pytest.raises(ApplicationError) as ei:
        await asyncio.wait_for(awaitable, 5)
    assert ei.value.error == error, ei.value


@kinds_param(KINDS)
@async_test()
async def test_call_and_register_permissions(authz_router: RouterEndpoints, kind: Kind) -> None:
    callee = await connect(authz_router, kind, APP)
    caller = await connect(authz_router, kind, APP)
    details = await asyncio.wait_for(asyncio.shield(caller.joined), 1)
    assert details.authrole == "app"
    await callee.register(lambda x: x + 1, "com.app.add")
    assert await caller.call("com.app.add", 1) == 2
    await refused(callee.register(lambda: 0, "com.app.ro.get"))  # call and subscribe only
    await refused(callee.register(lambda: 0, "com.other.get"))  # no rule: nothing
    await refused(callee.register(lambda: 0, "com.app.", options=RegisterOptions(
        match="prefix")))  # the pattern covers com.app.secret
    await callee.register(lambda: "sub", "com.app.sub.", options=RegisterOptions(
        match="prefix"))
    assert await caller.call("com.app.sub.x") == "sub"
    await refused(caller.call("com.app.secret"))
    await refused(caller.call("com.other.x"))
    await callee.leave()
    await caller.leave()


@kinds_param(KINDS)
@async_test()
async def test_publish_and_subscribe_permissions(authz_router: RouterEndpoints,
                                                 kind: Kind) -> None:
    subscriber = await connect(authz_router, kind, APP)
    publisher = await connect(authz_router, kind, APP)
    news, pattern = EventSink(), EventSink()
    await subscriber.subscribe(news, "com.app.news")
    await subscriber.subscribe(pattern, "com.app.n", options=SubscribeOptions(match="prefix"))
    await refused(subscriber.subscribe(EventSink(), "com.app.announce"))  # publish only
    await refused(subscriber.subscribe(EventSink(), "com.app.secret"))
    await refused(subscriber.subscribe(EventSink(), "com.app.", options=SubscribeOptions(
        match="prefix")))  # would reach com.app.secret and com.app.announce
    await refused(subscriber.subscribe(EventSink(), "com..news", options=SubscribeOptions(
        match="wildcard")))
    ack = PublishOptions(acknowledge=True)
    await publisher.publish("com.app.news", "hello", options=ack)
    await publisher.publish("com.app.announce", "to nobody", options=ack)
    await refused(publisher.publish("com.app.ro.x", "no", options=ack))
    publisher.publish("com.app.secret", "dropped")  # unacknowledged: dropped, no answer
    await app_barrier(publisher)
    await app_barrier(subscriber)
    assert [a for a, _ in await news.wait(1)] == [("hello",)]
    assert [a for a, _ in await pattern.wait(1)] == [("hello",)]
    await app_barrier(subscriber)
    assert len(news.events) == 1 and len(pattern.events) == 1
    await subscriber.leave()
    await publisher.leave()


@async_test()
async def test_disclose_caller_switch_of_a_permission(authz_router: RouterEndpoints) -> None:
    callee = await connect(authz_router, WS_JSON, APP)
    caller = await connect(authz_router, RS_MSGPACK, APP)
    seen = []

    def audited(details):
        seen.append(details.caller)
        return "ok"

    def plain(details):
        seen.append(details.caller)
        return "ok"

    await callee.register(audited, "com.app.audit.log",
                          options=RegisterOptions(details_arg="details"))
    await callee.register(plain, "com.app.plain", options=RegisterOptions(details_arg="details"))
    await caller.call("com.app.audit.log")
    await caller.call("com.app.plain")
    caller_id = (await caller.joined).session
    assert seen == [caller_id, None]
    await callee.leave()
    await caller.leave()


PROTECTED = [("wamp.session.list", []), ("wamp.session.get", [1]), ("wamp.session.kill", [1]),
             ("wamp.session.kill_all", []), ("wamp.registration.list", []),
             ("wamp.registration.list_callees", [1]), ("wamp.subscription.list", []),
             ("wamp.subscription.list_subscribers", [1]), ("fastwamp.router.get_stats", [])]


@kinds_param([WS_JSON, RS_MSGPACK])
@async_test()
async def test_meta_api_default_protection(authz_router: RouterEndpoints, kind: Kind) -> None:
    """realm1 is configured as the embedded default: the guide's meta events and read-only
    procedures work, the procedures of trusted roles do not."""
    monitor = await connect(authz_router, kind)
    callee = await connect(authz_router, kind)
    created = EventSink()
    await monitor.subscribe(created, "wamp.registration.on_create")
    reg = await callee.register(lambda: None, "com.myapp.authz.meta")
    (args, _), = await created.wait(1)
    assert args[1]["uri"] == "com.myapp.authz.meta"
    assert await monitor.call("wamp.registration.lookup", "com.myapp.authz.meta") == reg.id
    assert await monitor.call("wamp.registration.match", "com.myapp.authz.meta") == reg.id
    assert await monitor.call("wamp.registration.count_callees", reg.id) == 1
    assert await monitor.call("wamp.session.count") >= 2
    for procedure, args in PROTECTED:
        await refused(monitor.call(procedure, *args))
    # a trusted realm's sessions may call them
    ops = await connect(authz_router, kind, OPS)
    assert isinstance(await ops.call("wamp.session.list"), list)
    assert isinstance(await ops.call("fastwamp.router.get_stats"), dict)
    for s in (monitor, callee, ops):
        await s.leave()


@async_test()
async def test_realms_are_isolated(authz_router: RouterEndpoints) -> None:
    """Same URIs on two realms: calls, events and meta answers stay in their realm."""
    sessions = {}
    for realm in (ISO_A, ISO_B):
        callee = await connect(authz_router, WS_JSON, realm)
        await callee.register(lambda realm=realm: realm, "com.iso.where")
        subscriber = await connect(authz_router, RS_MSGPACK, realm)
        sink = EventSink()
        await subscriber.subscribe(sink, "com.iso.news")
        await subscriber.subscribe(sink, "com.iso.", options=SubscribeOptions(match="prefix"))
        sessions[realm] = (callee, subscriber, sink)
    caller_a = await connect(authz_router, WS_CBOR, ISO_A)
    assert await caller_a.call("com.iso.where") == ISO_A
    caller_b = await connect(authz_router, WS_JSON, ISO_B)
    assert await caller_b.call("com.iso.where") == ISO_B
    await caller_a.publish("com.iso.news", ISO_A, options=PublishOptions(acknowledge=True))
    events_a = await sessions[ISO_A][2].wait(2)
    assert [a for a, _ in events_a] == [(ISO_A,), (ISO_A,)]
    for s in (sessions[ISO_B][1], caller_b):
        await barrier(s)
    assert sessions[ISO_B][2].events == []
    # meta answers are per realm: 3 sessions on A, 3 on B (not 6)
    assert await caller_a.call("wamp.session.count") == 3
    assert await caller_b.call("wamp.session.count") == 3
    # nothing registered on one realm can be called on another
    other = await connect(authz_router, WS_JSON, ISO_B)
    await sessions[ISO_B][0].leave()
    await refused(other.call("com.iso.where"), "wamp.error.no_such_procedure")
    for s in (sessions[ISO_A][0], sessions[ISO_A][1], sessions[ISO_B][1], caller_a, caller_b,
              other):
        await s.leave()


@async_test()
async def test_rate_limits_per_session_and_per_role(authz_router: RouterEndpoints) -> None:
    """Rates so low (one token per 100 s) that only the bursts count, however slow the
    machine: the fourth call of a session and the third publication of the role are refused."""
    ops = await connect(authz_router, WS_JSON, OPS)
    before = (await ops.call("fastwamp.router.get_stats"))["rate_limited"]
    a = await connect(authz_router, WS_JSON, LIMITED)
    b = await connect(authz_router, RS_MSGPACK, LIMITED)
    for _ in range(3):
        assert await a.call("wamp.session.count") == 2
    await refused(a.call("wamp.session.count"), RATE_LIMITED)
    assert await b.call("wamp.session.count") == 2  # b has its own bucket
    ack = PublishOptions(acknowledge=True)
    await a.publish("com.crowd.t", 1, options=ack)
    await b.publish("com.crowd.t", 2, options=ack)
    # the role's bucket (publish_burst = 2) is empty now, for both sessions
    await refused(a.publish("com.crowd.t", 3, options=ack), RATE_LIMITED)
    await refused(b.publish("com.crowd.t", 4, options=ack), RATE_LIMITED)
    after = (await ops.call("fastwamp.router.get_stats"))["rate_limited"]
    assert after - before == 3
    for s in (a, b, ops):
        await s.leave()
