"""Random handshakes against every authentication method (hypothesis).

A session sends a random sequence drawn from HELLOs (random methods, authids,
authextra with random pubkeys, challenges, channel bindings, nonces),
AUTHENTICATEs (random, truncated and oversized signatures, some right) and other
messages.  Whatever it sends: nothing raises, nothing is logged at ERROR level,
no internal_error, every ABORT names the client's fault, the router only ever
answers with CHALLENGE, WELCOME or ABORT before WELCOME, and a well-behaved
client still authenticates afterwards.
"""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastwamp.config import Config, RealmConfig
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

from .conftest import CLIENT_PUBKEY, REALM, ROLES, TICKET, secure_realm

CLIENT_ABORTS = {uris.PROTOCOL_VIOLATION, uris.AUTHENTICATION_FAILED, uris.NO_AUTH_METHOD,
                 uris.NO_SUCH_REALM}
ROUTER = make_router(Config(realms=[RealmConfig("realm1"), secure_realm()],
                            max_auth_failures_per_address=0))[0]  # the limiter: elsewhere

hexes = st.one_of(st.just(CLIENT_PUBKEY), st.binary(min_size=0, max_size=40).map(bytes.hex),
                  st.text(alphabet="0123456789abcdefxyz", max_size=70))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.text(max_size=20),
                    hexes, st.lists(st.integers(), max_size=3), st.dictionaries(
                        st.text(max_size=5), st.integers(), max_size=3))
authextra = st.one_of(scalars, st.fixed_dictionaries({}, optional={
    "pubkey": st.one_of(hexes, scalars), "challenge": st.one_of(hexes, scalars),
    "channel_binding": st.sampled_from([None, "tls-unique", "tls-exporter", 5, ""]),
    "nonce": st.one_of(st.just("bm9uY2U="), scalars),
}))
methods = st.sampled_from(["anonymous", "ticket", "wampcra", "cryptosign", "scram", "tls",
                           "cookie", ""])
hello_details = st.fixed_dictionaries({"roles": st.just(ROLES)}, optional={
    "authmethods": st.one_of(st.lists(st.one_of(methods, scalars), max_size=4), scalars),
    "authid": st.one_of(st.sampled_from(["tina", "carl", "paula", "sam", "sara", "tom",
                                         "nobody", ""]), scalars),
    "authrole": scalars,
    "authextra": authextra,
})
hello = st.builds(lambda realm, details: [m.HELLO, realm, details],
                  st.sampled_from([REALM, REALM, "realm1", "nope"]), hello_details)
signatures = st.one_of(st.just(TICKET), st.text(max_size=300), hexes,
                       st.integers(0, 500).map(lambda n: "ab" * n))
authenticate = st.builds(lambda sig, extra: [m.AUTHENTICATE, sig, extra], st.one_of(
    signatures, scalars), st.one_of(st.just({}), scalars))
other = st.one_of(
    st.just([m.GOODBYE, {}, "wamp.close.normal"]), st.just([m.ABORT, {}, "wamp.close.normal"]),
    st.just([m.CALL, 1, {}, "wamp.session.count"]), st.just([m.CHALLENGE, "ticket", {}]),
    st.lists(scalars, max_size=4),
)
message = st.one_of(hello, hello, authenticate, authenticate, other)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(message, min_size=1, max_size=6))
def test_random_handshakes(caplog, script):
    caplog.set_level(logging.WARNING)
    peer = LinkedPeer(ROUTER)
    welcomed = False
    for msg in script:
        peer.send(msg)
        for out in peer.take():
            code = out[0]
            if not welcomed:
                assert code in (m.CHALLENGE, m.WELCOME, m.ABORT), out
            if code == m.WELCOME:
                welcomed = True
            if code == m.ABORT:
                assert out[2] in CLIENT_ABORTS, out
            assert "internal_error" not in str(out)
    peer.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    good = LinkedPeer(ROUTER)
    good.send([m.HELLO, REALM, {"roles": ROLES, "authmethods": ["ticket"], "authid": "tina"}])
    assert good.take_one()[0] == m.CHALLENGE
    good.send([m.AUTHENTICATE, TICKET, {}])
    assert good.take_one()[0] == m.WELCOME
    good.disconnect()
