"""The relay's log: one JSON object per line, built from chosen fields only.

Theory of operation.  The relay's code logs an *event* (a short fixed name
such as ``accepted`` or ``refused``) as the log message and passes its fields
as ``extra={"fields": {...}}``: the principal, a message id in hex, an HTTP
status, an error code, a duration.  :class:`JsonFormatter` writes ``time``
(UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``event`` and those
fields, and a formatted ``exception`` when a record carries one (the relay's
own faults).  Nothing else of a request is ever logged: no body, no envelope,
no header value (so no ``Authorization`` credential), no query; the relay
never holds plaintext, and its keys and passphrase never reach a log call.
Records from other libraries (the server's error log) keep their message as
the ``event``.  :func:`configure_logging` installs the formatter on standard
error for ``ncb-relay serve``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

__all__ = ["JsonFormatter", "configure_logging", "fields"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def fields(**values: object) -> dict[str, object]:
    """``extra`` for a log call: the event's fields (``None`` values are left out)."""
    return {"fields": {k: v for k, v in values.items() if v is not None}}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            for key, value in extra.items():
                line.setdefault(str(key), value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str, ensure_ascii=False)


def configure_logging(level: str = "info", *, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record at ``level`` and above to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.ERROR))
    return handler
