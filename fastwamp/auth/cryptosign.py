"""WAMP-cryptosign: the client signs a random challenge with its Ed25519 key.

* HELLO.Details.authextra.pubkey (64 hex digits) names the key; the user is found by
  it.  An unknown key is challenged all the same and fails after AUTHENTICATE.
* AUTHENTICATE carries ``hex(signature (64 bytes) || message (32 bytes))``: exactly
  192 hex digits, checked with PyNaCl (libsodium), the faster of the two libraries
  measured (``bench/README.md``).
* Channel binding ``tls-unique``: the message is ``challenge XOR channel_id`` with
  ``channel_id = SHA-256(tls-unique)`` (Autobahn's convention), the tls-unique bytes
  coming from ``transport_info["tls"]["channel_binding"]["tls-unique"]``.  Without
  them (no TLS), a client asking for channel binding is refused.
* Router authentication: when HELLO carries ``authextra.challenge`` (32 bytes, hex),
  CHALLENGE.Extra gets the router's ``pubkey`` and ``signature`` over it (XOR the
  channel id when bound).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

from .outcome import (
    CRYPTOSIGN,
    Challenge,
    Failure,
    HelloRequest,
    Identity,
    Outcome,
    failed,
)
from .users import User, UserDirectory

#: Channel binding types the router knows.
CHANNEL_BINDINGS = ("tls-unique",)
#: Length in hex digits of AUTHENTICATE's signature: 64-byte signature + 32-byte message.
SIGNATURE_HEX_LENGTH = 192

_process_key: SigningKey | None = None


def router_signing_key(seed_hex: str) -> SigningKey:
    """The router's key: from 64 hex digits, or one made once per process for ""."""
    global _process_key
    if seed_hex:
        return SigningKey(bytes.fromhex(seed_hex))
    if _process_key is None:
        _process_key = SigningKey.generate()
    return _process_key


def channel_id(transport_info: dict[str, Any], binding: str) -> bytes | None:
    """The 32-byte channel id of ``binding`` on this connection, or None."""
    tls = transport_info.get("tls")
    if not isinstance(tls, dict):
        return None
    bindings = tls.get("channel_binding")
    raw = bindings.get(binding) if isinstance(bindings, dict) else None
    if not isinstance(raw, bytes) or not raw:
        return None
    return hashlib.sha256(raw).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class CryptosignMethod:
    """Challenge with 32 random bytes; verify the Ed25519 signature over them."""

    name = CRYPTOSIGN

    def __init__(self, users: UserDirectory, router_key: SigningKey) -> None:
        self.users = users
        self.router_key = router_key
        self.router_pubkey = router_key.verify_key.encode().hex()

    def start(self, request: HelloRequest) -> Outcome | None:
        return self.challenge(request, None)

    def challenge(self, request: HelloRequest, user: User | None) -> Outcome:
        """CHALLENGE for ``request``; a good signature welcomes ``user`` (None: the user
        whose key HELLO names, if it is HELLO's authid)."""
        extra = request.authextra
        pubkey_hex = extra.get("pubkey")
        if type(pubkey_hex) is not str or len(pubkey_hex) != 64:
            return failed(CRYPTOSIGN, "authextra.pubkey is not 64 hex digits")
        try:
            pubkey = bytes.fromhex(pubkey_hex)
        except ValueError:
            return failed(CRYPTOSIGN, "authextra.pubkey is not hex")
        binding = extra.get("channel_binding")
        bound_id: bytes | None = None
        if binding is not None:
            if binding not in CHANNEL_BINDINGS:
                return failed(CRYPTOSIGN, f"unsupported channel binding {binding!r}")
            bound_id = channel_id(request.transport_info, binding)
            if bound_id is None:
                return failed(CRYPTOSIGN, f"channel binding {binding} requested on a "
                                          "connection without TLS")
        challenge = os.urandom(32)
        message = _xor(challenge, bound_id) if bound_id is not None else challenge
        out: dict[str, Any] = {"challenge": challenge.hex(), "channel_binding": binding}
        client_challenge = extra.get("challenge")
        if client_challenge is not None:
            if type(client_challenge) is not str or len(client_challenge) != 64:
                return failed(CRYPTOSIGN, "authextra.challenge is not 64 hex digits")
            try:
                to_sign = bytes.fromhex(client_challenge)
            except ValueError:
                return failed(CRYPTOSIGN, "authextra.challenge is not hex")
            if bound_id is not None:
                to_sign = _xor(to_sign, bound_id)
            signed = self.router_key.sign(to_sign)
            out["pubkey"] = self.router_pubkey
            out["signature"] = (signed.signature + to_sign).hex()
        if user is None:
            user = self.users.by_pubkey.get(pubkey)
            if user is not None and request.authid and request.authid != user.authid:
                user = None  # the key is someone else's: fail like an unknown key
        return Challenge(CRYPTOSIGN, out, _CryptosignStep(pubkey, message, user))


class _CryptosignStep:
    method = CRYPTOSIGN

    def __init__(self, pubkey: bytes, message: bytes, user: User | None) -> None:
        self.pubkey = pubkey
        self.message = message
        self.user = user

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Identity | Failure:
        if len(signature) != SIGNATURE_HEX_LENGTH:
            return failed(CRYPTOSIGN, f"signature of {len(signature)} characters "
                                      f"(expected {SIGNATURE_HEX_LENGTH} hex digits)")
        try:
            signed = bytes.fromhex(signature)
        except ValueError:
            return failed(CRYPTOSIGN, "signature is not hex")
        try:
            message = VerifyKey(self.pubkey).verify(signed[32 + 32:], signed[:64])
        except (CryptoError, ValueError, TypeError):
            return failed(CRYPTOSIGN, "bad signature")
        if not hmac.compare_digest(message, self.message):
            return failed(CRYPTOSIGN, "signature over another message")
        user = self.user
        if user is None:
            return failed(CRYPTOSIGN, f"unknown public key {self.pubkey.hex()} "
                                      "(or not this authid's)")
        return Identity(user.authid, user.authrole, CRYPTOSIGN)
