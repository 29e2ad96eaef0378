"""The guide's RPC behaviours ("Beyond the Basics") with Autobahn|Python peers, plus the Advanced
Profile RPC features around them: progressive call results, call canceling (skip / kill /
killnowait) with a callee that announces ``call_canceling``, call trust levels, and caller
disclosure on realms configured ``on_request`` and ``never``.

The wampy.js versions of the guide's examples are in js/guide_rpc.test.mjs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, CallOptions, CallResult, RegisterOptions

from .abclient import RS_CBOR, RS_MSGPACK, WS_CBOR, WS_JSON, Client, Kind, async_test, kinds_param
from .conftest import RouterEndpoints
from .guide_support import (
    CALL,
    INTERRUPT,
    INVOCATION,
    REALM_NEVER,
    REALM_ON_REQUEST,
    REALM_TRUST,
    REGISTER,
    Sessions,
    WireTap,
    barrier,
    expect_error,
    send_cancel,
    session_id,
    start_guide_router,
    until,
    until_callees,
)

pytestmark = pytest.mark.interop

KINDS = [WS_JSON, RS_MSGPACK]
THREE_KINDS = [WS_JSON, RS_MSGPACK, WS_CBOR]


def app_root() -> str:
    """Stands in for the guide's ``com.myapp``: same shape, unique per test."""
    from uuid import uuid4

    return f"com.myapp_{uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def guide_router() -> Iterator[RouterEndpoints]:
    yield from start_guide_router("guide-rpc")


def rr(policy: str) -> RegisterOptions:
    return RegisterOptions(invoke=policy)


# -- load balancing ----------------------------------------------------------------------------


@kinds_param(THREE_KINDS)
@async_test()
async def test_roundrobin_rotation(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        for i in (1, 2, 3):
            callee = await s.connect(kind)

            def process_order(order_id: int, i: int = i) -> dict[str, Any]:
                return {"order_id": order_id, "processed_by": f"instance_{i}"}

            await callee.register(process_order, f"{app}.process_order", options=rr("roundrobin"))
        caller = await s.connect(kind)
        served = [
            (await caller.call(f"{app}.process_order", order_id=123 + n))["processed_by"]
            for n in range(7)
        ]
        assert served == [f"instance_{i}" for i in (1, 2, 3, 1, 2, 3, 1)]


@kinds_param(KINDS)
@async_test()
async def test_random_spreads_calls(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    counts: Counter[int] = Counter()
    async with Sessions(router) as s:
        for i in range(3):
            callee = await s.connect(kind)

            def track(n: int, i: int = i) -> None:
                counts[i] += 1

            await callee.register(track, f"{app}.analytics.track", options=rr("random"))
        caller = await s.connect(kind)
        await asyncio.gather(*(caller.call(f"{app}.analytics.track", n) for n in range(300)))
        assert sum(counts.values()) == 300
        assert all(counts[i] >= 30 for i in range(3)), counts


@pytest.mark.parametrize("how", ["unregister", "drop", "goodbye"])
@kinds_param(KINDS)
@async_test()
async def test_first_primary_backup(router: RouterEndpoints, kind: Kind, how: str) -> None:
    app = app_root()
    proc = f"{app}.cache.get"
    async with Sessions(router) as s:
        primary = await s.connect(kind)
        reg = await primary.register(lambda key: ["primary", key], proc, options=rr("first"))
        backup = await s.connect(kind)
        await backup.register(lambda key: ["backup", key], proc, options=rr("first"))
        caller = await s.connect(kind)
        for n in range(5):
            assert await caller.call(proc, f"k{n}") == ["primary", f"k{n}"]
        if how == "unregister":
            await reg.unregister()
        elif how == "drop":
            primary.drop()
        else:
            await primary.close()
        await until_callees(caller, proc, 1)
        for _ in range(3):
            assert await caller.call(proc, "k") == ["backup", "k"]
        # A new instance registers later than the backup: the backup stays first.
        late = await s.connect(kind)
        await late.register(lambda key: ["late", key], proc, options=rr("first"))
        assert await caller.call(proc, "k") == ["backup", "k"]


@kinds_param(KINDS)
@async_test()
async def test_last_canary(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    proc = f"{app}.api.process"
    async with Sessions(router) as s:
        v1 = [await s.connect(kind) for _ in range(2)]
        for n, c in enumerate(v1, 1):
            await c.register(lambda n=n: f"v1#{n}", proc, options=rr("last"))
        caller = await s.connect(kind)
        assert await caller.call(proc) == "v1#2"
        canary = await s.connect(kind)
        reg = await canary.register(lambda: "v2", proc, options=rr("last"))
        assert [await caller.call(proc) for _ in range(4)] == ["v2"] * 4
        await reg.unregister()
        assert await caller.call(proc) == "v1#2"
        v1[1].drop()
        await until_callees(caller, proc, 1)
        assert await caller.call(proc) == "v1#1"


@kinds_param(KINDS)
@async_test()
async def test_single_and_policy_mismatch(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        a = await s.connect(kind)
        b = await s.connect(kind)
        await a.register(lambda: "a", f"{app}.singleton", options=rr("single"))
        await expect_error(
            b.register(lambda: "b", f"{app}.singleton", options=rr("single")),
            "wamp.error.procedure_already_exists",
        )
        await a.register(lambda: "a", f"{app}.shared", options=rr("roundrobin"))
        await expect_error(
            b.register(lambda: "b", f"{app}.shared", options=rr("first")),
            "wamp.error.procedure_already_exists",
        )
        await expect_error(
            b.register(lambda: "b", f"{app}.shared"), "wamp.error.procedure_already_exists"
        )


@kinds_param(KINDS)
@async_test()
async def test_failover_kill_instance_then_new_instance(
    router: RouterEndpoints, kind: Kind
) -> None:
    """The guide's steps 1-8; the killed instance also had a call in flight (→ canceled)."""
    app = app_root()
    proc = f"{app}.order.process"
    served: list[str] = []
    hang = asyncio.get_running_loop().create_future()
    async with Sessions(router) as s:

        async def instance(name: str) -> Client:
            c = await s.connect(kind)

            async def handler(n: int) -> list[Any]:
                served.append(name)
                if n < 0:
                    await hang
                return [name, n]

            await c.register(handler, proc, options=rr("roundrobin"))
            return c

        i1 = await instance("i1")
        await instance("i2")
        caller = await s.connect(kind)
        for n in range(4):
            await caller.call(proc, n)
        assert served == ["i1", "i2", "i1", "i2"]
        in_flight = asyncio.ensure_future(caller.call(proc, -1))  # goes to i1
        await until(lambda: len(served) == 5, "the hanging invocation")
        i1.drop()
        await expect_error(asyncio.wait_for(in_flight, 5), "wamp.error.canceled")
        served.clear()
        for n in range(3):
            await caller.call(proc, n)
        assert served == ["i2"] * 3
        await instance("i3")
        served.clear()
        for n in range(4):
            await caller.call(proc, n)
        assert sorted(served) == ["i2", "i2", "i3", "i3"]
        assert all(a != b for a, b in zip(served, served[1:], strict=False))
        hang.cancel()


# -- retries, circuit breaker, health checks (the guide's helpers, in Python) -------------------


async def call_with_retry(
    session: Client, procedure: str, *args: Any, max_retries: int = 3, **kwargs: Any
) -> Any:
    """The guide's callWithRetry: exponential backoff 200 ms, 400 ms, ..."""
    last_error: Exception | None = None
    for attempt in range(1, max_retries + 1):
        try:
            return await session.call(procedure, *args, **kwargs)
        except ApplicationError as e:
            last_error = e
            if attempt < max_retries:
                await asyncio.sleep(2**attempt * 0.1)
    assert last_error is not None
    raise last_error


class CircuitOpen(Exception):
    pass


class CircuitBreaker:
    """The guide's CircuitBreaker."""

    def __init__(self, session: Client, procedure: str, threshold: int = 5, timeout: float = 60):
        self.session, self.procedure = session, procedure
        self.threshold, self.timeout = threshold, timeout
        self.failures = 0
        self.state = "CLOSED"
        self.next_attempt = 0.0

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        if self.state == "OPEN":
            if time.monotonic() < self.next_attempt:
                raise CircuitOpen("Circuit breaker OPEN")
            self.state = "HALF_OPEN"
        try:
            result = await self.session.call(self.procedure, *args, **kwargs)
        except ApplicationError:
            self.failures += 1
            if self.failures >= self.threshold:
                self.state = "OPEN"
                self.next_attempt = time.monotonic() + self.timeout
            raise
        if self.state == "HALF_OPEN":
            self.state, self.failures = "CLOSED", 0
        return result


@kinds_param(KINDS)
@async_test()
async def test_retry_until_callee_appears(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        caller = await s.connect(kind)
        service = await s.connect(kind)
        t0 = time.monotonic()
        retried = asyncio.ensure_future(call_with_retry(caller, f"{app}.api.process", "data"))
        await asyncio.sleep(0.05)
        await service.register(lambda d: ["processed", d], f"{app}.api.process")
        assert await retried == ["processed", "data"]
        assert time.monotonic() - t0 >= 0.19
        err = await expect_error(
            call_with_retry(caller, f"{app}.api.missing", max_retries=2),
            "wamp.error.no_such_procedure",
        )
        assert err.error == "wamp.error.no_such_procedure"


@kinds_param(KINDS)
@async_test()
async def test_circuit_breaker_opens_on_no_such_procedure(
    router: RouterEndpoints, kind: Kind
) -> None:
    app = app_root()
    proc = f"{app}.external.api"
    async with Sessions(router) as s:
        caller = await s.connect(kind)
        tap = WireTap(caller)
        breaker = CircuitBreaker(caller, proc, threshold=5, timeout=60)
        for _ in range(5):
            await expect_error(breaker.call("x"), "wamp.error.no_such_procedure")
        assert breaker.state == "OPEN"
        service = await s.connect(kind)
        invoked: list[Any] = []
        await service.register(lambda *a: invoked.append(a) or "ok", proc)
        with pytest.raises(CircuitOpen):
            await breaker.call("x")
        assert len([m for m in tap.sent if m[0] == CALL and m[3] == proc]) == 5
        assert invoked == []
        quick = CircuitBreaker(caller, proc, threshold=1, timeout=0.05)
        quick.state, quick.failures, quick.next_attempt = "OPEN", 1, time.monotonic() + 0.05
        await asyncio.sleep(0.06)
        assert await quick.call("x") == "ok"
        assert (quick.state, quick.failures) == ("CLOSED", 0)


@kinds_param(KINDS)
@async_test()
async def test_health_check(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        service = await s.connect(kind)
        started = time.monotonic()

        def health() -> dict[str, Any]:
            return {
                "status": "healthy",
                "timestamp": int(time.time() * 1000),
                "version": "1.2.3",
                "uptime": time.monotonic() - started,
            }

        await service.register(health, f"{app}.service.health")
        monitor = await s.connect(kind)
        h = await call_with_retry(monitor, f"{app}.service.health", max_retries=1)
        assert h["status"] == "healthy" and h["version"] == "1.2.3"
        assert abs(h["timestamp"] - time.time() * 1000) < 5000
        service.drop()
        await until_callees(monitor, f"{app}.service.health", 0)
        await expect_error(
            call_with_retry(monitor, f"{app}.service.health", max_retries=1),
            "wamp.error.no_such_procedure",
        )


# -- pattern-based registration -----------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_prefix_users_handler_dispatches_on_details_procedure(
    router: RouterEndpoints, kind: Kind
) -> None:
    """The guide's ``com.myapp.users.`` prefix handler (Autobahn sends the trailing dot as is)."""
    app = app_root()
    users: dict[int, dict[str, Any]] = {}
    async with Sessions(router) as s:
        service = await s.connect(kind)

        def users_api(*args: Any, details: CallDetails, **kwargs: Any) -> Any:
            operation = details.procedure.split(".")[-1]
            if operation == "get":
                return users.get(args[0])
            if operation == "list":
                return list(users.values())
            if operation == "create":
                user = {"id": len(users) + 1, **kwargs}
                users[user["id"]] = user
                return user
            if operation == "delete":
                return users.pop(args[0], None) is not None
            raise ApplicationError("com.myapp.error.unknown_operation", operation)

        await service.register(
            users_api, f"{app}.users.", options=RegisterOptions(match="prefix", details=True)
        )
        caller = await s.connect(kind)
        assert await caller.call(f"{app}.users.create", name="Alice") == {"id": 1, "name": "Alice"}
        assert await caller.call(f"{app}.users.get", 1) == {"id": 1, "name": "Alice"}
        assert await caller.call(f"{app}.users.list") == [{"id": 1, "name": "Alice"}]
        assert await caller.call(f"{app}.users.delete", 1) is True
        err = await expect_error(
            caller.call(f"{app}.users.rename"), "com.myapp.error.unknown_operation"
        )
        assert list(err.args) == ["rename"]
        # The trailing dot keeps sibling namespaces out ...
        await expect_error(caller.call(f"{app}.usersettings.get"), "wamp.error.no_such_procedure")
        # ... and a prefix is a string prefix: without the dot, they are in.
        await service.register(
            lambda details: details.procedure,
            f"{app}.users",
            options=RegisterOptions(match="prefix", details=True),
        )
        assert await caller.call(f"{app}.usersettings.get") == f"{app}.usersettings.get"
        # The longest prefix wins; an exact registration beats both.
        assert await caller.call(f"{app}.users.create", name="Bob") == {"id": 1, "name": "Bob"}
        await service.register(lambda: "exact", f"{app}.users.list")
        assert await caller.call(f"{app}.users.list") == "exact"


@kinds_param(KINDS)
@async_test()
async def test_wildcard_audit_forwards_to_actual_procedure(
    router: RouterEndpoints, kind: Kind
) -> None:
    app = app_root()
    audit_log: list[dict[str, Any]] = []
    async with Sessions(router) as s:
        service = await s.connect(kind)
        for name in ("users", "orders", "products"):

            def actual(*args: Any, details: CallDetails, name: str = name, **kw: Any) -> CallResult:
                return CallResult(name, *args, via=details.caller, **kw)

            await service.register(actual, f"{app}.{name}", options=RegisterOptions(details=True))
        middleware = await s.connect(kind)

        async def audit(*args: Any, details: CallDetails, **kwargs: Any) -> Any:
            audit_log.append({"procedure": details.procedure, "caller": details.caller})
            return await middleware.call(details.procedure.replace(".audit", ""), *args, **kwargs)

        await middleware.register(
            audit, f"{app}..audit", options=RegisterOptions(match="wildcard", details=True)
        )
        caller = await s.connect(kind)
        for name in ("users", "orders", "products"):
            res = await caller.call(f"{app}.{name}.audit", 7, reason="check")
            assert list(res.results) == [name, 7]
            assert res.kwresults == {"reason": "check", "via": session_id(middleware)}
        assert audit_log == [
            {"procedure": f"{app}.{n}.audit", "caller": session_id(caller)}
            for n in ("users", "orders", "products")
        ]
        await expect_error(caller.call(f"{app}.users.x.audit"), "wamp.error.no_such_procedure")
        await expect_error(caller.call(f"{app}.audit"), "wamp.error.no_such_procedure")


# -- timeouts -----------------------------------------------------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_call_timeout_ms_and_interrupt_to_canceling_callee(
    router: RouterEndpoints, kind: Kind
) -> None:
    """CALL.Options.timeout=500 is milliseconds: wamp.error.timeout after ~0.5 s. Autobahn
    announces call_canceling, so the callee also gets INTERRUPT(killnowait) and its handler is
    cancelled."""
    app = app_root()
    cancelled = asyncio.Event()
    async with Sessions(router) as s:
        service = await s.connect(kind)
        tap = WireTap(service)

        async def slow_operation(seconds: float) -> str:
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "done"

        await service.register(slow_operation, f"{app}.slow_operation")
        caller = await s.connect(kind)
        t0 = time.monotonic()
        err = await expect_error(
            caller.call(f"{app}.slow_operation", 3.0, options=CallOptions(timeout=500)),
            "wamp.error.timeout",
        )
        elapsed = time.monotonic() - t0
        assert 0.45 <= elapsed < 1.5, f"timed out after {elapsed:.2f} s"
        assert err.args, "no explanation in the timeout ERROR"
        await asyncio.wait_for(cancelled.wait(), 2)
        [interrupt] = tap.of_type(INTERRUPT)
        assert interrupt[2].get("mode") == "killnowait"
        # In time: the result comes back.
        assert (
            await caller.call(f"{app}.slow_operation", 0.01, options=CallOptions(timeout=2000))
            == "done"
        )


# -- caller identification, disclosure realms, trust levels -------------------------------------


@kinds_param(KINDS)
@async_test()
async def test_caller_identification_default_realm(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        service = await s.connect(kind)
        await service.register(
            lambda details: [details.caller, details.caller_authid, details.caller_authrole],
            f"{app}.restricted.operation",
            options=RegisterOptions(details=True),
        )
        for _ in range(2):
            caller = await s.connect(kind)
            who = await caller.call(f"{app}.restricted.operation")
            joined = caller.joined.result()
            assert who == [joined.session, joined.authid, "anonymous"]


def _disclosed(details: CallDetails) -> Any:
    return details.caller


@kinds_param(KINDS)
@async_test()
async def test_disclosure_on_request_realm(guide_router: RouterEndpoints, kind: Kind) -> None:
    """disclosure = "on_request": caller disclosed only for CALL disclose_me or REGISTER
    disclose_caller (both put on the wire below Autobahn, which has no API for them)."""
    app = app_root()
    async with Sessions(guide_router) as s:
        plain = await s.connect(kind, REALM_ON_REQUEST)
        await plain.register(_disclosed, f"{app}.plain", options=RegisterOptions(details=True))
        asking = await s.connect(kind, REALM_ON_REQUEST)
        WireTap(asking).add_option(REGISTER, f"{app}.asking", disclose_caller=True)
        await asking.register(_disclosed, f"{app}.asking", options=RegisterOptions(details=True))
        caller = await s.connect(kind, REALM_ON_REQUEST)
        me = session_id(caller)
        assert await caller.call(f"{app}.plain") is None
        assert await caller.call(f"{app}.asking") == me
        WireTap(caller).add_option(CALL, f"{app}.plain", disclose_me=True)
        assert await caller.call(f"{app}.plain") == me


@kinds_param(KINDS)
@async_test()
async def test_disclosure_never_realm(guide_router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(guide_router) as s:
        callee = await s.connect(kind, REALM_NEVER)
        await callee.register(_disclosed, f"{app}.proc", options=RegisterOptions(details=True))
        WireTap(callee).add_option(REGISTER, f"{app}.asking", disclose_caller=True)
        await expect_error(
            callee.register(_disclosed, f"{app}.asking", options=RegisterOptions(details=True)),
            "wamp.error.option_disallowed.disclose_me",
        )
        caller = await s.connect(kind, REALM_NEVER)
        assert await caller.call(f"{app}.proc") is None
        WireTap(caller).add_option(CALL, f"{app}.proc", disclose_me=True)
        await expect_error(caller.call(f"{app}.proc"), "wamp.error.option_disallowed.disclose_me")


@kinds_param(KINDS)
@async_test()
async def test_trust_levels(guide_router: RouterEndpoints, kind: Kind) -> None:
    """trustlevels = {"*" = 0, "anonymous" = 1}: INVOCATION.Details.trustlevel = 1 for anonymous
    callers; realm1 (no trustlevels) sends none."""
    app = app_root()
    async with Sessions(guide_router) as s:
        for realm, expected in ((REALM_TRUST, 1), ("realm1", None)):
            callee = await s.connect(kind, realm)
            tap = WireTap(callee)
            await callee.register(lambda: "ok", f"{app}.op")
            caller = await s.connect(kind, realm)
            assert await caller.call(f"{app}.op") == "ok"
            [inv] = tap.of_type(INVOCATION)
            assert inv[3].get("trustlevel") == expected, inv


# -- progressive call results ---------------------------------------------------------------


@kinds_param(THREE_KINDS)
@async_test()
async def test_progressive_call_results(router: RouterEndpoints, kind: Kind) -> None:
    app = app_root()
    async with Sessions(router) as s:
        callee = await s.connect(kind)

        async def count(n: int, details: CallDetails) -> CallResult:
            for i in range(n):
                if details.progress:
                    details.progress(i, step=f"#{i}")
                await asyncio.sleep(0)
            return CallResult("final", total=n)

        await callee.register(count, f"{app}.count", options=RegisterOptions(details=True))
        caller = await s.connect(kind)
        progress: list[Any] = []
        res = await caller.call(
            f"{app}.count",
            4,
            options=CallOptions(on_progress=lambda *a, **kw: progress.append((a, kw))),
        )
        assert progress == [((i,), {"step": f"#{i}"}) for i in range(4)]
        assert list(res.results) == ["final"] and res.kwresults == {"total": 4}
        # Without on_progress the caller does not ask, the callee is not offered progress.
        res = await caller.call(f"{app}.count", 3)
        assert list(res.results) == ["final"] and res.kwresults == {"total": 3}


# -- call canceling -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["skip", "kill", "killnowait", None])
@kinds_param(KINDS)
@async_test()
async def test_cancel_modes(router: RouterEndpoints, kind: Kind, mode: str | None) -> None:
    """CANCEL with each mode against an Autobahn callee (it announces call_canceling).

    skip: no INTERRUPT, the caller gets wamp.error.canceled at once, the late result is dropped.
    kill: INTERRUPT(kill); the caller gets what the callee answers (here its own ERROR).
    killnowait (also the default, no mode): INTERRUPT(killnowait) and wamp.error.canceled at once.
    """
    app = app_root()
    release = asyncio.Event()
    started = asyncio.Event()
    interrupted = asyncio.Event()
    async with Sessions(router) as s:
        callee = await s.connect(kind)
        ctap = WireTap(callee)

        async def work() -> str:
            started.set()
            try:
                await release.wait()
            except asyncio.CancelledError:
                interrupted.set()
                raise ApplicationError("wamp.error.canceled", "callee cleaned up") from None
            return "late result"

        await callee.register(work, f"{app}.work")
        caller = await s.connect(kind)
        fut = caller.call(f"{app}.work")
        await asyncio.wait_for(started.wait(), 5)
        send_cancel(caller, fut, mode)
        err = await expect_error(asyncio.wait_for(fut, 5), "wamp.error.canceled")
        if mode == "kill":
            assert list(err.args) == ["callee cleaned up"]  # the callee's answer, relayed
        if mode == "skip":
            await barrier(callee)
            assert ctap.of_type(INTERRUPT) == []
            release.set()  # the late YIELD is dropped by the router
        else:
            await asyncio.wait_for(interrupted.wait(), 5)
            [interrupt] = ctap.of_type(INTERRUPT)
            assert interrupt[2].get("mode") == (mode or "killnowait")
        # Both sides still work.
        release.set()
        assert await caller.call(f"{app}.work") == "late result"


@kinds_param([RS_CBOR])
@async_test()
async def test_cancel_kill_callee_answers_with_result(router: RouterEndpoints, kind: Kind) -> None:
    """kill mode keeps the invocation open: a callee that finishes anyway delivers a RESULT."""
    app = app_root()
    started = asyncio.Event()
    async with Sessions(router) as s:
        callee = await s.connect(kind)

        async def stubborn() -> str:
            started.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return "finished anyway"
            return "slept"

        await callee.register(stubborn, f"{app}.stubborn")
        caller = await s.connect(kind)
        fut = caller.call(f"{app}.stubborn")
        await asyncio.wait_for(started.wait(), 5)
        send_cancel(caller, fut, "kill")
        assert await asyncio.wait_for(fut, 5) == "finished anyway"


@kinds_param([WS_JSON])
@async_test()
async def test_timeout_with_progressive_results_measures_the_gaps(
    router: RouterEndpoints, kind: Kind
) -> None:
    """With progressive results the timeout bounds each gap (CALL → first result, result →
    result), not the whole call (wamp-notes §5.5)."""
    app = app_root()
    async with Sessions(router) as s:
        callee = await s.connect(kind)

        async def ticker(gaps: list[float], details: CallDetails) -> str:
            for i, gap in enumerate(gaps):
                await asyncio.sleep(gap)
                assert details.progress is not None
                details.progress(i)
            return "end"

        await callee.register(ticker, f"{app}.ticker", options=RegisterOptions(details=True))
        caller = await s.connect(kind)
        ticks: list[int] = []
        opts = CallOptions(on_progress=ticks.append, timeout=300)
        t0 = time.monotonic()
        assert await caller.call(f"{app}.ticker", [0.15] * 5, options=opts) == "end"
        assert ticks == [0, 1, 2, 3, 4] and time.monotonic() - t0 > 0.6
        ticks.clear()
        await expect_error(
            caller.call(f"{app}.ticker", [0.05, 0.6], options=opts), "wamp.error.timeout"
        )
        assert ticks == [0]


@kinds_param([RS_MSGPACK])
@async_test()
async def test_wildcard_precedence_spec_examples(router: RouterEndpoints, kind: Kind) -> None:
    """Several wildcard patterns match: the one with the longest run of literal components
    from the left wins (spec examples); ``wamp.registration.match`` agrees with the routing."""
    app = app_root()
    async with Sessions(router) as s:
        callee = await s.connect(kind)
        regs = {}
        for pattern in (
            "a1.b2.c33..e5",
            "a1.b2..d4.e5",
            "a1.b2..d4.e5..g7",
            "a1.b2..d4..f6.g7",
        ):
            uri = f"{app}.{pattern}"
            regs[pattern] = await callee.register(
                lambda p=pattern: p, uri, options=RegisterOptions(match="wildcard")
            )
        caller = await s.connect(kind)
        for called, winner in (
            ("a1.b2.c33.d4.e5", "a1.b2.c33..e5"),
            ("a1.b2.c88.d4.e5.f6.g7", "a1.b2..d4.e5..g7"),
            ("a1.b2.c88.d4.e5", "a1.b2..d4.e5"),
        ):
            assert await caller.call(f"{app}.{called}") == winner, called
            assert (
                await caller.call("wamp.registration.match", f"{app}.{called}") == regs[winner].id
            )


@pytest.mark.parametrize("who", ["caller", "callee"])
@kinds_param([WS_JSON])
@async_test()
async def test_progressive_results_party_leaves_mid_stream(
    router: RouterEndpoints, kind: Kind, who: str
) -> None:
    """Caller leaves mid-stream → the callee gets INTERRUPT(killnowait); callee leaves
    mid-stream → the caller gets wamp.error.canceled (wamp-notes §5.7)."""
    app = app_root()
    interrupted = asyncio.Event()
    async with Sessions(router) as s:
        callee = await s.connect(kind)
        tap = WireTap(callee)

        async def stream(details: CallDetails) -> str:
            i = 0
            try:
                while True:
                    assert details.progress is not None
                    details.progress(i)
                    i += 1
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                interrupted.set()
                raise

        await callee.register(stream, f"{app}.stream", options=RegisterOptions(details=True))
        caller = await s.connect(kind)
        ticks: list[int] = []
        fut = asyncio.ensure_future(
            caller.call(f"{app}.stream", options=CallOptions(on_progress=ticks.append))
        )
        await until(lambda: len(ticks) >= 3, "three progressive results")
        if who == "caller":
            caller.drop()
            await asyncio.wait_for(interrupted.wait(), 5)
            [interrupt] = tap.of_type(INTERRUPT)
            assert interrupt[2].get("mode") == "killnowait"
            fut.cancel()
        else:
            callee.drop()
            await expect_error(asyncio.wait_for(fut, 5), "wamp.error.canceled")
