"""Ticket authentication: the client proves itself with a shared secret (over TLS!)."""

from __future__ import annotations

from typing import Any

from .outcome import TICKET, Challenge, Failure, HelloRequest, Identity, Outcome, failed
from .users import User, UserDirectory, decoy_ticket


class TicketMethod:
    """``[CHALLENGE, "ticket", {}]``, then the ticket is checked against its hash."""

    name = TICKET

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    def start(self, request: HelloRequest) -> Outcome | None:
        if not request.authid:
            return failed(TICKET, "no authid in HELLO")
        return Challenge(TICKET, {}, _TicketStep(request.authid,
                                                 self.users.by_authid.get(request.authid),
                                                 self.users))


class _TicketStep:
    method = TICKET

    def __init__(self, authid: str, user: User | None, users: UserDirectory) -> None:
        self.authid = authid
        self.user = user
        self.users = users

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Identity | Failure:
        user = self.user
        expected = user.ticket if user is not None else None
        if expected is None:
            # the same cost as a user's ticket
            decoy_ticket(self.users.decoy_ticket_iterations).verify(signature)
            return failed(TICKET, "unknown authid or no ticket configured")
        if not expected.verify(signature):
            return failed(TICKET, "wrong ticket")
        assert user is not None
        return Identity(user.authid, user.authrole, TICKET)
