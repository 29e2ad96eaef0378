"""Selector for the message check: compiled ``message_c`` if available, else ``message_py``."""

import os
from typing import TYPE_CHECKING

from .message_py import depth_exceeds as depth_exceeds_py
from .message_py import message_problem as message_problem_py
from .message_py import value_problem as value_problem_py

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .message_c import depth_exceeds as depth_exceeds_c
        from .message_c import message_problem as message_problem_c
        from .message_c import value_problem as value_problem_c
    except ImportError:  # not built: fall back to pure Python
        message_problem_c = value_problem_c = depth_exceeds_c = None
else:
    message_problem_c = value_problem_c = depth_exceeds_c = None

COMPILED = message_problem_c is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    message_problem = message_problem_py
    value_problem = value_problem_py
    depth_exceeds = depth_exceeds_py
else:
    message_problem = message_problem_py if message_problem_c is None else message_problem_c
    value_problem = value_problem_py if value_problem_c is None else value_problem_c
    depth_exceeds = depth_exceeds_py if depth_exceeds_c is None else depth_exceeds_c

__all__ = ["COMPILED", "depth_exceeds", "depth_exceeds_c", "depth_exceeds_py",
           "message_problem", "message_problem_c", "message_problem_py",
           "value_problem", "value_problem_c", "value_problem_py"]
