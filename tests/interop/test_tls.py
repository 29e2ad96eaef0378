"""TLS with real Autobahn|Python clients against a real router process.

The router runs as users run it (``python -m fastwamp --config FILE``) with a
WebSocket listener (wss://) and a RawSocket listener (rss://), both on TLS with
optional client certificates, its certificate files named relative to the
configuration file.  A throwaway CA and certificates are made by the test.
Also: SIGHUP reloads the certificate for new connections while an open session
goes on; a broken file on reload is refused with a log line; a plain client on
a TLS listener and a TLS client on a plain listener are logged.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from autobahn.asyncio.component import Component
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig

from tests.transport.tls_material import TLSFiles, make_tls_files, peer_cert_sha256

from .abclient import JOIN_TIMEOUT, Client, Kind, async_test, make_serializer, unique_uri
from .conftest import RouterEndpoints, RouterProcess

pytestmark = pytest.mark.interop

TLS_KEYS = """
tls_certificate = "pki/server.pem"
tls_key = "pki/server.key"
tls_ca_certificates = "pki/ca.pem"
tls_client_certificate = "optional"
"""


class TLSRouterProcess(RouterProcess):
    """A router whose two listeners speak TLS: it announces wss:// and rss:// URLs."""

    def _parse_endpoints(self) -> RouterEndpoints:
        urls = [line.split()[-1] for line in self.stdout_lines
                if line.startswith("fastwamp: listening on ")]
        ws = next((u for u in urls if u.startswith("wss://")), None)
        rs = next((u for u in urls if u.startswith("rss://")), None)
        if ws is None or rs is None:
            self.kill()
            pytest.fail("fastwamp did not announce wss:// and rss:// listeners\n"
                        + self.diagnostics())
        return RouterEndpoints(ws_url=ws, rs_url=rs)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr_text():
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} in the router's log\n" + self.diagnostics())
            time.sleep(0.02)


@pytest.fixture
def pki(tmp_path: Path) -> TLSFiles:
    return make_tls_files(tmp_path / "pki")


@pytest.fixture
def tls_router(tmp_path: Path, pki: TLSFiles):
    rp = TLSRouterProcess(tmp_path, "tls", listener_config=TLS_KEYS)
    rp.start()
    try:
        yield rp
    finally:
        if rp.running:
            rp.stop(check=True)
        else:
            rp._finish_io()


async def connect_tls(
    endpoints: RouterEndpoints, kind: Kind, context: ssl.SSLContext
) -> Client:
    """Autobahn's asyncio client factories over ``loop.create_connection(ssl=...)``."""
    loop = asyncio.get_running_loop()
    session = Client(ComponentConfig(realm=endpoints.realm), kind)
    serializer = make_serializer(kind.serializer)
    factory: Any
    if kind.transport == "websocket":
        _, port = endpoints.ws_host_port
        factory = WampWebSocketClientFactory(
            lambda: session, url=f"wss://localhost:{port}/ws", serializers=[serializer]
        )
        factory.setProtocolOptions(autoPingInterval=0)
    else:
        _, port = endpoints.rs_host_port
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
    transport, _ = await asyncio.wait_for(
        loop.create_connection(factory, "localhost", port, ssl=context,
                               server_hostname="localhost"),
        JOIN_TIMEOUT,
    )
    session.socket = transport
    try:
        await asyncio.wait_for(asyncio.shield(session.joined), JOIN_TIMEOUT)
    except BaseException:
        transport.abort()
        raise
    return session


async def presented_certificate(port: int, pki: TLSFiles) -> str:
    """SHA-256 of the certificate the router presents to a new connection."""
    _, writer = await asyncio.open_connection(
        "localhost", port, ssl=pki.client_context(), server_hostname="localhost"
    )
    digest = peer_cert_sha256(writer.get_extra_info("ssl_object"))
    writer.close()
    return digest


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_autobahn_over_wss_and_rss(tls_router, pki, serializer):
    endpoints = tls_router.endpoints

    @async_test()
    async def main():
        callee = await connect_tls(endpoints, Kind("websocket", serializer),
                                   pki.client_context("alice"))
        caller = await connect_tls(endpoints, Kind("rawsocket", serializer), pki.client_context())
        uri = unique_uri("tls")
        await callee.register(lambda x: x * 2, uri)
        assert await caller.call(uri, 21) == 42
        # What the router knows of each connection's TLS (channel bindings stay inside).
        mine = await callee.call("wamp.session.get", callee._session_id)
        tls = mine["transport"]["tls"]
        assert tls["version"] == "TLSv1.3" and tls["cipher"]
        assert tls["peer_cert_subject"] == "CN=alice,O=Example"
        assert tls["peer_cert_sha256"] == pki.alice_sha256
        assert "channel_binding" not in tls
        theirs = await callee.call("wamp.session.get", caller._session_id)
        assert theirs["transport"]["tls"]["peer_cert_subject"] is None
        await caller.close()
        await callee.close()

    main()


def test_autobahn_component_with_tls_endpoint(tls_router, pki):
    """Autobahn's Component API: ``endpoint.tls`` takes an ssl.SSLContext."""
    _, port = tls_router.endpoints.ws_host_port
    results: list[Any] = []

    @async_test()
    async def main():
        done = asyncio.get_running_loop().create_future()
        component = Component(
            transports=[{
                "type": "websocket",
                "url": f"wss://localhost:{port}/ws",
                "endpoint": {"type": "tcp", "host": "localhost", "port": port,
                             "tls": pki.client_context()},
                "max_retries": 0,
            }],
            realm="realm1",
        )

        @component.on_join
        async def joined(session, details):
            results.append(await session.call("wamp.session.count"))
            await session.leave()

        @component.on_leave
        async def left(session, details):
            if not done.done():
                done.set_result(None)

        finished = component.start(loop=asyncio.get_running_loop())
        await asyncio.wait_for(done, 10)
        await asyncio.wait_for(finished, 10)  # left, no retries: the component ends

    main()
    assert results and results[0] >= 1


def test_sighup_reloads_the_certificate(tls_router, pki):
    endpoints = tls_router.endpoints
    _, ws_port = endpoints.ws_host_port
    _, rs_port = endpoints.rs_host_port
    config = tls_router.config_path

    @async_test(timeout=60)
    async def main():
        session = await connect_tls(endpoints, Kind("websocket", "json"), pki.client_context())
        uri = unique_uri("reload")
        await session.register(lambda: "still here", uri)
        assert await presented_certificate(ws_port, pki) == pki.server_sha256

        # A new certificate in place of the old one, then SIGHUP.
        shutil.copy(pki.path("server2.pem"), pki.path("server.pem"))
        shutil.copy(pki.path("server2.key"), pki.path("server.key"))
        tls_router.proc.send_signal(signal.SIGHUP)
        tls_router.wait_for_log("reloaded the configuration from")
        assert await presented_certificate(ws_port, pki) == pki.server2_sha256
        assert await presented_certificate(rs_port, pki) == pki.server2_sha256
        assert await session.call(uri) == "still here"  # the open session goes on

        # A broken configuration: refused with one log line, the running one stays.
        good = config.read_text(encoding="utf-8")
        config.write_text(good.replace('tls_key = "pki/server.key"',
                                       'tls_key = "pki/alice.key"', 1), encoding="utf-8")
        tls_router.proc.send_signal(signal.SIGHUP)
        tls_router.wait_for_log("refused, the running configuration stays")
        assert "does not match the certificate" in tls_router.stderr_text()
        assert await presented_certificate(ws_port, pki) == pki.server2_sha256
        assert await session.call(uri) == "still here"
        config.write_text(good, encoding="utf-8")
        await session.close()

    main()
    assert tls_router.running


def test_plain_and_tls_mixups_are_logged(tls_router, router_factory, pki):
    endpoints = tls_router.endpoints
    plain = router_factory()

    @async_test()
    async def main():
        # A plain WebSocket request on the wss:// listener: HTTP 400 that says so.
        _, ws_port = endpoints.ws_host_port
        reader, writer = await asyncio.open_connection("127.0.0.1", ws_port)
        writer.write(b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 400 ")
        writer.close()
        # A TLS client on the plain RawSocket listener.
        _, rs_port = plain.endpoints.rs_host_port
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", rs_port, ssl=pki.client_context(), server_hostname="localhost"
            ), 5)

    main()
    tls_router.wait_for_log("TLS handshake failed: a plain HTTP request")
    deadline = time.monotonic() + 10
    while "a TLS client reached a plain (non-TLS) listener" not in plain.stderr_text():
        assert time.monotonic() < deadline, plain.diagnostics()
        time.sleep(0.02)


def test_sighup_without_a_config_file_is_logged(tmp_path):
    """The embedded default has no file to re-read: a log line, and the router goes on."""
    import subprocess
    import sys

    from .conftest import _child_env

    log_path = tmp_path / "stderr.txt"
    with open(log_path, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from fastwamp.config import default_config;"
             "from fastwamp.server import run; c = default_config();"
             "[setattr(l, 'port', 0) for l in c.listeners]; sys.exit(run(c))"],
            stdout=subprocess.PIPE, stderr=log_file, text=True, env=_child_env(), cwd=tmp_path,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.strip() == "fastwamp: ready":
                    break
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "nothing to reload" not in log_path.read_text(encoding="utf-8"):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log_path.read_text(encoding="utf-8")


def test_wampy_over_wss(tls_router, pki):
    """wampy.js (Node, ``ws``) joins over wss://, trusting the test CA."""
    import json
    import os
    import subprocess

    node = shutil.which("node")
    js_dir = Path(__file__).resolve().parent / "js"
    if node is None or not (js_dir / "node_modules" / "wampy").is_dir():
        if os.environ.get("FASTWAMP_ALLOW_SKIP_JS") == "1":
            pytest.skip("wampy.js is not installed (npm install --prefix tests/interop/js)")
        pytest.fail("wampy.js is not installed: npm install --prefix tests/interop/js")
    _, port = tls_router.endpoints.ws_host_port
    env = dict(os.environ, FASTWAMP_WS_URL=f"wss://localhost:{port}/ws",
               NODE_EXTRA_CA_CERTS=str(pki.path("ca.pem")))
    proc = subprocess.run([node, "tls_client.mjs"], cwd=js_dir, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    details = json.loads(proc.stdout.strip().splitlines()[-1])
    assert details["transport"]["tls"]["version"] == "TLSv1.3"
    assert details["transport"]["type"] == "websocket"


# -- TLS identities in authentication (the "tls" method, cryptosign channel binding) --

AUTH_REALM = "com.example.tlsauth"


def _auth_realm(pki: TLSFiles, carol_pubkey: str) -> str:
    return f"""
[[realms]]
name = "{AUTH_REALM}"
allow_anonymous = false
authmethods = ["tls", "cryptosign"]

[[realms.users]]
authid = "alice"
authrole = "user"
tls_subjects = ["CN=alice,O=Example"]

[[realms.users]]
authid = "carol"
authrole = "signer"
cryptosign_pubkeys = ["{carol_pubkey}"]
"""


class _AuthSession:
    """An Autobahn session joining ``AUTH_REALM`` with given authmethods/authenticators."""

    @staticmethod
    def make(authmethods: list[str] | None = None, authenticator: Any = None) -> Any:
        from autobahn.asyncio.wamp import Session

        class AuthSession(Session):
            def __init__(self) -> None:
                super().__init__(ComponentConfig(realm=AUTH_REALM))
                self.outcome: asyncio.Future[tuple[str, Any]] = (
                    asyncio.get_running_loop().create_future())
                if authenticator is not None:
                    self.add_authenticator(authenticator)

            def onConnect(self) -> None:  # noqa: N802 - Autobahn's name
                if authmethods is not None:
                    self.join(AUTH_REALM, authmethods=authmethods)
                else:
                    super().onConnect()

            def on_join(self, details: Any) -> None:
                if not self.outcome.done():
                    self.outcome.set_result(("welcome", details))
                self.leave()

            def on_leave(self, details: Any) -> None:
                if not self.outcome.done():
                    self.outcome.set_result(("abort", details))
                self.disconnect()

        return AuthSession()


async def _auth_attempt(endpoints: RouterEndpoints, context: ssl.SSLContext,
                        session: Any) -> tuple[str, Any]:
    loop = asyncio.get_running_loop()
    _, port = endpoints.rs_host_port
    factory = WampRawSocketClientFactory(lambda: session, serializer=make_serializer("json"))
    transport, _ = await asyncio.wait_for(
        loop.create_connection(factory, "localhost", port, ssl=context,
                               server_hostname="localhost"), JOIN_TIMEOUT)
    try:
        return await asyncio.wait_for(session.outcome, JOIN_TIMEOUT)
    finally:
        transport.abort()


def test_tls_identity_authenticates(tmp_path, pki):
    """The client certificate names the user (authmethod "tls"); cryptosign binds its
    signature to the TLS channel (tls-unique, TLS 1.2)."""
    from autobahn.wamp.auth import create_authenticator
    from nacl.signing import SigningKey

    carol = SigningKey(bytes(range(7, 39)))
    carol_pubkey = carol.verify_key.encode().hex()
    rp = TLSRouterProcess(tmp_path, "tlsauth", listener_config=TLS_KEYS,
                          extra_config=_auth_realm(pki, carol_pubkey))
    rp.start()
    endpoints = rp.endpoints
    assert endpoints is not None

    @async_test()
    async def main():
        kind, details = await _auth_attempt(endpoints, pki.client_context("alice"),
                                            _AuthSession.make(["tls"]))
        assert kind == "welcome", details
        assert (details.authid, details.authrole, details.authmethod) == ("alice", "user", "tls")
        # No client certificate: nothing names a user.
        kind, details = await _auth_attempt(endpoints, pki.client_context(),
                                            _AuthSession.make(["tls"]))
        assert kind == "abort", details
        # cryptosign bound to the TLS 1.2 channel.
        tls12 = pki.client_context()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        signer = create_authenticator("cryptosign", authid="carol",
                                      privkey=carol.encode().hex(),
                                      authextra={"channel_binding": "tls-unique"})
        kind, details = await _auth_attempt(endpoints, tls12, _AuthSession.make(
            authenticator=signer))
        assert kind == "welcome", details
        assert (details.authid, details.authmethod) == ("carol", "cryptosign")
        # TLS 1.3 has no tls-unique: a signature bound to it cannot be checked.
        signer = create_authenticator("cryptosign", authid="carol",
                                      privkey=carol.encode().hex(),
                                      authextra={"channel_binding": "tls-unique"})
        kind, details = await _auth_attempt(endpoints, pki.client_context(), _AuthSession.make(
            authenticator=signer))
        assert kind == "abort", details

    try:
        main()
    finally:
        rp.stop(check=True)
