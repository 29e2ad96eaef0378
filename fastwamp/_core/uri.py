"""Selector for URI validation: compiled ``uri_c`` if available, else ``uri_py``."""

import os
from typing import TYPE_CHECKING

from .uri_py import (
    MATCH_EXACT,
    MATCH_POLICIES,
    MATCH_PREFIX,
    MATCH_WILDCARD,
)
from .uri_py import uri_within_limits as uri_within_limits_py
from .uri_py import validate_uri as validate_uri_py

if not os.environ.get("FASTWAMP_NO_EXTENSIONS"):
    try:
        from .uri_c import uri_within_limits as uri_within_limits_c
        from .uri_c import validate_uri as validate_uri_c
    except ImportError:  # not built: fall back to pure Python
        validate_uri_c = uri_within_limits_c = None
else:
    validate_uri_c = uri_within_limits_c = None

COMPILED = validate_uri_c is not None
if TYPE_CHECKING:
    # The compiled twin is built from the same source, so check against it.
    validate_uri = validate_uri_py
    uri_within_limits = uri_within_limits_py
else:
    validate_uri = validate_uri_py if validate_uri_c is None else validate_uri_c
    uri_within_limits = uri_within_limits_py if uri_within_limits_c is None else uri_within_limits_c

__all__ = [
    "COMPILED",
    "MATCH_EXACT",
    "MATCH_POLICIES",
    "MATCH_PREFIX",
    "MATCH_WILDCARD",
    "uri_within_limits",
    "uri_within_limits_c",
    "uri_within_limits_py",
    "validate_uri",
    "validate_uri_c",
    "validate_uri_py",
]
