"""Payload passthru: large MessagePack payloads routed as the bytes the client sent.

The serializers' side (what is kept raw, what takes the ordinary path, how each
serializer writes a raw payload) and the router's (calls, events, the meta API,
event history and the cluster wire read the decoded values)."""

from __future__ import annotations

import json

import cbor2
import msgpack
import pytest

from fastwamp.cluster import wire
from fastwamp.config import Config, HistoryConfig, RealmConfig
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp.payload import PASSTHRU_MIN_BYTES, RawPayload, expand
from fastwamp.wamp.serializers import (
    PASSTHRU,
    CborSerializer,
    JsonSerializer,
    MsgpackSerializer,
    SerializationError,
    SharedMessage,
)

pytestmark = pytest.mark.skipif(not PASSTHRU, reason="payload passthru needs the compiled "
                                                     "payload check")

ARGS = [[{"id": i, "name": f"user-{i}", "score": i / 7, "tags": ["a", "é✓"]}
         for i in range(30)], b"\x00\x01"]
KWARGS = {"trace": "x" * 20, "n": 2**64 - 1}
SER = MsgpackSerializer()


def frame(msg: list) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def decoded(msg: list) -> list:
    return SER.decode(frame(msg))


def test_a_large_payload_stays_raw_and_encodes_back_byte_for_byte() -> None:
    msg = decoded([m.CALL, 7, {"timeout": 5}, "com.p", ARGS, KWARGS])
    assert msg[:4] == [m.CALL, 7, {"timeout": 5}, "com.p"]
    raw = msg[4]
    assert type(raw) is RawPayload and raw.count == 2 and len(raw) >= PASSTHRU_MIN_BYTES
    assert raw.values() == [ARGS, KWARGS]
    assert m.check_message(msg) == m.CALL
    invocation = [m.INVOCATION, 1, 2, {"procedure": "com.p"}, raw]
    assert SER.encode(invocation) == frame([m.INVOCATION, 1, 2, {"procedure": "com.p"},
                                            ARGS, KWARGS])


@pytest.mark.parametrize("message", [
    [m.PUBLISH, 1, {}, "com.t", ARGS],
    [m.YIELD, 3, {"progress": True}, ARGS, KWARGS],
    [m.ERROR, m.INVOCATION, 4, {}, "com.app.error", ARGS, KWARGS],
])
def test_every_message_type_with_a_payload_from_a_client(message) -> None:
    msg = decoded(message)
    assert type(msg[-1]) is RawPayload
    assert expand(msg) == message


def test_other_serializers_write_the_decoded_values() -> None:
    raw = decoded([m.CALL, 1, {}, "com.p", ARGS, KWARGS])[4]
    out = [m.INVOCATION, 1, 2, {}, raw]
    expected = [m.INVOCATION, 1, 2, {}, ARGS, KWARGS]
    as_json = json.loads(JsonSerializer().encode(out))
    assert as_json[4][1] == "\x00" + "AAE="  # bytes in WAMP's JSON convention
    assert as_json[4][0] == ARGS[0] and as_json[5]["trace"] == KWARGS["trace"]
    assert cbor2.loads(CborSerializer().encode(out)) == expected
    shared = SharedMessage([m.EVENT, 5, 6, {}, raw])
    assert SER.encode(shared) == frame([m.EVENT, 5, 6, {}, ARGS, KWARGS])
    assert json.loads(JsonSerializer().encode(shared))[4][0] == ARGS[0]


def test_small_payloads_are_decoded_as_before() -> None:
    msg = decoded([m.CALL, 1, {}, "com.p", [1, 2], {"k": "v"}])
    assert msg == [m.CALL, 1, {}, "com.p", [1, 2], {"k": "v"}]


BIG = "y" * PASSTHRU_MIN_BYTES


@pytest.mark.parametrize("payload_bytes", [
    msgpack.packb([BIG]) + b"\xa2\xc3\x28",  # ArgumentsKw not a map, bad UTF-8 after
    msgpack.packb([BIG, b"\xff"])[:-2] + b"\xa1\xff",  # invalid UTF-8 in Arguments
    msgpack.packb([BIG]) + b"\x81\x01\x02",  # an integer key in ArgumentsKw
    msgpack.packb([BIG]) + msgpack.packb({"k": 1}) + b"\x00",  # trailing garbage
])
def test_what_the_ordinary_decoder_refuses_is_refused(payload_bytes) -> None:
    data = bytes((0x96,)) + frame([m.CALL, 1, {}, "com.p"])[1:] + payload_bytes
    with pytest.raises(SerializationError):
        SER.decode(data)


def test_undefined_and_bad_types_take_the_ordinary_path() -> None:
    undefined = msgpack.ExtType(0, b"")
    msg = SER.decode(msgpack.packb([m.CALL, 1, {}, "com.p", [BIG, undefined]]))
    assert msg == [m.CALL, 1, {}, "com.p", [BIG, None]]  # read as null, as always
    msg = SER.decode(frame([m.CALL, 1, {}, "com.p", {"not": BIG}]))
    assert type(msg[4]) is dict  # not a list: decoded, and check_message says so
    with pytest.raises(m.ProtocolViolation):
        m.check_message(msg)


def _router():
    config = Config(realms=[RealmConfig("realm1", admin_authroles=["anonymous"],
                                        event_history=[HistoryConfig("com.t", limit=10)])])
    return make_router(config)[0]


def _peer(router) -> LinkedPeer:
    p = LinkedPeer(router)
    assert p.hello("realm1")[0] == m.WELCOME
    return p


def test_a_call_and_its_result_pass_through() -> None:
    router = _router()
    callee, caller = _peer(router), _peer(router)
    callee.send([m.REGISTER, 1, {}, "com.p"])
    callee.take()
    caller.send(decoded([m.CALL, 1, {}, "com.p", ARGS, KWARGS]))
    inv = callee.take_one()
    assert inv[0] == m.INVOCATION and type(inv[4]) is RawPayload
    assert SER.encode(inv) == frame([m.INVOCATION, inv[1], inv[2], inv[3], ARGS, KWARGS])
    callee.send(decoded([m.YIELD, inv[1], {}, ARGS]))
    result = caller.take_one()
    assert expand(result) == [m.RESULT, 1, {}, ARGS]


def test_events_history_and_the_meta_api_see_decoded_values() -> None:
    router = _router()
    subscriber, publisher, monitor = _peer(router), _peer(router), _peer(router)
    subscriber.send([m.SUBSCRIBE, 1, {}, "com.t"])
    sub_id = subscriber.take_one()[2]
    publisher.send(decoded([m.PUBLISH, 1, {"acknowledge": True}, "com.t", ARGS, KWARGS]))
    assert publisher.take_one()[0] == m.PUBLISHED
    event = subscriber.take_one()
    assert type(event[-1]) is RawPayload and expand(event)[4:] == [ARGS, KWARGS]
    # Event history keeps the decoded values, and any serializer can send them.
    monitor.send([m.CALL, 1, {}, "wamp.subscription.get_events", [sub_id]])
    result = monitor.take_one()
    assert result[0] == m.RESULT, result
    assert result[3][0]["args"] == ARGS
    SER.encode(result)
    # A meta procedure called with a large payload reads its arguments decoded.
    roles = [f"role-{i:04d}" for i in range(80)]
    monitor.send(decoded([m.CALL, 2, {}, "wamp.session.count", [roles]]))
    assert monitor.take_one() == [m.RESULT, 2, {}, [0]]


def test_a_raw_payload_crosses_the_cluster_wire_as_it_is() -> None:
    raw = decoded([m.CALL, 1, {}, "com.p", ARGS, KWARGS])[4]
    message = wire.decode(wire.encode([wire.INVOKE, "realm1", [raw], {"k": 1}]))
    again = message[2][0]
    assert type(again) is RawPayload and again.data == raw.data and again.count == 2
