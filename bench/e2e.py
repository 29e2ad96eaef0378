"""End-to-end benchmark: fastwamp, a bare relay and Crossbar, same load, same machine, same run.

For every measurement (a scenario from ``loadgen.SCENARIOS`` on one wire: RawSocket
or WebSocket, msgpack or json, messages written one by one or batched) and every
router, in turn, this starts a fresh router process on 127.0.0.1, runs the
scenario with ``bench/loadgen.py`` worker processes, samples the router's CPU
time (user + system time of its process tree, through psutil) at both ends of the
measurement window (and its RSS for ``sessions``), and stops the router again.
The routers alternate within each measurement, so all three see the same
background load as far as possible; ``--repeat`` runs the whole round again and
the tables show medians.

* ``fastwamp``: ``python -m fastwamp`` (this checkout, or ``--router-src DIR``);
* ``relay``: ``bench/relay.py``, a bare relay that pairs one caller with one
  callee and fans PUBLISH out without decoding them: the floor of a Python
  process on uvloop (it runs only the scenarios it can: see ``Relay.supports``);
* ``crossbar``: Crossbar.io from its own virtual environment.

It prints every run, then a table per measurement, the ratios to the relay and
to Crossbar, and the figures of issue 8's target table with their ratios.

    python bench/e2e.py                         # the target figures (~10 min)
    python bench/e2e.py --quick                 # the same, short (~3 min)
    python bench/e2e.py --scenarios rpc --configs rs/msgpack/each --repeat 3
    python bench/e2e.py --chart bench/e2e.png --json /tmp/e2e.json

Every process it starts (routers, their children, load workers) is stopped
before it exits, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CROSSBAR_TEMPLATE = BENCH_DIR / "crossbar" / "config.json"
DEFAULT_CROSSBAR = "/opt/crossbar-venv/bin/crossbar"
HOST = "127.0.0.1"
#: WebSocket runs: the HTTP path of fastwamp's listener (the others take any path).
WS_PATH = "/ws"
ROUTERS = ("fastwamp", "relay", "crossbar")
#: The scenarios behind issue 8's target table (the default).
TARGET_SCENARIOS = [
    "rpc",
    "rpc1",
    "pubsub10",
    "pubsub100",
    "pubsub1000",
    "rpc_full",
    "pubsub10_full",
    "sessions",
]
#: Scenarios run on every wire of the matrix; the others on the first wire only.
MATRIX_SCENARIOS = {"rpc"}
TRANSPORT_SHORT = {"rs": "rawsocket", "ws": "websocket"}


# ---------------------------------------------------------------------------
# Router processes


class Router:
    """A router process started by this benchmark; subclasses know how.

    (``bench/hostile.py`` builds on it as well: keep ``Router()`` and ``stop()``.)
    """

    name = "router"

    def __init__(self, wire: loadgen.Wire | None = None) -> None:
        self.wire = wire or loadgen.Wire()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.log_path = self.workdir / "router.log"
        self._log: Any = None
        #: Where stop() keeps a copy of the router's output (None: nowhere).
        self.keep_log: Path | None = None

    @staticmethod
    def supports(scenario: loadgen.Scenario) -> bool:
        return True

    def _spawn(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, not the router
        )

    def _wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            match = re.search(pattern, self.log_path.read_text(errors="replace"))
            if match:
                return match
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float, scenario: loadgen.Scenario, sessions: int) -> None:
        raise NotImplementedError

    def cpu(self) -> float:
        assert self.proc is not None
        return loadgen.proc_tree_cpu(self.proc.pid)

    def rss(self) -> int:
        assert self.proc is not None
        return loadgen.proc_tree_rss(self.proc.pid)

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with status {self.proc.returncode}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """SIGTERM the router, then SIGKILL whatever of its process tree is left."""
        proc = self.proc
        if proc is not None:
            tree = loadgen._descendants(proc.pid)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            deadline = time.monotonic() + 5
            for pid in tree:
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.keep_log is not None and self.log_path.exists():
            shutil.copyfile(self.log_path, self.keep_log)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _python_env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


class Fastwamp(Router):
    """``python -m fastwamp`` with one listener (json and msgpack), defaults otherwise
    (full validation, meta API, every hardening limit), except that scenarios with
    more than 900 connections raise ``max_connections_per_address`` above their count."""

    name = "fastwamp"

    def __init__(self, wire: loadgen.Wire, src: Path, implementation: str = "default") -> None:
        self.implementation = implementation
        if wire.transport == "websocket" and implementation != "default":
            self.name = f"fastwamp-{implementation}"
        super().__init__(wire)
        self.src = src

    def start(self, timeout: float, scenario: loadgen.Scenario, sessions: int) -> None:
        config = self.workdir / "fastwamp.toml"
        listener = f'type = "{self.wire.transport}"\n'
        if self.wire.transport == "websocket":
            listener += f'path = "{WS_PATH}"\n'
            if self.implementation != "default":
                listener += f'implementation = "{self.implementation}"\n'
        top = 'log_level = "warning"\n'
        # Every connection comes from 127.0.0.1: let the scenario's connections in
        # (sessions, 1,000 subscribers); every other limit stays at its default.
        connections = sessions if scenario.kind == "sessions" else scenario.subscribers
        if connections > 900:
            top += f"max_connections_per_address = {connections + 100}\n"
        config.write_text(
            f"{top}\n"
            "[[realms]]\n"
            'name = "realm1"\n\n'
            "[[listeners]]\n"
            f"{listener}"
            f'host = "{HOST}"\n'
            "port = 0\n"
            'serializers = ["msgpack", "json"]\n'
        )
        argv = [sys.executable, "-m", "fastwamp", "--config", str(config)]
        self._spawn(argv, self.src, _python_env(self.src))
        match = self._wait_for_line(
            r"fastwamp: listening on (?:tcp|ws)://[^\s:]+:(\d+)(?s:.*)fastwamp: ready", timeout
        )
        self.port = int(match.group(1))


class Relay(Router):
    """``bench/relay.py``: the floor (see its docstring)."""

    name = "relay"

    @staticmethod
    def supports(scenario: loadgen.Scenario) -> bool:
        if scenario.filler or scenario.filler_subscriptions:
            return False  # no realm to fill
        if scenario.kind == "rpc":
            return scenario.callers == 1 and scenario.callee_sessions == 1
        return True

    def start(self, timeout: float, scenario: loadgen.Scenario, sessions: int) -> None:
        argv = [sys.executable, str(BENCH_DIR / "relay.py"), "--host", HOST, "--port", "0"]
        self._spawn(argv, BENCH_DIR)
        self.port = int(self._wait_for_line(r"relay: listening on (\d+)", timeout).group(1))


class Crossbar(Router):
    """Crossbar with ``bench/crossbar/config.json`` (one router worker), the wire's
    transport on a free port, json and msgpack, ``--loglevel warn``."""

    name = "crossbar"

    def __init__(self, wire: loadgen.Wire, executable: str) -> None:
        super().__init__(wire)
        self.executable = executable

    def start(self, timeout: float, scenario: loadgen.Scenario, sessions: int) -> None:
        self.port = _free_port()
        config = json.loads(CROSSBAR_TEMPLATE.read_text())
        for worker in config["workers"]:
            for transport in worker.get("transports", []):
                transport["endpoint"]["port"] = self.port
                transport["endpoint"]["interface"] = HOST
                transport["serializers"] = ["msgpack", "json"]
                if self.wire.transport == "websocket":
                    # Same transport, WebSocket instead of RawSocket (no compression,
                    # no auto-ping: Crossbar enables them only when configured).
                    transport["type"] = "websocket"
                    transport["options"] = {"max_message_size": 16777216}
        cbdir = self.workdir / ".crossbar"
        cbdir.mkdir()
        (cbdir / "config.json").write_text(json.dumps(config, indent=2))
        self._spawn(
            [self.executable, "start", "--cbdir", str(cbdir), "--loglevel", "warn"],
            self.workdir,
        )
        deadline = time.monotonic() + timeout
        answers = _websocket_answers if self.wire.transport == "websocket" else _rawsocket_answers
        while time.monotonic() < deadline:
            self._check_alive()
            if answers(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"crossbar not listening after {timeout:.0f} s:\n{self.log_tail()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _rawsocket_answers(port: int) -> bool:
    """True once a RawSocket msgpack handshake on ``port`` gets an accepting reply."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(loadgen.HANDSHAKE)
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return False
                reply += chunk
            return reply[0] == 0x7F and reply[1] & 0x0F == 2
    except OSError:
        return False


def _websocket_answers(port: int) -> bool:
    """True once a WebSocket upgrade (wamp.2.msgpack) on ``port`` is accepted."""
    request, accept = loadgen.ws_upgrade_request(HOST, port, WS_PATH)
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(request)
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                reply += chunk
            return loadgen.ws_check_response(reply.split(b"\r\n\r\n")[0], accept) is None
    except OSError:
        return False


# ---------------------------------------------------------------------------
# What to run


def parse_wire(label: str) -> loadgen.Wire:
    """``rs/msgpack/each`` -> Wire (transport rs|ws|rawsocket|websocket)."""
    try:
        transport, serializer, write = label.split("/")
    except ValueError:
        raise ValueError(f"wire {label!r}: expected TRANSPORT/SERIALIZER/WRITE") from None
    transport = TRANSPORT_SHORT.get(transport, transport)
    if (
        transport not in ("rawsocket", "websocket")
        or serializer not in ("msgpack", "json")
        or write not in ("each", "batch")
    ):
        raise ValueError(f"wire {label!r}: rs|ws / msgpack|json / each|batch")
    return loadgen.Wire(transport, WS_PATH, serializer, write)


def build_plan(
    scenarios: list[str],
    transports: list[str],
    serializers: list[str],
    writes: list[str],
    configs: list[loadgen.Wire] | None,
) -> list[tuple[str, loadgen.Wire]]:
    """(scenario, wire) pairs: matrix scenarios on every wire (or ``configs``),
    ``sessions`` on every transport, the others on the first wire."""
    matrix = configs or [
        loadgen.Wire(t, WS_PATH, s, w)
        for t, s, w in itertools.product(transports, serializers, writes)
    ]
    first = loadgen.Wire(transports[0], WS_PATH, serializers[0], writes[0])
    plan: list[tuple[str, loadgen.Wire]] = []
    for name in scenarios:
        if name in MATRIX_SCENARIOS:
            plan += [(name, wire) for wire in matrix]
        elif name == "sessions":
            plan += [(name, loadgen.Wire(t, WS_PATH, serializers[0], "batch")) for t in transports]
        else:
            plan.append((name, first))
    return plan


# ---------------------------------------------------------------------------
# Reporting


def machine_facts(crossbar: str | None, src: Path = REPO_DIR) -> dict[str, str]:
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    for dist in ("uvloop", "msgpack", "websockets", "picows"):
        try:
            facts[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    facts["fastwamp"] = _revision(src)
    if crossbar:
        python = Path(crossbar).parent / "python"
        try:
            out = subprocess.run(
                [str(python), "-c", "import importlib.metadata as m; print(m.version('crossbar'))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            facts["crossbar"] = out.stdout.strip() or "?"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return facts


def _revision(src: Path) -> str:
    """The commit fastwamp runs from: ``src/REVISION``, else git (``+dirty`` if the
    router's sources differ from it)."""
    if (src / "REVISION").exists():
        return (src / "REVISION").read_text().strip()
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=src, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fastwamp"], cwd=src, capture_output=True
        ).stdout.strip()
        return (rev or "?") + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


Key = tuple[str, str, str]  # scenario, wire label, router


def summarize(results: dict[Key, list[loadgen.Result]]) -> dict[Key, dict[str, Any]]:
    """Median of every figure over the repetitions of one (scenario, wire, router)."""
    summary: dict[Key, dict[str, Any]] = {}
    for key, runs in results.items():
        summary[key] = {
            "ops_per_s": _median([r.ops_per_s for r in runs]),
            "cpu_us": _median([r.router_cpu_us_per_op for r in runs]),
            "cpu_us_all": [r.router_cpu_us_per_op for r in runs],
            "cpu_util": _median([r.router_cpu_util for r in runs]),
            "gen_us": _median([r.loadgen_cpu_us_per_op for r in runs]),
            "busy": _median([r.machine_busy for r in runs]),
            "p50": _median([r.latency_p50_ms for r in runs]),
            "p99": _median([r.latency_p99_ms for r in runs]),
            "kib": _median([r.extra.get("kib_per_session") for r in runs]),
            "rss_before": _median([r.extra.get("rss_before") for r in runs]),
            "rss_idle": _median([r.extra.get("rss_idle") for r in runs]),
            "rss_after": _median([r.extra.get("rss_after") for r in runs]),
            "rss_released": _median([r.extra.get("rss_released") for r in runs]),
            "errors": sum(r.errors for r in runs),
            "runs": len(runs),
        }
    return summary


def print_runs_table(
    plan: list[tuple[str, loadgen.Wire]],
    routers_for: Any,
    summary: dict[Key, dict[str, Any]],
) -> None:
    header = [
        "scenario",
        "wire",
        "router",
        "ops/s",
        "router CPU µs/op",
        "range",
        "router CPU %",
        "loadgen CPU µs/op",
        "busy cores",
        "p50 ms",
        "p99 ms",
        "errors",
    ]
    rows: list[list[str]] = []
    for scenario, wire in plan:
        for router in routers_for(scenario, wire):
            s = summary.get((scenario, wire.label(), router))
            if s is None:
                rows.append([scenario, wire.label(), router, "failed", *[""] * (len(header) - 4)])
                continue
            values = [v for v in s["cpu_us_all"] if v is not None]
            spread = f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else ""
            rows.append(
                [
                    scenario,
                    wire.label(),
                    router,
                    _fmt(s["ops_per_s"], 0),
                    _fmt(s["cpu_us"], 2),
                    spread,
                    _fmt(s["cpu_util"] * 100 if s["cpu_util"] is not None else None, 0),
                    _fmt(s["gen_us"], 2),
                    _fmt(s["busy"], 2),
                    _fmt(s["p50"], 3),
                    _fmt(s["p99"], 3),
                    str(s["errors"]),
                ]
            )
    print_markdown(header, rows)


def print_sessions_table(
    plan: list[tuple[str, loadgen.Wire]], routers_for: Any, summary: dict[Key, dict[str, Any]]
) -> None:
    header = [
        "wire",
        "router",
        "sessions/s (wall)",
        "router CPU µs/session",
        "sessions/s per core",
        "KiB per idle session",
        "RSS MiB before / idle / after / after 6 s",
    ]
    rows: list[list[str]] = []
    for scenario, wire in plan:
        if scenario != "sessions":
            continue
        for router in routers_for(scenario, wire):
            s = summary.get((scenario, wire.label(), router))
            if s is None:
                continue
            mib = [
                _fmt(s[k] / 2**20 if s[k] is not None else None, 1)
                for k in ("rss_before", "rss_idle", "rss_after", "rss_released")
            ]
            rows.append(
                [
                    wire.transport,
                    router,
                    _fmt(s["ops_per_s"], 0),
                    _fmt(s["cpu_us"], 1),
                    _fmt(1e6 / s["cpu_us"] if s["cpu_us"] else None, 0),
                    _fmt(s["kib"], 2),
                    " / ".join(mib),
                ]
            )
    if rows:
        print_markdown(header, rows)


def _ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.{digits}f}×"


def target_rows(summary: dict[Key, dict[str, Any]], fastwamp_name: Any) -> list[list[str]]:
    """Issue 8's target table: figure, fastwamp, relay, Crossbar, cost ratios
    fastwamp/relay and Crossbar/fastwamp (for a rate, the cost is 1/rate), target,
    status.  ``fastwamp_name(wire)`` names the fastwamp row of a wire (WebSocket
    engines may have their own rows)."""

    def get(scenario: str, label: str, router: str, field: str = "cpu_us") -> float | None:
        if router == "fastwamp":
            router = fastwamp_name(label)
        s = summary.get((scenario, label, router))
        return s.get(field) if s else None

    rows: list[list[str]] = []

    def row(
        figure: str,
        scenario: str,
        label: str,
        field: str,
        digits: int,
        target: str,
        met: Any = None,
        scale: float = 1.0,
        rate: bool = False,
    ) -> None:
        fw, rl, cb = (get(scenario, label, r, field) for r in ROUTERS)
        fw, rl, cb = (v * scale if v is not None else None for v in (fw, rl, cb))
        if fw is None and rl is None and cb is None:
            return
        add(figure, fw, rl, cb, digits, target, met, rate)

    def add(
        figure: str,
        fw: float | None,
        rl: float | None,
        cb: float | None,
        digits: int,
        target: str,
        met: Any,
        rate: bool = False,
    ) -> None:
        verdict = None if fw is None or met is None else met(fw, rl, cb)
        status = "-" if verdict is None else verdict if isinstance(verdict, str) else (
            "met" if verdict else "missed"
        )  # fmt: skip
        ratios = (
            (_ratio(rl, fw), _ratio(fw, cb, 1)) if rate else (_ratio(fw, rl), _ratio(cb, fw, 1))
        )
        rows.append(
            [figure, _fmt(fw, digits), _fmt(rl, digits), _fmt(cb, digits), *ratios, target, status]
        )

    def vs_relay(limit: float, crossbar: float | None = None) -> Any:
        def met(fw: float, rl: float | None, cb: float | None) -> str | None:
            parts = []
            if rl is not None:
                parts.append(f"relay: {'met' if fw <= limit * rl else 'missed'}")
            if crossbar is not None and cb is not None:
                parts.append(f"Crossbar: {'met' if cb >= crossbar * fw else 'missed'}")
            return "; ".join(parts) or None

        return met

    def at_most(limit: float) -> Any:
        return lambda fw, rl, cb: fw <= limit

    for write in ("each", "batch"):
        label = f"rs/msgpack/{write}"
        row(
            f"router CPU µs per routed call, RawSocket+msgpack, write {write}",
            "rpc",
            label,
            "cpu_us",
            2,
            "≤ 1.5× relay, ≥ 15× less than Crossbar",
            vs_relay(1.5, 15.0),
        )
        row(
            f"calls/s, RawSocket+msgpack, write {write}",
            "rpc",
            label,
            "ops_per_s",
            0,
            "",
            rate=True,
        )
    for write in ("each", "batch"):
        rs = get("rpc", f"rs/msgpack/{write}", "fastwamp")
        for serializer in ("json", "msgpack"):
            label = f"ws/{serializer}/{write}"
            fw_ws = get("rpc", label, "fastwamp")
            shown = f" ({_ratio(fw_ws, rs)} here)" if fw_ws is not None and rs else ""
            row(
                f"router CPU µs per routed call, WebSocket+{serializer}, write {write}",
                "rpc",
                label,
                "cpu_us",
                2,
                f"≤ 2× the RawSocket figure{shown}",
                (lambda fw, rl, cb, rs=rs: fw <= 2 * rs) if rs else None,
            )
        row(
            f"router CPU µs per routed call, RawSocket+json, write {write}",
            "rpc",
            f"rs/json/{write}",
            "cpu_us",
            2,
            "",
        )
    row(
        "sequential round trip p50 µs (1 call in flight)",
        "rpc1",
        "rs/msgpack/each",
        "p50",
        0,
        "≤ 1.15× relay",
        vs_relay(1.15),
        scale=1000.0,
    )
    for n, limit in ((10, 1.5), (100, 1.5), (1000, 1.0)):
        row(
            f"router CPU µs per delivered event, {n:,} subscribers",
            f"pubsub{n}",
            "rs/msgpack/each",
            "cpu_us",
            2,
            f"≤ {limit} µs",
            at_most(limit),
        )
    for transport, short, limit in (("RawSocket", "rs", 20_000), ("WebSocket", "ws", 8_000)):
        label = f"{short}/msgpack/batch"
        row(
            f"router CPU µs per session established, {transport}",
            "sessions",
            label,
            "cpu_us",
            1,
            "",
        )
        fw, rl, cb = (get("sessions", label, r) for r in ROUTERS)
        if fw is not None or cb is not None:
            per_core = [1e6 / v if v else None for v in (fw, rl, cb)]
            add(
                f"sessions/s on one core (1 / CPU per session), {transport}",
                *per_core,
                0,
                f"≥ {limit:,}/s",
                lambda fw, rl, cb, limit=limit: fw >= limit,
                rate=True,
            )
        row(
            f"sessions/s (wall clock, 2 client processes), {transport}",
            "sessions",
            label,
            "ops_per_s",
            0,
            "",
            rate=True,
        )
    for transport, short, limit in (("RawSocket", "rs", 3.0), ("WebSocket", "ws", 8.0)):
        row(
            f"KiB per idle session, {transport}",
            "sessions",
            f"{short}/msgpack/batch",
            "kib",
            2,
            f"≤ {limit:g} KiB",
            at_most(limit),
        )
    for figure, loaded, empty in (
        ("router CPU per call, 1,000 regs + 1,000 subs / empty realm", "rpc_full", "rpc"),
        ("router CPU per event (10 subscribers), same / empty realm", "pubsub10_full", "pubsub10"),
    ):
        label = "rs/msgpack/each"
        ratios = []
        for router in ROUTERS:
            a, b = get(loaded, label, router), get(empty, label, router)
            ratios.append(a / b if a is not None and b else None)
        if any(r is not None for r in ratios):
            rows.append(
                [
                    figure,
                    *(_fmt(r, 3) for r in ratios),
                    "",
                    "",
                    "≤ 1.05",
                    "-" if ratios[0] is None else ("met" if ratios[0] <= 1.05 else "missed"),
                ]
            )
    return rows


def print_markdown(header: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    sys.stdout.flush()


_print_markdown = print_markdown  # the name bench/hostile.py uses


def write_chart(
    path: Path,
    plan: list[tuple[str, loadgen.Wire]],
    summary: dict[Key, dict[str, Any]],
    fastwamp_name: Any,
    title: str,
) -> None:
    """Calls/s and router CPU per call of the three routers, per wire of ``rpc``."""
    import matplotlib  # lazily: only the chart needs it (pip install ".[bench]")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [wire.label() for scenario, wire in plan if scenario == "rpc"]
    if not labels:
        return
    colors = {"fastwamp": "#1f77b4", "relay": "#7f7f7f", "crossbar": "#d62728"}
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.3 * len(labels) + 3), 8), sharex=True)
    width = 0.8 / len(ROUTERS)
    for ax, field, ylabel, digits in (
        (axes[0], "ops_per_s", "calls/s", 0),
        (axes[1], "cpu_us", "router CPU µs per call (log)", 1),
    ):
        for i, router in enumerate(ROUTERS):
            values = []
            for label in labels:
                name = fastwamp_name(label) if router == "fastwamp" else router
                s = summary.get(("rpc", label, name))
                values.append((s or {}).get(field) or 0.0)
            xs = [j + (i - 1) * width for j in range(len(labels))]
            bars = ax.bar(xs, values, width, label=router, color=colors[router])
            for bar, value in zip(bars, values, strict=True):
                if value:
                    ax.annotate(
                        f"{value:,.{digits}f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        rotation=90 if field == "ops_per_s" else 0,
                    )
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].legend()
    axes[0].set_title(title, fontsize=9)
    axes[1].set_xticks(range(len(labels)))
    axes[1].set_xticklabels(labels, rotation=20)
    axes[1].set_xlabel("rpc: 1 caller (64 calls in flight), 1 callee; transport/serializer/write")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Main


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def render(
    plan: list[tuple[str, loadgen.Wire]],
    routers_for: Any,
    results: dict[Key, list[loadgen.Result]],
    fastwamp_name: Any,
    chart: Path | None,
    title: str,
) -> None:
    """Print the tables (and write the chart) of one run's results."""
    summary = summarize(results)
    print_runs_table(plan, routers_for, summary)
    print()
    print_sessions_table(plan, routers_for, summary)
    print()
    print(
        "Targets (issue 8); medians; cost ratios fastwamp/relay and crossbar/fastwamp "
        "(for a rate, the cost is 1/rate):\n"
    )
    header = ["figure", "fastwamp", "relay", "crossbar", "cost fw/relay", "cost cb/fw"]
    print_markdown([*header, "target", "status"], target_rows(summary, fastwamp_name))
    if chart:
        write_chart(chart, plan, summary, fastwamp_name, title)
        print(f"\nchart: {chart}")


def render_json(path: Path, chart: Path | None) -> int:
    """Print the tables of a run saved with ``--json`` (and its chart)."""
    data = json.loads(path.read_text())
    plan: list[tuple[str, loadgen.Wire]] = []
    names: dict[tuple[str, str], list[str]] = {}
    results: dict[Key, list[loadgen.Result]] = {}
    for raw in data["results"]:
        raw = dict(raw)
        wire, name = parse_wire(raw.pop("wire")), raw.pop("router")
        if (raw["scenario"], wire) not in plan:
            plan.append((raw["scenario"], wire))
        seen = names.setdefault((raw["scenario"], wire.label()), [])
        if name not in seen:
            seen.append(name)
        results.setdefault((raw["scenario"], wire.label(), name), []).append(loadgen.Result(**raw))
    facts = data["machine"]
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    opts = data.get("options", {})
    rounds = max((len(v) for v in results.values()), default=0)
    title = (
        f"fastwamp {facts.get('fastwamp')}, {facts.get('date')}, "
        f"medians of {rounds} x {opts.get('duration') or (1 if opts.get('quick') else 5)} s"
    )

    def fastwamp_name(label: str) -> str:
        for (_, lab), routers in names.items():
            if lab == label:
                return next((r for r in routers if r.startswith("fastwamp")), "fastwamp")
        return "fastwamp"

    render(plan, lambda s, w: names.get((s, w.label()), []), results, fastwamp_name, chart, title)
    return 1 if data.get("failures") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run loadgen scenarios against fastwamp, the bare relay and Crossbar.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios:\n"
        + "\n".join(f"  {s.name:<14} {s.description}" for s in loadgen.SCENARIOS.values()),
    )
    parser.add_argument(
        "--scenarios",
        default="targets",
        help="comma-separated scenario names; 'targets' (default: "
        + ",".join(TARGET_SCENARIOS)
        + ") or 'all'",
    )
    parser.add_argument("--routers", default="fastwamp,relay,crossbar", help="comma-separated")
    parser.add_argument("--transports", default="rawsocket,websocket", help="rawsocket,websocket")
    parser.add_argument("--serializers", default="msgpack,json", help="msgpack,json")
    parser.add_argument(
        "--writes",
        default="each,batch",
        help="each: one write per message (as Autobahn, wampy.js); batch: one per read",
    )
    parser.add_argument(
        "--configs",
        help="rpc only: explicit wires instead of the matrix, e.g. rs/msgpack/each,ws/json/batch",
    )
    parser.add_argument(
        "--ws-impl",
        default="default",
        help="fastwamp WebSocket engines, comma-separated, each its own router row "
        "(default: the router's default engine; websockets, picows)",
    )
    parser.add_argument("--duration", type=float, help="measured seconds per run (5; quick 1)")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds first (1; quick 0.3)")
    parser.add_argument("--repeat", type=int, help="rounds (2; quick 1)")
    parser.add_argument(
        "--sessions", type=int, help="sessions scenario: idle sessions (10,000; quick 2,000)"
    )
    parser.add_argument("--quick", action="store_true", help="short runs, fewer sessions")
    parser.add_argument(
        "--settle", type=float, help="sessions: seconds before each RSS sample (1; quick 0.5)"
    )
    parser.add_argument(
        "--window", type=int, default=64, help="outstanding CALLs per caller connection"
    )
    parser.add_argument(
        "--pub-window",
        type=int,
        default=16,
        help="publications a subscriber may be behind (latency under load; 1 = unloaded)",
    )
    parser.add_argument(
        "--crossbar", default=None, help=f"crossbar executable ({DEFAULT_CROSSBAR})"
    )
    parser.add_argument(
        "--router-src",
        type=Path,
        default=REPO_DIR,
        help="run fastwamp from this source tree (built in place; default this checkout)",
    )
    parser.add_argument("--json", type=Path, help="also write every raw result to this file")
    parser.add_argument("--chart", type=Path, help="write a PNG chart of rpc (needs matplotlib)")
    parser.add_argument(
        "--from-json", type=Path, help="only print the tables (and --chart) of a saved --json run"
    )
    parser.add_argument(
        "--keep-logs", type=Path, help="copy each router's output to DIR/SCENARIO-WIRE-ROUTER-N.log"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=60.0, help="seconds a router may take to start"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        return render_json(args.from_json, args.chart)
    quick = args.quick
    duration = args.duration if args.duration is not None else (1.0 if quick else 5.0)
    warmup = args.warmup if args.warmup is not None else (0.3 if quick else 1.0)
    repeat = args.repeat if args.repeat is not None else (1 if quick else 2)
    n_sessions = args.sessions if args.sessions is not None else (2000 if quick else 10_000)
    settle = args.settle if args.settle is not None else (0.5 if quick else 1.0)

    if args.scenarios == "targets":
        scenarios = list(TARGET_SCENARIOS)
    elif args.scenarios == "all":
        scenarios = list(loadgen.SCENARIOS)
    else:
        scenarios = _split(args.scenarios)
    unknown = [s for s in scenarios if s not in loadgen.SCENARIOS]
    routers = _split(args.routers)
    transports = _split(args.transports)
    serializers = _split(args.serializers)
    writes = _split(args.writes)
    impls = _split(args.ws_impl)
    problems = [f"scenario {s!r}" for s in unknown]
    problems += [f"router {r!r}" for r in routers if r not in ROUTERS]
    problems += [f"transport {t!r}" for t in transports if t not in ("rawsocket", "websocket")]
    problems += [f"serializer {s!r}" for s in serializers if s not in ("msgpack", "json")]
    problems += [f"write {w!r}" for w in writes if w not in ("each", "batch")]
    problems += [f"--ws-impl {i!r}" for i in impls if i not in ("default", "websockets", "picows")]
    try:
        configs = [parse_wire(c) for c in _split(args.configs)] if args.configs else None
    except ValueError as exc:
        problems.append(str(exc))
        configs = None
    if problems or not (scenarios and routers and transports and serializers and writes and impls):
        parser.error("unknown or missing: " + ", ".join(problems or ["an empty list"]))
    crossbar = args.crossbar or shutil.which("crossbar") or DEFAULT_CROSSBAR
    if "crossbar" in routers and not os.access(crossbar, os.X_OK):
        print(f"crossbar not found at {crossbar}: running without it", file=sys.stderr)
        routers.remove("crossbar")
    src = args.router_src.resolve()
    plan = build_plan(scenarios, transports, serializers, writes, configs)

    def routers_for(scenario: str, wire: loadgen.Wire) -> list[str]:
        names: list[str] = []
        for router in routers:
            if router == "fastwamp" and wire.transport == "websocket" and impls != ["default"]:
                names += [f"fastwamp-{i}" if i != "default" else "fastwamp" for i in impls]
            elif router == "relay" and not Relay.supports(loadgen.SCENARIOS[scenario]):
                continue
            else:
                names.append(router)
        return names

    def fastwamp_name(label: str) -> str:
        if label.startswith("ws/") and impls != ["default"]:
            return f"fastwamp-{impls[0]}" if impls[0] != "default" else "fastwamp"
        return "fastwamp"

    def make_router(name: str, wire: loadgen.Wire) -> Router:
        if name.startswith("fastwamp"):
            return Fastwamp(wire, src, name.partition("-")[2] or "default")
        if name == "relay":
            return Relay(wire)
        return Crossbar(wire, crossbar)

    # Idle sessions need file descriptors: raise the soft limit of this process
    # (routers and load workers inherit it), never the routers' own defaults.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if "sessions" in scenarios and hard < n_sessions + 1000:
        print(f"warning: fd limit {hard} is low for {n_sessions} sessions", file=sys.stderr)

    signal.signal(signal.SIGTERM, _terminate)
    facts = machine_facts(crossbar if "crossbar" in routers else None, src)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(
        f"duration {duration:g} s after {warmup:g} s warm-up, call window {args.window}, "
        f"publication window {args.pub_window}, {repeat} round(s), {n_sessions} sessions; "
        f"routers {', '.join(routers)}; {len(plan)} measurements"
    )
    sys.stdout.flush()

    results: dict[Key, list[loadgen.Result]] = {}
    failures: list[str] = []
    t_start = time.monotonic()
    for rep in range(repeat):
        for scenario_name, wire in plan:
            scenario = loadgen.SCENARIOS[scenario_name]
            for name in routers_for(scenario_name, wire):
                router = make_router(name, wire)
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    router.keep_log = (
                        args.keep_logs
                        / f"{scenario_name}-{wire.label().replace('/', '-')}-{name}-{rep + 1}.log"
                    )
                try:
                    router.start(args.start_timeout, scenario, n_sessions)
                    result = loadgen.run_scenario(
                        scenario,
                        HOST,
                        router.port,
                        duration=duration,
                        warmup=warmup,
                        window=args.window,
                        pub_window=args.pub_window,
                        router_cpu=router.cpu,
                        wire=wire,
                        router_rss=router.rss,
                        sessions=n_sessions,
                        settle=settle,
                    )
                except Exception as exc:  # one failed run does not stop the rest
                    failures.append(f"{scenario_name}/{wire.label()}/{name}: {exc}")
                    print(
                        f"  {scenario_name:<13} {wire.label():<17} {name:<9} FAILED: {exc}",
                        file=sys.stderr,
                    )
                    continue
                finally:
                    router.stop()
                results.setdefault((scenario_name, wire.label(), name), []).append(result)
                extra = ""
                if result.extra.get("kib_per_session") is not None:
                    extra = f"  {result.extra['kib_per_session']:.2f} KiB/session"
                print(
                    f"  [{rep + 1}/{repeat}] {scenario_name:<13} {wire.label():<17} {name:<9}"
                    f" {result.ops_per_s:>10,.0f} ops/s"
                    f"  router {_fmt(result.router_cpu_us_per_op, 2):>7} µs/op"
                    f"  busy {_fmt(result.machine_busy, 2)} cores"
                    + extra
                    + (f"  errors {result.errors}" if result.errors else ""),
                    flush=True,
                )

    print(f"\n{time.monotonic() - t_start:.0f} s\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": facts,
                    "options": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                    },
                    "results": [
                        {"wire": label, "router": name, **asdict(r)}
                        for (_, label, name), runs in results.items()
                        for r in runs
                    ],
                    "failures": failures,
                },
                indent=2,
            )
        )
    title = (
        f"fastwamp {facts.get('fastwamp')}, {facts['date']}, medians of {repeat} x {duration:g} s"
    )
    render(plan, routers_for, results, fastwamp_name, args.chart, title)
    if failures:
        print("\nfailed runs:\n  " + "\n  ".join(failures), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every process was stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
