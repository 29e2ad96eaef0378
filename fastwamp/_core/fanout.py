"""Selector for event fan-out: compiled ``fanout_c`` if available, else ``fanout_py``."""

import os
from typing import TYPE_CHECKING

from .fanout_py import ReceiverFilter as ReceiverFilterPy
from .fanout_py import SharedMessage as SharedMessagePy

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .fanout_c import ReceiverFilter as ReceiverFilterC
        from .fanout_c import SharedMessage as SharedMessageC
    except ImportError:  # not built: fall back to pure Python
        ReceiverFilterC = SharedMessageC = None
else:
    ReceiverFilterC = SharedMessageC = None

COMPILED = ReceiverFilterC is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    ReceiverFilter = ReceiverFilterPy
    SharedMessage = SharedMessagePy
else:
    ReceiverFilter = ReceiverFilterPy if ReceiverFilterC is None else ReceiverFilterC
    SharedMessage = SharedMessagePy if SharedMessageC is None else SharedMessageC

__all__ = ["COMPILED", "ReceiverFilter", "ReceiverFilterC", "ReceiverFilterPy", "SharedMessage",
           "SharedMessageC", "SharedMessagePy"]
