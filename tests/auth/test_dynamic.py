"""The dynamic authenticator: a procedure registered by a trusted session decides,
called by the router through the dealer (in memory, on a fake clock)."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from fastwamp.config import Config, RealmConfig
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

from .conftest import ROLES

PROC = "com.example.authenticate"


@pytest.fixture
def setup():
    secure = RealmConfig("dyn", allow_anonymous=False,
                         authmethods=["ticket", "wampcra", "cryptosign"],
                         authenticator=PROC, authenticator_realm="realm1",
                         authenticator_methods=["ticket", "wampcra", "cryptosign"],
                         authenticator_timeout=2.0)
    router, clock = make_router(Config(realms=[RealmConfig("realm1"), secure]))
    authenticator = LinkedPeer(router)
    assert authenticator.hello("realm1")[0] == m.WELCOME
    authenticator.send([m.REGISTER, 1, {}, PROC])
    assert authenticator.take_one()[0] == m.REGISTERED
    return router, clock, authenticator


def hello(router, **details):
    peer = LinkedPeer(router)
    peer.send([m.HELLO, "dyn", {"roles": ROLES, **details}])
    return peer


def invocation(authenticator: LinkedPeer) -> list:
    msg = authenticator.take_one()
    assert msg[0] == m.INVOCATION, msg
    return msg


def test_ticket_accepted(setup):
    router, _, authenticator = setup
    peer = hello(router, authmethods=["ticket"], authid="joe")
    assert peer.take_one() == [m.CHALLENGE, "ticket", {}]
    peer.send([m.AUTHENTICATE, "joes-ticket", {}])
    assert peer.take() == []  # waiting for the authenticator
    inv = invocation(authenticator)
    realm, authid, details = inv[4]
    assert (realm, authid) == ("dyn", "joe")
    assert details["ticket"] == "joes-ticket" and details["authmethod"] == "ticket"
    assert inv[3]["caller_authrole"] == "trusted"
    authenticator.send([m.YIELD, inv[1], {}, [{"role": "member", "extra": {"k": 1}}]])
    welcome = peer.take_one()
    assert welcome[0] == m.WELCOME
    d = welcome[2]
    assert (d["authid"], d["authrole"], d["authmethod"], d["authprovider"], d["authextra"]) == (
        "joe", "member", "ticket", "dynamic", {"k": 1})


def test_ticket_role_as_a_string_and_authid_from_the_answer(setup):
    router, _, authenticator = setup
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    authenticator.send([m.YIELD, invocation(authenticator)[1], {}, ["member"]])
    assert peer.take_one()[2]["authrole"] == "member"
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    authenticator.send([m.YIELD, invocation(authenticator)[1], {}, [],
                        {"authrole": "r", "authid": "joseph"}])
    assert peer.take_one()[2]["authid"] == "joseph"


@pytest.mark.parametrize("answer", [
    [m.ERROR, m.INVOCATION, 0, {}, "com.example.denied", ["no such user"]],
    [m.YIELD, 0, {}, [{"no": "role"}]],
    [m.YIELD, 0, {}, [42]],
    [m.YIELD, 0, {}, []],
    [m.YIELD, 0, {}, [{"role": "r", "authid": 5}]],
])
def test_ticket_refused(setup, answer, caplog):
    router, _, authenticator = setup
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    inv = invocation(authenticator)
    answer = list(answer)
    answer[1 if answer[0] == m.YIELD else 2] = inv[1]
    authenticator.send(answer)
    abort = peer.take_one()
    assert abort[0] == m.ABORT and abort[2] == uris.AUTHENTICATION_FAILED
    assert any(PROC in r.getMessage() for r in caplog.records)


def test_timeout(setup, caplog):
    router, clock, authenticator = setup
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    invocation(authenticator)
    clock.advance(2.5)
    abort = peer.take_one()
    assert abort[0] == m.ABORT and abort[2] == uris.AUTHENTICATION_FAILED
    assert any("wamp.error.timeout" in r.getMessage() for r in caplog.records)


def test_authenticator_absent(setup, caplog):
    router, _, authenticator = setup
    authenticator.disconnect()
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    abort = peer.take_one()
    assert abort[0] == m.ABORT and abort[2] == uris.AUTHENTICATION_FAILED
    assert any("no_such_procedure" in r.getMessage() for r in caplog.records)


def test_authenticator_leaves_mid_call(setup):
    router, _, authenticator = setup
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    invocation(authenticator)
    authenticator.disconnect()
    assert peer.take_one()[2] == uris.AUTHENTICATION_FAILED


def test_only_abort_while_waiting_and_a_late_answer_is_dropped(setup):
    router, _, authenticator = setup
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    peer.send([m.AUTHENTICATE, "t", {}])  # a second one while the first is checked
    assert peer.take_one()[2] == uris.PROTOCOL_VIOLATION
    inv = invocation(authenticator)
    authenticator.send([m.YIELD, inv[1], {}, ["member"]])
    assert peer.take() == []
    # a client that leaves while waiting: the answer goes nowhere
    peer = hello(router, authmethods=["ticket"], authid="joe")
    peer.take()
    peer.send([m.AUTHENTICATE, "t", {}])
    inv = invocation(authenticator)
    peer.disconnect()
    authenticator.send([m.YIELD, inv[1], {}, ["member"]])
    assert peer.take() == [] and all(s.is_service for s in router.realms["dyn"].sessions.values())


def test_wampcra(setup):
    from autobahn.wamp import auth as ab_auth

    router, _, authenticator = setup
    peer = hello(router, authmethods=["wampcra"], authid="ann")
    inv = invocation(authenticator)  # asked before the CHALLENGE
    assert inv[4][2]["authmethod"] == "wampcra"
    key = ab_auth.derive_key("ann-secret", "NaCl", 100, 32).decode()
    authenticator.send([m.YIELD, inv[1], {}, [{"role": "crafter", "secret": key, "salt": "NaCl",
                                               "iterations": 100, "keylen": 32}]])
    challenge = peer.take_one()
    assert challenge[:2] == [m.CHALLENGE, "wampcra"] and challenge[2]["salt"] == "NaCl"
    signature = ab_auth.compute_wcs(key.encode(), challenge[2]["challenge"].encode()).decode()
    peer.send([m.AUTHENTICATE, signature, {}])
    welcome = peer.take_one()
    assert (welcome[2]["authid"], welcome[2]["authrole"], welcome[2]["authprovider"]) == (
        "ann", "crafter", "dynamic")
    # a wrong signature fails
    peer = hello(router, authmethods=["wampcra"], authid="ann")
    authenticator.send([m.YIELD, invocation(authenticator)[1], {}, [{"role": "r",
                                                                      "secret": "k"}]])
    peer.take_one()
    peer.send([m.AUTHENTICATE, "bad", {}])
    assert peer.take_one()[2] == uris.AUTHENTICATION_FAILED


def test_cryptosign(setup):
    router, _, authenticator = setup
    key = SigningKey.generate()
    pubkey = key.verify_key.encode().hex()
    peer = hello(router, authmethods=["cryptosign"], authextra={"pubkey": pubkey})
    inv = invocation(authenticator)
    assert inv[4][2]["authextra"]["pubkey"] == pubkey
    authenticator.send([m.YIELD, inv[1], {}, [{"role": "device", "authid": "dev-7"}]])
    challenge = peer.take_one()
    message = bytes.fromhex(challenge[2]["challenge"])
    peer.send([m.AUTHENTICATE, (key.sign(message).signature + message).hex(), {}])
    welcome = peer.take_one()
    assert (welcome[2]["authid"], welcome[2]["authrole"], welcome[2]["authmethod"]) == (
        "dev-7", "device", "cryptosign")
    # signed by another key: refused
    peer = hello(router, authmethods=["cryptosign"], authextra={"pubkey": pubkey})
    authenticator.send([m.YIELD, invocation(authenticator)[1], {}, ["device"]])
    challenge = peer.take_one()
    message = bytes.fromhex(challenge[2]["challenge"])
    other = SigningKey.generate()
    peer.send([m.AUTHENTICATE, (other.sign(message).signature + message).hex(), {}])
    assert peer.take_one()[2] == uris.AUTHENTICATION_FAILED
    # a malformed HELLO is refused before anyone is asked
    peer = hello(router, authmethods=["cryptosign"], authextra={"pubkey": "zz"})
    assert peer.take_one()[2] == uris.AUTHENTICATION_FAILED
    assert authenticator.take() == []
