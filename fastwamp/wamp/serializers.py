"""Serializers for the WAMP wire formats: JSON, MessagePack and CBOR.

Each serializer turns one message (a list) into bytes and back.  JSON carries
binary values with WAMP's convention: a string that starts with a NUL
character followed by the base64 of the bytes.

JSON uses orjson when it is installed (about 3-5x faster than the standard
library on WAMP-sized messages, see bench/README.md), else the standard
library's ``json``.
"""

from __future__ import annotations

import base64
import json as _stdlib_json
from typing import TYPE_CHECKING, Any

import cbor2
import msgpack

if TYPE_CHECKING:  # a declared dependency: check against it; None is runtime-only
    import orjson
else:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a declared dependency
        orjson = None


class SerializationError(ValueError):
    """Bytes could not be decoded into a WAMP message, or a message encoded."""


class SharedMessage(list):
    """A message sent unchanged to many sessions (an EVENT to every subscriber
    of a subscription): each serializer encodes it once, whatever the fan-out."""

    __slots__ = ("encoded",)

    def __init__(self, items: list) -> None:
        super().__init__(items)
        #: serializer name -> encoded bytes
        self.encoded: dict[str, bytes] = {}


def _encode_once(name: str, encode):
    """Wrap ``encode`` so that a :class:`SharedMessage` is encoded once per serializer."""

    def encode_message(msg: list) -> bytes:
        if type(msg) is SharedMessage:
            cache = msg.encoded
            data = cache.get(name)
            if data is None:
                data = cache[name] = encode(msg)
            return data
        return encode(msg)

    return encode_message


def _bytes_to_json(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\x00" + base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


def _unpack_binary(value: Any) -> Any:
    """Replace every NUL-prefixed string in ``value`` by the bytes it encodes."""
    t = type(value)
    if t is str:
        if value and value[0] == "\x00":
            return base64.b64decode(value[1:])
        return value
    if t is list:
        return [_unpack_binary(v) for v in value]
    if t is dict:
        return {k: _unpack_binary(v) for k, v in value.items()}
    return value


class Serializer:
    """Base of the serializers: ``encode`` encodes a :class:`SharedMessage` once."""

    name = ""
    #: WebSocket subprotocol, and whether its frames are binary (else text).
    subprotocol = ""
    binary = True
    #: Serializer id in the RawSocket handshake.
    rawsocket_id = 0

    def __init__(self) -> None:
        self.encode = _encode_once(self.name, self._encode)

    def _encode(self, msg: list) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


class JsonSerializer(Serializer):
    """``wamp.2.json``: text frames on WebSocket, serializer id 1 on RawSocket."""

    name = "json"
    subprotocol = "wamp.2.json"
    rawsocket_id = 1
    binary = False

    def _encode(self, msg: list) -> bytes:
        try:
            if orjson is not None:
                return orjson.dumps(msg, default=_bytes_to_json)
            return _stdlib_json.dumps(
                msg, separators=(",", ":"), ensure_ascii=False, default=_bytes_to_json
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise SerializationError(str(exc)) from exc

    def decode(self, data: bytes | str) -> Any:
        try:
            if orjson is not None:
                value = orjson.loads(data)
            else:
                value = _stdlib_json.loads(data)
        except ValueError as exc:
            raise SerializationError(f"invalid JSON: {exc}") from exc
        # Only walk the message when it may hold a binary value.
        raw = data if isinstance(data, (bytes, bytearray)) else data.encode("utf-8", "replace")
        if b"\\u0000" in raw:
            value = _unpack_binary(value)
        return value


def _msgpack_ext_hook(code: int, data: bytes) -> msgpack.ExtType:
    # Unknown extension types (wampy.js sends `undefined` as one) are kept
    # opaque: the router ignores them in Options and forwards them in payloads.
    return msgpack.ExtType(code, data)


class MsgpackSerializer(Serializer):
    """``wamp.2.msgpack``: binary frames, serializer id 2 on RawSocket."""

    name = "msgpack"
    subprotocol = "wamp.2.msgpack"
    rawsocket_id = 2
    binary = True

    def __init__(self) -> None:
        super().__init__()
        self._packer = msgpack.Packer(use_bin_type=True)

    def _encode(self, msg: list) -> bytes:
        try:
            return self._packer.pack(msg)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(str(exc)) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return msgpack.unpackb(
                data, raw=False, strict_map_key=False, ext_hook=_msgpack_ext_hook
            )
        except Exception as exc:  # msgpack raises several unrelated types
            raise SerializationError(f"invalid MessagePack: {exc}") from exc


class CborSerializer(Serializer):
    """``wamp.2.cbor``: binary frames, serializer id 3 on RawSocket."""

    name = "cbor"
    subprotocol = "wamp.2.cbor"
    rawsocket_id = 3
    binary = True

    def _encode(self, msg: list) -> bytes:
        try:
            return cbor2.dumps(msg)
        except Exception as exc:
            raise SerializationError(str(exc)) from exc

    def decode(self, data: bytes) -> Any:
        try:
            return cbor2.loads(data)
        except Exception as exc:
            raise SerializationError(f"invalid CBOR: {exc}") from exc


SERIALIZERS: dict[str, type] = {
    "json": JsonSerializer,
    "msgpack": MsgpackSerializer,
    "cbor": CborSerializer,
}


def make_serializer(name: str):
    """Return a new serializer for ``name`` ("json", "msgpack" or "cbor")."""
    return SERIALIZERS[name]()
