"""Authentication with real Autobahn|Python clients over real sockets.

One router process (module scope) serves realm ``secure`` (no anonymous access)
with a user per method; the cryptosign user comes from a ``users_file`` next to
the configuration.  Every method is tried with the right credentials (WELCOME
with the configured identity) and wrong ones (ABORT, no session).  The clients'
side is Autobahn's own authenticators (``autobahn.wamp.auth``).
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import Session  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.auth import create_authenticator  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from fastwamp.auth.credentials import (  # noqa: E402
    derive_scram_keys,
    derive_wampcra_key,
    hash_ticket,
)

from .abclient import (  # noqa: E402
    ALL_KINDS,
    JOIN_TIMEOUT,
    RS_CBOR,
    RS_MSGPACK,
    WS_JSON,
    Kind,
    async_test,
    kinds_param,
    make_serializer,
)
from .conftest import RouterEndpoints, RouterProcess  # noqa: E402

pytestmark = pytest.mark.interop

REALM = "secure"
TICKET = "a-long-random-ticket-7f3a"
CRA_SECRET = "wampcra-secret"
SCRAM_PASSWORD = "scram-password"
CLIENT_KEY = SigningKey(bytes(range(1, 33)))
STRANGER_KEY = SigningKey(bytes(range(2, 34)))
SOME_KINDS = [WS_JSON, RS_MSGPACK, RS_CBOR]


def _realm_config() -> str:
    scram = derive_scram_keys(SCRAM_PASSWORD, "argon2id-13", iterations=2, memory=1024)
    return f'''
[[realms]]
name = "{REALM}"
allow_anonymous = false
authmethods = ["ticket", "wampcra", "cryptosign", "scram"]
users_file = "auth-users.toml"

[[realms.users]]
authid = "tina"
authrole = "ticketeer"
ticket = "{hash_ticket(TICKET, 2000)}"

[[realms.users]]
authid = "carl"
authrole = "crafter"
wampcra = {{ key = "{derive_wampcra_key(CRA_SECRET, "NaCl", 1000, 32)}", salt = "NaCl", iterations = 1000, keylen = 32 }}

[[realms.users]]
authid = "paula"
authrole = "plain"
wampcra = {{ key = "{CRA_SECRET}" }}

[[realms.users]]
authid = "sara"
authrole = "scrammer"
scram = {{ kdf = "{scram.kdf}", salt = "{scram.salt}", iterations = {scram.iterations}, memory = {scram.memory}, stored_key = "{base64.b64encode(scram.stored_key).decode()}", server_key = "{base64.b64encode(scram.server_key).decode()}" }}
'''


DYNAMIC_REALM = "dynamic"
AUTHENTICATOR = "com.example.authenticate"
DYNAMIC_CONFIG = f'''
[[realms]]
name = "{DYNAMIC_REALM}"
allow_anonymous = false
authmethods = ["ticket"]
authenticator = "{AUTHENTICATOR}"
authenticator_methods = ["ticket"]
authenticator_realm = "{REALM}"
authenticator_timeout = 5.0
'''


USERS_FILE = f'''
[[users]]
authid = "sam"
authrole = "signer"
cryptosign_pubkeys = ["{CLIENT_KEY.verify_key.encode().hex()}"]
'''


@pytest.fixture(scope="module")
def auth_router() -> Iterator[RouterEndpoints]:
    with tempfile.TemporaryDirectory(prefix="fastwamp-auth-") as tmp:
        (Path(tmp) / "auth-users.toml").write_text(USERS_FILE, encoding="utf-8")
        rp = RouterProcess(Path(tmp), "auth", extra_config=_realm_config() + DYNAMIC_CONFIG)
        rp.start()
        try:
            assert rp.endpoints is not None
            yield rp.endpoints
        finally:
            rp.stop(check=True)
            stderr = rp.stderr_text()
            # every refusal was logged, with the authid, and no secret
            assert "authentication refused" in stderr
            for secret in (TICKET, CRA_SECRET, SCRAM_PASSWORD, "wrong-ticket"):
                assert secret not in stderr


class AuthClient(Session):
    """A Session with Autobahn authenticators whose outcome can be awaited."""

    def __init__(self, authenticators: list[Any], realm: str = REALM, stay: bool = False) -> None:
        super().__init__(ComponentConfig(realm=realm))
        loop = asyncio.get_running_loop()
        self.outcome: asyncio.Future[tuple[str, Any]] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.stay = stay
        for authenticator in authenticators:
            self.add_authenticator(authenticator)

    def on_join(self, details: Any) -> None:
        if not self.outcome.done():
            self.outcome.set_result(("welcome", details))
        if not self.stay:
            self.leave()

    def on_leave(self, details: Any) -> None:
        if not self.outcome.done():
            self.outcome.set_result(("abort", details))
        self.disconnect()

    def on_disconnect(self) -> None:
        if not self.outcome.done():
            self.outcome.set_result(("lost", None))
        if not self.gone.done():
            self.gone.set_result(None)


async def open_session(endpoints: RouterEndpoints, kind: Kind, session: AuthClient) -> Any:
    """Connect ``session``; the asyncio transport."""
    loop = asyncio.get_running_loop()
    serializer = make_serializer(kind.serializer)
    factory: Any
    if kind.transport == "websocket":
        host, port = endpoints.ws_host_port
        factory = WampWebSocketClientFactory(lambda: session, url=endpoints.ws_url,
                                             serializers=[serializer])
        factory.setProtocolOptions(autoPingInterval=0)
    else:
        host, port = endpoints.rs_host_port
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
    transport, _ = await asyncio.wait_for(loop.create_connection(factory, host, port),
                                          JOIN_TIMEOUT)
    return transport


async def attempt(endpoints: RouterEndpoints, kind: Kind, *authenticators: Any,
                  realm: str = REALM) -> tuple[str, Any]:
    """Connect, authenticate, leave; ("welcome", SessionDetails) or ("abort", CloseDetails)."""
    session = AuthClient(list(authenticators), realm)
    transport = await open_session(endpoints, kind, session)
    try:
        outcome = await asyncio.wait_for(asyncio.shield(session.outcome), JOIN_TIMEOUT)
        await asyncio.wait_for(asyncio.shield(session.gone), JOIN_TIMEOUT)
    finally:
        transport.abort()
    return outcome


def assert_welcome(outcome: tuple[str, Any], authid: str, authrole: str, method: str,
                   provider: str = "static", realm: str = REALM) -> None:
    kind, details = outcome
    assert kind == "welcome", outcome
    assert (details.authid, details.authrole, details.authmethod, details.authprovider,
            details.realm) == (authid, authrole, method, provider, realm)


def assert_refused(outcome: tuple[str, Any], reason: str = "wamp.error.authentication_failed"
                   ) -> None:
    kind, details = outcome
    assert kind == "abort", outcome
    assert details.reason == reason, details


@kinds_param(ALL_KINDS)
@async_test()
async def test_ticket(auth_router: RouterEndpoints, kind: Kind) -> None:
    assert_welcome(await attempt(auth_router, kind,
                                 create_authenticator("ticket", authid="tina", ticket=TICKET)),
                   "tina", "ticketeer", "ticket")
    assert_refused(await attempt(auth_router, kind, create_authenticator(
        "ticket", authid="tina", ticket="wrong-ticket")))
    unknown = await attempt(auth_router, kind, create_authenticator(
        "ticket", authid="nobody", ticket=TICKET))
    assert_refused(unknown)
    wrong = await attempt(auth_router, kind, create_authenticator(
        "ticket", authid="tina", ticket="wrong-ticket"))
    assert unknown[1].message == wrong[1].message  # nothing says whether the user exists


@kinds_param(SOME_KINDS)
@async_test()
async def test_wampcra_salted_and_plain(auth_router: RouterEndpoints, kind: Kind) -> None:
    assert_welcome(await attempt(auth_router, kind, create_authenticator(
        "wampcra", authid="carl", secret=CRA_SECRET)), "carl", "crafter", "wampcra")
    assert_welcome(await attempt(auth_router, kind, create_authenticator(
        "wampcra", authid="paula", secret=CRA_SECRET)), "paula", "plain", "wampcra")
    for authid in ("carl", "paula", "nobody"):
        assert_refused(await attempt(auth_router, kind, create_authenticator(
            "wampcra", authid=authid, secret="not-it")))


@kinds_param(SOME_KINDS)
@async_test()
async def test_cryptosign(auth_router: RouterEndpoints, kind: Kind) -> None:
    assert_welcome(await attempt(auth_router, kind, create_authenticator(
        "cryptosign", privkey=CLIENT_KEY.encode().hex())), "sam", "signer", "cryptosign")
    assert_welcome(await attempt(auth_router, kind, create_authenticator(
        "cryptosign", authid="sam", privkey=CLIENT_KEY.encode().hex())),
        "sam", "signer", "cryptosign")
    # the client asks the router to authenticate itself (CHALLENGE.Extra.signature)
    assert_welcome(await attempt(auth_router, kind, create_authenticator(
        "cryptosign", privkey=CLIENT_KEY.encode().hex(),
        authextra={"challenge": "5a" * 32})), "sam", "signer", "cryptosign")
    assert_refused(await attempt(auth_router, kind, create_authenticator(
        "cryptosign", privkey=STRANGER_KEY.encode().hex())))
    # channel binding asked for on a connection without TLS
    assert_refused(await attempt(auth_router, kind, create_authenticator(
        "cryptosign", privkey=CLIENT_KEY.encode().hex(),
        authextra={"channel_binding": "tls-unique"})))


@kinds_param(SOME_KINDS)
@async_test()
async def test_scram(auth_router: RouterEndpoints, kind: Kind) -> None:
    # Autobahn's client also checks the router's ServerSignature in WELCOME
    assert_welcome(await attempt(auth_router, kind, create_authenticator(
        "scram", authid="sara", password=SCRAM_PASSWORD)), "sara", "scrammer", "scram")
    assert_refused(await attempt(auth_router, kind, create_authenticator(
        "scram", authid="sara", password="wrong")))


@async_test()
async def test_methods_in_the_clients_order_and_none_usable(auth_router: RouterEndpoints
                                                            ) -> None:
    # The client offers wampcra first (carl has no ticket): wampcra decides.
    assert_welcome(await attempt(
        auth_router, WS_JSON,
        create_authenticator("wampcra", authid="carl", secret=CRA_SECRET),
        create_authenticator("ticket", authid="carl", ticket="irrelevant")),
        "carl", "crafter", "wampcra")
    assert_refused(await attempt(auth_router, WS_JSON, create_authenticator("anonymous")),
                   "wamp.error.no_auth_method")


@async_test()
async def test_anonymous_realm_unchanged(auth_router: RouterEndpoints) -> None:
    from .abclient import connect

    session = await connect(auth_router, WS_JSON)  # realm1, anonymous
    details = await session.joined
    assert (details.authmethod, details.authrole) == ("anonymous", "anonymous")
    info = await session.call("wamp.session.get", details.session)
    assert (info["authmethod"], info["authprovider"]) == ("anonymous", "static")
    await session.close()


@async_test()
async def test_dynamic_authenticator(auth_router: RouterEndpoints) -> None:
    """A trusted backend (the cryptosign user, in the closed realm) registers the
    authenticator the router calls for realm "dynamic"."""
    backend = AuthClient([create_authenticator("cryptosign", privkey=CLIENT_KEY.encode().hex())],
                         stay=True)
    transport = await open_session(auth_router, RS_MSGPACK, backend)
    try:
        assert (await asyncio.wait_for(backend.outcome, JOIN_TIMEOUT))[0] == "welcome"
        asked: list[tuple[str, str, dict]] = []

        def authenticate(realm: str, authid: str, details: dict) -> dict:
            asked.append((realm, authid, details))
            if details.get("ticket") == "dyn-" + authid:
                return {"role": "dynamic-user", "extra": {"greeting": "hi"}}
            raise ApplicationError("com.example.denied", "wrong ticket")

        await backend.register(authenticate, AUTHENTICATOR)
        outcome = await attempt(auth_router, WS_JSON, create_authenticator(
            "ticket", authid="dora", ticket="dyn-dora"), realm=DYNAMIC_REALM)
        assert_welcome(outcome, "dora", "dynamic-user", "ticket", "dynamic", DYNAMIC_REALM)
        assert outcome[1].authextra == {"greeting": "hi"}
        assert asked[0][:2] == (DYNAMIC_REALM, "dora")
        assert_refused(await attempt(auth_router, RS_CBOR, create_authenticator(
            "ticket", authid="dora", ticket="guess"), realm=DYNAMIC_REALM))
    finally:
        backend.leave()
        await asyncio.wait_for(asyncio.shield(backend.gone), JOIN_TIMEOUT)
        transport.abort()
    # the authenticator is gone: refused, with a log line saying so
    assert_refused(await attempt(auth_router, WS_JSON, create_authenticator(
        "ticket", authid="dora", ticket="dyn-dora"), realm=DYNAMIC_REALM))
