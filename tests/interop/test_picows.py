"""Autobahn|Python over a picows WebSocket listener of a real fastwamp process.

The router runs with its usual listeners plus a WebSocket listener with
``implementation = "picows"`` on the path ``/picows``; calls and pub/sub go
through that listener with JSON and MessagePack.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from autobahn.wamp.types import CallResult, PublishOptions

from .abclient import (
    WS_JSON,
    WS_MSGPACK,
    EventSink,
    Kind,
    async_test,
    kinds_param,
    peers,
    unique_uri,
)
from .conftest import RouterEndpoints, RouterProcess

try:
    import picows  # noqa: F401
except ImportError:  # pragma: no cover - picows is in the test extra
    HAVE_PICOWS = False
else:
    HAVE_PICOWS = True

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not HAVE_PICOWS, reason="picows is not installed (pip install 'fastwamp[picows]')"
    ),
]

PICOWS_LISTENER = """\
[[listeners]]
type = "websocket"
implementation = "picows"
host = "127.0.0.1"
port = 0
path = "/picows"
serializers = ["json", "msgpack", "cbor"]
"""
KINDS = [WS_JSON, WS_MSGPACK]


@pytest.fixture(scope="module")
def picows_router() -> Iterator[RouterEndpoints]:
    """A router whose WebSocket endpoint (for Autobahn) is the picows listener."""
    with tempfile.TemporaryDirectory(prefix="fastwamp-picows-") as tmp:
        rp = RouterProcess(Path(tmp), "picows", extra_config=PICOWS_LISTENER)
        endpoints = rp.start()
        try:
            urls = [
                m.group(1)
                for line in rp.stdout_lines
                if (m := re.match(r"fastwamp: listening on (ws://\S+/picows)\s*$", line))
            ]
            assert len(urls) == 1, rp.diagnostics()
            yield RouterEndpoints(ws_url=urls[0], rs_url=endpoints.rs_url)
        finally:
            rp.stop(check=True)  # exit status 0, no traceback on stderr


@async_test()
async def test_listener_runs_on_picows(picows_router: RouterEndpoints) -> None:
    """The engine shows on bad input: picows answers an invalid request with 400
    (websockets just closes the connection)."""
    parts = urlsplit(picows_router.ws_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(b"garbage\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


@kinds_param(KINDS)
@async_test()
async def test_call(picows_router: RouterEndpoints, kind: Kind) -> None:
    async with peers(picows_router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        procedure = unique_uri("picows.echo")

        def echo(*args: Any, **kwargs: Any) -> CallResult:
            return CallResult(*args, **kwargs)

        await callee.register(echo, procedure)
        big = "x" * 200_000  # several TCP segments, reassembled by picows' parser
        result = await caller.call(procedure, 1, "two", [3.5, None], b"\x00\xff", big, k={"a": 1})
        assert list(result.results) == [1, "two", [3.5, None], b"\x00\xff", big]
        assert result.kwresults == {"k": {"a": 1}}
        # Many calls in flight: replies batch into one write per read.
        results = await asyncio.gather(*(caller.call(procedure, i) for i in range(200)))
        assert results == list(range(200))


@kinds_param(KINDS)
@async_test()
async def test_pubsub(picows_router: RouterEndpoints, kind: Kind) -> None:
    async with peers(picows_router) as p:
        publisher = await p.connect(kind)
        subscribers = [await p.connect(kind) for _ in range(3)]
        topic = unique_uri("picows.topic")
        sinks = [EventSink() for _ in subscribers]
        for session, sink in zip(subscribers, sinks, strict=True):
            await session.subscribe(sink, topic)
        for i in range(50):
            publisher.publish(topic, i, text="é")
        await publisher.publish(topic, 50, text="é", options=PublishOptions(acknowledge=True))
        for sink in sinks:
            events = await sink.wait(51)
            assert [args for args, _ in events] == [(i,) for i in range(51)]
            assert all(kwargs == {"text": "é"} for _, kwargs in events)
