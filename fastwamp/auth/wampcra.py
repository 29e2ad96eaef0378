"""WAMP-CRA: the client signs a router challenge with HMAC-SHA256 (plain or salted key).

The challenge is a JSON object (authid, authrole, authmethod, authprovider, nonce,
timestamp, session); salted keys add ``salt``, ``iterations`` and ``keylen`` to
CHALLENGE.Extra.  An unknown authid gets a challenge that looks like a salted
user's (a salt derived from the authid with a per-process key), and fails after
AUTHENTICATE like a wrong signature: the exchange does not tell whether the user
exists.  The challenge carries the authrole HELLO asked for (or ""), not the
user's, for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import datetime, timezone
from typing import Any

from .credentials import WAMPCRA_ITERATIONS, WAMPCRA_KEYLEN, wampcra_signature
from .outcome import (
    STATIC_PROVIDER,
    WAMPCRA,
    Challenge,
    Failure,
    HelloRequest,
    Identity,
    Outcome,
    failed,
)
from .users import User, UserDirectory

#: Key of the fake salts given to unknown authids (stable for the process).
_FAKE_SALT_KEY = os.urandom(32)


def _utcnow_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fake_salt(authid: str) -> str:
    mac = hmac.new(_FAKE_SALT_KEY, authid.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return base64.b64encode(mac.digest()[:16]).decode("ascii")


class WampCraMethod:
    """Challenge with a JSON string; check base64(HMAC-SHA256(key, challenge))."""

    name = WAMPCRA

    def __init__(self, users: UserDirectory) -> None:
        self.users = users

    def start(self, request: HelloRequest) -> Outcome | None:
        authid = request.authid
        if not authid:
            return failed(WAMPCRA, "no authid in HELLO")
        user = self.users.by_authid.get(authid)
        if user is not None and not user.wampcra_key:
            user = None
        return self.challenge_for(request, user, self.users.decoy_wampcra)

    @staticmethod
    def challenge_for(request: HelloRequest, user: User | None,
                      decoy: tuple[int, int] = (WAMPCRA_ITERATIONS, WAMPCRA_KEYLEN)
                      ) -> Challenge:
        """CHALLENGE for ``request`` (HELLO's authid); a good signature with ``user``'s
        key welcomes ``user`` (None: the challenge of an unknown user, which fails)."""
        authid = request.authid or ""
        challenge = json.dumps({
            "authid": authid,
            "authrole": request.authrole or "",
            "authmethod": WAMPCRA,
            "authprovider": STATIC_PROVIDER,
            "nonce": base64.b64encode(os.urandom(24)).decode("ascii"),
            "timestamp": _utcnow_iso(),
            "session": request.session_id,
        }, ensure_ascii=False)
        extra: dict[str, Any] = {"challenge": challenge}
        if user is None:
            extra.update(salt=_fake_salt(authid), iterations=decoy[0], keylen=decoy[1])
        elif user.wampcra_salt is not None:
            salt, iterations, keylen = user.wampcra_salt
            extra.update(salt=salt, iterations=iterations, keylen=keylen)
        return Challenge(WAMPCRA, extra, _WampCraStep(challenge, user))


class _WampCraStep:
    method = WAMPCRA

    def __init__(self, challenge: str, user: User | None) -> None:
        self.challenge = challenge
        self.user = user

    def authenticate(self, signature: str, extra: dict[str, Any]) -> Identity | Failure:
        user = self.user
        key = user.wampcra_key if user is not None else base64.b64encode(os.urandom(32)).decode()
        expected = wampcra_signature(key, self.challenge)
        ok = hmac.compare_digest(expected.encode("ascii"),
                                 signature.encode("utf-8", "surrogatepass"))
        if user is None:
            return failed(WAMPCRA, "unknown authid or no wampcra key configured")
        if not ok:
            return failed(WAMPCRA, "wrong signature")
        return Identity(user.authid, user.authrole, WAMPCRA)
