"""A realm with one user per authentication method, driven in memory (sans-I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from nacl.signing import SigningKey

from fastwamp.auth.credentials import derive_scram_keys, derive_wampcra_key, hash_ticket
from fastwamp.config import (
    Config,
    RealmConfig,
    ScramCredential,
    UserConfig,
    WampCraKey,
)
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m

REALM = "secure"
TICKET = "s3cret-ticket"
CRA_SECRET = "cra-secret"
CRA_SALT = "salt123"
SCRAM_PASSWORD = "scram-password"
#: A client key (cryptosign) and a certificate fingerprint (tls).
CLIENT_KEY = SigningKey(bytes(range(32)))
CLIENT_PUBKEY = CLIENT_KEY.verify_key.encode().hex()
CERT_SHA256 = "ab" * 32
ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}


def users() -> list[UserConfig]:
    keys = derive_scram_keys(SCRAM_PASSWORD, "argon2id-13", iterations=1, memory=8)
    import base64

    return [
        UserConfig("tina", "ticketeer", ticket=hash_ticket(TICKET, 1000)),
        UserConfig("carl", "crafter", wampcra=WampCraKey(
            derive_wampcra_key(CRA_SECRET, CRA_SALT, 100, 32), CRA_SALT, 100, 32)),
        UserConfig("paula", "plain", wampcra=WampCraKey(CRA_SECRET)),
        UserConfig("sam", "signer", cryptosign_pubkeys=[CLIENT_PUBKEY]),
        UserConfig("tom", "certified", tls_fingerprints=[CERT_SHA256],
                   tls_subjects=["CN=tom"]),
        UserConfig("sara", "scrammer", scram=ScramCredential(
            keys.kdf, keys.salt, keys.iterations, keys.memory,
            base64.b64encode(keys.stored_key).decode(),
            base64.b64encode(keys.server_key).decode())),
    ]


def secure_realm(**keys: Any) -> RealmConfig:
    return RealmConfig(REALM, allow_anonymous=False,
                       authmethods=["ticket", "wampcra", "cryptosign", "scram", "tls"],
                       users=users(), **keys)


@pytest.fixture(autouse=True)
def unlimited_auth_log(monkeypatch):
    """Every refusal logs here (the router-wide budget would drop lines of later tests)."""
    from fastwamp.logsafe import LogBudget
    from fastwamp.router import session

    monkeypatch.setattr(session, "_AUTH_LOG", LogBudget(1e9))


@pytest.fixture
def router():
    router, _ = make_router(Config(realms=[RealmConfig("realm1"), secure_realm()]))
    return router


def hello(router: Any, transport_info: dict[str, Any] | None = None,
          **details: Any) -> tuple[LinkedPeer, list]:
    """A new peer's HELLO to the secure realm, and the router's answer."""
    peer = LinkedPeer(router, transport_info)
    peer.send([m.HELLO, REALM, {"roles": ROLES, **details}])
    return peer, peer.take_one()
