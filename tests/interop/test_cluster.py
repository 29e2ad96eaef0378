"""fastwamp nodes (processes) linked by a real nats-server, driven by Autobahn|Python.

Each test starts its own nats-server and nodes.  A remote registration or
subscription takes a heartbeat or so to be known on the other nodes: tests wait
for it by a condition (the registration visible through the meta API, or a probe
event arriving), never by sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import (
    CallOptions,
    CallResult,
    PublishOptions,
    RegisterOptions,
    SubscribeOptions,
)

from fastwamp.cluster.natsserver import NatsServer

from .abclient import RS_MSGPACK, WS_CBOR, WS_JSON, EventSink, async_test, barrier, connect
from .conftest import RouterProcess

pytestmark = [pytest.mark.interop, pytest.mark.cluster]

ACK = PublishOptions(acknowledge=True)


@pytest.fixture
def nats_url() -> Iterator[str]:
    server = NatsServer()
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def nodes(nats_url: str, router_factory: Callable[..., RouterProcess]
          ) -> Callable[[int], list[RouterProcess]]:
    """Start ``n`` nodes on the test's nats-server (stopped before it)."""
    def start(n: int, realm_tables: str = "") -> list[RouterProcess]:
        return [router_factory(extra_config=f"""
{realm_tables}
[cluster]
enabled = true
nats_urls = ["{nats_url}"]
node = "node{i}"
heartbeat_interval = 0.2
node_timeout = 1.0
""") for i in range(n)]
    return start


async def until_registered(session: Any, uri: str, timeout: float = 10.0) -> None:
    """Wait until ``uri`` has a registration on the node of ``session``."""
    async def poll() -> None:
        while await session.call("wamp.registration.match", uri) is None:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


async def until_subscribed(publisher: Any, sink: EventSink, topic: str,
                           timeout: float = 10.0) -> None:
    """Publish probes to ``topic`` until ``sink`` got one (the subscription is known)."""
    async def poll() -> None:
        while not sink.events:
            await publisher.publish(topic, "probe", options=ACK)
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)
    await barrier(publisher)


def test_pubsub_across_nodes(nodes: Callable[[int], list[RouterProcess]]) -> None:
    a, b = nodes(2)

    @async_test(60)
    async def run() -> None:
        assert a.endpoints and b.endpoints
        publisher = await connect(a.endpoints, WS_JSON)
        local = await connect(a.endpoints, RS_MSGPACK)
        remote = [await connect(b.endpoints, WS_CBOR) for _ in range(2)]
        topic, probe = "com.cluster.events", "com.cluster.probe"
        sinks = [EventSink() for _ in range(3)]
        for session, sink in zip([local, *remote], sinks, strict=True):
            await session.subscribe(sink, topic)
        probe_sink = EventSink()
        await remote[0].subscribe(probe_sink, probe)
        await until_subscribed(publisher, probe_sink, probe)

        for i in range(200):
            if i % 10 == 0:
                await publisher.publish(topic, i, options=ACK)
            else:
                publisher.publish(topic, i)
        for sink in sinks:
            events = await sink.wait(200, timeout=20)
            assert [args[0] for args, _ in events] == list(range(200))  # in order, once

        # eligible / exclude by session id, and exclude_me=False across nodes
        for sink in sinks:
            sink.events.clear()
        me = EventSink()
        await publisher.subscribe(me, topic)
        await publisher.publish(topic, "only-remote-0", options=PublishOptions(
            acknowledge=True, eligible=[remote[0]._session_id, local._session_id],
            exclude=[local._session_id]))
        await publisher.publish(topic, "all-but-remote-1", options=PublishOptions(
            acknowledge=True, exclude=[remote[1]._session_id], exclude_me=False))
        await sinks[1].wait(2)
        await sinks[0].wait(1)
        await me.wait(1)
        for session in (local, *remote, publisher):
            await barrier(session)
        assert [e[0][0] for e in sinks[1].events] == ["only-remote-0", "all-but-remote-1"]
        assert [e[0][0] for e in sinks[0].events] == ["all-but-remote-1"]
        assert sinks[2].events == []
        assert [e[0][0] for e in me.events] == ["all-but-remote-1"]
        for session in (publisher, local, *remote):
            await session.close()

    run()


def test_rpc_across_nodes(nodes: Callable[[int], list[RouterProcess]]) -> None:
    a, b = nodes(2)

    @async_test(60)
    async def run() -> None:
        assert a.endpoints and b.endpoints
        callee = await connect(b.endpoints, WS_CBOR)
        caller = await connect(a.endpoints, WS_JSON)
        seen: list[Any] = []

        async def add(x: int, y: int, details: Any = None) -> int:
            seen.append(details.caller)
            return x + y

        async def count(n: int, details: Any = None) -> str:
            for i in range(n):
                details.progress(i)
            return "done"

        def fail() -> None:
            raise ApplicationError("com.cluster.failed", "no", code=7)

        async def slow() -> str:
            await asyncio.sleep(30)
            return "late"

        await callee.register(add, "com.cluster.add", options=RegisterOptions(details_arg="details"))
        await callee.register(count, "com.cluster.count",
                              options=RegisterOptions(details_arg="details"))
        await callee.register(fail, "com.cluster.fail")
        await callee.register(slow, "com.cluster.slow")
        await until_registered(caller, "com.cluster.slow")

        assert await caller.call("com.cluster.add", 2, 3) == 5
        assert seen == [caller._session_id]  # caller disclosure across nodes
        results = await asyncio.gather(*(caller.call("com.cluster.add", i, i)
                                         for i in range(100)))
        assert results == [2 * i for i in range(100)]

        progress: list[int] = []
        assert await caller.call("com.cluster.count", 5, options=CallOptions(
            on_progress=progress.append)) == "done"
        assert progress == [0, 1, 2, 3, 4]

        with pytest.raises(ApplicationError) as ei:
            await caller.call("com.cluster.fail")
        assert ei.value.error == "com.cluster.failed" and ei.value.kwargs == {"code": 7}

        with pytest.raises(ApplicationError) as ei:
            await caller.call("com.cluster.slow", options=CallOptions(timeout=300))  # ms
        assert ei.value.error == "wamp.error.timeout"

        # single is enforced cluster-wide
        other = await connect(a.endpoints, RS_MSGPACK)
        with pytest.raises(ApplicationError) as ei:
            await other.register(fail, "com.cluster.fail")
        assert ei.value.error == "wamp.error.procedure_already_exists"
        for session in (caller, callee, other):
            await session.close()

    run()


def test_node_killed_during_calls(nodes: Callable[[int], list[RouterProcess]]) -> None:
    """Shared registration over two callee nodes; one is SIGKILLed while calls run:
    every call is answered once (result or wamp.error.canceled), later ones go to the
    survivor."""
    a, b, c = nodes(3)

    @async_test(90)
    async def run() -> None:
        assert a.endpoints and b.endpoints and c.endpoints
        callees = [await connect(node.endpoints, WS_CBOR) for node in (b, c)]
        served = {0: 0, 1: 0}

        def handler(index: int) -> Callable[..., Any]:
            async def work(i: int) -> tuple[int, int]:
                served[index] += 1
                await asyncio.sleep(0.01)
                return (index, i)
            return work

        for index, session in enumerate(callees):
            await session.register(handler(index), "com.cluster.work",
                                   options=RegisterOptions(invoke="roundrobin"))
        caller = await connect(a.endpoints, WS_JSON)
        await until_registered(caller, "com.cluster.work")
        while True:  # both callees known on node A
            count = await caller.call("wamp.registration.count_callees",
                                      await caller.call("wamp.registration.match",
                                                        "com.cluster.work"))
            if count == 2:
                break
            await asyncio.sleep(0.05)

        outcomes: list[str] = []

        async def one(i: int) -> None:
            try:
                index, echoed = await caller.call("com.cluster.work", i)
                assert echoed == i
                outcomes.append(f"ok{index}")
            except ApplicationError as exc:
                outcomes.append(exc.error)

        tasks = [asyncio.create_task(one(i)) for i in range(200)]
        await asyncio.sleep(0)
        while served[0] == 0:
            await asyncio.sleep(0.01)
        b.kill()  # SIGKILL in the middle of the calls
        _, pending = await asyncio.wait(tasks, timeout=20)
        assert not pending, f"{len(pending)} calls unanswered\n" + a.diagnostics() + \
            c.diagnostics()
        assert len(outcomes) == 200
        assert set(outcomes) <= {"ok0", "ok1", "wamp.error.canceled"}, set(outcomes)
        # later calls fail over to node c's callee
        while True:
            try:
                index, _ = await caller.call("com.cluster.work", 0)
            except ApplicationError as exc:
                assert exc.error == "wamp.error.canceled"
                continue
            if index == 1:
                assert [(await caller.call("com.cluster.work", i))[0] for i in range(5)] == \
                    [1] * 5
                break
        await caller.close()
        await callees[1].close()

    run()


async def until_true(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true (polled)."""
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


def test_meta_api_describes_the_cluster(nodes: Callable[..., list[RouterProcess]]) -> None:
    """Subscription and registration meta procedures on one node count and list the
    subscribers and callees of every node; meta events of sessions on other nodes arrive."""
    a, b, c = nodes(3)

    @async_test(60)
    async def run() -> None:
        assert a.endpoints and b.endpoints and c.endpoints
        watcher = await connect(a.endpoints, WS_JSON)
        joined, registered, subscribed = EventSink(), EventSink(), EventSink()
        await watcher.subscribe(joined, "wamp.session.on_join")
        await watcher.subscribe(registered, "wamp.registration.on_register")
        await watcher.subscribe(subscribed, "wamp.subscription.on_subscribe")
        # node A's interest in meta events is known once a session joining on B is seen
        async def join_seen() -> bool:
            probe = await connect(b.endpoints, RS_MSGPACK)
            await asyncio.sleep(0.1)
            await probe.close()
            return bool(joined.events)
        await until_true(join_seen)
        joined.events.clear()

        subscriber_b = await connect(b.endpoints, WS_CBOR)
        subscriber_c = await connect(c.endpoints, WS_JSON)
        sub_b = await subscriber_b.subscribe(lambda *a: None, "com.meta.topic")
        sub_c = await subscriber_c.subscribe(lambda *a: None, "com.meta.topic")
        callee_c = await connect(c.endpoints, RS_MSGPACK)
        reg_c = await callee_c.register(lambda: None, "com.meta.proc")
        await joined.wait(3)
        assert {e[0][0]["session"] for e in joined.events} == {
            subscriber_b._session_id, subscriber_c._session_id, callee_c._session_id}
        [(args, _)] = await registered.wait(1)
        assert args == (callee_c._session_id, reg_c.id)
        await subscribed.wait(2)
        assert {e[0] for e in subscribed.events} == {
            (subscriber_b._session_id, sub_b.id), (subscriber_c._session_id, sub_c.id)}

        everyone = sorted([subscriber_b._session_id, subscriber_c._session_id])

        async def both_listed() -> bool:
            sub = await watcher.call("wamp.subscription.lookup", "com.meta.topic")
            return sub is not None and sorted(await watcher.call(
                "wamp.subscription.list_subscribers", sub)) == everyone
        await until_true(both_listed)
        for sub_id in (sub_b.id, sub_c.id):  # another node's id is accepted too
            assert await watcher.call("wamp.subscription.count_subscribers", sub_id) == 2
            got = await watcher.call("wamp.subscription.get", sub_id)
            assert got["uri"] == "com.meta.topic"
        listed = await watcher.call("wamp.subscription.list")  # (and the watcher's three)
        assert len([i for i in listed["exact"] if i in (sub_b.id, sub_c.id)]) == 1
        assert await watcher.call("wamp.registration.list_callees", reg_c.id) == \
            [callee_c._session_id]
        for session in (watcher, subscriber_b, subscriber_c, callee_c):
            await session.close()

    run()


HISTORY_TABLES = """
[[realms.event_history]]
uri = "com.hist."
match = "prefix"
limit = 100
"""


def test_retained_and_history_across_nodes(nodes: Callable[..., list[RouterProcess]]) -> None:
    """A retained event published on A is served on B and C; history on any node holds
    the events published on every node, in each publisher's order."""
    a, b, c = nodes(3, HISTORY_TABLES)

    @async_test(60)
    async def run() -> None:
        assert a.endpoints and b.endpoints and c.endpoints
        pub_a = await connect(a.endpoints, WS_JSON)
        pub_b = await connect(b.endpoints, RS_MSGPACK)
        # every node knows the others once a call crosses from C to A
        callee = await connect(a.endpoints, WS_JSON)
        await callee.register(lambda: "ok", "com.hist.ready")
        reader = await connect(c.endpoints, WS_CBOR)
        await until_registered(reader, "com.hist.ready")
        async def all_nodes_known() -> bool:
            stats = await reader.call("fastwamp.router.get_stats")
            return stats["cluster_nodes"] == 2
        await until_true(all_nodes_known)
        for i in range(5):
            await pub_a.publish("com.hist.a", i, options=ACK)
            await pub_b.publish("com.hist.b", i, options=ACK)
        await pub_a.publish("com.retained", "old", options=PublishOptions(
            acknowledge=True, retain=True))
        await pub_a.publish("com.retained", "new", options=PublishOptions(
            acknowledge=True, retain=True))
        sub = await reader.subscribe(lambda *a: None, "com.hist.",
                                     options=SubscribeOptions(match="prefix"))

        async def read_history() -> list:
            result = await reader.call("wamp.subscription.get_events", sub.id)
            if result is None:  # one positional argument per event (see test_autobahn_history)
                return []
            return result.results if isinstance(result, CallResult) else [result]

        async def history_complete() -> bool:
            return len(await read_history()) == 10
        await until_true(history_complete)
        events = await read_history()
        for topic in ("com.hist.a", "com.hist.b"):
            assert [e["args"][0] for e in events if e["topic"] == topic] == list(range(5))
        for endpoints in (b.endpoints, c.endpoints):
            assert endpoints
            late = await connect(endpoints, WS_JSON)
            sink = EventSink()
            await late.subscribe(sink, "com.retained",
                                 options=SubscribeOptions(get_retained=True))
            [(args, _)] = await sink.wait(1)
            assert args == ("new",)
            await late.close()
        for session in (pub_a, pub_b, callee, reader):
            await session.close()

    run()


def test_wampy_guide_examples_across_three_nodes(
        nodes: Callable[..., list[RouterProcess]]) -> None:
    """The guide's RPC and pub/sub examples in wampy.js (tests/interop/js/cluster) with
    callers and callees, publishers and subscribers, on different nodes of three."""
    import os
    import subprocess

    from .test_wampy import JS_DIR, NODE_TIMEOUT, _node_major, node_with_modules

    node = node_with_modules()
    started = nodes(3)
    urls = [rp.endpoints.ws_url for rp in started if rp.endpoints]
    assert len(urls) == 3
    env = dict(os.environ, FASTWAMP_CLUSTER_WS_URLS=",".join(urls), FASTWAMP_WS_URL=urls[0],
               NO_COLOR="1")
    if _node_major(node) < 22:
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --experimental-websocket").strip()
    files = sorted(p.name for p in (JS_DIR / "cluster").glob("*.test.mjs"))
    assert files
    try:
        proc = subprocess.run([node, "--test", "--test-reporter=spec", *files],
                              cwd=JS_DIR / "cluster", env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, encoding="utf-8",
                              errors="replace", timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        pytest.fail(f"node --test did not finish within {NODE_TIMEOUT} s\n{out or ''}",
                    pytrace=False)
    output = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr.strip() else "")
    assert proc.returncode == 0, output
    counts = dict(re.findall(r"^\S*\s*(tests|pass|fail)\s+(\d+)\s*$", proc.stdout, re.MULTILINE))
    assert int(counts.get("tests", 0)) >= 24 and counts.get("fail") == "0", output


@contextlib.contextmanager
def running_workers(config_path: Any, n: int = 2) -> Iterator[tuple[Any, Any, list[str]]]:
    """``fastwamp --workers n --config config_path``: yields (process, endpoints, its stderr
    lines so far); stops it with SIGTERM and requires a clean exit."""
    import subprocess
    import sys
    import threading

    from .conftest import RouterEndpoints, _child_env

    proc = subprocess.Popen([sys.executable, "-m", "fastwamp", "--workers", str(n),
                             "--config", str(config_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_child_env())
    lines: list[str] = []
    errors: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "fastwamp: ready":
                ready.set()

    def read_errors() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            errors.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=read_errors, daemon=True).start()
    try:
        assert ready.wait(60), "workers did not start"
        urls = [re.sub(r"^fastwamp: listening on ", "", ln) for ln in lines
                if ln.startswith("fastwamp: listening on ")]
        yield proc, RouterEndpoints(ws_url=next(u for u in urls if u.startswith("ws")),
                                    rs_url=next(u for u in urls if u.startswith("tcp"))), errors
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(0.2)  # the stderr reader's last lines
    assert proc.returncode == 0, "\n".join(errors)
    assert not any("Traceback" in line for line in errors), "\n".join(errors)


def _worker_of(session: Any) -> int:
    """Which worker a session is on (the node partition in its session id)."""
    from fastwamp.cluster.node import SLOT_BITS

    return int(session._session_id >> (53 - SLOT_BITS))


def test_workers_share_the_ports_and_one_realm(tmp_path: Any) -> None:
    """``fastwamp --workers 2``: connections land on both workers (session ids carry the
    worker's partition), and a call and an event cross between them."""
    from .conftest import _config_text

    config = tmp_path / "workers.toml"
    config.write_text(_config_text(), encoding="utf-8")
    with running_workers(config) as (_, endpoints, _errors):
        @async_test(60)
        async def run() -> None:
            sessions = [await connect(endpoints, WS_JSON)]
            slots = {_worker_of(sessions[0])}
            while len(slots) < 2 and len(sessions) < 40:
                sessions.append(await connect(endpoints, RS_MSGPACK))
                slots.add(_worker_of(sessions[-1]))
            assert len(slots) == 2, "every connection landed on one worker"
            first = sessions[0]
            other = next(s for s in sessions if _worker_of(s) != _worker_of(first))
            await first.register(lambda x: x * 2, "com.workers.double")
            await until_registered(other, "com.workers.double")
            assert await other.call("com.workers.double", 21) == 42
            sink = EventSink()
            await first.subscribe(sink, "com.workers.topic")
            await until_subscribed(other, sink, "com.workers.topic")
            for s in sessions:
                await s.close()

        run()


def test_sighup_to_the_parent_reloads_every_worker(tmp_path: Any) -> None:
    """SIGHUP to ``fastwamp --workers 2`` reaches both workers: after the file stops
    allowing anonymous clients, no worker lets one join, sessions already joined stay, and
    no worker mistakes its own ports for moved listeners."""
    from .conftest import _config_text

    config = tmp_path / "workers.toml"
    config.write_text(_config_text(), encoding="utf-8")
    with running_workers(config) as (proc, endpoints, errors):
        @async_test(60)
        async def run() -> None:
            sessions = [await connect(endpoints, WS_JSON)]
            while len({_worker_of(s) for s in sessions}) < 2 and len(sessions) < 40:
                sessions.append(await connect(endpoints, RS_MSGPACK))
            assert len({_worker_of(s) for s in sessions}) == 2
            # Closed to anonymous clients (a realm open to nobody at all is refused
            # by the configuration check: ticket through an authenticator stays).
            config.write_text(_config_text().replace(
                "allow_anonymous = true",
                'allow_anonymous = false\nauthmethods = ["ticket"]\n'
                'authenticator = "com.example.authenticate"\n'
                'authenticator_methods = ["ticket"]'),
                              encoding="utf-8")
            proc.send_signal(signal.SIGHUP)

            async def reloaded() -> bool:
                return sum("reloaded the configuration" in line for line in errors) >= 2
            await until_true(reloaded, 20)
            for _ in range(20):  # spread by the kernel over both workers
                with pytest.raises(ConnectionError):
                    await connect(endpoints, RS_MSGPACK)
            for session in sessions:  # still joined, and they see each other
                assert await session.call("wamp.session.count") == len(sessions)
            for session in sessions:
                await session.close()

        run()
        assert not any("moved from" in line for line in errors), "\n".join(errors)
    assert sum("reloaded the configuration" in line for line in errors) == 2


def test_nats_restart_nodes_keep_serving_and_resynchronise(
        router_factory: Callable[..., RouterProcess]) -> None:
    """The only nats-server stops: each node keeps serving its own clients; when it is
    back, the nodes resynchronise (remote registrations return, once each)."""
    nats = NatsServer()
    url = nats.start()
    port = nats.port
    try:
        a, b = [router_factory(extra_config=f"""
[cluster]
enabled = true
nats_urls = ["{url}"]
node = "node{i}"
heartbeat_interval = 0.2
node_timeout = 1.0
""") for i in range(2)]

        @async_test(90)
        async def run() -> None:
            assert a.endpoints and b.endpoints
            remote_callee = await connect(b.endpoints, WS_CBOR)
            local_callee = await connect(a.endpoints, RS_MSGPACK)
            caller = await connect(a.endpoints, WS_JSON)
            await remote_callee.register(lambda: "b", "com.restart.remote",
                                         options=RegisterOptions(invoke="roundrobin"))
            await local_callee.register(lambda: "a", "com.restart.local")
            await until_registered(caller, "com.restart.remote")
            assert await caller.call("com.restart.remote") == "b"

            nats.kill()
            # node A keeps serving its own clients
            for _ in range(20):
                assert await caller.call("com.restart.local") == "a"
            # and, once node B counts as gone, says so for B's procedure
            while await caller.call("wamp.registration.match", "com.restart.remote"):
                await asyncio.sleep(0.05)
                assert await caller.call("com.restart.local") == "a"

            restarted = NatsServer(port=port)
            restarted.start()
            try:
                await until_registered(caller, "com.restart.remote", timeout=30)
                assert await caller.call("com.restart.remote") == "b"
                reg = await caller.call("wamp.registration.match", "com.restart.remote")
                assert await caller.call("wamp.registration.count_callees", reg) == 1
                for session in (caller, local_callee, remote_callee):
                    await session.close()
            finally:
                a.stop()
                b.stop()
                restarted.stop()

        run()
    finally:
        nats.stop()


def test_node_stops_cleanly_while_nats_is_down(
        router_factory: Callable[..., RouterProcess]) -> None:
    nats = NatsServer()
    url = nats.start()
    try:
        node = router_factory(extra_config=f"""
[cluster]
enabled = true
nats_urls = ["{url}"]
node = "lonely"
""")
        nats.kill()
        assert node.stop() == 0  # SIGTERM: exit 0, no traceback
    finally:
        nats.stop()


class CutOffNamespace:
    """A network namespace for one node, joined to this one by two veth links: one its
    clients use, one to the nats-server (which listens on an address of this namespace's
    loopback, reached from the node only over that link).  Taking that link down cuts
    the node off from NATS by the network: no FIN, no RST, packets just vanish, while
    its clients still reach it."""

    def __init__(self) -> None:
        import random
        import secrets

        tag = secrets.token_hex(3)
        self.name = f"fwpart{tag}"
        base = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        self.client_link, self.nats_link = f"fwc{tag}", f"fwn{tag}"
        self.client_host, self.node_address = f"{base}.1", f"{base}.2"
        self.nats_link_host, self.nats_link_node = f"{base}.5", f"{base}.6"
        #: Where the nats-server listens (on this namespace's loopback).
        self.nats_address = f"{base}.9"
        self.created = False

    @staticmethod
    def _ip(*args: str) -> None:
        import subprocess

        subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)

    def create(self) -> None:
        self._ip("netns", "add", self.name)
        self.created = True
        self._ip("-n", self.name, "link", "set", "lo", "up")
        for link, host, node in ((self.client_link, self.client_host, self.node_address),
                                 (self.nats_link, self.nats_link_host, self.nats_link_node)):
            self._ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p",
                     "netns", self.name)
            self._ip("addr", "add", f"{host}/30", "dev", link)
            self._ip("link", "set", link, "up")
            self._ip("-n", self.name, "addr", "add", f"{node}/30", "dev", f"{link}p")
            self._ip("-n", self.name, "link", "set", f"{link}p", "up")
        self._ip("addr", "add", f"{self.nats_address}/32", "dev", "lo")
        self._ip("-n", self.name, "route", "add", f"{self.nats_address}/32", "via",
                 self.nats_link_host)

    def cut(self, cut: bool) -> None:
        self._ip("link", "set", self.nats_link, "down" if cut else "up")

    def delete(self) -> None:
        import subprocess

        subprocess.run(["ip", "addr", "del", f"{self.nats_address}/32", "dev", "lo"],
                       capture_output=True, timeout=10)
        if self.created:  # (the veth pairs go with it)
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=10)


@pytest.fixture
def cut_off_namespace() -> Iterator[CutOffNamespace]:
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the partition test needs root and iproute2 (ip netns, veth)")
    space = CutOffNamespace()
    try:
        space.create()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        space.delete()
        detail = getattr(exc, "stderr", "") or exc
        pytest.skip(f"network namespaces are not permitted here: {detail}")
    try:
        yield space
    finally:
        space.delete()


def _start_node_in(space: CutOffNamespace, workdir: Any, config_text: str) -> tuple[Any, Any]:
    """Start ``python -m fastwamp`` in the namespace; return (process, endpoints) once it is
    ready (its clients reach it at the namespace's client address)."""
    import subprocess
    import sys
    import threading
    import time

    from .conftest import _LISTEN_RE, _READY_LINE, RouterEndpoints, _child_env

    path = workdir / "cut-off.toml"
    path.write_text(config_text, encoding="utf-8")
    proc = subprocess.Popen(["ip", "netns", "exec", space.name, sys.executable, "-m",
                             "fastwamp", "--config", str(path)], cwd=workdir, env=_child_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(workdir / "cut-off.err", "w"),  # noqa: SIM115
                            text=True, bufsize=1)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == _READY_LINE:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while not ready.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the cut-off node did not start: "
                        + (workdir / "cut-off.err").read_text(errors="replace")[-2000:])
    urls = [m.group(1) for m in map(_LISTEN_RE.match, lines) if m]
    local = [u.replace("0.0.0.0", space.node_address) for u in urls]
    return proc, RouterEndpoints(ws_url=next(u for u in local if u.startswith("ws")),
                                 rs_url=next(u for u in local if u.startswith("tcp")))


def test_node_cut_off_by_the_network(router_factory: Callable[..., RouterProcess],
                                     cut_off_namespace: CutOffNamespace, tmp_path: Any) -> None:
    """Node C loses NATS by the network (its link goes down) for about three seconds while
    a caller and a publisher on A keep working with a callee and a subscriber on B and C.
    Every call is answered exactly once (results, or wamp.error.canceled for those in
    flight to C when it was dropped), B's subscriber gets every acknowledged event in
    order, C keeps serving its own clients, and C is back in the rotation afterwards."""
    import signal

    from .conftest import _config_text

    space = cut_off_namespace
    nats = NatsServer(extra_args=("-a", space.nats_address))
    nats.start()
    url = f"nats://{space.nats_address}:{nats.port}"
    cluster = f"""
[cluster]
enabled = true
nats_urls = ["{url}"]
heartbeat_interval = 0.2
node_timeout = 1.0
"""
    a, b = (router_factory(extra_config=cluster + f'node = "node{i}"\n') for i in "ab")
    config_c = _config_text(extra=cluster + 'node = "nodec"\n',
                            realm_extra='admin_authroles = ["anonymous"]').replace(
        'host = "127.0.0.1"', 'host = "0.0.0.0"')
    proc_c, c = _start_node_in(space, tmp_path, config_c)
    try:
        @async_test(90)
        async def run() -> None:
            assert a.endpoints and b.endpoints
            caller = await connect(a.endpoints, WS_JSON)
            publisher = await connect(a.endpoints, RS_MSGPACK)
            callee_b = await connect(b.endpoints, WS_CBOR)
            callee_c = await connect(c, WS_JSON)
            local_c = await connect(c, RS_MSGPACK)
            shared = RegisterOptions(invoke="roundrobin")
            await callee_b.register(lambda i: ("b", i), "com.part.shared", options=shared)
            await callee_c.register(lambda i: ("c", i), "com.part.shared", options=shared)
            await callee_c.register(lambda i: i, "com.part.local")
            sink_b, sink_c, local_sink = EventSink(), EventSink(), EventSink()
            await callee_b.subscribe(sink_b, "com.part.events")
            await callee_c.subscribe(sink_c, "com.part.events")
            await callee_c.subscribe(local_sink, "com.part.local_events")

            async def callees() -> int:
                reg = await caller.call("wamp.registration.match", "com.part.shared")
                return await caller.call("wamp.registration.count_callees", reg) if reg else 0

            async def both() -> bool:
                return await callees() == 2
            await until_true(both, 20)
            await until_subscribed(publisher, sink_b, "com.part.events")
            await until_subscribed(publisher, sink_c, "com.part.events")
            sink_b.events.clear()

            answers: dict[int, list[Any]] = {}
            acked: list[int] = []
            local_results: list[int] = []
            stop = asyncio.Event()

            async def calls() -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        answers.setdefault(i, []).append(
                            tuple(await caller.call("com.part.shared", i)))
                    except ApplicationError as exc:
                        answers.setdefault(i, []).append(exc.error)
                    await asyncio.sleep(0.01)

            async def events() -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    await publisher.publish("com.part.events", i, options=ACK)
                    acked.append(i)
                    await asyncio.sleep(0.01)

            async def local() -> None:  # node C's own clients, through the cut
                i = 0
                while not stop.is_set():
                    i += 1
                    local_results.append(await local_c.call("com.part.local", i))
                    await local_c.publish("com.part.local_events", i, options=ACK)
                    await asyncio.sleep(0.01)

            tasks = [asyncio.ensure_future(t()) for t in (calls, events, local)]
            await asyncio.sleep(0.5)
            space.cut(True)
            local_before = len(local_results)

            async def c_dropped() -> bool:
                return await callees() == 1
            await until_true(c_dropped, 10)  # A dropped C after node_timeout
            await asyncio.sleep(1.0)
            assert len(local_results) > local_before + 20, "node C stopped serving its clients"
            space.cut(False)
            await until_true(both, 30)  # C reconnected and was resynchronised
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)

            print(f"calls {len(answers)}, events {len(acked)}, local {len(local_results)}, "
                  f"canceled {sum(1 for got in answers.values() if got[0] == 'wamp.error.canceled')}")
            # every call answered exactly once; only those in flight to C were canceled
            assert all(len(got) == 1 for got in answers.values()), answers
            outcomes = [got[0] for got in answers.values()]
            assert set(o for o in outcomes if not isinstance(o, tuple)) <= {
                "wamp.error.canceled"}, outcomes
            assert sum(1 for o in outcomes if isinstance(o, tuple)) >= len(outcomes) - 2
            assert any(o[0] == "c" for o in outcomes[-20:] if isinstance(o, tuple)), \
                "node C is not back in the rotation"
            # B's subscriber got every acknowledged event, once, in order
            await sink_b.wait(len(acked), timeout=20)
            await barrier(callee_b)
            assert [args[0] for args, _ in sink_b.events] == acked
            # node C's own subscriber got every local event
            await local_sink.wait(len(local_results), timeout=10)
            assert [args[0] for args, _ in local_sink.events] == local_results
            assert local_results == list(range(1, len(local_results) + 1))
            for session in (caller, publisher, callee_b, callee_c, local_c):
                await session.close()

        run()
    finally:
        proc_c.send_signal(signal.SIGTERM)
        try:
            proc_c.wait(15)
        except Exception:
            proc_c.kill()
            proc_c.wait()
        a.stop()
        b.stop()
        nats.stop()
    assert proc_c.returncode == 0, (tmp_path / "cut-off.err").read_text(errors="replace")


@pytest.mark.parametrize("direct", [True, False], ids=["direct-paths", "nats-py-api"])
def test_link_paths_carry_calls_and_events(nats_url: str, direct: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two in-process nodes on a real nats-server, with the link's direct NATS paths and
    with nats-py's public API only: a call, its progressive results and 200 events cross
    in order, and a node's goodbye is heard at once."""
    from fastwamp.cluster import link as link_module
    from fastwamp.config import ClusterConfig, Config, RealmConfig
    from fastwamp.router import Router
    from fastwamp.server import LoopScheduler
    from fastwamp.testing import LinkedPeer
    from fastwamp.wamp import messages as m

    if not direct:
        monkeypatch.setattr(link_module, "_direct_paths_supported", lambda nc: False)

    @async_test(30)
    async def run() -> None:
        loop = asyncio.get_running_loop()
        routers, links = [], []
        for name in ("la", "lb"):
            config = Config(realms=[RealmConfig("realm1")])
            config.cluster = ClusterConfig(enabled=True, nats_urls=[nats_url], node=name,
                                           heartbeat_interval=0.1, node_timeout=2.0)
            router = Router(config)
            router.scheduler = LoopScheduler(loop, router)
            router.call_soon = loop.call_soon
            routers.append(router)
            links.append(await link_module.start_cluster(config, router))
        assert [lk._direct for lk in links] == [direct, direct]
        callee, caller = LinkedPeer(routers[1]), LinkedPeer(routers[0])
        for peer in (callee, caller):
            assert peer.hello()[0] == m.WELCOME

        async def until(check: Callable[[], bool]) -> None:
            for _ in range(400):
                if check():
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("timed out")

        callee.send([m.REGISTER, 1, {}, "com.link.p"])
        callee.send([m.SUBSCRIBE, 2, {}, "com.link.t"])
        callee.take()
        await until(lambda: routers[0].realms["realm1"].dealer.match("com.link.p") is not None
                    and bool(links[0].node.bridges["realm1"].interest.match_all("com.link.t")))
        caller.send([m.CALL, 1, {"receive_progress": True}, "com.link.p", [1]])
        await until(lambda: bool(callee.received))
        invocation = callee.take_one()
        callee.send([m.YIELD, invocation[1], {"progress": True}, ["partial"]])
        callee.send([m.YIELD, invocation[1], {}, ["final"]])
        await until(lambda: len(caller.received) == 2)
        assert [msg[3] for msg in caller.take()] == [["partial"], ["final"]]
        for i in range(200):
            caller.send([m.PUBLISH, 10 + i, {}, "com.link.t", [i]])
        await until(lambda: len(callee.received) == 200)
        assert [msg[4] for msg in callee.take()] == [[i] for i in range(200)]
        # over the server's max_payload (1 MiB): not sent (as nats-py refuses it), counted
        caller.send([m.PUBLISH, 300, {}, "com.link.t", ["x" * (2 << 20)]])
        caller.send([m.PUBLISH, 301, {}, "com.link.t", ["after"]])
        await until(lambda: len(callee.received) == 1)
        assert callee.take()[0][4] == ["after"] and links[0].too_large == 1
        await links[1].close()  # BYE: node la drops lb's registration at once
        await until(lambda: routers[0].realms["realm1"].dealer.match("com.link.p") is None)
        await links[0].close()

    run()


def _monitor(server: NatsServer, path: str) -> Any:
    """One of a nats-server's monitoring endpoints, as JSON."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server.monitor_url}{path}", timeout=2) as response:
        return json.loads(response.read())


def _nats_cluster(n: int) -> list[NatsServer]:
    """Start ``n`` nats-servers forming one NATS cluster; return once each has routes to
    all the others."""
    servers: list[NatsServer] = []
    try:
        for _ in range(n):
            server = NatsServer(cluster_name="fastwamp-test", cluster_port=-1,
                                monitor_port=-1,
                                routes=tuple(s.cluster_url for s in servers))
            server.start()
            servers.append(server)
        deadline = time.monotonic() + 10
        while not all(len({r["remote_id"] for r in _monitor(s, "/routez")["routes"] or ()})
                      == n - 1 for s in servers):
            assert time.monotonic() < deadline, "the NATS cluster did not form"
            time.sleep(0.05)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def _server_of(servers: list[NatsServer], node: str) -> int:
    """The index of the nats-server that the fastwamp node ``node`` is connected to."""
    for index, server in enumerate(servers):
        if server.proc is None or server.proc.poll() is not None:
            continue
        for conn in _monitor(server, "/connz")["connections"] or ():
            if conn.get("name") == f"fastwamp {node}":
                return index
    raise AssertionError(f"node {node} is connected to no nats-server")


def test_nats_server_killed_in_a_nats_cluster(
        router_factory: Callable[..., RouterProcess]) -> None:
    """Three nats-servers form one NATS cluster; three nodes know all three URLs.  While
    a caller on A calls a callee on B (four calls at a time) and a publisher on C
    publishes acknowledged events to a subscriber on A, the nats-server A is connected
    to is SIGKILLed.  nats-py moves to another server within milliseconds: no node is
    dropped by another (node_timeout is never reached), calls and events go on, every
    answer is the right one, events arrive once and in order, and new registrations
    and calls across nodes work afterwards.

    Core NATS delivers at most once: what was inside the killed server (written to
    it, or routed to it for its clients, and not yet passed on), and what was
    published for a node before its subscriptions reached the surviving servers, is
    lost there.  The node-to-node channel numbers those messages and sends them again
    (``tests/cluster/test_channel.py``), so every call in flight gets its own result
    and every acknowledged event arrives."""
    servers = _nats_cluster(3)
    urls = ", ".join(f'"{s.url}"' for s in servers)
    started: list[RouterProcess] = []
    try:
        for name in "abc":
            started.append(router_factory(extra_config=f"""
[cluster]
enabled = true
nats_urls = [{urls}]
node = "node{name}"
heartbeat_interval = 0.2
node_timeout = 1.0
"""))
        a, b, c = started

        @async_test(25)
        async def run() -> None:
            assert a.endpoints and b.endpoints and c.endpoints
            caller = await connect(a.endpoints, WS_JSON)
            subscriber = await connect(a.endpoints, RS_MSGPACK)
            callee = await connect(b.endpoints, WS_CBOR)
            publisher = await connect(c.endpoints, WS_JSON)
            await callee.register(lambda i: i, "com.ha.echo")
            sink = EventSink()
            await subscriber.subscribe(sink, "com.ha.events")
            await until_registered(caller, "com.ha.echo")
            await until_subscribed(publisher, sink, "com.ha.events")
            sink.events.clear()

            answers: dict[int, list[Any]] = {}
            answered_at: dict[int, float] = {}
            slowest = [0.0]
            acked: list[int] = []
            acked_at: dict[int, float] = {}
            stop = asyncio.Event()
            bounded = CallOptions(timeout=2000)  # ms: a lost call is answered by A's timer

            async def calls(lane: int) -> None:
                i = lane
                while not stop.is_set():
                    i += 4
                    started = time.monotonic()
                    try:
                        answers.setdefault(i, []).append(
                            await caller.call("com.ha.echo", i, options=bounded))
                    except ApplicationError as exc:
                        answers.setdefault(i, []).append(exc.error)
                    answered_at[i] = time.monotonic()
                    if answers[i] == [i]:
                        slowest[0] = max(slowest[0], answered_at[i] - started)
                    await asyncio.sleep(0.005)

            async def events() -> None:
                i = 0
                while not stop.is_set():
                    i += 1
                    await publisher.publish("com.ha.events", i, options=ACK)
                    acked.append(i)
                    acked_at[i] = time.monotonic()
                    await asyncio.sleep(0.005)

            tasks = [asyncio.ensure_future(calls(lane)) for lane in range(4)]
            tasks.append(asyncio.ensure_future(events()))
            await asyncio.sleep(0.5)
            where = [_server_of(servers, f"node{n}") for n in "abc"]
            victim = where[0]
            servers[victim].kill()  # SIGKILL
            killed = time.monotonic()
            await asyncio.sleep(3.0)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)
            assert _server_of(servers, "nodea") != victim

            # every call answered once, with its own result, or (lost in the killed
            # server) by the caller's node's timer
            assert all(len(got) == 1 for got in answers.values()), answers
            # ... with its result: what the dead server held is sent again between nodes
            failed = {i: got[0] for i, got in answers.items() if got != [i]}
            assert not failed, (killed, failed, {i: answered_at[i] for i in failed})
            ok_after = [i for i, got in answers.items()
                        if got == [i] and answered_at[i] > killed + 0.5]
            assert len(ok_after) > 100, "calls did not go on after the server was killed"
            # acknowledged events: every one, once, in order
            with contextlib.suppress(AssertionError):
                await sink.wait(len(acked), timeout=3)
            await barrier(subscriber)
            got = [args[0] for args, _ in sink.events]
            assert got == sorted(set(got)) and set(got) <= set(acked), got
            missing = sorted(set(acked) - set(got))
            assert not missing, (killed, {i: acked_at[i] for i in missing})
            assert [i for i in got if acked_at[i] > killed + 0.5], "no event after the kill"
            print(f"nodes on nats-servers {where}, killed {victim}; calls {len(answers)} "
                  f"(slowest answered {slowest[0] * 1000:.0f} ms), events {len(acked)}; "
                  f"lost calls {sorted(failed)}, lost events {missing}")

            # afterwards: a new registration on C, called from A and B
            await publisher.register(lambda x: x * 2, "com.ha.double")
            await until_registered(caller, "com.ha.double")
            assert await caller.call("com.ha.double", 21) == 42
            assert await callee.call("com.ha.double", 4) == 8
            assert await publisher.call("com.ha.echo", "again") == "again"
            for session in (caller, subscriber, callee, publisher):
                await session.close()

        run()
        for node in started:  # no node was dropped by another
            assert "not heard from" not in node.stderr_text(), node.diagnostics()
    finally:
        for node in started:
            node.stop()
        for server in servers:
            server.stop()

