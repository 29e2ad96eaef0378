"""A fan-out EVENT's frame written by the receiver's routing record (``Member.deliver``)
straight to its RawSocket transport, and every case where it must not be: before
WELCOME, while writing is paused, while the connection's own output (a PONG) waits,
once the connection closes, and when the frame exceeds the receiver's limit.

A real router and real RawSocket connections on in-memory transports."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from fastwamp.config import ListenerConfig
from fastwamp.router import Router
from fastwamp.transport import base
from fastwamp.transport.rawsocket import RawSocketConnection

from .conftest import FakeTransport, make_config, rs_frame

PUBLISH, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 32, 33, 36
TOPIC = "com.example.topic"


class Client:
    """A RawSocket connection to the router, joined, subscribed to TOPIC."""

    def __init__(self, router: Router, listener: ListenerConfig, length_bits: int = 15) -> None:
        self.transport = FakeTransport()
        self.conn = RawSocketConnection(router, listener)
        self.conn.connection_made(self.transport)
        self.conn.data_received(bytes((0x7F, (length_bits << 4) | 1, 0, 0)))
        self.transport.writes.clear()  # the handshake reply
        self.send([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}])
        assert self.messages()[0][0] == 2  # WELCOME
        self.send([SUBSCRIBE, 1, {}, TOPIC])
        assert self.messages()[0][0] == SUBSCRIBED

    @property
    def member(self) -> Any:
        return self.conn._session.member

    def send(self, *msgs: Any) -> None:
        self.conn.data_received(b"".join(rs_frame(json.dumps(msg).encode()) for msg in msgs))

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


@pytest.fixture
def clients() -> Any:
    """``clients(n)``: n joined subscribers of TOPIC on one real router (flushing at
    once), with the router."""

    def make(n: int, **keys: Any) -> tuple[Router, list[Client]]:
        listener = ListenerConfig("rawsocket", port=0, serializers=["json"])
        router = Router(make_config(listener, **keys))
        router.call_soon = None
        return router, [Client(router, listener) for _ in range(n)]

    return make


def test_established_connection_lets_its_member_write_frames(run, clients):
    async def main() -> None:
        router, (a, b) = clients(2)
        for client in (a, b):
            assert client.member.frame_transport is client.transport
            assert client.member.frame_limit == client.conn._max_out + 4

    run(main)


def test_event_frame_written_by_the_member_for_every_receiver_but_the_first(
        run, clients, monkeypatch):
    async def main() -> None:
        router, (a, b, c, publisher) = clients(4)
        calls: list[Any] = []
        send_messages = RawSocketConnection.send_messages

        def counting(self: Any, msgs: list) -> None:
            calls.append(self)
            send_messages(self, msgs)

        monkeypatch.setattr(RawSocketConnection, "send_messages", counting)
        sent = base.RAWSOCKET_TRAFFIC.sent
        publisher.send([PUBLISH, 2, {}, TOPIC, ["hello"]])
        got = [x.frames() for x in (a, b, c)]
        assert all(len(frames) == 1 for frames in got)
        assert got[0] == got[1] == got[2]
        assert json.loads(got[0][0][1])[:1] == [EVENT]
        # The first receiver's connection framed it; the others' members wrote that frame.
        assert calls == [a.conn]
        assert base.RAWSOCKET_TRAFFIC.sent - sent == 3 * (4 + len(got[0][0][1]))

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
            rs_frame(b"ping", 1)
            + rs_frame(json.dumps([PUBLISH, 2, {"exclude_me": False}, TOPIC, ["x"]]).encode())
        )
        frames = b.frames()
        assert [kind for kind, _ in frames] == [2, 0]  # PONG, then the EVENT
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
        listener = ListenerConfig("rawsocket", port=0, serializers=["json"])
        router, (a, b) = clients(2)
        small = Client(router, listener, length_bits=1)  # accepts 1 KiB at most
        publisher = Client(router, listener)
        before = router.stats["undeliverable_events"]
        publisher.send([PUBLISH, 2, {}, TOPIC, ["x" * 1200]])
        assert len(a.messages()) == len(b.messages()) == 1
        assert small.messages() == []
        assert router.stats["undeliverable_events"] == before + 1
        publisher.send([PUBLISH, 3, {}, TOPIC, ["short"]])
        assert [msg[4] for msg in small.messages()] == [["short"]]

    run(main)
