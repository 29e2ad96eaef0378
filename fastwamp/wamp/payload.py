"""Payload passthru: the ``Arguments`` and ``ArgumentsKw`` of a MessagePack message,
kept as the bytes the client sent.

``MsgpackSerializer.decode`` gives a CALL, YIELD, PUBLISH or ERROR whose payload
is large enough (:data:`PASSTHRU_MIN_BYTES`) and passes the compiled check
(:func:`fastwamp._core.msgpack_check.payload_end`: well formed, strings valid
UTF-8, map keys strings, no extension type, not too deep) with one
:class:`RawPayload` as its last element, in place of its ``Arguments`` and
``ArgumentsKw``. The router routes it like any payload (``msg[4:]`` of a CALL is
``[RawPayload]``); the MessagePack encoder writes its bytes as they came, and
every other serializer, and every reader inside the router (the meta API, the
router's own calls, event history), sees the decoded values through
:func:`expand`. Passthru saves the decoding and encoding of the payload, which
for 1 KiB of records is most of a call's cost (``bench/passthru.py``).
"""

from __future__ import annotations

from typing import Any

import msgpack

#: Smallest payload (bytes) kept raw; below it decoding costs less than checking.
PASSTHRU_MIN_BYTES = 512


class RawPayload:
    """``count`` (1 or 2) MessagePack values, as bytes (or a read-only view of the
    frame they came in): ``Arguments`` and, with 2, ``ArgumentsKw``. Immutable; its
    decoded values are made once, when asked."""

    __slots__ = ("data", "count", "_values")

    def __init__(self, data: bytes | memoryview, count: int) -> None:
        self.data = data
        self.count = count
        self._values: list | None = None

    def values(self) -> list:
        """The decoded ``[Arguments]`` or ``[Arguments, ArgumentsKw]`` (a new list each
        time; the values themselves are shared, do not change them)."""
        values = self._values
        if values is None:
            # The bytes passed the check: they decode, to what the ordinary decoder gives.
            values = self._values = msgpack.unpackb(bytes((0x90 | self.count,)) + self.data,
                                                    raw=False)
        return list(values)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<RawPayload {self.count} values, {len(self.data)} bytes>"


def expand(msg: list) -> list:
    """``msg`` with a :class:`RawPayload` tail replaced by its decoded values (``msg``
    itself when it has none)."""
    if msg and type(msg[-1]) is RawPayload:
        return [*msg[:-1], *msg[-1].values()]
    return msg


def expand_payload(payload: list) -> list:
    """A payload tail (``msg[4:]`` of a CALL, say) with its values decoded."""
    if payload and type(payload[-1]) is RawPayload:
        return [*payload[:-1], *payload[-1].values()]
    return payload


def has_raw_tail(msg: Any) -> bool:
    return bool(msg) and type(msg[-1]) is RawPayload
