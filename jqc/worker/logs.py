"""The worker's logs: plain :mod:`logging` records, with stable fields for machines.

Every line goes through the standard :mod:`logging` module (logger ``jqc.worker`` unless the worker
was given another), so an application's own configuration (handlers, levels, formats) applies.
The lines that matter to an operator carry their facts as fields too, under the record attribute
``jqc`` (pass them with ``extra=fields(...)``): an ``event`` name and the values the message
mentions, by stable names:

* every worker line: ``event``, ``worker`` (the worker's id), ``queue`` where one queue is meant;
* ``attempt_failed`` (WARNING): ``job``, ``job_name``, ``attempt``, ``attempts`` (allowed),
  ``error_type``, ``error``, ``retry_at`` (ISO 8601, UTC), ``retry_in`` (seconds);
* ``dead_letter`` (WARNING): ``job``, ``job_name``, ``attempt``, ``attempts``, ``error_type``,
  ``error``, ``reason`` (``error``, ``timeout``, ``failed`` by the handler, ``stalled``);
* ``completed`` (DEBUG): ``job``, ``job_name``, ``attempt``;
* ``summary`` (INFO, every ``summary_interval``): ``interval``, ``done``, ``failed`` (failed
  attempts), ``retried``, ``dead``, ``active``, ``waiting``, ``delayed`` (queue depths, summed
  over the worker's queues; ``queues`` has them per queue);
* ``redis_error`` (WARNING, or ERROR for refusals that need an operator): ``where``,
  ``error_type``, ``error``, ``retry_in``; ``redis_ok``: ``outage`` (seconds), ``failed_calls``;
* ``unreachable`` (WARNING, each failed attempt to reach Redis at start): ``url``, ``attempt``,
  ``error_type``, ``error``, ``retry_in``;
* ``started``, ``signal``, ``lock_lost``, ``stalled``, ``stopped`` (with ``stats``).

:class:`JsonFormatter` prints each record as one JSON object per line (``time``, ``level``,
``logger``, ``message``, then the fields, then ``exception`` when there is one);
:func:`configure` sets up the root logger for ``jqc worker`` unless the application already did.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, TextIO

from jqc.errors import InvalidOptionError

__all__ = ["FORMATS", "TEXT_FORMAT", "JsonFormatter", "configure", "fields", "iso_time"]

#: The log formats ``jqc worker --log-format`` offers.
FORMATS = ("text", "json")
#: The line format of ``--log-format text``.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_BASE = ("time", "level", "logger", "message")


def fields(event: str, **values: object) -> dict[str, Any]:
    """``extra=`` for a log call: the event name and its facts, kept on the record as ``jqc``."""
    return {"jqc": {"event": event, **values}}


def iso_time(seconds: float) -> str:
    """A clock time (seconds since the epoch) as ISO 8601 in UTC, to the millisecond."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; jqc's fields (see the module docstring) included."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON: time, level, logger, message, its jqc fields, exception."""
        out: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "jqc", None)
        if isinstance(extra, dict):
            for key, value in extra.items():
                if key not in _BASE:
                    out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str, separators=(",", ":"), ensure_ascii=False)


def configure(log_format: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None) -> bool:
    """Log to ``stream`` (stderr) in ``log_format`` at ``level``, unless the root logger already
    has handlers (the application configured logging itself); True when it set logging up."""
    if log_format not in FORMATS:
        raise InvalidOptionError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    if root.handlers:
        return False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return True
