"""Router CPU per publication and per delivered event, without sockets.

A real router and real RawSocket (or WebSocket) connections on in-memory
transports (those of ``tests/transport/call_cost.py``): one publisher, N
subscribers of one topic.  The publisher's PUBLISH frames are made beforehand
and fed to ``data_received`` one per read, as a client that writes each
message at once sends them; the router flushes at once, and what the
subscribers' connections write is counted, not sent.  The figure is the thread
CPU time of reading, decoding, routing, encoding and framing: what ``e2e.py``'s
``pubsub`` scenarios measure, without the system calls and the event loop.

    python bench/publish_cost.py [--subscribers 10,100,1000] [--count 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "transport"))

from call_cost import Transport, in_memory_router  # noqa: E402

TOPIC = "bench.publish_cost.topic"


def one_round(kind: str, engine: str, subscribers: int, count: int) -> float:
    """Thread CPU µs per publication to ``subscribers`` receivers."""
    server, wire, join = in_memory_router(kind, engine, "msgpack", subscribers + 1)

    def connect() -> tuple[Any, Transport]:
        return join({"publisher": {}, "subscriber": {}})

    receivers = []
    for i in range(subscribers):
        conn, transport = connect()
        conn.data_received(wire.frame([32, i + 1, {}, TOPIC]))
        receivers.append(transport)
    publisher, _ = connect()
    frames = [wire.frame([16, i, {}, TOPIC, [i, "hello"], {"k": "v"}])
              for i in range(1, count + 1)]
    before = sum(t.writes for t in receivers)
    feed = publisher.data_received
    started = time.thread_time()
    for frame in frames:
        feed(frame)
    elapsed = time.thread_time() - started
    got = sum(t.writes for t in receivers) - before
    if got != count * subscribers:
        raise RuntimeError(f"{got} events written for {count} x {subscribers}")
    for conn in list(server.connections):
        conn.connection_lost(None)
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", default="10,100,1000")
    parser.add_argument("--count", type=int, default=20000,
                        help="publications per round (divided by subscribers/10 above 10)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-t", "--transport", default="rawsocket",
                        help="rawsocket or websocket:ENGINE")
    args = parser.parse_args()
    kind, _, engine = args.transport.partition(":")
    sizes = [int(x) for x in args.subscribers.split(",")]
    results: dict[int, list[float]] = {n: [] for n in sizes}

    async def run() -> None:  # the connections want a running loop
        for _ in range(args.rounds):
            for n in sizes:
                count = max(200, args.count * 10 // max(n, 10))
                results[n].append(one_round(kind, engine or "picows", n, count))

    uvloop.run(run())
    for n, figures in results.items():
        per_pub = statistics.median(figures)
        print(f"{args.transport} {n:>5} subscribers: {per_pub:8.2f} µs per publication, "
              f"{per_pub / n:6.3f} µs per event (median of {args.rounds}; "
              f"best {min(figures) / n:.3f})")


if __name__ == "__main__":
    main()
