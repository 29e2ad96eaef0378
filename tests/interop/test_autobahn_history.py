"""Event history through a real router process: wamp.subscription.get_events, and an
SQLite store that keeps history across a router restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from autobahn.wamp.types import CallResult, PublishOptions, SubscribeOptions

from .abclient import RS_MSGPACK, WS_JSON, async_test, connect
from .conftest import RouterProcess

pytestmark = pytest.mark.interop

REALM = "history.realm"


def _history_realm(store: Path) -> str:
    return f"""
[[realms]]
name = "{REALM}"
history_store = "{store}"

[[realms.event_history]]
uri = "com.hist.news"
limit = 3

[[realms.event_history]]
uri = "com.hist.logs."
match = "prefix"
"""


async def _publish(endpoints, topic: str, values: list) -> None:
    pub = await connect(endpoints, RS_MSGPACK, REALM)
    for value in values:
        await pub.publish(topic, value, options=PublishOptions(acknowledge=True))
    await pub.leave()


async def _read(endpoints, topic: str, match: str, **filters) -> list:
    reader = await connect(endpoints, WS_JSON, REALM)
    sub = await reader.subscribe(lambda *a: None, topic, options=SubscribeOptions(match=match))
    result = await reader.call("wamp.subscription.get_events", sub.id, **filters)
    await reader.leave()
    # The spec's result: one positional argument per event, which Autobahn hands back as
    # None (no event), the event itself (one), or a CallResult (several).
    if result is None:
        return []
    return result.results if isinstance(result, CallResult) else [result]


@async_test()
async def test_history_survives_router_restart(tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    rp = RouterProcess(tmp_path, "history", extra_config=_history_realm(store))
    endpoints = rp.start()
    try:
        await _publish(endpoints, "com.hist.news", ["a", "b", "c", "d"])
        await _publish(endpoints, "com.hist.logs.x", ["x1"])
        events = await _read(endpoints, "com.hist.news", "exact")
        assert [e["args"] for e in events] == [["b"], ["c"], ["d"]]
        endpoints = rp.restart()  # a new router process on the same store
        events = await _read(endpoints, "com.hist.news", "exact")
        assert [e["args"] for e in events] == [["b"], ["c"], ["d"]]
        assert events[-1]["timestamp"].endswith("Z")
        latest = await _read(endpoints, "com.hist.news", "exact", limit=1)
        assert [e["args"] for e in latest] == [["d"]]
        logs = await _read(endpoints, "com.hist.logs.", "prefix")
        assert [(e["topic"], e["args"]) for e in logs] == [("com.hist.logs.x", ["x1"])]
    finally:
        rp.stop(check=True)
