"""payload_end: the MessagePack check of payload passthru, held against a model made
of the router's own decoder rules (``msgpack.unpackb`` as the serializer calls it,
then ``value_problem``), on both builds; and plain_small, the byte scan that lets the
decoder skip ``value_problem``, held to never skip a value it would refuse."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

MAX_DEPTH = 128


def _refuse_ext(code: int, data: bytes) -> None:
    raise ValueError("extension type")


def model_end(impl, data: bytes, pos: int, items: int, depth: int, max_depth: int) -> int:
    """Where ``items`` values at ``pos`` end if the router's decoder would take each as
    it is (no extension type either: passthru leaves JavaScript undefined to the
    ordinary decoder), else -1."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, ext_hook=_refuse_ext,
                                max_buffer_size=max(len(data), 1))
    unpacker.feed(data[pos:])
    try:
        for _ in range(items):
            value = unpacker.unpack()
            if impl.value_problem(value, max_depth - depth, object()) is not None:
                return -1
    except Exception:  # noqa: BLE001 - every decoding failure means "not taken"
        return -1
    return pos + unpacker.tell()


scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
           | st.text(max_size=40) | st.binary(max_size=40))
keys = st.text(max_size=8) | st.integers(0, 5) | st.binary(max_size=3)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=5),
    max_leaves=40,
)


def _pack(items: list) -> bytes:
    return b"".join(msgpack.packb(item, use_bin_type=True, strict_types=False)
                    for item in items)


@settings(max_examples=400, deadline=None)
@given(items=st.lists(values, min_size=1, max_size=3), prefix=st.binary(max_size=4))
def test_well_formed_values_agree_with_the_decoder(impl, items, prefix) -> None:
    data = prefix + _pack(items)
    expected = model_end(impl, data, len(prefix), len(items), 1, MAX_DEPTH)
    assert impl.payload_end(data, len(prefix), len(items), 1, MAX_DEPTH) == expected


@settings(max_examples=600, deadline=None)
@given(items=st.lists(values, min_size=1, max_size=2), cuts=st.data())
def test_damaged_bytes_agree_with_the_decoder(impl, items, cuts) -> None:
    data = bytearray(_pack(items))
    for _ in range(cuts.draw(st.integers(1, 3))):
        kind = cuts.draw(st.sampled_from(["flip", "truncate", "insert"]))
        at = cuts.draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = cuts.draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = cuts.draw(st.binary(min_size=1, max_size=4))
    raw = bytes(data)
    for n in (1, len(items)):
        assert impl.payload_end(raw, 0, n, 1, MAX_DEPTH) == model_end(impl, raw, 0, n, 1,
                                                                        MAX_DEPTH)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64), n=st.integers(1, 3))
def test_random_bytes_agree_with_the_decoder(impl, raw, n) -> None:
    assert impl.payload_end(raw, 0, n, 1, MAX_DEPTH) == model_end(impl, raw, 0, n, 1, MAX_DEPTH)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_nesting_limit(impl, depth) -> None:
    max_depth = 10
    for nest in range(1, 13):
        value: list = []
        for _ in range(nest - 1):
            value = [value]
        data = msgpack.packb(value)
        expected = model_end(impl, data, 0, 1, depth, max_depth)
        assert impl.payload_end(data, 0, 1, depth, max_depth) == expected, nest


@pytest.mark.parametrize("raw", [
    b"\xa2\xc3\x28",  # invalid continuation
    b"\xa2\xc0\x80",  # overlong NUL
    b"\xa3\xed\xa0\x80",  # an encoded surrogate
    b"\xa4\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xa3\xe2\x82",  # truncated sequence (the string says 3 bytes, two given)
    b"\xa2\xe2\x82",  # sequence cut by the string's end
    b"\xd4\x00\x00",  # fixext 1 (JavaScript undefined): left to the decoder
    b"\xc7\x01\x05\x00",  # ext 8
    b"\xc1",  # never used
    b"\x81\x01\x02",  # an integer map key
    b"\x81\xc4\x01k\x02",  # a binary map key
    b"\xdd\xff\xff\xff\xff",  # an array that claims more items than there are bytes
])
def test_refused_here_and_by_the_decoder(impl, raw) -> None:
    assert impl.payload_end(raw, 0, 1, 1, MAX_DEPTH) == -1
    assert model_end(impl, raw, 0, 1, 1, MAX_DEPTH) == -1


@pytest.mark.parametrize("value", [
    "é✓😀", b"\x00\xff", 2**64 - 1, -(2**63), 1.5, struct.unpack("!f", b"\x3f\xc0\x00\x00")[0],
    {"k": [1, {"n": None}]}, [True, False, None], "x" * 70000, b"y" * 70000, list(range(20)),
])
def test_accepted_values(impl, value) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    assert impl.payload_end(data, 0, 1, 1, MAX_DEPTH) == len(data)
    assert impl.payload_end(data + b"\x01", 0, 1, 1, MAX_DEPTH) == len(data)


def _damaged(data: bytes, cuts: st.DataObject) -> bytes:
    out = bytearray(data)
    for _ in range(cuts.draw(st.integers(0, 3))):
        at = cuts.draw(st.integers(0, max(len(out) - 1, 0)))
        if out and cuts.draw(st.booleans()):
            out[at] = cuts.draw(st.integers(0, 255))
        else:
            out[at:at] = cuts.draw(st.binary(min_size=1, max_size=4))
    return bytes(out)


@settings(max_examples=600, deadline=None)
@given(value=values, cuts=st.data(), max_depth=st.sampled_from([1, 3, 8, MAX_DEPTH]))
def test_plain_small_never_skips_a_value_the_check_refuses(impl, value, cuts, max_depth):
    data = _damaged(_pack([value]), cuts)
    if not impl.plain_small(data, max_depth):
        return
    assert len(data) <= max_depth
    try:
        decoded = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
    except Exception:  # noqa: BLE001 - refused by the decoder: nothing to check
        return
    assert impl.value_problem(decoded, max_depth, None) is None


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40), max_depth=st.sampled_from([2, 16, MAX_DEPTH]))
def test_plain_small_on_random_bytes(impl, raw, max_depth):
    markers = set(range(0xC4, 0xCA)) | set(range(0xD4, 0xD9))
    expected = len(raw) <= max_depth and not markers & set(raw)
    assert impl.plain_small(raw, max_depth) == expected
    if expected:
        try:
            decoded = msgpack.unpackb(raw, raw=False, strict_map_key=True,
                                      ext_hook=_refuse_ext)
        except Exception:  # noqa: BLE001
            return
        assert impl.value_problem(decoded, max_depth, None) is None


def test_plain_small_cases(impl):
    call = msgpack.packb([48, 7, {"timeout": 1000}, "com.example.add", [1, 2], {"k": "v"}])
    assert impl.plain_small(call, MAX_DEPTH)
    assert not impl.plain_small(bytearray(call), MAX_DEPTH)  # bytes only
    assert not impl.plain_small(call, len(call) - 1)  # longer than the depth bound
    assert not impl.plain_small(msgpack.packb([48, 7, {}, "p", [b"x"]]), MAX_DEPTH)  # bin
    assert not impl.plain_small(msgpack.packb([1, msgpack.ExtType(1, b"")]), MAX_DEPTH)
    assert not impl.plain_small(msgpack.packb({b"k": 1}), MAX_DEPTH)  # a bytes key
    nested = msgpack.packb(_nest(MAX_DEPTH + 1))
    assert not impl.plain_small(nested, MAX_DEPTH)  # too deep is too long as well


def _nest(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value
