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
import importlib.util
import os
import sys
from types import ModuleType
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


def interpreted_module(module: str) -> ModuleType:
    """A fresh copy of ``module`` run from its source under the name ``module +
    "_source"`` (so it keeps its Python classes), for comparing the two builds in
    one process (tests, benchmarks)."""
    name = module + "_source"
    found = sys.modules.get(name)
    if found is not None:
        return found
    origin = importlib.util.find_spec(module)
    assert origin is not None and origin.origin is not None
    spec = importlib.util.spec_from_file_location(name, origin.origin)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded
