"""Python bytecodes the router runs per routed call, by function: where the
interpreted glue around the compiled core is.

A real router and two real connections (caller and callee) on in-memory
transports (``tests/transport/call_cost.py``), inside a uvloop loop: each CALL
and each YIELD is fed to ``data_received`` as one read, as a client that writes
each message at once sends them, and the router flushes the way it does for a
sequential call (at once: the router is quiet; its clock is made to say so).
``sys.settrace`` counts every bytecode instruction executed in a Python frame
while the calls run; compiled code (``_core``, the dealer, the routing record)
runs no bytecode and does not appear.  Counts are exact and repeat to the
instruction, which CPU time and even callgrind's instruction counts (which
cannot tell one Python function from another) do not; what an instruction
costs varies (a ``CALL`` costs more than a ``LOAD_FAST``), so this names the
functions worth compiling, and ``call_instructions.py`` measures the gain.

    python bench/call_bytecodes.py [--transports rawsocket,websocket/picows] [--calls 200]

The in-memory transport's own methods (``write``, ``is_closing``) are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "transport"))

import call_cost  # noqa: E402

#: Frames of this file and of the in-memory transport are not the router's.
NOT_ROUTER = ("call_cost.py", "call_bytecodes.py")


def count(kind: str, calls: int, serializer: str = "msgpack") -> Counter[str]:
    """Bytecodes executed per function (``file:function``) over ``calls`` calls of
    ``kind`` (``rawsocket`` or ``websocket/ENGINE``), after as many for warm-up."""
    transport, _, engine = kind.partition("/")

    async def run() -> Counter[str]:
        caller, callee, _, _, frames, yields, server = call_cost.setup(
            transport, engine or "picows", serializer, 2 * calls)
        router = server.router
        clock = iter(range(1, 10**9))
        router.monotonic = lambda: float(next(clock))  # every read finds the router quiet
        router.call_soon = asyncio.get_running_loop().call_soon
        feed_call, feed_yield = caller.data_received, callee.data_received
        for call, yld in zip(frames[:calls], yields[:calls], strict=True):
            feed_call(call)
            feed_yield(yld)
        counts: Counter[str] = Counter()

        def trace(frame: FrameType, event: str, arg: Any) -> Any:
            code = frame.f_code
            filename = code.co_filename.rsplit("/", 1)[-1]
            if filename in NOT_ROUTER:
                return None
            key = f"{filename}:{code.co_name}"
            frame.f_trace_opcodes = True

            def opcodes(frame: FrameType, event: str, arg: Any) -> Any:
                if event == "opcode":
                    counts[key] += 1
                return opcodes

            return opcodes

        sys.settrace(trace)
        try:
            for call, yld in zip(frames[calls:], yields[calls:], strict=True):
                feed_call(call)
                feed_yield(yld)
        finally:
            sys.settrace(None)
        for conn in list(server.connections):
            conn.connection_lost(None)
        return counts

    return uvloop.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transports", default="rawsocket,websocket/picows")
    parser.add_argument("--serializer", default="msgpack")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--top", type=int, default=20, help="functions listed per transport")
    args = parser.parse_args()
    for kind in args.transports.split(","):
        counts = count(kind, args.calls, args.serializer)
        total = sum(counts.values()) / args.calls
        print(f"{kind}+{args.serializer}: {total:.0f} bytecodes per call "
              "(CALL in, INVOCATION out, YIELD in, RESULT out)")
        for key, n in counts.most_common(args.top):
            print(f"  {n / args.calls:7.1f}  {key}")


if __name__ == "__main__":
    main()
