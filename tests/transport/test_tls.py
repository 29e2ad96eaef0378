"""TLS listeners (wss://, RawSocket over TLS), TLS on plain listeners, allowed origins.

Real TLS over loopback with a throwaway CA and certificates made by the test
(``tls_material``), on both loops and both WebSocket engines; the router is
the echoing stub of ``conftest``, whose sessions keep their transport info.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from fastwamp.config import ConfigError, ListenerConfig, config_from_toml, load_config
from fastwamp.origins import OriginPolicy, origin_pattern_problem
from fastwamp.server import reload_from_file
from fastwamp.transport.tls import is_tls_client_hello, subject_string

from .conftest import rs_frame, rs_read_frame, running, wait_for
from .tls_material import TLSFiles, make_tls_files, peer_cert_sha256


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


def tls_listener(kind: str, pki: TLSFiles, **keys: Any) -> ListenerConfig:
    keys.setdefault("port", 0)
    keys.setdefault("tls_certificate", str(pki.path("server.pem")))
    keys.setdefault("tls_key", str(pki.path("server.key")))
    if keys.get("tls_client_certificate", "none") != "none":
        keys.setdefault("tls_ca_certificates", str(pki.path("ca.pem")))
    return ListenerConfig(kind, **keys)


async def rs_tls_connect(
    port: int, context: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect over TLS and do the RawSocket handshake (JSON)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    writer.write(bytes((0x7F, 0xF1, 0, 0)))
    reply = await asyncio.wait_for(reader.readexactly(4), 5)
    assert reply[0] == 0x7F and reply[1] & 0x0F == 1, reply
    return reader, writer


async def rs_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, msg: Any) -> Any:
    writer.write(rs_frame(json.dumps(msg).encode()))
    _, payload = await asyncio.wait_for(rs_read_frame(reader), 5)
    return json.loads(payload)


# -- TLS listeners -----------------------------------------------------------


def test_rawsocket_over_tls(run, pki):
    async def main():
        async with running(tls_listener("rawsocket", pki)) as (server, router):
            port = server.listeners[0].port
            assert server.urls == [f"rss://127.0.0.1:{port}"]
            reader, writer = await rs_tls_connect(port, pki.client_context())
            assert peer_cert_sha256(writer.get_extra_info("ssl_object")) == pki.server_sha256
            assert await rs_echo(reader, writer, ["hello", 1]) == ["hello", 1]
            info = router.sessions[0].info
            assert info["type"] == "rawsocket" and info["serializer"] == "json"
            tls = info["tls"]
            assert tls["version"] == "TLSv1.3" and tls["cipher"]
            assert tls["peer_cert_sha256"] is None and tls["peer_cert_subject"] is None
            assert tls["channel_binding"] == {}  # no tls-unique in TLS 1.3
            writer.close()

    run(main)


def test_websocket_over_tls(run, pki, ws_impl):
    async def main():
        listener = tls_listener("websocket", pki, implementation=ws_impl)
        async with running(listener) as (server, router):
            url = server.urls[0]
            assert url == f"wss://127.0.0.1:{server.listeners[0].port}/ws"
            async with connect(
                url.replace("127.0.0.1", "localhost"),
                subprotocols=["wamp.2.json"],
                ssl=pki.client_context(),
            ) as ws:
                await ws.send(json.dumps(["hello", 2]))
                assert json.loads(await ws.recv()) == ["hello", 2]
                info = router.sessions[0].info
                assert info["type"] == "websocket" and info["tls"]["version"] == "TLSv1.3"
                assert info["tls"]["peer_cert_subject"] is None
                # Many messages and a large one go through the TLS transport's flow control.
                await ws.send(json.dumps(["big", 300_000]))
                big = json.loads(await ws.recv())
                assert len(big[1]) == 300_000
                assert json.loads(await ws.recv()) == ["after"]

    run(main)


@pytest.mark.parametrize("kind", ["rawsocket", "websocket"])
def test_client_certificate_required(run, pki, kind):
    async def main():
        listener = tls_listener(kind, pki, tls_client_certificate="required")
        async with running(listener) as (server, router):
            port = server.listeners[0].port
            # alice's certificate, from the trusted CA: accepted, and her identity is known.
            if kind == "rawsocket":
                reader, writer = await rs_tls_connect(port, pki.client_context("alice"))
                assert await rs_echo(reader, writer, ["x"]) == ["x"]
                writer.close()
            else:
                async with connect(
                    f"wss://localhost:{port}/ws", subprotocols=["wamp.2.json"],
                    ssl=pki.client_context("alice"),
                ) as ws:
                    await ws.send(json.dumps(["x"]))
                    assert json.loads(await ws.recv()) == ["x"]
            tls = router.sessions[0].info["tls"]
            assert tls["peer_cert_subject"] == "CN=alice,O=Example"
            assert tls["peer_cert_sha256"] == pki.alice_sha256
            # No certificate, or one from another CA: the handshake fails, no session.
            for client in (None, "mallory"):
                with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                    reader, writer = await rs_tls_connect(port, pki.client_context(client))
                    await rs_echo(reader, writer, ["never"])
            await wait_for(lambda: router.stats["tls_handshake_failures"] == 2)
            assert len(router.sessions) == 1
            await wait_for(lambda: not server.limits.per_address)

    run(main)


def test_client_certificate_optional(run, pki):
    async def main():
        listener = tls_listener("rawsocket", pki, tls_client_certificate="optional")
        async with running(listener) as (server, router):
            port = server.listeners[0].port
            for client in (None, "alice"):
                reader, writer = await rs_tls_connect(port, pki.client_context(client))
                assert await rs_echo(reader, writer, [client]) == [client]
                writer.close()
            first, second = (s.info["tls"] for s in router.sessions)
            assert first["peer_cert_subject"] is None and first["peer_cert_sha256"] is None
            assert second["peer_cert_subject"] == "CN=alice,O=Example"

    run(main)


def test_tls12_channel_binding_and_min_version(run, pki):
    async def main():
        tls12 = pki.client_context("alice")
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        listeners = (
            tls_listener("rawsocket", pki, tls_client_certificate="optional"),
            tls_listener("rawsocket", pki, tls_min_version="1.3"),
        )
        async with running(*listeners) as (server, router):
            reader, writer = await rs_tls_connect(server.listeners[0].port, tls12)
            assert await rs_echo(reader, writer, ["x"]) == ["x"]
            expected = writer.get_extra_info("ssl_object").get_channel_binding("tls-unique")
            tls = router.sessions[0].info["tls"]
            assert tls["version"] == "TLSv1.2"
            assert tls["channel_binding"] == {"tls-unique": expected}
            assert isinstance(expected, bytes) and len(expected) == 12
            writer.close()
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await rs_tls_connect(server.listeners[1].port, tls12)

    run(main)


def test_tls_handshake_is_bounded_by_handshake_timeout(run, pki, caplog):
    """A client that opens TCP and never sends a ClientHello is dropped."""
    caplog.set_level(logging.INFO, "fastwamp")

    async def main():
        async with running(tls_listener("rawsocket", pki), handshake_timeout=0.2) as (
            server, router
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            await wait_for(lambda: server.limits.per_address == {"127.0.0.1": 1})
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            await wait_for(lambda: not server.connections and not server.limits.per_address)
            assert router.stats["handshake_timeouts"] == 1
            assert not router.sessions

    run(main)
    assert "TLS handshake not completed" in caplog.text


def test_over_the_address_limit_no_tls_handshake(run, pki):
    async def main():
        listener = tls_listener("rawsocket", pki)
        async with running(listener, max_connections_per_address=1) as (server, router):
            port = server.listeners[0].port
            reader, writer = await rs_tls_connect(port, pki.client_context())
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await rs_tls_connect(port, pki.client_context())
            assert router.stats["connections_refused"] == 1
            assert await rs_echo(reader, writer, ["still"]) == ["still"]
            writer.close()

    run(main)


@pytest.mark.parametrize("kind", ["rawsocket", "websocket"])
def test_plain_client_on_tls_listener(run, pki, kind, caplog):
    caplog.set_level(logging.INFO, "fastwamp")

    async def main():
        async with running(tls_listener(kind, pki)) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            if kind == "rawsocket":
                writer.write(bytes((0x7F, 0xF1, 0, 0)))
            else:
                writer.write(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            if kind == "rawsocket":
                assert answer == b""
            else:
                assert answer.startswith(b"HTTP/1.1 400 ") and b"wss://" in answer
            writer.close()
            await wait_for(lambda: router.stats["tls_handshake_failures"] == 1)
            await wait_for(lambda: not server.connections)
            assert not router.sessions

    run(main)
    expected = "a plain HTTP request" if kind == "websocket" else "not TLS (first octet 0x7f"
    assert f"TLS handshake failed: {expected}" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("kind", ["rawsocket", "websockets", "picows"])
def test_tls_client_on_plain_listener(run, pki, kind, caplog):
    caplog.set_level(logging.INFO, "fastwamp")

    async def main():
        if kind == "rawsocket":
            listener = ListenerConfig("rawsocket", port=0)
        else:
            listener = ListenerConfig("websocket", port=0, implementation=kind)
        async with running(listener) as (server, router):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await asyncio.wait_for(
                    asyncio.open_connection(
                        "127.0.0.1", server.listeners[0].port, ssl=pki.client_context(),
                        server_hostname="localhost",
                    ),
                    5,
                )
            await wait_for(lambda: router.stats["tls_clients_on_plain_listeners"] == 1)
            await wait_for(lambda: not server.connections)
            assert not router.sessions

    run(main)
    assert "a TLS client reached a plain (non-TLS) listener" in caplog.text
    assert "127.0.0.1" in caplog.text


def test_is_tls_client_hello():
    assert is_tls_client_hello(b"\x16\x03\x01\x02\x00")
    assert is_tls_client_hello(b"\x16")
    assert not is_tls_client_hello(b"\x16\x01")
    assert not is_tls_client_hello(b"GET / HTTP/1.1")
    assert not is_tls_client_hello(b"\x7f\xf1\x00\x00")
    assert not is_tls_client_hello(b"")


def test_subject_string_escapes_as_rfc4514():
    subject = ((("organizationName", "A, B+C"),), (("commonName", " #x"),),
               (("unknownAttr", "v"), ("commonName", "y")))
    assert subject_string(subject) == "unknownAttr=v+CN=y,CN=\\ #x,O=A\\, B\\+C"


# -- Configuration and reload ------------------------------------------------


def _toml(pki: TLSFiles, cert: str = "server.pem", key: str = "server.key", extra: str = "") -> str:
    return f"""
[[listeners]]
type = "rawsocket"
port = 0
tls_certificate = "{cert}"
tls_key = "{key}"
{extra}
"""


def test_tls_paths_are_relative_to_the_config_file(pki):
    path = pki.path("router.toml")
    path.write_text(_toml(pki), encoding="utf-8")
    config = load_config(path)
    assert config.listeners[0].tls_certificate == str(pki.path("server.pem"))


@pytest.mark.parametrize(
    ("cert", "key", "extra", "error"),
    [
        ("missing.pem", "server.key", "", "listeners[0].tls_certificate: cannot read"),
        ("server.pem", "server2.key", "", "listeners[0].tls_key: "),
        ("server.pem", "ca.pem", "", "listeners[0].tls_key: "),
        ("router.toml", "server.key", "", "listeners[0].tls_certificate: "),
        ("server.pem", "server.key", 'tls_client_certificate = "required"',
         "listeners[0].tls_ca_certificates: is required"),
        ("server.pem", "server.key", 'tls_min_version = "1.1"', "listeners[0].tls_min_version"),
        ("server.pem", "server.key", 'tls_client_certificate = "maybe"',
         "listeners[0].tls_client_certificate"),
    ],
)
def test_bad_tls_configuration(pki, cert, key, extra, error):
    path = pki.path("router.toml")
    path.write_text(_toml(pki, cert, key, extra), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(error), str(info.value)
    if cert == "server.pem" and key == "server2.key":
        assert "does not match" in str(info.value)


def test_tls_keys_need_a_certificate():
    with pytest.raises(ConfigError, match="needs tls_certificate"):
        config_from_toml('[[listeners]]\ntype = "rawsocket"\ntls_key = "k.pem"\n')
    with pytest.raises(ConfigError, match="websocket listeners only"):
        config_from_toml('[[listeners]]\ntype = "rawsocket"\nallowed_origins = ["*"]\n')


def test_reload_replaces_the_certificate_for_new_connections(run, pki, caplog):
    caplog.set_level(logging.INFO, "fastwamp")
    path = pki.path("reload.toml")

    async def main():
        path.write_text(_toml(pki), encoding="utf-8")
        config = load_config(path)
        async with running(*config.listeners) as (server, router):
            port = server.listeners[0].port
            old_reader, old_writer = await rs_tls_connect(port, pki.client_context())
            assert peer_cert_sha256(old_writer.get_extra_info("ssl_object")) == pki.server_sha256
            # A broken file: refused, the old certificate stays.
            path.write_text(_toml(pki, "server.pem", "server2.key"), encoding="utf-8")
            assert not reload_from_file(server, str(path))
            reader, writer = await rs_tls_connect(port, pki.client_context())
            assert peer_cert_sha256(writer.get_extra_info("ssl_object")) == pki.server_sha256
            writer.close()
            # A good one: new connections get the new certificate, the old one goes on.
            path.write_text(_toml(pki, "server2.pem", "server2.key"), encoding="utf-8")
            assert reload_from_file(server, str(path))
            assert server.listeners[0].config.port == port
            reader, writer = await rs_tls_connect(port, pki.client_context())
            assert peer_cert_sha256(writer.get_extra_info("ssl_object")) == pki.server2_sha256
            assert await rs_echo(reader, writer, ["new"]) == ["new"]
            assert await rs_echo(old_reader, old_writer, ["old"]) == ["old"]
            writer.close()
            old_writer.close()

    run(main)
    assert "reload of" in caplog.text and "does not match" in caplog.text


# -- Allowed origins -----------------------------------------------------------


def test_origin_patterns():
    policy = OriginPolicy(["https://app.example.com", "https://*.example.org",
                           "http://localhost:*", "https://api.example.net:8443"])
    assert policy.allows("https://app.example.com")
    assert policy.allows("HTTPS://App.Example.com:443")
    assert not policy.allows("http://app.example.com")
    assert not policy.allows("https://app.example.com:444")
    assert not policy.allows("https://evil.app.example.com")
    assert policy.allows("https://a.example.org") and policy.allows("https://a.b.example.org")
    assert not policy.allows("https://example.org")
    assert not policy.allows("https://badexample.org")
    assert policy.allows("http://localhost:3000") and policy.allows("http://localhost")
    assert not policy.allows("http://localhost.evil.com:3000")
    assert policy.allows("https://api.example.net:8443")
    assert not policy.allows("https://api.example.net")
    assert not policy.allows("null") and not policy.allows("garbage")
    assert OriginPolicy(["null"]).allows("null")
    assert OriginPolicy(["*"]).allows("https://anything.example")
    assert origin_pattern_problem("https://a.*.example.com") is not None
    assert origin_pattern_problem("example.com") is not None
    assert origin_pattern_problem("https://*.example.com") is None


def test_allowed_origins_default_is_this_machine():
    listener = ListenerConfig("websocket")
    policy = OriginPolicy(listener.allowed_origins)
    assert policy.allows("http://localhost:5173") and policy.allows("http://127.0.0.1:8000")
    assert policy.allows("https://[::1]:8443")
    assert not policy.allows("https://evil.example.com")


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_allowed_origins(run, pki, ws_impl, tls, caplog):
    caplog.set_level(logging.INFO, "fastwamp")

    async def main():
        keys: dict[str, Any] = dict(implementation=ws_impl,
                                    allowed_origins=["https://*.example.com"])
        listener = (tls_listener("websocket", pki, **keys) if tls
                    else ListenerConfig("websocket", port=0, **keys))
        async with running(listener) as (server, router):
            url = server.urls[0].replace("127.0.0.1", "localhost")
            ssl_arg = {"ssl": pki.client_context()} if tls else {}
            with pytest.raises(InvalidStatus) as info:
                async with connect(url, subprotocols=["wamp.2.json"],
                                   origin="https://evil.example.net", **ssl_arg):
                    pass
            assert info.value.response.status_code == 403
            for origin in ("https://app.example.com", None):
                async with connect(url, subprotocols=["wamp.2.json"], origin=origin,
                                   **ssl_arg) as ws:
                    await ws.send(json.dumps(["ok"]))
                    assert json.loads(await ws.recv()) == ["ok"]
            headers = [s.info["http_headers_received"] for s in router.sessions]
            assert headers[0]["origin"] == "https://app.example.com"
            assert "origin" not in headers[1]

    run(main)
    assert "origin https://evil.example.net is not in allowed_origins" in caplog.text


def test_listener_dataclass_has_tls_keys():
    names = {f.name for f in dataclasses.fields(ListenerConfig)}
    assert {"tls_certificate", "tls_key", "tls_ca_certificates", "tls_client_certificate",
            "tls_min_version", "allowed_origins"} <= names


def test_cli_check_config_reports_tls(pki, capsys):
    from fastwamp.cli import main

    path = pki.path("check.toml")
    path.write_text(_toml(pki), encoding="utf-8")
    assert main(["--config", str(path), "--check-config"]) == 0
    assert "rss://127.0.0.1:0" in capsys.readouterr().out
    path.write_text(_toml(pki, "server.pem", "server2.key"), encoding="utf-8")
    assert main(["--config", str(path), "--check-config"]) == 2
    assert "does not match" in capsys.readouterr().err




def test_reload_applies_allowed_origins_to_new_handshakes(run, ws_impl, caplog):
    caplog.set_level(logging.INFO, "fastwamp")

    async def main():
        listener = ListenerConfig("websocket", port=0, implementation=ws_impl)
        async with running(listener) as (server, router):
            url = server.urls[0]
            with pytest.raises(InvalidStatus):  # the default: this machine only
                async with connect(url, subprotocols=["wamp.2.json"],
                                   origin="https://app.example.com"):
                    pass
            config = dataclasses.replace(server.config)
            config.listeners = [dataclasses.replace(
                listener, allowed_origins=["https://app.example.com"])]
            server.reload(config)
            async with connect(url, subprotocols=["wamp.2.json"],
                               origin="https://app.example.com") as ws:
                await ws.send(json.dumps(["ok"]))
                assert json.loads(await ws.recv()) == ["ok"]
            # A listener that moved, or a new one, needs a restart: said, not done.
            config = dataclasses.replace(server.config)
            config.listeners = [dataclasses.replace(listener, host="127.0.0.2"),
                                ListenerConfig("rawsocket", port=0)]
            server.reload(config)
            assert server.listeners[0].config.host == "127.0.0.1"

    run(main)
    assert "moved from" in caplog.text and "is new: a restart starts it" in caplog.text


def test_two_origin_headers_are_refused(run, ws_impl, caplog):
    caplog.set_level(logging.INFO, "fastwamp")

    async def main():
        listener = ListenerConfig("websocket", port=0, implementation=ws_impl,
                                  allowed_origins=["*"])
        async with running(listener) as (server, router):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
            writer.write(
                b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n"
                b"Origin: http://localhost\r\nOrigin: https://evil.example\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), 5)
            assert answer.startswith(b"HTTP/1.1 403 "), answer
            writer.close()
            assert not router.sessions

    run(main)
    assert "2 Origin headers" in caplog.text
    assert "Traceback" not in caplog.text


def test_key_in_the_certificate_file(run, pki):
    combined = pki.path("combined.pem")
    combined.write_bytes(pki.path("server.pem").read_bytes() + pki.path("server.key").read_bytes())

    async def main():
        listener = ListenerConfig("rawsocket", port=0, tls_certificate=str(combined))
        async with running(listener) as (server, _router):
            reader, writer = await rs_tls_connect(server.listeners[0].port, pki.client_context())
            assert await rs_echo(reader, writer, ["one file"]) == ["one file"]
            writer.close()

    run(main)
    with pytest.raises(ConfigError, match="holds no private key: set tls_key"):
        config_from_toml(f'[[listeners]]\ntype = "rawsocket"\n'
                         f'tls_certificate = "{pki.path("server.pem")}"\n')


@pytest.mark.parametrize("kind", ["rawsocket", "websockets", "picows"])
def test_shutdown_closes_connections_in_their_tls_handshake(run, pki, kind):
    async def main():
        if kind == "rawsocket":
            listener = tls_listener("rawsocket", pki)
        else:
            listener = tls_listener("websocket", pki, implementation=kind)
        async with running(listener) as (server, _router):
            port = server.listeners[0].port
            idle = await asyncio.open_connection("127.0.0.1", port)  # nothing sent
            hello = await asyncio.open_connection("127.0.0.1", port)
            hello[1].write(b"\x16\x03\x01\x00\x05")  # a ClientHello that stops there
            await wait_for(lambda: len(server.connections) == 2)
            await server.shutdown(timeout=2.0)
            for reader, writer in (idle, hello):
                try:  # closed (a reset when the router had input left unread)
                    assert await asyncio.wait_for(reader.read(), 5) == b""
                except ConnectionResetError:
                    pass
                writer.close()
            assert not server.connections and not server.limits.per_address

    run(main)
