"""A message sent to many sessions (SharedMessage) is framed once per serializer and
framing, and written as that one frame to each receiver; big output goes out with
``writelines``.  On each transport and WebSocket engine."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame
from websockets.uri import parse_uri

from fastwamp.config import ListenerConfig
from fastwamp.transport import base
from fastwamp.transport.rawsocket import RawSocketConnection
from fastwamp.transport.websocket import websocket_connection_class
from fastwamp.wamp import uris
from fastwamp.wamp.serializers import SharedMessage

from .conftest import FakeTransport, StubRouter

KINDS = ["rawsocket", "websockets", "picows"]


class Receiver:
    """A connection past its handshake and WELCOME, and a client reading its output."""

    def __init__(self, kind: str, length_bits: int = 15, compression: bool = False) -> None:
        self.kind = kind
        self.router = StubRouter()
        self.transport = FakeTransport()
        if kind == "rawsocket":
            self.conn: Any = RawSocketConnection(self.router, ListenerConfig("rawsocket"))
            self.conn.connection_made(self.transport)
            self.conn.data_received(bytes((0x7F, (length_bits << 4) | 1, 0, 0)))
            self.transport.writes.clear()
        else:
            listener = ListenerConfig("websocket", implementation=kind, compression=compression)
            self.conn = websocket_connection_class(kind)(self.router, listener)
            self.conn.connection_made(self.transport)
            self.client = ClientProtocol(
                parse_uri("ws://127.0.0.1/ws"),
                subprotocols=["wamp.2.json"],
                extensions=enable_client_permessage_deflate(None) if compression else None,
            )
            self.client.send_request(self.client.connect())
            self.conn.data_received(b"".join(self.client.data_to_send()))
            self.client.receive_data(b"".join(self.transport.writes))
            assert self.client.state.name == "OPEN"
            self.client.events_received()
            self.transport.writes.clear()
        self.conn.send_messages([[2, 1, {}]])  # WELCOME: established
        assert self.messages() == [[2, 1, {}]]

    @property
    def session(self) -> Any:
        return self.router.sessions[0] if self.router.sessions else None

    def messages(self) -> list[Any]:
        data = b"".join(self.transport.writes)
        self.transport.writes.clear()
        if self.kind == "rawsocket":
            out = []
            while data:
                (word,) = struct.unpack_from("!I", data)
                out.append(json.loads(data[4 : 4 + (word & 0xFFFFFF)]))
                data = data[4 + (word & 0xFFFFFF) :]
            return out
        self.client.receive_data(data)
        return [json.loads(f.data) for f in self.client.events_received() if isinstance(f, Frame)]


def event(i: int, size: int = 10) -> SharedMessage:
    return SharedMessage([36, 1, i, {}, ["x" * size]])


@pytest.mark.parametrize("kind", KINDS)
def test_one_frame_for_every_receiver(run, kind):
    async def main():
        receivers = [Receiver(kind) for _ in range(3)]
        msg = event(1)
        for r in receivers:
            r.conn.send_messages([msg])
        framing = "rawsocket" if kind == "rawsocket" else "websocket"
        assert set(msg.encoded) == {"json", f"json/{framing}"}
        frames = [r.transport.writes[0] for r in receivers]
        assert all(f is frames[0] for f in frames)  # the very same bytes object
        for r in receivers:
            assert r.messages() == [list(msg)]

    run(main)


def test_engines_share_the_websocket_frame(run):
    async def main():
        a, b = Receiver("websockets"), Receiver("picows")
        msg = event(2, 300)  # a 2-byte length in the frame header
        a.conn.send_messages([msg])
        b.conn.send_messages([msg])
        assert a.transport.writes[0] is b.transport.writes[0]
        assert a.messages() == b.messages() == [list(msg)]

    run(main)


def test_compressed_connection_frames_its_own(run):
    async def main():
        plain, deflated = Receiver("websockets"), Receiver("websockets", compression=True)
        msg = event(3, 500)
        deflated.conn.send_messages([msg])
        plain.conn.send_messages([msg])
        assert deflated.transport.writes[0] != plain.transport.writes[0]
        assert deflated.messages() == plain.messages() == [list(msg)]

    run(main)


def test_size_limit_is_each_receivers(run):
    """The frame is shared, the RawSocket client's announced limit is its own."""

    async def main():
        small, large = Receiver("rawsocket", length_bits=0), Receiver("rawsocket")  # 512 B
        msg = event(4, 1000)
        for r in (large, small, large):
            r.conn.send_messages([msg])
        assert large.messages() == [list(msg), list(msg)]
        assert small.messages() == []
        ((undelivered, error, _reason),) = small.session.undeliverable_msgs
        assert undelivered is msg and error == uris.PAYLOAD_SIZE_EXCEEDED

    run(main)


@pytest.mark.parametrize("kind", KINDS)
def test_unencodable_shared_message_is_reported_by_every_receiver(run, kind):
    async def main():
        receivers = [Receiver(kind) for _ in range(2)]
        msg = SharedMessage([36, 1, 5, {}, [{b"bytes key": 1}]])  # JSON has no bytes keys
        for r in receivers:
            r.conn.send_messages([msg])
            assert r.transport.writes == []
            ((_msg, error, _reason),) = r.session.undeliverable_msgs
            assert error == uris.UNENCODABLE
        assert not any("/" in key for key in msg.encoded)  # no frame kept

    run(main)


@pytest.mark.parametrize("kind", KINDS)
def test_shared_and_own_messages_in_one_write_in_order(run, kind):
    async def main():
        r = Receiver(kind)
        shared = event(6)
        r.conn.send_messages([[50, 7, {}, ["result"]], shared, [50, 8, {}, []]])
        assert len(r.transport.writes) == 1
        assert r.messages() == [[50, 7, {}, ["result"]], list(shared), [50, 8, {}, []]]

    run(main)


@pytest.mark.parametrize("kind", KINDS)
def test_big_output_is_written_as_pieces(run, kind, monkeypatch):
    """Past WRITELINES_MIN bytes the pieces go to ``writelines`` (no joined copy)."""
    calls: list[int] = []
    writelines = FakeTransport.writelines

    def spy(self: FakeTransport, parts: Any) -> None:
        calls.append(len(parts))
        writelines(self, parts)

    monkeypatch.setattr(FakeTransport, "writelines", spy)

    async def main():
        r = Receiver(kind)
        small = [[50, i, {}, ["y"]] for i in range(3)]
        r.conn.send_messages(small)
        assert calls == []  # joined: as cheap for small output
        big = [50, 9, {}, ["z" * base.WRITELINES_MIN]]
        r.conn.send_messages([small[0], big])
        assert calls == [4]  # two headers, two payloads
        assert r.messages() == small + [small[0], big]

    run(main)
