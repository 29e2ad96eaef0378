"""Serializers for the WAMP wire formats: JSON, MessagePack and CBOR.

Each serializer turns one message (a list) into bytes and back.  JSON carries
binary values with WAMP's convention: a string that starts with a NUL
character followed by the base64 of the bytes.

JSON uses orjson when it is installed (about 3-5x faster than the standard
library on WAMP-sized messages, see bench/README.md), else the standard
library's ``json``.

Hostile input. ``decode`` raises :class:`SerializationError` and nothing else,
whatever the bytes, and accepts only what every serializer can encode again, so
that the router can forward a message from a client of one serializer to a
client of any other:

* lists, maps with string keys, strings, bytes, booleans, null, floats and
  integers in [-2**63, 2**64 - 1] (MessagePack and orjson stop at 64 bits);
  MessagePack extension types (but JavaScript ``undefined``), MessagePack
  timestamps, CBOR tags (but big integers within that range), CBOR simple
  values and CBOR shared or string references are refused. JavaScript
  ``undefined`` (MessagePack fixext 0, CBOR ``undefined``; wampy.js sends it) is
  read as null;
* at most :data:`MAX_DEPTH` (128) levels of nesting, the message itself being
  the first. The libraries' own limits are looser (orjson reads 1,024 levels,
  MessagePack 1,024, cbor2 400) and orjson writes no more than 254, so 128
  leaves room for the levels the router adds around a payload (a history
  entry, a meta event) and bounds the work and stack of anything that walks a
  message. The check is compiled (:func:`fastwamp._core.message.value_problem`)
  and iterative; JSON messages too short to hold 129 levels skip it.

``encode`` raises :class:`SerializationError` for anything it cannot encode
(an integer over 64 bits, a non-string map key in JSON, nesting deeper than
orjson's 254 levels, ...), so that transports can answer for it. NaN and
infinities become ``null`` in JSON (orjson; the standard library's encoder
refuses them).
"""

from __future__ import annotations

import base64
import gc
import json as _stdlib_json
import os
from typing import TYPE_CHECKING, Any

import cbor2
import msgpack

from .._core.fanout import SharedMessage
from .._core.message import depth_exceeds, value_problem
from .._core.msgpack_check import COMPILED as _PAYLOAD_CHECK_COMPILED
from .._core.msgpack_check import payload_end, plain_small
from .payload import PASSTHRU_MIN_BYTES, RawPayload, expand

if TYPE_CHECKING:  # a declared dependency: check against it; None is runtime-only
    import orjson
else:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a declared dependency
        orjson = None


#: Deepest nesting of lists and maps in a decoded message (itself level 1).
MAX_DEPTH = 128
#: Deepest nesting cbor2 is asked to encode: it recurses in C with no limit of
#: its own (and crashes some thousands of levels down).
MAX_ENCODE_DEPTH = 1024


class SerializationError(ValueError):
    """Bytes could not be decoded into a WAMP message, or a message encoded."""


def _encode_once(name: str, encode):
    """Wrap ``encode`` so that a :class:`SharedMessage` is encoded once per serializer
    (a failure too: it is raised again for every receiver, not retried)."""

    def encode_message(msg: list) -> bytes:
        if type(msg) is SharedMessage:
            cache = msg.encoded
            data = cache.get(name)
            if data is None:
                try:
                    data = cache[name] = encode(msg)
                except SerializationError as exc:
                    cache[name] = exc
                    raise
            elif type(data) is SerializationError:
                raise SerializationError(*data.args)
            return data  # type: ignore[return-value]
        return encode(msg)

    return encode_message


def _bytes_to_json(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\x00" + base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


def _b64_binary(text: str) -> bytes:
    try:
        return base64.b64decode(text[1:])
    except ValueError as exc:  # binascii.Error, or a non-ASCII character
        raise SerializationError(f"invalid binary value in JSON: {exc}") from exc


def _unpack_binary(value: Any) -> Any:
    """Replace every NUL-prefixed string in ``value`` by the bytes it encodes.

    In place (``value`` was just decoded) and iterative: no recursion however
    deep the message.
    """
    t = type(value)
    if t is str:
        return _b64_binary(value) if value[:1] == "\x00" else value
    if t is not list and t is not dict:
        return value
    stack = [value]
    while stack:
        container = stack.pop()
        if type(container) is list:
            for i, item in enumerate(container):
                t = type(item)
                if t is str:
                    if item[:1] == "\x00":
                        container[i] = _b64_binary(item)
                elif t is list or t is dict:
                    stack.append(item)
        else:
            for key, item in container.items():
                t = type(item)
                if t is str:
                    if item[:1] == "\x00":
                        container[key] = _b64_binary(item)
                elif t is list or t is dict:
                    stack.append(item)
    return value


def _check(value: Any, undefined: object = None) -> Any:
    """Raise SerializationError unless every serializer can encode ``value`` again."""
    problem = value_problem(value, MAX_DEPTH, undefined)
    if problem is not None:
        raise SerializationError(problem)
    return value


#: Messages at least this large are decoded with the cyclic garbage collector paused:
#: a message of many small containers (half a million empty lists in 1 MiB) makes the
#: collector run again and again over everything decoded so far, so decoding grows
#: faster than linearly with it on (measured: 760 ms for 1 MiB, 60 ms with it paused).
GC_PAUSE_BYTES = 64 * 1024
assert GC_PAUSE_BYTES >= PASSTHRU_MIN_BYTES  # MessagePack's decode tests the smaller first


def _without_gc(decode: Any, data: Any) -> Any:
    """``decode(data)`` with the cyclic garbage collector paused (if it was on)."""
    if not gc.isenabled():
        return decode(data)
    gc.disable()
    try:
        return decode(data)
    finally:
        gc.enable()


class Serializer:
    """Base of the serializers: ``encode`` encodes a :class:`SharedMessage` once.

    A serializer keeps no per-connection state: :func:`make_serializer` gives
    every connection of the process the same instance per format (the
    MessagePack one owns the process's one ``Packer``; the router runs in one
    thread, and a pack neither releases the GIL nor calls back into Python).
    Subclasses provide ``_encode`` (raising :class:`SerializationError`) and
    ``decode``.
    """

    name = ""
    #: WebSocket subprotocol, and whether its frames are binary (else text).
    subprotocol = ""
    binary = True
    #: Serializer id in the RawSocket handshake.
    rawsocket_id = 0
    #: A faster ``encode`` for a message that is a plain list whose last element is
    #: no :class:`RawPayload` (None: there is none).  It raises what its encoder
    #: raises, and leaves nothing behind when it does.
    encode_plain: Any = None

    def __init__(self) -> None:
        self.encode = _encode_once(self.name, self._encode)

    def _encode(self, msg: list) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


def _json_encoder(shared_encode: Any) -> Any:
    """JSON ``encode``: one Python frame per message (the library call inlined)."""
    if orjson is not None:
        dumps = orjson.dumps

        def encode(msg: list) -> bytes:
            if type(msg) is SharedMessage:
                return shared_encode(msg)
            if msg and type(msg[-1]) is RawPayload:
                msg = expand(msg)
            try:
                return dumps(msg, default=_bytes_to_json)
            except Exception as exc:  # TypeError, ValueError, RecursionError, MemoryError
                raise SerializationError(f"cannot encode as JSON: {exc}") from exc

        return encode
    return shared_encode  # pragma: no cover - orjson is a declared dependency


class JsonSerializer(Serializer):
    """``wamp.2.json``: text frames on WebSocket, serializer id 1 on RawSocket."""

    name = "json"
    subprotocol = "wamp.2.json"
    rawsocket_id = 1
    binary = False

    def __init__(self) -> None:
        super().__init__()
        self.encode = _json_encoder(self.encode)
        if orjson is not None:
            self.decode = self._decode_orjson  # type: ignore[method-assign]

    def _encode(self, msg: list) -> bytes:
        if msg and type(msg[-1]) is RawPayload:
            msg = expand(msg)
        try:
            if orjson is not None:
                return orjson.dumps(msg, default=_bytes_to_json)
            return _stdlib_json.dumps(
                msg, separators=(",", ":"), ensure_ascii=False, default=_bytes_to_json,
                allow_nan=False,
            ).encode("utf-8")
        except Exception as exc:  # TypeError, ValueError, RecursionError, MemoryError
            raise SerializationError(f"cannot encode as JSON: {exc}") from exc

    def decode(self, data: bytes | str) -> Any:
        if len(data) >= GC_PAUSE_BYTES and gc.isenabled():
            return _without_gc(self.decode, data)
        try:
            if orjson is not None:
                value = orjson.loads(data)
            else:
                value = _stdlib_json.loads(data)
        except Exception as exc:  # JSONDecodeError, RecursionError, MemoryError, ...
            raise SerializationError(f"invalid JSON: {exc}") from exc
        # orjson reads only what every serializer can write back, but nests up
        # to 1,024 levels: check the depth of a message long enough to be too
        # deep (a level takes two brackets) that holds enough brackets.
        if isinstance(data, str):
            deep = len(data) > 2 * MAX_DEPTH and data.count("[") + data.count("{") > MAX_DEPTH
            binary = "\\u0000" in data
        else:
            deep = len(data) > 2 * MAX_DEPTH and data.count(b"[") + data.count(b"{") > MAX_DEPTH
            binary = data.find(b"\\u0000") >= 0
        if deep or orjson is None:  # the standard library reads big integers too
            _check(value)
        if binary:  # only walk the message when it may hold a binary value
            value = _unpack_binary(value)
        return value

    @staticmethod
    def _decode_orjson(data: Any) -> Any:
        """``decode`` on orjson (what the transports give: bytes)."""
        if len(data) >= GC_PAUSE_BYTES and gc.isenabled():
            return _without_gc(JsonSerializer._decode_orjson, data)
        try:
            value = _orjson_loads(data)
        except Exception as exc:  # JSONDecodeError, RecursionError, MemoryError, ...
            raise SerializationError(f"invalid JSON: {exc}") from exc
        if type(data) is str:
            if len(data) > _DEEP_LENGTH and data.count("[") + data.count("{") > MAX_DEPTH:
                _check(value)
            return _unpack_binary(value) if "\\u0000" in data else value
        if (
            len(data) > _DEEP_LENGTH
            and data.count(b"[") + data.count(b"{") > MAX_DEPTH
            and (problem := value_problem(value, MAX_DEPTH, None)) is not None
        ):
            raise SerializationError(problem)
        # Only walk the message when it may hold a binary value (find: ``in`` on
        # bytes first tries the needle as an integer, which costs ~100 ns).
        if data.find(b"\\u0000") >= 0:
            return _unpack_binary(value)
        return value


#: A JSON message shorter than this cannot nest MAX_DEPTH + 1 levels.
_DEEP_LENGTH = 2 * MAX_DEPTH
_orjson_loads = orjson.loads if orjson is not None else None


def _msgpack_ext_hook(code: int, data: bytes) -> None:
    """Read JavaScript ``undefined`` (fixext 1, type 0: msgpackr, as wampy.js sends
    it) as None; refuse every other extension type, which the other serializers
    could not carry."""
    if code == 0 and len(data) <= 1:
        return None
    raise ValueError(f"MessagePack extension type {code} is not supported")


class MsgpackSerializer(Serializer):
    """``wamp.2.msgpack``: binary frames, serializer id 2 on RawSocket."""

    name = "msgpack"
    subprotocol = "wamp.2.msgpack"
    rawsocket_id = 2
    binary = True

    def __init__(self) -> None:
        self._packer = packer = msgpack.Packer(use_bin_type=True)
        super().__init__()
        pack, reset, shared_encode = packer.pack, packer.reset, self.encode
        self.encode_plain = pack  # msgpack >= 1.0 empties its buffer when a pack fails

        def encode(msg: list) -> bytes:
            if type(msg) is SharedMessage:
                return shared_encode(msg)
            try:
                if msg and type(msg[-1]) is RawPayload:
                    return _splice(pack, msg)
                return pack(msg)
            except Exception as exc:  # TypeError, ValueError, OverflowError, MemoryError
                reset()  # a failed pack may leave partial output in the buffer
                raise SerializationError(f"cannot encode as MessagePack: {exc}") from exc

        self.encode = encode

    def _encode(self, msg: list) -> bytes:
        try:
            if msg and type(msg[-1]) is RawPayload:
                return _splice(self._packer.pack, msg)
            return self._packer.pack(msg)
        except Exception as exc:  # TypeError, ValueError, OverflowError, MemoryError
            self._packer.reset()  # a failed pack may leave partial output in the buffer
            raise SerializationError(f"cannot encode as MessagePack: {exc}") from exc

    @staticmethod
    def decode(data: bytes) -> Any:
        if len(data) >= PASSTHRU_MIN_BYTES:  # one test for the usual small message
            if PASSTHRU:
                msg = _decode_passthru(data)
                if msg is not None:
                    return msg
            if len(data) >= GC_PAUSE_BYTES and gc.isenabled():
                return _without_gc(MsgpackSerializer.decode, data)
        try:
            # strict_map_key: only str (and bytes, refused by the check) keys, so no
            # client can build a map of colliding integer hashes.
            value = _unpackb(data, raw=False, strict_map_key=True, ext_hook=_msgpack_ext_hook)
        except Exception as exc:  # msgpack raises several unrelated types
            raise SerializationError(f"invalid MessagePack: {exc}") from exc
        if plain_small(data, MAX_DEPTH):  # the bytes prove the value routable
            return value
        problem = value_problem(value, MAX_DEPTH, None)
        if problem is not None:
            raise SerializationError(problem)
        return value


_unpackb = msgpack.unpackb

#: Payload passthru is on where the payload check is compiled (interpreted, the
#: check would cost more than decoding); FASTWAMP_NO_PASSTHRU=1 turns it off.
PASSTHRU = _PAYLOAD_CHECK_COMPILED and not os.environ.get("FASTWAMP_NO_PASSTHRU")

#: Message types whose payload may pass through raw -> how many items come between
#: the type code and the payload (CALL: request, options, procedure; ...).
_PASSTHRU_HEAD = {48: 3, 16: 3, 70: 2, 8: 4}  # CALL, PUBLISH, YIELD, ERROR


def _splice(pack: Any, msg: list) -> bytes:
    """MessagePack for ``msg`` whose last element is a :class:`RawPayload`: the other
    elements packed, the payload's bytes as they came, under one array header."""
    raw: RawPayload = msg[-1]
    items = len(msg) - 1 + raw.count
    if items > 15:  # no WAMP message has that many elements: encode it the long way
        return pack(expand(msg))
    head = pack(msg[:-1])  # a fixarray: its first byte is the header
    return b"".join((bytes((0x90 | items,)), memoryview(head)[1:], raw.data))


def _decode_passthru(data: Any) -> list | None:
    """A CALL, PUBLISH, YIELD or ERROR with its payload left as bytes (see
    :mod:`fastwamp.wamp.payload`), or None: the message is decoded the ordinary way
    (which also refuses what is wrong with it)."""
    first = data[0]
    if first < 0x94 or first > 0x97:  # a fixarray of 4 to 7 elements
        return None
    head = _PASSTHRU_HEAD.get(data[1])
    if head is None:
        return None
    values = (first & 0x0F) - 1 - head
    if values != 1 and values != 2:
        return None
    start = payload_end(data, 2, head, 1, MAX_DEPTH)  # the head items, checked too
    if start < 0 or len(data) - start < PASSTHRU_MIN_BYTES:
        return None
    if data[start] not in _ARRAY_MARKERS:
        return None  # Arguments not a list: the ordinary path says so
    end = payload_end(data, start, 1, 1, MAX_DEPTH)
    if end < 0:
        return None
    if values == 2:
        if end >= len(data) or data[end] not in _MAP_MARKERS:
            return None
        end = payload_end(data, end, 1, 1, MAX_DEPTH)
    if end != len(data):
        return None
    try:
        msg = _unpackb(bytes((0x90 | (head + 1),)) + bytes(data[1:start]), raw=False,
                       strict_map_key=True)
    except Exception:  # noqa: BLE001 - the ordinary path reports it
        return None
    if value_problem(msg, MAX_DEPTH, None) is not None:
        return None
    # A view of the frame when it is immutable bytes (no copy), else a copy.
    payload = memoryview(data)[start:] if type(data) is bytes else bytes(data[start:])
    msg.append(RawPayload(payload, values))
    return msg


_ARRAY_MARKERS = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
_MAP_MARKERS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


def _cbor_refuse(*args: object) -> None:
    raise ValueError("CBOR tags are not supported")


def _cbor_self_described(value: Any, immutable: bool) -> Any:
    return value


#: Every tag cbor2 would decode itself is refused, but big integers (2, 3, kept
#: when they fit in 64 bits) and self-described CBOR (55799, read as its
#: content); unknown tags go to ``tag_hook``. Shared values (28, 29) and string
#: references (25, 256) would let a small message decode to a huge one.
_CBOR_SEMANTIC: dict[int, Any] = {
    tag: _cbor_refuse for tag in (*range(2), *range(4, 1024), 1004, 22098)
}
_CBOR_SEMANTIC[55799] = _cbor_self_described


class CborSerializer(Serializer):
    """``wamp.2.cbor``: binary frames, serializer id 3 on RawSocket."""

    name = "cbor"
    subprotocol = "wamp.2.cbor"
    rawsocket_id = 3
    binary = True

    def _encode(self, msg: list) -> bytes:
        if msg and type(msg[-1]) is RawPayload:
            msg = expand(msg)
        # cbor2 recurses in C without a limit: it would crash, not raise.
        if depth_exceeds(msg, MAX_ENCODE_DEPTH):
            raise SerializationError(f"cannot encode as CBOR: nesting deeper than "
                                     f"{MAX_ENCODE_DEPTH} levels")
        try:
            return cbor2.dumps(msg)
        except Exception as exc:
            raise SerializationError(f"cannot encode as CBOR: {exc}") from exc

    def decode(self, data: bytes) -> Any:
        if len(data) >= GC_PAUSE_BYTES and gc.isenabled():
            return _without_gc(self.decode, data)
        try:
            value = cbor2.loads(
                data,
                max_depth=MAX_DEPTH,
                strict_hashable_types=True,  # map keys: str or bytes only
                semantic_decoders=_CBOR_SEMANTIC,
                tag_hook=_cbor_refuse,
            )
        except Exception as exc:
            raise SerializationError(f"invalid CBOR: {exc}") from exc
        if value is cbor2.undefined:
            return None
        return _check(value, cbor2.undefined)


SERIALIZERS: dict[str, type[Serializer]] = {
    "json": JsonSerializer,
    "msgpack": MsgpackSerializer,
    "cbor": CborSerializer,
}


_SHARED: dict[str, Serializer] = {}


def make_serializer(name: str) -> Serializer:
    """The process's serializer for ``name`` ("json", "msgpack" or "cbor").

    One instance per format, shared by every connection (see :class:`Serializer`);
    instantiate the classes of :data:`SERIALIZERS` for one of your own.
    """
    serializer = _SHARED.get(name)
    if serializer is None:
        serializer = _SHARED[name] = SERIALIZERS[name]()
    return serializer
