"""A realm's authenticator: picks the method for a HELLO and starts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..config import RealmConfig
from ..logsafe import clip
from ..wamp import uris
from .cryptosign import CryptosignMethod, router_signing_key
from .dynamic import (
    DynamicAuthenticator,
    DynamicCryptosignMethod,
    DynamicTicketMethod,
    DynamicWampCraMethod,
    ProcedureCall,
)
from .outcome import (
    ANONYMOUS,
    CRYPTOSIGN,
    SCRAM,
    TICKET,
    TLS,
    WAMPCRA,
    Failure,
    HelloRequest,
    Identity,
    Outcome,
)
from .scram import ScramMethod
from .ticket import TicketMethod
from .tls import TlsMethod
from .users import UserDirectory
from .wampcra import WampCraMethod

#: Entries of HELLO.Details.authmethods looked at (the rest are ignored).
MAX_AUTHMETHODS = 16


def _no_call(realm: str, procedure: str, args: list, kwargs: dict, timeout: float,
             callback: Any) -> None:
    callback(None, ("fastwamp.error.unavailable", ["no way to call the authenticator"]))


class Method(Protocol):
    """One authentication method: ``start`` returns None when it cannot serve this
    HELLO (the client's next method is tried)."""

    name: str

    def start(self, request: HelloRequest) -> Outcome | None: ...


class RealmAuthenticator:
    """Built from a :class:`RealmConfig` (validated); rebuilt when it is reloaded."""

    def __init__(self, config: RealmConfig, call: ProcedureCall | None = None) -> None:
        """``call`` lets the router call a dynamic authenticator (``config.authenticator``;
        without ``call`` the methods it decides refuse everyone)."""
        self.realm = config.name
        self.allow_anonymous = config.allow_anonymous
        #: The authrole anonymous sessions get (authorization's roles decide its rights).
        self.anonymous_authrole = config.anonymous_authrole
        self.users = UserDirectory(config.users)
        factories: dict[str, Callable[[], Method]] = {
            TICKET: lambda: TicketMethod(self.users),
            WAMPCRA: lambda: WampCraMethod(self.users),
            CRYPTOSIGN: lambda: CryptosignMethod(
                self.users, router_signing_key(config.cryptosign_router_key)),
            SCRAM: lambda: ScramMethod(self.users),
            TLS: lambda: TlsMethod(self.users),
        }
        self.methods: dict[str, Method] = {name: factories[name]()
                                           for name in config.authmethods}
        if config.authenticator:
            dynamic = DynamicAuthenticator(call or _no_call,
                                           config.authenticator_realm or config.name,
                                           config.authenticator, config.authenticator_timeout)
            for name in config.authenticator_methods:
                if name == TICKET:
                    self.methods[name] = DynamicTicketMethod(dynamic)
                elif name == WAMPCRA:
                    self.methods[name] = DynamicWampCraMethod(dynamic)
                elif name == CRYPTOSIGN:
                    static = self.methods[name]
                    assert isinstance(static, CryptosignMethod)
                    self.methods[name] = DynamicCryptosignMethod(dynamic, static)

    def anonymous_only(self, authmethods: list[Any],
                       anonymous_authid: Callable[[], str]) -> Identity | None:
        """:meth:`hello`'s decision on the usual HELLO, which offers only "anonymous",
        on a realm that allows it (no :class:`HelloRequest` needed); None for any other."""
        if self.allow_anonymous and len(authmethods) == 1 and authmethods[0] == ANONYMOUS:
            return Identity(anonymous_authid(), self.anonymous_authrole, ANONYMOUS)
        return None

    def hello(self, authmethods: list[Any], request: HelloRequest,
              anonymous_authid: Callable[[], str]) -> Outcome:
        """Decide a HELLO: the first of the client's ``authmethods`` the realm enables
        decides (an :class:`Identity`, a challenge, or a failure)."""
        identity = self.anonymous_only(authmethods, anonymous_authid)
        if identity is not None:
            return identity
        seen: set[str] = set()
        for name in authmethods[:MAX_AUTHMETHODS]:
            if type(name) is not str or name in seen:
                continue
            seen.add(name)
            if name == ANONYMOUS:
                if self.allow_anonymous:
                    return Identity(anonymous_authid(), self.anonymous_authrole, ANONYMOUS)
                continue
            method = self.methods.get(name)
            if method is None:
                continue
            outcome = method.start(request)
            if outcome is not None:
                return outcome
        offered = [n for n in authmethods[:MAX_AUTHMETHODS] if type(n) is str]
        return Failure(uris.NO_AUTH_METHOD,
                       f"none of the authmethods {clip(offered)} is accepted on realm "
                       f"{self.realm!r}", "no usable authmethod")
