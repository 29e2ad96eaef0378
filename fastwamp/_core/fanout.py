"""Selector for event fan-out: compiled ``fanout_c`` if available, else ``fanout_py``."""

import os
from typing import TYPE_CHECKING

from .fanout_py import ReceiverFilter as ReceiverFilterPy
from .fanout_py import SharedMessage as SharedMessagePy
from .fanout_py import send_to as send_to_py

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .fanout_c import ReceiverFilter as ReceiverFilterC
        from .fanout_c import SharedMessage as SharedMessageC
        from .fanout_c import send_to as send_to_c
    except ImportError:  # not built: fall back to pure Python
        ReceiverFilterC = SharedMessageC = None
        send_to_c = None
else:
    ReceiverFilterC = SharedMessageC = None
    send_to_c = None

COMPILED = ReceiverFilterC is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    ReceiverFilter = ReceiverFilterPy
    SharedMessage = SharedMessagePy
    send_to = send_to_py
else:
    ReceiverFilter = ReceiverFilterPy if ReceiverFilterC is None else ReceiverFilterC
    SharedMessage = SharedMessagePy if SharedMessageC is None else SharedMessageC
    send_to = send_to_py if send_to_c is None else send_to_c

__all__ = ["COMPILED", "ReceiverFilter", "ReceiverFilterC", "ReceiverFilterPy", "SharedMessage",
           "SharedMessageC", "SharedMessagePy", "send_to", "send_to_c", "send_to_py"]
