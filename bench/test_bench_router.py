"""Micro benchmarks of the per-message path through the sans-I/O router.

Run: ``pytest bench/test_bench_router.py --benchmark-only``.
"""

from __future__ import annotations

import pytest

from fastwamp.config import Config, RealmConfig
from fastwamp.router import Router
from fastwamp.testing import FakeScheduler
from fastwamp.wamp import messages as m
from fastwamp.wamp.serializers import MsgpackSerializer


class EncodingSink:
    """A transport stand-in: encodes what the router sends, as a real one would."""

    def __init__(self, serializer) -> None:
        self.encode = serializer.encode
        self.out: list[bytes] = []

    def send_messages(self, msgs: list[list]) -> None:
        encode = self.encode
        self.out = [encode(msg) for msg in msgs]

    def close(self) -> None:
        pass


def joined_session(router: Router, serializer):
    sink = EncodingSink(serializer)
    session = router.attach(sink, {"type": "bench"})
    session.receive([m.HELLO, "realm1", {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}}])
    router.flush()
    return session, sink


@pytest.fixture
def rpc_pair():
    router = Router(Config(realms=[RealmConfig("realm1", disclosure="on_request")]))
    router.scheduler = FakeScheduler(router)
    ser = MsgpackSerializer()
    callee, callee_sink = joined_session(router, ser)
    caller, caller_sink = joined_session(router, ser)
    callee.receive([m.REGISTER, 1, {}, "com.example.add"])
    router.flush()
    return router, ser, caller, callee, callee_sink, caller_sink


@pytest.mark.parametrize("options", [{}, {"runmode": "partition", "rkey": "customer-42"}],
                         ids=["plain", "partitioned"])
def test_call_decode_dispatch_encode(benchmark, rpc_pair, options):
    """One routed call, both legs: decode CALL, route, encode INVOCATION; decode YIELD,
    route, encode RESULT (what the router does per call, minus socket I/O).  The
    partitioned variant adds the routing key's hash and keyed selection."""
    router, ser, caller, callee, callee_sink, caller_sink = rpc_pair
    decode = ser.decode
    state = {"request": 0}

    def one_call() -> None:
        state["request"] += 1
        call = ser.encode([m.CALL, state["request"], options, "com.example.add", [1, 2]])
        caller.receive(decode(call))
        router.flush()
        invocation_id = callee.member.last_invocation_id
        yield_ = ser.encode([m.YIELD, invocation_id, {}, [3]])
        callee.receive(decode(yield_))
        router.flush()

    benchmark(one_call)
    assert caller_sink.out and caller_sink.out[-1].startswith(b"\x94\x32")


def test_publish_to_100_subscribers(benchmark):
    router = Router(Config(realms=[RealmConfig("realm1", disclosure="on_request")]))
    router.scheduler = FakeScheduler(router)
    ser = MsgpackSerializer()
    sinks = []
    for _ in range(100):
        s, sink = joined_session(router, ser)
        s.receive([m.SUBSCRIBE, 1, {}, "com.example.topic"])
        sinks.append(sink)
    publisher, _ = joined_session(router, ser)
    router.flush()
    publish = ser.encode([m.PUBLISH, 1, {}, "com.example.topic", ["hello"]])

    scheduler = router.scheduler

    def one_publish() -> None:
        publisher.receive(ser.decode(publish))
        scheduler.advance(0)  # a turn of the loop: flush, and a new fan-out budget

    benchmark(one_publish)
    assert all(sink.out for sink in sinks)


@pytest.mark.parametrize("build", ["c", "py"])
def test_message_check(benchmark, build):
    """The structural check every client message goes through, compiled vs Python."""
    from fastwamp._core import message

    check = message.message_problem_c if build == "c" else message.message_problem_py
    if check is None:
        pytest.skip("compiled core not built")
    msg = [m.CALL, 123, {"timeout": 1000}, "com.example.add", [1, 2], {"k": "v"}]
    benchmark(check, msg)


@pytest.mark.parametrize("build", ["c", "py"])
@pytest.mark.parametrize("filtered", [False, True], ids=["no-filter", "filter"])
def test_fanout_1000_receivers(benchmark, build, filtered):
    """The fan-out loop over 1,000 members (``member.send_to``): plain (exclude_me
    only) or with an exclude list and an authrole white list, compiled vs Python."""
    from fastwamp._core import fanout
    from fastwamp.router.twins import interpreted_module

    if build == "c":
        try:
            from fastwamp.router import member_c as module  # type: ignore[attr-defined]
        except ImportError:
            pytest.skip("compiled router not built")
        Filter = fanout.ReceiverFilterC
        if Filter is None:
            pytest.skip("compiled core not built")
    else:
        module = interpreted_module("fastwamp.router.member")
        Filter = fanout.ReceiverFilterPy
    queued: list = []
    receivers = []
    for sid in range(1, 1001):
        record = module.Member(None, queued.append)
        record.id, record.authid = sid, f"user{sid}"
        record.authrole = "user" if sid % 2 else "admin"
        receivers.append(record)
    if filtered:
        flt = Filter(1, None, frozenset(range(1, 100)), None, None, frozenset(["user"]), None)
    else:
        flt = Filter(1, None, None, None, None, None, None)
    event = [36, 1, 2, {}, ["x"]]

    def fan_out() -> None:
        module.send_to(receivers, 0, len(receivers), event, None, frozenset(), flt)
        for record in receivers:  # as the router's flush leaves them
            record.outbox.clear()
        queued.clear()

    benchmark(fan_out)
