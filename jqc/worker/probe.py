"""A health file for liveness probes: the worker says what it is doing, a probe judges it.

A worker started with ``health_file`` (``jqc worker --health-file PATH``) rewrites that file every
``heartbeat`` seconds (atomically: a temporary file renamed over it) with, per queue, when its
last claim attempt reached the server, how many slots are free, whether claiming is held off
(rate limited) and why the last claim failed. No Redis call is involved in writing it, so a
stale file means the worker's event loop itself is stuck.

:func:`judge` (``jqc worker --probe``) reads it and says whether the worker is consuming, by
the rule of :mod:`jqc.engine.liveness` seen from inside: a queue with a free slot whose claim
loop has not reached the server for ``stuck_after`` seconds means the worker is not consuming.
Inside the worker the queue's depth is not needed: an idle worker polls every
``stall_interval`` anyway, so a wedged claim loop shows even when nothing waits. The file's times
are on the worker's clock; the probe compares them with its own (the same host's system clock).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jqc.worker.shared import Shared

__all__ = ["ProbeResult", "judge", "remove", "snapshot", "write"]

_VERSION = 1


def snapshot(shared: Shared, *, started_at: float) -> dict[str, Any]:
    """What the health file says about the worker now."""
    now = shared.clock.now()
    return {
        "version": _VERSION,
        "worker": shared.id,
        "pid": os.getpid(),
        "at": now,
        "started": started_at,
        "stuck_after": shared.options.effective_stuck_after,
        "stopping": not shared.lifecycle.running,
        "queues": [
            {
                "queue": lane.name,
                "concurrency": lane.concurrency,
                "active": len(lane.held),
                "polled": lane.polled_at,
                "hold": lane.hold_until(now),
                "error": lane.claim_error,
            }
            for lane in shared.lanes
        ],
    }


def write(path: str, facts: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``facts`` as JSON in one rename (a reader never sees half a file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(facts, out, separators=(",", ":"))
    os.replace(tmp, path)


def remove(path: str) -> None:
    """Delete the health file (the worker stopped): a probe then fails, as it should."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A probe's verdict: ``ok`` and a one-line ``reason``."""

    ok: bool
    reason: str


def _s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def judge(path: str, now: float, *, stuck_after: float | None = None) -> ProbeResult:
    """Read the health file at ``path`` and judge it at clock time ``now`` (the worker's clock).

    ``stuck_after`` overrides the threshold the worker wrote. Fails when the file is missing or
    unreadable, not rewritten for longer than the threshold, the worker is stopping, or one of
    its queues has a free slot and has not been polled within the threshold (and is not held off).
    """
    try:
        with open(path, encoding="utf-8") as src:
            facts = json.load(src)
        limit = float(stuck_after if stuck_after is not None else facts["stuck_after"])
        at, started = float(facts["at"]), float(facts["started"])
        queues = list(facts["queues"])
    except FileNotFoundError:
        return ProbeResult(False, f"no health file at {path}: the worker has not started, or it stopped")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return ProbeResult(False, f"health file {path} cannot be read: {type(exc).__name__}: {exc}")
    worker = facts.get("worker", "?")
    if now - at > limit:
        return ProbeResult(False, f"worker {worker} has not rewritten its health file for {_s(now - at)} (its event "
                                  f"loop is stuck; limit {_s(limit)})")  # fmt: skip
    if facts.get("stopping"):
        return ProbeResult(False, f"worker {worker} is shutting down")
    consuming: list[str] = []
    for lane in queues:
        try:
            name, free = str(lane["queue"]), int(lane["concurrency"]) - int(lane["active"])
            polled, hold = lane.get("polled"), lane.get("hold")
            error = str(lane.get("error") or "")
        except (KeyError, ValueError, TypeError) as exc:
            return ProbeResult(False, f"health file {path} cannot be read: {type(exc).__name__}: {exc}")
        if free <= 0 or (hold is not None and float(hold) > now):
            consuming.append(name)
            continue
        since = max(float(t) for t in (polled, started, hold) if t is not None)
        if now - since > limit:
            what = "no claim has reached the server since it started" if polled is None else (
                f"its last claim to reach the server was {_s(now - float(polled))} ago")  # fmt: skip
            why = f"; its claims fail: {error}" if error else ""
            return ProbeResult(False, f"worker {worker} is not consuming {name}: {free} free slot(s) and {what} "
                                      f"(limit {_s(limit)}){why}")  # fmt: skip
        consuming.append(name)
    return ProbeResult(True, f"worker {worker} is consuming {', '.join(consuming)}")
