"""Cluster nodes linked in memory: a bus that plays NATS, and a shared fake clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from fastwamp.cluster.node import ClusterNode
from fastwamp.config import ClusterConfig, Config, RealmConfig
from fastwamp.router import Router
from fastwamp.testing import FakeScheduler, LinkedPeer


class MemoryBus:
    """Subjects to nodes; messages are delivered in order by :meth:`pump`."""

    def __init__(self) -> None:
        self.nodes: list[ClusterNode] = []
        self.queue: deque[tuple[str, str, bytes]] = deque()
        #: Node names cut off from the bus (their messages and those to them are lost).
        self.cut: set[str] = set()
        #: Called with (origin, subject, data) of each message: "lose" drops it,
        #: "twice" delivers it twice, anything else delivers it (core NATS may lose
        #: what a failing server held).
        self.fault: Callable[[str, str, bytes], str | None] | None = None
        self.routers: list[Router] = []

    def sender(self, name: str):
        def send(subject: str, data: bytes) -> None:
            self.queue.append((name, subject, data))
        return send

    def pump(self) -> None:
        for router in self.routers:
            router.flush()
        while self.queue:
            origin, subject, data = self.queue.popleft()
            if origin in self.cut:
                continue
            fault = self.fault(origin, subject, data) if self.fault is not None else None
            if fault == "lose":
                continue
            if fault == "twice":
                self.queue.appendleft((origin, subject, data))
            for node in self.nodes:
                if node.name in self.cut:
                    continue
                s = node.subjects
                if subject in (s.nodes, s.state, s.inbox):
                    node.receive(subject, data)
            for router in self.routers:
                router.flush()


class Cluster:
    """``n`` routers on one fake clock, linked by a :class:`MemoryBus`."""

    def __init__(self, n: int = 2, realm: RealmConfig | None = None,
                 regions: list[str] | None = None) -> None:
        self.scheduler = FakeScheduler()
        self.bus = MemoryBus()
        self.routers: list[Router] = []
        self.nodes: list[ClusterNode] = []
        for i in range(n):
            config = Config(realms=[realm or RealmConfig("realm1")])
            config.cluster = ClusterConfig(enabled=True, nats_urls=["nats://x:1"],
                                           node=f"n{i}",
                                           region=regions[i] if regions else "")
            router = Router(config)
            router.scheduler = self.scheduler
            node = ClusterNode(router, config.cluster, f"n{i}", self.bus.sender(f"n{i}"))
            self.routers.append(router)
            self.nodes.append(node)
        self.bus.nodes = self.nodes
        self.bus.routers = self.routers
        for node in self.nodes:
            node.start()
        self.settle()

    def settle(self, seconds: float = 1.0) -> None:
        """Let heartbeats and snapshots go round (``seconds`` of fake time)."""
        self.bus.pump()
        step = 0.1
        t = 0.0
        while t < seconds:
            self.scheduler.advance(step)
            self.bus.pump()
            t += step

    def peer(self, i: int, **details) -> LinkedPeer:
        peer = LinkedPeer(self.routers[i])
        welcome = peer.hello(**details)
        assert welcome[0] == 2, welcome
        return peer
