"""Selector for the MessagePack payload check: compiled ``msgpack_check_c`` if
available, else ``msgpack_check_py``."""

import os
from typing import TYPE_CHECKING

from .msgpack_check_py import payload_end as payload_end_py
from .msgpack_check_py import plain_small as plain_small_py

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .msgpack_check_c import payload_end as payload_end_c
        from .msgpack_check_c import plain_small as plain_small_c
    except ImportError:  # not built: fall back to pure Python
        payload_end_c = plain_small_c = None
else:
    payload_end_c = plain_small_c = None

COMPILED = payload_end_c is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    payload_end = payload_end_py
    plain_small = plain_small_py
else:
    payload_end = payload_end_py if payload_end_c is None else payload_end_c
    plain_small = plain_small_py if plain_small_c is None else plain_small_c

__all__ = ["COMPILED", "payload_end", "payload_end_c", "payload_end_py", "plain_small",
           "plain_small_c", "plain_small_py"]
