"""A realm's users, indexed for each authentication method."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import UserConfig
from .credentials import TicketHash, normalize_fingerprint, parse_pubkey


@dataclass(frozen=True)
class User:
    """One configured user with its credentials parsed."""

    authid: str
    authrole: str
    ticket: TicketHash | None
    #: WAMP-CRA: the HMAC key and, when salted, (salt, iterations, keylen).
    wampcra_key: str
    wampcra_salt: tuple[str, int, int] | None


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
