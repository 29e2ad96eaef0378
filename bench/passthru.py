"""What payload passthru would save: MessagePack CALL -> INVOCATION with and without
decoding and re-encoding ``Arguments``/``ArgumentsKw``.

Issue 8 asks to measure passthru on 1 KiB and 64 KiB payloads before building it.
For each payload this times one message leg (a CALL frame in, the INVOCATION frame
out) four ways:

* ``decode+encode``: what fastwamp does today (``msgpack.unpackb`` of the frame,
  ``Packer.pack`` of the new message);
* ``splice``: read only the header items (type, request, options, URI) with an
  ``Unpacker`` and append the raw payload bytes after a new header (unsafe: a
  malformed payload would reach the callee);
* ``splice+skip``: the same, after ``Unpacker.skip()`` walked each payload item
  (its structure checked, no objects built; string contents are not checked as
  UTF-8);
* ``decode+splice``: decode all (every check as today), then splice the raw bytes
  instead of encoding again;

and then as fastwamp does it, with ``MsgpackSerializer`` (its checks included),
passthru off and on (``fastwamp.wamp.serializers.PASSTHRU``).

    python bench/passthru.py [--number 2000]
"""

from __future__ import annotations

import argparse
import random
import timeit
from collections.abc import Callable
from typing import Any

import msgpack

from fastwamp.wamp import serializers
from fastwamp.wamp.serializers import PASSTHRU, MsgpackSerializer

CALL, INVOCATION = 48, 68


def structured(size: int, rng: random.Random) -> list[Any]:
    """A payload of records (what an API returns): about ``size`` bytes packed."""
    records: list[dict[str, Any]] = []
    packed = 0
    while packed < size:
        record = {"id": rng.randrange(10**6), "name": f"user-{rng.randrange(10**6)}",
                  "score": rng.random(), "tags": ["a", "bb", "ccc"], "active": True}
        records.append(record)
        packed += len(msgpack.packb(record))
    return [[records], {"trace": "x" * 16}]


def blob(size: int) -> list[Any]:
    """One binary value of ``size`` bytes (a file, an image)."""
    return [[bytes(size)], {}]


def legs(frame: bytes) -> dict[str, Callable[[], bytes]]:
    pack = msgpack.Packer().pack
    unpackb = msgpack.unpackb

    def header() -> tuple[msgpack.Unpacker, int]:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(frame)
        count = unpacker.read_array_header()
        for _ in range(4):  # type, request, options, procedure
            unpacker.unpack()
        return unpacker, count

    def decode_encode() -> bytes:
        msg = unpackb(frame)
        return pack([INVOCATION, 1, 2, {}, *msg[4:]])

    def splice() -> bytes:
        unpacker, count = header()
        offset = unpacker.tell()
        return bytes([0x90 | count]) + pack(INVOCATION) + pack(1) + pack(2) + pack({}) + frame[offset:]

    def splice_skip() -> bytes:
        unpacker, count = header()
        offset = unpacker.tell()
        for _ in range(count - 4):
            unpacker.skip()
        return bytes([0x90 | count]) + pack(INVOCATION) + pack(1) + pack(2) + pack({}) + frame[offset:]

    def decode_splice() -> bytes:
        unpackb(frame)
        unpacker, count = header()
        return bytes([0x90 | count]) + pack(INVOCATION) + pack(1) + pack(2) + pack({}) + frame[unpacker.tell():]

    serializer = MsgpackSerializer()

    def router(passthru: bool) -> Callable[[], bytes]:
        def leg() -> bytes:
            serializers.PASSTHRU = passthru
            msg = serializer.decode(frame)
            return serializer.encode([INVOCATION, 1, 2, {}, *msg[4:]])
        return leg

    ways = {"decode+encode": decode_encode, "splice": splice, "splice+skip": splice_skip,
            "decode+splice": decode_splice, "fastwamp, passthru off": router(False)}
    if PASSTHRU:
        ways["fastwamp, passthru on"] = router(True)
    return ways


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(1)
    payloads = [("records ~100 B", structured(100, rng)), ("records ~1 KiB", structured(1024, rng)),
                ("records ~64 KiB", structured(65536, rng)), ("one 64 KiB blob", blob(65536))]
    columns = ["decode+encode", "splice", "splice+skip", "decode+splice",
               "fastwamp, passthru off", "fastwamp, passthru on"]
    print("| payload | frame bytes | " + " | ".join(f"{c} µs" for c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name, payload in payloads:
        frame = msgpack.packb([CALL, 1, {}, "com.example.proc", *payload])
        ways = legs(frame)
        expected = msgpack.unpackb(ways["decode+encode"]())
        times = {}
        for way, fn in ways.items():
            assert msgpack.unpackb(fn()) == expected, way
            number = max(10, args.number * 1024 // max(len(frame), 1024))
            best = min(timeit.repeat(fn, number=number, repeat=5)) / number
            times[way] = best * 1e6
        print(f"| {name} | {len(frame):,} | " + " | ".join(
            f"{times[w]:.2f}" if w in times else "-" for w in columns) + " |")
    serializers.PASSTHRU = PASSTHRU


if __name__ == "__main__":
    main()
