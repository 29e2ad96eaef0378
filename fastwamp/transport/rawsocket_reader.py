# cython: annotation_typing=False
"""The RawSocket connection's usual read, compiled: one whole frame, one message.

Autobahn and wampy.js write each message as they make it, so on an established
session nearly every read the event loop hands a RawSocket connection is one
complete regular frame. :class:`FrameReader` is what the loop calls with each
read (``RawSocketConnection.data_received`` is the connection's reader). When
the read is exactly one regular frame within the connection's limit, and the
connection is reading with nothing buffered, deferred or paused, the reader
decodes the frame, feeds the session, asks the router to flush and writes the
connection's own output, as the connection's general path would. Any other
read (a partial or joined frame, PING/PONG, a frame over the limit, anything
before WELCOME or after closing began) goes to
:meth:`RawSocketConnection.read_data` unchanged; so does a frame that fails to
decode, which that path decodes again and reports.

The reader is part of the connection: it reads and sets the connection's
input state directly. ``rawsocket_reader_c.pxd`` types it, and the same source
is compiled as ``fastwamp.transport.rawsocket_reader_c``; this module takes
the compiled class when it is built (see :mod:`fastwamp.router.twins`).
"""

from __future__ import annotations

from typing import Any

from fastwamp.transport.base import RAWSOCKET_TRAFFIC, _monotonic


class FrameReader:
    """The read callback of one RawSocket connection (see the module docstring)."""

    __slots__ = ("conn", "session", "decode", "router", "max_in")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        #: None until the session is established: every read takes the general path.
        self.session: Any = None
        self.decode: Any = None
        self.router: Any = None
        self.max_in = 0

    def open(self, session: Any, decode: Any, router: Any, max_in: int) -> None:
        """The session is established: single-frame reads of at most ``max_in`` bytes
        may be fed to ``session`` from now on."""
        self.session = session
        self.decode = decode
        self.router = router
        self.max_in = max_in

    def close(self) -> None:
        """The connection is gone: no more short reads, and no references kept."""
        self.session = self.decode = self.router = self.conn = None

    def feed(self, data: Any) -> None:
        """Handle one read of the socket."""
        conn = self.conn
        session = self.session
        if session is not None and type(data) is bytes:
            raw = data
            length = len(raw) - 4
            if 0 < length <= self.max_in and raw[0] == 0:
                b1 = raw[1]
                b2 = raw[2]
                b3 = raw[3]
                if ((b1 << 16) | (b2 << 8) | b3) == length and (
                    conn._reading
                    and conn._buffer is None
                    and not conn._deferred
                    and not conn._input_paused
                ):
                    try:
                        msg = self.decode(raw[4:])
                    except Exception:  # the general path decodes it again and reports it
                        conn.read_data(data)
                        return
                    now = _monotonic()
                    conn._last_read = now
                    RAWSOCKET_TRAFFIC.received += length + 4
                    session.receive(msg)  # never raises
                    self.router.flush_soon(now)
                    if conn._out:
                        conn._write_out()
                    return
        if conn is not None:
            conn.read_data(data)

    def __call__(self, data: Any) -> None:
        self.feed(data)


if __name__ == "fastwamp.transport.rawsocket_reader":  # interpreted: use the compiled twin
    from fastwamp.router.twins import compiled_twin

    globals().update(compiled_twin(__name__, ("FrameReader",)))
