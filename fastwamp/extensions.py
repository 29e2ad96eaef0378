"""Which compiled modules are in use, and the one line the router logs when some are not.

An install without a C compiler (or with ``FASTWAMP_NO_EXTENSIONS=1``) runs the
pure-Python twins of the compiled core: the same behaviour, slower. The
router says so once at start (:func:`log_compiled_core_status`), as msgpack and
aiohttp do.
"""

from __future__ import annotations

import importlib
import logging
import os

#: Modules whose compiled twin (``X_c``) the router uses when it is built.
CORE_MODULES = (
    "fastwamp._core.uri",
    "fastwamp._core.trie",
    "fastwamp._core.callees",
    "fastwamp._core.fanout",
    "fastwamp._core.message",
    "fastwamp._core.msgpack_check",
)
ROUTER_TWIN_MODULES = ("fastwamp.router.member", "fastwamp.router.dealer",
                       "fastwamp.router.broker", "fastwamp.transport.rawsocket_reader")


def interpreted_modules() -> list[str]:
    """The modules of the compiled core that run as pure Python in this process."""
    from fastwamp.router import twins

    missing = [name for name in CORE_MODULES
               if not importlib.import_module(name).COMPILED]
    for name in ROUTER_TWIN_MODULES:
        importlib.import_module(name)  # fills twins.IN_USE
        if not twins.IN_USE.get(name):
            missing.append(name)
    return missing


def compiled_core_status() -> tuple[int, str] | None:
    """The level and text of the start-up line about the compiled core; None when all of
    it is in use."""
    missing = interpreted_modules()
    if not missing:
        return None
    if os.environ.get("FASTWAMP_NO_EXTENSIONS"):
        return logging.INFO, "FASTWAMP_NO_EXTENSIONS is set: running the pure-Python core"
    if os.environ.get("FASTWAMP_INTERPRETED_ROUTER") and all(
            name in ROUTER_TWIN_MODULES for name in missing):
        return logging.INFO, ("FASTWAMP_INTERPRETED_ROUTER is set: running the interpreted "
                              "dealer and member")
    names = ", ".join(name.rpartition(".")[2] for name in missing)
    return logging.WARNING, (
        f"compiled core missing ({names}): running pure Python, several times slower per "
        "message; reinstall fastwamp where a C compiler and the Python headers are installed")


def log_compiled_core_status(log: logging.Logger) -> None:
    """Log :func:`compiled_core_status` (nothing when the whole compiled core is in use)."""
    status = compiled_core_status()
    if status is not None:
        log.log(status[0], "%s", status[1])
