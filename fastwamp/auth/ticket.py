"""Ticket authentication: the client proves itself with a shared secret (over TLS!)."""

from __future__ import annotations

from typing import Any

from .credentials import TICKET_ITERATIONS, TicketHash, hash_ticket
from .outcome import TICKET, Challenge, Failure, HelloRequest, Identity, Outcome, failed
from .users import User, UserDirectory

#: Checked when the authid is unknown, so that an unknown user costs the same time.
_DUMMY = TicketHash.parse(hash_ticket("", TICKET_ITERATIONS))


class TicketMethod:
    """``[CHALLENGE, "ticket", {}]``, then the ticket is checked against its hash."""

    name = TICKET

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    def start(self, request: HelloRequest) -> Outcome | None:
        if not request.authid:
            return failed(TICKET, "no authid in HELLO")
        return Challenge(TICKET, {}, _TicketStep(request.authid,
                                                 self.users.by_authid.get(request.authid)))


class _TicketStep:
    method = TICKET

    def __init__(self, authid: str, user: User | None) -> None:
        self.authid = authid
        self.user = user

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Identity | Failure:
        user = self.user
        expected = user.ticket if user is not None else None
        if expected is None:
            _DUMMY.verify(signature)
            return failed(TICKET, "unknown authid or no ticket configured")
        if not expected.verify(signature):
            return failed(TICKET, "wrong ticket")
        assert user is not None
        return Identity(user.authid, user.authrole, TICKET)
