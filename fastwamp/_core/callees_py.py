# cython: annotation_typing=False
"""Callee selection for shared registrations (WAMP §5.1) and call re-routing (§5.10).

Reference implementation; ``callees_c.pxd`` types it and the same source is
compiled as ``fastwamp._core.callees_c``. Import through ``fastwamp._core.callees``.

The group only selects: it never changes ``Callee.inflight`` (the router counts
invocations), builds no errors and queues nothing.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Container
from typing import Any

INVOKE_SINGLE = 0
INVOKE_ROUNDROBIN = 1
INVOKE_RANDOM = 2
INVOKE_FIRST = 3
INVOKE_LAST = 4
INVOKE_LEAST_INFLIGHT = 5
INVOKE_P2C = 6
INVOKE_SHARDED = 7

#: ``REGISTER.Options.invoke`` strings mapped to the ``INVOKE_*`` codes.
INVOKE_POLICIES = {
    "single": INVOKE_SINGLE,
    "roundrobin": INVOKE_ROUNDROBIN,
    "random": INVOKE_RANDOM,
    "first": INVOKE_FIRST,
    "last": INVOKE_LAST,
    "least_inflight": INVOKE_LEAST_INFLIGHT,
    "p2c": INVOKE_P2C,
    # Bondy's name for sharding by routing key; fastwamp hashes by rendezvous
    # (see CalleeGroup.select_keyed), which keeps the 1/N property for any callee.
    "jump_consistent_hash": INVOKE_SHARDED,
}

_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN64 = 0x9E3779B97F4A7C15  # 2**64 / golden ratio
_MIX64_A = 0xBF58476D1CE4E5B9  # splitmix64's finalizer constants
_MIX64_B = 0x94D049BB133111EB

_default_rng = random.Random()


class Callee:
    """One callee session; shared by all of that session's registrations.

    ``inflight`` counts the session's outstanding invocations and is never
    negative. The router increments and decrements it; ``CalleeGroup.select``
    only reads it.
    """

    __slots__ = ("session", "inflight", "ident")

    def __init__(self, session: Any, ident: int = 0) -> None:
        # Any: the core is session-agnostic; the router stores its RouterSession here.
        self.session = session
        self.inflight = 0
        #: A stable number naming the callee the same way everywhere (the router uses
        #: the session id, unique in a cluster): what keyed selection hashes.
        self.ident = ident

    def __repr__(self) -> str:
        return f"<Callee session={self.session!r} inflight={self.inflight}>"


class CalleeGroup:
    """The callees of one registration, in rank order, and its invoke policy.

    A callee's rank is when it registered (the router passes wall-clock time, so
    that nodes of a cluster order the same callees the same way); callees added
    without a rank, or with equal ranks, keep the order they were added in.

    Args:
        policy: an ``INVOKE_*`` code, fixed for the group's lifetime.
        rng: source of randomness for ``random`` and ``p2c`` (inject a seeded
            ``random.Random`` for deterministic tests).
    """

    __slots__ = ("policy", "_callees", "_ranks", "_members", "_cursor", "_random")

    def __init__(self, policy: int, rng: random.Random | None = None) -> None:
        if policy < 0 or policy > 7:
            raise ValueError(f"unknown invoke policy {policy!r}")
        self.policy = policy
        self._callees: list[Callee] = []
        self._ranks: list[float] = []  # parallel to _callees, ascending
        self._members: set[Callee] = set()
        # Round-robin position: index of the next callee in ``_callees``. It may
        # equal len(_callees), so that a callee appended after the last one served
        # is next in the rotation; select() wraps it to 0 lazily.
        self._cursor = 0
        self._random = (_default_rng if rng is None else rng).random

    def add(self, callee: Callee, rank: float = float("inf")) -> None:
        """Add ``callee`` after every callee of lower or equal ``rank`` (without a
        rank: after all of them, joining the rotation after the current last one).

        Raises:
            ValueError: ``callee`` is already in the group.
        """
        if not isinstance(callee, Callee):
            raise TypeError(f"expected a Callee, got {type(callee).__name__}")
        if callee in self._members:
            raise ValueError("callee already in group")
        self._members.add(callee)
        ranks = self._ranks
        i = len(ranks)
        if i and rank < ranks[i - 1]:
            i = bisect_right(ranks, rank)
            if i < self._cursor:
                self._cursor += 1
        self._callees.insert(i, callee)
        ranks.insert(i, rank)

    def rank_of(self, callee: Callee) -> float:
        """The rank ``callee`` was added with (ValueError if it is not in the group)."""
        return self._ranks[self._callees.index(callee)]

    def remove(self, callee: Callee) -> bool:
        """Remove ``callee``; return False if it was not in the group.

        The rotation continues with the callee after the one removed.
        """
        if callee not in self._members:
            return False
        self._members.discard(callee)
        i = self._callees.index(callee)
        del self._callees[i]
        del self._ranks[i]
        if i < self._cursor:
            self._cursor -= 1
        return True

    def __len__(self) -> int:
        return len(self._callees)

    def __contains__(self, callee: object) -> bool:
        return callee in self._members

    def callees(self) -> list[Callee]:
        """Return the callees in rank (registration) order (a copy)."""
        return list(self._callees)

    def select_keyed(self, key: int, excluded: Container[Callee] | None = None) -> Callee | None:
        """Pick the callee for routing key hash ``key`` (sharded registration, §5.9).

        Rendezvous hashing: each callee scores ``mix(key, callee.ident)`` and the
        highest wins.  The same key goes to the same callee as long as it stays;
        when a callee joins or leaves, only the keys it wins or held move (about
        1/N of them), wherever it sits in the group, and every node of a cluster
        that knows the same callees picks the same one.  ``excluded`` callees are
        skipped: the key falls to its next-highest scorer.
        """
        best = None
        best_score = 0
        # Compiled, these are 64-bit unsigned C integers and the masks are no-ops.
        mask = _MASK64
        golden = _GOLDEN64
        mix_a = _MIX64_A
        mix_b = _MIX64_B
        k = key & mask
        for callee in self._callees:
            if excluded is not None and callee in excluded:
                continue
            x = callee.ident
            x = (k ^ ((x * golden) & mask)) & mask
            # splitmix64's finalizer: every input bit flips about half the output bits.
            x = ((x ^ (x >> 30)) * mix_a) & mask
            x = ((x ^ (x >> 27)) * mix_b) & mask
            x ^= x >> 31
            if best is None or x > best_score:
                best = callee
                best_score = x
        return best

    def select(self, excluded: Container[Callee] | None = None) -> Callee | None:
        """Pick the callee for the next invocation by the group's policy.

        Args:
            excluded: callees that must not be picked (those that answered
                ``wamp.error.unavailable`` to this call, §5.10).

        Returns:
            The callee, or ``None`` when no eligible callee remains.
        """
        callees = self._callees
        n = len(callees)
        if n == 0:
            return None
        if excluded is not None and not excluded:
            excluded = None
        # Literals stand for the INVOKE_* codes (no global lookups in C).
        policy = self.policy
        if policy == 1:  # INVOKE_ROUNDROBIN
            i = self._cursor
            if i >= n:
                i = 0
            for _ in range(n):
                callee = callees[i]
                i += 1
                if excluded is None or callee not in excluded:
                    self._cursor = i
                    return callee
                if i == n:
                    i = 0
            return None
        if policy == 0 or policy == 3:  # INVOKE_SINGLE, INVOKE_FIRST
            if excluded is None:
                return callees[0]
            for callee in callees:
                if callee not in excluded:
                    return callee
            return None
        if policy == 4:  # INVOKE_LAST
            if excluded is None:
                return callees[n - 1]
            i = n - 1
            while i >= 0:
                callee = callees[i]
                if callee not in excluded:
                    return callee
                i -= 1
            return None
        if policy == 5:  # INVOKE_LEAST_INFLIGHT
            return self._least_inflight(callees, n, excluded)
        # INVOKE_RANDOM, INVOKE_P2C
        if excluded is not None:
            callees = [callee for callee in callees if callee not in excluded]
            n = len(callees)
            if n == 0:
                return None
        r = self._random()
        i = int(r * n)
        if i >= n:  # float rounding guard
            i = n - 1
        callee = callees[i]
        if policy == 2 or n == 1:  # INVOKE_RANDOM
            return callee
        # Power of two choices: a second, distinct callee; the less loaded wins.
        r = self._random()
        j = int(r * (n - 1))
        if j >= n - 1:
            j = n - 2
        if j >= i:
            j += 1
        other = callees[j]
        if other.inflight < callee.inflight:
            return other
        return callee

    def _least_inflight(
        self, callees: list[Callee], n: int, excluded: Container[Callee] | None
    ) -> Callee | None:
        """Fewest ``inflight`` wins; ties go to the first one in rotation order."""
        i = self._cursor
        if i >= n:
            i = 0
        best = None
        best_i = 0
        best_load = 0
        for _ in range(n):
            callee = callees[i]
            if (excluded is None or callee not in excluded) and (
                best is None or callee.inflight < best_load
            ):
                best = callee
                best_i = i
                best_load = callee.inflight
                if best_load <= 0:  # idle: nobody later in the rotation can beat it
                    break
            i += 1
            if i == n:
                i = 0
        if best is not None:
            self._cursor = best_i + 1
        return best
