"""What a check of ``jqc doctor`` finds: a :class:`Finding`, graded by :class:`Level`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Finding", "Level"]


class Level(enum.StrEnum):
    """How a finding is graded: ok and info pass, warn asks for a look, fail is broken."""

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        """0 for ok and info, 1 for warn, 2 for fail (the worst finding sets the exit status)."""
        return {"ok": 0, "info": 0, "warn": 1, "fail": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome."""

    check: str
    level: Level
    message: str
