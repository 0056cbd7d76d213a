"""JSON encoding with clear errors: jqc stores job data, results and progress as JSON text only."""

from __future__ import annotations

import json
import math
from typing import Any

from jqc.errors import CorruptJobError, DataNotJsonError, PayloadTooLargeError

_ALLOWED = "dict with str keys, list, tuple, str, int, float, bool or None"


def _check(value: Any, path: str) -> None:
    # json.dumps would silently turn int keys into strings and accept NaN; jqc refuses both so
    # that what a handler reads back is exactly what was added.
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return
    if isinstance(value, float):  # float subclasses too: json.dumps would refuse their NaN late
        if not math.isfinite(value):
            raise DataNotJsonError(f"{path}: {value!r} is not a finite number and cannot be stored as JSON")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DataNotJsonError(f"{path}: key {key!r} is {type(key).__name__}; JSON object keys must be str")
            _check(item, f"{path}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, (str, int, float)):  # subclasses such as enums or numpy-free IntEnum
        return
    raise DataNotJsonError(f"{path}: {kind.__name__} is not JSON (allowed: {_ALLOWED})")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(value: Any, *, what: str = "data", max_bytes: int | None = None) -> str:
    """Encode ``value`` as compact JSON, or raise a typed error naming the offending path."""
    try:
        _check(value, what)
    except RecursionError:
        raise DataNotJsonError(f"{what} is nested too deeply (or contains itself) to be stored as JSON") from None
    text = _ENCODER.encode(value)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        near = text[max(0, exc.start - 30) : exc.end + 10]
        raise DataNotJsonError(f"{what} holds a lone surrogate, which UTF-8 cannot carry, near {near!r}") from None
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLargeError(f"{what} is {size} bytes as JSON; the limit is {max_bytes} bytes")
    return text


def decode(text: str, *, what: str) -> Any:
    """Decode stored JSON, raising :class:`CorruptJobError` if Redis holds something else."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CorruptJobError(f"{what} is not valid JSON: {text[:80]!r}") from exc
