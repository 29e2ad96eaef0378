"""What the compiled router twins (dealer_c, member_c, broker_c) gain per call.

Runs one routed call at a time through the sans-I/O router (decode CALL, route,
encode INVOCATION, decode YIELD, route, encode RESULT; MessagePack, no sockets)
in alternating subprocesses: the compiled dealer and routing record, and the
same source interpreted (``FASTWAMP_INTERPRETED_ROUTER=1``; the compiled
``_core`` is used by both). Prints CPU µs per call (process time) for each
round and the medians.

    python bench/router_twins.py [--calls 20000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CHILD = "--child"


def one_run(calls: int, prepare: Callable[[Any], None] | None = None) -> float:
    """CPU µs per routed call through the sans-I/O router; ``prepare(router)`` runs
    before the sessions join (``bench/metrics_overhead.py`` installs its counters)."""
    from fastwamp.config import Config, RealmConfig
    from fastwamp.router import Router
    from fastwamp.testing import FakeScheduler
    from fastwamp.wamp import messages as m
    from fastwamp.wamp.serializers import MsgpackSerializer

    class Sink:
        def __init__(self) -> None:
            self.out: list[bytes] = []

        def send_messages(self, msgs: list[list]) -> None:
            self.out = [encode(msg) for msg in msgs]

        def close(self) -> None:
            pass

    router = Router(Config(realms=[RealmConfig("realm1")]))
    router.scheduler = FakeScheduler(router)
    if prepare is not None:
        prepare(router)
    ser = MsgpackSerializer()
    encode, decode = ser.encode, ser.decode
    hello = [m.HELLO, "realm1", {"roles": {"caller": {}, "callee": {}}}]
    callee = router.attach(Sink(), {"type": "bench"})
    caller = router.attach(Sink(), {"type": "bench"})
    callee.receive(hello)
    caller.receive(hello)
    callee.receive([m.REGISTER, 1, {}, "com.example.add"])
    router.flush()
    frames = [encode([m.CALL, i, {}, "com.example.add", [1, 2]]) for i in range(1, calls + 1)]

    def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            caller.receive(decode(frames[i]))
            router.flush()
            callee.receive(decode(encode([m.YIELD, callee.member.last_invocation_id, {}, [3]])))
            router.flush()

    warm = min(1000, calls // 10)
    run(0, warm)
    t0 = time.process_time()
    run(warm, calls)
    return (time.process_time() - t0) / (calls - warm) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(CHILD, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from fastwamp.router import twins

        print(f"{one_run(args.calls):.3f} {int(all(twins.IN_USE.values()))}")
        return
    results: dict[str, list[float]] = {"compiled": [], "interpreted": []}
    for _ in range(args.rounds):
        for name in results:
            env = dict(os.environ)
            env.pop("FASTWAMP_INTERPRETED_ROUTER", None)
            if name == "interpreted":
                env["FASTWAMP_INTERPRETED_ROUTER"] = "1"
            out = subprocess.run([sys.executable, __file__, CHILD, "--calls", str(args.calls)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            us, compiled = out.split()
            if (compiled == "1") != (name == "compiled"):
                sys.exit(f"the {name} run did not get the build it asked for (twins built?)")
            results[name].append(float(us))
            print(f"{name:12} {float(us):6.2f} µs/call", flush=True)
    c, i = statistics.median(results["compiled"]), statistics.median(results["interpreted"])
    print(f"median: compiled {c:.2f}, interpreted {i:.2f} µs/call "
          f"({(1 - c / i) * 100:.0f} % less CPU per call)")


if __name__ == "__main__":
    main()
