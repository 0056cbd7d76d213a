"""Validation of the numeric options of scaling policies and of the coordinator that runs them."""

from __future__ import annotations

import math

from jqc.errors import InvalidOptionError

__all__ = ["check_positive"]


def check_positive(value: object, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (>= 0 with ``allow_zero``); else InvalidOptionError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidOptionError(f"{name} must be a number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidOptionError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}")
    return float(value)
