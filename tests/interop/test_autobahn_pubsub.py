"""Basic Profile PubSub through fastwamp with Autobahn|Python (asyncio) peers.

Negative checks ("X received nothing") do not sleep: they end with a
:func:`barrier` round trip on the session that must not receive anything,
which the router answers only after it has written every event caused by
earlier messages.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from autobahn.wamp.types import PublishOptions

from .abclient import (
    ALL_KINDS,
    EventSink,
    Kind,
    async_test,
    barrier,
    kinds_param,
    peers,
    unique_uri,
)
from .conftest import RouterEndpoints

pytestmark = pytest.mark.interop

MIB = 1024 * 1024
ACK = PublishOptions(acknowledge=True)


@kinds_param()
@async_test()
async def test_several_subscribers(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        publisher = await p.connect(kind)
        subscribers = [await p.connect(kind) for _ in range(3)]
        topic = unique_uri("fanout")
        sinks = [EventSink() for _ in subscribers]
        subs = [await s.subscribe(sink, topic) for s, sink in zip(subscribers, sinks, strict=True)]
        assert all(isinstance(sub.id, int) for sub in subs)

        pub = await publisher.publish(
            topic, 1, "two", [3.5, None], ключ="значение", nested={"a": [True, False]}, options=ACK
        )
        assert isinstance(pub.id, int) and pub.id > 0
        for sink in sinks:
            [(args, kwargs)] = await sink.wait(1)
            assert list(args) == [1, "two", [3.5, None]]
            assert kwargs == {"ключ": "значение", "nested": {"a": [True, False]}}
        for s in subscribers:
            await barrier(s)
        assert [len(sink.events) for sink in sinks] == [1, 1, 1]


@async_test()
async def test_subscribers_of_every_kind(router: RouterEndpoints) -> None:
    """One publication, delivered re-encoded to subscribers on every transport and serializer."""
    async with peers(router) as p:
        topic = unique_uri("mixed")
        sinks: list[tuple[Kind, EventSink]] = []
        for kind in ALL_KINDS:
            s = await p.connect(kind)
            sink = EventSink()
            await s.subscribe(sink, topic)
            sinks.append((kind, sink))
        blob = random.Random(4).randbytes(4096)
        for pub_kind in ALL_KINDS:
            publisher = await p.connect(pub_kind)
            await publisher.publish(topic, blob, "ünï ✓", 2**53, 0.5, kw=b"\x00\x01", options=ACK)
        for kind, sink in sinks:
            events = await sink.wait(len(ALL_KINDS))
            for args, kwargs in events:
                assert list(args) == [blob, "ünï ✓", 2**53, 0.5], kind
                assert type(args[0]) is bytes, kind
                assert kwargs == {"kw": b"\x00\x01"}, kind


@kinds_param()
@async_test()
async def test_publisher_excluded_by_default(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        publisher = await p.connect(kind)
        other = await p.connect(kind)
        topic = unique_uri("exclude_me")
        own, theirs = EventSink(), EventSink()
        await publisher.subscribe(own, topic)
        await other.subscribe(theirs, topic)

        await publisher.publish(topic, "default", options=ACK)
        await theirs.wait(1)
        await barrier(publisher)
        assert own.events == []

        # exclude_me=false (Advanced Profile, publisher_exclusion) lets it through.
        await publisher.publish(
            topic, "included", options=PublishOptions(acknowledge=True, exclude_me=False)
        )
        [(args, _)] = await own.wait(1)
        assert list(args) == ["included"]
        events = await theirs.wait(2)
        assert [list(a) for a, _ in events] == [["default"], ["included"]]


@kinds_param()
@async_test()
async def test_acknowledged_publish(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        publisher = await p.connect(kind)
        subscriber = await p.connect(kind)
        topic = unique_uri("ack")

        # No subscribers: still PUBLISHED with a publication id.
        pub = await publisher.publish(topic, "nobody listens", options=ACK)
        assert isinstance(pub.id, int) and 1 <= pub.id <= 2**53

        sink = EventSink()
        await subscriber.subscribe(sink, topic)
        pubs = [await publisher.publish(topic, i, options=ACK) for i in range(3)]
        assert len({pb.id for pb in pubs}) == 3
        events = await sink.wait(3)
        assert [list(a) for a, _ in events] == [[0], [1], [2]]

        # Unacknowledged: nothing comes back, the event is still delivered.
        assert publisher.publish(topic, "fire-and-forget") is None
        events = await sink.wait(4)
        assert list(events[3][0]) == ["fire-and-forget"]


@kinds_param()
@async_test()
async def test_unsubscribe(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        publisher = await p.connect(kind)
        leaving = await p.connect(kind)
        staying = await p.connect(kind)
        topic = unique_uri("unsub")
        gone, kept = EventSink(), EventSink()
        sub = await leaving.subscribe(gone, topic)
        await staying.subscribe(kept, topic)

        await publisher.publish(topic, "before", options=ACK)
        await gone.wait(1)
        await kept.wait(1)

        await sub.unsubscribe()
        assert not sub.active
        await publisher.publish(topic, "after", options=ACK)
        events = await kept.wait(2)
        assert list(events[1][0]) == ["after"]
        await barrier(leaving)
        assert [list(a) for a, _ in gone.events] == [["before"]]


@kinds_param()
@async_test()
async def test_event_order_and_args_shapes(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        publisher = await p.connect(kind)
        subscriber = await p.connect(kind)
        topic = unique_uri("order")
        sink = EventSink()
        await subscriber.subscribe(sink, topic)

        for i in range(200):
            publisher.publish(topic, i)
        publisher.publish(topic)  # no payload at all
        publisher.publish(topic, only="kwargs")
        await publisher.publish(topic, "last", options=ACK)
        events = await sink.wait(203)
        assert [list(a) for a, _ in events[:200]] == [[i] for i in range(200)]
        assert events[200] == ((), {})
        assert events[201] == ((), {"only": "kwargs"})
        assert list(events[202][0]) == ["last"]


@kinds_param()
@async_test()
async def test_one_mib_event(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        publisher = await p.connect(kind)
        subscribers = [await p.connect(kind) for _ in range(2)]
        topic = unique_uri("big_event")
        sinks = [EventSink() for _ in subscribers]
        for s, sink in zip(subscribers, sinks, strict=True):
            await s.subscribe(sink, topic)

        text = "Ünïcødé ✓ " * (MIB // 10)
        blob = random.Random(5).randbytes(MIB)
        await publisher.publish(topic, text, blob=blob, options=ACK)
        for sink in sinks:
            [(args, kwargs)] = await sink.wait(1, timeout=10)
            assert list(args) == [text]
            assert isinstance(kwargs["blob"], bytes) and kwargs["blob"] == blob


@kinds_param()
@async_test()
async def test_subscriber_leaving_stops_delivery(router: RouterEndpoints, kind: Kind) -> None:
    """A session that disconnects (abruptly) is dropped from the topic; others still receive."""
    async with peers(router) as p:
        publisher = await p.connect(kind)
        dropper = await p.connect(kind)
        keeper = await p.connect(kind)
        topic = unique_uri("leaver")
        kept = EventSink()
        await dropper.subscribe(EventSink(), topic)
        await keeper.subscribe(kept, topic)

        dropper.drop()
        await dropper.disconnected
        for i in range(20):
            publisher.publish(topic, i)
        await publisher.publish(topic, "end", options=ACK)
        events = await kept.wait(21)
        expected: list[Any] = [[i] for i in range(20)] + [["end"]]
        assert [list(a) for a, _ in events] == expected
