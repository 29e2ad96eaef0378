"""Each authentication method, right and wrong, driven in memory as message scripts.

The client side is computed with Autobahn|Python's own helpers (derive_key,
compute_wcs, AuthScram) and PyNaCl, not with fastwamp's code.
"""

from __future__ import annotations

import hashlib
import json
import types

import pytest
from autobahn.wamp import auth as ab_auth
from nacl.signing import SigningKey, VerifyKey

from fastwamp.testing import LinkedPeer
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

from .conftest import (
    CERT_SHA256,
    CLIENT_KEY,
    CLIENT_PUBKEY,
    CRA_SALT,
    CRA_SECRET,
    REALM,
    SCRAM_PASSWORD,
    TICKET,
    hello,
)


def assert_welcome(msg: list, authid: str, authrole: str, authmethod: str) -> dict:
    assert msg[0] == m.WELCOME, msg
    details = msg[2]
    assert (details["authid"], details["authrole"], details["authmethod"],
            details["authprovider"]) == (authid, authrole, authmethod, "static")
    assert details["realm"] == REALM
    return details


def assert_failed(msg: list, method: str) -> None:
    assert msg == [m.ABORT, {"message": f"{method} authentication failed"},
                   uris.AUTHENTICATION_FAILED], msg


# anonymous and method choice


def test_anonymous_refused_on_a_realm_without_it(router):
    peer, answer = hello(router)
    assert answer[0] == m.ABORT and answer[2] == uris.NO_AUTH_METHOD
    assert peer.closed


def test_methods_are_tried_in_the_clients_order(router):
    _, challenge = hello(router, authmethods=["anonymous", "cookie", "wampcra", "ticket"],
                         authid="tina")
    assert challenge[:2] == [m.CHALLENGE, "wampcra"]
    _, challenge = hello(router, authmethods=["ticket", "wampcra"], authid="tina")
    assert challenge == [m.CHALLENGE, "ticket", {}]


def test_default_realm_stays_anonymous(router):
    peer = LinkedPeer(router)
    welcome = peer.hello("realm1", authmethods=["ticket", "anonymous"], authid="x")
    assert welcome[2]["authmethod"] == "anonymous" and welcome[2]["authrole"] == "anonymous"


# ticket


def test_ticket_right(router):
    peer, challenge = hello(router, authmethods=["ticket"], authid="tina")
    assert challenge == [m.CHALLENGE, "ticket", {}]
    peer.send([m.AUTHENTICATE, TICKET, {}])
    welcome = peer.take_one()
    assert_welcome(welcome, "tina", "ticketeer", "ticket")
    session = router.sessions[welcome[1]]
    assert (session.authid, session.authrole, session.member.authid,
            session.member.authrole) == ("tina", "ticketeer", "tina", "ticketeer")
    assert session.realm.name == REALM


@pytest.mark.parametrize("authid, ticket", [("tina", "wrong"), ("nobody", TICKET),
                                            ("carl", TICKET), ("tina", ""),
                                            ("tina", "x" * 10000)])
def test_ticket_wrong_or_unknown_user_gets_the_same_answer(router, authid, ticket, caplog):
    peer, challenge = hello(router, authmethods=["ticket"], authid=authid)
    assert challenge == [m.CHALLENGE, "ticket", {}]
    peer.send([m.AUTHENTICATE, ticket, {}])
    assert_failed(peer.take_one(), "ticket")
    assert peer.closed and all(s.is_service for s in router.sessions.values())
    line = [r.getMessage() for r in caplog.records if "authentication refused" in r.getMessage()]
    assert len(line) == 1 and authid in line[0] and "test" in line[0]  # peer and authid
    assert router.stats["authentication_failures"] == 1


def test_ticket_needs_an_authid(router):
    _, answer = hello(router, authmethods=["ticket"])
    assert_failed(answer, "ticket")


# wampcra


def cra_answer(challenge: list, secret: str) -> str:
    extra = challenge[2]
    key = secret.encode()
    if "salt" in extra:
        key = ab_auth.derive_key(secret, extra["salt"], extra["iterations"], extra["keylen"])
    return ab_auth.compute_wcs(key, extra["challenge"].encode()).decode()


def test_wampcra_salted_right(router):
    peer, challenge = hello(router, authmethods=["wampcra"], authid="carl")
    assert challenge[:2] == [m.CHALLENGE, "wampcra"]
    extra = challenge[2]
    assert (extra["salt"], extra["iterations"], extra["keylen"]) == (CRA_SALT, 100, 32)
    signed = json.loads(extra["challenge"])
    assert signed["authid"] == "carl" and signed["authmethod"] == "wampcra"
    assert {"nonce", "timestamp", "session", "authrole", "authprovider"} <= signed.keys()
    peer.send([m.AUTHENTICATE, cra_answer(challenge, CRA_SECRET), {}])
    welcome = peer.take_one()
    assert_welcome(welcome, "carl", "crafter", "wampcra")
    assert welcome[1] == signed["session"]  # the challenge named the future session


def test_wampcra_plain_right(router):
    peer, challenge = hello(router, authmethods=["wampcra"], authid="paula")
    assert "salt" not in challenge[2]
    peer.send([m.AUTHENTICATE, cra_answer(challenge, CRA_SECRET), {}])
    assert_welcome(peer.take_one(), "paula", "plain", "wampcra")


@pytest.mark.parametrize("authid", ["carl", "paula", "nobody", "tina"])
def test_wampcra_wrong_secret_or_unknown_user(router, authid):
    peer, challenge = hello(router, authmethods=["wampcra"], authid=authid)
    if authid in ("nobody", "tina"):  # unknown (for wampcra): looks salted like a user
        assert {"salt", "iterations", "keylen"} <= challenge[2].keys()
    peer.send([m.AUTHENTICATE, cra_answer(challenge, "not-the-secret"), {}])
    assert_failed(peer.take_one(), "wampcra")


def test_wampcra_unknown_user_gets_a_stable_salt(router):
    salts = {hello(router, authmethods=["wampcra"], authid="nobody")[1][2]["salt"]
             for _ in range(3)}
    assert len(salts) == 1


# cryptosign


def test_cryptosign_spec_test_vector():
    """wamp-notes §8.5: the spec's vector (no channel binding) passes the router's check."""
    from fastwamp.auth.cryptosign import _CryptosignStep
    from fastwamp.auth.users import User

    key = SigningKey(bytes.fromhex(
        "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510"))
    challenge = b"\xff" * 32
    expected = ("b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0c"
                "ae80a357331bfc5cc9fb71081464e6e75013517c2cf067ad566a6b7b728e5d03")
    signed = key.sign(challenge)
    assert signed.signature.hex() == expected
    user = User("vector", "r", None, "", None)
    step = _CryptosignStep(key.verify_key.encode(), challenge, user)
    identity = step.authenticate(expected + "ff" * 32, {})
    assert identity.authid == "vector"
    bad = step.authenticate(expected[:-2] + "00" + "ff" * 32, {})
    assert bad.reason == uris.AUTHENTICATION_FAILED


def cryptosign_answer(challenge: list, key: SigningKey = CLIENT_KEY,
                      channel_id: bytes | None = None) -> str:
    message = bytes.fromhex(challenge[2]["challenge"])
    if channel_id is not None:
        message = bytes(a ^ b for a, b in zip(message, channel_id, strict=True))
    signed = key.sign(message)
    return (signed.signature + message).hex()


def test_cryptosign_right(router):
    peer, challenge = hello(router, authmethods=["cryptosign"],
                            authextra={"pubkey": CLIENT_PUBKEY})
    assert challenge[:2] == [m.CHALLENGE, "cryptosign"]
    assert len(challenge[2]["challenge"]) == 64 and challenge[2]["channel_binding"] is None
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge), {}])
    assert_welcome(peer.take_one(), "sam", "signer", "cryptosign")


def test_cryptosign_with_authid(router):
    peer, challenge = hello(router, authmethods=["cryptosign"], authid="sam",
                            authextra={"pubkey": CLIENT_PUBKEY})
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge), {}])
    assert_welcome(peer.take_one(), "sam", "signer", "cryptosign")
    # the right key, claimed for another authid: refused
    peer, challenge = hello(router, authmethods=["cryptosign"], authid="tina",
                            authextra={"pubkey": CLIENT_PUBKEY})
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge), {}])
    assert_failed(peer.take_one(), "cryptosign")


def test_cryptosign_unknown_key_is_challenged_then_refused(router):
    stranger = SigningKey.generate()
    peer, challenge = hello(router, authmethods=["cryptosign"],
                            authextra={"pubkey": stranger.verify_key.encode().hex()})
    assert challenge[:2] == [m.CHALLENGE, "cryptosign"]
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge, stranger), {}])
    assert_failed(peer.take_one(), "cryptosign")


def test_cryptosign_signature_by_another_key(router):
    peer, challenge = hello(router, authmethods=["cryptosign"],
                            authextra={"pubkey": CLIENT_PUBKEY})
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge, SigningKey.generate()), {}])
    assert_failed(peer.take_one(), "cryptosign")


def test_cryptosign_router_authentication(router):
    client_challenge = bytes(range(100, 132))
    peer, challenge = hello(router, authmethods=["cryptosign"],
                            authextra={"pubkey": CLIENT_PUBKEY,
                                       "challenge": client_challenge.hex()})
    extra = challenge[2]
    signed = bytes.fromhex(extra["signature"])
    assert len(signed) == 96 and signed[64:] == client_challenge
    VerifyKey(bytes.fromhex(extra["pubkey"])).verify(signed[64:], signed[:64])
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge), {}])
    assert_welcome(peer.take_one(), "sam", "signer", "cryptosign")


def test_cryptosign_channel_binding_without_tls_is_refused(router):
    _, answer = hello(router, authmethods=["cryptosign"],
                      authextra={"pubkey": CLIENT_PUBKEY, "channel_binding": "tls-unique"})
    assert_failed(answer, "cryptosign")
    _, answer = hello(router, authmethods=["cryptosign"],
                      authextra={"pubkey": CLIENT_PUBKEY, "channel_binding": "tls-exporter"})
    assert_failed(answer, "cryptosign")


def test_cryptosign_channel_binding_tls_unique(router):
    tls_unique = b"finished-message"
    info = {"type": "test", "peer": "test",
            "tls": {"channel_binding": {"tls-unique": tls_unique}}}
    channel_id = hashlib.sha256(tls_unique).digest()
    peer, challenge = hello(router, info, authmethods=["cryptosign"],
                            authextra={"pubkey": CLIENT_PUBKEY, "channel_binding": "tls-unique"})
    assert challenge[2]["channel_binding"] == "tls-unique"
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge, channel_id=channel_id), {}])
    assert_welcome(peer.take_one(), "sam", "signer", "cryptosign")
    # signing the bare challenge (not bound to this channel) fails
    peer, challenge = hello(router, info, authmethods=["cryptosign"],
                            authextra={"pubkey": CLIENT_PUBKEY, "channel_binding": "tls-unique"})
    peer.send([m.AUTHENTICATE, cryptosign_answer(challenge), {}])
    assert_failed(peer.take_one(), "cryptosign")


# tls


def tls_info(**tls: object) -> dict:
    return {"type": "test", "peer": "test", "tls": tls}


def test_tls_certificate_fingerprint_and_subject(router):
    _, welcome = hello(router, tls_info(peer_cert_sha256=CERT_SHA256.upper()),
                       authmethods=["tls"])
    assert_welcome(welcome, "tom", "certified", "tls")
    _, welcome = hello(router, tls_info(peer_cert_subject="CN=tom"), authmethods=["tls"])
    assert_welcome(welcome, "tom", "certified", "tls")


def test_tls_unknown_certificate_or_none(router):
    _, answer = hello(router, tls_info(peer_cert_sha256="cd" * 32), authmethods=["tls"])
    assert_failed(answer, "tls")
    _, answer = hello(router, authmethods=["tls"])  # no TLS at all
    assert answer[2] == uris.NO_AUTH_METHOD
    # without a certificate, the client's next method is used
    _, answer = hello(router, tls_info(), authmethods=["tls", "ticket"], authid="tina")
    assert answer == [m.CHALLENGE, "ticket", {}]


def test_tls_certificate_of_another_authid(router):
    _, answer = hello(router, tls_info(peer_cert_sha256=CERT_SHA256), authmethods=["tls"],
                      authid="tina")
    assert_failed(answer, "tls")


# scram (Autobahn's client computes the proof)


def scram_client(authid: str, password: str) -> ab_auth.AuthScram:
    return ab_auth.AuthScram(authid=authid, password=password)


def test_scram_right(router):
    client = scram_client("sara", SCRAM_PASSWORD)
    peer, challenge = hello(router, authmethods=["scram"], authid="sara",
                            authextra=client.authextra)
    assert challenge[:2] == [m.CHALLENGE, "scram"]
    proof = client.on_challenge(None, types.SimpleNamespace(method="scram", extra=challenge[2]))
    peer.send([m.AUTHENTICATE, proof.decode(), {}])
    welcome = peer.take_one()
    details = assert_welcome(welcome, "sara", "scrammer", "scram")
    # the client checks the router's signature
    assert client.on_welcome(types.SimpleNamespace(log=types.SimpleNamespace(
        info=lambda *a: None, error=lambda *a: None)), details["authextra"]) is None


@pytest.mark.parametrize("authid, password", [("sara", "wrong"), ("nobody", SCRAM_PASSWORD)])
def test_scram_wrong(router, authid, password):
    client = scram_client(authid, password)
    peer, challenge = hello(router, authmethods=["scram"], authid=authid,
                            authextra=client.authextra)
    assert challenge[:2] == [m.CHALLENGE, "scram"]
    proof = client.on_challenge(None, types.SimpleNamespace(method="scram", extra=challenge[2]))
    peer.send([m.AUTHENTICATE, proof.decode(), {}])
    assert_failed(peer.take_one(), "scram")


# the meta API reports how a session authenticated


def test_meta_session_get_reports_authmethod(router):
    from .conftest import secure_realm

    config = secure_realm()  # wamp.session.get is for trusted roles: trust tina's
    config.admin_authroles = ["ticketeer"]
    router.realms[REALM].reconfigure(config)
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.send([m.AUTHENTICATE, TICKET, {}])
    welcome = peer.take_one()
    peer.send([m.CALL, 1, {}, "wamp.session.get", [welcome[1]]])
    result = peer.take_one()
    assert result[0] == m.RESULT, result
    info = result[3][0]
    assert (info["authid"], info["authrole"], info["authmethod"], info["authprovider"]) == (
        "tina", "ticketeer", "ticket", "static")


def test_reconfigure_takes_new_users_from_the_next_hello(router):
    from fastwamp.config import UserConfig

    from .conftest import secure_realm

    realm = router.realms[REALM]
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take_one()[0] == m.WELCOME
    config = secure_realm()
    config.users = [u for u in config.users if u.authid != "tina"] + [
        UserConfig("tina2", "r", ticket=config.users[0].ticket)]
    realm.reconfigure(config)
    peer2, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer2.send([m.AUTHENTICATE, TICKET, {}])
    assert_failed(peer2.take_one(), "ticket")
    assert not peer.closed  # sessions stay


def test_meta_on_join_reports_authmethod(router):
    watcher, _ = hello(router, authmethods=["ticket"], authid="tina")
    watcher.send([m.AUTHENTICATE, TICKET, {}])
    assert watcher.take_one()[0] == m.WELCOME
    watcher.send([m.SUBSCRIBE, 1, {}, "wamp.session.on_join"])
    assert watcher.take_one()[0] == m.SUBSCRIBED
    peer, challenge = hello(router, authmethods=["wampcra"], authid="carl")
    peer.send([m.AUTHENTICATE, cra_answer(challenge, CRA_SECRET), {}])
    assert peer.take_one()[0] == m.WELCOME
    event = watcher.take_one()
    assert event[0] == m.EVENT
    details = event[4][0]
    assert (details["authid"], details["authrole"], details["authmethod"],
            details["authprovider"]) == ("carl", "crafter", "wampcra", "static")


def test_unknown_users_are_challenged_like_the_configured_ones(router):
    """The decoy parameters are those of the configured users (none tells who exists)."""
    known = hello(router, authmethods=["wampcra"], authid="carl")[1][2]
    unknown = hello(router, authmethods=["wampcra"], authid="nobody")[1][2]
    assert (unknown["iterations"], unknown["keylen"]) == (known["iterations"], known["keylen"])
    assert unknown.keys() == known.keys()
    nonce = {"nonce": "bm9uY2U="}
    known = hello(router, authmethods=["scram"], authid="sara", authextra=nonce)[1][2]
    unknown = hello(router, authmethods=["scram"], authid="nobody", authextra=nonce)[1][2]
    assert {k: v for k, v in unknown.items() if k not in ("nonce", "salt")} == {
        k: v for k, v in known.items() if k not in ("nonce", "salt")}
