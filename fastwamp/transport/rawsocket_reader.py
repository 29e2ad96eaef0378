# cython: annotation_typing=False
"""The RawSocket connection's usual read, compiled: whole frames, fed one by one.

Autobahn and wampy.js write each message as they make it, so on an established
session nearly every read the event loop hands a RawSocket connection is one
complete regular frame (several when a client pipelines). :class:`FrameReader`
is what the loop calls with each read (``RawSocketConnection.data_received``
is the connection's reader). When the connection is reading with nothing
buffered, deferred or paused, and the read is whole regular frames within the
connection's limit and the turn's ``messages_per_turn``, with at most the
start of one more after them, the reader decodes each frame, feeds the
session, asks the router to flush and writes the connection's own output, as
the connection's general path would, and hands only the incomplete frame to
that path, which buffers it. It stops where that path stops (see
:meth:`FrameReader.feed_frames`). Any other read (a frame completed across
reads, PING/PONG, a frame over the limit, anything before WELCOME or after
closing began) goes to :meth:`RawSocketConnection.read_data` unchanged.

The reader is part of the connection: it reads and sets the connection's
input state directly. ``rawsocket_reader_c.pxd`` types it, and the same source
is compiled as ``fastwamp.transport.rawsocket_reader_c``; this module takes
the compiled class when it is built (see :mod:`fastwamp.router.twins`).
"""

from __future__ import annotations

from typing import Any

from fastwamp.transport.base import RAWSOCKET_TRAFFIC, _monotonic


def frame_length(raw: bytes, pos: int) -> int:
    """The payload length in the header of the regular frame at ``raw[pos]``."""
    b1 = raw[pos + 1]
    b2 = raw[pos + 2]
    b3 = raw[pos + 3]
    return (b1 << 16) | (b2 << 8) | b3


class FrameReader:
    """The read callback of one RawSocket connection (see the module docstring)."""

    __slots__ = ("conn", "session", "decode", "max_in")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        #: None until the session is established: every read takes the general path.
        self.session: Any = None
        self.decode: Any = None
        self.max_in = 0

    def open(self, session: Any, decode: Any, max_in: int) -> None:
        """The session is established: reads of whole frames of at most ``max_in``
        bytes may be fed to ``session`` from now on."""
        self.session = session
        self.decode = decode
        self.max_in = max_in

    def close(self) -> None:
        """The connection is gone: no more short reads, and no references kept."""
        self.session = self.decode = self.conn = None

    def feed(self, data: Any) -> None:
        """Handle one read of the socket."""
        conn = self.conn
        session = self.session
        if (
            session is not None
            and type(data) is bytes
            and conn._reading
            and conn._buffer is None
            and not conn._deferred
            and not conn._input_paused
        ):
            raw = data
            end = self.scan(conn, raw)
            if end > 0:
                self.feed_frames(conn, session, raw, end)
                return
        if conn is not None:
            conn.read_data(data)

    def scan(self, conn: Any, raw: bytes) -> int:
        """Where the whole frames at the start of ``raw`` end, if every frame of ``raw``
        is a regular one of 1 to ``max_in`` bytes (the last may be incomplete) and the
        turn's ``messages_per_turn`` takes them all; else 0."""
        n = len(raw)
        max_in = self.max_in
        pos = 0
        frames = 0
        while n - pos >= 4:
            if raw[pos] != 0:
                return 0  # PING, PONG, or a frame the general path refuses
            length = frame_length(raw, pos)
            if length == 0 or length > max_in:
                return 0
            if pos + 4 + length > n:
                break  # an incomplete frame: the general path buffers it
            pos += 4 + length
            frames += 1
        if pos < n:
            if raw[pos] != 0:
                return 0  # the start of a PING, PONG or bad frame
            turn = conn._limits.messages_per_turn
            if frames >= turn:
                return 0  # the general path stops there and feeds the rest later
        elif frames > 1 and frames > conn._limits.messages_per_turn:
            return 0
        return pos

    def feed_frames(self, conn: Any, session: Any, raw: bytes, end: int) -> None:
        """Feed the whole frames of ``raw`` up to ``end`` to ``session``, then hand
        what follows (an incomplete frame) to the general path, which buffers it.

        It stops where the general path would: after a message that stopped the
        connection reading (the rest is dropped) or paused its input (the general
        path buffers the rest for later), and at a frame that fails to decode (the
        general path decodes it again, reports it and flushes)."""
        now = _monotonic()
        conn._last_read = now
        decode = self.decode
        router = conn._router
        pos = 0
        while True:
            start = pos + 4
            pos = start + frame_length(raw, pos)
            try:
                msg = decode(raw[start:pos])
            except Exception:
                RAWSOCKET_TRAFFIC.received += start - 4
                conn.read_data(raw[start - 4 :])
                return
            session.receive(msg)  # never raises
            if pos == end:
                break
            if not conn._reading:  # closing: the rest is not wanted
                end = len(raw)
                break
            if conn._input_paused:
                end = pos  # the general path keeps the rest until input resumes
                break
        RAWSOCKET_TRAFFIC.received += end
        router.flush_soon(now)
        if conn._out:
            conn._write_out()
        if end < len(raw):
            conn.read_data(raw[end:])

    def __call__(self, data: Any) -> None:
        self.feed(data)


if __name__ == "fastwamp.transport.rawsocket_reader":  # interpreted: use the compiled twin
    from fastwamp.router.twins import compiled_twin

    globals().update(compiled_twin(__name__, ("FrameReader",)))
