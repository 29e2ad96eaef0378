"""WAMP-SCRAM (RFC 5802 with SHA-256; Argon2id or PBKDF2 as the KDF).

The wire format follows Autobahn|Python's client (method name ``scram``):

* HELLO: ``authid``, ``authextra.nonce`` (the client nonce);
* CHALLENGE: ``nonce`` (client nonce + router nonce), ``kdf``, ``salt`` (base64),
  ``iterations``, and ``memory`` for Argon2id;
* AUTHENTICATE: base64 ClientProof, over the AuthMessage
  ``n=<authid>,r=<client nonce>,r=<nonce>,s=<salt>,i=<iterations>,c=,r=<nonce>``;
* WELCOME.Details.authextra.scram_server_signature: base64 ServerSignature, with which
  the client authenticates the router.

The router stores StoredKey and ServerKey only.  An unknown authid is challenged with
parameters that look like a real user's and fails after AUTHENTICATE.  Channel
binding is not offered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Any

from .credentials import b64, unb64
from .outcome import SCRAM, Challenge, Failure, HelloRequest, Identity, Outcome, failed
from .users import UserDirectory

#: Longest client nonce accepted (characters).
MAX_NONCE_LENGTH = 128
_NONCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_FAKE_KEY = os.urandom(32)


class ScramMethod:
    """Challenge with the user's KDF parameters; check the ClientProof."""

    name = SCRAM

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    def start(self, request: HelloRequest) -> Outcome | None:
        authid = request.authid
        if not authid:
            return failed(SCRAM, "no authid in HELLO")
        client_nonce = request.authextra.get("nonce")
        if (type(client_nonce) is not str or not 0 < len(client_nonce) <= MAX_NONCE_LENGTH
                or not _NONCE_CHARS.issuperset(client_nonce)):
            return failed(SCRAM, "authextra.nonce is missing or not base64")
        cfg = self.users.scram.get(authid)
        if cfg is not None:
            cred = cfg.scram
            kdf, salt, iterations, memory = cred.kdf, cred.salt, cred.iterations, cred.memory
            keys: tuple[bytes, bytes, str] | None = (
                unb64(cred.stored_key, "stored_key"), unb64(cred.server_key, "server_key"),
                cfg.authrole)
        else:  # look like a user with the usual parameters
            fake = hmac.new(_FAKE_KEY, authid.encode("utf-8", "surrogatepass"),
                            hashlib.sha256).digest()
            kdf, iterations, memory = self.users.decoy_scram
            salt = b64(fake[:16])
            keys = None
        nonce = client_nonce + b64(os.urandom(18))
        extra: dict[str, Any] = {"nonce": nonce, "kdf": kdf, "salt": salt,
                                 "iterations": iterations}
        if kdf == "argon2id-13":
            extra["memory"] = memory
        auth_message = (f"n={authid},r={client_nonce},r={nonce},s={salt},i={iterations},"
                        f"c=,r={nonce}").encode("utf-8", "surrogatepass")
        return Challenge(SCRAM, extra, _ScramStep(authid, auth_message, keys))


class _ScramStep:
    method = SCRAM

    def __init__(self, authid: str, auth_message: bytes,
                 keys: tuple[bytes, bytes, str] | None) -> None:
        self.authid = authid
        self.auth_message = auth_message
        self.keys = keys

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Identity | Failure:
        try:
            proof = base64.b64decode(signature.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return failed(SCRAM, "the proof is not base64")
        keys = self.keys
        stored_key = keys[0] if keys is not None else os.urandom(32)
        client_signature = hmac.new(stored_key, self.auth_message, hashlib.sha256).digest()
        if len(proof) != len(client_signature):
            return failed(SCRAM, f"a proof of {len(proof)} bytes (expected 32)")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)
        if keys is None:
            return failed(SCRAM, "unknown authid or no scram credential configured")
        if not ok:
            return failed(SCRAM, "wrong proof")
        server_signature = hmac.new(keys[1], self.auth_message, hashlib.sha256).digest()
        return Identity(self.authid, keys[2], SCRAM,
                        authextra={"scram_server_signature": b64(server_signature)})
