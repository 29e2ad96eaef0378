"""Cluster figures: fastwamp alone, one cluster node, two nodes, cross-node calls.

Run from the repository root (needs ``fastwamp[cluster]``)::

    python bench/cluster.py --duration 5

1. Throughput (bench/loadgen.py, RawSocket + msgpack, scenario ``roundrobin``: one
   caller, four callees of a shared registration): one single-process router; one
   cluster node (its nats-server running); two cluster nodes, each with its own
   load generator, whose calls stay on their node (``locality = "local_first"``):
   calls/s summed, router CPU per call.  ``pubsub10`` likewise for events.
2. A call whose caller and callee are on different nodes, against one that stays on
   a node: sequential round trip (p50) and router CPU per call (both nodes and the
   nats-server), with a loadgen-style raw client (``rpc1`` pattern).
3. How long a SIGKILLed node takes to be seen gone on another node.

Figures go to stdout as JSON lines; bench/README.md ("Cluster") has a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadgen import proc_tree_cpu  # noqa: E402

from fastwamp.cluster.natsserver import NatsServer  # noqa: E402

LISTEN = re.compile(r"^fastwamp: listening on tcp://127\.0\.0\.1:(\d+)")


def start_router(workdir: Path, name: str, cluster: str = "") -> tuple[subprocess.Popen, int]:
    config = workdir / f"{name}.toml"
    config.write_text(f"""log_level = "warning"
[[realms]]
name = "realm1"
[[listeners]]
type = "rawsocket"
port = 0
serializers = ["msgpack"]
{cluster}
""")
    proc = subprocess.Popen([sys.executable, "-m", "fastwamp", "--config", str(config)],
                            stdout=subprocess.PIPE, text=True)
    port = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        found = LISTEN.match(line)
        if found:
            port = int(found.group(1))
        if line.strip() == "fastwamp: ready":
            break
    return proc, port


def cluster_table(url: str, node: str) -> str:
    return f'[cluster]\nenabled = true\nnats_urls = ["{url}"]\nnode = "{node}"\n'


def loadgen(ports: list[int], pids: list[int], scenario: str, duration: float,
            nats_pid: int | None = None) -> dict[str, Any]:
    """One loadgen per router (port, pid) at once, each on its own topic; ops/s summed,
    router CPU per op inside the measurement windows (nats-server: over the whole run)."""
    nats0 = proc_tree_cpu(nats_pid) if nats_pid else 0.0
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).parent / "loadgen.py"),
                               "--port", str(port), "--scenario", scenario, "--router-pid",
                               str(pid), "--duration", str(duration)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "FASTWAMP_BENCH_TOPIC": f"bench.topic{i}"})
             for i, (port, pid) in enumerate(zip(ports, pids, strict=True))]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    ops = sum(r["ops"] for r in results)
    figures = {"ops_per_s": round(sum(r["ops_per_s"] for r in results)),
               "errors": sum(r["errors"] for r in results),
               "router_cpu_us_per_op": round(sum(r["router_cpu"] for r in results)
                                             / max(1, ops) * 1e6, 2),
               "machine_busy": max(r["machine_busy"] or 0 for r in results)}
    if nats_pid:
        figures["nats_server_cpu_s_whole_run"] = round(proc_tree_cpu(nats_pid) - nats0, 2)
    return figures


async def sequential_calls(caller_port: int, callee_port: int, n: int) -> list[float]:
    """``n`` sequential calls (raw RawSocket + msgpack sessions); round trips in µs."""
    import msgpack

    async def session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes([0x7F, 0xF2, 0, 0]))
        await reader.readexactly(4)
        send(writer, [1, "realm1", {"roles": {"caller": {}, "callee": {}}}])
        await receive(reader)
        return reader, writer

    def send(writer: asyncio.StreamWriter, msg: list) -> None:
        data = msgpack.packb(msg)
        writer.write(len(data).to_bytes(4, "big") + data)

    async def receive(reader: asyncio.StreamReader) -> list:
        header = await reader.readexactly(4)
        return msgpack.unpackb(await reader.readexactly(int.from_bytes(header[1:], "big")))

    callee_r, callee_w = await session(callee_port)
    send(callee_w, [64, 1, {}, "bench.cluster.echo"])
    await receive(callee_r)

    async def serve() -> None:
        while True:
            msg = await receive(callee_r)
            if msg[0] == 68:
                send(callee_w, [70, msg[1], {}, msg[4] if len(msg) > 4 else []])

    server = asyncio.create_task(serve())
    caller_r, caller_w = await session(caller_port)
    # wait until the registration is known on the caller's node
    request = 0
    while True:
        request += 1
        send(caller_w, [48, request, {}, "bench.cluster.echo", [0]])
        reply = await receive(caller_r)
        if reply[0] == 50:
            break
        await asyncio.sleep(0.05)
    times = []
    for i in range(n):
        request += 1
        t0 = time.perf_counter()
        send(caller_w, [48, request, {}, "bench.cluster.echo", [i]])
        await receive(caller_r)
        times.append((time.perf_counter() - t0) * 1e6)
    server.cancel()
    caller_w.close()
    callee_w.close()
    return times


def cross_node(workdir: Path, url: str, pids_extra: list[int], n: int) -> list[dict]:
    a, port_a = start_router(workdir, "xa", cluster_table(url, "xa"))
    b, port_b = start_router(workdir, "xb", cluster_table(url, "xb"))
    out = []
    try:
        for label, callee_port in (("same node", port_a), ("across nodes", port_b)):
            pids = [a.pid, b.pid, *pids_extra]
            asyncio.run(sequential_calls(port_a, callee_port, 200))  # warm up
            cpu0 = sum(proc_tree_cpu(p) for p in pids)
            times = sorted(asyncio.run(sequential_calls(port_a, callee_port, n)))
            cpu = sum(proc_tree_cpu(p) for p in pids) - cpu0
            out.append({"figure": f"sequential call, caller and callee {label}",
                        "p50_us": round(times[len(times) // 2]),
                        "p99_us": round(times[int(len(times) * 0.99)]),
                        "router_and_nats_cpu_us_per_call": round(cpu / n * 1e6, 1)})
    finally:
        for p in (a, b):
            p.terminate()
            p.wait()
    return out


def death_seen(workdir: Path, url: str) -> dict:
    a, port_a = start_router(workdir, "da", cluster_table(url, "da"))
    b, port_b = start_router(workdir, "db", cluster_table(url, "db"))

    async def measure() -> float:
        import msgpack
        reader, writer = await asyncio.open_connection("127.0.0.1", port_b)
        writer.write(bytes([0x7F, 0xF2, 0, 0]))
        await reader.readexactly(4)

        def send(w: asyncio.StreamWriter, msg: list) -> None:
            data = msgpack.packb(msg)
            w.write(len(data).to_bytes(4, "big") + data)

        async def receive(r: asyncio.StreamReader) -> list:
            header = await r.readexactly(4)
            return msgpack.unpackb(await r.readexactly(int.from_bytes(header[1:], "big")))

        send(writer, [1, "realm1", {"roles": {"callee": {}}}])
        await receive(reader)
        send(writer, [64, 1, {}, "bench.cluster.victim"])
        await receive(reader)
        cr, cw = await asyncio.open_connection("127.0.0.1", port_a)
        cw.write(bytes([0x7F, 0xF2, 0, 0]))
        await cr.readexactly(4)
        send(cw, [1, "realm1", {"roles": {"caller": {}}}])
        await receive(cr)
        request = 0

        async def registered() -> bool:
            nonlocal request
            request += 1
            send(cw, [48, request, {}, "wamp.registration.match", ["bench.cluster.victim"]])
            reply = await receive(cr)
            return bool(reply[0] == 50 and reply[3] and reply[3][0])

        while not await registered():
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        b.kill()
        while await registered():
            await asyncio.sleep(0.01)
        return time.monotonic() - t0

    try:
        seconds = asyncio.run(measure())
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.terminate()
            p.wait()
    return {"figure": "SIGKILLed node seen gone (node_timeout 3 s, heartbeat 0.5 s)",
            "seconds": round(seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=3000, help="sequential calls (part 2)")
    parser.add_argument("--only", choices=("throughput", "sequential", "death"),
                        help="run one part only")
    args = parser.parse_args()
    nats = NatsServer()
    url = nats.start()
    assert nats.proc is not None
    with tempfile.TemporaryDirectory(prefix="fastwamp-bench-cluster-") as tmp:
        workdir = Path(tmp)
        for scenario in ("roundrobin", "pubsub10") if args.only in (None, "throughput") else ():
            single, port = start_router(workdir, "single")
            r = loadgen([port], [single.pid], scenario, args.duration)
            print(json.dumps({"figure": f"{scenario}: one process, no cluster", **r}),
                  flush=True)
            single.terminate()
            single.wait()
            node, port = start_router(workdir, "one", cluster_table(url, "one"))
            r = loadgen([port], [node.pid], scenario, args.duration, nats.proc.pid)
            print(json.dumps({"figure": f"{scenario}: one cluster node",
                              **r}), flush=True)
            node.terminate()
            node.wait()
            a, port_a = start_router(workdir, "a", cluster_table(url, "a"))
            b, port_b = start_router(workdir, "b", cluster_table(url, "b"))
            r = loadgen([port_a, port_b], [a.pid, b.pid], scenario, args.duration,
                        nats.proc.pid)
            print(json.dumps({"figure": f"{scenario}: two nodes, a load generator on each, "
                              "traffic stays on its node", **r}), flush=True)
            for p in (a, b):
                p.terminate()
                p.wait()
        if args.only in (None, "sequential"):
            for figure in cross_node(workdir, url, [nats.proc.pid], args.calls):
                print(json.dumps(figure), flush=True)
        if args.only in (None, "death"):
            print(json.dumps(death_seen(workdir, url)), flush=True)
    nats.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
