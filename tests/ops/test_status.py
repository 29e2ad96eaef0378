"""``fastwamp status`` against a real router process with Autobahn|Python peers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from autobahn.wamp.types import RegisterOptions
from interop.abclient import RS_CBOR, WS_JSON, async_test, peers

pytestmark = pytest.mark.interop


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastwamp", "status", *args],
                          capture_output=True, text=True, timeout=60)


def test_status_shows_sessions_registrations_subscriptions_and_stats(ops_router_factory):
    router = ops_router_factory()
    endpoints = router.endpoints

    @async_test(timeout=60)
    async def run() -> None:
        async with peers(endpoints) as p:
            callees = [await p.connect(kind) for kind in (WS_JSON, RS_CBOR)]
            for callee in callees:
                await callee.register(lambda: 1, "com.ops.shared",
                                      options=RegisterOptions(invoke="roundrobin"))
            await callees[0].subscribe(lambda *a: None, "com.ops.topic")
            ids = sorted(c._session_id for c in callees)

            done = await asyncio.to_thread(status, "--url", endpoints.rs_url, "--json")
            assert done.returncode == 0, done.stderr
            state = json.loads(done.stdout)
            assert state["realm"] == "realm1" and state["session_count"] == 3  # and itself
            assert {s["session"] for s in state["sessions"]} >= set(ids)
            (reg,) = [r for r in state["registrations"] if r["uri"] == "com.ops.shared"]
            assert reg["invoke"] == "roundrobin" and sorted(reg["callees"]) == ids
            (sub,) = state["subscriptions"]
            assert sub["uri"] == "com.ops.topic" and sub["subscribers"] == 1
            assert state["stats"]["sessions_joined"] == 3

            text = await asyncio.to_thread(status, "--url", endpoints.ws_url)
            assert text.returncode == 0, text.stderr
            assert "com.ops.shared  match exact  invoke roundrobin  callees 2" in text.stdout
            assert "com.ops.topic  match exact  subscribers 1" in text.stdout
            assert "sessions_joined = 4" in text.stdout

    run()


def test_status_reports_a_refused_session_and_an_unreachable_router(ops_router_factory):
    router = ops_router_factory()
    refused = status("--url", router.endpoints.rs_url, "--realm", "no.such.realm")
    assert refused.returncode == 1 and "wamp.error.no_such_realm" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = status("--url", "http://127.0.0.1:1/")
    assert bad.returncode == 1 and "ws://, wss:// or tcp://" in bad.stderr
