"""One publication to 100,000 subscribers: how long does each turn of the loop take?

Runs the sans-I/O router in memory (transports replaced by sinks that encode
each message, as a real one would, but write nothing) on a fake clock, and
reports the time of the PUBLISH itself and of each chunked delivery turn.

Run: ``python bench/fanout_100k.py [--subscribers 100000]``.
"""

from __future__ import annotations

import argparse
import time

from fastwamp.config import Config, RealmConfig
from fastwamp.router import Router
from fastwamp.testing import FakeScheduler
from fastwamp.wamp import messages as m
from fastwamp.wamp.serializers import MsgpackSerializer


class EncodingSink:
    """Stands in for a transport: encodes what it is given, writes nothing."""

    __slots__ = ("events", "encode")

    def __init__(self, encode) -> None:
        self.encode = encode
        self.events = 0

    def send_messages(self, msgs: list[list]) -> None:
        for msg in msgs:
            self.encode(msg)
            self.events += msg[0] == m.EVENT

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    args = parser.parse_args()
    router = Router(Config(realms=[RealmConfig("realm1")]))
    clock = FakeScheduler(router)
    router.scheduler = clock
    encode = MsgpackSerializer().encode
    sinks = []
    for _ in range(args.subscribers):
        sink = EncodingSink(encode)
        session = router.attach(sink, {"type": "bench"})
        session.receive([m.HELLO, "realm1", {"roles": {"subscriber": {}}}])
        session.receive([m.SUBSCRIBE, 1, {}, "com.example.broadcast"])
        sinks.append(sink)
    publisher = router.attach(EncodingSink(encode), {"type": "bench"})
    publisher.receive([m.HELLO, "realm1", {"roles": {"publisher": {}}}])
    router.flush()

    start = time.perf_counter()
    publisher.receive([m.PUBLISH, 1, {}, "com.example.broadcast", ["hello"]])
    router.flush()
    publish_ms = (time.perf_counter() - start) * 1000
    turns = []
    while True:
        start = time.perf_counter()
        if not clock.step():
            break
        turns.append((time.perf_counter() - start) * 1000)
    delivered = sum(s.events for s in sinks)
    print(f"subscribers {args.subscribers}: PUBLISH handled in {publish_ms:.2f} ms; "
          f"{len(turns)} delivery turns, longest {max(turns, default=0):.2f} ms, "
          f"median {sorted(turns)[len(turns) // 2] if turns else 0:.2f} ms, "
          f"total {sum(turns):.0f} ms; {delivered} EVENTs delivered")


if __name__ == "__main__":
    main()
