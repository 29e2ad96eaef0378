"""Payload passthru end to end: Autobahn|Python peers exchange large payloads through
fastwamp, MessagePack to MessagePack (passed through as bytes) and to JSON and CBOR
peers (decoded for them)."""

from __future__ import annotations

import pytest
from autobahn.wamp.types import PublishOptions

from .abclient import (
    RS_MSGPACK,
    WS_CBOR,
    WS_JSON,
    WS_MSGPACK,
    EventSink,
    Kind,
    async_test,
    peers,
    unique_uri,
)
from .conftest import RouterEndpoints

pytestmark = pytest.mark.interop

RECORDS = [{"id": i, "name": f"user-{i}", "score": i / 7, "tags": ["a", "é✓"], "ok": True}
           for i in range(200)]


@pytest.mark.parametrize("callee_kind", [RS_MSGPACK, WS_MSGPACK, WS_JSON, WS_CBOR],
                         ids=lambda k: k.id)
@async_test()
async def test_large_call_and_result(router: RouterEndpoints, callee_kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(callee_kind)
        caller = await p.connect(RS_MSGPACK)
        proc = unique_uri("passthru.echo")

        def echo(records: list, tail: bytes, **kwargs: object) -> dict:
            return {"records": records, "tail": tail, "kwargs": kwargs}

        await callee.register(echo, proc)
        result = await caller.call(proc, RECORDS, b"\x00\xffbinary", trace="t" * 30)
        assert result == {"records": RECORDS, "tail": b"\x00\xffbinary",
                          "kwargs": {"trace": "t" * 30}}


@async_test()
async def test_large_event_to_every_serializer(router: RouterEndpoints) -> None:
    async with peers(router) as p:
        topic = unique_uri("passthru.topic")
        sinks = []
        for kind in (RS_MSGPACK, WS_MSGPACK, WS_JSON, WS_CBOR):
            subscriber = await p.connect(kind)
            sink = EventSink()
            await subscriber.subscribe(sink, topic)
            sinks.append(sink)
        publisher = await p.connect(RS_MSGPACK)
        for n in range(3):
            await publisher.publish(topic, RECORDS, n, options=PublishOptions(acknowledge=True))
        for sink in sinks:
            events = await sink.wait(3)
            assert [args for args, _ in events] == [(RECORDS, n) for n in range(3)]
