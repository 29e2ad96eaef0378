"""WAMP message type codes and structural validation of decoded messages.

A decoded message is a plain ``list`` as produced by the serializer.  The
router forwards ``Arguments``/``ArgumentsKw`` untouched; only the fixed head of
each message is checked here.
"""

from __future__ import annotations

HELLO = 1
WELCOME = 2
ABORT = 3
CHALLENGE = 4
AUTHENTICATE = 5
GOODBYE = 6
ERROR = 8
PUBLISH = 16
PUBLISHED = 17
SUBSCRIBE = 32
SUBSCRIBED = 33
UNSUBSCRIBE = 34
UNSUBSCRIBED = 35
EVENT = 36
CALL = 48
CANCEL = 49
RESULT = 50
REGISTER = 64
REGISTERED = 65
UNREGISTER = 66
UNREGISTERED = 67
INVOCATION = 68
INTERRUPT = 69
YIELD = 70

MESSAGE_NAMES = {
    value: name
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int)
}

MAX_ID = 2**53


class ProtocolViolation(Exception):
    """A peer broke the protocol; the session must be aborted with this message."""


def _is_id(value: object) -> bool:
    return type(value) is int and 0 < value <= MAX_ID  # noqa: E721 - bool is not an id


# (min length, max length, types of the fixed head after the code).
# "id" = WAMP id, "uri"/"str" = string, "dict", "int" = non-negative int.
_LAYOUTS: dict[int, tuple[int, int, tuple[str, ...]]] = {
    HELLO: (3, 3, ("str", "dict")),
    AUTHENTICATE: (3, 3, ("str", "dict")),
    ABORT: (3, 5, ("dict", "str")),
    GOODBYE: (3, 3, ("dict", "str")),
    ERROR: (5, 7, ("int", "id", "dict", "str")),
    PUBLISH: (4, 6, ("id", "dict", "str")),
    SUBSCRIBE: (4, 4, ("id", "dict", "str")),
    UNSUBSCRIBE: (3, 3, ("id", "id")),
    CALL: (4, 6, ("id", "dict", "str")),
    CANCEL: (3, 3, ("id", "dict")),
    REGISTER: (4, 4, ("id", "dict", "str")),
    UNREGISTER: (3, 3, ("id", "id")),
    YIELD: (3, 5, ("id", "dict")),
}


def check_message(msg: object) -> int:
    """Check the structure of a message a client sent; return its type code.

    Raises:
        ProtocolViolation: the message is not a list, its type is unknown or not
            one a client may send, or its head has the wrong arity or types.
    """
    if type(msg) is not list or not msg:
        raise ProtocolViolation("a WAMP message must be a non-empty list")
    code = msg[0]
    if type(code) is not int:
        raise ProtocolViolation("message type must be an integer")
    layout = _LAYOUTS.get(code)
    if layout is None:
        name = MESSAGE_NAMES.get(code)
        if name is None:
            raise ProtocolViolation(f"unknown message type {code}")
        raise ProtocolViolation(f"{name} is not a message a client may send")
    lo, hi, types = layout
    n = len(msg)
    if n < lo or n > hi:
        raise ProtocolViolation(
            f"{MESSAGE_NAMES[code]} must have {lo}..{hi} elements, got {n}"
        )
    for i, kind in enumerate(types, 1):
        value = msg[i]
        if kind == "id":
            ok = _is_id(value)
        elif kind == "str":
            ok = type(value) is str
        elif kind == "dict":
            ok = type(value) is dict
        else:  # "int"
            ok = type(value) is int and value >= 0
        if not ok:
            raise ProtocolViolation(
                f"{MESSAGE_NAMES[code]} element {i} must be of type {kind}"
            )
    # Payload: Arguments must be a list, ArgumentsKw a dict.
    payload_at = 1 + len(types)
    if n > payload_at and type(msg[payload_at]) is not list:
        raise ProtocolViolation(f"{MESSAGE_NAMES[code]} Arguments must be a list")
    if n > payload_at + 1 and type(msg[payload_at + 1]) is not dict:
        raise ProtocolViolation(f"{MESSAGE_NAMES[code]} ArgumentsKw must be a dict")
    return code
