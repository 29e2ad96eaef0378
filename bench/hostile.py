"""Hostile-load benchmark: what one misbehaving client does to everyone else.

For every scenario this starts a fresh fastwamp router process (``python -m
fastwamp --config FILE``, RawSocket + MessagePack on 127.0.0.1, OS-chosen port),
then

* a **bystander** process: a well-behaved callee (``bench.hostile.echo``) and a
  caller that sends one CALL to it every ``--interval-ms`` (open loop: a late
  answer does not delay the next call, so a stall shows in every call it
  delays; no new call while ``--max-in-flight`` are unanswered, which keeps it
  below the router's per-session quota) and records the latency of each,
  ERRORs, and calls not answered (answers later than ``--call-timeout`` count
  as failed too);
* a **flood** process: the hostile client(s) of the scenario, which set up,
  flood for ``--duration`` seconds, then close their connections (abruptly);

and samples the router's RSS (its resident set size, through psutil) and CPU time
every 100 ms.  Per scenario it reports the bystander's calls, p50/p99/max
latency and failures, the router's RSS before the flood, at its peak and after
(``--settle`` seconds after the flood stopped, once the router answers again),
and the router's CPU use during the flood.  Targets (issue 7): bystander p99
<= 50 ms and no failed call while flooded, RSS back within 10 % of its start.

Scenarios (``--scenarios``, comma-separated, default all):

  publish_flood     unacknowledged PUBLISHes, no subscribers, as fast as the socket takes
  idle_subscribers  unacknowledged PUBLISHes to one topic with ``--subscribers`` (2,000)
                    sessions that subscribed and then stopped reading
  slow_callee       CALLs as fast as possible to a callee that answers after 1 s
  subscribe_flood   SUBSCRIBEs to distinct topics as fast as possible, then disconnect
  count_filter      wamp.session.count with a ``--filter-entries`` (1,000,000) entry list,
                    again and again
  teardown          a session holding ``--subscriptions`` (200,000) subscriptions disconnects

Where a scenario needs more than the router's defaults allow, the bench raises
that limit in the router's configuration and says so (column "config").

Everything is bounded: each flood stops after ``--duration``; the router is
killed (SIGKILL) if its RSS passes ``--rss-limit-mb`` or if it does not answer
within ``--recover-timeout`` seconds after the flood; every process started
here is stopped before the next scenario and on exit (also on Ctrl-C or
SIGTERM).  Only 127.0.0.1 is used.

    python bench/hostile.py                                  # all scenarios, 10 s each
    python bench/hostile.py --scenarios publish_flood,slow_callee --duration 5
    python bench/hostile.py --json out.json                  # also every figure as JSON
    python bench/hostile.py --json -                         # JSON on stdout instead of the table
    python bench/hostile.py --router-src /tmp/fw-export      # the router from another tree
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import msgpack
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e  # noqa: E402
import loadgen  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
HOST = "127.0.0.1"
REALM = "realm1"

ECHO = "bench.hostile.echo"
SLOW = "bench.hostile.slow"
FLOOD_TOPIC = "bench.hostile.flood"
IDLE_TOPIC = "bench.hostile.idle"
SUB_PREFIX = "bench.hostile.sub."

#: Bystander call outcomes.
PENDING, OK, FAILED, LOST = 0, 1, 2, 3

_packb = msgpack.packb


# ---------------------------------------------------------------------------
# Scenarios


@dataclass
class Scenario:
    name: str
    description: str
    #: Router configuration beyond the bench's base: top-level keys, and realm keys.
    top: dict[str, Any] = field(default_factory=dict)
    realm: dict[str, Any] = field(default_factory=dict)


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    return {
        s.name: s
        for s in [
            Scenario(
                "publish_flood",
                "1 client floods unacknowledged PUBLISHes, no subscribers",
            ),
            Scenario(
                "idle_subscribers",
                f"1 client floods unacknowledged PUBLISHes to {args.subscribers:,} "
                "subscribers that stopped reading",
                # Every connection comes from 127.0.0.1.
                top={"max_connections_per_address": args.subscribers + 100},
            ),
            Scenario("slow_callee", "1 client floods CALLs to a callee answering after 1 s"),
            Scenario(
                "subscribe_flood",
                "1 client floods SUBSCRIBEs to distinct topics, then disconnects",
            ),
            Scenario(
                "count_filter",
                f"1 client calls wamp.session.count with a {args.filter_entries:,}-entry "
                "filter list, repeatedly",
            ),
            Scenario(
                "teardown",
                f"a session holding {args.subscriptions:,} subscriptions disconnects",
                # The default cap (1,000 per session) would refuse the set-up; this
                # measures tearing down a large session, not the cap.
                realm={"max_subscriptions_per_session": args.subscriptions + 1000},
            ),
        ]
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def config_text(scenario: Scenario, log_level: str) -> str:
    lines = [f"log_level = {_toml_value(log_level)}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in scenario.top.items()]
    lines += ["", "[[realms]]", f"name = {_toml_value(REALM)}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in scenario.realm.items()]
    lines += [
        "",
        "[[listeners]]",
        'type = "rawsocket"',
        f"host = {_toml_value(HOST)}",
        "port = 0",
        'serializers = ["msgpack"]',
        "",
    ]
    return "\n".join(lines)


def config_note(scenario: Scenario) -> str:
    items = {**scenario.top, **scenario.realm}
    return ", ".join(f"{k}={v}" for k, v in items.items()) or "defaults"


# ---------------------------------------------------------------------------
# Client sessions (lean RawSocket + MessagePack, built on loadgen.WampSession)


class Writer(loadgen.WampSession):
    """A session that knows when its socket takes no more (flow control)."""

    def __init__(self) -> None:
        super().__init__()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.received = 0
        self.errors: dict[str, int] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=1 << 20)  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.can_write.set()

    def on_error(self, msg: list[Any]) -> None:
        self.received += 1
        self.errors[msg[4]] = self.errors.get(msg[4], 0) + 1
        super().on_error(msg)

    def on_result(self, msg: list[Any]) -> None:
        self.received += 1
        super()._on_reply(msg)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class SlowCallee(loadgen.WampSession):
    """Answers every INVOCATION after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.invocations = 0

    def on_invocation(self, msg: list[Any]) -> None:
        self.invocations += 1
        asyncio.get_running_loop().call_later(self.delay, self._answer, msg[1])

    def _answer(self, request: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send([loadgen.YIELD, request, {}, ["late"]])
            self.flush()


class IdleSubscriber(loadgen.WampSession):
    """Subscribes, then stops reading its socket."""


class BystanderCaller(loadgen.WampSession):
    """One CALL per tick; records send time, latency and outcome of every call."""

    def __init__(self, max_in_flight: int) -> None:
        super().__init__()
        self.max_in_flight = max_in_flight
        #: Ticks on which no call went out because max_in_flight calls were outstanding.
        self.skipped_ns = array("q")
        self.sent_ns = array("q")
        self.rtt_ns = array("q")
        self.status = array("b")
        self.error_uris: dict[str, int] = {}
        self._index: dict[int, int] = {}
        self._now = 0
        self._head = b"\x95\x30"  # [48, Request, {}, Procedure, Args]
        self._tail = _packb({}) + _packb(ECHO) + _packb(["ping"])

    def call(self) -> None:
        if len(self._index) >= self.max_in_flight:
            self.skipped_ns.append(time.monotonic_ns())
            return
        self.sent_ns.append(time.monotonic_ns())
        self.rtt_ns.append(-1)
        transport = self.transport
        if self.closed.done() or transport is None or transport.is_closing():
            self.status.append(LOST)
            return
        self.status.append(PENDING)
        request = self.next_request()
        self._index[request] = len(self.status) - 1
        self._put(self._head + _packb(request) + self._tail)
        self.flush()

    def before_batch(self) -> None:
        self._now = time.monotonic_ns()

    def _done(self, request: int, outcome: int) -> None:
        index = self._index.pop(request, None)
        if index is not None:
            self.rtt_ns[index] = self._now - self.sent_ns[index]
            self.status[index] = outcome

    def on_result(self, msg: list[Any]) -> None:
        self._done(msg[1], OK)

    def on_error(self, msg: list[Any]) -> None:
        if msg[1] == loadgen.CALL:
            self.error_uris[msg[4]] = self.error_uris.get(msg[4], 0) + 1
            self._done(msg[2], FAILED)
        else:
            super().on_error(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for index in self._index.values():
            self.status[index] = LOST
        self._index.clear()


# ---------------------------------------------------------------------------
# Worker processes


async def _bystander(port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    callee = await loadgen.connect(HOST, port, loadgen.CalleeSession)
    await callee.register(ECHO)
    caller = await loadgen.connect(HOST, port, lambda: BystanderCaller(spec["max_in_flight"]))
    assert isinstance(caller, BystanderCaller)
    conn.send(("ready", {}))
    await loadgen._recv(conn)  # "go"
    loop = asyncio.get_running_loop()
    interval = spec["interval"]
    stop = loop.create_task(loadgen._recv(conn))
    next_at = time.monotonic()
    while not stop.done():
        caller.call()
        next_at += interval
        now = time.monotonic()
        if next_at < now:  # this process fell behind: skip the missed ticks
            next_at = now + interval
        await asyncio.wait({stop}, timeout=next_at - now)
    for session in (caller, callee):
        session.close()
    return {
        "sent_ns": caller.sent_ns.tobytes(),
        "rtt_ns": caller.rtt_ns.tobytes(),
        "status": caller.status.tobytes(),
        "skipped_ns": caller.skipped_ns.tobytes(),
        "error_uris": caller.error_uris,
        "callee_lost": callee.closed.done(),
    }


async def _flood_writes(
    session: Writer, make_batch: Callable[[], bytes], end: float
) -> int:
    """Write batches as fast as the socket takes them until ``end``; returns batches."""
    batches = 0
    while not session.closed.done():
        left = end - time.monotonic()
        if left <= 0:
            break
        if not session.can_write.is_set():
            try:
                await asyncio.wait_for(session.can_write.wait(), left)
            except asyncio.TimeoutError:
                break
            continue
        assert session.transport is not None
        session.transport.write(make_batch())
        batches += 1
        await asyncio.sleep(0)
    return batches


class _Counter:
    def __init__(self) -> None:
        self.request = 0


def _publish_batch(topic: str, n: int, payload: int, counter: _Counter) -> Callable[[], bytes]:
    head = b"\x95\x10"  # [16, Request, {}, Topic, Args]
    tail = _packb({}) + _packb(topic) + _packb(["x" * payload])
    word = loadgen._pack_word

    def batch() -> bytes:
        parts = []
        for _ in range(n):
            counter.request += 1
            body = head + _packb(counter.request) + tail
            parts.append(word(len(body)))
            parts.append(body)
        return b"".join(parts)

    return batch


async def _flood(port: int, spec: dict[str, Any], conn: Any) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    name = spec["scenario"]
    counter = _Counter()
    stats: dict[str, Any] = {}
    closing: list[loadgen.WampSession] = []

    async def writer() -> Writer:
        session = await loadgen.connect(HOST, port, Writer)
        assert isinstance(session, Writer)
        closing.append(session)
        return session

    # -- set-up ---------------------------------------------------------------
    flooder = await writer() if name != "teardown" else None
    idle: list[loadgen.WampSession] = []
    slow: SlowCallee | None = None
    if name == "idle_subscribers":
        idle = await loadgen.connect_many(HOST, port, IdleSubscriber, spec["subscribers"])
        closing += idle
        for start in range(0, len(idle), 100):
            await asyncio.gather(*(s.subscribe(IDLE_TOPIC) for s in idle[start : start + 100]))
        for s in idle:
            assert s.transport is not None
            s.transport.pause_reading()
    elif name == "slow_callee":
        session = await loadgen.connect(HOST, port, lambda: SlowCallee(1.0))
        assert isinstance(session, SlowCallee)
        slow = session
        closing.append(slow)
        await slow.register(SLOW)
    elif name == "count_filter":
        roles = [f"role{i}" for i in range(spec["filter_entries"])]
        count_tail = _packb({}) + _packb("wamp.session.count") + _packb([roles])
        del roles
        stats["call_bytes"] = len(count_tail) + 10
    elif name == "teardown":
        holder = await writer()
        total = spec["subscriptions"]
        for start in range(0, total, 1000):
            futs = [
                holder.request(loadgen.SUBSCRIBE, {}, f"{SUB_PREFIX}{i}")
                for i in range(start, min(total, start + 1000))
            ]
            holder.flush()
            await asyncio.gather(*futs)
        stats["subscriptions_held"] = total
    conn.send(("ready", {}))
    _, end = (await loadgen._recv(conn))[1:]

    # -- flood ----------------------------------------------------------------
    t0 = time.monotonic()
    if name in ("publish_flood", "idle_subscribers"):
        assert flooder is not None
        topic = FLOOD_TOPIC if name == "publish_flood" else IDLE_TOPIC
        batch = _publish_batch(topic, 200, spec["payload"], counter)
        await _flood_writes(flooder, batch, end)
        stats["publishes_sent"] = counter.request
    elif name == "slow_callee":
        assert flooder is not None
        head, tail = b"\x95\x30", _packb({}) + _packb(SLOW) + _packb([])
        word = loadgen._pack_word

        def calls() -> bytes:
            parts = []
            for _ in range(200):
                counter.request += 1
                body = head + _packb(counter.request) + tail
                parts.append(word(len(body)))
                parts.append(body)
            return b"".join(parts)

        await _flood_writes(flooder, calls, end)
        stats["calls_sent"] = counter.request
        stats["answers"] = flooder.received
        stats["invocations_at_slow_callee"] = slow.invocations if slow else 0
    elif name == "subscribe_flood":
        assert flooder is not None
        head, opts = b"\x94\x20", _packb({})  # [32, Request, {}, Topic]
        word = loadgen._pack_word

        def subscribes() -> bytes:
            parts = []
            for _ in range(200):
                counter.request += 1
                body = head + _packb(counter.request) + opts + _packb(
                    f"{SUB_PREFIX}{counter.request}"
                )
                parts.append(word(len(body)))
                parts.append(body)
            return b"".join(parts)

        await _flood_writes(flooder, subscribes, end)
        stats["subscribes_sent"] = counter.request
    elif name == "count_filter":
        assert flooder is not None
        done = 0
        while time.monotonic() < end and not flooder.closed.done():
            counter.request += 1
            fut = asyncio.get_running_loop().create_future()
            flooder._pending[counter.request] = fut
            body = b"\x95\x30" + _packb(counter.request) + count_tail
            flooder._put(body)
            flooder.flush()
            try:
                await asyncio.wait_for(fut, max(0.01, end - time.monotonic()))
                done += 1
            except loadgen.WampError:
                done += 1
            except (asyncio.TimeoutError, ConnectionError):
                break
        stats["count_calls_sent"] = counter.request
        stats["count_calls_answered"] = done
    elif name == "teardown":
        pass  # the disconnect below is the whole scenario
    stats["flood_seconds"] = round(time.monotonic() - t0, 2)
    if flooder is not None:
        stats["replies_received"] = flooder.received
        if flooder.errors:
            stats["error_uris"] = dict(flooder.errors)
        stats["flooder_closed_by_router"] = flooder.closed.done()
    # -- disconnect, abruptly -------------------------------------------------------
    for session in closing:
        if session.transport is not None:
            session.transport.abort()
    await asyncio.sleep(0.1)
    return stats


_ROLES = {"bystander": _bystander, "flood": _flood}


def _worker(role: str, port: int, spec: dict[str, Any], conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    runner: Callable[..., Any] = loadgen.uvloop.run if loadgen.uvloop else asyncio.run
    try:
        result = runner(_ROLES[role](port, spec, conn))
    except BaseException as exc:
        try:
            conn.send(("error", f"{role}: {type(exc).__name__}: {exc}"))
        except OSError:
            pass
        raise SystemExit(1)
    conn.send(("result", result))


class Workers:
    """Forked worker processes; whatever is left is killed on close()."""

    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context("fork")
        self.procs: list[tuple[multiprocessing.process.BaseProcess, Any]] = []

    def start(self, role: str, port: int, spec: dict[str, Any]) -> Any:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=_worker, args=(role, port, spec, child), name=f"hostile-{role}"
        )
        proc.daemon = True
        proc.start()
        child.close()
        self.procs.append((proc, parent))
        return parent

    @staticmethod
    def expect(conn: Any, what: str, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise RuntimeError(f"worker gave no {what!r} within {timeout:.0f} s")
        try:
            tag, payload = conn.recv()
        except EOFError:
            raise RuntimeError(f"worker exited before sending {what!r}") from None
        if tag == "error":
            raise RuntimeError(payload)
        return payload

    def close(self) -> None:
        for proc, conn in self.procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self.procs.clear()


# ---------------------------------------------------------------------------
# The router process and its samples


class HostileRouter(e2e.Router):
    name = "fastwamp"

    def __init__(self, scenario: Scenario, src: Path, log_level: str) -> None:
        super().__init__()
        self.scenario = scenario
        self.src = src
        self.log_level = log_level
        self.exit_note = ""

    def start(self, timeout: float) -> None:
        config = self.workdir / "fastwamp.toml"
        config.write_text(config_text(self.scenario, self.log_level))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.src), env.get("PYTHONPATH")]))
        self._spawn([sys.executable, "-m", "fastwamp", "--config", str(config)], self.src, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            text = self.log_path.read_text(errors="replace")
            match = re.search(r"fastwamp: listening on tcp://[^\s:]+:(\d+)", text)
            if match and "fastwamp: ready" in text:
                self.port = int(match.group(1))
                return
            time.sleep(0.05)
        raise RuntimeError(f"fastwamp not ready after {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def exited(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def stop_and_note(self) -> None:
        """SIGTERM, 10 s, SIGKILL; note how the router ended."""
        proc = self.proc
        if proc is None:
            return
        rc = proc.poll()
        if rc is not None:
            if not self.exit_note:
                self.exit_note = f"router died ({_status(rc)})"
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=10)
                if rc != 0:
                    self.exit_note = self.exit_note or f"exit on SIGTERM: {_status(rc)}"
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.exit_note = self.exit_note or "ignored SIGTERM for 10 s: SIGKILLed"
        self.stop()

    def log_bytes(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def tracebacks(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count("Traceback (most recent")
        except OSError:
            return 0


def _status(rc: int) -> str:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"


def read_rss_kb(pid: int) -> int | None:
    try:
        return psutil.Process(pid).memory_info().rss // 1024
    except psutil.Error:
        return None


def read_cpu_s(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


class Sampler(threading.Thread):
    """Samples the router's RSS and CPU every ``period`` seconds; kills it past a limit."""

    def __init__(self, router: HostileRouter, rss_limit_kb: int, period: float = 0.1) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.router = router
        self.pid = router.pid
        self.rss_limit_kb = rss_limit_kb
        self.period = period
        self.samples: list[tuple[float, int, float]] = []  # (monotonic, rss kB, cpu s)
        self.killed_for_rss = False
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss, cpu = read_rss_kb(self.pid), read_cpu_s(self.pid)
            if rss is not None and cpu is not None:
                self.samples.append((time.monotonic(), rss, cpu))
                if rss > self.rss_limit_kb and not self.killed_for_rss:
                    self.killed_for_rss = True
                    self.router.exit_note = (
                        f"RSS {rss / 1024:,.0f} MB > limit: SIGKILLed"
                    )
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    def at(self, t: float) -> tuple[int, float] | None:
        """The last (rss kB, cpu s) sampled at or before ``t``."""
        best = None
        for when, rss, cpu in self.samples:
            if when > t:
                break
            best = (rss, cpu)
        return best

    def peak_kb(self, t0: float, t1: float) -> int | None:
        values = [rss for when, rss, _ in self.samples if t0 <= when <= t1]
        return max(values) if values else None


def probe(port: int, timeout: float) -> bool:
    """True if the router answers a wamp.session.count on a new session within ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:

            def recv_exactly(n: int) -> bytes:
                data = b""
                while len(data) < n:
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    chunk = sock.recv(n - len(data))
                    if not chunk:
                        raise ConnectionError("closed")
                    data += chunk
                return data

            def send(msg: list[Any]) -> None:
                body = _packb(msg)
                sock.sendall(len(body).to_bytes(4, "big") + body)

            def recv() -> list[Any]:
                while True:
                    head = recv_exactly(4)
                    body = recv_exactly(int.from_bytes(head[1:], "big"))
                    if head[0] == 0:
                        return msgpack.unpackb(body)

            sock.sendall(loadgen.HANDSHAKE)
            if recv_exactly(4)[0] != 0x7F:
                return False
            send([loadgen.HELLO, REALM, {"roles": {"caller": {}}}])
            if recv()[0] != loadgen.WELCOME:
                return False
            send([loadgen.CALL, 1, {}, "wamp.session.count"])
            while True:
                msg = recv()
                if msg[0] in (loadgen.RESULT, loadgen.ERROR):
                    send([loadgen.GOODBYE, {}, "wamp.close.normal"])
                    return True
    except (OSError, ConnectionError, ValueError):
        return False


# ---------------------------------------------------------------------------
# One scenario


@dataclass
class Outcome:
    scenario: str
    config: str
    bystander_calls: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    errors: int = 0
    slow_over_timeout: int = 0
    lost: int = 0
    failed: int = 0
    skipped_ticks: int = 0
    baseline_p50_ms: float | None = None
    rss_before_mb: float | None = None
    rss_peak_mb: float | None = None
    rss_after_mb: float | None = None
    router_cpu_flood_pct: float | None = None
    router_cpu_after_pct: float | None = None
    recovered_s: float | None = None
    settle_s: float = 0.0
    router_log_bytes: int = 0
    router_tracebacks: int = 0
    router_end: str = ""
    flood: dict[str, Any] = field(default_factory=dict)
    error_uris: dict[str, int] = field(default_factory=dict)
    problem: str = ""

    def meets_target(self) -> bool:
        return (
            not self.problem
            and not self.router_end
            and self.failed == 0
            and self.p99_ms is not None
            and self.p99_ms <= 50
            and self.rss_before_mb is not None
            and self.rss_after_mb is not None
            and self.rss_after_mb <= 1.1 * self.rss_before_mb
        )


def _pct(values: list[int], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6


def run_one(scenario: Scenario, args: argparse.Namespace) -> Outcome:
    out = Outcome(scenario.name, config_note(scenario), settle_s=args.settle)
    router = HostileRouter(scenario, args.router_src, args.log_level)
    if args.keep_logs:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        router.keep_log = args.keep_logs / f"{scenario.name}.log"
    workers = Workers()
    sampler: Sampler | None = None
    spec = {
        "scenario": scenario.name,
        "subscribers": args.subscribers,
        "payload": args.payload,
        "filter_entries": args.filter_entries,
        "subscriptions": args.subscriptions,
    }
    try:
        router.start(30)
        by = workers.start(
            "bystander",
            router.port,
            {"interval": args.interval_ms / 1000, "max_in_flight": args.max_in_flight},
        )
        Workers.expect(by, "ready", 30)
        fl = workers.start("flood", router.port, spec)
        Workers.expect(fl, "ready", 300)
        sampler = Sampler(router, args.rss_limit_mb * 1024)
        sampler.start()
        by.send(("go",))
        time.sleep(args.baseline)
        t_start = time.monotonic()
        t_end = t_start + args.duration
        fl.send(("go", t_start, t_end))
        flood_stats = Workers.expect(fl, "result", args.duration + 60)
        out.flood = flood_stats
        t_flood_over = max(t_end, time.monotonic())
        time.sleep(max(0.0, t_flood_over + args.settle - time.monotonic()))
        # "After": once the router answers again, at least --settle s after the flood.
        recover_deadline = t_flood_over + args.settle + args.recover_timeout
        answered = False
        while router.exited() is None and time.monotonic() < recover_deadline:
            if probe(router.port, min(2.0, max(0.1, recover_deadline - time.monotonic()))):
                answered = True
                break
        t_after = time.monotonic()
        if answered:
            out.recovered_s = round(t_after - t_flood_over, 2)
        elif router.exited() is None:
            out.problem = f"no answer {args.recover_timeout:g} s after the flood: SIGKILLed"
            router.exit_note = router.exit_note or out.problem
            os.kill(router.pid, signal.SIGKILL)
        time.sleep(0.15)  # one more RSS sample
        by.send(("stop",))
        by_result = Workers.expect(by, "result", 30)
        sampler.stop()

        before, start_cpu = sampler.at(t_start) or (None, None)
        end_sample = sampler.at(t_end)
        after_sample = sampler.at(time.monotonic())
        peak = sampler.peak_kb(t_start, time.monotonic())
        out.rss_before_mb = round(before / 1024, 1) if before else None
        out.rss_peak_mb = round(peak / 1024, 1) if peak else None
        if answered and after_sample:
            out.rss_after_mb = round(after_sample[0] / 1024, 1)
        if start_cpu is not None and end_sample:
            out.router_cpu_flood_pct = round((end_sample[1] - start_cpu) / args.duration * 100)
        if end_sample and after_sample and answered and t_after > t_end:
            out.router_cpu_after_pct = round(
                (after_sample[1] - end_sample[1]) / (time.monotonic() - t_end) * 100
            )

        sent = array("q")
        sent.frombytes(by_result["sent_ns"])
        rtt = array("q")
        rtt.frombytes(by_result["rtt_ns"])
        status = array("b")
        status.frombytes(by_result["status"])
        start_ns, after_ns = int(t_start * 1e9), int(t_after * 1e9)
        base_lat: list[int] = []
        lat: list[int] = []
        timeout_ns = int(args.call_timeout * 1e9)
        for s, r, st in zip(sent, rtt, status, strict=True):
            if s < start_ns:
                if st == OK:
                    base_lat.append(r)
                continue
            if s > after_ns:
                continue
            out.bystander_calls += 1
            if st == OK:
                lat.append(r)
                if r > timeout_ns:
                    out.slow_over_timeout += 1
            elif st == FAILED:
                out.errors += 1
            else:  # never answered (or the connection was gone)
                out.lost += 1
                lat.append(max(0, after_ns - s))
        lat.sort()
        base_lat.sort()
        out.p50_ms, out.p99_ms = _pct(lat, 0.5), _pct(lat, 0.99)
        out.max_ms = lat[-1] / 1e6 if lat else None
        out.baseline_p50_ms = _pct(base_lat, 0.5)
        out.failed = out.errors + out.lost + out.slow_over_timeout
        skipped = array("q")
        skipped.frombytes(by_result["skipped_ns"])
        out.skipped_ticks = sum(1 for s in skipped if start_ns <= s <= after_ns)
        out.error_uris = by_result["error_uris"]
    except Exception as exc:  # one broken scenario does not stop the others
        out.problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    finally:
        if sampler is not None:
            sampler.stop()
        out.router_log_bytes = router.log_bytes()
        out.router_tracebacks = router.tracebacks()
        router.stop_and_note()
        out.router_end = router.exit_note
        workers.close()
    return out


# ---------------------------------------------------------------------------
# Output


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def flood_note(o: Outcome) -> str:
    f = o.flood
    parts = []
    for key, label in (
        ("publishes_sent", "PUBLISH sent"),
        ("calls_sent", "CALL sent"),
        ("subscribes_sent", "SUBSCRIBE sent"),
        ("count_calls_sent", "count calls sent"),
        ("subscriptions_held", "subscriptions dropped"),
    ):
        if key in f:
            parts.append(f"{f[key]:,} {label}")
    if f.get("count_calls_answered") is not None:
        parts.append(f"{f['count_calls_answered']:,} answered")
    if f.get("error_uris"):
        parts.append(
            "flooder got " + ", ".join(f"{n:,} {u}" for u, n in sorted(f["error_uris"].items()))
        )
    if f.get("flooder_closed_by_router"):
        parts.append("router closed the flooder")
    if o.router_tracebacks:
        parts.append(f"{o.router_tracebacks} tracebacks in the log")
    if o.router_log_bytes > 1 << 20:
        parts.append(f"log {o.router_log_bytes / (1 << 20):,.0f} MB")
    if o.skipped_ticks:
        parts.append(f"bystander skipped {o.skipped_ticks:,} ticks (at its in-flight cap)")
    if o.recovered_s is not None and o.recovered_s > o.settle_s + 0.5:
        parts.append(f"answered again {o.recovered_s:g} s after the flood")
    if o.error_uris:
        parts.append(
            "bystander got " + ", ".join(f"{n} {u}" for u, n in sorted(o.error_uris.items()))
        )
    for text in (o.router_end, o.problem):
        if text and text not in parts:
            parts.append(text)
    return "; ".join(parts)


def print_table(outcomes: list[Outcome]) -> None:
    header = [
        "scenario",
        "bystander calls",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed",
        "RSS MB before / peak / after",
        "router CPU %",
        "target",
        "notes",
    ]
    rows = []
    for o in outcomes:
        rows.append(
            [
                o.scenario,
                f"{o.bystander_calls:,}",
                _f(o.p50_ms, 2),
                _f(o.p99_ms, 1),
                _f(o.max_ms, 0),
                f"{o.failed:,}",
                f"{_f(o.rss_before_mb, 0)} / {_f(o.rss_peak_mb, 0)} / {_f(o.rss_after_mb, 0)}",
                _f(o.router_cpu_flood_pct, 0),
                "met" if o.meets_target() else "missed",
                flood_note(o),
            ]
        )
    e2e._print_markdown(header, rows)
    changed = [o for o in outcomes if o.config != "defaults"]
    if changed:
        print()
        for o in changed:
            print(f"Router configuration raised for {o.scenario}: {o.config}")


def git_revision(src: Path) -> str:
    """The commit of ``src``: ``git describe``, or a REVISION file (for an export)."""
    revision = src / "REVISION"
    if revision.is_file():
        return revision.read_text().strip() + " (export)"
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "not a git tree"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Hostile-load benchmark: a bystander's latency and the router's "
        "memory while one client floods.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios" + __doc__.split("Scenarios", 1)[1].split("\n\n", 1)[0],
    )
    parser.add_argument("--scenarios", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of flood (10)")
    parser.add_argument("--baseline", type=float, default=1.0, help="seconds before it (1)")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds after it before 'RSS after' (3)"
    )
    parser.add_argument(
        "--recover-timeout",
        type=float,
        default=30.0,
        help="seconds (after --settle) the router may take to answer again (30)",
    )
    parser.add_argument(
        "--interval-ms", type=float, default=5.0, help="bystander: one call every N ms (5)"
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=200,
        help="bystander: no new call while this many are unanswered (200)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=5.0,
        help="bystander: an answer later than this many seconds counts as failed (5)",
    )
    parser.add_argument("--rss-limit-mb", type=int, default=3072, help="kill the router past it")
    parser.add_argument("--subscribers", type=int, default=2000, help="idle_subscribers (2000)")
    parser.add_argument("--payload", type=int, default=64, help="bytes per PUBLISH argument")
    parser.add_argument("--filter-entries", type=int, default=1_000_000, help="count_filter")
    parser.add_argument("--subscriptions", type=int, default=200_000, help="teardown")
    parser.add_argument(
        "--router-src",
        type=Path,
        default=REPO_DIR,
        help="directory whose fastwamp package the router runs (default: this checkout)",
    )
    parser.add_argument("--log-level", default="info", help="the router's log_level (info)")
    parser.add_argument(
        "--json",
        help="write every figure as JSON to this file ('-': to stdout instead of the table)",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy each router log to DIR/SCENARIO.log")
    args = parser.parse_args(argv)
    args.router_src = args.router_src.resolve()

    known = scenarios(args)
    names = (
        list(known)
        if args.scenarios == "all"
        else [s.strip() for s in args.scenarios.split(",") if s.strip()]
    )
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(known)}")

    signal.signal(signal.SIGTERM, _terminate)
    to_stdout = args.json == "-"
    info = sys.stderr if to_stdout else sys.stdout
    facts = e2e.machine_facts(None)
    facts["router source"] = f"{args.router_src} ({git_revision(args.router_src)})"
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()), file=info)
    print(
        f"flood {args.duration:g} s per scenario after {args.baseline:g} s baseline; "
        f"'after' {args.settle:g} s later; bystander: 1 call every {args.interval_ms:g} ms "
        f"(at most {args.max_in_flight} unanswered), "
        f"answers later than {args.call_timeout:g} s count as failed; "
        f"router killed past {args.rss_limit_mb:,} MB RSS",
        file=info,
        flush=True,
    )
    outcomes = []
    for name in names:
        o = run_one(known[name], args)
        outcomes.append(o)
        print(
            f"  {name:<17} calls {o.bystander_calls:>5}  p99 {_f(o.p99_ms):>9} ms"
            f"  failed {o.failed:>5}  RSS {_f(o.rss_before_mb, 0)}/{_f(o.rss_peak_mb, 0)}"
            f"/{_f(o.rss_after_mb, 0)} MB  {flood_note(o)}",
            file=info,
            flush=True,
        )
    if not to_stdout:
        print()
        print_table(outcomes)
    if args.json:
        doc = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": facts,
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "results": [{**asdict(o), "target_met": o.meets_target()} for o in outcomes],
        }
        text = json.dumps(doc, indent=2)
        if to_stdout:
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
