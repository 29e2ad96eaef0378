"""Autobahn|Python (asyncio): a callee over RawSocket, a caller over WebSocket, and the
call-timeout trap: ``CallOptions(timeout=...)`` is in **milliseconds** for fastwamp (as the
WAMP spec says), while Autobahn's docstring, and Crossbar, say seconds.

    python autobahn_rpc.py             # against `fastwamp` started with no options

FASTWAMP_WS_URL, FASTWAMP_RAWSOCKET_URL and FASTWAMP_REALM override
ws://127.0.0.1:8080/ws, rs://127.0.0.1:8081 and realm1.  Needs ``pip install autobahn``.
"""

from __future__ import annotations

import asyncio
import os
import time

from autobahn.asyncio.component import Component
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions

WS_URL = os.environ.get("FASTWAMP_WS_URL", "ws://127.0.0.1:8080/ws")
# Autobahn spells RawSocket URLs rs:// (fastwamp prints tcp://127.0.0.1:8081).
RAWSOCKET_URL = os.environ.get("FASTWAMP_RAWSOCKET_URL", "rs://127.0.0.1:8081")
REALM = os.environ.get("FASTWAMP_REALM", "realm1")


def component(transport: dict[str, object]) -> Component:
    # max_retries 0: a script that ends should not reconnect when the router closes.
    return Component(transports=[{**transport, "max_retries": 0}], realm=REALM)


async def main() -> None:
    loop = asyncio.get_running_loop()
    callee = component({"type": "rawsocket", "url": RAWSOCKET_URL, "serializer": "msgpack"})
    caller = component({"type": "websocket", "url": WS_URL, "serializers": ["json"]})
    callee_ready: asyncio.Future[object] = loop.create_future()

    async def add2(x: int, y: int) -> int:
        return x + y

    async def slow(seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            # The router gave up on the call (its timeout) and sent INTERRUPT.
            print("callee: slow() interrupted by the router")
            return "interrupted"  # the router has answered the caller already
        return f"slept {seconds} s"

    @callee.on_join
    async def callee_joined(session, details) -> None:
        await session.register(add2, "com.example.add2")
        await session.register(slow, "com.example.slow")
        print("callee: registered com.example.add2 and com.example.slow (RawSocket, msgpack)")
        callee_ready.set_result(session)

    @caller.on_join
    async def caller_joined(session, details) -> None:
        print(f"caller: 2 + 3 = {await session.call('com.example.add2', 2, 3)}")

        # The trap: meant as "2 seconds", read as 2 milliseconds by a spec-following router.
        started = time.monotonic()
        try:
            await session.call("com.example.slow", 0.5, options=CallOptions(timeout=2))
            print("caller: timeout=2 answered (unexpected)")
        except ApplicationError as exc:
            elapsed = (time.monotonic() - started) * 1000
            print(f"caller: timeout=2 failed after {elapsed:.0f} ms with {exc.error} "
                  "(2 means 2 ms, not 2 s)")

        # Right: milliseconds, as an int (Autobahn asserts an int: timeout=0.5 fails in the
        # client before anything is sent).
        answer = await session.call("com.example.slow", 0.5, options=CallOptions(timeout=2000))
        print(f"caller: timeout=2000 answered {answer!r}")
        await session.leave()

    callee_done = callee.start(loop)
    await asyncio.wait_for(callee_ready, 10)
    await asyncio.wait_for(caller.start(loop), 20)
    # stop(), not session.leave(): Autobahn's RawSocket transport reports the router's close
    # after GOODBYE as a lost connection and would try to reconnect.
    await callee.stop()
    try:
        await asyncio.wait_for(callee_done, 10)
    except RuntimeError:
        pass  # "Exhausted all transport connect attempts": the same close, seen as a failure


if __name__ == "__main__":
    asyncio.run(main())
