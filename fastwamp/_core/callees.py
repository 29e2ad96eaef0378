"""Selector for callee selection: compiled ``callees_c`` if available, else ``callees_py``."""

import os
from typing import TYPE_CHECKING

from .callees_py import (
    INVOKE_FIRST,
    INVOKE_LAST,
    INVOKE_LEAST_INFLIGHT,
    INVOKE_P2C,
    INVOKE_POLICIES,
    INVOKE_RANDOM,
    INVOKE_ROUNDROBIN,
    INVOKE_SHARDED,
    INVOKE_SINGLE,
)
from .callees_py import Callee as CalleePy
from .callees_py import CalleeGroup as CalleeGroupPy

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .callees_c import Callee as CalleeC
        from .callees_c import CalleeGroup as CalleeGroupC
    except ImportError:  # not built: fall back to pure Python
        CalleeC = None
        CalleeGroupC = None
else:
    CalleeC = None
    CalleeGroupC = None

COMPILED = CalleeGroupC is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    Callee = CalleePy
    CalleeGroup = CalleeGroupPy
else:
    Callee = CalleePy if CalleeC is None else CalleeC
    CalleeGroup = CalleeGroupPy if CalleeGroupC is None else CalleeGroupC

__all__ = [
    "COMPILED",
    "INVOKE_FIRST",
    "INVOKE_LAST",
    "INVOKE_LEAST_INFLIGHT",
    "INVOKE_P2C",
    "INVOKE_POLICIES",
    "INVOKE_RANDOM",
    "INVOKE_ROUNDROBIN",
    "INVOKE_SHARDED",
    "INVOKE_SINGLE",
    "Callee",
    "CalleeC",
    "CalleeGroup",
    "CalleeGroupC",
    "CalleeGroupPy",
    "CalleePy",
]
