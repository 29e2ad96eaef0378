"""The RawSocket connection's compiled reader (``FrameReader``): a read of whole regular
frames on an established session (and at most an incomplete one after them) is fed
without the connection's general path, which gets only the incomplete tail; every
other read goes through that path as before: the handshake and HELLO, a frame
completed across reads, PING, a frame over the limit, one that fails to decode, an
empty frame, more frames than one turn takes, input that is paused or buffered, a
closing connection. A read the reader takes ends as the general path would end it.

Each test runs on both builds of the reader (compiled, and its source run as
Python), on a real router with real connections over in-memory transports."""

from __future__ import annotations

import asyncio
import json
import random
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

HELLO, WELCOME, ABORT, GOODBYE = 1, 2, 3, 6
SUBSCRIBE, SUBSCRIBED, PUBLISH, PUBLISHED = 32, 33, 16, 17

READERS = {"interpreted": interpreted_module("fastwamp.transport.rawsocket_reader").FrameReader}
if rawsocket_reader.FrameReader.__module__.endswith("_c"):
    READERS["compiled"] = rawsocket_reader.FrameReader


@pytest.fixture(params=sorted(READERS))
def reader_class(request: pytest.FixtureRequest) -> Any:
    return READERS[request.param]


class CountingConnection(RawSocketConnection):
    """A RawSocket connection that records what its general path is given."""

    __slots__ = ("general_reads",)

    def read_data(self, data: bytes) -> None:
        self.general_reads.append(bytes(data))
        super().read_data(data)


class GeneralPathOnly:
    """A reader that hands every read to the general path (what the reader must match)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def open(self, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __call__(self, data: bytes) -> None:
        self.conn.read_data(data)


class Client:
    """One RawSocket client (JSON) of ``router``, its connection using ``reader_class``."""

    def __init__(self, router: Router, reader_class: Any, max_size: int = 1 << 16) -> None:
        listener = ListenerConfig("rawsocket", max_message_size=max_size)
        self.transport = FakeTransport()
        self.conn: Any = CountingConnection(router, listener)
        self.conn.general_reads = []
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
        """Feed ``reads``; how many of them the reader took (the general path got at
        most an incomplete frame after the whole ones)."""
        taken = 0
        for data in reads:
            before = len(self.conn.general_reads)
            self.conn.data_received(data)
            taken += self.conn.general_reads[before:] != [data]
        return taken

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


def test_joined_frames_are_taken_and_an_incomplete_one_buffered(run: Any, router: Router,
                                                                reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        first = client.frame([SUBSCRIBE, 1, {}, "com.example.a"])
        second = client.frame([SUBSCRIBE, 2, {}, "com.example.b"])
        assert client.short_reads(first + second) == 1
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 1], [SUBSCRIBED, 2]]
        # A frame cut across reads: its reads go the general way.
        third = client.frame([SUBSCRIBE, 3, {}, "com.example.c"])
        assert client.short_reads(third[:3], third[3:9], third[9:]) == 0
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 3]]
        # A read ending inside the next frame: the reader feeds the whole frame and the
        # general path buffers the rest (it watches the frame's deadline), then takes
        # the read that completes it; the read after that is the reader's again.
        fourth = client.frame([SUBSCRIBE, 4, {}, "com.example.d"])
        fifth = client.frame([SUBSCRIBE, 5, {}, "com.example.e"])
        assert client.short_reads(fourth + fifth[:6]) == 1
        assert client.conn.general_reads[-1] == fifth[:6]
        assert client.conn._buffer == fifth[:6] and client.conn._partial_since > 0
        assert client.short_reads(fifth[6:]) == 0
        assert client.conn._buffer is None and client.conn._partial_since == 0
        assert client.short_reads(client.frame([SUBSCRIBE, 6, {}, "com.example.f"])) == 1
        assert [msg[:2] for msg in client.messages()] == [[SUBSCRIBED, 4], [SUBSCRIBED, 5],
                                                          [SUBSCRIBED, 6]]

    run(main)


def test_one_turn_takes_at_most_messages_per_turn(run: Any, reader_class: Any) -> None:
    async def main() -> None:
        router = Router(make_config(messages_per_turn=2))
        router.call_soon = None
        client = Client(router, reader_class)
        client.join()
        frames = [client.frame([SUBSCRIBE, i, {}, f"com.example.t{i}"]) for i in range(1, 7)]
        assert client.short_reads(frames[0] + frames[1]) == 1
        assert client.short_reads(frames[2] + frames[3] + frames[4][:5]) == 0  # may stall
        assert client.short_reads(frames[4][5:] + frames[5]) == 0
        for _ in range(5):  # the deferred input is fed on later turns
            await asyncio.sleep(0)
        assert [msg[1] for msg in client.messages()] == [1, 2, 3, 4, 5, 6]
        assert client.conn._buffer is None and not client.conn._deferred

    run(main)


def test_a_message_that_closes_the_session_drops_the_rest(run: Any, router: Router,
                                                          reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        goodbye = client.frame([GOODBYE, {}, "wamp.close.normal"])
        assert client.short_reads(goodbye + client.frame([SUBSCRIBE, 1, {}, "com.a"])) == 1
        assert [msg[0] for msg in client.messages()] == [GOODBYE]
        assert not client.conn._reading

    run(main)


def test_a_bad_frame_after_good_ones_is_reported_after_them(run: Any, router: Router,
                                                            reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        good = client.frame([SUBSCRIBE, 1, {}, "com.example.a"])
        later = client.frame([SUBSCRIBE, 2, {}, "com.example.b"])
        assert client.short_reads(good + rs_frame(b"{bad") + later) == 1
        assert client.conn.general_reads[-1] == rs_frame(b"{bad") + later
        out = client.messages()
        assert [msg[0] for msg in out] == [SUBSCRIBED, ABORT]

    run(main)


def test_input_paused_by_a_message_keeps_the_rest(run: Any, router: Router,
                                                  reader_class: Any) -> None:
    async def main() -> None:
        client = Client(router, reader_class)
        client.join()
        conn = client.conn
        session = conn._session

        class PausingSession:
            """The session, whose first message makes the core pause the input."""

            def receive(self, msg: Any) -> None:
                session.receive(msg)
                conn.pause_input()

        conn._reader.session = PausingSession()
        frames = [client.frame([SUBSCRIBE, i, {}, f"com.example.t{i}"]) for i in (1, 2, 3)]
        assert client.short_reads(b"".join(frames)) == 1
        assert [msg[1] for msg in client.messages()] == [1]
        assert conn._buffer == frames[1] + frames[2] and conn._deferred
        conn._reader.session = session
        conn.resume_input()
        for _ in range(5):
            await asyncio.sleep(0)
        assert [msg[1] for msg in client.messages()] == [2, 3]
        assert conn._buffer is None and not conn._deferred

    run(main)


@pytest.mark.parametrize("seed", range(6))
def test_any_cut_of_the_input_ends_as_on_the_general_path(run: Any, reader_class: Any,
                                                          seed: int) -> None:
    """The same frames, cut into the same random reads (PINGs among them, the limit
    per turn small), give the same messages and PONGs with the reader as without it."""

    async def outcome(reader: Any) -> list[Any]:
        router = Router(make_config(messages_per_turn=3))
        router.call_soon = None
        client = Client(router, reader)
        client.join()
        rng = random.Random(seed)
        frames = []
        for i in range(1, 60):
            kind = rng.random()
            if kind < 0.08:
                frames.append(rs_frame(b"p%d" % i, 1))  # PING
            elif kind < 0.5:
                frames.append(client.frame([SUBSCRIBE, i, {}, f"com.example.t{i % 7}"]))
            else:
                frames.append(client.frame([PUBLISH, i, {"acknowledge": True},
                                            "com.example.t1", ["x" * rng.randrange(200)]]))
        # Reads of one to five frames, a quarter of them ending inside a frame.
        stream = b"".join(frames)
        starts = [0]
        for frame in frames:
            starts.append(starts[-1] + len(frame))
        pos = last = 0
        while pos < len(stream):
            last = min(last + rng.choice((1, 1, 1, 2, 3, 5)), len(frames))
            cut = starts[last]
            if last < len(frames) and rng.random() < 0.25:
                cut += rng.randrange(1, len(frames[last]))
            client.conn.data_received(stream[pos:cut])
            pos = cut
            for _ in range(3):
                await asyncio.sleep(0)
        for _ in range(10):
            await asyncio.sleep(0)
        out: list[Any] = []
        data = client.transport.data
        while data:
            (word,) = struct.unpack_from("!I", data)
            kind, length = word >> 24, word & 0xFFFFFF
            body = data[4 : 4 + length]
            out.append(("pong", body) if kind == 2 else json.loads(body)[:2])
            data = data[4 + length :]
        return out

    async def main() -> None:
        expected = await outcome(GeneralPathOnly)
        assert len(expected) > 30
        assert await outcome(reader_class) == expected

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


@pytest.mark.parametrize("hostile", ["reserved_bits", "bad_type", "oversized_tail",
                                     "many_tiny_frames", "zero_length"])
def test_hostile_reads_end_as_on_the_general_path(run: Any, reader_class: Any,
                                                  hostile: str) -> None:
    """A read that starts with a good frame and goes on with what a hostile client
    sends: the same messages written, and the connection in the same state, with the
    reader as with the general path alone."""

    async def outcome(reader: Any) -> tuple[Any, ...]:
        router = Router(make_config(messages_per_turn=100))
        router.call_soon = None
        client = Client(router, reader, max_size=4096)
        client.join()
        good = client.frame([SUBSCRIBE, 1, {}, "com.example.a"])
        tail = {
            "reserved_bits": b"\x10\x00\x00\x05hello",
            "bad_type": b"\x07\x00\x00\x02[]",
            "oversized_tail": b"\x00\x01\x00\x00" + b"x" * 10,
            "many_tiny_frames": client.frame([SUBSCRIBE, 2, {}, "com.example.b"]) * 150,
            "zero_length": b"\x00\x00\x00\x00",
        }[hostile]
        client.conn.data_received(good + tail)
        for _ in range(10):
            await asyncio.sleep(0)
        written = [msg[:2] if msg[0] == SUBSCRIBED else msg for msg in client.messages()]
        return written, client.transport.closed, client.conn._reading, client.conn._buffer

    async def main() -> None:
        assert await outcome(reader_class) == await outcome(GeneralPathOnly)

    run(main)
