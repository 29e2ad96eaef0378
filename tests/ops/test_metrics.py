"""Metrics over a real router process: a scripted workload with Autobahn|Python peers,
then a scrape parsed with the Prometheus parser shows every series with its value."""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions
from interop.abclient import (
    RS_CBOR,
    RS_JSON,
    WS_JSON,
    WS_MSGPACK,
    async_test,
    barrier,
    connect,
    peers,
)
from prometheus_client.parser import text_string_to_metric_families

from .conftest import OpsRouter

pytestmark = pytest.mark.interop

PROCEDURE = "com.ops.work"
TOPIC = "com.ops.news"
FAILED = "com.ops.failed"


def scrape(router: OpsRouter) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` of one /metrics scrape."""
    status, content_type, body = router.get("/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


def value(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(tuple(sorted(labels.items())))


def test_scrape_after_a_workload_shows_every_series(ops_router_factory):
    router = ops_router_factory()
    assert router.get("/ready")[0] == 200
    callee_ids: list[int] = []

    @async_test(timeout=60)
    async def workload() -> None:
        async with peers(router.endpoints) as p:
            callees = [await p.connect(kind) for kind in (WS_JSON, RS_CBOR, WS_MSGPACK)]
            for callee in callees:
                def work(x: int) -> int:
                    if x % 4 == 0:
                        raise ApplicationError(FAILED, "multiple of four")
                    return x * 2

                await callee.register(work, PROCEDURE, options=RegisterOptions(invoke="roundrobin"))
                callee_ids.append(callee._session_id)
            pattern = await p.connect(RS_JSON)
            await pattern.register(lambda: "p", "com.ops.pat.",
                                   options=RegisterOptions(match="prefix"))
            caller = await p.connect(WS_JSON)
            for x in range(12):
                try:
                    assert await caller.call(PROCEDURE, x) == x * 2
                except ApplicationError as exc:
                    assert exc.error == FAILED and x % 4 == 0
            assert await caller.call("com.ops.pat.a") == "p"
            assert await caller.call("com.ops.pat.b") == "p"
            with pytest.raises(ApplicationError) as missing:
                await caller.call("com.ops.nobody")
            assert missing.value.error == "wamp.error.no_such_procedure"
            received: list[int] = []
            subscribers = [await p.connect(kind) for kind in (RS_JSON, WS_JSON)]
            for subscriber in subscribers:
                await subscriber.subscribe(received.append, TOPIC)
            publisher = await p.connect(RS_CBOR)
            for n in range(5):
                await publisher.publish(TOPIC, n, options=PublishOptions(acknowledge=True))
            for subscriber in subscribers:
                await barrier(subscriber)
            assert len(received) == 10

            s = scrape(router)
            assert value(s, "fastwamp_sessions", realm="realm1", transport="websocket") == 4
            assert value(s, "fastwamp_sessions", realm="realm1", transport="rawsocket") == 4
            reg = {"realm": "realm1", "procedure": PROCEDURE, "match": "exact"}
            assert value(s, "fastwamp_calls_total", **reg) == 12
            assert value(s, "fastwamp_call_errors_total", error=FAILED, **reg) == 3
            assert value(s, "fastwamp_call_duration_seconds_count", **reg) == 12
            assert value(s, "fastwamp_call_duration_seconds_bucket", le="+Inf", **reg) == 12
            assert value(s, "fastwamp_call_duration_seconds_sum", **reg) > 0
            for callee_id in callee_ids:  # roundrobin: 4 calls each
                assert value(s, "fastwamp_invocations_total", callee=str(callee_id), **reg) == 4
            assert value(s, "fastwamp_registration_callees", invoke="roundrobin", **reg) == 3
            assert value(s, "fastwamp_calls_total", realm="realm1", procedure="com.ops.pat.",
                         match="prefix") == 2
            # One call to com.ops.nobody, and two barriers (calls nobody registered).
            assert value(s, "fastwamp_router_errors_total", realm="realm1", request="CALL",
                         error="wamp.error.no_such_procedure") == 3
            assert value(s, "fastwamp_events_total", realm="realm1", topic=TOPIC,
                         match="exact") == 10
            assert value(s, "fastwamp_messages_received_total", type="CALL") == 17
            assert value(s, "fastwamp_messages_received_total", type="YIELD") == 11
            assert value(s, "fastwamp_messages_received_total", type="PUBLISH") == 5
            assert value(s, "fastwamp_messages_sent_total", type="INVOCATION") == 14
            assert value(s, "fastwamp_messages_sent_total", type="EVENT") == 10
            assert value(s, "fastwamp_messages_sent_total", type="WELCOME") == 8
            assert value(s, "fastwamp_subscriptions", realm="realm1") == 1
            assert value(s, "fastwamp_registrations", realm="realm1") == 2
            for transport in ("websocket", "rawsocket"):  # clients on both
                assert value(s, "fastwamp_bytes_received_total", transport=transport) > 0
                assert value(s, "fastwamp_bytes_sent_total", transport=transport) > 0
            assert not any(name.startswith("fastwamp_cluster_") for name in s)  # no cluster
            for name in ("overflow_dropped_messages", "overflow_disconnects", "limits_hit",
                         "refused_requests", "authentication_failures"):
                assert value(s, f"fastwamp_{name}_total") == 0, name
            assert value(s, "fastwamp_sessions_joined_total") == 8
            assert s["process_cpu_seconds_total"][()] > 0

            # A callee leaves: its share of the load split goes, the others stay.
            await callees[0].close()
            await barrier(caller)
            s = scrape(router)
            assert value(s, "fastwamp_invocations_total", callee=str(callee_ids[0]), **reg) is None
            assert value(s, "fastwamp_invocations_total", callee=str(callee_ids[1]), **reg) == 4
            assert value(s, "fastwamp_registration_callees", invoke="roundrobin", **reg) == 2
            assert value(s, "fastwamp_calls_total", **reg) == 12

    workload()


def test_authentication_failures_and_quota_refusals_are_counted(ops_router_factory):
    router = ops_router_factory(extra_config="""
[[realms]]
name = "closed"
allow_anonymous = false
authmethods = ["ticket"]
authenticator = "com.example.authenticate"
authenticator_methods = ["ticket"]

[[realms]]
name = "small"
max_calls_in_flight = 1
""")

    @async_test(timeout=30)
    async def refused() -> None:
        with pytest.raises(ConnectionError):
            await connect(router.endpoints, WS_JSON, realm="closed")
        callee = await connect(router.endpoints, RS_JSON, realm="small")
        caller = await connect(router.endpoints, WS_JSON, realm="small")
        loop = asyncio.get_running_loop()
        arrived, release = loop.create_future(), loop.create_future()

        async def slow() -> str:
            arrived.set_result(None)
            return await release

        await callee.register(slow, "com.ops.slow")
        first = asyncio.ensure_future(caller.call("com.ops.slow"))
        await arrived  # the caller has one call in flight: its limit
        with pytest.raises(ApplicationError) as over:
            await caller.call("com.ops.slow")
        assert over.value.error == "fastwamp.error.quota_exceeded"
        release.set_result("done")
        assert await first == "done"
        for session in (caller, callee):
            await session.close()

    refused()
    s = scrape(router)
    assert value(s, "fastwamp_authentication_failures_total") == 1
    assert value(s, "fastwamp_limits_hit_total") == 1
    assert value(s, "fastwamp_router_errors_total", realm="small", request="CALL",
                 error="fastwamp.error.quota_exceeded") == 1
    assert value(s, "fastwamp_calls_total", realm="small", procedure="com.ops.slow",
                 match="exact") == 1
