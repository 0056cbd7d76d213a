"""Checks of the arguments queue operations take, and the limits they enforce.

Times in the public API are seconds (float); scripts take whole milliseconds. Every check raises
:class:`jqc.InvalidOptionError` naming the argument, before anything is sent.
"""

from __future__ import annotations

from jqc.errors import InvalidOptionError

__all__ = [
    "BATCH",
    "BULK_CHUNK",
    "CLEANABLE",
    "LISTABLE",
    "MAX_LOCK",
    "MAX_NAME",
    "positive_int",
    "seconds_to_ms",
    "worker_id",
]

BULK_CHUNK = 500
BATCH = 1000
MAX_NAME = 200
MAX_LOCK = 24 * 3600.0
LISTABLE = ("waiting", "delayed", "active", "completed", "failed", "waiting-children", "dead")
CLEANABLE = ("completed", "failed", "delayed", "waiting")


def seconds_to_ms(value: object, name: str, *, low: float = 0.0, high: float = 10 * 365 * 86400.0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidOptionError(f"{name} must be a number of seconds between {low} and {high}, not {value!r}")
    return round(value * 1000)


def positive_int(value: object, name: str, *, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise InvalidOptionError(f"{name} must be an int between 1 and {high}, not {value!r}")
    return value


def worker_id(worker: object) -> str:
    if not isinstance(worker, str) or not worker or len(worker) > MAX_NAME:
        raise InvalidOptionError(f"worker id must be a non-empty str of at most {MAX_NAME} characters, not {worker!r}")
    return worker
