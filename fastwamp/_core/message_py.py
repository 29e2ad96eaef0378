# cython: annotation_typing=False
"""Checks of decoded client messages, compiled (``message_c.pxd``): they run on
every message a client sends.

* :func:`message_problem`: the structure: type code, arity, head types. The
  payload (Arguments, ArgumentsKw) is checked only for its container type.
* :func:`value_problem`: the whole decoded value, run by the serializers: only
  types every serializer can encode again (so a message decoded from one client
  can be sent to a client of any other serializer), and a bounded nesting depth.
  Iterative, level by level: no recursion whatever the depth.
"""

from __future__ import annotations

from typing import Any

from ..wamp.payload import RawPayload

MAX_ID = 9007199254740992  # 2**53
#: Integers every serializer can encode: MessagePack and orjson stop at 64 bits.
MIN_INT = -9223372036854775808  # -2**63
MAX_INT = 18446744073709551615  # 2**64 - 1

# Kinds of head elements.
K_ID = 0  # WAMP id: int in [1, 2**53]
K_STR = 1  # str (URIs are validated later, by the dealer and broker)
K_DICT = 2
K_UINT = 3  # int in [0, 2**53] (ERROR's request type)

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
            ok = type(value) is int and 0 <= value <= MAX_ID
        if not ok:
            return f"element {i + 1} must be of type {KIND_NAMES[kind]}"
    at = nkinds + 1
    if n > at and type(msg[at]) is not list:
        if n == at + 1 and type(msg[at]) is RawPayload:
            return None  # Arguments (and ArgumentsKw) as checked bytes: payload passthru
        return "Arguments must be a list"
    if n > at + 1 and type(msg[at + 1]) is not dict:
        return "ArgumentsKw must be a dict"
    return None


def _foreign_kind(value: Any, undefined: object) -> int:
    """The kind (see :func:`value_problem`) of a value that is not str, float, bool,
    None or a container: 0 for bytes and 64-bit ints, 2 for ``undefined``, else -1."""
    t = type(value)
    if t is int:
        # Literals first: C comparisons in the compiled build; then the exact bounds.
        if -9223372036854775808 <= value <= 9223372036854775807:
            return 0
        return 0 if MIN_INT <= value <= MAX_INT else -1
    if t is bytes:
        return 0
    if value is undefined:
        return 2
    return -1


def _scalar_problem(value: object) -> str:
    if type(value) is int:
        return "an integer out of the 64-bit range"
    return f"a value of type {type(value).__name__}, which WAMP cannot carry"


def value_problem(value: Any, max_depth: int, undefined: object) -> str | None:
    """Return why the decoded ``value`` cannot be routed, or None if it can.

    It can when it holds only lists, dicts with ``str`` keys, ``str``, ``bytes``,
    ``int`` in [-2**63, 2**64 - 1], ``float``, ``bool`` and ``None`` (what JSON
    with WAMP's binary convention, MessagePack and CBOR all encode), nested at
    most ``max_depth`` containers deep (``value`` itself is depth 1).

    Every occurrence of ``undefined`` (a decoder's JavaScript ``undefined``,
    never ``None``) inside a container is replaced by ``None`` in place.
    """
    t = type(value)
    if t is not list and t is not dict:
        kind = _foreign_kind(value, undefined)
        if t is str or t is float or t is bool or value is None or kind >= 0:
            return None
        return _scalar_problem(value)
    if max_depth < 1:
        return f"nesting deeper than {max_depth} levels"
    # Breadth first, one level at a time: ``container`` is ``value``, then each
    # of ``level`` (the containers at ``depth``) in turn; their containers go to
    # ``below``. Lists are allocated lazily and reused: a flat message needs one.
    level: list | None = None
    below: list | None = None
    spare: list | None = None
    container: Any = value
    depth = 1
    index = 0
    while True:
        if type(container) is list:
            items: list = container
            for i in range(len(items)):
                item = items[i]
                t = type(item)
                # The common scalars inline, by identity of their type.
                if t is str or item is None or t is float or t is bool:
                    continue
                if t is int and -9223372036854775808 <= item <= 9223372036854775807:
                    continue
                if t is list or t is dict:
                    if below is None:
                        below = [item] if spare is None else spare
                        if spare is not None:
                            spare = None
                            below.append(item)
                    else:
                        below.append(item)
                    continue
                kind = _foreign_kind(item, undefined)
                if kind == 2:
                    items[i] = None
                elif kind < 0:
                    return _scalar_problem(item)
        else:
            mapping: dict = container
            for key, item in mapping.items():
                if type(key) is not str:
                    return f"a map key of type {type(key).__name__} (keys must be strings)"
                t = type(item)
                if t is str or item is None or t is float or t is bool:
                    continue
                if t is int and -9223372036854775808 <= item <= 9223372036854775807:
                    continue
                if t is list or t is dict:
                    if below is None:
                        below = [item] if spare is None else spare
                        if spare is not None:
                            spare = None
                            below.append(item)
                    else:
                        below.append(item)
                    continue
                kind = _foreign_kind(item, undefined)
                if kind == 2:
                    mapping[key] = None  # same key: the dict does not resize
                elif kind < 0:
                    return _scalar_problem(item)
        if level is not None and index < len(level):
            container = level[index]
            index += 1
            continue
        if below is None:
            return None
        depth += 1
        if depth > max_depth:
            return f"nesting deeper than {max_depth} levels"
        if level is not None:
            del level[:]
            spare = level
        level = below
        below = None
        container = level[0]
        index = 1


def depth_exceeds(value: object, max_depth: int) -> bool:
    """Tell whether ``value`` nests lists, tuples and dicts (or their subclasses)
    more than ``max_depth`` deep (``value`` itself is depth 1); a cycle counts as
    infinitely deep.

    The guard before an encoder that would recurse in C without a limit of its
    own (cbor2: a segmentation fault some thousands of levels down). Any other
    value counts as a leaf: the encoder reports it.
    """
    if not isinstance(value, (list, tuple, dict)):
        return False
    level: list = [value]
    depth = 1
    while level:
        if depth > max_depth:
            return True
        below: list = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            for item in items:
                t = type(item)
                if t is str or t is int or item is None or t is float or t is bool:
                    continue
                if t is list or t is dict or t is tuple or isinstance(item, (list, tuple, dict)):
                    below.append(item)
        level = below
        depth += 1
    return False
