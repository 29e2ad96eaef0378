"""A fan-out EVENT's frame, and a message of the session's own, written by the
receiver's routing record (``Member.deliver``) straight to its RawSocket or picows
transport (a burst of them in one write), and every case where it must not be:
before WELCOME, while writing is paused, while the connection's own output (a PONG)
waits, once the connection closes, when the frame exceeds the receiver's limit or
does not encode, and when the burst is large.

A real router and real connections on in-memory transports."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.router import Router
from fastwamp.transport.picows_ws import PicowsConnection
from fastwamp.transport.rawsocket import RawSocketConnection

from .conftest import FakeTransport, make_config, rs_frame

PUBLISH, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 32, 33, 36
TOPIC = "com.example.topic"


class Client:
    """A RawSocket connection to the router, joined, subscribed to TOPIC."""

    def __init__(self, router: Router, listener: ListenerConfig, length_bits: int = 15) -> None:
        self.transport = FakeTransport()
        self.conn: Any = RawSocketConnection(router, listener)
        self.conn.connection_made(self.transport)
        self.conn.data_received(bytes((0x7F, (length_bits << 4) | 1, 0, 0)))
        self.transport.writes.clear()  # the handshake reply
        self.join()

    def join(self) -> None:
        self.send([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}])
        assert self.messages()[0][0] == 2  # WELCOME
        self.send([SUBSCRIBE, 1, {}, TOPIC])
        assert self.messages()[0][0] == SUBSCRIBED

    #: Kinds of frame (see :meth:`frames`): a PONG, a message.
    PONG, MESSAGE = 2, 0

    def small(self, router: Router) -> Client:
        """Another client that accepts messages of 1 KiB at most."""
        return Client(router, self.conn._listener, length_bits=1)

    def ping(self, payload: bytes) -> bytes:
        """The bytes of a PING."""
        return rs_frame(payload, 1)

    def encoded(self, *msgs: Any) -> bytes:
        return b"".join(rs_frame(json.dumps(msg).encode()) for msg in msgs)

    @property
    def member(self) -> Any:
        return self.conn._session.member

    def send(self, *msgs: Any) -> None:
        self.conn.data_received(self.encoded(*msgs))

    def frames(self) -> list[tuple[int, bytes]]:
        """(frame type, payload) of everything written since the last call."""
        data = self.transport.data
        self.transport.writes.clear()
        out = []
        while data:
            (word,) = struct.unpack_from("!I", data)
            length = word & 0xFFFFFF
            out.append((word >> 24, data[4 : 4 + length]))
            data = data[4 + length :]
        return out

    def messages(self) -> list[Any]:
        return [json.loads(payload) for kind, payload in self.frames() if kind == 0]


class WebSocketClient(Client):
    """The same over WebSocket (picows), with a websockets client reading the output."""

    def __init__(self, router: Router, listener: ListenerConfig) -> None:
        self.transport = FakeTransport()
        self.conn = PicowsConnection(router, listener)
        self.conn.connection_made(self.transport)
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"),
                                     subprotocols=["wamp.2.json"])
        self.client.send_request(self.client.connect())
        self.conn.data_received(b"".join(self.client.data_to_send()))
        self.client.receive_data(self.transport.data)
        self.transport.writes.clear()
        assert self.client.state.name == "OPEN"
        self.client.events_received()
        self.join()

    PONG, MESSAGE = int(Opcode.PONG), int(Opcode.TEXT)

    def small(self, router: Router) -> Client:
        listener = ListenerConfig("websocket", port=0, implementation="picows",
                                  serializers=["json"], max_message_size=1024)
        return WebSocketClient(router, listener)

    def ping(self, payload: bytes) -> bytes:
        self.client.send_ping(payload)
        return b"".join(self.client.data_to_send())

    def encoded(self, *msgs: Any) -> bytes:
        for msg in msgs:
            self.client.send_text(json.dumps(msg).encode())
        return b"".join(self.client.data_to_send())

    def frames(self) -> list[tuple[int, bytes]]:
        """(opcode, payload) of the frames written since the last call."""
        self.client.receive_data(self.transport.data)
        self.transport.writes.clear()
        return [(int(f.opcode), f.data) for f in self.client.events_received()
                if isinstance(f, Frame)]

    def messages(self) -> list[Any]:
        return [json.loads(payload) for kind, payload in self.frames()
                if kind == Opcode.TEXT]


@pytest.fixture(params=["rawsocket", "picows"])
def clients(request: pytest.FixtureRequest) -> Any:
    """``clients(n)``: n joined subscribers of TOPIC on one real router (flushing at
    once), over RawSocket or picows, with the router."""

    def make(n: int, **keys: Any) -> tuple[Router, list[Client]]:
        if request.param == "rawsocket":
            listener = ListenerConfig("rawsocket", port=0, serializers=["json"])
            make_client: Any = Client
        else:
            listener = ListenerConfig("websocket", port=0, implementation="picows",
                                      serializers=["json"])
            make_client = WebSocketClient
        router = Router(make_config(listener, **keys))
        router.call_soon = None
        return router, [make_client(router, listener) for _ in range(n)]

    return make


def test_established_connection_lets_its_member_write_frames(run, clients):
    async def main() -> None:
        router, (a, b) = clients(2)
        for client in (a, b):
            assert client.member.frame_transport is client.transport
            assert client.member.frame_limit == (
                client.conn._max_out + client.conn._direct_frame_header)

    run(main)


def test_event_frame_made_once_and_written_by_every_member(run, clients, monkeypatch):
    async def main() -> None:
        router, (a, b, c, publisher) = clients(4)
        calls: list[Any] = []
        cls = type(a.conn)
        send_messages = cls.send_messages

        def counting(self: Any, msgs: list) -> None:
            calls.append(self)
            send_messages(self, msgs)

        monkeypatch.setattr(cls, "send_messages", counting)
        traffic = cls._traffic
        sent = traffic.sent
        raw = a.transport.writes
        publisher.send([PUBLISH, 2, {}, TOPIC, ["hello"]])
        assert len(raw) == 1
        written = raw[0]
        assert b.transport.writes == [written] and c.transport.writes == [written]
        got = [x.frames() for x in (a, b, c)]
        assert all(len(frames) == 1 for frames in got)
        assert got[0] == got[1] == got[2]
        assert json.loads(got[0][0][1])[:1] == [EVENT]
        # The first receiver's member framed it; the others' members wrote that frame.
        assert calls == []
        assert traffic.sent - sent == 3 * len(written)

    run(main)


def test_paused_receiver_holds_events_and_writes_them_in_order_on_resume(run, clients):
    async def main() -> None:
        router, (a, b, publisher) = clients(3)
        b.conn.pause_writing()
        assert b.member.frame_transport is None
        for i in range(3):
            publisher.send([PUBLISH, 2 + i, {}, TOPIC, [i]])
        assert [msg[4] for msg in a.messages()] == [[0], [1], [2]]
        assert b.transport.writes == []
        b.conn.resume_writing()
        assert [msg[4] for msg in b.messages()] == [[0], [1], [2]]
        assert b.member.frame_transport is b.transport
        publisher.send([PUBLISH, 5, {}, TOPIC, [3]])
        assert [msg[4] for msg in b.messages()] == [[3]]

    run(main)


def test_pong_of_the_same_read_goes_before_the_event(run, clients):
    async def main() -> None:
        router, (a, b) = clients(2)
        # One read of b: a PING, then a publication b receives too (exclude_me off).
        b.conn.data_received(
            b.ping(b"ping") + b.encoded([PUBLISH, 2, {"exclude_me": False}, TOPIC, ["x"]])
        )
        frames = b.frames()
        assert [kind for kind, _ in frames] == [b.PONG, b.MESSAGE]  # then the EVENT
        assert frames[0][1] == b"ping"
        assert json.loads(frames[1][1])[0] == EVENT
        assert b.member.frame_transport is b.transport  # open again after the read
        assert [msg[0] for msg in a.messages()] == [EVENT]

    run(main)


def test_closed_connection_gets_nothing_more(run, clients):
    async def main() -> None:
        router, (a, b, c, publisher) = clients(4)
        b.conn.close()
        assert b.member.frame_transport is None
        c.conn.connection_lost(None)
        assert c.member.frame_transport is None
        b.transport.writes.clear()
        publisher.send([PUBLISH, 2, {}, TOPIC, ["after"]])
        assert [msg[4] for msg in a.messages()] == [["after"]]
        assert b.transport.writes == [] and c.transport.writes == []

    run(main)


def test_frame_over_a_receivers_limit_is_reported_not_written(run, clients):
    async def main() -> None:
        router, (a, b, publisher) = clients(3)
        small = a.small(router)
        before = router.stats["undeliverable_events"]
        publisher.send([PUBLISH, 2, {}, TOPIC, ["x" * 1200]])
        assert len(a.messages()) == len(b.messages()) == 1
        assert small.messages() == []
        assert router.stats["undeliverable_events"] == before + 1
        publisher.send([PUBLISH, 3, {}, TOPIC, ["short"]])
        assert [msg[4] for msg in small.messages()] == [["short"]]

    run(main)


def _counting_send_messages(monkeypatch: Any, cls: type) -> list[Any]:
    """The connections whose ``send_messages`` is called from now on, in order."""
    calls: list[Any] = []
    send_messages = cls.send_messages

    def counting(self: Any, msgs: list) -> None:
        calls.append(self)
        send_messages(self, msgs)

    monkeypatch.setattr(cls, "send_messages", counting)
    return calls


def test_burst_of_events_written_by_the_member_in_one_write(run, clients, monkeypatch):
    async def main() -> None:
        router, (a, b, c, publisher) = clients(4)
        calls = _counting_send_messages(monkeypatch, type(a.conn))
        traffic = type(a.conn)._traffic
        sent = traffic.sent
        # One read of the publisher: five publications, flushed together.
        publisher.send(*[[PUBLISH, 2 + i, {}, TOPIC, [i]] for i in range(5)])
        assert len(b.transport.writes) == 1 and b.transport.writes == c.transport.writes
        written = b.transport.writes[0]
        assert written == a.transport.data
        for client in (a, b, c):
            assert [msg[4] for msg in client.messages()] == [[i] for i in range(5)]
        assert calls == []  # the first receiver's member framed them; the others joined them
        assert traffic.sent - sent == 3 * len(written)

    run(main)


def test_own_messages_and_events_written_by_the_member_in_order(run, clients, monkeypatch):
    async def main() -> None:
        router, (a, b, publisher) = clients(3)
        calls = _counting_send_messages(monkeypatch, type(a.conn))
        # Each receiver has a message of its own waiting when the burst of EVENTs
        # comes: a's member (delivered first) frames its message and the EVENTs, b's
        # frames its message and joins the EVENTs' frames; each in one write.
        for client, text in ((a, "a"), (b, "b")):
            client.member.send([EVENT, 99, 1, {}, [text]])
        publisher.send(*[[PUBLISH, 2 + i, {}, TOPIC, [i]] for i in range(3)])
        assert len(a.transport.writes) == 1 and len(b.transport.writes) == 1
        assert [msg[4] for msg in a.messages()] == [["a"], [0], [1], [2]]
        assert [msg[4] for msg in b.messages()] == [["b"], [0], [1], [2]]
        assert calls == []

    run(main)


def test_own_message_framed_by_the_member_as_the_connection_frames_it(
        run, clients, monkeypatch):
    async def main() -> None:
        router, (a, b) = clients(2)
        b.member.frame_transport = None  # b's connection writes its own output
        calls = _counting_send_messages(monkeypatch, type(a.conn))
        traffic = type(a.conn)._traffic
        # Around the WebSocket header's sizes: 7-bit, 16-bit and 64-bit lengths.
        for size in (0, 100, 200, 70_000):
            msg = [EVENT, 99, size, {}, ["z" * size]]
            sent = traffic.sent
            a.member.send(list(msg))
            router.flush()
            assert len(a.transport.writes) == 1
            direct = a.transport.writes[0]
            assert traffic.sent - sent == len(direct)
            b.member.send(list(msg))
            router.flush()
            assert b.transport.writes == [direct]
            assert a.messages() == [msg] and b.messages() == [msg]
        assert calls == [b.conn] * 4

    run(main)


def test_own_message_the_member_cannot_write_goes_through_the_connection(
        run, clients, monkeypatch):
    async def main() -> None:
        router, (a,) = clients(1)
        small = a.small(router)
        calls = _counting_send_messages(monkeypatch, type(a.conn))
        # Over the peer's limit: the connection reports it, nothing is written.
        small.member.send([EVENT, 99, 1, {}, ["z" * 2000]])
        router.flush()
        assert calls == [small.conn] and small.transport.writes == []
        # Not encodable: the same.
        a.member.send([EVENT, 99, 2, {}, [object()]])
        a.member.send([EVENT, 99, 3, {}, ["after"]])
        router.flush()
        assert calls == [small.conn, a.conn]
        assert [msg[2] for msg in a.messages()] == [3]
        # The direct path stays on for what follows.
        assert a.member.frame_transport is a.transport
        a.member.send([EVENT, 99, 4, {}, []])
        router.flush()
        assert calls == [small.conn, a.conn]
        assert [msg[2] for msg in a.messages()] == [4]

    run(main)


def test_direct_write_that_fills_the_buffer_checks_the_backlog(run, clients, monkeypatch):
    async def main() -> None:
        router, (a,) = clients(1)
        checked: list[bool] = []
        conn = a.conn

        class PausingTransport(type(a.transport)):  # type: ignore[misc]
            def write(self, data: bytes) -> None:
                super().write(data)
                conn.pause_writing()  # the buffer is full after this write

        a.transport.__class__ = PausingTransport
        check_backlog = type(conn)._check_backlog

        def counting(self: Any) -> bool:
            checked.append(True)
            return check_backlog(self)

        monkeypatch.setattr(type(conn), "_check_backlog", counting)
        a.member.send([EVENT, 99, 1, {}, ["x"]])
        router.flush()
        assert checked == [True]
        assert a.member.frame_transport is None
        assert [msg[2] for msg in a.messages()] == [1]

    run(main)


def test_large_burst_goes_through_the_connection(run, clients, monkeypatch):
    async def main() -> None:
        router, (a, b, publisher) = clients(3)
        calls = _counting_send_messages(monkeypatch, type(a.conn))
        payload = "y" * 900
        count = 30  # about 27 KiB of frames: more than one joined write takes
        publisher.send(*[[PUBLISH, 2 + i, {}, TOPIC, [i, payload]] for i in range(count)])
        for client in (a, b):
            assert [msg[4][0] for msg in client.messages()] == list(range(count))
        assert calls == [a.conn, b.conn]

    run(main)


def test_large_burst_of_own_messages_is_encoded_once(run, clients, monkeypatch):
    async def main() -> None:
        router, (a,) = clients(1)
        calls = _counting_send_messages(monkeypatch, type(a.conn))
        by_member: list[Any] = []
        by_connection: list[Any] = []
        encode = a.conn._encode

        def counting(into: list[Any]) -> Any:
            def counted(msg: Any) -> bytes:
                into.append(msg[2])
                return encode(msg)  # type: ignore[no-any-return]
            return counted

        a.member.frame_encode = counting(by_member)
        # The connection's encoder: its own copy (RawSocket) or its serializer's (picows).
        a.conn._encode = counting(by_connection)
        monkeypatch.setattr(a.conn._serializer, "encode", a.conn._encode)
        payload = "y" * 900
        count = 30  # about 27 KiB: more than one joined write takes
        for i in range(count):
            a.member.send([EVENT, 99, i, {}, [payload]])
        router.flush()
        # The member wrote the first 16 KiB in one write, the connection the rest.
        assert len(a.transport.writes) == 2
        assert len(a.transport.writes[0]) <= 16 * 1024
        assert calls == [a.conn]
        assert [msg[2] for msg in a.messages()] == list(range(count))
        # Each message encoded once, but the first that did not fit (encoded again).
        assert 0 < len(by_member) < count
        assert by_member + by_connection[1:] == list(range(count))
        assert by_connection[0] == by_member[-1]

    run(main)


def test_burst_to_a_paused_receiver_is_held(run, clients):
    async def main() -> None:
        router, (a, b, publisher) = clients(3)
        publisher.send(*[[PUBLISH, 2 + i, {}, TOPIC, [i]] for i in range(3)])
        b.conn.pause_writing()
        publisher.send(*[[PUBLISH, 5 + i, {}, TOPIC, [i + 3]] for i in range(3)])
        assert [msg[4] for msg in a.messages()] == [[i] for i in range(6)]
        assert [msg[4] for msg in b.messages()] == [[0], [1], [2]]
        b.conn.resume_writing()
        assert [msg[4] for msg in b.messages()] == [[3], [4], [5]]

    run(main)
