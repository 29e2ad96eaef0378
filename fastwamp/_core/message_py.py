# cython: annotation_typing=False
"""Structural check of a decoded client message: type code, arity, head types.

It runs on every message a client sends, so it is compiled (``message_c.pxd``).
The payload (Arguments, ArgumentsKw) is checked only for its container type.
"""

from __future__ import annotations

MAX_ID = 9007199254740992  # 2**53

# Kinds of head elements.
K_ID = 0  # WAMP id: int in [1, 2**53]
K_STR = 1  # str (URIs are validated later, by the dealer and broker)
K_DICT = 2
K_UINT = 3  # non-negative int

# code -> (min length, max length, head kinds after the code). Only messages a
# client may send are here.
LAYOUTS: dict = {
    1: (3, 3, (K_STR, K_DICT)),  # HELLO
    5: (3, 3, (K_STR, K_DICT)),  # AUTHENTICATE
    3: (3, 5, (K_DICT, K_STR)),  # ABORT
    6: (3, 3, (K_DICT, K_STR)),  # GOODBYE
    8: (5, 7, (K_UINT, K_ID, K_DICT, K_STR)),  # ERROR
    16: (4, 6, (K_ID, K_DICT, K_STR)),  # PUBLISH
    32: (4, 4, (K_ID, K_DICT, K_STR)),  # SUBSCRIBE
    34: (3, 3, (K_ID, K_ID)),  # UNSUBSCRIBE
    48: (4, 6, (K_ID, K_DICT, K_STR)),  # CALL
    49: (3, 3, (K_ID, K_DICT)),  # CANCEL
    64: (4, 4, (K_ID, K_DICT, K_STR)),  # REGISTER
    66: (3, 3, (K_ID, K_ID)),  # UNREGISTER
    70: (3, 5, (K_ID, K_DICT)),  # YIELD
}

KIND_NAMES = ("id", "str", "dict", "int")


def message_problem(msg: object) -> str | None:
    """Return what is wrong with ``msg`` as a client message, or None if it is well formed.

    Callers turn a problem into ABORT ``wamp.error.protocol_violation``; the
    message names are added by the caller (this module knows only codes).
    """
    if type(msg) is not list:
        return "a WAMP message must be a non-empty list"
    n = len(msg)
    if n == 0:
        return "a WAMP message must be a non-empty list"
    code = msg[0]
    if type(code) is not int:
        return "message type must be an integer"
    layout = LAYOUTS.get(code)
    if layout is None:
        return "unknown"
    lo = layout[0]
    hi = layout[1]
    kinds = layout[2]
    if n < lo or n > hi:
        return f"must have {lo}..{hi} elements, got {n}"
    nkinds = len(kinds)
    for i in range(nkinds):
        value = msg[i + 1]
        kind = kinds[i]
        if kind == 0:
            ok = type(value) is int and 0 < value <= MAX_ID
        elif kind == 1:
            ok = type(value) is str
        elif kind == 2:
            ok = type(value) is dict
        else:
            ok = type(value) is int and value >= 0
        if not ok:
            return f"element {i + 1} must be of type {KIND_NAMES[kind]}"
    at = nkinds + 1
    if n > at and type(msg[at]) is not list:
        return "Arguments must be a list"
    if n > at + 1 and type(msg[at + 1]) is not dict:
        return "ArgumentsKw must be a dict"
    return None
