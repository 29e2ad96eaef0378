"""Log output: readable text lines (the default) or one JSON object per line.

:func:`configure_logging` sets the root logger up for the router process.  With
``log_format = "json"`` each record is one JSON object: ``time`` (UTC, RFC 3339
with milliseconds), ``level``, ``logger``, ``message`` (the formatted line), the
fields a line passes in ``extra`` (session lines: ``event``, ``realm``,
``session``, ``authid``, ``authrole``, ``transport``, ``peer``, ...), and
``exception`` with the traceback when there is one.

The WebSocket engines' own wire logs (request and header dumps, frames) stay at
WARNING, also at the debug level, unless ``FASTWAMP_LOG_WIRE=1``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import Any

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: The logger the WebSocket engines write their wire-level lines to.
WIRE_LOGGER = "fastwamp.transport.websocket.wire"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` ("text" or "json")."""
    numeric = getattr(logging, level.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    wire_level = max(numeric, logging.WARNING)
    if numeric <= logging.DEBUG and os.environ.get("FASTWAMP_LOG_WIRE") == "1":
        wire_level = logging.DEBUG
    logging.getLogger(WIRE_LOGGER).setLevel(wire_level)
