# cython: annotation_typing=False
"""Check MessagePack values without building them: the router's payload passthru.

Reference implementation; ``msgpack_check_c.pxd`` types it and the same source
is compiled as ``fastwamp._core.msgpack_check_c``. Import through
``fastwamp._core.msgpack_check``.

:func:`plain_small` tells, from the bytes alone, that a short message needs no
check after decoding (see there).

:func:`payload_end` walks ``items`` consecutive values in ``data`` and returns
where they end when each is one that ``MsgpackSerializer.decode`` would accept
and decode to itself: nil, booleans, integers, floats, binary, UTF-8 strings,
arrays, and maps whose keys are strings, nested at most ``max_depth`` deep. It
returns -1 for anything else (malformed or truncated input, invalid UTF-8, a
non-string map key, any extension type, too deep): the caller then decodes the
message the ordinary way, which accepts or refuses it as it always does. The
walk is iterative (an explicit stack): no input makes it recurse.
"""

from __future__ import annotations

from array import array
from typing import Any


def _utf8_valid(data: bytes, pos: int, end: int) -> bool:
    """Whether ``data[pos:end]`` is valid UTF-8 as Python's strict decoder reads it
    (no overlong forms, no surrogates, nothing above U+10FFFF)."""
    while pos < end:
        b = data[pos]
        if b < 0x80:
            pos += 1
            continue
        if 0xC2 <= b <= 0xDF:
            need = 1
            lo = 0x80
            hi = 0xBF
        elif b == 0xE0:
            need = 2
            lo = 0xA0
            hi = 0xBF
        elif 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
            need = 2
            lo = 0x80
            hi = 0xBF
        elif b == 0xED:  # U+D000..U+D7FF: not the surrogates
            need = 2
            lo = 0x80
            hi = 0x9F
        elif b == 0xF0:
            need = 3
            lo = 0x90
            hi = 0xBF
        elif 0xF1 <= b <= 0xF3:
            need = 3
            lo = 0x80
            hi = 0xBF
        elif b == 0xF4:
            need = 3
            lo = 0x80
            hi = 0x8F
        else:
            return False
        if pos + need >= end:  # its continuation bytes run past the string
            return False
        c = data[pos + 1]
        if c < lo or c > hi:
            return False
        i = 2
        while i <= need:
            c = data[pos + i]
            if c < 0x80 or c > 0xBF:
                return False
            i += 1
        pos += need + 1
    return True


def _uint(data: bytes, pos: int, size: int) -> int:
    """The big-endian unsigned integer of ``size`` bytes at ``pos``."""
    value = 0
    i = 0
    while i < size:
        value = (value << 8) | data[pos + i]
        i += 1
    return value


def payload_end(data: bytes, pos: int, items: int, depth: int, max_depth: int) -> int:
    """Where the ``items`` values that start at ``pos`` end, or -1 (see the module doc).

    ``depth`` is the nesting level of the container the values are in (the
    message itself is level 1, so its payload values are in level 1 and a
    list among them is level 2); a container deeper than ``max_depth`` gives -1.
    """
    n = len(data)
    if max_depth < depth:
        max_depth = depth
    # One entry per open container (the outermost: the ``items`` values): twice the
    # values it still holds, plus 1 for a map (whose keys come at even counts left).
    stack = array("q", bytes(8 * (max_depth - depth + 2)))
    stack[0] = 2 * items
    top = 0
    while top >= 0:
        entry = stack[top]
        left = entry >> 1
        if left == 0:
            top -= 1
            continue
        stack[top] = entry - 2
        if pos >= n:
            return -1
        b = data[pos]
        pos += 1
        if entry & 1 and left % 2 == 0:  # a map key: strings only
            if 0xA0 <= b <= 0xBF:
                size = b & 0x1F
            elif b == 0xD9:
                if pos + 1 > n:
                    return -1
                size = data[pos]
                pos += 1
            elif b == 0xDA:
                if pos + 2 > n:
                    return -1
                size = _uint(data, pos, 2)
                pos += 2
            elif b == 0xDB:
                if pos + 4 > n:
                    return -1
                size = _uint(data, pos, 4)
                pos += 4
            else:
                return -1
            if pos + size > n or not _utf8_valid(data, pos, pos + size):
                return -1
            pos += size
            continue
        if b <= 0x7F or b >= 0xE0 or b == 0xC0 or b == 0xC2 or b == 0xC3:
            continue  # fixint, nil, false, true
        if 0xA0 <= b <= 0xBF:  # fixstr
            size = b & 0x1F
            if pos + size > n or not _utf8_valid(data, pos, pos + size):
                return -1
            pos += size
            continue
        if 0x90 <= b <= 0x9F or 0x80 <= b <= 0x8F or b == 0xDC or b == 0xDD \
                or b == 0xDE or b == 0xDF:
            if b <= 0x8F:
                count = 2 * (b & 0x0F)
                mapping = True
            elif b <= 0x9F:
                count = b & 0x0F
                mapping = False
            else:
                width = 2 if b == 0xDC or b == 0xDE else 4
                if pos + width > n:
                    return -1
                count = _uint(data, pos, width)
                pos += width
                mapping = b >= 0xDE
                if mapping:
                    count *= 2
            if depth + top + 1 > max_depth:
                return -1
            if count > n - pos:  # every value takes a byte at least
                return -1
            top += 1
            stack[top] = 2 * count + (1 if mapping else 0)
            continue
        if b == 0xD9 or b == 0xDA or b == 0xDB:  # str 8/16/32
            width = 1 if b == 0xD9 else (2 if b == 0xDA else 4)
            if pos + width > n:
                return -1
            size = _uint(data, pos, width)
            pos += width
            if pos + size > n or not _utf8_valid(data, pos, pos + size):
                return -1
            pos += size
            continue
        if b == 0xC4 or b == 0xC5 or b == 0xC6:  # bin 8/16/32
            width = 1 if b == 0xC4 else (2 if b == 0xC5 else 4)
            if pos + width > n:
                return -1
            size = _uint(data, pos, width)
            pos += width + size
            if pos > n:
                return -1
            continue
        if b == 0xCC or b == 0xD0:
            size = 1
        elif b == 0xCD or b == 0xD1:
            size = 2
        elif b == 0xCE or b == 0xD2 or b == 0xCA:
            size = 4
        elif b == 0xCF or b == 0xD3 or b == 0xCB:
            size = 8
        else:
            return -1  # 0xC1 (never used) and every extension type
        pos += size
        if pos > n:
            return -1
    return pos


def plain_small(data: Any, max_depth: int) -> bool:
    """Whether ``data`` is ``bytes`` of at most ``max_depth`` bytes with none of the
    bytes that start a binary (0xc4-0xc6) or an extension value (0xc7-0xc9,
    0xd4-0xd8) anywhere in it.

    Whatever MessagePack value such bytes hold then decodes (``raw=False``,
    ``strict_map_key=True``) to nil, booleans, integers in [-2**63, 2**64 - 1],
    floats, strings, arrays and string-keyed maps, nested at most ``max_depth``
    deep (each level takes a byte at least): exactly what
    ``value_problem`` accepts, so the decoder need not walk the value. A marker
    byte may well sit inside a string or a number; False then only means: check
    the decoded value as usual.
    """
    if type(data) is not bytes:
        return False
    raw = data
    n = len(raw)
    if n > max_depth:
        return False
    for i in range(n):
        b = raw[i]
        if 0xC4 <= b <= 0xC9 or 0xD4 <= b <= 0xD8:
            return False
    return True
