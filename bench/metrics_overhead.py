"""What metrics cost per routed call: the router with and without an HTTP listener.

Two measurements, each in alternating rounds (off, on, off, on, ...):

* ``e2e``: a real router process (``python -m fastwamp --config FILE``, RawSocket,
  ``log_level = "warning"``) with metrics off (no HTTP listener) and on (one
  HTTP listener, which installs the counters), loaded by ``bench/loadgen.py
  --scenario rpc --write each``; router CPU µs per call from its
  ``--router-pid`` figures.  With metrics on, /metrics is scraped once per round,
  after the measured window.
* ``core``: one routed call at a time through the sans-I/O router (decode CALL,
  route, encode INVOCATION, decode YIELD, route, encode RESULT; MessagePack, no
  sockets), without and with :func:`fastwamp.ops.counters.install_counters`; CPU
  µs per call (process time) in a subprocess per run.

* ``instructions`` (``--only instructions``, needs valgrind): the ``core`` loop
  under callgrind with 2,000 and 7,000 calls; instructions per call from the
  difference (``PYTHONHASHSEED=0``).  Unlike CPU time, this does not depend on
  what else runs on the machine.

    python bench/metrics_overhead.py [--rounds 4] [--duration 5] [--calls 20000]
                                     [--only e2e|core|instructions]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHILD = "--child"
_LISTEN = re.compile(r"^fastwamp: listening on (\S+)")


def core_run(calls: int, metrics: bool) -> float:
    """CPU µs per routed call through the sans-I/O router (see the module docstring):
    the call loop of ``router_twins.py``, with the metrics counters installed or not."""
    from fastwamp.ops.counters import install_counters

    sys.path.insert(0, str(HERE))
    from router_twins import one_run

    return one_run(calls, (lambda router: install_counters(router, 10000)) if metrics else None)


def start_router(workdir: Path, metrics: bool) -> tuple[subprocess.Popen[str], int, str | None]:
    """A router process; returns it, its RawSocket port and its /metrics URL (if on)."""
    config = workdir / ("on.toml" if metrics else "off.toml")
    text = ('log_level = "warning"\n\n[[listeners]]\ntype = "rawsocket"\nport = 0\n'
            'serializers = ["msgpack", "json"]\n')
    if metrics:
        text += '\n[[listeners]]\ntype = "http"\nport = 0\n'
    config.write_text(text, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen([sys.executable, "-m", "fastwamp", "--config", str(config)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env, cwd=workdir)
    assert proc.stdout is not None
    port, url = 0, None
    for line in proc.stdout:
        match = _LISTEN.match(line)
        if match and match.group(1).startswith("tcp://"):
            port = int(match.group(1).rsplit(":", 1)[1])
        elif match and match.group(1).startswith("http://"):
            url = match.group(1)
        if line.strip() == "fastwamp: ready":
            break
    if not port:
        proc.kill()
        sys.exit("the router did not start")
    return proc, port, url


def e2e_run(workdir: Path, metrics: bool, duration: float) -> float:
    """Router CPU µs per call under loadgen's rpc scenario (see the module docstring)."""
    proc, port, url = start_router(workdir, metrics)
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--scenario", "rpc",
             "--write", "each", "--duration", str(duration), "--router-pid", str(proc.pid)],
            capture_output=True, text=True, check=True, timeout=duration * 10 + 60).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if url is not None:
            with urllib.request.urlopen(url, timeout=10) as reply:
                body = reply.read().decode()
            if "fastwamp_calls_total{" not in body:
                sys.exit("metrics on, but no calls were counted")
        return float(result["router_cpu_us_per_op"])
    finally:
        proc.terminate()
        proc.wait(10)


def instructions_per_call(metrics: bool) -> float:
    """Instructions per routed call in the core loop, counted by callgrind."""
    counts = []
    for calls in (2000, 7000):
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             __file__, CHILD, "on" if metrics else "off", "--calls", str(calls)],
            capture_output=True, text=True, check=True, cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        match = re.search(r"Collected : (\d+)", done.stderr)
        if match is None:
            sys.exit("callgrind printed no instruction count")
        counts.append(int(match.group(1)))
    return (counts[1] - counts[0]) / 5000


def report(name: str, results: dict[str, list[float]]) -> None:
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"{name}: median off {off:.2f}, on {on:.2f} µs/call "
          f"({(on / off - 1) * 100:+.1f} %)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--only", choices=("e2e", "core", "instructions"))
    parser.add_argument(CHILD, choices=("off", "on"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"{core_run(args.calls, args.child == 'on'):.3f}")
        return
    if args.only == "instructions":
        off, on = instructions_per_call(False), instructions_per_call(True)
        print(f"instructions: off {off:.0f}, on {on:.0f} per call ({(on / off - 1) * 100:+.1f} %)")
        return
    if args.only != "e2e":
        core: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for name in core:
                out = subprocess.run([sys.executable, __file__, CHILD, name, "--calls",
                                      str(args.calls)], capture_output=True, text=True,
                                     check=True, cwd=ROOT).stdout
                core[name].append(float(out))
                print(f"core {name:3} {float(out):6.2f} µs/call", flush=True)
        report("core", core)
    if args.only != "core":
        e2e: dict[str, list[float]] = {"off": [], "on": []}
        with tempfile.TemporaryDirectory(prefix="fastwamp-metrics-bench-") as tmp:
            for _ in range(args.rounds):
                for name in e2e:
                    us = e2e_run(Path(tmp), name == "on", args.duration)
                    e2e[name].append(us)
                    print(f"e2e  {name:3} {us:6.2f} µs/call (router CPU)", flush=True)
        report("e2e", e2e)


if __name__ == "__main__":
    main()
