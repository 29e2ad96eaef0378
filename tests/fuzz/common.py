"""What the fuzz tests share: the well-behaved roles, the meta procedures and their
signatures, and a log handler that collects the router's errors."""

from __future__ import annotations

import copy
import inspect
import logging

from hypothesis import register_random

from fastwamp.testing import DEFAULT_ROLES, make_router

from .strategies import meta_call

GOOD_ROLES = copy.deepcopy(DEFAULT_ROLES)
GOOD_ROLES["caller"]["features"]["progressive_call_invocations"] = True
GOOD_ROLES["callee"]["features"]["progressive_call_invocations"] = True
GOOD_ROLES["callee"]["features"]["call_timeout"] = True

# Let hypothesis seed the callee selector's random source, so runs replay.
for _module in ("fastwamp._core.callees_py", "fastwamp._core.callees_c"):
    try:
        register_random(__import__(_module, fromlist=["_default_rng"])._default_rng)
    except (ImportError, AttributeError):
        pass


def meta_procedures() -> dict[str, tuple[int, int, list[str]]]:
    """Every meta procedure the router registers, with its handler's signature:
    (required positional arguments, most positional arguments, keyword names)."""
    router, _ = make_router()
    out = {}
    for name, handler in router.realms["realm1"].meta._handlers.items():
        params = list(inspect.signature(handler).parameters.values())[1:]  # after the caller
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        names = [p.name for p in params if p.kind is not p.VAR_POSITIONAL]
        if any(p.kind is p.VAR_KEYWORD for p in params):  # get_events(**filters)
            names += ["limit", "reverse", "topic", "from_time", "after_time", "before_time",
                      "until_time", "from_publication", "after_publication",
                      "before_publication", "until_publication"]
        out[name] = (len(required), len(positional), names)
    return out


META_PROCEDURES = meta_procedures()
#: A CALL of each meta procedure with random arguments.
META_CALLS = {name: meta_call(name, signature) for name, signature in META_PROCEDURES.items()}


def internal(error: object) -> bool:
    """Whether ``error`` is the router's internal error (the hostile sessions of the fuzz
    tests never send it as their own error URI)."""
    return error == "wamp.error.internal_error"


class ErrorLog(logging.Handler):
    """Collects what the router logs at ERROR and above (a caught exception, mostly)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
