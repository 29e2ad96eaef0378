"""Identifier generation (WAMP ids are integers in [1, 2**53])."""

from __future__ import annotations

import os
import random
import struct

MAX_ID = 2**53

#: Publication ids need uniformity, not secrecy: a PRNG seeded from the OS costs 0.1 us
#: where SystemRandom costs ~3 us (one os.urandom call per id).
_fast = random.Random(os.urandom(16))
_bits = _fast.getrandbits

#: Session, registration and subscription ids come from the OS's randomness, read
#: 8 KiB at a time (one os.urandom call per 1,024 ids instead of one per id) and
#: turned into ids all at once; random_id() takes the next one.
_POOL_IDS = 1024
_unpack_pool = struct.Struct(f"<{_POOL_IDS}Q").unpack
_ids: list[int] = []
if hasattr(os, "register_at_fork"):  # a forked child must not hand out its parent's ids
    os.register_at_fork(after_in_child=_ids.clear)
#: A seeded generator set by :func:`use_generator` (tests that replay a run), or None.
_rng: random.Random | None = None


def use_generator(rng: random.Random | None) -> random.Random | None:
    """Draw global-scope ids from ``rng`` (a seeded ``random.Random``, for replayable
    tests) instead of the OS's randomness, or from the OS again with None.  Returns
    the generator used before."""
    global _rng
    previous, _rng = _rng, rng
    return previous


def random_id() -> int:
    """A global-scope id, drawn uniformly from [1, 2**53] with the OS's randomness
    (session, registration and subscription ids)."""
    if _rng is not None:
        return _rng.randint(1, MAX_ID)
    if not _ids:
        _ids.extend([(word >> 11) + 1 for word in _unpack_pool(os.urandom(8 * _POOL_IDS))])
    return _ids.pop()


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
            value = random_id()
            if value not in used:
                used.add(value)
                return value

    def release(self, value: int) -> None:
        self._used.discard(value)
