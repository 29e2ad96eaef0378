"""Estimating how much memory a decoded payload holds, for the byte limits on what the
router keeps for clients (retained events, testaments, event history, fan-out backlog).

The estimate walks the value iteratively (a client controls its nesting depth) and
stops as soon as it passes ``limit``, so it costs at most O(limit) however large the
value is.  It counts container slots and string/bytes lengths, close to the encoded
size rather than to CPython's object overhead: a bound, not an accounting.
"""

from __future__ import annotations

from typing import Any

from ..wamp.payload import RawPayload

#: Bytes counted for a number, a boolean, None, and each container slot.
SLOT = 8


def estimate_size(value: Any, limit: int = 1 << 62) -> int:
    """Approximate bytes held by ``value``; once over ``limit`` it returns early (> limit)."""
    total = 0
    stack = [value]
    pop = stack.pop
    while stack:
        item = pop()
        t = type(item)
        if t is str or t is bytes or t is bytearray:
            total += len(item) + SLOT
        elif t is list or t is tuple:
            total += SLOT * (len(item) + 1)
            if total > limit:
                return total
            stack.extend(item)
        elif t is dict:
            total += 2 * SLOT * len(item) + SLOT
            if total > limit:
                return total
            stack.extend(item.keys())
            stack.extend(item.values())
        elif t is RawPayload:
            total += len(item.data) + SLOT
        elif t is frozenset or t is set:
            total += SLOT * (len(item) + 1)
            if total > limit:
                return total
            stack.extend(item)
        else:
            total += SLOT
        if total > limit:
            return total
    return total
