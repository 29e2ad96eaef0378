"""Basic Profile RPC through fastwamp with Autobahn|Python (asyncio) peers.

Every test runs over each transport x serializer (WebSocket and RawSocket,
JSON / MessagePack / CBOR); caller and callee use the same kind unless the
test is about crossing serializers.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult

from .abclient import (
    RS_CBOR,
    RS_JSON,
    RS_MSGPACK,
    WS_CBOR,
    WS_JSON,
    WS_MSGPACK,
    Kind,
    async_test,
    kinds_param,
    peers,
    unique_uri,
)
from .conftest import RouterEndpoints

pytestmark = pytest.mark.interop

MIB = 1024 * 1024

#: Values every serializer carries without loss (no floats that JSON would
#: turn into ints, no ints beyond 2**53 that JavaScript-minded peers round).
SCALARS: list[Any] = [
    0,
    1,
    -1,
    2**31,
    2**53,
    -(2**53),
    1.5,
    -0.25,
    True,
    False,
    None,
    "",
    "text",
    [],
    {},
    [1, [2, [3, {"deep": [None]}]]],
    {"a": {"b": {"c": [1, "x", False]}}},
]

UNICODE: list[str] = [
    "Grüße aus Köln",
    "日本語のテキスト",
    "😀🎉👩‍👩‍👧‍👦",  # astral plane and ZWJ sequences
    "e\u0301 vs é",  # combining mark vs precomposed
    "עברית и русский",
    "Ω≈ç√∫˜µ≤≥÷",
    "a\u0000b",  # NUL inside (not leading: a leading NUL means bytes in JSON)
    "\u2028\u2029\ufeff",
    "\U0010fffd",
]


async def _echo(*args: Any, **kwargs: Any) -> CallResult:
    return CallResult(*args, **kwargs)


@kinds_param()
@async_test()
async def test_call_args_kwargs(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("echo")
        await callee.register(_echo, proc)

        res = await caller.call(
            proc, *SCALARS, alpha=1, beta="two", gamma=[3.5, None], delta={"x": True}
        )
        assert isinstance(res, CallResult)
        assert list(res.results) == SCALARS
        assert res.kwresults == {
            "alpha": 1,
            "beta": "two",
            "gamma": [3.5, None],
            "delta": {"x": True},
        }

        # Positional only, keyword only, a single value, nothing at all.
        res = await caller.call(proc, 1, 2, 3)
        assert list(res.results) == [1, 2, 3] and not res.kwresults
        res = await caller.call(proc, only="kw")
        assert not res.results and res.kwresults == {"only": "kw"}
        assert await caller.call(proc, "single") == "single"
        assert await caller.call(proc) is None


@kinds_param()
@async_test()
async def test_call_plain_return_values(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("add")

        def add(a: int, b: int) -> int:
            return a + b

        await callee.register(add, proc)
        assert await caller.call(proc, 2, 3) == 5
        assert await caller.call(proc, a=-7, b=2**40) == 2**40 - 7


@kinds_param()
@async_test()
async def test_application_error_args_kwargs_unchanged(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("fail")
        error_uri = "com.example.error.custom_failure"
        err_args = [1, "zwei", [3.5, None], {"vier": 4}, "ünïcødé ✓"]
        err_kwargs = {"reason": "because", "nested": {"a": [1, 2, {"b": None}]}, "flag": False}

        async def fail(mode: str) -> None:
            if mode == "full":
                raise ApplicationError(error_uri, *err_args, **err_kwargs)
            if mode == "args":
                raise ApplicationError(error_uri, "only", "args")
            raise ApplicationError(error_uri)

        await callee.register(fail, proc)

        with pytest.raises(ApplicationError) as ei:
            await caller.call(proc, "full")
        assert ei.value.error == error_uri
        assert list(ei.value.args) == err_args
        assert ei.value.kwargs == err_kwargs

        with pytest.raises(ApplicationError) as ei:
            await caller.call(proc, "args")
        assert ei.value.error == error_uri
        assert list(ei.value.args) == ["only", "args"]
        assert not ei.value.kwargs

        with pytest.raises(ApplicationError) as ei:
            await caller.call(proc, "bare")
        assert ei.value.error == error_uri
        assert not ei.value.args and not ei.value.kwargs


@kinds_param()
@async_test()
async def test_one_mib_payloads(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("big")
        await callee.register(_echo, proc)

        text = "".join(random.Random(1).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=MIB))
        blob = random.Random(2).randbytes(MIB)
        res = await caller.call(proc, text, blob=blob)
        assert isinstance(res, CallResult)
        assert len(res.results) == 1 and res.results[0] == text
        assert isinstance(res.kwresults["blob"], bytes) and res.kwresults["blob"] == blob

        # Multi-byte UTF-8: ~1 MiB of characters, ~3 MiB on the wire.
        wide = "日本語" * (MIB // 3)
        assert await caller.call(proc, wide) == wide


@kinds_param()
@async_test()
async def test_unicode_payloads(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("unicode")
        await callee.register(_echo, proc)

        kwargs = {"ключ": "значение", "キー": UNICODE[1], "emoji_😀": UNICODE[2]}
        res = await caller.call(proc, *UNICODE, **kwargs)
        assert list(res.results) == UNICODE
        assert res.kwresults == kwargs


@kinds_param()
@async_test()
async def test_unicode_procedure_uri(router: RouterEndpoints, kind: Kind) -> None:
    """Loose URIs (the router's default) allow any non-whitespace character but '.' and '#'."""
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("ünïcødé") + ".日本.😀"
        await callee.register(_echo, proc)
        assert await caller.call(proc, "ok") == "ok"


@kinds_param()
@async_test()
async def test_binary_payloads(router: RouterEndpoints, kind: Kind) -> None:
    """bytes survive the round trip (JSON: the ``"\\0" + base64`` convention)."""
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("bytes")
        seen: list[list[type]] = []

        async def echo_bytes(*args: Any, **kwargs: Any) -> CallResult:
            seen.append([type(a) for a in args])
            return CallResult(*args, **kwargs)

        await callee.register(echo_bytes, proc)
        values = [b"", b"\x00", b"\x00\x01\x02\xff", bytes(range(256)), b"text-like bytes"]
        res = await caller.call(proc, *values, key=b"\xde\xad\xbe\xef", nested={"b": [b"\x7f"]})
        assert seen == [[bytes] * len(values)]
        assert list(res.results) == values
        assert all(type(v) is bytes for v in res.results)
        assert res.kwresults == {"key": b"\xde\xad\xbe\xef", "nested": {"b": [b"\x7f"]}}


CROSS_PAIRS = [
    (WS_JSON, WS_MSGPACK),
    (WS_MSGPACK, WS_JSON),
    (WS_CBOR, RS_JSON),
    (RS_JSON, WS_CBOR),
    (RS_MSGPACK, RS_CBOR),
    (RS_CBOR, WS_MSGPACK),
]


@pytest.mark.parametrize(
    ("caller_kind", "callee_kind"),
    CROSS_PAIRS,
    ids=[f"{a.id}-calls-{b.id}" for a, b in CROSS_PAIRS],
)
@async_test()
async def test_cross_serializer_call(
    router: RouterEndpoints, caller_kind: Kind, callee_kind: Kind
) -> None:
    """The router re-encodes between serializers: bytes stay bytes, text stays text."""
    async with peers(router) as p:
        callee = await p.connect(callee_kind)
        caller = await p.connect(caller_kind)
        proc = unique_uri("cross")
        received: list[tuple[Any, ...]] = []

        async def inspect(*args: Any, **kwargs: Any) -> CallResult:
            received.append(args)
            return CallResult(*args, types=[type(a).__name__ for a in args], **kwargs)

        await callee.register(inspect, proc)
        blob = bytes(range(256)) * 3
        args = [blob, "\u00e9t\u00e9 ✓", 2**53, -3, 0.5, True, None, {"k": [b"\x00", "v"]}]
        res = await caller.call(proc, *args, kw=b"\x01\x02")
        assert received and list(received[0]) == args
        assert list(res.results) == args
        assert res.kwresults["types"] == [
            "bytes",
            "str",
            "int",
            "int",
            "float",
            "bool",
            "NoneType",
            "dict",
        ]
        assert res.kwresults["kw"] == b"\x01\x02"


@kinds_param()
@async_test()
async def test_no_such_procedure(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        caller = await p.connect(kind)
        with pytest.raises(ApplicationError) as ei:
            await caller.call(unique_uri("nobody.home"), 1, x=2)
        assert ei.value.error == "wamp.error.no_such_procedure"


@kinds_param()
@async_test()
async def test_register_twice_then_unregister(router: RouterEndpoints, kind: Kind) -> None:
    async with peers(router) as p:
        callee = await p.connect(kind)
        other = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("unreg")

        reg = await callee.register(lambda: "first", proc)
        assert await caller.call(proc) == "first"

        with pytest.raises(ApplicationError) as ei:
            await other.register(lambda: "second", proc)
        assert ei.value.error == "wamp.error.procedure_already_exists"

        await reg.unregister()
        assert not reg.active
        with pytest.raises(ApplicationError) as ei:
            await caller.call(proc)
        assert ei.value.error == "wamp.error.no_such_procedure"

        # The URI is free again.
        reg2 = await other.register(lambda: "second", proc)
        assert await caller.call(proc) == "second"
        await reg2.unregister()
        with pytest.raises(ApplicationError) as ei:
            await caller.call(proc)
        assert ei.value.error == "wamp.error.no_such_procedure"


@kinds_param()
@async_test()
async def test_concurrent_calls_out_of_order(router: RouterEndpoints, kind: Kind) -> None:
    """Results find their callers even when the callee answers out of order."""
    async with peers(router) as p:
        callee = await p.connect(kind)
        callers = [await p.connect(kind), await p.connect(kind)]
        proc = unique_uri("slow_echo")
        rnd = random.Random(3)

        async def slow_echo(i: int, who: int) -> list[int]:
            await asyncio.sleep(rnd.random() * 0.05)
            return [i, who]

        await callee.register(slow_echo, proc)
        calls = [c.call(proc, i, w) for i in range(40) for w, c in enumerate(callers)]
        results = await asyncio.gather(*calls)
        assert results == [[i, w] for i in range(40) for w in range(len(callers))]


@pytest.mark.parametrize("how", ["drop", "goodbye"])
@kinds_param()
@async_test()
async def test_callee_leaves_with_call_in_flight(
    router: RouterEndpoints, kind: Kind, how: str
) -> None:
    """The caller gets ERROR wamp.error.canceled as soon as the callee goes away."""
    async with peers(router) as p:
        callee = await p.connect(kind)
        caller = await p.connect(kind)
        proc = unique_uri("never_returns")
        invoked = asyncio.Event()
        forever = asyncio.get_running_loop().create_future()

        async def never_returns() -> None:
            invoked.set()
            await forever

        await callee.register(never_returns, proc)
        call = asyncio.ensure_future(caller.call(proc))
        await asyncio.wait_for(invoked.wait(), 5)

        t0 = time.monotonic()
        if how == "drop":
            callee.drop()  # TCP connection closed with no GOODBYE / WebSocket close
        else:
            callee.leave()  # GOODBYE
        with pytest.raises(ApplicationError) as ei:
            await asyncio.wait_for(call, 5)
        elapsed = time.monotonic() - t0
        forever.cancel()
        assert ei.value.error == "wamp.error.canceled"
        assert elapsed < 2.0, f"caller waited {elapsed:.2f} s for the cancel"

        # The registration went with the callee.
        with pytest.raises(ApplicationError) as ei:
            await caller.call(proc)
        assert ei.value.error == "wamp.error.no_such_procedure"
