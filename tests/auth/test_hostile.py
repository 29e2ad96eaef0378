"""Hostile input during authentication: each gets ABORT (never a crash), and the
router goes on serving others."""

from __future__ import annotations

import pytest

from fastwamp.testing import LinkedPeer
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

from .conftest import CLIENT_PUBKEY, REALM, ROLES, TICKET, hello


def abort_reason(peer: LinkedPeer) -> str:
    out = peer.take()
    assert out and out[-1][0] == m.ABORT, out
    assert peer.closed
    return out[-1][2]


def assert_router_still_serves(router) -> None:
    peer, challenge = hello(router, authmethods=["ticket"], authid="tina")
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take_one()[0] == m.WELCOME


def test_authenticate_before_hello(router):
    peer = LinkedPeer(router)
    peer.send([m.AUTHENTICATE, "x", {}])
    assert abort_reason(peer) == uris.PROTOCOL_VIOLATION


def test_authenticate_after_welcome(router):
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take_one()[0] == m.WELCOME
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert abort_reason(peer) == uris.PROTOCOL_VIOLATION


def test_authenticate_repeated_after_failure_is_ignored(router):
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.send([m.AUTHENTICATE, "wrong", {}])
    assert abort_reason(peer) == uris.AUTHENTICATION_FAILED
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take() == []


@pytest.mark.parametrize("msg", [
    [m.CALL, 1, {}, "wamp.session.count"],
    [m.SUBSCRIBE, 1, {}, "com.topic"],
    [m.HELLO, REALM, {"roles": ROLES}],
    [m.PUBLISH, 1, {}, "com.topic"],
])
def test_only_authenticate_while_challenging(router, msg):
    peer, challenge = hello(router, authmethods=["ticket"], authid="tina")
    assert challenge[0] == m.CHALLENGE
    peer.send(msg)
    assert abort_reason(peer) == uris.PROTOCOL_VIOLATION
    assert_router_still_serves(router)


@pytest.mark.parametrize("msg", [
    [m.AUTHENTICATE, 123, {}],
    [m.AUTHENTICATE, TICKET],
    [m.AUTHENTICATE, TICKET, []],
    [m.AUTHENTICATE, None, {}],
    [m.AUTHENTICATE, TICKET, {}, "extra"],
])
def test_malformed_authenticate(router, msg):
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.send(msg)
    assert abort_reason(peer) == uris.PROTOCOL_VIOLATION


def test_goodbye_or_abort_while_challenging_closes_quietly(router):
    for msg in ([m.GOODBYE, {}, "wamp.close.normal"], [m.ABORT, {}, "wamp.close.normal"]):
        peer, _ = hello(router, authmethods=["ticket"], authid="tina")
        peer.send(msg)
        assert peer.take() == [] and peer.closed
    assert_router_still_serves(router)


@pytest.mark.parametrize("details", [
    {"authmethods": "ticket", "authid": "tina"},
    {"authmethods": ["ticket"], "authid": 5},
    {"authmethods": ["ticket"], "authid": "tina", "authrole": ["x"]},
    {"authmethods": ["cryptosign"], "authextra": "pubkey"},
])
def test_hello_with_wrong_types(router, details):
    peer = LinkedPeer(router)
    peer.send([m.HELLO, REALM, {"roles": ROLES, **details}])
    assert abort_reason(peer) == uris.PROTOCOL_VIOLATION


@pytest.mark.parametrize("methods", [[1, None, {}, ["ticket"]], ["x"] * 10000, []])
def test_hello_with_odd_authmethods(router, methods):
    _, answer = hello(router, authmethods=methods, authid="tina")
    assert answer[0] == m.ABORT and answer[2] == uris.NO_AUTH_METHOD
    assert len(answer[1]["message"]) < 1000


@pytest.mark.parametrize("authextra", [
    {},
    {"pubkey": 5},
    {"pubkey": "zz" * 32},
    {"pubkey": CLIENT_PUBKEY[:-2]},
    {"pubkey": CLIENT_PUBKEY * 100},
    {"pubkey": CLIENT_PUBKEY, "challenge": "ab"},
    {"pubkey": CLIENT_PUBKEY, "challenge": 7},
    {"pubkey": CLIENT_PUBKEY, "challenge": "zz" * 32},
    {"pubkey": CLIENT_PUBKEY, "channel_binding": 5},
    {"pubkey": CLIENT_PUBKEY, "channel_binding": {"a": 1}},
])
def test_cryptosign_hostile_hello(router, authextra):
    _, answer = hello(router, authmethods=["cryptosign"], authextra=authextra)
    assert answer[0] == m.ABORT and answer[2] == uris.AUTHENTICATION_FAILED, answer


@pytest.mark.parametrize("signature", [
    "", "00", "ab" * 95, "ab" * 97, "ab" * 100000, "zz" * 96, "é" * 192, "\x00" * 192,
])
def test_cryptosign_truncated_oversized_or_garbage_signatures(router, signature):
    peer, challenge = hello(router, authmethods=["cryptosign"],
                            authextra={"pubkey": CLIENT_PUBKEY})
    assert challenge[0] == m.CHALLENGE
    peer.send([m.AUTHENTICATE, signature, {}])
    assert abort_reason(peer) == uris.AUTHENTICATION_FAILED


@pytest.mark.parametrize("signature", ["", "not base64!", "é", "A" * 100000, "QUJD"])
def test_wampcra_and_scram_garbage_signatures(router, signature):
    peer, _ = hello(router, authmethods=["wampcra"], authid="carl")
    peer.send([m.AUTHENTICATE, signature, {}])
    assert abort_reason(peer) == uris.AUTHENTICATION_FAILED
    peer, _ = hello(router, authmethods=["scram"], authid="sara",
                    authextra={"nonce": "bm9uY2U="})
    peer.send([m.AUTHENTICATE, signature, {}])
    assert abort_reason(peer) == uris.AUTHENTICATION_FAILED


@pytest.mark.parametrize("nonce", [None, 5, "", "a,b", "a b", "A" * 1000])
def test_scram_hostile_nonce(router, nonce):
    authextra = {} if nonce is None else {"nonce": nonce}
    _, answer = hello(router, authmethods=["scram"], authid="sara", authextra=authextra)
    assert answer[0] == m.ABORT and answer[2] == uris.AUTHENTICATION_FAILED


def test_ticket_with_surrogates_and_huge_authid(router):
    peer, _ = hello(router, authmethods=["ticket"], authid="\ud800" + "a" * 50000)
    peer.send([m.AUTHENTICATE, "\udfff", {}])
    assert abort_reason(peer) == uris.AUTHENTICATION_FAILED
    assert_router_still_serves(router)


def test_router_goodbye_while_challenging_aborts(router):
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.session.goodbye(uris.CLOSE_SYSTEM_SHUTDOWN, "bye")
    router.flush()
    assert abort_reason(peer) == uris.CLOSE_SYSTEM_SHUTDOWN


def test_disconnect_while_challenging(router):
    peer, _ = hello(router, authmethods=["ticket"], authid="tina")
    peer.disconnect()
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take() == []
    assert all(s.is_service for s in router.sessions.values())
