"""Limits before the session is established, on frames, and per client address.

Real sockets on loopback, every engine: ``handshake_timeout`` (ABORT once a
session exists), ``max_handshake_message_size`` until WELCOME,
``frame_timeout`` for a frame that stops halfway, ``max_connections_per_address``,
TCP keepalive, and the open-files limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode

from fastwamp.config import ListenerConfig
from fastwamp.transport.base import ConnectionLimits, keepalive_settings
from fastwamp.wamp import uris

from .conftest import (
    RawSocketClient,
    real_router,
    rs_frame,
    rs_read_frame,
    running,
    wait_for,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def rs_listener(**kwargs: Any) -> ListenerConfig:
    return ListenerConfig("rawsocket", port=0, **kwargs)


@pytest.fixture
def ws_listener(ws_impl: str):
    def make(**kwargs: Any) -> ListenerConfig:
        return ListenerConfig("websocket", port=0, implementation=ws_impl, **kwargs)

    return make


# handshake_timeout


def test_rawsocket_without_hello_gets_abort(run, caplog):
    async def main():
        listener = rs_listener()
        router = real_router(listener, handshake_timeout=0.2)
        async with running(listener, router=router, handshake_timeout=0.2) as (server, _):
            client = await RawSocketClient.connect(server.listeners[0].port)
            abort = await client.recv()
            assert abort[0] == 3 and abort[2] == uris.TIMEOUT, abort
            assert "0.2 s" in abort[1]["message"]
            assert await client.at_eof() == b""
            assert router.stats["handshake_timeouts"] == 1
            assert not server.connections

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("no HELLO" in r.getMessage() for r in caplog.records)


def test_websocket_without_hello_gets_abort(run, ws_listener):
    async def main():
        listener = ws_listener()
        router = real_router(listener, handshake_timeout=0.2)
        async with running(listener, router=router, handshake_timeout=0.2) as (server, _):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                abort = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert abort[0] == 3 and abort[2] == uris.TIMEOUT, abort
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == CloseCode.NORMAL_CLOSURE
            await wait_for(lambda: not server.connections)

    run(main)


def test_established_sessions_outlive_the_handshake_timeout(run):
    async def main():
        listener = rs_listener()
        router = real_router(listener, handshake_timeout=0.1)
        async with running(listener, router=router, handshake_timeout=0.1) as (server, _):
            client = await RawSocketClient.connect(server.listeners[0].port)
            await client.join()
            await asyncio.sleep(0.3)
            client.send([32, 1, {}, "com.example.topic"])
            assert (await client.recv())[0] == 33  # SUBSCRIBED
            assert router.stats["handshake_timeouts"] == 0
            client.close()

    run(main)


# max_handshake_message_size


def test_rawsocket_frame_over_the_handshake_limit_is_refused_at_its_header(run):
    async def main():
        async with running(rs_listener(), max_handshake_message_size=1024) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(b"\x7f\xf1\x00\x00")
            # The router announces the listener's limit (16 MiB), which applies after WELCOME.
            assert await reader.readexactly(4) == b"\x7f\xf1\x00\x00"
            # A 16 MiB frame: refused at its header, before a byte of its payload.
            writer.write(struct.pack("!I", (1 << 24) - 1) + b"[")
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert router.sessions[0].received == []
            assert router.stats["oversize_frames"] == 1
            writer.close()

    run(main)


def test_rawsocket_limit_rises_after_welcome(run):
    async def main():
        async with running(rs_listener(), max_handshake_message_size=1024) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(b"\x7f\xf1\x00\x00")
            await reader.readexactly(4)
            writer.write(rs_frame(b'["small"]') + rs_frame(b'["welcome"]'))
            assert await rs_read_frame(reader) == (0, b'["small"]')
            assert json.loads((await rs_read_frame(reader))[1])[0] == 2  # WELCOME
            big = json.dumps(["big-message", "x" * 5000]).encode()
            writer.write(rs_frame(big))
            assert json.loads((await rs_read_frame(reader))[1]) == json.loads(big)
            writer.close()

    run(main)


def test_websocket_message_over_the_handshake_limit(run, ws_listener):
    async def main():
        async with running(ws_listener(), max_handshake_message_size=1024) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send(json.dumps(["x" * 2000]))
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 5)
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
            assert router.stats["oversize_frames"] == 1
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send('["welcome"]')
                assert json.loads(await ws.recv())[0] == 2
                message = json.dumps(["x" * 5000])
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), 5) == message

    run(main)


def test_websocket_frame_growing_past_the_handshake_limit(run, ws_listener):
    """A frame announced as large and sent slowly is refused once what is buffered
    passes the limit, not when (if ever) it is complete."""

    async def main():
        async with running(ws_listener(), max_handshake_message_size=4096) as (server, router):
            port = server.listeners[0].port
            reader, writer = await _ws_open(port)
            # A masked text frame announcing 1 MiB; send 64 KiB of it.
            writer.write(bytes((0x81, 0x80 | 127)) + struct.pack("!Q", 1 << 20) + b"\0\0\0\0")
            for _ in range(16):  # websockets refuses at the header, picows after 4 KiB
                if writer.is_closing():
                    break
                try:
                    writer.write(b" " * 4096)
                except (RuntimeError, ConnectionError):
                    break
                await asyncio.sleep(0.01)
            await wait_for(lambda: router.stats["oversize_frames"] == 1)
            await wait_for(lambda: not server.connections)
            try:
                data = await asyncio.wait_for(reader.read(), 5)
            except ConnectionError:  # reset: the router closed with our bytes unread
                data = b""
            if data:  # a close frame 1009, then the end of the stream
                assert data[:1] == b"\x88" and struct.unpack("!H", data[2:4])[0] == 1009, data
            writer.close()

    run(main)


async def _ws_open(port: int, subprotocol: str = "wamp.2.json"):
    """A raw WebSocket client past the upgrade (frames are written by hand)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        ).encode()
    )
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert response.startswith(b"HTTP/1.1 101"), response
    return reader, writer


# frame_timeout


def test_rawsocket_frame_that_stops_halfway_is_dropped(run, caplog):
    async def main():
        async with running(rs_listener(), frame_timeout=0.2) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(b"\x7f\xf1\x00\x00")
            await reader.readexactly(4)
            frame = rs_frame(json.dumps(["x" * 10000]).encode())
            writer.write(rs_frame(b'["first"]') + frame[:-1])  # all but the last byte
            assert await rs_read_frame(reader) == (0, b'["first"]')
            assert await asyncio.wait_for(reader.read(), 5) == b""
            (session,) = router.sessions
            assert session.detach_count == 1 and session.received == [["first"]]
            assert router.stats["frame_timeouts"] == 1
            writer.close()

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert any("frame_timeout" in r.getMessage() for r in caplog.records)


def test_rawsocket_frames_that_complete_in_time_are_kept(run):
    async def main():
        async with running(rs_listener(), frame_timeout=0.3) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(b"\x7f\xf1\x00\x00")
            await reader.readexactly(4)
            # Six frames, each sent in two halves 0.1 s apart: 0.6 s in all, each
            # frame complete within 0.1 s of its start.
            for i in range(6):
                frame = rs_frame(json.dumps(["m", i]).encode())
                writer.write(frame[:5])
                await asyncio.sleep(0.1)
                writer.write(frame[5:])
                assert json.loads((await rs_read_frame(reader))[1]) == ["m", i]
            assert router.stats["frame_timeouts"] == 0
            writer.close()

    run(main)


def test_websocket_message_that_stops_halfway_is_dropped(run, ws_listener):
    async def main():
        async with running(ws_listener(), frame_timeout=0.2) as (server, router):
            reader, writer = await _ws_open(server.listeners[0].port)
            # A masked text frame of 100 bytes (zero mask), all but its last byte.
            writer.write(bytes((0x81, 0x80 | 100)) + b"\0\0\0\0" + b" " * 99)
            data = await asyncio.wait_for(reader.read(), 5)
            assert data == b""  # dropped, no closing handshake
            await wait_for(lambda: router.stats["frame_timeouts"] == 1)
            await wait_for(lambda: router.sessions[0].detach_count == 1)
            writer.close()

    run(main)


def test_websocket_fragmented_message_that_stops_is_dropped(run, ws_listener):
    async def main():
        async with running(ws_listener(), frame_timeout=0.2) as (server, router):
            reader, writer = await _ws_open(server.listeners[0].port)
            # A first fragment (FIN clear) of a text message, complete; no more.
            writer.write(bytes((0x01, 0x80 | 3)) + b"\0\0\0\0" + b'["a')
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert router.stats["frame_timeouts"] == 1
            writer.close()

    run(main)


def test_many_incomplete_frames_hold_little_memory(run):
    """Unauthenticated connections announcing 16 MiB frames hold nothing of them."""

    async def main():
        async with running(rs_listener(), max_handshake_message_size=65536) as (server, router):
            port = server.listeners[0].port
            streams = []
            for _ in range(50):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"\x7f\xf2\x00\x00" + struct.pack("!I", (1 << 24) - 1) + b"\x91")
                streams.append((reader, writer))
            for reader, writer in streams:
                assert (await asyncio.wait_for(reader.read(), 5))[:4] == b"\x7f\xf2\x00\x00"
                writer.close()
            assert router.stats["oversize_frames"] == 50
            await wait_for(lambda: not server.connections)

    run(main)


# max_connections_per_address


def test_rawsocket_connections_over_the_address_limit(run, caplog):
    async def main():
        async with running(rs_listener(), max_connections_per_address=2) as (server, router):
            port = server.listeners[0].port
            first = await RawSocketClient.connect(port)
            second = await RawSocketClient.connect(port)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x7f\xf1\x00\x00")
            # Error 4: maximum connection count reached; then closed.
            assert await asyncio.wait_for(reader.read(), 5) == b"\x7f\x40\x00\x00"
            writer.close()
            assert router.stats["connections_refused"] == 1
            assert len(router.sessions) == 2
            first.close()
            await wait_for(lambda: len(server.connections) == 1)
            third = await RawSocketClient.connect(port)  # a place is free again
            third.send(["hello"])
            assert await third.recv() == ["hello"]
            assert server.limits.per_address == {"127.0.0.1": 2}
            second.close()
            third.close()
            await wait_for(lambda: not server.limits.per_address)

    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        run(main)
    assert sum("max_connections_per_address" in r.getMessage() for r in caplog.records) == 1


def test_websocket_connections_over_the_address_limit(run, ws_listener):
    async def main():
        async with running(ws_listener(), max_connections_per_address=1) as (server, router):
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]):
                with pytest.raises(InvalidStatus) as info:
                    async with connect(server.urls[0], subprotocols=["wamp.2.json"]):
                        pass
                assert info.value.response.status_code == 503
            assert router.stats["connections_refused"] == 1
            await wait_for(lambda: not server.connections)
            async with connect(server.urls[0], subprotocols=["wamp.2.json"]) as ws:
                await ws.send('["again"]')
                assert await ws.recv() == '["again"]'

    run(main)


def test_the_address_limit_is_shared_by_listeners(run):
    async def main():
        async with running(
            rs_listener(), ListenerConfig("websocket", port=0), max_connections_per_address=1
        ) as (server, router):
            client = await RawSocketClient.connect(server.listeners[0].port)
            with pytest.raises(InvalidStatus):
                async with connect(server.urls[1], subprotocols=["wamp.2.json"]):
                    pass
            client.close()

    run(main)


def test_log_lines_of_refusals_are_rate_limited(caplog):
    limits = ConnectionLimits()
    with caplog.at_level(logging.WARNING, logger="fastwamp.transport"):
        for i in range(1000):
            limits.log("refused", logging.WARNING, "%s: refused\nforged", limits.clip(f"x{i}\n"))
    lines = [r.getMessage() for r in caplog.records]
    assert 1 <= len(lines) <= 2 * 5.0 * 4 + 1
    assert all("\\x0a" in line for line in lines)  # client values escaped


# TCP keepalive


def test_keepalive_settings():
    assert keepalive_settings(30.0, 10.0) == (40, 4, 3)
    assert keepalive_settings(0.5, 0.5) == (1, 1, 3)
    assert keepalive_settings(0.0, 10.0) == (40, 4, 3)  # pings off


@pytest.mark.parametrize("enabled", [True, False])
def test_tcp_keepalive_on_accepted_sockets(run, enabled):
    async def main():
        listener = rs_listener(tcp_keepalive=enabled, auto_ping_interval=20.0,
                               auto_ping_timeout=6.0)
        async with running(listener) as (server, router):
            client = await RawSocketClient.connect(server.listeners[0].port)
            (conn,) = server.connections
            sock = conn._transport.get_extra_info("socket")
            assert bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)) is enabled
            if enabled and hasattr(socket, "TCP_KEEPIDLE"):
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 26
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 2
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            client.close()

    run(main)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: inherited at accept")
def test_keepalive_is_set_on_the_listening_socket_and_follows_a_reload(run):
    """On Linux the listening socket carries the keepalive options (accepted sockets
    inherit them, no setsockopt per connection); a reload sets the new ones, or clears
    keepalive, for the connections accepted after it."""
    import dataclasses

    async def main():
        listener = rs_listener(tcp_keepalive=True, auto_ping_interval=20.0,
                               auto_ping_timeout=6.0)
        async with running(listener) as (server, router):
            (listening,) = server.listeners[0].server.sockets
            assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 26

            async def accepted_options() -> tuple[int, int]:
                client = await RawSocketClient.connect(server.listeners[0].port)
                await wait_for(lambda: len(server.connections) == 1)
                (conn,) = server.connections
                assert conn.keepalive_inherited is server.listeners[0].keepalive_on_listen
                sock = conn._transport.get_extra_info("socket")
                options = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                           sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))
                client.close()
                await wait_for(lambda: not server.connections)
                return options

            assert await accepted_options() == (1, 26)
            config = dataclasses.replace(server.config)
            config.listeners = [dataclasses.replace(listener, auto_ping_interval=50.0)]
            server.reload(config)
            assert (await accepted_options())[1] == 56
            config = dataclasses.replace(server.config)
            config.listeners = [dataclasses.replace(server.listeners[0].config, tcp_keepalive=False)]
            server.reload(config)
            assert not listening.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            assert (await accepted_options())[0] == 0

    run(main)


# Descriptors


def _child(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE")
def test_raise_fd_limit():
    result = _child(
        """
        import resource
        from fastwamp.server import raise_fd_limit
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        new = raise_fd_limit()
        print(new, resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
        """
    )
    assert result.returncode == 0, result.stderr
    new, soft, hard = (int(x) for x in result.stdout.split())
    assert new == soft and (soft == hard or soft >= 64)


_EMFILE_CHILD = """
import asyncio, logging, resource, socket, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(levelname)s %(name)s: %(message)s")
from fastwamp.config import Config, ListenerConfig, RealmConfig
from fastwamp.server import serve
from fastwamp.transport.loop import loop_factory

async def main():
    config = Config(realms=[RealmConfig("realm1")],
                    listeners=[ListenerConfig("rawsocket", port=0)])
    server = await serve(config)
    port = server.listeners[0].port
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, hard))
    server.limits.refresh_fd_limit()
    clients = []
    try:
        for _ in range(60):
            s = socket.socket()
            s.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
            except OSError:
                s.close()
                break
            clients.append(s)
            await asyncio.sleep(0.01)
    except OSError:
        pass
    await asyncio.sleep(1.5)
    for s in clients:
        s.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    await asyncio.sleep(1.5)
    # The listener still serves.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\\x7f\\xf1\\x00\\x00")
    print("REPLY", (await asyncio.wait_for(reader.readexactly(4), 5)).hex())
    print("STATS", server.router.stats["accept_failures"])
    writer.close()
    server.abort()

asyncio.Runner(loop_factory=loop_factory()).run(main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_out_of_descriptors_is_logged_and_survived(loop):
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.Runner")
    env_prefix = "import os; os.environ['FASTWAMP_NO_UVLOOP'] = '1'\n" if loop == "asyncio" else ""
    result = _child(env_prefix + _EMFILE_CHILD)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "REPLY 7ff10000" in out, out
    assert "Traceback" not in out + result.stderr, out + result.stderr
    if loop == "asyncio":
        # The loop's accept failures: logged (rate-limited) and counted, no traceback.
        assert "cannot accept connections" in out, out
        assert int(out.split("STATS ")[1].split()[0]) >= 1
        assert out.count("cannot accept connections") <= 10  # about 1 a second
    else:
        # uvloop drops such connections itself: the warning comes from the descriptors.
        assert "about to run out of descriptors" in out, out
