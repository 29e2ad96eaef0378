"""What TLS costs the router: CPU per routed call, and per session opened.

Starts ``python -m fastwamp`` with four listeners (RawSocket and WebSocket,
each plain and on TLS with a throwaway P-256 certificate), then runs the load
generator (``bench/loadgen.py``) against each in turn, round after round so
that a busy machine disturbs every variant alike, and prints the median router
CPU per operation of each::

    python bench/tls_cost.py                      # rpc, both write patterns, and sessions
    python bench/tls_cost.py --rounds 3 --duration 2 --sessions 1000

``rpc``: one caller (64 calls in flight) and one callee; ``batch`` writes
everything of one read at once, ``each`` one write per message (as Autobahn
and wampy.js do), which is where TLS costs most (one record per message).
``sessions``: connect, (TLS handshake,) HELLO, WELCOME, from two processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import loadgen  # noqa: E402

from tests.transport.tls_material import make_tls_files  # noqa: E402

PORTS = {("rawsocket", False): 18181, ("rawsocket", True): 18182,
         ("websocket", False): 18180, ("websocket", True): 18183}


def config_text() -> str:
    parts = ['log_level = "warning"\nmax_connections_per_address = 100000\n'
             '[[realms]]\nname = "realm1"\n']
    for (kind, tls), port in PORTS.items():
        parts.append(f'[[listeners]]\ntype = "{kind}"\nport = {port}\n')
        if tls:
            parts.append('tls_certificate = "pki/server.pem"\ntls_key = "pki/server.key"\n')
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--sessions", type=int, default=2000, help="sessions per round (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fastwamp-tls-bench-") as tmp:
        folder = Path(tmp)
        make_tls_files(folder / "pki")
        (folder / "router.toml").write_text(config_text(), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
            "PYTHONPATH", "")]))
        router = subprocess.Popen(
            [sys.executable, "-m", "fastwamp", "--config", str(folder / "router.toml")],
            stdout=subprocess.PIPE, text=True, env=env, cwd=folder,
        )
        try:
            assert router.stdout is not None
            for line in router.stdout:
                if line.strip() == "fastwamp: ready":
                    break
            cpu = lambda: loadgen.proc_tree_cpu(router.pid)  # noqa: E731
            rss = lambda: loadgen.proc_tree_rss(router.pid)  # noqa: E731
            figures: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for write in ("batch", "each"):
                    for (kind, tls), port in PORTS.items():
                        wire = loadgen.Wire(kind, "/ws", "msgpack", write, tls)
                        result = loadgen.run_scenario(
                            loadgen.SCENARIOS["rpc"], port=port, duration=args.duration,
                            warmup=0.5, router_cpu=cpu, wire=wire,
                        )
                        figures.setdefault(f"rpc {wire.label()}", []).append(
                            result.router_cpu_us_per_op or 0.0)
                if args.sessions:
                    for (kind, tls), port in PORTS.items():
                        wire = loadgen.Wire(kind, "/ws", "msgpack", "batch", tls)
                        result = loadgen.run_scenario(
                            loadgen.SCENARIOS["sessions"], port=port, router_cpu=cpu,
                            router_rss=rss, wire=wire, sessions=args.sessions, settle=0.5,
                        )
                        figures.setdefault(f"sessions {wire.label()}", []).append(
                            result.router_cpu_us_per_op or 0.0)
                        time.sleep(0.5)
            for label, values in figures.items():
                unit = "us/session" if label.startswith("sessions") else "us/call"
                print(f"{label:34s} median {statistics.median(values):8.1f} {unit}  "
                      f"(best {min(values):.1f}, {len(values)} rounds)", flush=True)
        finally:
            router.terminate()
            router.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
