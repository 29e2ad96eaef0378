"""The RawSocket connection's compiled reader (``FrameReader``): a read of exactly one
regular frame on an established session is fed without the connection's general
path, and every other read goes through that path as before: the handshake and
HELLO, joined and partial frames, PING, a frame over the limit, one that fails to
decode, an empty frame, input that is paused or buffered, a closing connection.

Each test runs on both builds of the reader (compiled, and its source run as
Python), on a real router with real connections over in-memory transports."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from fastwamp.config import ListenerConfig
from fastwamp.router import Router
from fastwamp.router.twins import interpreted_module
from fastwamp.transport import rawsocket_reader
from fastwamp.transport.base import RAWSOCKET_TRAFFIC
from fastwamp.transport.rawsocket import RawSocketConnection

from .conftest import FakeTransport, make_config, rs_frame

HELLO, WELCOME, ABORT = 1, 2, 3
SUBSCRIBE, SUBSCRIBED, PUBLISH, PUBLISHED = 32, 33, 16, 17

READERS = {"interpreted": interpreted_module("fastwamp.transport.rawsocket_reader").FrameReader}
if rawsocket_reader.FrameReader.__module__.endswith("_c"):
    READERS["compiled"] = rawsocket_reader.FrameReader


@pytest.fixture(params=sorted(READERS))
def reader_class(request: pytest.FixtureRequest) -> Any:
    return READERS[request.param]


class CountingConnection(RawSocketConnection):
    """A RawSocket connection that counts the reads its general path handles."""

    __slots__ = ("general_reads",)

    def read_data(self, data: bytes) -> None:
        self.general_reads += 1
        super().read_data(data)


class Client:
    """One RawSocket client (JSON) of ``router``, its connection using ``reader_class``."""

    def __init__(self, router: Router, reader_class: Any, max_size: int = 1 << 16) -> None:
        listener = ListenerConfig("rawsocket", max_message_size=max_size)
        self.transport = FakeTransport()
        self.conn: Any = CountingConnection(router, listener)
        self.conn.general_reads = 0
        self.conn._reader = reader_class(self.conn)
        self.conn.connection_made(self.transport)
        self.conn.data_received(bytes((0x7F, 0xF1, 0, 0)))
        self.transport.writes.clear()  # the handshake reply

    def frame(self, msg: Any) -> bytes:
        return rs_frame(json.dumps(msg).encode())

    def join(self) -> None:
        self.conn.data_received(self.frame([HELLO, "realm1", {"roles": {"subscriber": {},
                                                                         "publisher": {}}}]))
        assert self.messages()[0][0] == WELCOME

    def short_reads(self, *reads: bytes) -> int:
        """Feed ``reads``; how many of them the reader took without the general path."""
        before = self.conn.general_reads
        for data in reads:
            self.conn.data_received(data)
        return len(reads) - (self.conn.general_reads - before)

    def messages(self) -> list[list[Any]]:
        """The messages written since the last call."""
        data = self.transport.data
        self.transport.writes.clear()
        out = []
        while data:
            (word,) = struct.unpack_from("!I", data)
            assert word >> 24 == 0
            out.append(json.loads(data[4 : 4 + word]))
            data = data[4 + word :]
        return out


@pytest.fixture
def router() -> Router:
    """A real router that flushes at once (no ``call_soon``)."""
    router = Router(make_config())
    router.call_soon = None
    return router


def test_the_event_loop_calls_the_reader(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        assert client.conn.data_received is client.conn._reader

    run(main)


def test_one_frame_per_read_takes_the_short_path(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        assert client.short_reads(client.frame([HELLO, "realm1", {"roles": {"subscriber": {}}}])) == 0
        assert client.messages()[0][0] == WELCOME
        client.conn._last_read = 0.0
        received = RAWSOCKET_TRAFFIC.received
        frame = client.frame([SUBSCRIBE, 1, {}, "com.example.topic"])
        assert client.short_reads(frame) == 1
        assert client.messages()[0][:2] == [SUBSCRIBED, 1]
        assert client.conn._last_read > 0.0
        assert RAWSOCKET_TRAFFIC.received == received + len(frame)
        assert client.short_reads(client.frame([PUBLISH, 2, {"acknowledge": True},
                                                "com.example.topic", [1]])) == 1
        assert client.messages()[0][:2] == [PUBLISHED, 2]

    run(main)


def test_joined_and_partial_frames_take_the_general_path(run: Any, router: Router,
                                                         reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        first = client.frame([SUBSCRIBE, 1, {}, "com.example.a"])
        second = client.frame([SUBSCRIBE, 2, {}, "com.example.b"])
        assert client.short_reads(first + second) == 0
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 1], [SUBSCRIBED, 2]]
        third = client.frame([SUBSCRIBE, 3, {}, "com.example.c"])
        assert client.short_reads(third[:3], third[3:9], third[9:]) == 0
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 3]]
        # A read ending inside the next frame buffers the rest: the reads that finish it
        # go the general way, and the read after them is short again.
        fourth = client.frame([SUBSCRIBE, 4, {}, "com.example.d"])
        fifth = client.frame([SUBSCRIBE, 5, {}, "com.example.e"])
        assert client.short_reads(fourth + fifth[:6], fifth[6:]) == 0
        assert client.short_reads(client.frame([SUBSCRIBE, 6, {}, "com.example.f"])) == 1
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 4], [SUBSCRIBED, 5],
                                                          [SUBSCRIBED, 6]]

    run(main)


def test_ping_takes_the_general_path(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        assert client.short_reads(rs_frame(b"ping", 1)) == 0
        assert client.transport.data == rs_frame(b"ping", 2)

    run(main)


def test_oversized_frame_fails_the_connection(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class, max_size=1024)
        client.join()
        big = client.frame([PUBLISH, 1, {}, "com.example.topic", ["x" * 2000]])
        assert client.short_reads(big) == 0
        assert client.transport.closed
        assert client.short_reads(client.frame([SUBSCRIBE, 2, {}, "com.example.topic"])) == 0
        assert client.messages() == []

    run(main)


# A frame that does not decode (or is empty) goes the general way, which reports it; one
# that decodes to no WAMP message is the session's to refuse, on either path.
@pytest.mark.parametrize(("payload", "short"), [(b"{not json", 0), (b"", 0), (b"\xff\xfe", 0),
                                                (b"[]", 1), (b'[999, 1]', 1)])
def test_bad_frames_are_reported_by_the_general_path(run: Any, router: Router, reader_class: Any,
                                                     payload: bytes, short: int) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        assert client.short_reads(rs_frame(payload)) == short
        out = client.messages()
        assert out and out[0][0] == ABORT
        assert out[0][2] == "wamp.error.protocol_violation"
        assert not client.conn._reading
        assert client.short_reads(client.frame([SUBSCRIBE, 2, {}, "com.example.topic"])) == 0
        assert client.messages() == []

    run(main)


def test_paused_input_is_buffered_then_fed(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        client.conn.pause_input()
        assert client.short_reads(client.frame([SUBSCRIBE, 1, {}, "com.example.topic"])) == 0
        assert client.messages() == []
        assert client.conn._buffer
        client.conn.resume_input()
        assert client.conn._feed_deferred() is False
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 1]]
        client.conn._deferred = False  # what _run_deferred does once the buffer is fed
        assert client.short_reads(client.frame([SUBSCRIBE, 2, {}, "com.example.other"])) == 1

    run(main)


def test_other_buffer_types_take_the_general_path(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        frame = client.frame([SUBSCRIBE, 1, {}, "com.example.topic"])
        assert client.short_reads(bytearray(frame)) == 0
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 1]]

    run(main)


def test_nothing_is_fed_once_the_connection_closes(run: Any, router: Router, reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        client.conn.close()
        client.transport.writes.clear()
        frame = client.frame([SUBSCRIBE, 1, {}, "com.example.topic"])
        assert client.short_reads(frame) == 0
        client.conn.connection_lost(None)
        client.conn.data_received(frame)  # a late read: ignored, no error
        assert client.messages() == []

    run(main)
