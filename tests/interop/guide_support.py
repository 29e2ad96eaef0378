"""Helpers for the guide / advanced-profile interop tests (test_autobahn_guide_*.py, test_autobahn_meta.py).

* :class:`WireTap` sees the raw WAMP messages (lists) an Autobahn session sends and receives,
  and can rewrite outgoing ones: Autobahn has no API for ``disclose_me``, ``disclose_caller``,
  ``get_publisher`` or the CANCEL ``mode``, and drops INVOCATION/EVENT details it does not know
  (``trustlevel``).
* :data:`GUIDE_REALMS` / :func:`start_guide_router`: a private router whose extra realms carry the
  realm options the shared router does not have (disclosure modes, trust levels, no retention).
"""

from __future__ import annotations

import asyncio
import copy
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError

from .abclient import Client, Kind, barrier, connect
from .conftest import RouterEndpoints, RouterProcess

#: Extra realms of the guide router (realm1, the conftest's default realm, is there too).
REALM_ON_REQUEST = "guide.on_request"
REALM_NEVER = "guide.never"
REALM_TRUST = "guide.trust"
REALM_NO_RETAIN = "guide.no_retain"
REALM_KILL = "guide.kill"

GUIDE_REALMS = f"""\
[[realms]]
name = "{REALM_ON_REQUEST}"
disclosure = "on_request"

[[realms]]
name = "{REALM_NEVER}"
disclosure = "never"

[[realms]]
name = "{REALM_TRUST}"
trustlevels = {{"*" = 0, "anonymous" = 1}}

[[realms]]
name = "{REALM_NO_RETAIN}"
event_retention = false

[[realms]]
name = "{REALM_KILL}"
# every session of this realm is trusted: it may kill others (the default allows no role)
admin_authroles = ["anonymous"]
"""

# WAMP message type codes.
ERROR = 8
PUBLISH = 16
EVENT = 36
SUBSCRIBE = 32
CALL = 48
CANCEL = 49
RESULT = 50
REGISTER = 64
INVOCATION = 68
INTERRUPT = 69
YIELD = 70


def start_guide_router(name: str) -> Iterator[RouterEndpoints]:
    """Generator body of a module-scoped fixture: a private router with :data:`GUIDE_REALMS`."""
    with tempfile.TemporaryDirectory(prefix="fastwamp-guide-") as tmp:
        # realm1 untrusted, as on the embedded default: the guide needs no more
        rp = RouterProcess(Path(tmp), name, extra_config=GUIDE_REALMS, realm_config="")
        endpoints = rp.start()
        try:
            yield endpoints
        finally:
            if rp.running:
                rp.stop(check=True)
            else:
                rp._finish_io()
                pytest.fail(f"the {name} router died during the tests\n" + rp.diagnostics())


class WireTap:
    """Raw WAMP messages of one Autobahn session (attached after the session joined).

    ``received``: every message list decoded from the router since the tap was attached.
    ``sent``: every message list sent, after ``rewrites`` (callables that may modify the list in
    place) were applied.
    """

    def __init__(self, session: Client) -> None:
        proto: Any = session._transport
        objser = proto._serializer._serializer
        self.received: list[list[Any]] = []
        self.sent: list[list[Any]] = []
        self.rewrites: list[Callable[[list[Any]], None]] = []
        orig_serialize = objser.serialize
        orig_unserialize = objser.unserialize

        def serialize(obj: Any) -> Any:
            if isinstance(obj, list):
                for rewrite in self.rewrites:
                    rewrite(obj)
                self.sent.append(copy.deepcopy(obj))
            return orig_serialize(obj)

        def unserialize(payload: Any) -> Any:
            msgs = orig_unserialize(payload)
            self.received.extend(copy.deepcopy(msgs))
            return msgs

        objser.serialize = serialize
        objser.unserialize = unserialize

    def of_type(self, code: int) -> list[list[Any]]:
        return [m for m in self.received if m and m[0] == code]

    def add_option(self, code: int, uri: str | None, **options: Any) -> None:
        """Add ``options`` to the Options dict (element 2) of outgoing messages of type ``code``
        (whose URI, element 3, is ``uri`` if given)."""

        def rewrite(msg: list[Any]) -> None:
            if msg[0] == code and (uri is None or msg[3] == uri):
                msg[2].update(options)

        self.rewrites.append(rewrite)


def session_id(s: Client) -> int:
    return s.joined.result().session


def authid(s: Client) -> str:
    return s.joined.result().authid


def call_request_id(session: Client, fut: Any) -> int:
    """The CALL request id behind a future returned by ``session.call``."""
    for rid, req in session._call_reqs.items():
        if req.on_reply is fut:
            return rid
    raise AssertionError("no pending CALL for this future")


def send_cancel(session: Client, fut: Any, mode: str | None) -> None:
    """CANCEL with an explicit mode (Autobahn's own cancel() sends no mode)."""
    session._transport.send(message.Cancel(call_request_id(session, fut), mode=mode))


async def connect_to(endpoints: RouterEndpoints, kind: Kind, realm: str | None = None) -> Client:
    return await connect(endpoints, kind, realm)


class Sessions:
    """Sessions of one test on any realm; all closed at the end (``async with Sessions(ep) as s``)."""

    def __init__(self, endpoints: RouterEndpoints) -> None:
        self.endpoints = endpoints
        self.sessions: list[Client] = []

    async def __aenter__(self) -> Sessions:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for s in self.sessions:
            if not s.disconnected.done():
                try:
                    await s.close(timeout=3.0)
                except AssertionError:
                    pass

    async def connect(self, kind: Kind, realm: str | None = None) -> Client:
        s = await connect(self.endpoints, kind, realm)
        self.sessions.append(s)
        return s


async def expect_error(awaitable: Any, uri: str) -> ApplicationError:
    with pytest.raises(ApplicationError) as ei:
        await awaitable
    assert ei.value.error == uri, f"expected {uri}, got {ei.value.error}: {ei.value.args}"
    return ei.value


async def until(pred: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """Poll ``pred`` every 5 ms until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def callee_count(s: Client, uri: str, match: str = "exact") -> int:
    reg = await s.call("wamp.registration.lookup", uri, {"match": match})
    if reg is None:
        return 0
    try:
        return await s.call("wamp.registration.count_callees", reg)
    except ApplicationError as e:  # deleted between the two calls
        if e.error != "wamp.error.no_such_registration":
            raise
        return 0


async def until_callees(s: Client, uri: str, n: int, match: str = "exact") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (got := await callee_count(s, uri, match)) != n:
        if loop.time() > deadline:
            raise AssertionError(f"{uri}: {got} callees, expected {n}")
        await asyncio.sleep(0.005)


__all__ = [
    "CALL",
    "CANCEL",
    "ERROR",
    "EVENT",
    "GUIDE_REALMS",
    "INTERRUPT",
    "INVOCATION",
    "PUBLISH",
    "REALM_KILL",
    "REALM_NEVER",
    "REALM_NO_RETAIN",
    "REALM_ON_REQUEST",
    "REALM_TRUST",
    "REGISTER",
    "RESULT",
    "SUBSCRIBE",
    "Sessions",
    "WireTap",
    "authid",
    "barrier",
    "call_request_id",
    "callee_count",
    "connect_to",
    "expect_error",
    "send_cancel",
    "session_id",
    "start_guide_router",
    "until",
    "until_callees",
]
