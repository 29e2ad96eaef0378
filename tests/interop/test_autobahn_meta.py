"""The WAMP meta API with Autobahn|Python peers: every meta procedure (with its error for unknown
ids), the meta events while sessions, callees and subscribers come and go, and session
testaments.

Tests that count or kill sessions run on a realm of their own (a private router, realm
``guide.kill``) so that nothing else lives there; the others use the shared router and look only
at their own sessions, registrations and subscriptions.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from autobahn.wamp.types import RegisterOptions, SubscribeOptions

from .abclient import RS_CBOR, RS_MSGPACK, WS_JSON, Client, Kind, async_test, kinds_param
from .conftest import RouterEndpoints
from .guide_support import (
    REALM_KILL,
    Sessions,
    authid,
    barrier,
    expect_error,
    session_id,
    start_guide_router,
    until,
)

pytestmark = pytest.mark.interop

KINDS = [WS_JSON, RS_MSGPACK]
#: An id no session, registration or subscription has (ids are < 2**53, random).
UNKNOWN_ID = 2**53 - 7


def app_root() -> str:
    return f"com.myapp_{uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def guide_router() -> Iterator[RouterEndpoints]:
    yield from start_guide_router("guide-meta")


class MetaLog:
    """Records meta events (topic, args, kwargs) for several meta topics on one session."""

    def __init__(self) -> None:
        self.events: list[tuple[str, list[Any], dict[str, Any]]] = []

    async def follow(self, s: Client, *topics: str) -> None:
        for topic in topics:

            def handler(*args: Any, topic: str = topic, **kwargs: Any) -> None:
                self.events.append((topic, list(args), kwargs))

            await s.subscribe(handler, topic)

    def about(self, pred: Any) -> list[tuple[str, list[Any]]]:
        return [(t.rsplit(".", 1)[1], a) for t, a, _ in self.events if pred(t, a)]


# -- session procedures -------------------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_session_count_list_get(router: RouterEndpoints, kind: Kind) -> None:
    async with Sessions(router) as s:
        a, b = await s.connect(kind), await s.connect(kind)
        ids = await a.call("wamp.session.list")
        assert {session_id(a), session_id(b)} <= set(ids)
        assert len(ids) == len(set(ids))
        assert await a.call("wamp.session.count") == len(ids)
        assert await a.call("wamp.session.count", ["anonymous"]) == len(ids)
        assert await a.call("wamp.session.count", ["no-such-role"]) == 0
        assert await a.call("wamp.session.list", ["no-such-role"]) == []
        for sid in ids:  # only client sessions are listed, and each can be fetched
            assert (await a.call("wamp.session.get", sid))["session"] == sid
        details = await a.call("wamp.session.get", session_id(b))
        joined = b.joined.result()
        assert details["session"] == joined.session
        assert details["authid"] == joined.authid
        assert details["authrole"] == "anonymous"
        assert details["authmethod"] == "anonymous"
        assert "authprovider" in details
        await expect_error(a.call("wamp.session.get", UNKNOWN_ID), "wamp.error.no_such_session")
        await b.close()
        await expect_error(a.call("wamp.session.get", joined.session), "wamp.error.no_such_session")


@kinds_param(KINDS)
@async_test()
async def test_session_kill(guide_router: RouterEndpoints, kind: Kind) -> None:
    async with Sessions(guide_router) as s:
        admin = await s.connect(kind, REALM_KILL)
        victim = await s.connect(kind, REALM_KILL)
        bystander = await s.connect(kind, REALM_KILL)
        assert (
            await admin.call(
                "wamp.session.kill",
                session_id(victim),
                reason="com.myapp.close.maintenance",
                message="bye for now",
            )
            is None
        )
        closed = await asyncio.wait_for(asyncio.shield(victim.left), 5)
        assert closed.reason == "com.myapp.close.maintenance"
        assert closed.message == "bye for now"
        await asyncio.wait_for(asyncio.shield(victim.disconnected), 5)

        other = await s.connect(kind, REALM_KILL)
        await admin.call("wamp.session.kill", session_id(other))
        closed = await asyncio.wait_for(asyncio.shield(other.left), 5)
        assert closed.reason == "wamp.close.killed"

        await expect_error(
            admin.call("wamp.session.kill", UNKNOWN_ID), "wamp.error.no_such_session"
        )
        await expect_error(
            admin.call("wamp.session.kill", session_id(admin)), "wamp.error.no_such_session"
        )
        await expect_error(
            admin.call("wamp.session.kill", session_id(bystander), reason="not a uri!"),
            "wamp.error.invalid_uri",
        )
        await barrier(bystander)  # still there
        assert await admin.call("wamp.session.count") == 2


@kinds_param(KINDS)
@async_test()
async def test_session_kill_by_authid_authrole_all(
    guide_router: RouterEndpoints, kind: Kind
) -> None:
    async with Sessions(guide_router) as s:
        admin = await s.connect(kind, REALM_KILL)
        victims = [await s.connect(kind, REALM_KILL) for _ in range(4)]

        # by authid: exactly that session; the caller's own authid kills nobody (caller excluded)
        assert await admin.call("wamp.session.kill_by_authid", authid(victims[0])) == [
            session_id(victims[0])
        ]
        assert (await asyncio.wait_for(asyncio.shield(victims[0].left), 5)).reason == (
            "wamp.close.killed"
        )
        assert await admin.call("wamp.session.kill_by_authid", authid(admin)) == []
        assert await admin.call("wamp.session.kill_by_authid", "nobody-has-this") == []
        await expect_error(
            admin.call("wamp.session.kill_by_authid", authid(victims[1]), reason="bad uri!"),
            "wamp.error.invalid_uri",
        )

        # by authrole: every other anonymous session; the result is a count (spec)
        assert await admin.call("wamp.session.kill_by_authrole", "no-such-role") == 0
        killed = await admin.call(
            "wamp.session.kill_by_authrole", "anonymous", message="role revoked"
        )
        assert killed == 3
        for v in victims[1:]:
            closed = await asyncio.wait_for(asyncio.shield(v.left), 5)
            assert (closed.reason, closed.message) == ("wamp.close.killed", "role revoked")
        assert await admin.call("wamp.session.list") == [session_id(admin)]

        # kill_all: everybody but the caller
        more = [await s.connect(kind, REALM_KILL) for _ in range(2)]
        assert await admin.call("wamp.session.kill_all", reason="wamp.close.system_shutdown") == 2
        for v in more:
            assert (await asyncio.wait_for(asyncio.shield(v.left), 5)).reason == (
                "wamp.close.system_shutdown"
            )
        assert await admin.call("wamp.session.kill_all") == 0
        assert await admin.call("wamp.session.count") == 1


# -- registration procedures ----------------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_registration_meta_procedures(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        c1, c2 = await s.connect(kind), await s.connect(kind)
        exact = await c1.register(
            lambda: 1, f"{app}.users.get", options=RegisterOptions(invoke="roundrobin")
        )
        await c2.register(
            lambda: 2, f"{app}.users.get", options=RegisterOptions(invoke="roundrobin")
        )
        prefix = await c1.register(
            lambda **kw: 3, f"{app}.users.", options=RegisterOptions(match="prefix")
        )
        wildcard = await c2.register(
            lambda **kw: 4, f"{app}..get", options=RegisterOptions(match="wildcard")
        )
        q = await s.connect(kind)

        listed = await q.call("wamp.registration.list")
        assert set(listed) == {"exact", "prefix", "wildcard"}
        assert exact.id in listed["exact"]
        assert prefix.id in listed["prefix"] and wildcard.id in listed["wildcard"]
        meta_reg = await q.call("wamp.registration.lookup", "wamp.session.count")
        assert meta_reg is None  # the router's own procedures are not exposed

        lookup = "wamp.registration.lookup"
        assert await q.call(lookup, f"{app}.users.get") == exact.id
        assert await q.call(lookup, f"{app}.users.get", {"match": "exact"}) == exact.id
        assert await q.call(lookup, f"{app}.users.", {"match": "prefix"}) == prefix.id
        assert await q.call(lookup, f"{app}..get", {"match": "wildcard"}) == wildcard.id
        assert await q.call(lookup, f"{app}.users.", {"match": "wildcard"}) is None
        assert await q.call(lookup, f"{app}.nothing") is None

        match = "wamp.registration.match"
        assert await q.call(match, f"{app}.users.get") == exact.id  # exact wins
        assert await q.call(match, f"{app}.users.list") == prefix.id  # prefix beats wildcard
        assert await q.call(match, f"{app}.orders.get") == wildcard.id
        assert await q.call(match, f"{app}.orders.list") is None

        details = await q.call("wamp.registration.get", exact.id)
        assert {k: details[k] for k in ("id", "uri", "match", "invoke")} == {
            "id": exact.id,
            "uri": f"{app}.users.get",
            "match": "exact",
            "invoke": "roundrobin",
        }
        assert isinstance(details["created"], str) and details["created"][:2] == "20"
        pdetails = await q.call("wamp.registration.get", prefix.id)
        assert (pdetails["match"], pdetails["invoke"]) == ("prefix", "single")

        assert sorted(await q.call("wamp.registration.list_callees", exact.id)) == sorted(
            [session_id(c1), session_id(c2)]
        )
        assert await q.call("wamp.registration.count_callees", exact.id) == 2
        assert await q.call("wamp.registration.list_callees", wildcard.id) == [session_id(c2)]
        assert await q.call("wamp.registration.count_callees", wildcard.id) == 1

        for proc in ("get", "list_callees", "count_callees"):
            await expect_error(
                q.call(f"wamp.registration.{proc}", UNKNOWN_ID), "wamp.error.no_such_registration"
            )
        await c1.close()
        assert await q.call("wamp.registration.count_callees", exact.id) == 1
        await expect_error(
            q.call("wamp.registration.get", prefix.id), "wamp.error.no_such_registration"
        )


# -- subscription procedures ---------------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_subscription_meta_procedures(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    topic = f"{app}.users.created"
    async with Sessions(router) as s:
        s1, s2 = await s.connect(kind), await s.connect(kind)
        exact = await s1.subscribe(lambda *a: None, topic)
        exact2 = await s2.subscribe(lambda *a: None, topic)
        assert exact2.id == exact.id  # one subscription, two subscribers
        prefix = await s1.subscribe(
            lambda *a: None, f"{app}.users.", options=SubscribeOptions(match="prefix")
        )
        wildcard = await s2.subscribe(
            lambda *a: None, f"{app}..created", options=SubscribeOptions(match="wildcard")
        )
        q = await s.connect(kind)

        listed = await q.call("wamp.subscription.list")
        assert set(listed) == {"exact", "prefix", "wildcard"}
        assert exact.id in listed["exact"]
        assert prefix.id in listed["prefix"] and wildcard.id in listed["wildcard"]

        lookup = "wamp.subscription.lookup"
        assert await q.call(lookup, topic) == exact.id
        assert await q.call(lookup, f"{app}.users.", {"match": "prefix"}) == prefix.id
        assert await q.call(lookup, f"{app}..created", {"match": "wildcard"}) == wildcard.id
        assert await q.call(lookup, f"{app}.users.") is None

        match = "wamp.subscription.match"
        assert sorted(await q.call(match, topic)) == sorted([exact.id, prefix.id, wildcard.id])
        assert await q.call(match, f"{app}.users.deleted") == [prefix.id]
        assert await q.call(match, f"{app}.nothing") is None

        details = await q.call("wamp.subscription.get", prefix.id)
        assert {k: details[k] for k in ("id", "uri", "match")} == {
            "id": prefix.id,
            "uri": f"{app}.users.",
            "match": "prefix",
        }
        assert isinstance(details["created"], str)
        assert sorted(await q.call("wamp.subscription.list_subscribers", exact.id)) == sorted(
            [session_id(s1), session_id(s2)]
        )
        assert await q.call("wamp.subscription.count_subscribers", exact.id) == 2
        for proc in ("get", "list_subscribers", "count_subscribers"):
            await expect_error(
                q.call(f"wamp.subscription.{proc}", UNKNOWN_ID), "wamp.error.no_such_subscription"
            )
        await exact.unsubscribe()
        assert await q.call("wamp.subscription.list_subscribers", exact.id) == [session_id(s2)]
        s2.drop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while await q.call(lookup, topic) is not None:  # the router notices the drop
            assert loop.time() < deadline, "subscription still there after its last subscriber left"
            await asyncio.sleep(0.005)
        await expect_error(
            q.call("wamp.subscription.count_subscribers", exact.id),
            "wamp.error.no_such_subscription",
        )


# -- meta events -----------------------------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_session_on_join_on_leave(router: RouterEndpoints, kind: Kind) -> None:
    async with Sessions(router) as s:
        watcher = await s.connect(kind)
        log = MetaLog()
        await log.follow(watcher, "wamp.session.on_join", "wamp.session.on_leave")
        polite = await s.connect(kind)
        rude = await s.connect(kind)
        ids = {session_id(polite), session_id(rude)}
        who = {session_id(polite): polite, session_id(rude): rude}
        await polite.close()
        rude.drop()

        def mine(topic: str, args: list[Any]) -> bool:
            sid = args[0]["session"] if topic.endswith("on_join") else args[0]
            return sid in ids

        await until(lambda: len(log.about(mine)) == 4, "2 joins and 2 leaves")
        events = log.about(mine)
        joins = [a for t, a in events if t == "on_join"]
        leaves = [a for t, a in events if t == "on_leave"]
        assert len(joins) == 2 and len(leaves) == 2
        for [details] in joins:
            joined = who[details["session"]].joined.result()
            assert details["authid"] == joined.authid
            assert details["authrole"] == "anonymous" and details["authmethod"] == "anonymous"
        for args in leaves:
            joined = who[args[0]].joined.result()
            assert args == [joined.session, joined.authid, "anonymous"]
        assert all(kw == {} for t, a, kw in log.events if t.endswith(("on_join", "on_leave")))


@kinds_param([WS_JSON, RS_MSGPACK, RS_CBOR])
@async_test()
async def test_registration_events_as_callees_come_and_go(
    router: RouterEndpoints, kind: Kind
) -> None:
    app = app_root()
    proc = f"{app}.order.process"
    async with Sessions(router) as s:
        watcher = await s.connect(kind)
        log = MetaLog()
        await log.follow(
            watcher,
            *(
                f"wamp.registration.{t}"
                for t in ("on_create", "on_register", "on_unregister", "on_delete")
            ),
        )
        reg_ids: set[int] = set()

        def mine(topic: str, args: list[Any]) -> bool:
            if topic.endswith("on_create"):
                return args[1]["uri"].startswith(app)
            return args[1] in reg_ids

        a, b = await s.connect(kind), await s.connect(kind)
        ra = await a.register(lambda: "a", proc, options=RegisterOptions(invoke="roundrobin"))
        reg_ids.add(ra.id)
        rb = await b.register(lambda: "b", proc, options=RegisterOptions(invoke="roundrobin"))
        assert rb.id == ra.id
        await ra.unregister()  # b still there: no on_delete
        b.drop()  # the last callee vanishes
        await until(lambda: len(log.about(mine)) == 6, "six registration events")
        sa, sb = session_id(a), session_id(b)
        events = log.about(mine)
        assert [t for t, _ in events] == [
            "on_create",
            "on_register",
            "on_register",
            "on_unregister",
            "on_unregister",
            "on_delete",
        ]
        create_args = events[0][1]
        assert create_args[0] == sa
        assert {k: create_args[1][k] for k in ("id", "uri", "match", "invoke")} == {
            "id": ra.id,
            "uri": proc,
            "match": "exact",
            "invoke": "roundrobin",
        }
        assert [a for _, a in events[1:]] == [
            [sa, ra.id],
            [sb, ra.id],
            [sa, ra.id],
            [sb, ra.id],
            [sb, ra.id],
        ]
        # The same URI registered again is a new registration: on_create again.
        c = await s.connect(kind)
        rc = await c.register(lambda: "c", proc)
        reg_ids.add(rc.id)
        await c.close()
        await until(lambda: len(log.about(mine)) == 10, "the second registration's events")
        assert [t for t, _ in log.about(mine)[6:]] == [
            "on_create",
            "on_register",
            "on_unregister",
            "on_delete",
        ]
        assert log.about(mine)[6][1][1]["invoke"] == "single"
        assert all(kw == {} for _, _, kw in log.events)


@kinds_param(KINDS)
@async_test()
async def test_subscription_events_as_subscribers_come_and_go(
    router: RouterEndpoints, kind: Kind
) -> None:
    app = app_root()
    topic = f"{app}.users."
    async with Sessions(router) as s:
        watcher = await s.connect(kind)
        log = MetaLog()
        await log.follow(
            watcher,
            *(
                f"wamp.subscription.{t}"
                for t in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete")
            ),
        )
        sub_ids: set[int] = set()

        def mine(t: str, args: list[Any]) -> bool:
            if t.endswith("on_create"):
                return args[1]["uri"].startswith(app)
            return args[1] in sub_ids

        a, b = await s.connect(kind), await s.connect(kind)
        sa_sub = await a.subscribe(lambda *x: None, topic, options=SubscribeOptions(match="prefix"))
        sub_ids.add(sa_sub.id)
        await b.subscribe(lambda *x: None, topic, options=SubscribeOptions(match="prefix"))
        # Subscribing to meta topics raises no meta events.
        await b.subscribe(lambda *x: None, "wamp.session.on_join")
        await sa_sub.unsubscribe()
        b.drop()
        await until(lambda: len(log.about(mine)) == 6, "six subscription events")
        sa, sb = session_id(a), session_id(b)
        events = log.about(mine)
        assert [t for t, _ in events] == [
            "on_create",
            "on_subscribe",
            "on_subscribe",
            "on_unsubscribe",
            "on_unsubscribe",
            "on_delete",
        ]
        assert events[0][1][0] == sa
        assert {k: events[0][1][1][k] for k in ("id", "uri", "match")} == {
            "id": sa_sub.id,
            "uri": topic,
            "match": "prefix",
        }
        assert [x for _, x in events[1:]] == [
            [sa, sa_sub.id],
            [sb, sa_sub.id],
            [sa, sa_sub.id],
            [sb, sa_sub.id],
            [sb, sa_sub.id],
        ]
        await barrier(watcher)
        meta_creates = [
            a
            for t, a, _ in log.events
            if t.endswith("on_create") and a[1]["uri"].startswith("wamp.")
        ]
        assert meta_creates == []


# -- testaments ----------------------------------------------------------------------------------------


async def _leave_and_settle(listener: Client, leaver: Client, how: str, log: MetaLog) -> None:
    """Make ``leaver`` go (drop / goodbye / kill) and wait for its on_leave at ``listener``:
    testaments are published before on_leave, so anything due has arrived by then."""
    sid = session_id(leaver)
    if how == "drop":
        leaver.drop()
    elif how == "goodbye":
        await leaver.close()
    else:
        await listener.call("wamp.session.kill", sid)
    await until(
        lambda: any(t.endswith("on_leave") and a[0] == sid for t, a, _ in log.events),
        f"on_leave of {sid}",
    )


@pytest.mark.parametrize("how", ["drop", "kill", "goodbye"])
@kinds_param(KINDS)
@async_test()
async def test_testament_published_on_abnormal_leave(
    router: RouterEndpoints, guide_router: RouterEndpoints, kind: Kind, how: str
) -> None:
    topic = f"{app_root()}.presence.gone"
    if how == "kill":  # killing needs a realm whose roles may kill (admin_authroles)
        router = dataclasses.replace(guide_router, realm=REALM_KILL)
    async with Sessions(router) as s:
        listener = await s.connect(kind)
        log = MetaLog()
        await log.follow(listener, "wamp.session.on_leave")
        got: list[Any] = []
        await listener.subscribe(
            lambda *a, details, **kw: got.append((list(a), kw, details.publisher)),
            topic,
            options=SubscribeOptions(details=True),
        )
        leaver = await s.connect(kind)
        result = await leaver.call(
            "wamp.session.add_testament", topic, ["client", 42], {"reason": "crashed"}
        )
        assert result is None  # spec: no return value
        await _leave_and_settle(listener, leaver, how, log)
        await barrier(listener)
        if how == "goodbye":
            assert got == []  # a clean GOODBYE is not a death
        else:
            assert got == [(["client", 42], {"reason": "crashed"}, session_id(leaver))]


@kinds_param(KINDS)
@async_test()
async def test_testament_flush_scopes_and_options(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        listener, other = await s.connect(kind), await s.connect(kind)
        log = MetaLog()
        await log.follow(listener, "wamp.session.on_leave")
        got: list[Any] = []
        other_got: list[Any] = []
        await listener.subscribe(
            lambda *a: got.append(list(a)), f"{app}.t", options=SubscribeOptions(match="prefix")
        )
        await other.subscribe(
            lambda *a: other_got.append(list(a)),
            f"{app}.t",
            options=SubscribeOptions(match="prefix"),
        )

        # flush_testaments: nothing is published.
        flushed = await s.connect(kind)
        await flushed.call("wamp.session.add_testament", f"{app}.t.one", ["x"], {})
        assert await flushed.call("wamp.session.flush_testaments") is None
        await _leave_and_settle(listener, flushed, "drop", log)
        await barrier(listener)
        assert got == []

        # Both scopes: detached first, then destroyed, each in insertion order; publish_options
        # apply (exclude the other listener).
        dying = await s.connect(kind)
        excl = {"exclude": [session_id(other)]}
        await dying.call(
            "wamp.session.add_testament", f"{app}.t.d1", ["destroyed-1"], {}, publish_options=excl
        )
        await dying.call(
            "wamp.session.add_testament",
            f"{app}.t.x1",
            ["detached-1"],
            {},
            scope="detached",
            publish_options=excl,
        )
        await dying.call(
            "wamp.session.add_testament", f"{app}.t.d2", ["destroyed-2"], {}, publish_options=excl
        )
        await dying.call(
            "wamp.session.add_testament", f"{app}.t.x2", ["detached-2"], {}, scope="detached"
        )
        # Flushing one scope keeps the other.
        keep = await s.connect(kind)
        await keep.call("wamp.session.add_testament", f"{app}.t.k", ["kept"], {}, scope="detached")
        await keep.call("wamp.session.add_testament", f"{app}.t.k", ["flushed"], {})
        await keep.call("wamp.session.flush_testaments", scope="destroyed")
        await _leave_and_settle(listener, dying, "drop", log)
        await _leave_and_settle(listener, keep, "drop", log)
        await barrier(listener)
        await barrier(other)
        assert got == [["detached-1"], ["detached-2"], ["destroyed-1"], ["destroyed-2"], ["kept"]]
        assert other_got == [["detached-2"], ["kept"]]

        # Bad arguments are refused.
        bad = await s.connect(kind)
        with pytest.raises(Exception) as ei:
            await bad.call("wamp.session.add_testament", f"{app}.t", [], {}, scope="forever")
        assert getattr(ei.value, "error", None) in (
            "wamp.error.invalid_argument",
            "wamp.error.testament_error",
        )
        await expect_error(
            bad.call("wamp.session.add_testament", "not a uri!", [], {}), "wamp.error.invalid_uri"
        )
