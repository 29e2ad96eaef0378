"""Stored credentials: how secrets are hashed for the configuration, and checked.

The router never needs a secret in clear text:

* ticket: a salted PBKDF2-HMAC-SHA256 hash, ``pbkdf2-sha256$<iterations>$<salt>$<hash>``
  (base64 salt and hash), checked in constant time;
* wampcra: the key the router signs challenges with: for salted WAMP-CRA the
  derived key (what Autobahn's ``auth.derive_key`` returns), for plain WAMP-CRA the
  secret itself;
* cryptosign: Ed25519 public keys;
* scram: StoredKey and ServerKey (RFC 5802), derived as Autobahn|Python's client
  derives them;
* tls: SHA-256 fingerprints (or subjects) of client certificates.

Hashing uses :mod:`hashlib` (PBKDF2), ``argon2-cffi`` (Argon2id) and PyNaCl (Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

#: Scheme name of ticket hashes.
TICKET_SCHEME = "pbkdf2-sha256"
#: PBKDF2 iterations of new ticket hashes: every ticket attempt costs the router one
#: such hash (about 8 ms at 20,000 on a 2020s core), so a long random ticket (as
#: ``fastwamp hash-secret ticket --generate`` makes) is the better protection.
TICKET_ITERATIONS = 20_000
#: Bounds accepted in a configured ticket hash (the upper one bounds the CPU an
#: attempt costs).
TICKET_ITERATIONS_MIN = 1_000
TICKET_ITERATIONS_MAX = 2_000_000
#: Salted WAMP-CRA defaults (Autobahn's derive_key defaults).
WAMPCRA_ITERATIONS = 1000
WAMPCRA_KEYLEN = 32
#: WAMP-SCRAM key derivation functions, as named on the wire.
SCRAM_KDFS = ("argon2id-13", "pbkdf2")


def b64(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Decode standard base64; ValueError naming ``what`` if it is not."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not valid base64")


def unhex(text: str, size: int, what: str) -> bytes:
    """Decode ``size`` bytes of hex; ValueError naming ``what`` if they are not."""
    if len(text) != 2 * size:
        raise ValueError(f"{what} must be {2 * size} hex digits, got {len(text)} characters")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} is not hex")


# -- ticket ---------------------------------------------------------------------


@dataclass(frozen=True)
class TicketHash:
    """A parsed ticket hash; :meth:`verify` checks a ticket against it."""

    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> TicketHash:
        """Parse ``pbkdf2-sha256$<iterations>$<salt>$<hash>``; ValueError if malformed."""
        parts = text.split("$")
        if len(parts) != 4 or parts[0] != TICKET_SCHEME:
            raise ValueError(f"must look like '{TICKET_SCHEME}$<iterations>$<salt>$<hash>' "
                             "(made by `fastwamp hash-secret ticket`)")
        try:
            iterations = int(parts[1])
        except ValueError:
            raise ValueError("the iteration count is not an integer")
        if not TICKET_ITERATIONS_MIN <= iterations <= TICKET_ITERATIONS_MAX:
            raise ValueError(f"the iteration count must be between {TICKET_ITERATIONS_MIN} "
                             f"and {TICKET_ITERATIONS_MAX}, got {iterations}")
        salt = unb64(parts[2], "the salt")
        digest = unb64(parts[3], "the hash")
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("the salt or the hash is too short")
        return cls(iterations, salt, digest)

    def verify(self, ticket: str) -> bool:
        """Whether ``ticket`` is the one hashed (constant-time comparison)."""
        computed = hashlib.pbkdf2_hmac("sha256", ticket.encode("utf-8", "surrogatepass"),
                                       self.salt, self.iterations, len(self.digest))
        return hmac.compare_digest(computed, self.digest)


def hash_ticket(ticket: str, iterations: int = TICKET_ITERATIONS,
                salt: bytes | None = None) -> str:
    """The stored form of ``ticket``: ``pbkdf2-sha256$<iterations>$<salt>$<hash>``."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", ticket.encode("utf-8"), salt, iterations, 32)
    return f"{TICKET_SCHEME}${iterations}${b64(salt)}${b64(digest)}"


# -- wampcra --------------------------------------------------------------------


def derive_wampcra_key(secret: str, salt: str, iterations: int = WAMPCRA_ITERATIONS,
                       keylen: int = WAMPCRA_KEYLEN) -> str:
    """The salted WAMP-CRA key: base64 of PBKDF2-HMAC-SHA256 over the UTF-8 secret and
    the UTF-8 salt (the same value as Autobahn's ``auth.derive_key``)."""
    raw = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt.encode("utf-8"),
                              iterations, keylen)
    return b64(raw)


def wampcra_signature(key: str, challenge: str) -> str:
    """The WAMP-CRA signature: base64(HMAC-SHA256(key, challenge)), both UTF-8."""
    return b64(hmac.new(key.encode("utf-8"), challenge.encode("utf-8"), hashlib.sha256).digest())


def new_wampcra_salt() -> str:
    """A random salt for a new WAMP-CRA key (text: the salt is used as UTF-8)."""
    return b64(os.urandom(16))


# -- cryptosign, tls --------------------------------------------------------------


def parse_pubkey(text: str) -> bytes:
    """An Ed25519 public key from 64 hex digits."""
    return unhex(text.lower(), 32, "an Ed25519 public key")


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits (colons dropped)."""
    clean = text.replace(":", "").lower()
    unhex(clean, 32, "a SHA-256 fingerprint")
    return clean


# -- scram ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScramKeys:
    """What the router stores for WAMP-SCRAM: the KDF parameters and two keys."""

    kdf: str
    salt: str  # base64
    iterations: int
    memory: int
    stored_key: bytes
    server_key: bytes


def scram_salted_password(password: str, kdf: str, salt: str, iterations: int,
                          memory: int) -> bytes:
    """The SaltedPassword of WAMP-SCRAM as Autobahn|Python's client computes it.

    argon2id-13: the unpadded base64 of the 32-byte Argon2id hash (parallelism 1), as
    it appears in the encoded Argon2 string; pbkdf2: raw PBKDF2-HMAC-SHA256 bytes.
    """
    secret = password.encode("utf-8")
    raw_salt = unb64(salt, "the salt")
    if kdf == "argon2id-13":
        from argon2.low_level import Type, hash_secret

        encoded = hash_secret(secret=secret, salt=raw_salt, time_cost=iterations,
                              memory_cost=memory, parallelism=1, hash_len=32,
                              type=Type.ID, version=19)
        return encoded.split(b"$")[-1]
    if kdf == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha256", secret, raw_salt, iterations, 32)
    raise ValueError(f"unknown kdf {kdf!r} (known: {', '.join(SCRAM_KDFS)})")


def derive_scram_keys(password: str, kdf: str = "argon2id-13", iterations: int = 3,
                      memory: int = 65536, salt: str | None = None) -> ScramKeys:
    """StoredKey and ServerKey for ``password`` (RFC 5802 with SHA-256)."""
    salt = b64(os.urandom(16)) if salt is None else salt
    salted = scram_salted_password(password, kdf, salt, iterations, memory)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return ScramKeys(kdf, salt, iterations, memory if kdf == "argon2id-13" else 0,
                     stored_key, server_key)
