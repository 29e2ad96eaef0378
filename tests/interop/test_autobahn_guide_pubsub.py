"""The guide's PubSub behaviours ("Beyond the Basics": event filtering, pattern-based
subscriptions, publisher identification) with Autobahn|Python peers, plus the Advanced Profile
features around them: authid/authrole black/white lists, event retention, and publisher
disclosure on realms configured ``on_request`` and ``never``.

Negative checks end with a :func:`barrier` round trip on the session that must not receive.
The wampy.js versions of the guide's examples are in js/guide_pubsub.test.mjs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from autobahn.wamp.types import EventDetails, PublishOptions, SubscribeOptions

from .abclient import RS_MSGPACK, WS_CBOR, WS_JSON, Client, Kind, async_test, kinds_param
from .conftest import RouterEndpoints
from .guide_support import (
    EVENT,
    PUBLISH,
    REALM_NEVER,
    REALM_NO_RETAIN,
    REALM_ON_REQUEST,
    SUBSCRIBE,
    Sessions,
    WireTap,
    authid,
    barrier,
    expect_error,
    session_id,
    start_guide_router,
    until,
)

pytestmark = pytest.mark.interop

KINDS = [WS_JSON, RS_MSGPACK]
ACK = PublishOptions(acknowledge=True)


def app_root() -> str:
    return f"com.myapp_{uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def guide_router() -> Iterator[RouterEndpoints]:
    yield from start_guide_router("guide-pubsub")


class Inbox:
    """Events of one subscription: (args, kwargs, EventDetails)."""

    def __init__(self) -> None:
        self.events: list[tuple[list[Any], dict[str, Any], EventDetails]] = []

    def __call__(self, *args: Any, details: EventDetails, **kwargs: Any) -> None:
        self.events.append((list(args), kwargs, details))

    @property
    def args(self) -> list[list[Any]]:
        return [a for a, _, _ in self.events]

    async def wait(self, n: int) -> None:
        await until(lambda: len(self.events) >= n, f"{n} event(s), got {len(self.events)}")


async def subscribed(s: Client, topic: str, **options: Any) -> Inbox:
    inbox = Inbox()
    await s.subscribe(inbox, topic, options=SubscribeOptions(details=True, **options))
    return inbox


# -- publisher exclusion, black/white listing ---------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_exclude_me(router: RouterEndpoints, kind: Kind) -> None:
    topic = f"{app_root()}.chat.message"
    async with Sessions(router) as s:
        me, other = await s.connect(kind), await s.connect(kind)
        mine, theirs = await subscribed(me, topic), await subscribed(other, topic)
        await me.publish(
            topic, "explicit", options=PublishOptions(acknowledge=True, exclude_me=True)
        )
        await me.publish(topic, "default", options=ACK)
        await me.publish(topic, "echo", options=PublishOptions(acknowledge=True, exclude_me=False))
        await theirs.wait(3)
        await barrier(me)
        assert mine.args == [["echo"]]
        assert theirs.args == [["explicit"], ["default"], ["echo"]]


@kinds_param(KINDS)
@async_test()
async def test_eligible_and_exclude_session_ids(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        subs = [await s.connect(kind) for _ in range(3)]
        alerts = [await subscribed(c, f"{app}.admin.alert") for c in subs]
        casts = [await subscribed(c, f"{app}.broadcast") for c in subs]
        ids = [session_id(c) for c in subs]
        pub = await s.connect(kind)
        await pub.publish(
            f"{app}.admin.alert",
            "System issue",
            options=PublishOptions(acknowledge=True, eligible=ids[:2]),
        )
        await pub.publish(
            f"{app}.broadcast", "Update", options=PublishOptions(acknowledge=True, exclude=[ids[2]])
        )
        # Both lists at once: eligible minus excluded.
        await pub.publish(
            f"{app}.broadcast",
            "both",
            options=PublishOptions(acknowledge=True, eligible=ids[1:], exclude=[ids[2]]),
        )
        # The publisher itself in eligible is still excluded by exclude_me (default true).
        await subscribed(pub, f"{app}.admin.alert")
        await pub.publish(
            f"{app}.admin.alert",
            "self",
            options=PublishOptions(acknowledge=True, eligible=[session_id(pub), ids[0]]),
        )
        for c in subs:
            await barrier(c)
        await barrier(pub)
        assert [i.args for i in alerts] == [[["System issue"], ["self"]], [["System issue"]], []]
        assert [i.args for i in casts] == [[["Update"]], [["Update"], ["both"]], []]


@kinds_param(KINDS)
@async_test()
async def test_authid_and_authrole_lists(router: RouterEndpoints, kind: Kind) -> None:
    """eligible_authid / exclude_authid / eligible_authrole / exclude_authrole (anonymous
    sessions: each has its own authid, all have authrole "anonymous")."""
    topic = f"{app_root()}.filtered"
    async with Sessions(router) as s:
        subs = [await s.connect(kind) for _ in range(3)]
        inboxes = [await subscribed(c, topic) for c in subs]
        a0, a1, a2 = (authid(c) for c in subs)
        assert len({a0, a1, a2}) == 3
        pub = await s.connect(kind)
        cases: list[tuple[str, dict[str, Any]]] = [
            ("eligible_authid", {"eligible_authid": [a0, a2]}),
            ("exclude_authid", {"exclude_authid": [a1]}),
            ("eligible_authrole", {"eligible_authrole": ["anonymous"]}),
            ("eligible_authrole_other", {"eligible_authrole": ["admin"]}),
            ("exclude_authrole", {"exclude_authrole": ["anonymous"]}),
            ("exclude_authrole_other", {"exclude_authrole": ["admin"]}),
            ("combined", {"eligible_authid": [a0, a1], "exclude": [session_id(subs[0])]}),
        ]
        for name, opts in cases:
            await pub.publish(topic, name, options=PublishOptions(acknowledge=True, **opts))
        for c in subs:
            await barrier(c)
        assert [[a[0] for a in i.args] for i in inboxes] == [
            ["eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole_other"],
            ["eligible_authrole", "exclude_authrole_other", "combined"],
            ["eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole_other"],
        ]


# -- pattern-based subscriptions -----------------------------------------------------------------


@kinds_param([WS_JSON, RS_MSGPACK, WS_CBOR])
@async_test()
async def test_prefix_subscription_users_events(router: RouterEndpoints, kind: Kind) -> None:
    """The guide's ``com.myapp.users.`` prefix subscription; details.topic names the topic."""
    app = app_root()
    async with Sessions(router) as s:
        sub = await s.connect(kind)
        inbox = await subscribed(sub, f"{app}.users.", match="prefix")
        pub = await s.connect(kind)
        for what in ("created", "updated", "deleted"):
            await pub.publish(f"{app}.users.{what}", {"id": 7}, by="admin", options=ACK)
        await pub.publish(f"{app}.usersettings.changed", "not under the prefix", options=ACK)
        await inbox.wait(3)
        await barrier(sub)
        assert [(d.topic, a, kw) for a, kw, d in inbox.events] == [
            (f"{app}.users.{w}", [{"id": 7}], {"by": "admin"})
            for w in ("created", "updated", "deleted")
        ]


@kinds_param(KINDS)
@async_test()
async def test_one_event_per_matching_subscription(router: RouterEndpoints, kind: Kind) -> None:
    """exact + prefix + wildcard on one session: three EVENTs, one per subscription, same
    publication id; details.topic only for the pattern ones."""
    app = app_root()
    topic = f"{app}.users.created"
    async with Sessions(router) as s:
        sub = await s.connect(kind)
        tap = WireTap(sub)
        exact = await subscribed(sub, topic)
        prefix = await subscribed(sub, f"{app}.users", match="prefix")
        wildcard = await subscribed(sub, f"{app}..created", match="wildcard")
        other_wildcard = await subscribed(sub, f"{app}..deleted", match="wildcard")
        pub = await s.connect(kind)
        await pub.publish(topic, 1, options=ACK)
        await barrier(sub)
        assert [len(i.events) for i in (exact, prefix, wildcard, other_wildcard)] == [1, 1, 1, 0]
        assert exact.events[0][2].topic in (None, topic)
        assert prefix.events[0][2].topic == topic and wildcard.events[0][2].topic == topic
        raw = tap.of_type(EVENT)
        assert len(raw) == 3
        assert len({m[1] for m in raw}) == 3 and len({m[2] for m in raw}) == 1


# -- publisher identification --------------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_publisher_identification_default_realm(router: RouterEndpoints, kind: Kind) -> None:
    topic = f"{app_root()}.events"
    async with Sessions(router) as s:
        sub = await s.connect(kind)
        inbox = await subscribed(sub, topic)
        pubs = [await s.connect(kind) for _ in range(2)]
        for i, p in enumerate(pubs):
            await p.publish(topic, "order", i, total=9.5, options=ACK)
        await inbox.wait(2)
        for (_, _, d), p in zip(inbox.events, pubs, strict=True):
            joined = p.joined.result()
            assert (d.publisher, d.publisher_authid, d.publisher_authrole) == (
                joined.session,
                joined.authid,
                "anonymous",
            )
        assert [(a, kw) for a, kw, _ in inbox.events] == [
            (["order", 0], {"total": 9.5}),
            (["order", 1], {"total": 9.5}),
        ]


@kinds_param(KINDS)
@async_test()
async def test_publisher_disclosure_on_request_realm(
    guide_router: RouterEndpoints, kind: Kind
) -> None:
    """disclosure = "on_request": the publisher shows only for PUBLISH disclose_me (to everyone)
    or to subscribers that asked with SUBSCRIBE get_publisher (the guide's option)."""
    topic = f"{app_root()}.events"
    async with Sessions(guide_router) as s:
        plain_sub = await s.connect(kind, REALM_ON_REQUEST)
        plain = await subscribed(plain_sub, topic)
        asking_sub = await s.connect(kind, REALM_ON_REQUEST)
        WireTap(asking_sub).add_option(SUBSCRIBE, topic, get_publisher=True)
        asking = await subscribed(asking_sub, topic)
        pub = await s.connect(kind, REALM_ON_REQUEST)
        await pub.publish(topic, "quiet", options=ACK)
        WireTap(pub).add_option(PUBLISH, topic, disclose_me=True)
        await pub.publish(topic, "loud", options=ACK)
        await plain.wait(2)
        await asking.wait(2)
        me = session_id(pub)
        assert [(a[0], d.publisher) for a, _, d in plain.events] == [("quiet", None), ("loud", me)]
        assert [(a[0], d.publisher) for a, _, d in asking.events] == [("quiet", me), ("loud", me)]


@kinds_param(KINDS)
@async_test()
async def test_publisher_disclosure_never_realm(guide_router: RouterEndpoints, kind: Kind) -> None:
    topic = f"{app_root()}.events"
    async with Sessions(guide_router) as s:
        sub = await s.connect(kind, REALM_NEVER)
        WireTap(sub).add_option(SUBSCRIBE, topic, get_publisher=True)
        inbox = await subscribed(sub, topic)
        pub = await s.connect(kind, REALM_NEVER)
        await pub.publish(topic, "anonymous", options=ACK)
        WireTap(pub).add_option(PUBLISH, topic, disclose_me=True)
        await expect_error(
            pub.publish(topic, "refused", options=ACK), "wamp.error.option_disallowed.disclose_me"
        )
        await barrier(sub)
        assert [(a[0], d.publisher) for a, _, d in inbox.events] == [("anonymous", None)]


# -- event retention ---------------------------------------------------------------------------


RETAIN = PublishOptions(acknowledge=True, retain=True)


@kinds_param(KINDS)
@async_test()
async def test_retain_and_get_retained(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    topic = f"{app}.sensor.temperature"
    async with Sessions(router) as s:
        pub = await s.connect(kind)
        await pub.publish(topic, 20.5, options=RETAIN)
        await pub.publish(topic, 21.5, unit="C", options=RETAIN)  # replaces the first
        await pub.publish(topic, 99.0, options=ACK)  # not retained
        await pub.publish(f"{app}.sensor.humidity", 40, options=RETAIN)

        late = await s.connect(kind)
        inbox = await subscribed(late, topic, get_retained=True)
        await inbox.wait(1)
        await barrier(late)
        [(args, kwargs, d)] = inbox.events
        assert (args, kwargs, d.retained) == ([21.5], {"unit": "C"}, True)
        assert d.publisher == session_id(pub)

        # Without get_retained: nothing until the next publication, which is not "retained".
        plain_sub = await s.connect(kind)
        plain = await subscribed(plain_sub, topic)
        await barrier(plain_sub)
        assert plain.events == []
        await pub.publish(topic, 22.0, options=ACK)
        await plain.wait(1)
        assert plain.events[0][0] == [22.0] and not plain.events[0][2].retained

        # A prefix subscription gets the retained event of every matching topic.
        pattern_sub = await s.connect(kind)
        pattern = await subscribed(pattern_sub, f"{app}.sensor.", match="prefix", get_retained=True)
        await pattern.wait(2)
        await barrier(pattern_sub)
        assert sorted((d.topic, a[0]) for a, _, d in pattern.events) == [
            (f"{app}.sensor.humidity", 40),
            (topic, 21.5),
        ]
        assert all(d.retained for _, _, d in pattern.events)


@kinds_param(KINDS)
@async_test()
async def test_retained_event_respects_eligible(router: RouterEndpoints, kind: Kind) -> None:
    topic = f"{app_root()}.secret"
    async with Sessions(router) as s:
        chosen, other = await s.connect(kind), await s.connect(kind)
        pub = await s.connect(kind)
        await pub.publish(
            topic,
            "for you",
            options=PublishOptions(acknowledge=True, retain=True, eligible=[session_id(chosen)]),
        )
        got = await subscribed(chosen, topic, get_retained=True)
        not_got = await subscribed(other, topic, get_retained=True)
        await got.wait(1)
        await barrier(other)
        assert got.args == [["for you"]] and not_got.events == []


@kinds_param([WS_JSON])
@async_test()
async def test_realm_without_retention_ignores_retain(
    guide_router: RouterEndpoints, kind: Kind
) -> None:
    topic = f"{app_root()}.state"
    async with Sessions(guide_router) as s:
        pub = await s.connect(kind, REALM_NO_RETAIN)
        await pub.publish(topic, "kept?", options=RETAIN)
        sub = await s.connect(kind, REALM_NO_RETAIN)
        inbox = await subscribed(sub, topic, get_retained=True)
        await barrier(sub)
        assert inbox.events == []


@kinds_param([WS_JSON])
@async_test()
async def test_retained_event_discloses_publisher_to_get_publisher_subscriber(
    guide_router: RouterEndpoints, kind: Kind
) -> None:
    """On an ``on_request`` realm a subscriber that asks with get_publisher sees the publisher of
    live events (see test_publisher_disclosure_on_request_realm); the retained copy of the same
    event should carry it too."""
    topic = f"{app_root()}.state"
    async with Sessions(guide_router) as s:
        pub = await s.connect(kind, REALM_ON_REQUEST)
        await pub.publish(topic, "last known", options=RETAIN)
        sub = await s.connect(kind, REALM_ON_REQUEST)
        WireTap(sub).add_option(SUBSCRIBE, topic, get_publisher=True)
        inbox = await subscribed(sub, topic, get_retained=True)
        await inbox.wait(1)
        [(args, _, d)] = inbox.events
        assert (args, d.retained) == (["last known"], True)
        assert d.publisher == session_id(pub)
