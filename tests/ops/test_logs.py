"""Log lines at the default level: one per session join and leave, per call timeout;
``log_format = "json"`` gives one JSON object per line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from interop.abclient import RS_JSON, WS_MSGPACK, async_test, connect

from fastwamp.ops.logs import JsonFormatter

pytestmark = pytest.mark.interop

CONFIG = """\
log_level = "info"
log_format = "{log_format}"

[[listeners]]
type = "websocket"
port = 0

[[listeners]]
type = "rawsocket"
port = 0
"""


def workload(endpoints) -> tuple[int, int]:  # noqa: ANN001
    """A callee and a caller join, one call times out, both leave; their session ids."""
    ids: list[int] = []

    @async_test(timeout=30)
    async def run() -> None:
        callee = await connect(endpoints, RS_JSON)
        caller = await connect(endpoints, WS_MSGPACK)
        ids.extend([callee._session_id, caller._session_id])
        never = asyncio.get_running_loop().create_future()

        async def slow() -> None:
            await never

        await callee.register(slow, "com.ops.slow")
        with pytest.raises(ApplicationError) as exc:
            await caller.call("com.ops.slow", options=CallOptions(timeout=50))  # ms
        assert exc.value.error == "wamp.error.timeout"
        await caller.close()
        await callee.close()

    run()
    return ids[0], ids[1]


def test_json_log_lines(configured_router):
    router = configured_router(CONFIG.format(log_format="json"))
    callee_id, caller_id = workload(router.endpoints)
    router.stop()
    records = [json.loads(line) for line in router.stderr_text().splitlines() if line.strip()]
    joined = [r for r in records if r.get("event") == "session_joined"]
    left = [r for r in records if r.get("event") == "session_left"]
    assert {r["session"] for r in joined} == {callee_id, caller_id}
    assert {r["session"] for r in left} == {callee_id, caller_id}
    callee = next(r for r in joined if r["session"] == callee_id)
    assert callee["realm"] == "realm1" and callee["transport"] == "rawsocket"
    assert callee["authrole"] == "anonymous" and callee["authid"].startswith("anonymous")
    assert callee["peer"].startswith("tcp4:127.0.0.1:")
    assert callee["agent"] == ""  # Autobahn|Python sends no HELLO.Details.agent
    assert callee["level"] == "info" and callee["time"].endswith("Z")
    assert all(r["reason"] == "goodbye" for r in left)
    timeouts = [r for r in records if "timed out" in r["message"]]
    assert len(timeouts) == 1 and "com.ops.slow" in timeouts[0]["message"]
    # Nothing per routed message: joins, leaves, the timeout, start and stop only.
    assert len(records) <= 10, records


def test_text_log_lines_are_readable(configured_router):
    router = configured_router(CONFIG.format(log_format="text"))
    callee_id, _ = workload(router.endpoints)
    router.stop()
    lines = router.stderr_text().splitlines()
    assert any(f"session {callee_id} joined realm realm1 (authid anonymous" in line
               and "rawsocket, agent -)" in line for line in lines), lines
    assert any(f"session {callee_id} left realm realm1 (goodbye;" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)


def test_json_formatter_keeps_extra_fields_and_tracebacks():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("fastwamp.x", logging.ERROR, __file__, 1, "failed %s", ("x",),
                                   sys.exc_info())
    record.session = 42
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed x" and entry["session"] == 42
    assert entry["level"] == "error" and "ValueError: boom" in entry["exception"]
