"""Router instructions per sequential call, counted by callgrind: fastwamp and the
bare relay, over real sockets.

Each router runs under ``valgrind --tool=callgrind`` in its own process; one client
process (not counted) holds a callee and a caller on it, over RawSocket or
WebSocket with MessagePack, writes each message as it makes it (as Autobahn and
wampy.js do), and makes calls one at a time (``rpc1``'s pattern: every read and
every reply wakes the loop). The figure is the router process's user-space
instructions per call, from two runs that differ only in their number of calls:
(instructions of the long run - instructions of the short run) / (difference in
calls). Start-up, warm-up and shutdown cancel out, and the count repeats to about
1 %, where CPU time on these shared machines swings by 20-30 % (the kernel's
share, system calls, is not counted).

    python bench/call_instructions.py [--routers fastwamp,relay] [--transports rawsocket,websocket]
                                      [--calls 500,2500] [--router-src DIR]

Needs valgrind. Each run takes about a minute (the router runs some 50x slower).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import loadgen  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def router_argv(router: str, transport: str, src: Path, port: int, workdir: Path) -> list[str]:
    if router == "relay":
        return [sys.executable, str(BENCH_DIR / "relay.py"), "--host", HOST, "--port", str(port)]
    config = workdir / "fastwamp.toml"
    path = f'path = "{loadgen.WIRE.path}"\n' if transport == "websocket" else ""
    config.write_text(
        'log_level = "warning"\n\n[[realms]]\nname = "realm1"\n\n[[listeners]]\n'
        f'type = "{transport}"\n{path}host = "{HOST}"\nport = {port}\n'
        'serializers = ["msgpack", "json"]\n'
    )
    return [sys.executable, "-m", "fastwamp", "--config", str(config)]


async def sequential_calls(port: int, calls: int) -> None:
    callee = await loadgen.connect(HOST, port, loadgen.CalleeSession)
    await callee.register(loadgen.RPC_PROCEDURE)
    caller = await loadgen.connect(
        HOST, port, lambda: loadgen.CallerSession(loadgen.RPC_PROCEDURE, 1)
    )
    caller.start()
    while caller.completed < calls:
        await asyncio.sleep(0.05)
    caller.stop()
    await caller.drained
    caller.close()
    callee.close()
    await asyncio.sleep(0.3)


def count(router: str, transport: str, src: Path, calls: int) -> int:
    """User-space instructions of one router process serving ``calls`` calls."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        argv = router_argv(router, transport, src, port, workdir)
        out = workdir / "callgrind.out"
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            cwd=src,
            env=dict(os.environ, PYTHONPATH=str(src)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    socket.create_connection((HOST, port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{router} did not start") from None
                    time.sleep(0.2)
            loadgen.WIRE.transport = transport
            loadgen.WIRE.write = "each"
            asyncio.run(sequential_calls(port, calls))
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=300)
        match = re.search(r"Collected : (\d+)", err)
        if match is None:
            raise RuntimeError(f"{router}: no callgrind total\n{err[-2000:]}")
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", default="fastwamp,relay")
    parser.add_argument("--transports", default="rawsocket,websocket")
    parser.add_argument("--calls", default="500,2500", help="the short and the long run")
    parser.add_argument("--router-src", type=Path, default=BENCH_DIR.parent,
                        help="run fastwamp (and the relay) from this source tree")
    args = parser.parse_args()
    short, long = (int(n) for n in args.calls.split(","))
    figures: dict[tuple[str, str], float] = {}
    for transport in args.transports.split(","):
        for router in args.routers.split(","):
            a = count(router, transport, args.router_src, short)
            b = count(router, transport, args.router_src, long)
            figures[router, transport] = per_call = (b - a) / (long - short)
            print(f"{router:9s} {transport:10s} {per_call / 1000:7.1f}k instructions per call",
                  flush=True)
    for transport in args.transports.split(","):
        fw, relay = figures.get(("fastwamp", transport)), figures.get(("relay", transport))
        if fw and relay:
            print(f"{transport}: fastwamp / relay = {fw / relay:.2f}x")


if __name__ == "__main__":
    main()
