"""Backoff policies: how long a failed attempt waits before its retry (stored with the job as JSON)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jqc.errors import CorruptJobError, InvalidOptionError

__all__ = ["MAX_DELAY", "Backoff", "BackoffFunction", "number"]

MAX_DELAY = 10 * 365 * 24 * 3600.0  # ten years, in seconds

BackoffFunction = Callable[[int, BaseException | None], float]
"""A user backoff: (attempt number that failed, the error if known) -> seconds to wait."""


def number(value: object, name: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidOptionError(f"{name} must be a finite number of seconds, not {value!r}")
    if not low <= value <= high:
        raise InvalidOptionError(f"{name} must be between {low} and {high}, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to wait before retrying a failed attempt.

    * ``Backoff.fixed(5)``: 5 s every time.
    * ``Backoff.exponential(1, cap=60, jitter=0.5)``: 1, 2, 4, … s, at most 60, each shortened by a
      random share of up to 50% so that many failing jobs do not retry in lockstep.
    * ``Backoff.custom("name")``: a function registered with the worker under that name, given
      the attempt number and the error; only its name is stored with the job.
    """

    kind: Literal["fixed", "exponential", "custom"]
    delay: float = 0.0
    cap: float | None = None
    jitter: float = 0.0
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential", "custom"):
            raise InvalidOptionError(f"unknown backoff kind {self.kind!r}")
        number(self.delay, "backoff delay", low=0, high=MAX_DELAY)
        if self.cap is not None:
            number(self.cap, "backoff cap", low=0, high=MAX_DELAY)
        number(self.jitter, "backoff jitter", low=0, high=1)
        if self.kind == "custom" and not (isinstance(self.name, str) and self.name):
            raise InvalidOptionError("a custom backoff needs the name of a registered function")

    @classmethod
    def fixed(cls, seconds: float, *, jitter: float = 0.0) -> Backoff:
        """Wait ``seconds`` before every retry, give or take ``jitter`` (a fraction of the delay)."""
        return cls(kind="fixed", delay=seconds, jitter=jitter)

    @classmethod
    def exponential(cls, seconds: float, *, cap: float | None = None, jitter: float = 0.0) -> Backoff:
        """Wait ``seconds * 2 ** (attempt - 1)`` before retry ``attempt``, at most ``cap``, give or take ``jitter``."""
        return cls(kind="exponential", delay=seconds, cap=cap, jitter=jitter)

    @classmethod
    def custom(cls, name: str) -> Backoff:
        """Ask the worker's backoff function registered under ``name`` (``Worker(backoff_functions=...)``)."""
        return cls(kind="custom", name=name)

    def seconds(
        self,
        attempt: int,
        *,
        rng: random.Random | None = None,
        error: BaseException | None = None,
        functions: Mapping[str, BackoffFunction] | None = None,
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        if self.kind == "custom":
            fn = (functions or {}).get(self.name or "")
            if fn is None:
                raise InvalidOptionError(f"no backoff function registered under {self.name!r}")
            return number(fn(attempt, error), f"backoff {self.name!r} result", low=0, high=MAX_DELAY)
        wait = self.delay if self.kind == "fixed" else self.delay * 2.0 ** min(attempt - 1, 62)
        if self.cap is not None:
            wait = min(wait, self.cap)
        if self.jitter:
            wait *= 1.0 - self.jitter * (rng or random).random()
        return wait

    def to_json(self) -> dict[str, Any]:
        """The policy as the JSON object stored with the job."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "custom":
            out["name"] = self.name
        else:
            out["delay"] = self.delay
            if self.cap is not None:
                out["cap"] = self.cap
            if self.jitter:
                out["jitter"] = self.jitter
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Backoff:
        """The policy from its stored JSON object (raises CorruptJobError when it is not one)."""
        if not isinstance(raw, dict):
            raise CorruptJobError(f"stored backoff is not an object: {raw!r}")
        try:
            return cls(**raw)
        except (TypeError, InvalidOptionError) as exc:
            raise CorruptJobError(f"stored backoff is invalid: {raw!r}") from exc
