"""Calls the router itself makes to procedures clients registered (a dynamic
authenticator), through a realm's dealer like any other call.

Each realm gets one internal caller session on first use (authid ``fastwamp``,
authrole ``trusted``); it is never joined to the realm, so it is not listed by the
meta API.  Its RESULT or ERROR is handed to the callback of the call when the router
flushes.  The call's timeout is the dealer's (``CALL.Options.timeout``): a callee
that does not answer in time gets INTERRUPT and the callback ``wamp.error.timeout``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..wamp import messages as m
from ..wamp import uris
from ..wamp.payload import expand
from .session import ESTABLISHED, RouterSession

if TYPE_CHECKING:
    from .realm import Realm
    from .router import Router

#: ``callback(result, error)``: ``result`` is ``(args, kwargs)`` of the RESULT, or None;
#: ``error`` is ``(error_uri, args)`` of the ERROR, or None.
CallCallback = Callable[[tuple[list, dict] | None, tuple[str, list] | None], None]
#: ``call(realm, procedure, args, kwargs, timeout_seconds, callback)``.
ProcedureCall = Callable[[str, str, list, dict, float, CallCallback], None]


class _NullSink:
    def send_messages(self, msgs: list[list]) -> None:  # pragma: no cover - never used
        pass

    def close(self) -> None:  # pragma: no cover - never used
        pass

    def pause_input(self) -> None:
        pass

    def resume_input(self) -> None:
        pass


class RouterCaller(RouterSession):
    """The router's own caller in one realm."""

    is_service = True

    def __init__(self, realm: Realm) -> None:
        super().__init__(realm.router, _NullSink(), {"type": "internal", "peer": "router"})
        member = self.member
        member.id = realm.router.new_session_id()
        member.authid = "fastwamp"
        member.authrole = "trusted"
        self.authmethod = "internal"
        self.authprovider = "fastwamp"
        self.state = ESTABLISHED
        self.realm = realm
        self._callbacks: dict[int, CallCallback] = {}
        self._last_request = 0

    def call(self, procedure: str, args: list, kwargs: dict, timeout: float,
             callback: CallCallback) -> None:
        """CALL ``procedure``; ``callback`` gets the answer at a later flush."""
        self._last_request += 1
        request = self._last_request
        self._callbacks[request] = callback
        options = {"timeout": max(1, int(timeout * 1000))}
        assert self.realm is not None
        self.realm.dealer.call(self.member, [m.CALL, request, options, procedure, args, kwargs])

    def deliver(self) -> None:
        member = self.member
        out, member.outbox = member.outbox, []
        for msg in out:
            msg = expand(msg)
            code = msg[0]
            if code == m.RESULT:
                if msg[2].get("progress") is True:
                    continue  # only the final result answers
                callback = self._callbacks.pop(msg[1], None)
                if callback is not None:
                    args = msg[3] if len(msg) > 3 and type(msg[3]) is list else []
                    kwargs = msg[4] if len(msg) > 4 and type(msg[4]) is dict else {}
                    callback((args, kwargs), None)
            elif code == m.ERROR and msg[1] == m.CALL:
                callback = self._callbacks.pop(msg[2], None)
                if callback is not None:
                    callback(None, (msg[4], msg[5] if len(msg) > 5 else []))


class ProcedureCaller:
    """The router's calls, one :class:`RouterCaller` per realm (made on first use)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._callers: dict[str, RouterCaller] = {}

    def call(self, realm_name: str, procedure: str, args: list, kwargs: dict, timeout: float,
             callback: CallCallback) -> None:
        realm = self.router.realms.get(realm_name)
        if realm is None:
            callback(None, (uris.NO_SUCH_REALM, [f"no realm named {realm_name!r}"]))
            return
        caller = self._callers.get(realm_name)
        if caller is None:
            caller = self._callers[realm_name] = RouterCaller(realm)
        caller.call(procedure, args, kwargs, timeout, callback)


_callers: weakref.WeakKeyDictionary[Any, ProcedureCaller] = weakref.WeakKeyDictionary()


def procedure_caller(router: Router) -> ProcedureCall:
    """The router's :meth:`ProcedureCaller.call` (one caller per router)."""
    caller = _callers.get(router)
    if caller is None:
        caller = _callers[router] = ProcedureCaller(router)
    return caller.call
