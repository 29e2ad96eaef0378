"""A dynamic authenticator: a procedure registered by a trusted session decides.

The router calls ``authenticator(realm, authid, details)`` (``details``:
``authmethod``, ``authid``, ``authrole``, ``authextra``, ``session``,
``transport`` {``peer``}, and for ticket the ``ticket``) through the dealer, with
the realm's ``authenticator_timeout``.  The answer is a role (a string) or a dict:

* ``role`` (or ``authrole``), required; ``authid`` (default: HELLO's); ``extra``
  (WELCOME.Details.authextra);
* wampcra: ``secret``, the HMAC key (the secret, or for salted WAMP-CRA the derived
  key with ``salt``, ``iterations``, ``keylen``), asked before the CHALLENGE;
* cryptosign: asked before the CHALLENGE with ``authextra.pubkey``; the signature is
  then checked against that key.

An ERROR (the authenticator refuses), a timeout, a missing registration or an
answer of the wrong shape is ABORT ``wamp.error.authentication_failed``, with a log
line that says which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..logsafe import clip
from .cryptosign import CryptosignMethod
from .outcome import (
    CRYPTOSIGN,
    TICKET,
    WAMPCRA,
    Challenge,
    Deferred,
    Failure,
    HelloRequest,
    Identity,
    Outcome,
    failed,
)
from .users import User
from .wampcra import WampCraMethod

#: ``callback(result, error)``: ``(args, kwargs)`` of a RESULT, or ``(uri, args)`` of an
#: ERROR (see ``fastwamp.router.caller``).
Callback = Callable[[tuple[list, dict] | None, tuple[str, list] | None], None]
#: ``call(realm, procedure, args, kwargs, timeout, callback)``.
ProcedureCall = Callable[[str, str, list, dict, float, Callback], None]
#: WELCOME authprovider of dynamically authenticated sessions.
DYNAMIC_PROVIDER = "dynamic"


class DynamicAuthenticator:
    """Asks the configured procedure about one HELLO (or one ticket)."""

    def __init__(self, call: ProcedureCall, realm: str, procedure: str, timeout: float) -> None:
        self._call = call
        self.realm = realm
        self.procedure = procedure
        self.timeout = timeout

    def ask(self, method: str, request: HelloRequest, decide: Callable[[dict], Outcome],
            **more: Any) -> Deferred:
        """A :class:`Deferred` that calls the authenticator, then ``decide(answer)``
        (answer: the result as a dict with a ``role``)."""
        details = {
            "authmethod": method,
            "authid": request.authid,
            "authrole": request.authrole,
            "authextra": request.authextra,
            "session": request.session_id,
            "transport": {"peer": str(request.transport_info.get("peer", "?"))},
            **more,
        }
        args = [request.realm, request.authid, details]

        def start(resume: Callable[[Outcome], None]) -> None:
            def answered(result: tuple[list, dict] | None,
                         error: tuple[str, list] | None) -> None:
                if error is not None:
                    uri, error_args = error
                    resume(failed(method, f"authenticator {self.procedure} answered {uri}"
                                          f"{': ' + clip(error_args[0]) if error_args else ''}"))
                    return
                assert result is not None
                answer = _answer(*result)
                if answer is None:
                    resume(failed(method, f"authenticator {self.procedure} returned no role"))
                    return
                resume(decide(answer))

            self._call(self.realm, self.procedure, args, {}, self.timeout, answered)

        return Deferred(start)


def _answer(args: list, kwargs: dict) -> dict | None:
    """The authenticator's answer as a dict with a string ``role`` (None if unusable)."""
    value: Any = args[0] if args else (kwargs or None)
    if type(value) is str:
        value = {"role": value}
    if type(value) is not dict:
        return None
    role = value.get("role", value.get("authrole"))
    if type(role) is not str or not role:
        return None
    authid = value.get("authid")
    if authid is not None and type(authid) is not str:
        return None
    extra = value.get("extra", {})
    return {**value, "role": role, "extra": extra if type(extra) is dict else {}}


def _identity(answer: dict, request: HelloRequest, method: str) -> Identity:
    return Identity(answer.get("authid") or request.authid or "", answer["role"], method,
                    DYNAMIC_PROVIDER, answer["extra"])


class DynamicTicketMethod:
    """Ticket: CHALLENGE first, then the authenticator gets the ticket."""

    name = TICKET

    def __init__(self, dynamic: DynamicAuthenticator) -> None:
        self.dynamic = dynamic

    def start(self, request: HelloRequest) -> Outcome | None:
        if not request.authid:
            return failed(TICKET, "no authid in HELLO")
        return Challenge(TICKET, {}, _DynamicTicketStep(self.dynamic, request))


class _DynamicTicketStep:
    method = TICKET

    def __init__(self, dynamic: DynamicAuthenticator, request: HelloRequest) -> None:
        self.dynamic = dynamic
        self.request = request

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Outcome:
        request = self.request
        return self.dynamic.ask(TICKET, request,
                                lambda answer: _identity(answer, request, TICKET),
                                ticket=signature)


class DynamicWampCraMethod:
    """WAMP-CRA: the authenticator gives the key (and salt) before the CHALLENGE."""

    name = WAMPCRA

    def __init__(self, dynamic: DynamicAuthenticator) -> None:
        self.dynamic = dynamic

    def start(self, request: HelloRequest) -> Outcome | None:
        if not request.authid:
            return failed(WAMPCRA, "no authid in HELLO")

        def decide(answer: dict) -> Outcome:
            key = answer.get("secret")
            if type(key) is not str or not key:
                return failed(WAMPCRA, f"authenticator {self.dynamic.procedure} gave no secret")
            salted = None
            if answer.get("salt") is not None:
                salt, iterations, keylen = (answer.get("salt"), answer.get("iterations", 1000),
                                            answer.get("keylen", 32))
                if type(salt) is not str or type(iterations) is not int or type(keylen) is not int:
                    return failed(WAMPCRA, f"authenticator {self.dynamic.procedure} gave a "
                                           "malformed salt, iterations or keylen")
                salted = (salt, iterations, keylen)
            identity = _identity(answer, request, WAMPCRA)
            user = User(identity.authid, identity.authrole, None, key, salted)
            challenge = WampCraMethod.challenge_for(request, user)
            return _with_identity(challenge, identity)

        return self.dynamic.ask(WAMPCRA, request, decide)


class DynamicCryptosignMethod:
    """Cryptosign: the authenticator approves the public key before the CHALLENGE."""

    name = CRYPTOSIGN

    def __init__(self, dynamic: DynamicAuthenticator, static: CryptosignMethod) -> None:
        self.dynamic = dynamic
        self.static = static

    def start(self, request: HelloRequest) -> Outcome | None:
        # Check the HELLO (key, channel binding, router challenge) before asking anyone.
        probe = self.static.challenge(request, User("", "", None, "", None))
        if not isinstance(probe, Challenge):
            return probe

        def decide(answer: dict) -> Outcome:
            identity = _identity(answer, request, CRYPTOSIGN)
            if not identity.authid:
                identity.authid = str(request.authextra.get("pubkey"))
            return _with_identity(probe, identity)

        return self.dynamic.ask(CRYPTOSIGN, request, decide)


def _with_identity(challenge: Outcome, identity: Identity) -> Outcome:
    """``challenge`` whose success welcomes ``identity`` (provider, extra included)."""
    if not isinstance(challenge, Challenge):
        return challenge
    inner = challenge.pending

    class _Step:
        method = inner.method

        def authenticate(self, signature: str, extra: dict[str, Any]) -> Outcome:
            outcome = inner.authenticate(signature, extra)
            return identity if isinstance(outcome, Identity) else outcome

    return Challenge(challenge.method, challenge.extra, _Step())


__all__ = ["DynamicAuthenticator", "DynamicCryptosignMethod", "DynamicTicketMethod",
           "DynamicWampCraMethod", "Failure"]
