"""Compiled twins of router modules.

``member.py`` and ``dealer.py`` are compiled as they are (typed by
``member_c.pxd`` and ``dealer_c.pxd``) into ``member_c`` and ``dealer_c``. At
the end of its source, each interpreted module replaces its classes by the
compiled ones when they are built and not disabled with
``FASTWAMP_NO_EXTENSIONS=1``, so every importer gets one implementation.
``FASTWAMP_INTERPRETED_ROUTER=1`` keeps only these twins out (the compiled
``_core`` stays), for measuring what they gain (``bench/router_twins.py``).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

#: Router modules with a compiled twin -> True when the twin is in use.
IN_USE: dict[str, bool] = {}


def compiled_twin(module: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The classes ``names`` of ``module + "_c"``, or nothing when it is not available."""
    found: dict[str, Any] = {}
    if not (os.environ.get("FASTWAMP_NO_EXTENSIONS")
            or os.environ.get("FASTWAMP_INTERPRETED_ROUTER")):
        try:
            twin = importlib.import_module(module + "_c")
        except ImportError:
            twin = None
        if twin is not None:
            found = {name: getattr(twin, name) for name in names}
    IN_USE[module] = bool(found)
    return found
