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


@async_test()
async def test_a_large_payload_that_is_not_valid_msgpack_reaches_nobody(
        router: RouterEndpoints) -> None:
    """A hostile caller's large CALL whose payload holds a string of invalid UTF-8 (which
    would make an Autobahn callee drop its connection if it were passed on): the router
    refuses the message and aborts that session; the callee gets nothing and stays."""
    import msgpack

    from .hostile_support import RawPeer

    async with peers(router) as p:
        callee = await p.connect(RS_MSGPACK)
        proc = unique_uri("passthru.victim")
        calls: list[object] = []
        await callee.register(lambda *args: calls.append(args), proc)
        hostile = await RawPeer(router).join()
        head = msgpack.packb([48, 1, {}, proc])
        args = b"\x91\xda\x02\x58" + b"\xff" * 600  # [str16 of 600 bytes, none UTF-8]
        body = bytes((0x95,)) + head[1:] + args  # [CALL, 1, {}, proc, [<600 bad bytes>]]
        hostile.writer.write(len(body).to_bytes(4, "big") + body)
        reply = await hostile.recv()
        assert reply is None or reply[0] == 3, reply  # ABORT, then closed
        assert await hostile.closed_within(5) is not None
        assert await callee.call(proc) is None  # still joined and served
        assert calls == [()]
