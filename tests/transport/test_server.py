"""serve() / the fastwamp process with the real router, and the loop scheduler."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cbor2
import msgpack
import pytest
from websockets.asyncio.client import connect

from fastwamp.config import ListenerConfig
from fastwamp.transport.loop import LoopScheduler, loop_factory

from .conftest import StubRouter, rs_frame, rs_read_frame, running, wait_for

try:
    from fastwamp.router import Router
except ImportError:  # the router core is not there yet
    Router = None  # type: ignore[assignment,misc]

needs_router = pytest.mark.skipif(Router is None, reason="fastwamp.router.Router not available")

REPO_ROOT = Path(__file__).resolve().parents[2]
HELLO = [1, "realm1", {"roles": {"caller": {}, "subscriber": {}}}]
SERIALIZERS = {
    "json": (1, lambda m: json.dumps(m).encode(), json.loads),
    "msgpack": (2, msgpack.packb, msgpack.unpackb),
    "cbor": (3, cbor2.dumps, cbor2.loads),
}


def test_scheduler_flushes_after_callbacks(run):
    async def main():
        loop = asyncio.get_running_loop()
        router = StubRouter()
        scheduler = LoopScheduler(loop, router)
        t0 = scheduler.time()
        done = asyncio.Event()
        calls: list[str] = []

        def boom() -> None:
            calls.append("boom")
            raise RuntimeError("callback failure is logged, flush still happens")

        scheduler.call_later(0, lambda: calls.append("a"))
        cancelled = scheduler.call_later(0, lambda: calls.append("never"))
        cancelled.cancel()
        scheduler.call_later(-1, boom)  # negative delays run at once
        scheduler.call_later(0.01, done.set)
        await done.wait()
        assert calls == ["a", "boom"]
        assert router.flushes == 3
        assert scheduler.time() >= t0

    run(main)


def test_loop_factory_env(monkeypatch):
    import uvloop

    monkeypatch.delenv("FASTWAMP_NO_UVLOOP", raising=False)
    assert loop_factory() is uvloop.new_event_loop
    monkeypatch.setenv("FASTWAMP_NO_UVLOOP", "1")
    assert loop_factory() is asyncio.new_event_loop


def test_port_zero_and_urls(run):
    async def main():
        listeners = [
            ListenerConfig("websocket", port=0, path="/wamp"),
            ListenerConfig("rawsocket", port=0),
        ]
        async with running(*listeners) as (server, _router):
            ws_url, rs_url = server.urls
            assert ws_url == f"ws://127.0.0.1:{server.listeners[0].port}/wamp"
            assert rs_url == f"tcp://127.0.0.1:{server.listeners[1].port}"
            assert all(listener.port > 0 for listener in server.listeners)

    run(main)


@needs_router
@pytest.mark.parametrize("serializer", list(SERIALIZERS))
def test_real_router_over_both_transports(run, serializer, ws_impl):
    ser_id, encode, decode = SERIALIZERS[serializer]

    async def main():
        listeners = [
            ListenerConfig("websocket", port=0, implementation=ws_impl),
            ListenerConfig("rawsocket", port=0),
        ]
        config_router = Router(_config(listeners))
        async with running(*listeners, router=config_router) as (server, router):
            async with connect(server.urls[0], subprotocols=[f"wamp.2.{serializer}"]) as ws:
                await ws.send(encode(HELLO) if serializer != "json" else json.dumps(HELLO))
                welcome = decode(await ws.recv())
                assert welcome[0] == 2 and isinstance(welcome[1], int)

                host, port = "127.0.0.1", server.listeners[1].port
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(bytes((0x7F, 0xF0 | ser_id, 0, 0)) + rs_frame(encode(HELLO)))
                assert (await reader.readexactly(4))[1] & 0x0F == ser_id
                msg_type, payload = await rs_read_frame(reader)
                assert decode(payload)[0] == 2

                await server.shutdown()
                for goodbye in (decode(await ws.recv()), decode((await rs_read_frame(reader))[1])):
                    assert goodbye[0] == 6 and goodbye[2] == "wamp.close.system_shutdown"
                assert await reader.read(10) == b""
                writer.close()
            assert not server.connections

    run(main)


def _config(listeners):
    from fastwamp.config import Config, RealmConfig

    return Config(realms=[RealmConfig("realm1")], listeners=listeners)


def _write_config(tmp_path: Path) -> Path:
    path = tmp_path / "router.toml"
    path.write_text(
        """
log_level = "info"
[[realms]]
name = "realm1"
[[listeners]]
type = "websocket"
port = 0
[[listeners]]
type = "rawsocket"
port = 0
serializers = ["msgpack"]
""",
        encoding="utf-8",
    )
    return path


def _start(tmp_path: Path, env_extra: dict[str, str] | None = None):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env_extra or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastwamp", "--config", str(_write_config(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.strip() == "fastwamp: ready":
            break
    else:
        _, stderr = proc.communicate(timeout=10)
        pytest.fail(f"no ready line; stdout={lines!r} stderr={stderr!r}")
    return proc, lines


def test_process_prints_listening_lines(tmp_path):
    proc, lines = _start(tmp_path)
    try:
        assert len(lines) == 3
        assert lines[0].startswith("fastwamp: listening on ws://127.0.0.1:")
        assert lines[0].endswith("/ws")
        assert lines[1].startswith("fastwamp: listening on tcp://127.0.0.1:")
        assert lines[2] == "fastwamp: ready"
        assert not lines[0].endswith(":0/ws")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


@needs_router
@pytest.mark.parametrize("no_uvloop", ["", "1"])
def test_sigterm_says_goodbye_and_exits_0(tmp_path, no_uvloop):
    proc, lines = _start(tmp_path, {"FASTWAMP_NO_UVLOOP": no_uvloop})
    ws_url = lines[0].split()[-1]
    host, port = lines[1].split()[-1].removeprefix("tcp://").rsplit(":", 1)

    async def main():
        async with connect(ws_url, subprotocols=["wamp.2.json"]) as ws:
            await ws.send(json.dumps(HELLO))
            assert json.loads(await ws.recv())[0] == 2
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"\x7f\xf2\x00\x00" + rs_frame(msgpack.packb(HELLO)))
            assert await reader.readexactly(4) == b"\x7f\xf2\x00\x00"
            assert msgpack.unpackb((await rs_read_frame(reader))[1])[0] == 2

            proc.send_signal(signal.SIGTERM)
            ws_goodbye = json.loads(await ws.recv())
            rs_goodbye = msgpack.unpackb((await rs_read_frame(reader))[1])
            for goodbye in (ws_goodbye, rs_goodbye):
                assert goodbye[0] == 6 and goodbye[2] == "wamp.close.system_shutdown"
            assert await reader.read(10) == b""
            writer.close()
            await wait_for(lambda: ws.protocol.state.name == "CLOSED")

    try:
        asyncio.run(asyncio.wait_for(main(), 20))
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "Traceback" not in stderr
    assert "shutting down" in stderr


def test_port_in_use_exits_1(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    path = tmp_path / "busy.toml"
    path.write_text(f'[[listeners]]\ntype = "rawsocket"\nport = {port}\n', encoding="utf-8")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fastwamp", "--config", str(path)],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            timeout=30,
        )
    finally:
        sock.close()
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_memory_released_after_many_connections_close(run, monkeypatch):
    """Once enough connections have closed since the peak, the server rebuilds its
    set of connections (a set keeps its largest table), calls the router's
    release_memory(), a full garbage collection (closed sessions leave reference
    cycles, which an idle process would keep) and malloc_trim; not before, and
    not again until as many more have closed."""
    import fastwamp.server as server_module

    trims: list[int] = []
    monkeypatch.setattr(server_module, "_malloc_trim", trims.append)
    collections: list[int] = []
    monkeypatch.setattr(server_module.gc, "collect", lambda: collections.append(1))

    async def main():
        async with running(ListenerConfig("rawsocket", port=0)) as (server, router):
            released: list[int] = []
            router.release_memory = lambda: released.append(1)  # the core's optional hook
            server.release_min_closed = 8
            port = server.listeners[0].port
            streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
            await wait_for(lambda: len(server.connections) == 20)
            assert not server.release_memory_if_idle()  # the peak: 20
            for _, writer in streams[:6]:
                writer.close()
            await wait_for(lambda: len(server.connections) == 14)
            assert not server.release_memory_if_idle() and trims == []  # 6 < 8 closed
            for _, writer in streams[6:12]:
                writer.close()
            await wait_for(lambda: len(server.connections) == 8)
            assert server.release_memory_if_idle() and trims == [0] and released == [1]
            assert collections == [1]
            assert len(server.connections) == 8 and server.connections.peak == 8
            assert not server.release_memory_if_idle()  # nothing more closed
            for _, writer in streams[12:]:
                writer.close()

    run(main)
