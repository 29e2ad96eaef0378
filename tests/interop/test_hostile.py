"""Hostile clients against a real router process (issue 7), end to end.

One router (``handshake_timeout`` and ``frame_timeout`` shortened to 1 s, every
other limit at its default) serves the module; it is started again if a case
took it down, and that case fails.  Every case also runs a well-behaved Autobahn
caller/callee pair (the bystander) that must keep working after it, or during it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from autobahn.wamp.exception import ApplicationError

from .abclient import RS_CBOR, RS_MSGPACK, WS_JSON, EventSink, async_test, connect, unique_uri
from .conftest import RouterEndpoints
from .hostile_support import (
    CALL,
    ERROR,
    FRAME_TIMEOUT,
    HANDSHAKE_1K,
    HANDSHAKE_16M,
    HANDSHAKE_TIMEOUT,
    INVOCATION,
    PUBLISH,
    REGISTER,
    SUBSCRIBE,
    Bystander,
    HardenedRouter,
    PublishFlood,
    RawPeer,
    answered,
    raw_websocket,
    stream_closed_within,
    ws_close_within,
)

pytestmark = pytest.mark.interop

INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NOT_AUTHORIZED = "wamp.error.not_authorized"
#: Time the router gets beyond a configured timeout before a close counts as missing.
SLACK = 4.0


class _Routers:
    """The module's router; replaced by a fresh one when a case killed it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.current: HardenedRouter | None = None
        self.started = 0

    def get(self) -> HardenedRouter:
        if self.current is None or not self.current.running:
            if self.current is not None:
                self.current._finish_io()
            self.started += 1
            self.current = HardenedRouter(self.workdir, f"hostile{self.started}")
            self.current.start()
        return self.current


@pytest.fixture(scope="module")
def _routers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Routers]:
    routers = _Routers(tmp_path_factory.mktemp("hostile"))
    yield routers
    rp = routers.current
    if rp is not None and rp.running:
        # Tracebacks may be legitimate here (an isolated exception is logged with
        # one); a clean exit on SIGTERM is what matters.
        assert rp.stop(check=False) == 0, rp.diagnostics()


@pytest.fixture
def hostile_router(_routers: _Routers) -> HardenedRouter:
    return _routers.get()


def _endpoints(rp: HardenedRouter) -> RouterEndpoints:
    assert rp.endpoints is not None
    return rp.endpoints


def _alive(rp: HardenedRouter) -> None:
    assert rp.running, (
        f"the router died (status {rp.proc.returncode if rp.proc else None})\n"
        + rp.diagnostics(20)
    )


async def _recv_or_none(peer: RawPeer, timeout: float) -> list | None:
    try:
        return await peer.recv(timeout)
    except asyncio.TimeoutError:
        return None


# ---------------------------------------------------------------------------
# Crash: URIs with 200,000 components


@pytest.mark.parametrize(
    "pattern_code,use_code",
    [(SUBSCRIBE, PUBLISH), (REGISTER, CALL)],
    ids=["subscribe-publish", "register-call"],
)
@async_test(timeout=60)
async def test_deep_wildcard_uri_is_refused_and_router_survives(
    hostile_router: HardenedRouter, pattern_code: int, use_code: int
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    peer = await RawPeer(endpoints).join()
    components = 200_000
    pattern = "." * (components - 1)  # 200,000 empty components
    concrete = ".".join(["a"] * components)
    req1, req2 = peer.request(), peer.request()
    peer.send([pattern_code, req1, {"match": "wildcard"}, pattern])
    options = {"acknowledge": True} if use_code == PUBLISH else {}
    peer.send([use_code, req2, options, concrete])
    first = await _recv_or_none(peer, 10)
    second = await _recv_or_none(peer, 10) if first is not None else None
    await asyncio.sleep(0.3)
    _alive(hostile_router)
    await bystander.check()
    replies = {m[2]: m for m in (first, second) if m is not None and m[0] == ERROR}
    assert req1 in replies and replies[req1][4] == INVALID_URI, (first, second)
    assert req2 in replies and replies[req2][4] == INVALID_URI, (first, second)
    peer.close()
    await bystander.close()


# ---------------------------------------------------------------------------
# Silenced sessions: a meta procedure with wrongly typed arguments


META_BAD_CALLS = {
    "registration.lookup-options-str": ("wamp.registration.lookup", ["com.x", "notadict"]),
    "registration.lookup-options-list": ("wamp.registration.lookup", ["com.x", [1, 2]]),
    "subscription.lookup-options-int": ("wamp.subscription.lookup", ["com.x", 7]),
    "registration.match-uri-int": ("wamp.registration.match", [42]),
    "subscription.match-uri-dict": ("wamp.subscription.match", [{"a": 1}]),
    "session.count-filter-str": ("wamp.session.count", ["notalist"]),
    "session.list-filter-dict": ("wamp.session.list", [{"x": 1}]),
    "session.get-id-str": ("wamp.session.get", ["one"]),
    "registration.get-id-list": ("wamp.registration.get", [[1]]),
    "subscription.list_subscribers-id-float": ("wamp.subscription.list_subscribers", [1.5]),
    "session.add_testament-topic-int": ("wamp.session.add_testament", [42, "x", None]),
    "session.flush_testaments-scope-list": ("wamp.session.flush_testaments", [["x"]]),
}
META_ERRORS = {
    INVALID_ARGUMENT,
    INVALID_URI,
    "wamp.error.no_such_session",
    "wamp.error.no_such_registration",
    "wamp.error.no_such_subscription",
}


@pytest.mark.parametrize("case", list(META_BAD_CALLS))
@async_test(timeout=30)
async def test_meta_call_with_wrong_types_is_an_error_and_others_keep_receiving(
    hostile_router: HardenedRouter, case: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    topic = unique_uri("hostile.meta.topic")
    subscribers = [await connect(endpoints, kind) for kind in (WS_JSON, RS_CBOR)]
    sinks = [EventSink() for _ in subscribers]
    for s, sink in zip(subscribers, sinks, strict=True):
        await s.subscribe(sink, topic)
    peer = await RawPeer(endpoints).join()
    procedure, args = META_BAD_CALLS[case]
    request = peer.request()
    # One write: output for the subscribers is queued in the same turn as the
    # meta call's answer.
    peer.writer.write(
        RawPeer.frame([PUBLISH, peer.request(), {}, topic, [1]])
        + RawPeer.frame([CALL, request, {}, procedure, args])
        + RawPeer.frame([PUBLISH, peer.request(), {}, topic, [2]])
    )
    reply = await peer.reply_to(CALL, request, timeout=5)
    assert reply[0] == ERROR, f"{procedure}{args!r} answered {reply!r}"
    assert reply[4] in META_ERRORS, f"{procedure}{args!r} answered {reply!r}"
    for sink in sinks:
        await sink.wait(2)
    # Later traffic still reaches everyone.
    bystander.caller.publish(topic, 3)
    for sink in sinks:
        events = await sink.wait(3)
        assert [e[0][0] for e in events] == [1, 2, 3]
    await bystander.check()
    _alive(hostile_router)
    peer.close()
    for s in subscribers:
        await s.close()
    await bystander.close()


# ---------------------------------------------------------------------------
# Calls never answered: a result the caller cannot receive


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


UNENCODABLE = {
    # value the callee returns, callee kind, caller kind
    "bignum-to-msgpack": (2**70, RS_CBOR, RS_MSGPACK),
    "bignum-to-json": (2**70, RS_CBOR, WS_JSON),
    "nesting-300-to-json": (_nested(300), RS_MSGPACK, WS_JSON),
}


@pytest.mark.parametrize("case", list(UNENCODABLE))
@async_test(timeout=30)
async def test_result_the_caller_cannot_decode_becomes_an_error(
    hostile_router: HardenedRouter, case: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    value, callee_kind, caller_kind = UNENCODABLE[case]
    callee = await connect(endpoints, callee_kind)
    caller = await connect(endpoints, caller_kind)
    uri = unique_uri("hostile.unencodable")
    await callee.register(lambda: value, uri)
    try:
        result = await asyncio.wait_for(caller.call(uri), 5)
    except asyncio.TimeoutError:
        pytest.fail(f"{case}: the call was never answered")
    except ApplicationError as exc:
        assert exc.error != "wamp.error.internal_error", exc
    else:
        pytest.fail(f"{case}: the caller got a RESULT {str(result)[:80]}")
    # The caller's session is still usable, and so is everyone else's.
    assert isinstance(await answered(caller.call("wamp.session.count"), 5, "count"), int)
    await bystander.check()
    _alive(hostile_router)
    for s in (caller, callee):
        await s.close()
    await bystander.close()


@async_test(timeout=30)
async def test_result_over_the_callers_rawsocket_limit_becomes_payload_size_exceeded(
    hostile_router: HardenedRouter,
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    uri = unique_uri("hostile.too_big")
    await bystander.callee.register(lambda: "x" * 4000, uri)
    peer = await RawPeer(endpoints).join(HANDSHAKE_1K)  # it accepts 1 KiB at most
    request = peer.request()
    peer.send([CALL, request, {}, uri])
    reply = await peer.reply_to(CALL, request, timeout=5)
    assert reply[0] == ERROR and reply[4] == "wamp.error.payload_size_exceeded", reply
    request = peer.request()
    peer.send([CALL, request, {}, "wamp.session.count"])
    assert (await peer.reply_to(CALL, request))[0] != ERROR
    await bystander.check()
    peer.close()
    await bystander.close()


# ---------------------------------------------------------------------------
# Stalls: a short flood of unacknowledged publishes while the bystander calls


@async_test(timeout=60)
async def test_publish_flood_does_not_stall_a_bystander(hostile_router: HardenedRouter) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    flood = PublishFlood(endpoints, seconds=3.0)
    flood.start()
    await asyncio.sleep(0.3)  # the flood is under way
    latencies = []
    deadline = time.monotonic() + 2.5
    i = 0
    while time.monotonic() < deadline:
        i += 1
        t0 = time.monotonic()
        assert await bystander.call(i, timeout=10) == 2 * i
        latencies.append(time.monotonic() - t0)
        await asyncio.sleep(0.01)
    await asyncio.to_thread(flood.join, 10)
    assert flood.sent_bytes > 1_000_000, "the flood did not get going"
    _alive(hostile_router)
    # Issue 7's target is a p99 of 50 ms; on a shared test machine only a stall
    # (seconds, as before the fix) is asserted.
    assert max(latencies) < 1.0, (
        f"{len(latencies)} calls during the flood, slowest {max(latencies):.3f} s, "
        f"median {sorted(latencies)[len(latencies) // 2]:.3f} s"
    )
    await bystander.check()
    await bystander.close()


# ---------------------------------------------------------------------------
# Memory: connections that never say HELLO, frames that stop halfway


@pytest.mark.parametrize("how", ["tcp-nothing", "rawsocket-no-hello", "websocket-no-hello"])
@async_test(timeout=30)
async def test_connection_without_hello_is_closed_after_handshake_timeout(
    hostile_router: HardenedRouter, how: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    if how == "websocket-no-hello":
        reader, writer = await raw_websocket(endpoints)
    else:
        reader, writer = await asyncio.open_connection(*endpoints.rs_host_port)
        if how == "rawsocket-no-hello":
            writer.write(HANDSHAKE_16M)
            assert (await asyncio.wait_for(reader.readexactly(4), 5))[0] == 0x7F
    if how == "websocket-no-hello":
        # The router starts the closing handshake (CLOSE frame) ...
        took = await ws_close_within(reader, HANDSHAKE_TIMEOUT + SLACK)
    else:
        took = await stream_closed_within(reader, HANDSHAKE_TIMEOUT + SLACK)
    assert took is not None, (
        f"{how}: still open {HANDSHAKE_TIMEOUT + SLACK:g} s later "
        f"(handshake_timeout = {HANDSHAKE_TIMEOUT:g})"
    )
    if how == "websocket-no-hello":
        # ... and drops the connection when the peer does not complete it (within the
        # router's bound on closing, 5 s at the time of writing).
        dropped = await stream_closed_within(reader, 5.0 + SLACK)
        assert dropped is not None, "the router sent CLOSE but kept the silent connection"
    writer.transport.abort()
    await bystander.check()
    await bystander.close()


@pytest.mark.parametrize("when", ["before-hello", "after-welcome"])
@async_test(timeout=30)
async def test_half_sent_huge_frame_is_dropped(hostile_router: HardenedRouter, when: str) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    peer = RawPeer(endpoints)
    if when == "before-hello":
        assert (await peer.open())[0] == 0x7F
    else:
        await peer.join()
    # A frame announcing 16 MiB - 1 bytes, of which 1 MiB arrives, then nothing.
    peer.writer.write(b"\x00\xff\xff\xff" + b"\x00" * (1 << 20))
    took = await peer.closed_within(FRAME_TIMEOUT + SLACK)
    peer.close()
    assert took is not None, (
        f"{when}: connection with a half-sent frame still open "
        f"{FRAME_TIMEOUT + SLACK:g} s later (frame_timeout = {FRAME_TIMEOUT:g})"
    )
    await bystander.check()
    await bystander.close()


# ---------------------------------------------------------------------------
# Meta API and reserved names in the default realm


KILLS = {
    "wamp.session.kill": lambda target: [target.session],
    "wamp.session.kill_by_authid": lambda target: [target.authid],
    "wamp.session.kill_by_authrole": lambda target: [target.authrole],
    "wamp.session.kill_all": lambda target: [],
}


@pytest.mark.parametrize("procedure", list(KILLS))
@async_test(timeout=30)
async def test_anonymous_kill_is_not_authorized(
    hostile_router: HardenedRouter, procedure: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    hostile = await connect(endpoints, WS_JSON)
    target = bystander.callee.joined.result()
    with pytest.raises(ApplicationError) as ei:
        await answered(
            hostile.call(
                procedure, *KILLS[procedure](target), reason="wamp.close.forged", message="bye"
            ),
            5,
            procedure,
        )
    assert ei.value.error == NOT_AUTHORIZED
    await asyncio.sleep(0.2)
    assert not bystander.callee.left.done() and not bystander.caller.left.done()
    await bystander.check()
    await hostile.close()
    await bystander.close()


CAPTURES = {
    # pattern, match, a wamp.* URI the router does not implement that the pattern matches
    "prefix-empty": ("", "prefix", "wamp.session.countx"),
    "prefix-wam": ("wam", "prefix", "wamp.session.countx"),
    "prefix-wamp.": ("wamp.", "prefix", "wamp.session.countx"),
    "prefix-wamp.session": ("wamp.session", "prefix", "wamp.session.countx"),
    "prefix-fastwamp.": ("fastwamp.", "prefix", "fastwamp.router.no_such_thing"),
    "wildcard-wamp.session.": ("wamp.session.", "wildcard", "wamp.session.countx"),
    "wildcard-..count": ("..count", "wildcard", "wamp.nothing.count"),
}


@pytest.mark.parametrize("case", list(CAPTURES))
@async_test(timeout=30)
async def test_pattern_registration_does_not_capture_reserved_procedures(
    hostile_router: HardenedRouter, case: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    uri, match, unimplemented = CAPTURES[case]
    peer = await RawPeer(endpoints).join()
    request = peer.request()
    peer.send([REGISTER, request, {"match": match}, uri])
    await peer.reply_to(REGISTER, request)  # refused or accepted: either is fine
    # The router, not the pattern's callee, answers.
    try:
        count = await asyncio.wait_for(bystander.caller.call("wamp.session.count"), 3)
        details = await asyncio.wait_for(
            bystander.caller.call("wamp.session.get", peer.session_id), 3
        )
    except asyncio.TimeoutError:
        msg = await _recv_or_none(peer, 0.1)
        pytest.fail(f"{case}: meta call unanswered; the pattern's callee got {msg!r}")
    assert isinstance(count, int) and count >= 3
    assert isinstance(details, dict)
    # A reserved URI the router does not implement is not the pattern's either.
    with pytest.raises(ApplicationError):
        await answered(bystander.caller.call(unimplemented), 3, f"call to {unimplemented}")
    msg = await _recv_or_none(peer, 0.3)
    assert msg is None or msg[0] != INVOCATION, f"{case}: the pattern captured {msg!r}"
    await bystander.check()
    peer.close()
    await bystander.close()


@pytest.mark.parametrize("topic", ["wamp.session.on_leave", "fastwamp.session.on_overflow"])
@async_test(timeout=30)
async def test_testament_on_a_reserved_topic_is_refused(
    hostile_router: HardenedRouter, topic: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    watcher = await connect(endpoints, RS_MSGPACK)
    left = EventSink()
    await watcher.subscribe(left, "wamp.session.on_leave")
    hostile = await connect(endpoints, WS_JSON)
    victim = bystander.callee.joined.result()
    with pytest.raises(ApplicationError) as ei:
        await answered(
            hostile.call(
                "wamp.session.add_testament",
                topic,
                [victim.session, victim.authid, victim.authrole],
                {},
            ),
            5,
            "wamp.session.add_testament",
        )
    assert ei.value.error == NOT_AUTHORIZED
    hostile_id = hostile.joined.result().session
    hostile.drop()  # leaves abnormally: a stored testament would be published now
    await left.wait(1)
    await asyncio.sleep(0.3)
    gone = [args[0] for args, _ in left.events]
    assert victim.session not in gone, f"forged on_leave for a live session: {left.events}"
    assert hostile_id in gone
    await bystander.check()
    await watcher.close()
    await bystander.close()


# ---------------------------------------------------------------------------
# Log forging


FORGERS = {
    "abort-reason-before-hello": lambda mark: [[3, {}, f"wamp.close.x\n{mark} reason"]],
    "abort-message-before-hello": lambda mark: [[3, {"message": f"a\r\n{mark} msg"}, "x.y"]],
    "abort-reason-after-welcome": lambda mark: [
        [1, "realm1", {"roles": {"caller": {}}}],
        [3, {"message": f"m\n{mark} msg"}, f"wamp.close.x\n{mark} reason"],
    ],
    "invalid-uri-call": lambda mark: [
        [1, "realm1", {"roles": {"caller": {}}}],
        [48, 1, {}, f"com.x\n{mark} uri"],
        [3, {}, "wamp.close.normal"],
    ],
}


@pytest.mark.parametrize("case", list(FORGERS))
@async_test(timeout=30)
async def test_newline_in_client_text_does_not_forge_a_log_line(
    hostile_router: HardenedRouter, case: str
) -> None:
    endpoints = _endpoints(hostile_router)
    bystander = await Bystander.start(endpoints)
    mark = f"FORGED-{uuid.uuid4().hex[:10]}"
    peer = RawPeer(endpoints)
    assert (await peer.open())[0] == 0x7F
    for msg in FORGERS[case](mark):
        peer.send(msg)
    await peer.closed_within(3)
    peer.close()
    await bystander.check()
    await asyncio.sleep(0.2)
    lines = hostile_router.stderr_text().splitlines()
    forged = [line for line in lines if line.lstrip().startswith(mark)]
    assert not forged, f"{case}: forged log line(s) {forged!r}"
    await bystander.close()


# ---------------------------------------------------------------------------
# Last: the module's router answered everything and never had to be restarted


def test_the_router_was_never_restarted(_routers: _Routers) -> None:
    rp = _routers.get()
    assert _routers.started == 1, (
        f"{_routers.started - 1} case(s) above took the router down; "
        "see the failures above"
    )
    _alive(rp)
