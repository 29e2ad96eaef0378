"""Per-node cluster metrics over real processes: two nodes on a nats-server, a session with
a registration and a subscription on one, a scrape of the other (parsed with the Prometheus
parser); then the nats-server stops and comes back, and the link state follows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from interop.abclient import WS_JSON, async_test, connect

from fastwamp.cluster.natsserver import NatsServer

from .conftest import OpsRouter
from .test_metrics import scrape, value

pytestmark = [pytest.mark.interop, pytest.mark.cluster]


def node_config(nats_url: str, name: str, region: str) -> str:
    return f"""
[cluster]
enabled = true
nats_urls = ["{nats_url}"]
node = "{name}"
region = "{region}"
heartbeat_interval = 0.2
node_timeout = 1.0
"""


def scrape_until(router: OpsRouter, ready: Callable[[dict], bool], what: str,
                 timeout: float = 15.0) -> dict:
    """Scrape every 0.1 s until ``ready(samples)``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(router)
        if ready(samples):
            return samples
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen within {timeout} s; last scrape:\n"
                        + "\n".join(f"{k} {v}" for k, v in samples.items()
                                    if k.startswith("fastwamp_cluster")))
        time.sleep(0.1)


def test_cluster_node_metrics(ops_router_factory: Callable[..., OpsRouter]) -> None:
    nats = NatsServer()
    url = nats.start()
    east = west = None
    try:
        east = ops_router_factory(node_config(url, "east-1", "us-east"))
        west = ops_router_factory(node_config(url, "west-1", "us-west"))
        node = {"node": "east-1"}
        remote = {"node": "east-1", "realm": "realm1"}

        @async_test(timeout=60)
        async def with_remote_session() -> None:
            session = await connect(west.endpoints, WS_JSON)
            await session.register(lambda: "west", "com.ops.cluster.work")
            await session.subscribe(lambda *a: None, "com.ops.cluster.news")

            def known(s: dict) -> bool:
                return all((value(s, f"fastwamp_cluster_remote_{kind}", **remote) or 0) >= 1
                           for kind in ("sessions", "registrations", "subscriptions"))

            s = await asyncio.to_thread(scrape_until, east, known, "the remote session")
            assert value(s, "fastwamp_cluster_remote_sessions", **remote) == 1
            assert value(s, "fastwamp_cluster_remote_registrations", **remote) == 1
            assert value(s, "fastwamp_cluster_remote_subscriptions", **remote) == 1
            assert value(s, "fastwamp_cluster_node_info", node="east-1", region="us-east") == 1
            assert value(s, "fastwamp_cluster_link_up", **node) == 1
            assert value(s, "fastwamp_cluster_peer_nodes", **node) == 1
            age = value(s, "fastwamp_cluster_peer_heartbeat_age_seconds", node="east-1",
                        peer="west-1", region="us-west", synced="true")
            assert age is not None and 0 <= age < 1.0
            for name in ("nats_messages_sent", "nats_messages_received", "nats_bytes_sent",
                         "nats_bytes_received"):
                assert (value(s, f"fastwamp_cluster_{name}_total", **node) or 0) > 0, name
            for name in ("link_disconnects", "link_reconnects", "dropped_messages"):
                assert value(s, f"fastwamp_cluster_{name}_total", **node) == 0, name
            await session.leave()

        with_remote_session()
        s = scrape_until(east, lambda s: value(s, "fastwamp_cluster_remote_sessions",
                                               **remote) == 0, "the remote session leaving")
        assert value(s, "fastwamp_cluster_remote_registrations", **remote) == 0

        # NATS goes away: the link is down and counted; it comes back: reconnected.
        port = nats.port
        nats.stop()
        s = scrape_until(east, lambda s: value(s, "fastwamp_cluster_link_up", **node) == 0,
                         "the link going down")
        assert value(s, "fastwamp_cluster_link_disconnects_total", **node) == 1
        nats = NatsServer(port=port)
        nats.start()
        s = scrape_until(east, lambda s: value(s, "fastwamp_cluster_link_up", **node) == 1,
                         "the link coming back")
        assert (value(s, "fastwamp_cluster_link_reconnects_total", **node) or 0) >= 1
    finally:
        for router in (east, west):  # before the nats-server, as in production
            if router is not None and router.process.running:
                router.process.stop(check=True)
        nats.stop()
