"""A subscriber that stops reading cannot grow the router's memory without bound.

A private router has two realms with small output queues (256 KiB, 1000
messages), one per overflow policy.  A RawSocket+msgpack subscriber with a tiny
receive buffer joins, subscribes and stops reading; an Autobahn publisher floods
~1 KiB events (acknowledged, and paced by the normal subscribers so that only
the slow one falls behind).  Checked: the normal subscribers get every event in
order, ``fastwamp.session.on_overflow`` names the slow session, the router's
RSS stays within a generous bound (a memory bound, not a timing), and with
policy ``disconnect`` the slow session is dropped and counted by
``fastwamp.router.get_stats``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from autobahn.wamp.types import PublishOptions

from .abclient import RS_JSON, WS_MSGPACK, Client, EventSink, async_test, connect, unique_uri
from .conftest import RouterEndpoints, RouterProcess

pytestmark = pytest.mark.interop

DROP_REALM = "com.fastwamp.slow.drop"
DISCONNECT_REALM = "com.fastwamp.slow.disconnect"
QUEUE_BYTES = 262144
QUEUE_MESSAGES = 1000
OVERFLOW_TOPIC = "fastwamp.session.on_overflow"
#: Events published per test, and their payload size.
EVENTS = 20_000
PAYLOAD = "x" * 1000
#: Events per publish batch; the last of each is acknowledged, and a batch starts
#: only once the normal subscribers have every event but the previous batch.
BATCH = 100
#: The router's RSS may grow this much over its baseline during a flood.
RSS_MARGIN = 64 * 1024 * 1024

ACK = PublishOptions(acknowledge=True)


def _realm_toml(name: str, policy: str) -> str:
    return f"""
[[realms]]
name = "{name}"
allow_anonymous = true
output_queue_bytes = {QUEUE_BYTES}
output_queue_messages = {QUEUE_MESSAGES}
overflow_policy = "{policy}"
admin_authroles = ["anonymous"]  # fastwamp.router.get_stats is for trusted roles
"""


@pytest.fixture
def slow_router(tmp_path: Path) -> Iterator[RouterProcess]:
    """A private router with the small-queue realms (stopped cleanly at the end)."""
    rp = RouterProcess(
        tmp_path,
        "slow-router",
        extra_config=_realm_toml(DROP_REALM, "drop_oldest")
        + _realm_toml(DISCONNECT_REALM, "disconnect"),
    )
    rp.start()
    try:
        yield rp
    finally:
        if rp.running:
            rp.stop(check=True)
        else:
            rp._finish_io()


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class SlowSubscriber:
    """A RawSocket+msgpack subscriber on a raw socket with a tiny receive buffer."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connecting, so that the TCP window stays small: back-pressure is quick.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.setblocking(False)
        self.buffer = bytearray()
        self.session_id = 0
        self.subscription_id = 0

    async def open(self, endpoints: RouterEndpoints, realm: str, topic: str) -> None:
        """Connect, join ``realm`` and subscribe to ``topic``; then read nothing more."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(self.sock, endpoints.rs_host_port), 5)
        await loop.sock_sendall(self.sock, bytes((0x7F, 0xF2, 0, 0)))  # msgpack, 16 MiB
        reply = await self._read_exactly(4)
        assert reply[0] == 0x7F and reply[1] & 0x0F == 2, reply
        self.send([1, realm, {"roles": {"subscriber": {}}}])
        welcome = await self.read_message()
        assert welcome[0] == 2, welcome
        self.session_id = welcome[1]
        self.send([32, 1, {}, topic])
        subscribed = await self.read_message()
        assert subscribed[:2] == [33, 1], subscribed
        self.subscription_id = subscribed[2]

    def send(self, msg: list) -> None:
        payload = msgpack.packb(msg)
        self.sock.send(struct.pack("!I", len(payload)) + payload)

    async def read_message(self, timeout: float = 5.0) -> Any:
        while True:
            if len(self.buffer) >= 4:
                (word,) = struct.unpack_from("!I", self.buffer)
                length = word & 0xFFFFFF
                if len(self.buffer) >= 4 + length:
                    payload = bytes(self.buffer[4 : 4 + length])
                    del self.buffer[: 4 + length]
                    if word >> 24 == 0:
                        return msgpack.unpackb(payload)
                    continue
            chunk = await self._recv(timeout)
            if not chunk:
                raise EOFError("the router closed the connection")
            self.buffer += chunk

    async def read_until_closed(self, timeout: float = 10.0) -> int:
        """Read (and discard) until the router closes the connection; the bytes read."""
        total = 0
        while True:
            try:
                chunk = await self._recv(timeout)
            except ConnectionResetError:
                return total
            if not chunk:
                return total
            total += len(chunk)

    async def _recv(self, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)

    async def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = await self._recv(5.0)
            assert chunk, "connection closed during the handshake"
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def close(self) -> None:
        self.sock.close()


async def flood(
    publisher: Client,
    topic: str,
    sinks: list[EventSink],
    count: int = EVENTS,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Publish ``count`` events ``[i, PAYLOAD]`` in acknowledged batches, paced by
    ``sinks``; end early once ``stop()``.  Returns how many were published."""
    published = 0
    while published < count and not stop():
        end = min(published + BATCH, count)
        for i in range(published, end - 1):
            publisher.publish(topic, i, PAYLOAD)
        await publisher.publish(topic, end - 1, PAYLOAD, options=ACK)
        for sink in sinks:  # keep at most two batches in flight per normal subscriber
            await sink.wait(max(0, published), timeout=10.0)
        published = end
    return published


async def join(endpoints: RouterEndpoints, kind: Any, realm: str, peers: list[Client]) -> Client:
    client = await connect(endpoints, kind, realm=realm)
    peers.append(client)
    return client


async def close_all(peers: list[Client]) -> None:
    for client in peers:
        if not client.disconnected.done():
            try:
                await client.close(timeout=3.0)
            except AssertionError:
                pass


@async_test(timeout=60)
async def test_slow_subscriber_drop_oldest(slow_router: RouterProcess) -> None:
    endpoints = slow_router.endpoints
    assert endpoints is not None and slow_router.proc is not None
    pid = slow_router.proc.pid
    topic = unique_uri("slow")
    peers: list[Client] = []
    slow = SlowSubscriber()
    try:
        monitor = await join(endpoints, WS_MSGPACK, DROP_REALM, peers)
        overflows = EventSink()
        await monitor.subscribe(overflows, OVERFLOW_TOPIC)
        sinks = [EventSink(), EventSink()]
        for kind, sink in zip((WS_MSGPACK, RS_JSON), sinks, strict=True):
            subscriber = await join(endpoints, kind, DROP_REALM, peers)
            await subscriber.subscribe(sink, topic)
        publisher = await join(endpoints, WS_MSGPACK, DROP_REALM, peers)
        await slow.open(endpoints, DROP_REALM, topic)

        before = rss_bytes(pid)
        published = await flood(publisher, topic, sinks)
        for sink in sinks:
            await sink.wait(published, timeout=10.0)
        after, peak = rss_bytes(pid), rss_bytes(pid, "VmHWM")
        print(
            f"\nrouter RSS: before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB, "
            f"peak {peak / 2**20:.1f} MiB ({published} events of {len(PAYLOAD)} B)"
        )

        # The normal subscribers got every event, in order.
        for sink in sinks:
            assert [args[0] for args, _ in sink.events] == list(range(published))
        # The slow session's overflow was announced.
        (session_id, details), _ = (await overflows.wait(1, timeout=10.0))[0]
        assert session_id == slow.session_id
        assert details["policy"] == "drop_oldest" and details["disconnected"] is False
        assert details["dropped_messages"] > 0 and details["dropped_bytes"] > 0
        # Memory stayed bounded: the slow session did not keep the flood.
        assert peak < before + RSS_MARGIN, (before, peak)

        # Once it reads again, it gets the newest events, in order.
        seen = []
        while not seen or seen[-1] != published - 1:
            msg = await slow.read_message(timeout=10.0)
            assert msg[0] == 36 and msg[1] == slow.subscription_id, msg[:3]
            seen.append(msg[4][0])
        assert seen == sorted(seen) and len(seen) < published
        stats = await monitor.call("fastwamp.router.get_stats")
        assert stats["overflow_dropped_messages"] >= published - len(seen)
        assert stats["overflow_disconnects"] == 0
    finally:
        slow.close()
        await close_all(peers)


@async_test(timeout=60)
async def test_slow_subscriber_disconnect(slow_router: RouterProcess) -> None:
    endpoints = slow_router.endpoints
    assert endpoints is not None and slow_router.proc is not None
    pid = slow_router.proc.pid
    topic = unique_uri("slowdc")
    peers: list[Client] = []
    slow = SlowSubscriber()
    try:
        monitor = await join(endpoints, RS_JSON, DISCONNECT_REALM, peers)
        overflows = EventSink()
        await monitor.subscribe(overflows, OVERFLOW_TOPIC)
        sink = EventSink()
        subscriber = await join(endpoints, WS_MSGPACK, DISCONNECT_REALM, peers)
        await subscriber.subscribe(sink, topic)
        publisher = await join(endpoints, WS_MSGPACK, DISCONNECT_REALM, peers)
        await slow.open(endpoints, DISCONNECT_REALM, topic)

        before = rss_bytes(pid)
        published = await flood(publisher, topic, [sink], stop=lambda: bool(overflows.events))
        assert overflows.events, f"no overflow after {published} events"
        (session_id, details), _ = overflows.events[0]
        assert session_id == slow.session_id
        assert details["policy"] == "disconnect" and details["disconnected"] is True
        # Its socket gets closed (after whatever the kernel still buffered).
        await slow.read_until_closed()
        stats = await monitor.call("fastwamp.router.get_stats")
        assert stats["overflow_disconnects"] >= 1
        assert stats["realm"]["sessions"] == 3  # monitor, subscriber, publisher
        # The others are unaffected.
        await sink.wait(published, timeout=10.0)
        assert [args[0] for args, _ in sink.events] == list(range(published))
        peak = rss_bytes(pid, "VmHWM")
        print(
            f"\nrouter RSS: before {before / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB "
            f"(disconnected after {published} events)"
        )
        assert peak < before + RSS_MARGIN, (before, peak)
    finally:
        slow.close()
        await close_all(peers)
