"""Identifier generation (WAMP ids are integers in [1, 2**53])."""

from __future__ import annotations

import random

MAX_ID = 2**53

_rng = random.SystemRandom()
#: Publication ids need uniformity, not secrecy: a PRNG seeded from the OS costs 0.1 us
#: where SystemRandom costs ~3 us (one os.urandom call per id).
_fast = random.Random(_rng.getrandbits(128))
_bits = _fast.getrandbits


def random_id() -> int:
    """A global-scope id, drawn uniformly from [1, 2**53] with the OS's randomness
    (session ids)."""
    return _rng.randint(1, MAX_ID)


def publication_id() -> int:
    """A publication id, uniform in [1, 2**53] (a fast PRNG seeded from the OS)."""
    return _bits(53) + 1


class IdPool:
    """Hands out random ids unique among those currently held (registrations, subscriptions)."""

    __slots__ = ("_used",)

    def __init__(self) -> None:
        self._used: set[int] = set()

    def take(self) -> int:
        used = self._used
        while True:
            value = _rng.randint(1, MAX_ID)
            if value not in used:
                used.add(value)
                return value

    def release(self, value: int) -> None:
        self._used.discard(value)
