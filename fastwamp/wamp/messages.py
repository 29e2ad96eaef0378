"""WAMP message type codes and structural validation of decoded messages.

A decoded message is a plain ``list`` as produced by the serializer.  The
router forwards ``Arguments``/``ArgumentsKw`` untouched; only the fixed head of
each message is checked here.
"""

from __future__ import annotations

from .._core.message import message_problem

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


def check_message(msg: object) -> int:
    """Check the structure of a message a client sent; return its type code.

    The check itself is compiled (:mod:`fastwamp._core.message`).

    Raises:
        ProtocolViolation: the message is not a list, its type is unknown or not
            one a client may send, or its head has the wrong arity or types
            (ids out of [1, 2**53], an ERROR request type out of [0, 2**53], a
            bool or float where an integer is expected). Never anything else,
            whatever the values.
    """
    problem = message_problem(msg)
    if problem is None:
        return msg[0]  # type: ignore[index]
    if problem == "unknown":
        code = msg[0]  # type: ignore[index]
        name = MESSAGE_NAMES.get(code)
        if name is None:
            # Never format an unbounded integer (str() of a huge one is slow, and
            # refused past 4,300 digits); the serializers stop at 64 bits anyway.
            shown = code if -(2**63) <= code < 2**64 else "out of the 64-bit range"
            raise ProtocolViolation(f"unknown message type {shown}")
        raise ProtocolViolation(f"{name} is not a message a client may send")
    if type(msg) is list and msg and type(msg[0]) is int:
        raise ProtocolViolation(f"{MESSAGE_NAMES[msg[0]]} {problem}")
    raise ProtocolViolation(problem)
