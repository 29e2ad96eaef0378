"""The bounded output queue of a connection whose peer reads too slowly.

Most tests drive a connection on :class:`FlowTransport`, a fake transport with
asyncio's flow control (``pause_writing`` above a high-water mark,
``resume_writing`` once drained), calling ``send_messages`` the way the router
does during ``flush()``.  The last tests use real sockets whose client stops
reading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
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
from fastwamp.wamp.serializers import make_serializer

from .conftest import FakeTransport, StubRouter, rs_frame, running, wait_for

EVENT, RESULT, ERROR, GOODBYE = 36, 50, 8, 6
encode_json = make_serializer("json").encode


def event(i: int, size: int = 10) -> list:
    return [EVENT, 1, i, {}, ["x" * size]]


def result(i: int) -> list:
    return [RESULT, i, {}, [i]]


def nbytes(*msgs: list) -> int:
    """Encoded size of ``msgs`` (JSON), as the queue counts it."""
    return sum(len(encode_json(msg)) for msg in msgs)


class FlowTransport(FakeTransport):
    """A FakeTransport with flow control: ``pause_writing`` once more than
    ``high`` bytes are buffered, ``resume_writing`` from :meth:`drain`."""

    def __init__(self, high: int = 1000) -> None:
        super().__init__()
        self.protocol: Any = None
        self.high = high
        self.buffered = 0
        self.write_paused = False

    def write(self, data: bytes) -> None:
        super().write(data)
        self.buffered += len(data)
        if self.buffered > self.high and not self.write_paused:
            self.write_paused = True
            self.protocol.pause_writing()

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def drain(self) -> None:
        """The peer read everything buffered."""
        self.buffered = 0
        if self.write_paused and not self.closed:
            self.write_paused = False
            self.protocol.resume_writing()


class Peer:
    """A connection on a FlowTransport, past the handshake, and a client decoding its output."""

    def __init__(self, kind: str, high: int = 1000, compression: bool = False) -> None:
        self.kind = kind
        self.router = StubRouter()
        self.transport = FlowTransport(high)
        if kind == "rawsocket":
            self.conn: Any = RawSocketConnection(self.router, ListenerConfig("rawsocket"))
            self.transport.protocol = self.conn
            self.conn.connection_made(self.transport)
            self.conn.data_received(b"\x7f\xf1\x00\x00")  # JSON, 16 MiB
            self._buffer = b""
        else:  # "websocket" (the websockets engine) or "picows"
            engine = "picows" if kind == "picows" else "websockets"
            listener = ListenerConfig(
                "websocket", compression=compression, implementation=engine
            )
            self.conn = websocket_connection_class(engine)(self.router, listener)
            self.transport.protocol = self.conn
            self.conn.connection_made(self.transport)
            self.client = ClientProtocol(
                parse_uri("ws://127.0.0.1/ws"),
                subprotocols=["wamp.2.json"],
                extensions=enable_client_permessage_deflate(None) if compression else None,
            )
            self.client.send_request(self.client.connect())
            self.conn.data_received(b"".join(self.client.data_to_send()))
            for chunk in self.transport.writes:
                self.client.receive_data(chunk)
            assert self.client.state.name == "OPEN"
            self.client.events_received()
        self.transport.writes.clear()
        self.transport.buffered = 0
        self.reports: list[tuple[int, int, bool]] = []

    def limits(self, max_bytes: int, max_messages: int, policy: str = "drop_oldest") -> None:
        self.conn.set_output_limits(
            max_bytes, max_messages, policy, lambda *r: self.reports.append(r)
        )

    def fill(self) -> None:
        """Write enough to make the transport pause writing."""
        while not self.transport.write_paused:
            self.conn.send_messages([result(0)] * 20)
        self.take()

    def frames(self) -> list[tuple[str, Any]]:
        """(kind, payload) of every frame written since the last call."""
        data = b"".join(self.transport.writes)
        self.transport.writes.clear()
        out: list[tuple[str, Any]] = []
        if self.kind == "rawsocket":
            buf = self._buffer + data
            while len(buf) >= 4:
                (word,) = struct.unpack_from("!I", buf)
                length = word & 0xFFFFFF
                if len(buf) < 4 + length:
                    break
                payload = buf[4 : 4 + length]
                if word >> 24 == 0:
                    out.append(("msg", json.loads(payload)))
                else:
                    out.append(("pong", payload))
                buf = buf[4 + length :]
            self._buffer = buf
        else:
            self.client.receive_data(data)
            for frame in self.client.events_received():
                assert isinstance(frame, Frame)
                if frame.opcode.name == "TEXT":
                    out.append(("msg", json.loads(frame.data)))
                else:
                    out.append((frame.opcode.name.lower(), frame.data))
        return out

    def take(self) -> list[list]:
        """The WAMP messages written since the last call."""
        return [payload for kind, payload in self.frames() if kind == "msg"]


#: RawSocket, and WebSocket on each engine ("websocket": the websockets engine).
KINDS = pytest.mark.parametrize("kind", ["rawsocket", "websocket", "picows"])


@KINDS
def test_not_paused_writes_at_once(run, kind):
    async def main():
        peer = Peer(kind)
        peer.limits(100, 2)
        msgs = [event(i) for i in range(5)]
        peer.conn.send_messages(msgs)
        assert len(peer.transport.writes) == 1
        assert peer.take() == msgs
        assert peer.reports == []

    run(main)


@KINDS
def test_held_while_paused_written_in_order_on_resume(run, kind):
    async def main():
        peer = Peer(kind)
        peer.limits(10**6, 1000)
        peer.fill()
        assert peer.transport.paused  # reading paused too
        msgs = []
        for i in range(10):
            batch = [event(i), result(i)]
            msgs += batch
            peer.conn.send_messages(batch)
        assert peer.transport.writes == []  # nothing written while paused
        peer.transport.drain()
        assert len(peer.transport.writes) == 1  # one write on resume
        assert peer.take() == msgs
        assert not peer.transport.paused
        assert peer.reports == []
        peer.conn.send_messages([event(99)])  # back on the direct path
        assert peer.take() == [event(99)]

    run(main)


def test_held_output_framed_exactly_as_unpaused(run):
    async def main():
        msgs = [event(i, size) for i, size in enumerate((1, 200, 70000))]
        direct = Peer("rawsocket", high=10**9)
        direct.conn.send_messages(msgs)
        paused = Peer("rawsocket", high=10**9)
        paused.conn.pause_writing()
        paused.conn.send_messages(msgs)
        assert paused.transport.writes == []
        paused.conn.resume_writing()
        assert paused.transport.writes == direct.transport.writes

    run(main)


@KINDS
def test_drop_oldest_drops_only_events_oldest_first(run, kind):
    async def main():
        peer = Peer(kind)
        peer.limits(10**6, 5)
        peer.fill()
        msgs = [event(0), result(0), event(1), event(2), result(1), event(3), event(4)]
        peer.conn.send_messages(msgs)  # 7 messages, 5 allowed: E0 and E1 go
        assert peer.reports == [(2, nbytes(event(0), event(1)), False)]
        peer.transport.drain()
        assert peer.take() == [result(0), event(2), result(1), event(3), event(4)]
        assert not peer.transport.closed

    run(main)


@KINDS
def test_byte_limit(run, kind, monkeypatch):
    monkeypatch.setattr(base, "OVERFLOW_REPORT_INTERVAL", 0.0)

    async def main():
        peer = Peer(kind)
        big = [event(i, 1000) for i in range(10)]
        peer.limits(3 * nbytes(big[0]) + nbytes(result(0)), 1000)
        peer.fill()
        peer.conn.send_messages([result(0)] + big[:3])  # exactly at the limit
        assert peer.reports == []
        peer.conn.send_messages(big[3:5])
        assert peer.reports == [(2, nbytes(*big[:2]), False)]
        peer.conn.send_messages(big[5:])
        assert peer.reports[1] == (5, nbytes(*big[2:7]), False)
        peer.transport.drain()
        assert peer.take() == [result(0)] + big[7:]

    run(main)


@KINDS
def test_replies_are_never_dropped_disconnect_instead(run, kind):
    async def main():
        peer = Peer(kind)
        peer.limits(10**6, 4)
        peer.fill()
        peer.conn.send_messages([event(0), result(0), result(1)])
        msgs = [result(2), [ERROR, 48, 3, {}, "com.err"], [GOODBYE, {}, "wamp.close.x"]]
        peer.conn.send_messages(msgs)  # E0 goes; still 5 replies > 4: disconnect
        assert peer.transport.aborted
        replies = [result(0), result(1), *msgs]
        assert peer.reports == [(1 + 5, nbytes(event(0), *replies), True)]
        peer.conn.send_messages([result(9)])
        peer.conn.resume_writing()
        assert peer.transport.writes == []

    run(main)


@KINDS
def test_disconnect_policy_aborts(run, kind, caplog):
    async def main():
        peer = Peer(kind)
        peer.limits(10**6, 3, "disconnect")
        peer.fill()
        peer.conn.send_messages([event(0), event(1)])
        assert not peer.transport.closed
        peer.conn.send_messages([event(2), event(3)])
        assert peer.transport.aborted
        assert peer.reports == [(4, nbytes(*(event(i) for i in range(4))), True)]
        assert "dropping connection" in caplog.text
        peer.conn.send_messages([event(4)])  # after the abort: ignored, not reported
        assert len(peer.reports) == 1

    run(main)


@KINDS
def test_one_report_per_batch(run, kind, monkeypatch):
    monkeypatch.setattr(base, "OVERFLOW_REPORT_INTERVAL", 0.0)

    async def main():
        peer = Peer(kind)
        peer.limits(10**6, 10)
        peer.fill()
        peer.conn.send_messages([event(i) for i in range(30)])
        assert peer.reports == [(20, nbytes(*(event(i) for i in range(20))), False)]
        peer.conn.send_messages([event(i) for i in range(30, 33)])
        assert peer.reports[1:] == [(3, nbytes(*(event(i) for i in range(20, 23))), False)]

    run(main)


def test_reports_go_to_the_sessions_method_without_a_callback(run, monkeypatch):
    """set_output_limits(..., on_overflow=None): the reports go to the session's
    output_overflow() (no bound method kept per connection)."""
    monkeypatch.setattr(base, "OVERFLOW_REPORT_INTERVAL", 0.0)

    async def main():
        peer = Peer("rawsocket")
        got: list[tuple[int, int, bool]] = []
        peer.router.sessions[0].output_overflow = lambda *r: got.append(r)
        peer.conn.set_output_limits(10**6, 10, "drop_oldest", None)
        peer.fill()
        peer.conn.send_messages([event(i) for i in range(30)])
        assert got == [(20, nbytes(*(event(i) for i in range(20))), False)]

    run(main)


def test_reports_rate_limited_logged_once_and_summarized(run, caplog):
    async def main():
        peer = Peer("rawsocket")
        peer.limits(10**6, 10)
        peer.fill()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
            for i in range(100):  # 90 drops in 100 batches
                peer.conn.send_messages([event(i)])
            # The first drop is reported at once; later ones within the interval wait.
            assert peer.reports == [(1, nbytes(event(0)), False)]
            flushes = peer.router.flushes
            peer.transport.drain()
        assert peer.reports[1:] == [(89, nbytes(*(event(i) for i in range(1, 90))), False)]
        assert peer.router.flushes == flushes + 1  # the report's meta event is delivered
        assert peer.take() == [event(i) for i in range(90, 100)]
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 2, lines
        assert "output queue full" in lines[0]
        assert "90 events" in lines[1]

    run(main)


def test_overflow_feedback_loop_is_bounded(run):
    """A slow session that receives its own overflow events must not loop forever."""

    async def main():
        peer = Peer("rawsocket")
        calls = []

        def on_overflow(*report: Any) -> None:
            calls.append(report)
            session = peer.router.sessions[0]
            session._queue(event(1000 + len(calls)))  # the meta event, to the same session

        peer.conn.set_output_limits(10**6, 5, "drop_oldest", on_overflow)
        peer.fill()
        session = peer.router.sessions[0]
        session._queue(*(event(i) for i in range(10)))
        peer.router.flush()  # returns
        assert len(calls) == 1

    run(main)


@KINDS
def test_resume_pausing_again_keeps_the_rest_held(run, kind, monkeypatch):
    monkeypatch.setattr(base, "DRAIN_CHUNK", 300)
    monkeypatch.setattr(base, "OVERFLOW_REPORT_INTERVAL", 0.0)

    async def main():
        peer = Peer(kind, high=1000)
        peer.limits(10**6, 30)
        peer.fill()
        msgs = [event(i, 100) for i in range(30)]
        peer.conn.send_messages(msgs)
        peer.transport.drain()  # writes ~300-byte chunks until past the high-water mark
        assert peer.transport.write_paused and peer.transport.paused
        first = peer.take()
        assert 0 < len(first) < 30 and first == msgs[: len(first)]
        assert len(peer.transport.writes) == 0
        # The rest is still held, and still subject to the limits.
        more = [event(i, 100) for i in range(30, 60)]
        peer.conn.send_messages(more)
        # The 30-message limit: the oldest held events go, the new ones stay.
        assert sum(r[0] for r in peer.reports) == 30 - len(first)
        rest = []
        for _ in range(20):
            if not peer.transport.write_paused:
                break
            peer.transport.drain()
            rest += peer.take()
        assert rest == more
        assert not peer.transport.paused  # reading resumed once everything was written

    run(main)


@KINDS
def test_close_waits_for_held_output(run, kind):
    async def main():
        peer = Peer(kind)
        peer.limits(10**6, 100)
        peer.fill()
        goodbye = [GOODBYE, {}, "wamp.close.goodbye_and_out"]
        peer.conn.send_messages([event(1), goodbye])
        peer.conn.close()
        assert not peer.transport.closed and peer.transport.writes == []
        peer.transport.drain()
        frames = peer.frames()
        assert frames[:2] == [("msg", event(1)), ("msg", goodbye)]
        if kind == "rawsocket":
            assert peer.transport.closed and len(frames) == 2
        else:
            assert [f[0] for f in frames[2:]] == ["close"]

    run(main)


def test_close_of_peer_that_never_reads_times_out(run, monkeypatch):
    monkeypatch.setattr(base, "CLOSE_TIMEOUT", 0.01)

    async def main():
        peer = Peer("rawsocket")
        peer.limits(10**6, 100)
        peer.fill()
        peer.conn.send_messages([event(1)])
        peer.conn.close()
        await wait_for(lambda: peer.transport.aborted, 2.0)

    run(main)


def test_pong_does_not_overtake_held_messages(run):
    async def main():
        peer = Peer("rawsocket")
        peer.limits(10**6, 100)
        peer.fill()
        peer.conn.send_messages([event(1)])
        peer.conn.data_received(rs_frame(b"ping", 1))  # still in flight when reading paused
        peer.conn.send_messages([event(2)])
        peer.transport.drain()
        assert peer.frames() == [("msg", event(1)), ("pong", b"ping"), ("msg", event(2))]

    run(main)


def test_compressed_stream_survives_dropped_events(run, monkeypatch):
    """Frames are compressed when written, so a dropped EVENT leaves no hole in the
    permessage-deflate context."""
    monkeypatch.setattr(base, "OVERFLOW_REPORT_INTERVAL", 0.0)

    async def main():
        peer = Peer("websocket", compression=True)
        assert peer.client.extensions
        peer.limits(10**6, 5)
        peer.conn.send_messages([event(i, 500) for i in range(3)])
        assert peer.take() == [event(i, 500) for i in range(3)]
        peer.conn.pause_writing()
        peer.conn.send_messages([event(i, 500) for i in range(3, 20)])
        assert sum(r[0] for r in peer.reports) == 12
        peer.conn.resume_writing()
        peer.conn.send_messages([event(99, 500)])
        assert peer.take() == [event(i, 500) for i in (15, 16, 17, 18, 19, 99)]

    run(main)


def test_defaults_before_set_output_limits(run, monkeypatch):
    """Until the session sets limits, held output is bounded by the hard cap only."""
    monkeypatch.setattr(base, "WRITE_BUFFER_LIMIT", 50_000)

    async def main():
        router = StubRouter()
        conn = RawSocketConnection(router, ListenerConfig("rawsocket", max_message_size=1000))
        transport = FlowTransport()
        transport.protocol = conn
        conn.connection_made(transport)
        conn.data_received(b"\x7f\xf1\x00\x00")
        conn.pause_writing()
        msgs = [event(i) for i in range(1000)]  # many messages, about 30 kB: kept
        conn.send_messages(msgs)
        assert not transport.closed
        conn.send_messages([event(i, 1000) for i in range(30)])  # over 50 kB
        assert transport.aborted

    run(main)


# Real sockets: a client that stops reading.


async def _slow_rawsocket_client(server: Any) -> socket.socket:
    """Connect with a tiny receive buffer, complete the handshake, then read nothing."""
    loop = asyncio.get_running_loop()
    listener = server.listeners[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", listener.port))
    await loop.sock_sendall(sock, b"\x7f\xf1\x00\x00")
    reply = b""
    while len(reply) < 4:
        chunk = await loop.sock_recv(sock, 4 - len(reply))
        assert chunk
        reply += chunk
    assert reply == b"\x7f\xf1\x00\x00"
    return sock


async def _read_all_frames(sock: socket.socket, timeout: float = 10.0) -> list[Any]:
    """Read JSON RawSocket messages until the router closes the connection."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    while True:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    msgs = []
    pos = 0
    while pos + 4 <= len(data):
        (word,) = struct.unpack_from("!I", data, pos)
        length = word & 0xFFFFFF
        if pos + 4 + length > len(data):
            break
        msgs.append(json.loads(bytes(data[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    return msgs


def _shrink_send_buffer(conn: Any) -> None:
    sock = conn._transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


def test_real_socket_drop_oldest(run):
    async def main():
        listener = ListenerConfig("rawsocket", port=0)
        async with running(listener) as (server, router):
            sock = await _slow_rawsocket_client(server)
            try:
                await wait_for(lambda: router.sessions)
                conn = router.sessions[0].sink
                _shrink_send_buffer(conn)
                reports: list[tuple[int, int, bool]] = []
                conn.set_output_limits(64 * 1024, 200, "drop_oldest", lambda *r: reports.append(r))
                sent = []
                for i in range(3000):  # ~3 MB of events, a reply every 30
                    batch = [event(i, 1000)] + ([result(i)] if i % 30 == 0 else [])
                    sent += batch
                    conn.send_messages(batch)
                    if i % 50 == 0:
                        await asyncio.sleep(0)
                assert conn._write_paused
                assert conn._queue.messages <= 200 and conn._queue.bytes <= 64 * 1024
                assert reports and not any(r[2] for r in reports)
                conn.close()  # after the peer has read what is held
                got = await _read_all_frames(sock)
            finally:
                sock.close()
        results = [m for m in got if m[0] == RESULT]
        events = [m[2] for m in got if m[0] == EVENT]
        assert results == [m for m in sent if m[0] == RESULT]  # every reply, in order
        assert events == sorted(events) and events[-1] == 2999  # oldest dropped, newest kept
        dropped = 3000 - len(events)
        assert dropped > 0 and sum(r[0] for r in reports) == dropped
        assert sum(r[1] for r in reports) == nbytes(
            *(event(i, 1000) for i in set(range(3000)) - set(events))
        )

    run(main)


def test_real_socket_disconnect_policy(run):
    async def main():
        listener = ListenerConfig("rawsocket", port=0)
        async with running(listener) as (server, router):
            sock = await _slow_rawsocket_client(server)
            try:
                await wait_for(lambda: router.sessions)
                conn = router.sessions[0].sink
                _shrink_send_buffer(conn)
                reports: list[tuple[int, int, bool]] = []
                conn.set_output_limits(64 * 1024, 200, "disconnect", lambda *r: reports.append(r))
                for i in range(3000):
                    conn.send_messages([event(i, 1000)])
                    if i % 50 == 0:
                        await asyncio.sleep(0)
                    if reports:
                        break
                assert len(reports) == 1 and reports[0][2] is True
                await wait_for(lambda: router.sessions[0].detach_count == 1)
                await _read_all_frames(sock)  # ends: the router closed the connection
            finally:
                sock.close()

    run(main)
