"""The dynamic authorizer: a procedure that decides the requests of sessions whose role
the realm's configuration does not list (realm key ``authorizer``).

The router calls the procedure as its own caller session (through the dealer, like any
call: :func:`fastwamp.router.caller.procedure_caller`) with ``[session details, uri, action, {"match":
match}]``; the answer ``true`` or ``{"allow": true}`` allows, anything else (``false``,
an ERROR, no callee, no answer within ``authorizer_timeout_ms``) denies.  Only a
registration whose callees all have trusted roles is asked; the callee needs a static
role with ``register`` on the procedure's URI, and ``trusted = true``.

While a request waits for its answer, its session's input is paused, so the session's
later messages cannot overtake it; requests waiting for the same decision share one
call.  Answers are remembered per (authrole, authid, action, match, URI) for
``authorizer_cache_ttl`` seconds, at most ``authorizer_cache_entries`` of them (the
oldest go first); ``fastwamp.authorizer.flush_cache`` forgets them all.

URIs under ``wamp.`` and ``fastwamp.`` are not sent to the authorizer: such sessions get
the meta API's public defaults there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.uri import MATCH_EXACT
from ..logsafe import LogBudget
from ..wamp import messages as m
from .caller import procedure_caller
from .options import is_reserved, match_policy

if TYPE_CHECKING:
    from ..config import RealmConfig
    from .member import Member
    from .realm import Realm

log = logging.getLogger("fastwamp.authorizer")
#: Lines about the authorizer failing, for the whole router (a broken authorizer must
#: not flood the log).
_FAILURE_LOG = LogBudget(2.0)

INTERNAL_ERROR = "wamp.error.internal_error"
ACTIONS = {m.CALL: "call", m.REGISTER: "register", m.PUBLISH: "publish",
           m.SUBSCRIBE: "subscribe"}
MATCH_NAMES = ("exact", "prefix", "wildcard")

#: Held requests: [member, code, msg].
Waiter = tuple["Member", int, list]


class DynamicAuthorizer:
    """Asks the realm's authorizer procedure, remembers its answers (see the module)."""

    def __init__(self, config: RealmConfig, realm: Realm, trusted_roles: frozenset[str],
                 deny: Callable[[Member, int, list, str], bool],
                 admit: Callable[[Member, int, list], bool]) -> None:
        self.procedure = config.authorizer
        self._realm = realm
        self._trusted = trusted_roles
        self._deny = deny
        #: What an allowed request still goes through (rate limits): True to route it.
        self._admit = admit
        self._ttl = config.authorizer_cache_ttl
        self._max = config.authorizer_cache_entries
        self._timeout_ms = config.authorizer_timeout_ms
        #: key -> (allowed, expiry time)
        self.cache: dict[tuple, tuple[bool, float]] = {}
        #: key -> requests waiting for the answer
        self._pending: dict[tuple, list[Waiter]] = {}

    def check(self, member: Member, code: int, msg: list) -> bool:
        """True: allowed (a remembered answer).  False: refused, or held until the
        authorizer answers (the session's input is paused meanwhile)."""
        uri = msg[3]
        if is_reserved(uri):
            return True  # the meta API's defaults (the dealer and broker refuse the rest)
        if code == m.SUBSCRIBE or code == m.REGISTER:
            match = match_policy(msg[2])[0]
            if match is None:
                return True  # an unknown match policy: the handler answers it
        else:
            match = MATCH_EXACT
        key = (member.authrole, member.authid, code, match, uri)
        remembered = self.cache.get(key)
        clock = self._realm.router.clock
        if remembered is not None:
            if remembered[1] > clock.time():
                if remembered[0]:
                    return True
                return self._deny(member, code, msg, self._why(member, code, uri))
            del self.cache[key]
        waiters = self._pending.get(key)
        if waiters is not None:
            waiters.append((member, code, msg))
            member.pause_input()
            return False
        why_not = self._unusable()
        if why_not is not None:
            _FAILURE_LOG.log(log, logging.WARNING, "realm %s: authorizer %s %s; denying",
                             self._realm.name, self.procedure, why_not)
            return self._deny(member, code, msg, f"the authorizer is unavailable ({why_not})")
        self._pending[key] = [(member, code, msg)]
        member.pause_input()
        owner: Any = member.owner
        details = {"session": member.id, "authid": member.authid, "authrole": member.authrole,
                   "authmethod": getattr(owner, "authmethod", ""),
                   "authprovider": getattr(owner, "authprovider", "")}
        procedure_caller(self._realm.router)(
            self._realm.name, self.procedure,
            [details, uri, ACTIONS[code], {"match": MATCH_NAMES[match]}], {},
            self._timeout_ms / 1000.0,
            lambda result, error: self._answered(
                key, error[0] if error is not None else None,
                result[0] if result is not None else []))
        return False

    def _unusable(self) -> str | None:
        """Why the authorizer cannot be asked now (None: it can)."""
        reg = self._realm.dealer.lookup(self.procedure, MATCH_EXACT)
        if reg is None:
            return "is not registered"
        for callee in reg.group.callees():
            if callee.session.authrole not in self._trusted:
                return "is registered by a session whose role is not trusted"
        return None

    @staticmethod
    def _why(member: Member, code: int, uri: str) -> str:
        return f"the authorizer does not allow {member.authrole!r} to {ACTIONS[code]} {uri!r}"

    def _answered(self, key: tuple, error: str | None, args: list) -> None:
        answer = args[0] if args else None
        allowed = error is None and (answer is True or (
            type(answer) is dict and answer.get("allow") is True))
        if error is not None:
            _FAILURE_LOG.log(log, logging.WARNING, "realm %s: authorizer %s answered %s; "
                             "denying", self._realm.name, self.procedure, error)
        if self._ttl > 0:
            cache = self.cache
            while len(cache) >= self._max:
                del cache[next(iter(cache))]
            cache[key] = (allowed, self._realm.router.clock.time() + self._ttl)
        for member, code, msg in self._pending.pop(key, ()):
            if member.closed:
                continue
            try:
                if not allowed:
                    self._deny(member, code, msg, self._why(member, code, msg[3]))
                elif self._admit(member, code, msg):
                    self._realm.handle(member, code, msg)
            except m.ProtocolViolation as exc:
                member.owner.protocol_violation(str(exc))
            except Exception:  # a bug must not stop the other waiters
                log.exception("session %s: handling a request after its authorization failed",
                              member.id)
                member.owner.abort(INTERNAL_ERROR, "internal router error")
            member.resume_input()

    def flush(self) -> int:
        """Forget every remembered answer; return how many there were."""
        count = len(self.cache)
        self.cache.clear()
        return count

    def remembered(self, member: Member, code: int, uri: str, match: int) -> bool:
        """Whether a remembered answer allows this (for questions that cannot wait)."""
        entry = self.cache.get((member.authrole, member.authid, code, match, uri))
        return entry is not None and entry[0] and entry[1] > self._realm.router.clock.time()
