"""How close to CALL.Options.timeout does the caller get wamp.error.timeout?

Starts a router, registers a procedure that never answers, and measures, for
several timeouts, the time from sending CALL to receiving the ERROR, on the
caller's clock (so it includes one loopback round trip).

Run: ``python bench/timeout_accuracy.py [--calls 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

import msgpack

CONFIG = """
log_level = "warning"
[[realms]]
name = "realm1"
[[listeners]]
type = "rawsocket"
port = 0
serializers = ["msgpack"]
"""


class Client:
    """A minimal RawSocket + msgpack WAMP client."""

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(bytes([0x7F, 0xF2, 0, 0]))
        assert (await self.reader.readexactly(4))[0] == 0x7F
        await self.send([1, "realm1", {"roles": {"caller": {}, "callee": {}}}])
        assert (await self.recv())[0] == 2

    async def send(self, msg: list) -> None:
        data = msgpack.packb(msg)
        self.writer.write(len(data).to_bytes(4, "big") + data)
        await self.writer.drain()

    async def recv(self) -> list:
        header = await self.reader.readexactly(4)
        return msgpack.unpackb(await self.reader.readexactly(int.from_bytes(header[1:], "big")))


async def measure(port: int, calls: int) -> None:
    callee, caller = Client(), Client()
    await callee.connect(port)
    await caller.connect(port)
    await callee.send([64, 1, {}, "com.bench.never"])
    assert (await callee.recv())[0] == 65
    request = 0
    print(f"{'timeout ms':>10} {'calls':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    for timeout in (10, 50, 100, 500):
        lateness = []
        for _ in range(calls if timeout < 500 else max(5, calls // 5)):
            request += 1
            start = time.perf_counter()
            await caller.send([48, request, {"timeout": timeout}, "com.bench.never"])
            reply = await caller.recv()
            elapsed = (time.perf_counter() - start) * 1000
            assert reply[0] == 8 and reply[4] == "wamp.error.timeout", reply
            lateness.append(elapsed)
        lateness.sort()
        p99 = lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))]
        print(f"{timeout:>10} {len(lateness):>6} {statistics.median(lateness):>10.2f} "
              f"{p99:>8.2f} {lateness[-1]:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(CONFIG)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(),
                                                                     os.environ.get("PYTHONPATH")])))
    router = subprocess.Popen([sys.executable, "-m", "fastwamp", "--config", f.name],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = 0
        assert router.stdout is not None
        for line in router.stdout:
            if "listening on tcp://" in line:
                port = int(line.rsplit(":", 1)[1])
            if "ready" in line:
                break
        asyncio.run(measure(port, args.calls))
    finally:
        router.terminate()
        router.wait(10)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
