"""One Ed25519 signature verification (what a cryptosign AUTHENTICATE costs the router),
with PyNaCl (libsodium) and with cryptography (OpenSSL).

    python bench/ed25519_verify.py
"""

from __future__ import annotations

import os
import timeit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import SigningKey, VerifyKey

ROUNDS = 2000


def main() -> None:
    key = SigningKey(os.urandom(32))
    message = os.urandom(32)
    signed = key.sign(message)
    pubkey = key.verify_key.encode()

    def with_pynacl() -> None:  # as fastwamp.auth.cryptosign does it: key object per attempt
        VerifyKey(pubkey).verify(message, signed.signature)

    def with_cryptography() -> None:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signed.signature, message)

    for name, fn in (("PyNaCl", with_pynacl), ("cryptography", with_cryptography)):
        best = min(timeit.repeat(fn, number=ROUNDS, repeat=7)) / ROUNDS
        print(f"{name:13s} {best * 1e6:6.1f} us per verification")


if __name__ == "__main__":
    main()
