"""max_auth_failures_per_address: an address that keeps failing is refused unchecked."""

from __future__ import annotations

from fastwamp.auth.guard import FailedAuthentications, client_address
from fastwamp.config import Config, RealmConfig
from fastwamp.testing import make_router
from fastwamp.wamp import messages as m

from .conftest import TICKET, hello, secure_realm


def info(address: str) -> dict:
    return {"type": "test", "peer": f"tcp4:{address}:40000"}


def fail_once(router, address: str) -> list:
    peer, challenge = hello(router, info(address), authmethods=["ticket"], authid="tina")
    assert challenge[0] == m.CHALLENGE
    peer.send([m.AUTHENTICATE, "wrong", {}])
    return peer.take_one()


def test_an_address_over_the_limit_is_refused_before_any_check(caplog):
    router, clock = make_router(Config(realms=[RealmConfig("realm1"), secure_realm()],
                                       max_auth_failures_per_address=3,
                                       auth_failure_window=60.0))
    for _ in range(3):
        assert fail_once(router, "10.0.0.1")[0] == m.ABORT
    # The fourth attempt, even with the right ticket, gets no CHALLENGE.
    _, answer = hello(router, info("10.0.0.1"), authmethods=["ticket"], authid="tina")
    assert answer[0] == m.ABORT and answer[2] == "wamp.error.authentication_failed"
    assert "too many failed" in answer[1]["message"]
    assert router.stats["authentication_failures"] == 3
    assert any("max_auth_failures_per_address" in r.getMessage() for r in caplog.records)
    # Another address is not affected; anonymous joins on an open realm are not either.
    peer, challenge = hello(router, info("10.0.0.2"), authmethods=["ticket"], authid="tina")
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take_one()[0] == m.WELCOME
    # Once the window has passed, the address may try again.
    clock.advance(61.0)
    peer, challenge = hello(router, info("10.0.0.1"), authmethods=["ticket"], authid="tina")
    assert challenge[0] == m.CHALLENGE
    peer.send([m.AUTHENTICATE, TICKET, {}])
    assert peer.take_one()[0] == m.WELCOME


def test_zero_means_no_limit():
    router, _ = make_router(Config(realms=[RealmConfig("realm1"), secure_realm()],
                                   max_auth_failures_per_address=0))
    for _ in range(30):
        assert fail_once(router, "10.0.0.1")[0] == m.ABORT
    _, challenge = hello(router, info("10.0.0.1"), authmethods=["ticket"], authid="tina")
    assert challenge[0] == m.CHALLENGE


def test_the_table_stays_bounded(monkeypatch):
    from fastwamp.auth import guard

    monkeypatch.setattr(guard, "MAX_ADDRESSES", 100)
    table = FailedAuthentications(limit=2, window=10.0)
    for i in range(1000):
        table.failed(f"10.1.{i // 256}.{i % 256}", now=float(i) / 1000)
    assert len(table) <= 100
    table.failed("x", 0.0)
    table.failed("x", 1.0)
    assert table.blocked("x", 5.0) and not table.blocked("x", 10.5)


def test_client_address():
    assert client_address("tcp4:10.0.0.1:5000") == "10.0.0.1"
    assert client_address("tcp6:::1:5000") == "::1"
    assert client_address("tcp6:2001:db8::2:443") == "2001:db8::2"
    assert client_address("unix:/tmp/s") == "unix:/tmp/s"
    assert client_address("test") == "test"
