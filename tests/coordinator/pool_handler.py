"""Handlers for the ``jqc pool`` smoke test (imported by the worker processes the pool starts)."""

from __future__ import annotations

import time
from typing import Any


def handle(ctx: Any) -> dict[str, int]:
    time.sleep(0.05)
    return {"pid": __import__("os").getpid()}
