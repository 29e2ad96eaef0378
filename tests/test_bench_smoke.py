"""A short run of the end-to-end benchmark, so that it never rots.

``bench/e2e.py`` against fastwamp and the bare relay (no Crossbar, no chart), every
kind of scenario once, both transports, both serializers and both write patterns
at least once, with tiny durations (about 10 seconds in all).  It checks that the
run completes, that every run's calls and events went through without errors, and
that the tables are printed.  It never looks at a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
E2E = REPO / "bench" / "e2e.py"

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.timeout(180),
]


def test_e2e_smoke(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    out_json = tmp_path / "e2e.json"
    argv = [
        sys.executable,
        str(E2E),
        "--quick",
        "--routers",
        "fastwamp,relay",
        "--scenarios",
        "rpc,rpc1,pubsub10,rpc_full,sessions",
        "--configs",
        "rs/msgpack/each,ws/json/batch",
        "--transports",
        "rawsocket,websocket",
        "--duration",
        "0.2",
        "--warmup",
        "0.1",
        "--sessions",
        "50",
        "--settle",
        "0.1",
        "--json",
        str(out_json),
    ]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=170)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    assert "FAILED" not in proc.stderr, report
    out = proc.stdout
    assert "Targets (issue 8)" in out, report
    for figure in (
        "router CPU µs per routed call, RawSocket+msgpack, write each",
        "router CPU µs per routed call, WebSocket+json, write batch",
        "sequential round trip p50",
        "router CPU µs per delivered event, 10 subscribers",
        "sessions/s on one core",
        "KiB per idle session, RawSocket",
        "KiB per idle session, WebSocket",
        "1,000 regs + 1,000 subs / empty realm",
    ):
        assert figure in out, f"{figure!r} missing\n{report}"

    data = json.loads(out_json.read_text())
    assert data["failures"] == []
    seen = {(r["scenario"], r["wire"], r["router"]) for r in data["results"]}
    expected = {
        ("rpc", "rs/msgpack/each", "fastwamp"),
        ("rpc", "rs/msgpack/each", "relay"),
        ("rpc", "ws/json/batch", "fastwamp"),
        ("rpc", "ws/json/batch", "relay"),
        ("rpc1", "rs/msgpack/each", "fastwamp"),
        ("rpc1", "rs/msgpack/each", "relay"),
        ("pubsub10", "rs/msgpack/each", "fastwamp"),
        ("pubsub10", "rs/msgpack/each", "relay"),
        ("rpc_full", "rs/msgpack/each", "fastwamp"),  # the relay has no realm to fill
        ("sessions", "rs/msgpack/batch", "fastwamp"),
        ("sessions", "rs/msgpack/batch", "relay"),
        ("sessions", "ws/msgpack/batch", "fastwamp"),
        ("sessions", "ws/msgpack/batch", "relay"),
    }
    assert seen == expected, report
    for r in data["results"]:
        assert r["ops"] > 0 and r["errors"] == 0, (r, report)
        assert r["router_cpu"] is not None, (r, report)
        if r["scenario"] == "sessions":
            assert r["extra"]["sessions"] == 50, (r, report)
            assert r["extra"]["rss_idle"] > 0, (r, report)


@pytest.mark.skipif(bool(__import__("os").environ.get("FASTWAMP_NO_EXTENSIONS")),
                    reason="needs the compiled build")
def test_router_twins_smoke() -> None:
    """bench/router_twins.py runs both builds of the router twins (it exits non-zero
    when a run did not get the build it asked for)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "router_twins.py"), "--calls", "500",
         "--rounds", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "median: compiled" in proc.stdout


def test_publish_cost_smoke() -> None:
    """bench/publish_cost.py delivers every event it publishes (it raises otherwise)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "publish_cost.py"), "--subscribers", "10,100",
         "--count", "200", "--rounds", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("µs per event") == 2, proc.stdout


@pytest.mark.timeout(300)
def test_call_instructions_smoke() -> None:
    """``bench/call_instructions.py`` with a few calls: both routers start under
    callgrind, serve the calls and report a count (never compared to anything)."""
    import shutil

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "call_instructions.py"),
         "--transports", "rawsocket", "--calls", "5,15"],
        capture_output=True, text=True, timeout=280, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fastwamp  rawsocket" in result.stdout and "relay     rawsocket" in result.stdout
    assert "fastwamp / relay" in result.stdout


def test_call_bytecodes_smoke() -> None:
    """``bench/call_bytecodes.py`` counts the bytecodes of a few calls on each wire and
    names the router functions that ran them (never compared to anything)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "call_bytecodes.py"),
         "--transports", "rawsocket,websocket/picows", "--calls", "5"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("bytecodes per call") == 2, result.stdout
    assert "session.py:receive" in result.stdout, result.stdout
