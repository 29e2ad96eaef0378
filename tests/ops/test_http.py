"""The HTTP listener as a client sees it, in process: real sockets, bad input included."""

from __future__ import annotations

import asyncio

import pytest

from fastwamp.config import Config, ListenerConfig, config_from_toml
from fastwamp.server import Server, serve

TIMEOUT = 20.0


def http_config(**top: object) -> Config:
    config = Config(listeners=[ListenerConfig("http", port=0),
                               ListenerConfig("rawsocket", port=0)])
    for key, value in top.items():
        setattr(config, key, value)
    return config


async def exchange(server: Server, data: bytes, close_write: bool = False) -> bytes:
    """Send ``data`` to the HTTP listener and read until the router closes."""
    port = server.listeners[0].port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if close_write:
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()


def run(config: Config, body) -> None:  # noqa: ANN001 - a coroutine function
    async def main() -> None:
        server = await serve(config)
        try:
            await asyncio.wait_for(body(server), TIMEOUT)
        finally:
            await server.shutdown(timeout=1.0)

    asyncio.run(main())


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_health_ready_metrics_and_bad_requests():
    async def body(server: Server) -> None:
        assert status(await exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
        ready = await exchange(server, b"GET /ready HTTP/1.0\r\n\r\n")
        assert status(ready) == 200 and ready.endswith(b"ready\n")
        metrics = await exchange(server, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n")
        assert status(metrics) == 200 and b"fastwamp_sessions_joined_total 0.0" in metrics
        assert b"text/plain; version=0.0.4" in metrics
        openmetrics = await exchange(
            server, b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n")
        assert b"application/openmetrics-text" in openmetrics and openmetrics.endswith(b"# EOF\n")
        head = await exchange(server, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert status(head) == 200 and head.endswith(b"\r\n\r\n")
        assert status(await exchange(server, b"GET /nothing HTTP/1.1\r\n\r\n")) == 404
        console = await exchange(server, b"GET /console HTTP/1.1\r\n\r\n")
        assert status(console) == 200 and b"text/html" in console and b"<script>" in console
        assert status(await exchange(server, b"GET /console/nope.js HTTP/1.1\r\n\r\n")) == 404
        post = await exchange(server, b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
        assert status(post) == 405 and b"Allow: GET, HEAD" in post
        assert status(await exchange(server, b"\x16\x03\x01garbage\r\n\r\n")) == 400
        assert status(await exchange(server, b"GET\r\n\r\n")) == 400
        huge = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 10000
        assert status(await exchange(server, huge)) == 431
        # EOF before the end of the headers: closed without an answer.
        assert await exchange(server, b"GET /health HTTP/1.1\r\n", close_write=True) == b""
        # The WAMP listener is unaffected.
        assert server.ready()

    run(http_config(http_request_max_bytes=4096), body)


def test_a_client_that_never_finishes_its_request_is_answered_408_and_closed():
    async def body(server: Server) -> None:
        port = server.listeners[0].port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\n")  # and nothing more
        reply = await asyncio.wait_for(reader.read(), TIMEOUT)
        writer.close()
        assert status(reply) == 408

    run(http_config(http_request_timeout=0.2), body)


def test_ready_is_503_once_shutdown_started():
    async def main() -> None:
        server = await serve(http_config())
        assert server.ready()
        shutdown = asyncio.ensure_future(server.shutdown(timeout=1.0))
        await asyncio.sleep(0)
        assert not server.ready()
        await shutdown

    asyncio.run(main())


@pytest.mark.parametrize("toml, problem", [
    ('[[listeners]]\ntype = "http"\ntls_certificate = "x.pem"', "listeners[0].tls_certificate"),
    ('log_format = "xml"', "log_format"),
    ("http_request_max_bytes = 10", "http_request_max_bytes"),
    ("http_request_timeout = 0", "http_request_timeout"),
    ("metrics_series_max = 0", "metrics_series_max"),
])
def test_bad_ops_keys_are_refused(toml, problem):
    from fastwamp.config import ConfigError

    with pytest.raises(ConfigError) as exc:
        config_from_toml(toml)
    assert exc.value.key == problem


def test_metrics_flag_adds_an_http_listener(capsys):
    from fastwamp.cli import main

    assert main(["--metrics", "9100", "--check-config"]) == 0
    assert "listener: http http://127.0.0.1:9100" in capsys.readouterr().out
    assert main(["--metrics", "8080", "--check-config"]) == 2  # the WebSocket listener's port
