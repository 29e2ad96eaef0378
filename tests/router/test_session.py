"""Session lifecycle and bad input, through the sans-I/O core."""

from __future__ import annotations

import pytest

from fastwamp.router.router import BUSY_GAP
from fastwamp.testing import LinkedPeer
from fastwamp.wamp import messages as m


def test_hello_gets_welcome_with_features(router):
    p = LinkedPeer(router)
    welcome = p.hello()
    assert welcome[0] == m.WELCOME
    session_id, details = welcome[1], welcome[2]
    assert 1 <= session_id <= 2**53
    assert details["realm"] == "realm1"
    assert details["authmethod"] == "anonymous"
    assert details["authrole"] == "anonymous"
    dealer = details["roles"]["dealer"]["features"]
    broker = details["roles"]["broker"]["features"]
    assert dealer["shared_registration"] and dealer["call_canceling"]
    assert broker["publisher_exclusion"]


def test_session_ids_are_unique(router):
    ids = {LinkedPeer(router).hello()[1] for _ in range(200)}
    assert len(ids) == 200


def test_unknown_realm_aborts(router):
    p = LinkedPeer(router)
    p.send([m.HELLO, "nope", {"roles": {"caller": {}}}])
    abort = p.take_one()
    assert abort[0] == m.ABORT and abort[2] == "wamp.error.no_such_realm"
    assert p.closed


@pytest.mark.parametrize(
    "first",
    [
        [m.CALL, 1, {}, "com.x"],
        [m.GOODBYE, {}, "wamp.close.normal"],
        [m.ERROR, 68, 1, {}, "x"],
    ],
)
def test_non_hello_first_message_is_a_protocol_violation(router, first):
    p = LinkedPeer(router)
    p.send(first)
    abort = p.take_one()
    assert abort[0] == m.ABORT and abort[2] == "wamp.error.protocol_violation"
    assert p.closed


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {},
        "garbage",
        [999, 1],
        ["call"],
        [m.CALL, 1, {}],
        [m.CALL, "1", {}, "com.x"],
        [m.CALL, 0, {}, "com.x"],
        [m.CALL, 2**53 + 1, {}, "com.x"],
        [m.CALL, 1, [], "com.x"],
        [m.CALL, 1, {}, "com.x", {}],
        [m.CALL, 1, {}, "com.x", [], []],
        [m.REGISTER, 1, {}, 5],
        [m.SUBSCRIBE, True, {}, "com.x"],
        [m.WELCOME, 1, {}],
        [m.RESULT, 1, {}],
        [m.HELLO, "realm1", {"roles": {"caller": {}}}],
        [m.ERROR, m.CALL, 1, {}, "com.err"],
    ],
)
def test_malformed_message_aborts_only_that_session(router, peer, bad):
    victim = peer()
    bystander_callee = peer()
    bystander_caller = peer()
    bystander_callee.send([m.REGISTER, 1, {}, "com.ok"])
    bystander_callee.take()
    victim.send(bad)
    abort = victim.take_one()
    assert abort[0] == m.ABORT and abort[2] == "wamp.error.protocol_violation"
    assert "message" in abort[1]
    assert victim.closed
    # everything else still works
    bystander_caller.send([m.CALL, 1, {}, "com.ok", [1]])
    inv = bystander_callee.take_one()
    assert inv[0] == m.INVOCATION
    bystander_callee.send([m.YIELD, inv[1], {}, [2]])
    assert bystander_caller.take_one() == [m.RESULT, 1, {}, [2]]


def test_invalid_hello_roles_abort(router):
    p = LinkedPeer(router)
    p.send([m.HELLO, "realm1", {"roles": {}}])
    assert p.take_one()[2] == "wamp.error.protocol_violation"
    p = LinkedPeer(router)
    p.send([m.HELLO, "realm1", {"roles": {"dictator": {}}}])
    assert p.take_one()[2] == "wamp.error.protocol_violation"


def test_goodbye_is_echoed_and_cleans_up(router, peer):
    callee = peer()
    callee.send([m.REGISTER, 1, {}, "com.proc"])
    callee.take()
    callee.send([m.GOODBYE, {}, "wamp.close.normal"])
    assert callee.take_one() == [m.GOODBYE, {}, "wamp.close.goodbye_and_out"]
    assert callee.closed
    caller = peer()
    caller.send([m.CALL, 1, {}, "com.proc"])
    assert caller.take_one()[4] == "wamp.error.no_such_procedure"


def test_undecodable_frame_aborts(router, peer):
    p = peer()
    p.session.receive_invalid("invalid JSON")
    router.flush()
    abort = p.take_one()
    assert abort[0] == m.ABORT and abort[2] == "wamp.error.protocol_violation"


def test_shutdown_says_goodbye_system_shutdown(router, peer):
    a, b = peer(), peer()
    router.shutdown()
    for p in (a, b):
        assert p.take_one() == [m.GOODBYE, {"message": "the router is shutting down"},
                                "wamp.close.system_shutdown"]
        assert p.closed


def test_anonymous_refused_when_realm_requires_auth(config):
    from fastwamp.config import RealmConfig
    from fastwamp.testing import make_router

    config.realms.append(RealmConfig("private", allow_anonymous=False))
    router, _ = make_router(config)
    p = LinkedPeer(router)
    p.send([m.HELLO, "private", {"roles": {"caller": {}}}])
    assert p.take_one()[2] == "wamp.error.no_auth_method"


def test_strict_request_ids(config):
    from fastwamp.testing import make_router

    config.strict_request_ids = True
    router, _ = make_router(config)
    p = LinkedPeer(router)
    p.hello()
    p.send([m.SUBSCRIBE, 1, {}, "com.t"])
    assert p.take_one()[0] == m.SUBSCRIBED
    p.send([m.SUBSCRIBE, 3, {}, "com.t2"])
    assert p.take_one()[2] == "wamp.error.protocol_violation"


def test_flush_soon_writes_at_once_while_quiet_and_joins_back_to_back_reads(router, peer):
    callee, caller_a, caller_b, caller_c = peer(), peer(), peer(), peer()
    callee.send([m.REGISTER, 1, {}, "com.p"])
    callee.take()
    soon: list = []
    router.call_soon = soon.append
    clock = [1000.0]  # the router's monotonic clock, moved by the test
    router.monotonic = lambda: clock[0]
    batches: list = []
    callee.send_messages = batches.append  # the transport's one write per flush
    request_ids: dict = {}
    gap = BUSY_GAP / 5  # reads back to back: a read system call apart

    def read(caller, after: float, pass_time: bool = True):
        """A transport feeds one read's CALL, arrived ``after`` s after the clock's
        time, then asks for a flush."""
        clock[0] += after
        request_ids[caller] = request_ids.get(caller, 0) + 1
        caller.session.receive([m.CALL, request_ids[caller], {}, "com.p"])
        router.flush_soon(clock[0] if pass_time else None)

    def end_iteration():
        callbacks = soon[:]
        soon.clear()
        for callback in callbacks:
            callback()

    def written():
        return [[msg[0] for msg in batch] for batch in batches]

    # A quiet router: the output of a read leaves at once, nothing is scheduled.
    read(caller_a, 1.0)
    assert written() == [[m.INVOCATION]] and not soon
    # Two more reads back to back: their output waits for the end of the iteration,
    # one write.
    read(caller_b, gap)
    read(caller_c, gap)
    assert len(batches) == 1
    end_iteration()
    assert written()[1:] == [[m.INVOCATION, m.INVOCATION]]
    # Reads shared that iteration: the next one's output waits for its end as well.
    read(caller_a, gap)
    assert len(batches) == 2
    read(caller_b, gap)
    end_iteration()
    assert written()[2:] == [[m.INVOCATION, m.INVOCATION]]
    # An iteration with a single read: the next read's output leaves at once again,
    # unless it comes back to back with that flush.
    read(caller_c, gap)
    end_iteration()
    assert written()[3:] == [[m.INVOCATION]]
    read(caller_a, 2 * BUSY_GAP)
    assert written()[4:] == [[m.INVOCATION]] and not soon
    read(caller_b, gap)
    assert len(batches) == 5 and len(soon) == 1
    end_iteration()
    assert written()[5:] == [[m.INVOCATION]]
    # Without the read's time (a cluster link's input) the router's clock says.
    read(caller_c, 1.0, pass_time=False)
    assert written()[6:] == [[m.INVOCATION]] and not soon
