"""End-to-end benchmark: fastwamp against Crossbar, same load, same machine, same run.

For every scenario (see ``loadgen.SCENARIOS``) and every router, in turn, this
starts a fresh router process on 127.0.0.1 (RawSocket or WebSocket, MessagePack,
realm ``realm1`` open to anonymous clients), runs the scenario with ``bench/loadgen.py``
worker processes, samples the router's CPU time (utime+stime of its process tree,
from /proc) at both ends of the measurement window, and stops the router again.
Routers alternate within each scenario so that both see the same background
load as far as possible.  It prints a table of ops/s, router CPU µs per op and
fastwamp/crossbar ratios.

    python bench/e2e.py                      # every scenario, both routers
    python bench/e2e.py --scenarios rpc,rpc2 --duration 10 --routers fastwamp
    python bench/e2e.py --transport websocket --ws-impl websockets,picows

Over WebSocket, fastwamp runs once per engine given with ``--ws-impl`` (rows
``fastwamp-websockets``, ``fastwamp-picows``); Crossbar gets a WebSocket transport.

Every process it starts (routers, their children, load workers) is stopped
before it exits, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CROSSBAR_TEMPLATE = BENCH_DIR / "crossbar" / "config.json"
DEFAULT_CROSSBAR = "/opt/crossbar-venv/bin/crossbar"
HOST = "127.0.0.1"
#: WebSocket runs: the HTTP path of fastwamp's listener (Crossbar takes any path).
WS_PATH = "/ws"


# ---------------------------------------------------------------------------
# Router processes


def _descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (from /proc), children first."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


class Router:
    """A router process started by this benchmark; subclasses know how."""

    name = "router"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.log_path = self.workdir / "router.log"
        self._log: Any = None
        #: Where stop() keeps a copy of the router's output (None: nowhere).
        self.keep_log: Path | None = None

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

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float) -> None:
        raise NotImplementedError

    def cpu(self) -> float:
        assert self.proc is not None
        return loadgen.proc_tree_cpu(self.proc.pid)

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
            tree = _descendants(proc.pid)
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
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Fastwamp(Router):
    name = "fastwamp"

    def __init__(self, transport: str = "rawsocket", implementation: str = "websockets") -> None:
        self.transport = transport
        self.implementation = implementation
        if transport == "websocket":
            self.name = f"fastwamp-{implementation}"
        super().__init__()

    def start(self, timeout: float) -> None:
        config = self.workdir / "fastwamp.toml"
        listener = f'type = "{self.transport}"\n'
        if self.transport == "websocket":
            listener += f'path = "{WS_PATH}"\nimplementation = "{self.implementation}"\n'
        config.write_text(
            'log_level = "warning"\n\n'
            "[[realms]]\n"
            'name = "realm1"\n\n'
            "[[listeners]]\n"
            f"{listener}"
            f'host = "{HOST}"\n'
            "port = 0\n"
            'serializers = ["msgpack"]\n'
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH")]))
        self._spawn([sys.executable, "-m", "fastwamp", "--config", str(config)], REPO_DIR, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            text = self.log_path.read_text(errors="replace")
            match = re.search(r"fastwamp: listening on (?:tcp|ws)://[^\s:]+:(\d+)", text)
            if match and "fastwamp: ready" in text:
                self.port = int(match.group(1))
                return
            time.sleep(0.05)
        raise RuntimeError(f"fastwamp not ready after {timeout:.0f} s:\n{self.log_tail()}")


class Crossbar(Router):
    name = "crossbar"

    def __init__(self, executable: str, transport: str = "rawsocket") -> None:
        super().__init__()
        self.executable = executable
        self.transport = transport

    def start(self, timeout: float) -> None:
        self.port = _free_port()
        config = json.loads(CROSSBAR_TEMPLATE.read_text())
        for worker in config["workers"]:
            for transport in worker.get("transports", []):
                transport["endpoint"]["port"] = self.port
                transport["endpoint"]["interface"] = HOST
                if self.transport == "websocket":
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
        while time.monotonic() < deadline:
            self._check_alive()
            answers = _websocket_answers if self.transport == "websocket" else _rawsocket_answers
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
# Reporting


def machine_facts(crossbar: str | None) -> dict[str, str]:
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
    try:
        out = subprocess.run(
            [sys.executable, "-m", "fastwamp", "--version"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=30,
        )
        facts["fastwamp"] = out.stdout.strip().split()[-1] if out.stdout.strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
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


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(results: dict[tuple[str, str], list[loadgen.Result]]) -> dict[tuple[str, str], Any]:
    """Median of every figure over the repetitions of one (scenario, router)."""
    summary: dict[tuple[str, str], Any] = {}
    for key, runs in results.items():
        summary[key] = {
            "ops_per_s": _median([r.ops_per_s for r in runs]),
            "cpu_us": _median([r.router_cpu_us_per_op for r in runs]),
            "cpu_util": _median([r.router_cpu_util for r in runs]),
            "gen_us": _median([r.loadgen_cpu_us_per_op for r in runs]),
            "busy": _median([r.machine_busy for r in runs]),
            "p50": _median([r.latency_p50_ms for r in runs]),
            "p99": _median([r.latency_p99_ms for r in runs]),
            "errors": sum(r.errors for r in runs),
            "runs": len(runs),
        }
    return summary


def print_table(
    scenarios: list[str], routers: list[str], summary: dict[tuple[str, str], Any]
) -> None:
    header = [
        "scenario",
        "router",
        "ops/s",
        "router CPU µs/op",
        "router CPU %",
        "loadgen CPU µs/op",
        "busy cores",
        "p50 ms",
        "p99 ms",
        "errors",
    ]
    rows: list[list[str]] = []
    for scenario in scenarios:
        for router in routers:
            s = summary.get((scenario, router))
            if s is None:
                rows.append([scenario, router, "failed", *[""] * (len(header) - 3)])
                continue
            rows.append(
                [
                    scenario,
                    router,
                    _fmt(s["ops_per_s"], 0),
                    _fmt(s["cpu_us"], 2),
                    _fmt(s["cpu_util"] * 100 if s["cpu_util"] is not None else None, 0),
                    _fmt(s["gen_us"], 2),
                    _fmt(s["busy"], 2),
                    _fmt(s["p50"], 2),
                    _fmt(s["p99"], 2),
                    str(s["errors"]),
                ]
            )
    _print_markdown(header, rows)
    fastwamps = [r for r in routers if r.startswith("fastwamp")]
    if fastwamps and "crossbar" in routers:
        print()
        ratio_header = [
            "scenario",
            "fastwamp",
            "ops/s fastwamp/crossbar",
            "router CPU µs/op fastwamp/crossbar",
            "crossbar/fastwamp CPU per op",
        ]
        ratio_rows: list[list[str]] = []
        for scenario in scenarios:
            cb = summary.get((scenario, "crossbar"))
            for name in fastwamps:
                fw = summary.get((scenario, name))
                if not fw or not cb:
                    continue
                ops_ratio = fw["ops_per_s"] / cb["ops_per_s"] if cb["ops_per_s"] else None
                cpu_ratio = fw["cpu_us"] / cb["cpu_us"] if fw["cpu_us"] and cb["cpu_us"] else None
                ratio_rows.append(
                    [
                        scenario,
                        name,
                        _fmt(ops_ratio, 2) + "×" if ops_ratio else "-",
                        _fmt(cpu_ratio, 3) + "×" if cpu_ratio else "-",
                        _fmt(1 / cpu_ratio, 1) + "×" if cpu_ratio else "-",
                    ]
                )
        _print_markdown(ratio_header, ratio_rows)


def _print_markdown(header: list[str], rows: list[list[str]]) -> None:
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


# ---------------------------------------------------------------------------
# Main


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run loadgen scenarios against fastwamp and Crossbar and compare them.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios:\n"
        + "\n".join(f"  {s.name:<11} {s.description}" for s in loadgen.SCENARIOS.values()),
    )
    parser.add_argument(
        "--scenarios",
        default="all",
        help="comma-separated scenario names, or 'all' (default)",
    )
    parser.add_argument(
        "--routers", default="fastwamp,crossbar", help="comma-separated: fastwamp, crossbar"
    )
    parser.add_argument(
        "--transport",
        choices=("rawsocket", "websocket"),
        default="rawsocket",
        help="the wire between load generator and routers (default rawsocket)",
    )
    parser.add_argument(
        "--ws-impl",
        default="websockets",
        help="WebSocket only: comma-separated fastwamp engines, each run as its own "
        "router (websockets, picows; default websockets)",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario and router")
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
    parser.add_argument("--json", type=Path, help="also write every raw result to this file")
    parser.add_argument(
        "--keep-logs", type=Path, help="copy each router's output to DIR/SCENARIO-ROUTER-N.log"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=60.0, help="seconds a router may take to start"
    )
    args = parser.parse_args(argv)

    scenarios = (
        list(loadgen.SCENARIOS)
        if args.scenarios == "all"
        else [s.strip() for s in args.scenarios.split(",") if s.strip()]
    )
    unknown = [s for s in scenarios if s not in loadgen.SCENARIOS]
    routers = [r.strip() for r in args.routers.split(",") if r.strip()]
    bad_routers = [r for r in routers if r not in ("fastwamp", "crossbar")]
    if unknown or bad_routers or not scenarios or not routers:
        parser.error(f"unknown scenario(s) {unknown} or router(s) {bad_routers}")
    impls = [i.strip() for i in args.ws_impl.split(",") if i.strip()]
    bad_impls = [i for i in impls if i not in ("websockets", "picows")]
    if bad_impls or not impls:
        parser.error(f"unknown --ws-impl {bad_impls or args.ws_impl!r}")
    if args.transport == "websocket":
        # fastwamp once per engine, in the order given, where "fastwamp" stands.
        routers = [
            name
            for router in routers
            for name in ([f"fastwamp-{i}" for i in impls] if router == "fastwamp" else [router])
        ]
    crossbar = args.crossbar or shutil.which("crossbar") or DEFAULT_CROSSBAR
    if "crossbar" in routers and not os.access(crossbar, os.X_OK):
        parser.error(f"crossbar not found at {crossbar}; pass --crossbar PATH")

    signal.signal(signal.SIGTERM, _terminate)
    facts = machine_facts(crossbar if "crossbar" in routers else None)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(
        f"duration {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"call window {args.window}, publication window {args.pub_window}, "
        f"repeat {args.repeat}, transport {args.transport} (msgpack)"
    )
    sys.stdout.flush()

    results: dict[tuple[str, str], list[loadgen.Result]] = {}
    failures: list[str] = []
    for rep in range(args.repeat):
        for scenario in scenarios:
            for name in routers:
                router: Router
                if name.startswith("fastwamp"):
                    router = Fastwamp(args.transport, name.partition("-")[2] or "websockets")
                else:
                    router = Crossbar(crossbar, args.transport)
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    router.keep_log = args.keep_logs / f"{scenario}-{name}-{rep + 1}.log"
                try:
                    router.start(args.start_timeout)
                    result = loadgen.run_scenario(
                        loadgen.SCENARIOS[scenario],
                        HOST,
                        router.port,
                        duration=args.duration,
                        warmup=args.warmup,
                        window=args.window,
                        pub_window=args.pub_window,
                        router_cpu=router.cpu,
                        wire=loadgen.Wire(args.transport, WS_PATH),
                    )
                except Exception as exc:  # one failed run does not stop the rest
                    failures.append(f"{scenario}/{name}: {exc}")
                    print(f"  {scenario:<11} {name:<19} FAILED: {exc}", file=sys.stderr)
                    continue
                finally:
                    router.stop()
                results.setdefault((scenario, name), []).append(result)
                print(
                    f"  [{rep + 1}/{args.repeat}] {scenario:<11} {name:<19}"
                    f" {result.ops_per_s:>12,.0f} ops/s"
                    f"  router {_fmt(result.router_cpu_us_per_op, 2):>7} µs/op"
                    f"  busy {_fmt(result.machine_busy, 2)} cores"
                    + (f"  errors {result.errors}" if result.errors else ""),
                    flush=True,
                )

    print()
    summary = summarize(results)
    print_table(scenarios, routers, summary)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": facts,
                    "options": {
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                    },
                    "results": [
                        {"router": name, **asdict(r)}
                        for (_, name), runs in results.items()
                        for r in runs
                    ],
                    "failures": failures,
                },
                indent=2,
            )
        )
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every process was stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
