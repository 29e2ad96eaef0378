# cython: annotation_typing=False
"""A session as its realm's dealer and broker see it: a slotted routing record.

:class:`Member` carries what routing needs and nothing of the handshake: the
session's id and identity, the features it announced (as bit flags), its
outbox, and the dealer's and broker's bookkeeping (calls, invocations,
registrations, subscriptions, testaments; the sets are created on first use).
:class:`~fastwamp.router.session.RouterSession` owns one and keeps the state
machine, the handshake and the transport.

Output: :meth:`Member.send` appends to the outbox and, on the first message,
hands the record to ``on_output`` (the router's delivery queue); the router
later passes the outbox to the transport.  Everything else a member needs from
its session (logging a refusal, pausing its input) goes through ``owner``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from .._core.fanout import ReceiverFilter, SharedMessage
from ..wamp import messages as m
from ..wamp.payload import RawPayload

if TYPE_CHECKING:
    from collections.abc import Container

log = logging.getLogger("fastwamp.router")

#: Bytes of frames :meth:`Member.deliver` joins into one write; what follows a
#: larger burst goes through the connection, which writes big output vectored.
JOINED_FRAMES_MAX = 16 * 1024

#: RawSocket frames of this many bytes or more need the length flag: the connection
#: frames them.
RAWSOCKET_LENGTH_LIMIT = 1 << 24

# Features a client announced in HELLO that routing acts on, as bits of Member.features.
CALLER_PROGRESSIVE_CALL_INVOCATIONS = 1
CALLEE_PROGRESSIVE_CALL_INVOCATIONS = 2
CALLEE_PROGRESSIVE_CALL_RESULTS = 4
CALLEE_CALL_CANCELING = 8
CALLEE_CALL_TIMEOUT = 16
CALLEE_CALLER_IDENTIFICATION = 32

#: (role, feature) -> bit, for the features above.
FEATURE_BITS: dict[tuple[str, str], int] = {
    ("caller", "progressive_call_invocations"): CALLER_PROGRESSIVE_CALL_INVOCATIONS,
    ("callee", "progressive_call_invocations"): CALLEE_PROGRESSIVE_CALL_INVOCATIONS,
    ("callee", "progressive_call_results"): CALLEE_PROGRESSIVE_CALL_RESULTS,
    ("callee", "call_canceling"): CALLEE_CALL_CANCELING,
    ("callee", "call_timeout"): CALLEE_CALL_TIMEOUT,
    ("callee", "caller_identification"): CALLEE_CALLER_IDENTIFICATION,
}


def feature_flags(roles: dict[str, Any]) -> int:
    """The bits of :data:`FEATURE_BITS` that HELLO.Details.roles announces (``True`` only)."""
    flags = 0
    for (role, feature), bit in FEATURE_BITS.items():
        info = roles.get(role)
        if type(info) is dict:
            features = info.get("features")
            if type(features) is dict and features.get(feature) is True:
                flags |= bit
    return flags


class MessageCounts:
    """Messages by type code (0-255): C integers in the compiled twin (an increment is a
    few instructions; a Python int above 256 is a new object each time)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0] * 256

    def add(self, code: int) -> None:
        self.counts[code & 255] += 1

    def get(self, code: int) -> int:
        return self.counts[code & 255]  # type: ignore[no-any-return]


class Owner(Protocol):
    """What a member asks of the session that owns it."""

    @property
    def peer(self) -> str: ...

    def refused(self, request_type: int, error: str, message: object) -> None: ...

    def log_bad_input(self, msg: str, *values: object, level: int = ...) -> None: ...

    def pause_input(self) -> None: ...

    def resume_input(self) -> None: ...


class Member:
    """One session's routing record (see the module docstring)."""

    __slots__ = (
        "id", "authid", "authrole", "features", "is_service", "outbox", "closed", "owner",
        "on_output", "callee", "registrations", "subscriptions", "invocations", "calls",
        "last_invocation_id", "testaments", "testament_bytes", "exclude_me_filter",
        "sent_counts", "sink", "frame_transport", "frame_key", "frame_limit", "frame_traffic",
        "frame_encode", "frame_pack", "frame_opcode", "frame_payload_limit",
    )

    def __init__(self, owner: Any, on_output: Any, is_service: bool = False) -> None:
        self.id = 0
        self.authid = ""
        self.authrole = ""
        #: FEATURE_BITS announced in HELLO.
        self.features = 0
        #: True only for the router's own session in each realm (it may use "wamp.").
        self.is_service = is_service
        self.outbox: list[list] = []
        #: Set once the session is closed: nothing more is queued for it.
        self.closed = False
        self.owner = owner
        #: Called with this member when its outbox gets its first message.
        self.on_output = on_output
        #: The dealer's and broker's bookkeeping.
        self.callee: Any = None  # _core Callee, created on first REGISTER
        self.registrations: set[int] | None = None
        self.subscriptions: set[int] | None = None
        self.invocations: dict[int, Any] = {}  # as callee: invocation id -> Invocation
        self.calls: dict[int, Any] = {}  # as caller: CALL request id -> Invocation
        self.last_invocation_id = 0  # router -> callee request id counter
        #: {"detached": [...], "destroyed": [...]}, created on the first testament.
        self.testaments: dict[str, list] | None = None
        self.testament_bytes = 0
        #: The receiver filter of this member's publications without list options
        #: (exclude_me only), made once.
        self.exclude_me_filter: Any = None
        #: Messages queued for sessions, by type code (shared by the router's sessions
        #: when metrics are on, see Router.sent_counts; None: not counted).
        self.sent_counts: MessageCounts | None = None
        #: Where :meth:`deliver` hands the outbox at once (an object with
        #: ``send_messages``); None: the owner's ``deliver()`` decides (a closing or
        #: closed connection, a remote session).
        self.sink: Any = None
        #: While the connection lets its output go out straight (its session
        #: established and open, writing not paused, none of its own output
        #: waiting): its transport, the key of its frame in a fan-out EVENT's
        #: ``encoded``, the largest such frame it may write (header included) and
        #: the traffic counter to add the bytes to; None otherwise (see
        #: :meth:`deliver`).  With them, how the member frames a message of its
        #: own: the connection's encoder (and its serializer's ``encode_plain``, if
        #: any), 0 for a RawSocket frame or the WebSocket opcode, and the largest
        #: payload the peer accepts.
        self.frame_transport: Any = None
        self.frame_key: Any = None
        self.frame_limit = 0
        self.frame_traffic: Any = None
        self.frame_encode: Any = None
        self.frame_pack: Any = None
        self.frame_opcode = 0
        self.frame_payload_limit = 0

    # -- output -------------------------------------------------------------

    def send(self, msg: list) -> None:
        """Queue ``msg`` for this session; the router delivers it on flush."""
        if self.closed:
            return
        counts = self.sent_counts
        if counts is not None:
            counts.add(msg[0])
        outbox = self.outbox
        if not outbox:
            self.on_output(self)
        outbox.append(msg)

    def deliver(self) -> None:
        """Hand the outbox to the sink (called by the router's flush).

        While :attr:`frame_transport` is set, the member writes its output there
        itself, with no call into the connection: a lone fan-out EVENT (its frame
        made by the first receiver on the same kind of connection and kept in it
        for the others: the usual case of a publication to many), a lone message
        of its own (the usual reply), or a burst of either kind in one write.  What
        it cannot write that way (a message that does not encode or exceeds the
        peer's limit) goes through the connection, with the rest of the outbox, in
        order, and the connection reports it."""
        sink = self.sink
        if sink is None:
            self.owner.deliver()
            return
        out = self.outbox
        if not out:
            return
        transport = self.frame_transport
        if transport is not None:
            if len(out) == 1:
                item = out[0]
                if type(item) is SharedMessage:
                    # A lone EVENT (the usual case at light load) on its own path:
                    # going through _write_frames costs it 4.5 % more per event.
                    shared = item
                    frame = shared.encoded.get(self.frame_key)
                    if frame is None:
                        frame = self._frame_shared(shared)
                    if (frame is not None and len(frame) <= self.frame_limit
                            and not transport.is_closing()):
                        out.clear()
                        transport.write(frame)
                        traffic = self.frame_traffic
                        traffic.sent += len(frame)
                        return
                else:
                    frame = self._frame_own(item)
                    if frame is not None and not transport.is_closing():
                        out.clear()
                        self._write_own(transport, frame)
                        return
            else:
                written = self._write_frames(out, transport)
                if written:
                    if written == len(out):
                        out.clear()
                        return
                    del out[:written]
        self.outbox = []
        sink.send_messages(out)

    def _frame_own(self, msg: Any) -> Any:
        """``msg`` (not a fan-out EVENT) encoded and framed for :attr:`frame_transport`,
        or None when the connection must handle it (it does not encode, it exceeds
        the peer's limit, or no encoder is set): the connection then reports it."""
        encode = self.frame_encode
        if encode is None:
            return None
        pack = self.frame_pack
        last = len(msg) - 1  # compiled without wraparound: no msg[-1]
        try:
            if pack is not None and last >= 0 and type(msg[last]) is not RawPayload:
                data = pack(msg)
            else:
                data = encode(msg)
        except Exception:  # noqa: BLE001 - the connection encodes it again and reports it
            return None
        if len(data) > self.frame_payload_limit:
            return None
        return self._framed(data)

    def _frame_shared(self, shared: Any) -> Any:
        """Fan-out EVENT ``shared`` (no receiver on this kind of connection framed it
        yet) encoded and framed, and kept in it for the other receivers; None when
        the connection must handle it (it does not encode, or no encoder is set):
        the connection then reports it."""
        encode = self.frame_encode
        if encode is None:
            return None
        try:
            data = encode(shared)  # encoded once per serializer, kept in ``shared``
        except Exception:  # noqa: BLE001 - the connection encodes it again and reports it
            return None
        frame = self._framed(data)
        if frame is not None:
            shared.encoded[self.frame_key] = frame
        return frame

    def _framed(self, data: Any) -> Any:
        """``data`` with the header of its frame for :attr:`frame_transport` before
        it; None for a RawSocket message of 16 MiB or more (the connection frames
        it)."""
        length = len(data)
        opcode = self.frame_opcode
        if opcode == 0:  # RawSocket: a regular message, its length in 3 bytes
            if length >= RAWSOCKET_LENGTH_LIMIT:
                return None
            return length.to_bytes(4, "big") + data
        if length < 126:  # WebSocket: final, unmasked, uncompressed (RFC 6455 §5.2)
            return bytes((0x80 | opcode, length)) + data
        if length < 65536:
            return bytes((0x80 | opcode, 126, length >> 8, length & 0xFF)) + data
        return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big") + data

    def _write_own(self, transport: Any, frame: Any) -> None:
        """Write ``frame`` of the member's own output; if the write filled the
        transport's buffer (the connection stopped the direct path), let the
        connection see whether the peer reads at all."""
        transport.write(frame)
        traffic = self.frame_traffic
        traffic.sent += len(frame)
        if self.frame_transport is None:
            self.sink.after_direct_write()

    def _write_frames(self, out: list, transport: Any) -> int:
        """Write the leading messages of ``out`` (a publisher's burst read together,
        the replies to pipelined calls) in one write: as many fan-out EVENTs and
        messages of the session's own as the member frames, up to
        :data:`JOINED_FRAMES_MAX` bytes (at least one); return how many it wrote.
        The rest goes through the connection: what is framed is written once,
        and at most one message is encoded twice."""
        key = self.frame_key
        limit = self.frame_limit
        frames: list[Any] = []
        size = 0
        for item in out:
            if type(item) is SharedMessage:
                shared = item
                frame = shared.encoded.get(key)
                if frame is None:
                    frame = self._frame_shared(shared)
                    if frame is None:
                        break
                length = len(frame)
                if length > limit:
                    break
            else:
                frame = self._frame_own(item)
                if frame is None:
                    break
                length = len(frame)
            if frames and size + length > JOINED_FRAMES_MAX:
                break
            size += length
            frames.append(frame)
        count = len(frames)
        if not count or transport.is_closing():
            return 0
        self._write_own(transport, frames[0] if count == 1 else b"".join(frames))
        return count

    def send_error(
        self,
        request_type: int,
        request_id: int,
        error: str,
        args: list | None = None,
        kwargs: dict | None = None,
    ) -> None:
        """Answer a request with ERROR (bad-input errors are also logged and counted)."""
        self.owner.refused(request_type, error, args[0] if args else "")
        msg: list = [m.ERROR, request_type, request_id, {}, error]
        if args is not None or kwargs is not None:
            msg.append(args if args is not None else [])
            if kwargs is not None:
                msg.append(kwargs)
        self.send(msg)

    # -- what the owning session does for routing -----------------------------------

    @property
    def peer(self) -> str:
        """The client's address, for log lines."""
        return self.owner.peer

    def log_bad_input(self, msg: str, *values: object, level: int = 20) -> None:
        """Log a line about this session's input (rate-limited, values clipped)."""
        self.owner.log_bad_input(msg, *values, level=level)

    def pause_input(self) -> None:
        """Backpressure: read no further message from this session until resumed."""
        self.owner.pause_input()

    def resume_input(self) -> None:
        self.owner.resume_input()

    def __repr__(self) -> str:
        return f"<Member {self.id} {self.authid!r}>"


def send_to(receivers: list[Member], start: int, stop: int, event: list,
            disclosed: list | None, want_disclosure: Container[int],
            receiver_filter: ReceiverFilter | None) -> int:
    """Send ``event`` to the members ``receivers[start:stop]`` that pass
    ``receiver_filter`` (the fan-out of one publication to one subscription).

    Members whose id is in ``want_disclosure`` get ``disclosed`` instead (the same
    EVENT with the publisher's identity), when ``disclosed`` is not None.  Returns
    how many members were sent the event.  Compiled, each member is a typed record
    whose ``send`` is a C call.
    """
    sent = 0
    flt = receiver_filter
    for i in range(start, stop):
        member = receivers[i]
        if flt is not None:
            if flt.has_lists:
                if not flt.admits(member):
                    continue
            elif member.id == flt.exclude_id:
                continue
        if disclosed is not None and member.id in want_disclosure:
            member.send(disclosed)
        else:
            member.send(event)
        sent += 1
    return sent


def deliver_all(pending: list[Member]) -> None:
    """Deliver the queued output of the members in ``pending`` (the router's list of
    members with output, which delivering may add to) until it stays empty.

    Never raises: a member whose delivery fails is logged and its session told
    (``delivery_failed``: it leaves and its connection closes); the others are
    served all the same.  Compiled, each ``deliver`` is a C call.
    """
    while pending:
        batch = pending.copy()
        pending.clear()
        for member in batch:
            try:
                member.deliver()
            except Exception:
                session = member.owner
                log.exception("%s session %s: delivering output failed; closing it",
                              session.peer, session.id)
                session.delivery_failed()


if __name__ == "fastwamp.router.member":  # the interpreted module: use the compiled twin
    from .twins import compiled_twin

    globals().update(
        compiled_twin(__name__, ("MessageCounts", "Member", "send_to", "deliver_all"))
    )
