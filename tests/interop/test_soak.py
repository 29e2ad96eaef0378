"""Soak: a few hundred sessions call, publish, subscribe and disconnect at random while
bad clients send garbage and idle sockets pile up; then the books must balance.

One real router process; the well-behaved and hostile clients are small asyncio
RawSocket+MessagePack peers in this process (Autobahn would cost more CPU than the
router it tests).  Bounded: ``SOAK_SECONDS`` of traffic (default 12) plus set-up.

Afterwards:

* every CALL got exactly one answer (RESULT or ERROR), none twice, none unknown;
* every acknowledged publication reached every subscriber that stayed for the
  whole run, in order;
* the router still answers, and its open file descriptors and RSS are back near
  their level before the run (idle sockets and hostile peers gone).

``python tests/interop/test_soak.py --seconds 60 --sessions 400`` runs it longer
and prints the figures recorded in ``bench/README.md`` ("Soak").
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import pytest

if __name__ != "__main__":
    pytestmark = pytest.mark.timeout(240)

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70
ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}


class Peer:
    """A minimal WAMP client over RawSocket + MessagePack."""

    count = 0

    def __init__(self) -> None:
        Peer.count += 1
        #: Unique for the run (``id()`` is reused once a peer is gone).
        self.key = Peer.count
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.session_id = 0
        self.handlers: dict[int, Any] = {}
        self.task: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(bytes([0x7F, 0xF2, 0, 0]))
        reply = await self.reader.readexactly(4)
        assert reply[0] == 0x7F and reply[1] & 0x0F == 2, reply
        self.send([HELLO, "realm1", {"roles": ROLES}])
        msg = await self.read()
        assert msg[0] == WELCOME, msg
        self.session_id = msg[1]
        self.task = asyncio.get_running_loop().create_task(self._read_loop())

    def send(self, msg: list) -> None:
        payload = msgpack.packb(msg)
        assert self.writer is not None
        self.writer.write(struct.pack("!I", len(payload)) + payload)

    async def read(self) -> list:
        assert self.reader is not None
        while True:
            header = await self.reader.readexactly(4)
            length = int.from_bytes(header[1:], "big")
            payload = await self.reader.readexactly(length)
            if header[0] == 1:  # PING: answer PONG with the same payload
                assert self.writer is not None
                self.writer.write(bytes([2]) + header[1:] + payload)
                continue
            if header[0] == 0:
                return msgpack.unpackb(payload)

    async def _read_loop(self) -> None:
        try:
            while True:
                msg = await self.read()
                handler = self.handlers.get(msg[0])
                if handler is not None:
                    handler(msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()

    def drop(self) -> None:
        """Disconnect abruptly (no GOODBYE)."""
        if self.writer is not None:
            self.writer.transport.abort()
        if self.task is not None:
            self.task.cancel()


class Books:
    """What was asked and what was answered."""

    def __init__(self) -> None:
        self.calls_sent = 0
        self.answers: Counter[tuple[int, int]] = Counter()  # (peer id, request) -> answers
        self.unknown_answers = 0
        self.open: set[tuple[int, int]] = set()
        self.published_acked: list[int] = []
        self.errors: Counter[str] = Counter()


async def soak(port: int, seconds: float, sessions: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    books = Books()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    # Callees: a shared roundrobin registration; some leave and come back.
    async def callee_life(index: int) -> None:
        while loop.time() < deadline:
            peer = Peer()
            await peer.connect(port)

            def on_invocation(msg: list, peer: Peer = peer) -> None:
                if rng.random() < 0.1:
                    peer.send([ERROR, INVOCATION, msg[1], {}, "soak.error.app"])
                else:
                    peer.send([YIELD, msg[1], {}, msg[4] if len(msg) > 4 else []])

            peer.handlers[INVOCATION] = on_invocation
            peer.send([REGISTER, 1, {"invoke": "roundrobin"}, "soak.proc"])
            await asyncio.sleep(rng.uniform(1.0, 4.0) if index else seconds + 5)
            peer.drop()  # index 0 stays: there is always a callee
            await asyncio.sleep(0.05)

    # Callers: call with a few in flight; some drop with calls in flight.
    async def caller_life(index: int) -> None:
        while loop.time() < deadline:
            peer = Peer()
            await peer.connect(port)
            key_base = peer.key
            request = 0
            inflight = asyncio.Semaphore(4)

            def on_answer(msg: list, key_base: int = key_base,
                          inflight: asyncio.Semaphore = inflight) -> None:
                req = msg[1] if msg[0] == RESULT else msg[2]
                key = (key_base, req)
                if key not in books.open and books.answers[key] == 0:
                    books.unknown_answers += 1
                    return
                books.answers[key] += 1
                books.open.discard(key)
                if msg[0] == ERROR:
                    books.errors[msg[4]] += 1
                inflight.release()

            peer.handlers[RESULT] = on_answer
            peer.handlers[ERROR] = on_answer
            life_end = loop.time() + rng.uniform(0.5, 3.0)
            while loop.time() < min(life_end, deadline) and not peer.closed.is_set():
                try:
                    await asyncio.wait_for(inflight.acquire(), 2.0)
                except asyncio.TimeoutError:
                    break
                request += 1
                books.calls_sent += 1
                books.open.add((key_base, request))
                peer.send([CALL, request, {}, "soak.proc", [request]])
                await asyncio.sleep(rng.uniform(0, 0.01))
            if rng.random() < 0.5:
                peer.drop()  # calls in flight die with the caller: no answer expected
                books.open = {k for k in books.open if k[0] != key_base}
            else:
                # Wait for the answers of this caller's calls, then leave.
                for _ in range(200):
                    if not any(k[0] == key_base for k in books.open):
                        break
                    await asyncio.sleep(0.01)
                peer.drop()

    # Subscribers that stay the whole run; others that come and go.
    stayers: list[list[int]] = []
    stayer_peers: list[Peer] = []

    async def subscriber_life(stays: bool) -> None:
        peer = Peer()
        await peer.connect(port)
        got: list[int] = []
        subscribed = asyncio.Event()
        peer.handlers[EVENT] = lambda msg: got.append(msg[4][0])
        peer.handlers[SUBSCRIBED] = lambda msg: subscribed.set()
        peer.send([SUBSCRIBE, 1, {}, "soak.topic"])
        await subscribed.wait()
        if stays:
            stayers.append(got)
            stayer_peers.append(peer)
            return
        while loop.time() < deadline:
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            peer.drop()
            peer = Peer()
            await peer.connect(port)
            peer.handlers[EVENT] = lambda msg: None
            peer.send([SUBSCRIBE, 1, {}, "soak.topic"])
        peer.drop()

    # One publisher (order is per publisher), acknowledged publications.
    async def publisher_life(start: asyncio.Event) -> None:
        peer = Peer()
        await peer.connect(port)
        acked: dict[int, int] = {}
        peer.handlers[PUBLISHED] = lambda msg: books.published_acked.append(acked.pop(msg[1]))
        await start.wait()
        seq = 0
        while loop.time() < deadline:
            seq += 1
            acked[seq] = seq
            peer.send([PUBLISH, seq, {"acknowledge": True}, "soak.topic", [seq]])
            await asyncio.sleep(0.002)
        for _ in range(300):
            if not acked:
                break
            await asyncio.sleep(0.01)
        peer.drop()

    # Hostile peers: garbage, bad frames, oversized lengths, idle sockets.
    idle: list[asyncio.StreamWriter] = []

    async def hostile_life() -> None:
        while loop.time() < deadline:
            kind = rng.randrange(4)
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            if kind == 0:  # not RawSocket at all
                writer.write(os.urandom(rng.randrange(1, 64)))
            elif kind == 1:  # a valid handshake, then a frame that is not MessagePack
                writer.write(bytes([0x7F, 0xF2, 0, 0]) + b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1")
            elif kind == 2:  # a header announcing 16 MiB that never comes
                writer.write(bytes([0x7F, 0xF2, 0, 0, 0, 0xFF, 0xFF, 0xFF]) + b"\x90" * 10)
            else:  # an idle socket that never speaks
                idle.append(writer)
                await asyncio.sleep(0.02)
                continue
            await asyncio.sleep(rng.uniform(0.01, 0.1))
            writer.transport.abort()

    start_publishing = asyncio.Event()
    n_callees = max(3, sessions // 20)
    n_callers = max(10, sessions // 2)
    n_stayers = max(5, sessions // 10)
    n_churners = max(5, sessions // 10)
    tasks = [loop.create_task(callee_life(i)) for i in range(n_callees)]
    await asyncio.sleep(0.3)  # the first callee registered
    stay_tasks = [loop.create_task(subscriber_life(True)) for _ in range(n_stayers)]
    await asyncio.gather(*stay_tasks)
    start_publishing.set()
    tasks += [loop.create_task(caller_life(i)) for i in range(n_callers)]
    tasks += [loop.create_task(subscriber_life(False)) for _ in range(n_churners)]
    tasks += [loop.create_task(hostile_life()) for _ in range(4)]
    publisher = loop.create_task(publisher_life(start_publishing))
    await publisher
    await asyncio.wait(tasks, timeout=15)
    for task in tasks:
        task.cancel()
    await asyncio.sleep(0.5)  # the last events arrive
    for writer in idle:
        writer.transport.abort()
    for peer in stayer_peers:
        peer.drop()
    await asyncio.sleep(0.1)
    return {
        "books": books, "stayers": stayers, "idle_sockets": len(idle),
        "sessions": n_callees + n_callers + n_stayers + n_churners + 1,
    }


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def settle_and_probe(port: int) -> None:
    peer = Peer()
    await peer.connect(port)  # the router still answers a newcomer
    peer.drop()


def check(result: dict[str, Any]) -> dict[str, Any]:
    books: Books = result["books"]
    answered_twice = [k for k, n in books.answers.items() if n > 1]
    assert not answered_twice, f"{len(answered_twice)} calls answered more than once"
    assert books.unknown_answers == 0, f"{books.unknown_answers} answers to unknown calls"
    assert not books.open, f"{len(books.open)} calls of callers that stayed never answered"
    acked = books.published_acked
    assert acked, "no publication acknowledged"
    for got in result["stayers"]:
        missing = set(acked) - set(got)
        assert not missing, f"a subscriber that stayed missed {len(missing)} acknowledged events"
        assert got == sorted(got), "events of one publisher arrived out of order"
    return {
        "calls": books.calls_sent, "answered": sum(books.answers.values()),
        "errors": dict(books.errors), "acked_publications": len(acked),
        "stayers": len(result["stayers"]), "idle_sockets": result["idle_sockets"],
        "sessions": result["sessions"],
    }


def run_soak(port: int, pid: int, seconds: float, sessions: int) -> dict[str, Any]:
    import uvloop

    fds_before, rss_before = proc_fds(pid), proc_rss_mib(pid)
    result = uvloop.run(soak(port, seconds, sessions))
    figures = check(result)
    peak_rss = proc_rss_mib(pid)
    # The router notices the aborted sockets within a loop turn or two.
    for _ in range(100):
        if proc_fds(pid) <= fds_before + 2:
            break
        time.sleep(0.1)
    uvloop.run(settle_and_probe(port))
    figures.update(fds_before=fds_before, fds_after=proc_fds(pid),
                   rss_before=round(rss_before, 1), rss_after=round(proc_rss_mib(pid), 1),
                   rss_at_end=round(peak_rss, 1))
    return figures


def test_soak(router_factory) -> None:
    pytest.importorskip("uvloop")
    seconds = float(os.environ.get("SOAK_SECONDS", "12"))
    rp = router_factory(extra_config="", listener_config="")
    assert rp.proc is not None and rp.endpoints is not None
    _, port = rp.endpoints.rs_host_port
    figures = run_soak(port, rp.proc.pid, seconds, sessions=200)
    print("soak:", figures)
    assert figures["fds_after"] <= figures["fds_before"] + 2, figures
    # Python keeps freed arenas; the bound is generous, the failure it catches is a leak
    # that grows with the run (hundreds of MiB).
    assert figures["rss_after"] <= figures["rss_before"] + 64, figures


if __name__ == "__main__":
    import argparse

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import RouterProcess  # type: ignore[import-not-found]

    parser = argparse.ArgumentParser(description="run the soak test longer and print figures")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--sessions", type=int, default=400)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rp = RouterProcess(Path(tmp), "soak")
        endpoints = rp.start()
        try:
            assert rp.proc is not None
            t0 = time.monotonic()
            figures = run_soak(endpoints.rs_host_port[1], rp.proc.pid, args.seconds,
                               args.sessions)
            figures["wall_s"] = round(time.monotonic() - t0, 1)
            print(figures)
        finally:
            rp.stop(check=False)
