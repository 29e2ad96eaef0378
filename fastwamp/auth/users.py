"""A realm's users, indexed for each authentication method."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..config import UserConfig
from .credentials import (
    TICKET_ITERATIONS,
    WAMPCRA_ITERATIONS,
    WAMPCRA_KEYLEN,
    TicketHash,
    hash_ticket,
    normalize_fingerprint,
    parse_pubkey,
)


@dataclass(frozen=True)
class User:
    """One configured user with its credentials parsed."""

    authid: str
    authrole: str
    ticket: TicketHash | None
    #: WAMP-CRA: the HMAC key and, when salted, (salt, iterations, keylen).
    wampcra_key: str
    wampcra_salt: tuple[str, int, int] | None


_decoy_tickets: dict[int, TicketHash] = {}


def decoy_ticket(iterations: int) -> TicketHash:
    """A ticket hash with ``iterations`` that no ticket matches (made once per count)."""
    decoy = _decoy_tickets.get(iterations)
    if decoy is None:
        decoy = _decoy_tickets[iterations] = TicketHash.parse(hash_ticket("", iterations))
    return decoy


class UserDirectory:
    """Users by authid, by cryptosign public key and by TLS certificate.

    Built from validated configuration (``fastwamp.config`` checked every value).
    """

    def __init__(self, users: list[UserConfig]) -> None:
        self.by_authid: dict[str, User] = {}
        self.by_pubkey: dict[bytes, User] = {}
        self.by_fingerprint: dict[str, User] = {}
        self.by_subject: dict[str, User] = {}
        #: authid -> the parsed SCRAM credential config (kept as configured).
        self.scram: dict[str, UserConfig] = {}
        for cfg in users:
            cra = cfg.wampcra
            user = User(
                cfg.authid,
                cfg.authrole,
                TicketHash.parse(cfg.ticket) if cfg.ticket else None,
                cra.key,
                (cra.salt, cra.iterations, cra.keylen) if cra.key and cra.salt else None,
            )
            self.by_authid[cfg.authid] = user
            for key in cfg.cryptosign_pubkeys:
                self.by_pubkey[parse_pubkey(key)] = user
            for fingerprint in cfg.tls_fingerprints:
                self.by_fingerprint[normalize_fingerprint(fingerprint)] = user
            for subject in cfg.tls_subjects:
                self.by_subject[subject] = user
            if cfg.scram.kdf:
                self.scram[cfg.authid] = cfg
        # Decoys: what an unknown authid is challenged (and checked) with, the parameters
        # most users have, so that they do not tell whether a user exists.
        tickets = Counter(u.ticket.iterations for u in self.by_authid.values() if u.ticket)
        #: PBKDF2 iterations of the hash an unknown user's ticket is checked against.
        self.decoy_ticket_iterations = (tickets.most_common(1)[0][0] if tickets
                                        else TICKET_ITERATIONS)
        salted = Counter(u.wampcra_salt[1:] for u in self.by_authid.values() if u.wampcra_salt)
        #: (iterations, keylen) of an unknown user's WAMP-CRA challenge.
        self.decoy_wampcra: tuple[int, int] = (salted.most_common(1)[0][0] if salted
                                               else (WAMPCRA_ITERATIONS, WAMPCRA_KEYLEN))
        scram = Counter((c.scram.kdf, c.scram.iterations, c.scram.memory)
                        for c in self.scram.values())
        #: (kdf, iterations, memory) of an unknown user's WAMP-SCRAM challenge.
        self.decoy_scram: tuple[str, int, int] = (scram.most_common(1)[0][0] if scram
                                                  else ("argon2id-13", 3, 65536))
