"""What crosses NATS between nodes: msgpack arrays whose first item says what they are.

Broadcast on ``P.all.nodes``: ``HEARTBEAT [node, incarnation, seq, region]``,
``BYE [node, incarnation]``.  Broadcast on ``P.all.state``: ``DELTA [node,
incarnation, seq, added, entry]``.  To one node: ``SNAPSHOT_REQUEST [node]``,
``SNAPSHOT [node, incarnation, seq, entries, index, count]`` (part ``index`` of
``count``; without the last two, the whole), ``EVENT``, ``INVOKE``,
``INTERRUPT``, ``ANSWER`` (see :mod:`fastwamp.cluster.bridge`).

A replicated entry is a list: ``[REG, realm, session, uri, match, invoke, flags,
features, authid, authrole, created, rank, registration id]`` (a callee of a
registration; rank: the wall-clock time it registered, its place in first/last order;
the id is the node's own) or ``[SUB, realm, uri, match]`` (a node has subscribers of a
subscription) or ``[SBR, realm, session, uri, match, subscription id, created]`` (one
subscriber, for the meta API; the id is the node's own) or ``[SES, realm, session,
details]`` (a session, as ``wamp.session.get`` describes it).

``EVENT``, ``INVOKE``, ``INTERRUPT`` and ``ANSWER`` travel inside ``CHANNEL [node,
incarnation, epoch, seq, message, destination incarnation]``: numbered per
destination node (a new epoch each time the sender drops it), so that the
receiver delivers them in order and asks ``RESEND [node, epoch, from_seq]`` for what
core NATS lost; what the sender no longer holds it answers with ``SKIP [node, epoch,
seq]``. A heartbeat's optional sixth element maps each destination node to the
``[epoch, last seq, destination incarnation]`` sent to it, so that a lost last message is noticed too.

``EVENT [node, realm, topic, publication, payload, filters, publisher, authid,
authrole, extra]``: ``extra`` (optional) holds ``retain`` and ``history`` flags and the
publisher's wall-clock ``ts``; ``replay`` marks a retained event re-sent to a node
that (re)joined, stored but not delivered.  Publisher 0 is a meta event.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..wamp.payload import RawPayload

HEARTBEAT = 1
BYE = 2
DELTA = 3
SNAPSHOT_REQUEST = 4
SNAPSHOT = 5
EVENT = 6
INVOKE = 7
INTERRUPT = 8
ANSWER = 9
CHANNEL = 10
RESEND = 11
SKIP = 12

#: Messages to one node that the node-to-node channel numbers and resends when lost.
RELIABLE_KINDS = frozenset((EVENT, INVOKE, INTERRUPT, ANSWER))

#: Entry kinds.
REG = "r"
SUB = "s"
SES = "e"
SBR = "b"

#: A payload kept raw (:class:`fastwamp.wamp.payload.RawPayload`) crosses between
#: nodes as this extension type: its value count, then its bytes, as they came.
RAW_PAYLOAD_EXT = 42


def _raw_payload_to_ext(value: Any) -> Any:
    if type(value) is RawPayload:
        return msgpack.ExtType(RAW_PAYLOAD_EXT, bytes((value.count,)) + value.data)
    raise TypeError(f"cannot send {type(value).__name__} to another node")


def _ext_to_raw_payload(code: int, data: bytes) -> Any:
    if code == RAW_PAYLOAD_EXT and data and data[0] in (1, 2):
        return RawPayload(data[1:], data[0])
    return msgpack.ExtType(code, data)


_packer = msgpack.Packer(use_bin_type=True, default=_raw_payload_to_ext)


def encode(message: list) -> bytes:
    return _packer.pack(message)


def decode(data: bytes) -> Any:
    """A message from another node (raises ValueError on anything malformed)."""
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False,
                                ext_hook=_ext_to_raw_payload)
    except Exception as exc:  # msgpack raises several types
        raise ValueError(f"undecodable cluster message: {exc}") from None
    if type(value) is not list or not value or type(value[0]) is not int:
        raise ValueError("a cluster message must be an array starting with its kind")
    return value


def entry_key(entry: list) -> tuple:
    """What identifies an entry in its node's state (the entry without its attributes)."""
    if entry[0] == REG:
        return (REG, entry[1], entry[2], entry[3], entry[4])
    if entry[0] == SES:
        return (SES, entry[1], entry[2])
    if entry[0] == SBR:
        return (SBR, entry[1], entry[2], entry[3], entry[4])
    return (SUB, entry[1], entry[2], entry[3])
