"""The Prometheus exposition of a router's counters, built when it is scraped.

:class:`RouterCollector` is a ``prometheus_client`` collector: at each scrape
it reads the plain integers of :mod:`fastwamp.ops.counters`, the router's
``stats`` and its tables (sessions, registrations, subscriptions) and yields
metric families; :func:`render` formats them with ``prometheus_client``
(text format 0.0.4), together with its process collector (CPU, memory, open
descriptors).  Nothing here runs on the routing path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..transport.base import TRAFFIC_BY_TRANSPORT
from ..wamp.messages import MESSAGE_NAMES
from .counters import CALL_DURATION_BUCKETS, RouterCounters

if TYPE_CHECKING:
    from ..router.router import Router

#: ``router.stats`` keys, by the name and help of the counter each is exported as
#: (``fastwamp_<key>_total``); keys not listed (added later) are exported with a
#: generic help text.
STATS_HELP = {
    "sessions_joined": "Sessions that joined a realm.",
    "overflow_dropped_messages": "Messages dropped from slow consumers' full output queues.",
    "overflow_dropped_bytes": "Bytes dropped from slow consumers' full output queues.",
    "overflow_disconnects": "Slow consumers disconnected because their output queue was full.",
    "undeliverable_messages": "Messages that could not be sent (too large, unencodable).",
    "undeliverable_events": "EVENTs that could not be sent (too large, unencodable).",
    "refused_requests": "Requests refused as bad input (invalid URI or argument, not "
                        "authorized, quota or limit exceeded).",
    "limits_hit": "Requests and HELLOs refused because a quota or limit was reached.",
    "protocol_violations": "Sessions aborted for a protocol violation.",
    "authentication_failures": "HELLOs and AUTHENTICATEs refused (wrong credentials, no "
                               "usable method).",
    "connections_refused": "Connections refused (too many from one address).",
    "handshake_timeouts": "Connections closed for not completing the handshake in time.",
    "frame_timeouts": "Connections dropped for a frame that did not arrive in time.",
    "ping_timeouts": "Connections dropped for not answering a ping.",
    "oversize_frames": "Connections closed for a frame over the size limit.",
    "accept_failures": "Failed accept() calls (out of file descriptors).",
}

_BUCKET_BOUNDS = [repr(b) for b in CALL_DURATION_BUCKETS] + ["+Inf"]


class RouterCollector:
    """Reads a router's counters at scrape time (a ``prometheus_client`` collector)."""

    def __init__(self, router: Router, counters: RouterCounters,
                 cluster: Callable[[], Any] | None = None) -> None:
        self.router = router
        self.counters = counters
        #: Returns the cluster link (fastwamp.cluster.link.ClusterLink) or None.
        self.cluster = cluster

    def describe(self) -> list[Metric]:
        return []  # families are known only when collected (labels come and go)

    def collect(self) -> Iterator[Metric]:
        router, counters = self.router, self.counters
        sessions = GaugeMetricFamily("fastwamp_sessions", "Sessions joined, by realm and transport.",
                                     labels=["realm", "transport"])
        registrations = GaugeMetricFamily("fastwamp_registrations", "Registrations, by realm.",
                                          labels=["realm"])
        subscriptions = GaugeMetricFamily("fastwamp_subscriptions", "Subscriptions, by realm.",
                                          labels=["realm"])
        for name, realm in router.realms.items():
            by_transport: dict[str, int] = {}
            for session in realm.sessions.values():
                kind = str(session.transport_info.get("type", "?"))
                by_transport[kind] = by_transport.get(kind, 0) + 1
            for kind, n in sorted(by_transport.items()):
                sessions.add_metric([name, kind], n)
            registrations.add_metric([name], sum(
                1 for reg in realm.dealer.registrations.values() if not _internal(reg.uri)))
            subscriptions.add_metric([name], len(realm.broker.subscriptions))
        yield sessions
        yield registrations
        yield subscriptions
        yield from self._messages()
        received = CounterMetricFamily("fastwamp_bytes_received", "Bytes read from client "
                                       "connections (this process), by transport.",
                                       labels=["transport"])
        sent = CounterMetricFamily("fastwamp_bytes_sent", "Bytes written to client "
                                   "connections (this process), by transport.",
                                   labels=["transport"])
        for kind, traffic in TRAFFIC_BY_TRANSPORT.items():
            received.add_metric([kind], traffic.received)
            sent.add_metric([kind], traffic.sent)
        yield received
        yield sent
        yield from self._calls()
        events = CounterMetricFamily(
            "fastwamp_events", "EVENTs for client publications, by subscription (topic and "
            "match policy), counted when published.", labels=["realm", "topic", "match"])
        refusals = CounterMetricFamily(
            "fastwamp_router_errors", "ERRORs the router answered requests with (not those "
            "relayed from callees), by request type and error URI.",
            labels=["realm", "request", "error"])
        for name, rc in counters.realms.items():
            for (uri, match), n in rc.events.items():
                events.add_metric([name, uri, match], n)
            for (request, error), n in rc.refusals.items():
                refusals.add_metric([name, MESSAGE_NAMES.get(request, str(request)), error], n)
        yield events
        yield refusals
        for key, value in list(router.stats.items()):
            yield CounterMetricFamily(f"fastwamp_{key}", STATS_HELP.get(
                key, f"The router's {key.replace('_', ' ')} (fastwamp.router.get_stats)."),
                value=value)
        link = self.cluster() if self.cluster is not None else None
        if link is not None:
            yield from cluster_metrics(link)

    def _messages(self) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "fastwamp_messages_received", "Messages routed from established sessions, by type.",
            labels=["type"])
        sent = CounterMetricFamily(
            "fastwamp_messages_sent", "Messages queued for client sessions, by type.",
            labels=["type"])
        counters = self.counters
        for code, name in MESSAGE_NAMES.items():
            n = counters.received.get(code)
            if n:
                received.add_metric([name], n)
            n = counters.sent.get(code)
            if n:
                sent.add_metric([name], n)
        yield received
        yield sent

    def _calls(self) -> Iterator[Metric]:
        labels = ["realm", "procedure", "match"]
        calls = CounterMetricFamily(
            "fastwamp_calls", "Calls routed to a registration and finished (RESULT or ERROR), "
            "by registration (URI and match policy).", labels=labels)
        errors = CounterMetricFamily(
            "fastwamp_call_errors", "Calls routed to a registration that ended with an ERROR, "
            "by registration and error URI.", labels=[*labels, "error"])
        latency = HistogramMetricFamily(
            "fastwamp_call_duration_seconds", "Time from CALL to its final RESULT or ERROR, "
            "by registration.", labels=labels)
        split = CounterMetricFamily(
            "fastwamp_invocations", "Calls finished by each callee session of a shared "
            "registration (the load split), while it stays registered.",
            labels=[*labels, "callee"])
        callees = GaugeMetricFamily(
            "fastwamp_registration_callees", "Callees attached to each registration, with its "
            "invocation policy.", labels=[*labels, "invoke"])
        for name, rc in self.counters.realms.items():
            for (uri, match), totals in rc.calls().items():
                key = [name, uri, match]
                calls.add_metric(key, totals.calls)
                cumulative = list(zip(_BUCKET_BOUNDS, accumulate(totals.buckets), strict=True))
                latency.add_metric(key, cumulative, totals.seconds)
                for error, n in totals.errors.items():
                    errors.add_metric([*key, error], n)
            for reg in self.router.realms[name].dealer.registrations.values():
                if _internal(reg.uri):
                    continue
                key = [name, reg.uri, reg.match_name]
                callees.add_metric([*key, reg.policy_name], len(reg.group))
                if reg.stats is not None:
                    for callee, n in reg.stats.callees.items():
                        split.add_metric([*key, str(callee)], n)
        yield calls
        yield errors
        yield latency
        yield split
        yield callees


def cluster_metrics(link: Any) -> Iterator[Metric]:
    """This node's view of the cluster (a fastwamp.cluster.link.ClusterLink), read at
    scrape time: identity, link to NATS, peers, what it knows of them."""
    from ..cluster import wire

    node = link.node
    name = node.name
    info = GaugeMetricFamily("fastwamp_cluster_node_info", "This cluster node: its name and "
                             "region (always 1).", labels=["node", "region"])
    info.add_metric([name, node.region], 1)
    yield info
    nc = link.nc
    up = GaugeMetricFamily("fastwamp_cluster_link_up", "1 while this node is connected to "
                           "NATS, 0 while it is disconnected (reconnecting).", labels=["node"])
    up.add_metric([name], 1 if nc is not None and nc.is_connected else 0)
    yield up
    stats: dict[str, int] = getattr(nc, "stats", None) or {}
    for metric, key, text in (
        ("nats_messages_sent", "out_msgs", "Messages this node published to NATS."),
        ("nats_messages_received", "in_msgs", "Messages this node received from NATS."),
        ("nats_bytes_sent", "out_bytes", "Payload bytes this node published to NATS."),
        ("nats_bytes_received", "in_bytes", "Payload bytes this node received from NATS."),
        ("link_reconnects", "reconnects", "Times the NATS connection was re-established."),
    ):
        family = CounterMetricFamily(f"fastwamp_cluster_{metric}", text, labels=["node"])
        family.add_metric([name], stats.get(key, 0))
        yield family
    for metric, value, text in (
        ("link_disconnects", link.disconnects, "Times the NATS connection was lost."),
        ("dropped_messages", link.dropped, "Cluster messages that could not be published "
                                           "(NATS buffer full while disconnected)."),
    ):
        family = CounterMetricFamily(f"fastwamp_cluster_{metric}", text, labels=["node"])
        family.add_metric([name], value)
        yield family
    peers = GaugeMetricFamily("fastwamp_cluster_peer_nodes", "Other nodes this node hears "
                              "heartbeats from.", labels=["node"])
    peers.add_metric([name], len(node.peers))
    yield peers
    age = GaugeMetricFamily("fastwamp_cluster_peer_heartbeat_age_seconds", "Seconds since "
                            "each peer node was last heard from, with its region and whether "
                            "its state is in sync.", labels=["node", "peer", "region", "synced"])
    now = node.router.clock.time()
    kinds = {wire.SES: "sessions", wire.REG: "registrations", wire.SUB: "subscriptions"}
    remote: dict[tuple[str, str], int] = {}
    for peer in list(node.peers.values()):
        age.add_metric([name, peer.name, peer.region, "true" if peer.synced else "false"],
                       max(0.0, now - peer.last_seen))
        for entry in list(peer.entries.values()):
            counted = (kinds.get(entry[0], "?"), str(entry[1]))
            remote[counted] = remote.get(counted, 0) + 1
    yield age
    texts = {
        "sessions": "Sessions joined on other nodes, as this node knows them, by realm.",
        "registrations": "Callees on other nodes (one per session and registration), as "
                         "this node knows them, by realm.",
        "subscriptions": "Subscriptions other nodes have subscribers for (one per node and "
                         "subscription), as this node knows them, by realm.",
    }
    for kind, text in texts.items():
        gauge = GaugeMetricFamily(f"fastwamp_cluster_remote_{kind}", text,
                                  labels=["node", "realm"])
        for realm in node.router.realms:
            gauge.add_metric([name, realm], remote.get((kind, realm), 0))
        yield gauge


def _internal(uri: str) -> bool:
    """The router's own procedures (meta API), left out of per-registration series."""
    return uri.startswith(("wamp.", "fastwamp."))


def make_registry(router: Router, counters: RouterCounters,
                  cluster: Callable[[], Any] | None = None) -> CollectorRegistry:
    """A registry with the router's collector and the process collector; ``cluster``
    returns the cluster link, if any, when scraped (it starts after the registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RouterCollector(router, counters, cluster))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
