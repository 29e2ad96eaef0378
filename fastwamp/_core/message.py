"""Selector for the message check: compiled ``message_c`` if available, else ``message_py``."""

import os
from typing import TYPE_CHECKING

from .message_py import message_problem as message_problem_py

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .message_c import message_problem as message_problem_c
    except ImportError:  # not built: fall back to pure Python
        message_problem_c = None
else:
    message_problem_c = None

COMPILED = message_problem_c is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    message_problem = message_problem_py
else:
    message_problem = message_problem_py if message_problem_c is None else message_problem_c

__all__ = ["COMPILED", "message_problem", "message_problem_c", "message_problem_py"]
