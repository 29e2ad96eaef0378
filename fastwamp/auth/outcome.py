"""What an authentication step decides: welcome, challenge, failure, or wait.

The session (``fastwamp.router.session``) sends the decision: WELCOME for an
:class:`Identity`, CHALLENGE for a :class:`Challenge` (and hands the client's
AUTHENTICATE to its ``pending`` step), ABORT for a :class:`Failure`; for a
:class:`Deferred` it waits for the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..wamp import uris

#: Method names as they appear in HELLO.Details.authmethods and WELCOME.
ANONYMOUS = "anonymous"
TICKET = "ticket"
WAMPCRA = "wampcra"
CRYPTOSIGN = "cryptosign"
SCRAM = "scram"
TLS = "tls"
#: Methods a realm may enable with its ``authmethods`` key (anonymous has its own key).
CONFIGURABLE_METHODS = (TICKET, WAMPCRA, CRYPTOSIGN, SCRAM, TLS)
#: WELCOME.Details.authprovider of users from the configuration.
STATIC_PROVIDER = "static"


@dataclass
class HelloRequest:
    """What HELLO asks for, with what the router knows of the connection."""

    realm: str
    #: HELLO.Details.authid / authrole (None when absent).
    authid: str | None
    authrole: str | None
    #: HELLO.Details.authextra ({} when absent); values are the client's, unchecked.
    authextra: dict[str, Any]
    #: The transport's description of the connection (peer, and "tls" when on TLS).
    transport_info: dict[str, Any]
    #: The id the session gets if it is welcomed.
    session_id: int


@dataclass
class Identity:
    """An authenticated client: what WELCOME reports and the session becomes."""

    authid: str
    authrole: str
    authmethod: str
    authprovider: str = STATIC_PROVIDER
    authextra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    """A refusal: ABORT ``reason`` with ``message`` to the client (it never says whether
    the user exists); ``detail`` is for the router's log only."""

    reason: str
    message: str
    detail: str = ""
    #: The method that refused ("" when no method was tried).
    method: str = ""


def failed(method: str, detail: str) -> Failure:
    """The one answer to wrong or unknown credentials of ``method``."""
    return Failure(uris.AUTHENTICATION_FAILED, f"{method} authentication failed", detail,
                   method)


class PendingStep(Protocol):
    """The router's half of a challenge: it checks the client's AUTHENTICATE."""

    method: str

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Outcome: ...


@dataclass
class Challenge:
    """Send ``[CHALLENGE, method, extra]`` and give the AUTHENTICATE to ``pending``."""

    method: str
    extra: dict[str, Any]
    pending: PendingStep


@dataclass
class Deferred:
    """Not decided yet: the session waits (accepting nothing but ABORT and GOODBYE)
    and calls ``start(resume)``; the work started (a call to a dynamic authenticator)
    later calls ``resume`` with the outcome, once."""

    start: Callable[[Callable[[Outcome], None]], None]


Outcome = Identity | Challenge | Failure | Deferred
