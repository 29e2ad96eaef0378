"""The core's shape: the sans-I/O boundary, the realm's pipeline, and realm events."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fastwamp
from fastwamp.config import Config, RealmConfig, config_from_dict
from fastwamp.router.clock import Clock
from fastwamp.router.dealer import Dealer
from fastwamp.router.events import RealmEvents
from fastwamp.router.member import Member
from fastwamp.router.options import DealerOptions
from fastwamp.testing import LinkedPeer, make_router
from fastwamp.wamp import messages as m
from fastwamp.wamp import uris

PACKAGE = Path(fastwamp.__file__).parent
FORBIDDEN = ("asyncio", "socket", "selectors", "ssl", "uvloop", "websockets", "picows",
             "fastwamp.transport", "fastwamp.server")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the package
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
                module = ".".join(parts[: len(parts) - node.level] + ((module,) if module else ()))
            names.add(module)
    return names


@pytest.mark.parametrize("package", ["router", "_core"])
def test_core_packages_do_no_io(package):
    for path in sorted((PACKAGE / package).glob("*.py")):
        for name in _imports(path):
            for forbidden in FORBIDDEN:
                assert name != forbidden and not name.startswith(forbidden + "."), (
                    f"{path.name} imports {name}: the core must stay sans-I/O")


def test_dealer_is_built_from_plain_values():
    """A dealer alone: options, a clock, events; members as its sessions."""
    seen = []

    class Observer:
        def registration_created(self, member, reg):
            seen.append(("created", member.id, reg.uri))

    events = RealmEvents()
    events.add(Observer())
    dealer = Dealer(DealerOptions(), Clock(), events)
    queued = []
    callee = Member(None, queued.append)
    callee.id = 7
    dealer.register(callee, [m.REGISTER, 1, {}, "com.p"])
    assert callee.outbox[0][0] == m.REGISTERED and queued == [callee]
    assert seen == [("created", 7, "com.p")]
    caller = Member(None, queued.append)
    caller.id = 8
    dealer.call(caller, [m.CALL, 1, {}, "com.p", [1]])
    assert callee.outbox[-1][0] == m.INVOCATION and callee.outbox[-1][4] == [1]


def test_realm_events_reach_observers_in_order():
    router, clock = make_router(config_from_dict({"realms": [{
        "name": "realm1", "event_history": [{"uri": "com.t"}]}]}))
    realm = router.realms["realm1"]
    calls = []

    class Observer:
        def subscription_created(self, member, sub):
            calls.append(("created", sub.uri))

        def published(self, member, topic, publication, payload, options):
            calls.append(("published", topic, payload))

    realm.events.add(Observer())
    p = LinkedPeer(router)
    p.hello()
    p.send([m.SUBSCRIBE, 1, {}, "com.t"])
    p.send([m.PUBLISH, 2, {}, "com.t", [1]])
    assert calls == [("created", "com.t"), ("published", "com.t", [[1]])]
    assert realm.history is not None and len(realm.history.rules[("com.t", 0)].events) == 1


def test_pipeline_hooks_authorize_and_count():
    router, clock = make_router(Config(realms=[RealmConfig("realm1")]))
    realm = router.realms["realm1"]
    counted = []

    def authorize(member, code, msg):
        if code == m.PUBLISH and msg[3] == "com.secret":
            member.send_error(m.PUBLISH, msg[1], uris.NOT_AUTHORIZED, ["no"])
            return False
        return True

    realm.authorize = authorize
    realm.count = lambda member, code, msg: counted.append(code)
    p = LinkedPeer(router)
    p.hello()
    p.send([m.PUBLISH, 1, {"acknowledge": True}, "com.secret"])
    assert p.take_one()[4] == uris.NOT_AUTHORIZED
    p.send([m.PUBLISH, 2, {"acknowledge": True}, "com.open"])
    assert p.take_one()[0] == m.PUBLISHED
    assert counted == [m.PUBLISH]
