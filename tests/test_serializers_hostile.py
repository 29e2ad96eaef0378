"""Serializers under hostile input: SerializationError and nothing else, never a crash.

Decoding accepts only what every serializer can encode again (see the module
docstring of fastwamp.wamp.serializers), nested at most MAX_DEPTH levels, for
all three serializers alike; encoding reports whatever it cannot encode as
SerializationError. Cases where a library could crash the process (deep
nesting) run in a child process.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import cbor2
import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastwamp.wamp import serializers
from fastwamp.wamp.serializers import (
    MAX_DEPTH,
    CborSerializer,
    JsonSerializer,
    MsgpackSerializer,
    SerializationError,
    SharedMessage,
    make_serializer,
)

NAMES = ["json", "msgpack", "cbor"]


def nested(depth: int, leaf: object = 1) -> object:
    """``depth`` lists around ``leaf``."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def deep_bytes(name: str, depth: int) -> bytes:
    """``depth`` nested one-element arrays around the integer 1, in ``name``'s format."""
    if name == "json":
        return b"[" * depth + b"1" + b"]" * depth
    if name == "msgpack":
        return b"\x91" * depth + b"\x01"
    return b"\x81" * depth + b"\x01"


@pytest.fixture(params=NAMES)
def ser(request):
    return make_serializer(request.param)


def refuse(ser, data) -> str:
    with pytest.raises(SerializationError) as info:
        ser.decode(data)
    return str(info.value)


# -- nesting depth: one limit for all serializers ------------------------------------


def library_encode(name: str, value: object) -> bytes:
    if name == "json":
        return json.dumps(value).encode()
    if name == "msgpack":
        return msgpack.packb(value)
    return cbor2.dumps(value)


@pytest.mark.parametrize("name", NAMES)
def test_depth_limit_is_the_same_everywhere(name):
    ser = make_serializer(name)
    assert ser.decode(deep_bytes(name, MAX_DEPTH)) == nested(MAX_DEPTH - 1, [1])
    assert "nesting" in refuse(ser, deep_bytes(name, MAX_DEPTH + 1))
    # Maps count as levels too.
    deepest = nested(MAX_DEPTH - 2, {"k": [1]})
    assert ser.decode(library_encode(name, deepest)) == deepest
    refuse(ser, library_encode(name, [deepest]))


@pytest.mark.parametrize("source", NAMES)
def test_anything_decoded_can_be_encoded_by_every_serializer(source):
    """At the depth limit, plus the few levels the router adds around a payload."""
    value = nested(MAX_DEPTH - 2, {"deep": [b"\x00\xff", 2**64 - 1, -(2**63), 1.5, None, True]})
    decoded = make_serializer(source).decode(make_serializer(source).encode(value))
    assert decoded == value
    wrapped = [50, 1, {}, [[{"args": [decoded]}]]]  # e.g. a history entry in a RESULT
    for target in NAMES:
        ser = make_serializer(target)
        assert ser.decode(ser.encode(decoded)) == value
        ser.encode(wrapped)


DEEP_CHILD = textwrap.dedent(
    """
    import json, sys
    from fastwamp.wamp.serializers import SerializationError, make_serializer

    depth = 100_000
    cases = {
        "json": b"[" * depth + b"]" * depth,
        "json-maps": b'{"a":' * depth + b"1" + b"}" * depth,
        "json-open": b"[" * depth,
        "msgpack": b"\\x91" * depth + b"\\xc0",
        "msgpack-maps": b"\\x81\\xa1a" * depth + b"\\xc0",
        "cbor": b"\\x81" * depth + b"\\xf6",
        "cbor-maps": b"\\xa1\\x61a" * depth + b"\\xf6",
        "cbor-tags": b"\\xd9\\x99\\x99" * depth + b"\\x01",
        "cbor-indefinite": b"\\x9f" * depth,
    }
    results = {}
    for case, data in cases.items():
        ser = make_serializer(case.split("-")[0])
        try:
            ser.decode(data)
            results[case] = "decoded"
        except SerializationError:
            results[case] = "SerializationError"
    value = 1
    for _ in range(depth):
        value = [value]
    cycle = []
    cycle.append(cycle)
    for name in ("json", "msgpack", "cbor"):
        for what, msg in (("deep", [value]), ("cycle", [cycle])):
            try:
                make_serializer(name).encode(msg)
                results[f"encode-{name}-{what}"] = "encoded"
            except SerializationError:
                results[f"encode-{name}-{what}"] = "SerializationError"
    print(json.dumps(results))
    """
)


def test_100k_levels_never_crash():
    """Decoding and encoding 100,000 levels: SerializationError, in a child process
    with a small C stack so that any recursion per level would crash it."""
    import resource

    def small_stack() -> None:
        resource.setrlimit(resource.RLIMIT_STACK, (1 << 21, 1 << 21))

    proc = subprocess.run([sys.executable, "-c", DEEP_CHILD], capture_output=True, text=True,
                          timeout=120, preexec_fn=small_stack)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    results = json.loads(proc.stdout)
    assert set(results.values()) == {"SerializationError"}, results
    assert len(results) == 15


def test_stdlib_json_fallback(monkeypatch):
    """Without orjson: deep input is a RecursionError inside json, big integers are
    read: both become SerializationError."""
    monkeypatch.setattr(serializers, "orjson", None)
    ser = JsonSerializer()
    assert ser.decode(b'[1,"\\u0000AQI=",{"a":[2]}]') == [1, b"\x01\x02", {"a": [2]}]
    assert "nesting" in refuse(ser, deep_bytes("json", MAX_DEPTH + 1))
    refuse(ser, b"[" * 100_000 + b"]" * 100_000)
    assert "64-bit" in refuse(ser, b"[18446744073709551616]")
    refuse(ser, b"[" + b"1" * 5000 + b"]")  # int() refuses that many digits
    with pytest.raises(SerializationError):
        ser.encode([math.nan])  # no invalid JSON out of the fallback
    with pytest.raises(SerializationError):
        ser.encode(nested(5000))


# -- values the router could not encode again -------------------------------------


def test_big_integers():
    cb = CborSerializer()
    assert cb.decode(cbor2.dumps([2**64 - 1, -(2**63)])) == [2**64 - 1, -(2**63)]
    assert cb.decode(b"\xc2\x41\x05") == 5  # a small bignum (tag 2)
    for big in (2**64, 2**70, -(2**63) - 1, -(2**64), 10**400):
        assert "64-bit" in refuse(cb, cbor2.dumps([1, {"a": [big]}]))
    # JSON: orjson reads integers beyond 64 bits as floats; MessagePack cannot hold them.
    assert JsonSerializer().decode(b"[100000000000000000000]") == [1e20]


def test_msgpack_extension_types():
    mp = MsgpackSerializer()
    # JavaScript undefined as msgpackr sends it (fixext 1, type 0, data 0): null.
    assert mp.decode(b"\x93\xd4\x00\x00\x01\x81\xa1k\xd4\x00\x00") == [None, 1, {"k": None}]
    assert mp.decode(msgpack.packb([msgpack.ExtType(0, b"")])) == [None]
    for ext in (msgpack.ExtType(5, b"\x00"), msgpack.ExtType(0, b"ab"),
                msgpack.ExtType(127, b"x" * 100), msgpack.Timestamp(1, 0)):
        refuse(mp, msgpack.packb([1, {"a": [ext]}], use_bin_type=True))
    refuse(mp, b"\x92\x01\xd4\xfb\x00")  # a negative (reserved) extension type


def test_map_keys_must_be_strings():
    mp, cb = MsgpackSerializer(), CborSerializer()
    for key in (1, b"k", 1.5, None, True):
        refuse(mp, msgpack.packb([{key: 1}], use_bin_type=True, strict_types=False))
    refuse(mp, b"\x91\x81\x92\x01\x02\x01")  # an array as a key
    for data in (b"\x81\xa1\x01\x02", b"\x81\xa1\x41k\x02", b"\x81\xa1\x82\x01\x02\x01",
                 b"\x81\xa1\xf6\x01"):
        refuse(cb, data)
    refuse(JsonSerializer(), b'{"a":1,1:2}')


def test_colliding_integer_keys_are_refused_at_once():
    """Integers hash to themselves modulo 2**61 - 1: a map of colliding integer keys
    would take quadratic time to build. MessagePack refuses the first one."""
    n = 200_000
    p = 2**61 - 1
    data = bytearray(b"\xdf" + n.to_bytes(4, "big"))
    for i in range(n):
        data += b"\xcf" + (i * p % 2**64).to_bytes(8, "big") + b"\x01"
    refuse(MsgpackSerializer(), bytes(data))


def test_cbor_tags_and_simple_values():
    cb = CborSerializer()
    assert cb.decode(b"\x83\xf7\x01\x81\xf7") == [None, 1, [None]]  # undefined: null
    assert cb.decode(b"\xd9\xd9\xf7\x82\x01\x02") == [1, 2]  # self-described CBOR
    for data in (
        b"\x81\xc1\x01",  # epoch datetime (tag 1)
        b"\x81\xc0\x74" + b"2020-01-01T00:00:00Z",  # string datetime (tag 0)
        b"\x81\xc4\x82\x01\x02",  # decimal fraction
        b"\x81\xc5\x82\x1b\x7f\xff\xff\xff\xff\xff\xff\xff\x01",  # bigfloat, huge exponent
        b"\x81\xd8\x1e\x82\x01\x02",  # rational
        b"\x81\xd9\x01\x02\x82\x01\x02",  # set (tag 258)
        b"\x81\xd8\x25\x50" + b"\x00" * 16,  # UUID
        b"\x81\xd8\x23\x62a*",  # regular expression
        b"\x81\xd9\x99\x99\x01",  # an unknown tag
        b"\x81\xf0",  # simple value 16
        b"\x81\xf8\xff",  # simple value 255
    ):
        refuse(cb, data)


def test_cbor_references_cannot_amplify():
    """Shared values (tags 28/29) and string references (25/256) would let a small
    message decode to a huge one (or a cycle): refused."""
    cb = CborSerializer()
    shared = [1] * 100
    refuse(cb, cbor2.dumps([shared, shared, shared], value_sharing=True))
    cycle: list = []
    cycle.append(cycle)
    refuse(cb, cbor2.dumps(cycle, value_sharing=True))
    text = "x" * 1000
    refuse(cb, cbor2.dumps([text] * 1000, string_referencing=True))


def test_json_binary_convention():
    js = JsonSerializer()
    assert js.decode(b'["\\u0000AQI=", {"b": ["\\u0000"]}]') == [b"\x01\x02", {"b": [b""]}]
    assert js.decode('["\\u0000AQI="]') == [b"\x01\x02"]  # a text frame as str
    assert js.decode(b'"\\u0000AQI="') == b"\x01\x02"
    refuse(js, b'["\\u0000\xc3\xa9"]')  # not ASCII
    refuse(js, b'["\\u0000A"]')  # bad padding
    deep = b'["\\u0000AQI=",' + b"[" * 100 + b'"\\u0000AA=="' + b"]" * 100 + b"]"
    assert js.decode(deep) == [b"\x01\x02", nested(99, [b"\x00"])]


def decode_or_refuse(ser, data) -> None:
    """``data`` decodes to something every serializer can encode, or is refused."""
    try:
        value = ser.decode(data)
    except SerializationError:
        return
    for target in NAMES:
        make_serializer(target).encode([value])


@pytest.mark.parametrize("data", [
    b"", b"\xff", b"\xc1", b"[1,", b'["\xff"]', b"\x92\x01", b"\x82\x01",
    b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",  # msgpack: 4 billion elements announced
    b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # CBOR
    b"\x7b\xff\xff\xff\xff\xff\xff\xff\xff", b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00",
    b"\xa2\xed\xa0\x80\x01",  # msgpack str with an encoded surrogate
    b"\x62\xed\xa0",  # CBOR text, invalid UTF-8
    b'["\\ud800"]', b"[NaN]", b"[1] x", b"\x91\x01\x01", b"\x81\x01\x01",
])
def test_garbage(ser, data):
    decode_or_refuse(ser, data)


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=64), name=st.sampled_from(NAMES))
def test_random_bytes(data, name):
    decode_or_refuse(make_serializer(name), data)


wamp_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
              st.floats(allow_nan=False, allow_infinity=False),
              # A string starting with NUL is binary in JSON (WAMP's convention).
              st.text(max_size=5).filter(lambda text: not text.startswith("\x00")),
              st.binary(max_size=5)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=3), children, max_size=3)),
    max_leaves=15,
)


@settings(max_examples=500, deadline=None)
@given(value=wamp_values, name=st.sampled_from(NAMES), cut=st.integers(0, 200),
       flip=st.integers(0, 255))
def test_mutated_messages(value, name, cut, flip):
    """Valid messages round-trip; truncated or corrupted ones give SerializationError."""
    ser = make_serializer(name)
    msg = [16, 1, {}, "com.topic", [value]]
    data = ser.encode(msg)
    assert ser.decode(data) == msg
    pos = cut % len(data)
    for bad in (data[:pos], data[:pos] + bytes([data[pos] ^ flip]) + data[pos + 1:]):
        decode_or_refuse(ser, bad)


# -- encoding ---------------------------------------------------------------------


class Unencodable:
    pass


@pytest.mark.parametrize(("name", "value"), [
    ("json", 2**64), ("json", -(2**63) - 1), ("json", {b"key": 1}), ("json", {1: 1}),
    ("json", nested(300)), ("json", Unencodable()), ("json", "\ud800"),
    ("msgpack", 2**64), ("msgpack", -(2**63) - 1), ("msgpack", nested(2000)),
    ("msgpack", Unencodable()), ("msgpack", "\ud800"),
    ("cbor", nested(2000)), ("cbor", Unencodable()),
])
def test_encode_raises_serialization_error_only(name, value):
    ser = make_serializer(name)
    with pytest.raises(SerializationError):
        ser.encode([1, value])
    # The serializer stays usable (a failed MessagePack pack leaves no residue).
    assert ser.decode(ser.encode([1, "ok"])) == [1, "ok"]


def test_encode_nan_as_json_null():
    assert JsonSerializer().encode([math.nan, math.inf]) == b"[null,null]"


def test_shared_message_failure_is_not_retried(monkeypatch):
    ser = MsgpackSerializer()
    calls = []

    def failing(msg):
        calls.append(msg)
        raise SerializationError("nope")

    ser.encode = serializers._encode_once("msgpack", failing)
    msg = SharedMessage([36, 1, 2, {}, [2**70]])
    for _ in range(3):
        with pytest.raises(SerializationError, match="nope"):
            ser.encode(msg)
    assert len(calls) == 1
    # Another serializer still encodes it (or fails on its own).
    assert CborSerializer().encode(msg) == cbor2.dumps([36, 1, 2, {}, [2**70]])


def test_orjson_is_in_use():
    assert serializers.orjson is orjson
