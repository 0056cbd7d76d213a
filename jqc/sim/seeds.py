"""Many seeds of one configuration, spread over processes, merged into one report.

``jqc sim --seeds 1-1000 --parallel N`` runs the configuration once per seed. With ``parallel`` above
1 the seeds go to that many worker processes (spawned, each with its own backend: the embedded one,
or its own uniquely named queue on a real Redis), a few seeds at a time; every run is the same as
``jqc sim --seed S`` would make it, so the merged report does not depend on how many processes ran
it or in which order they finished. :class:`SeedsReport` lists every failing seed with the command
that replays it, and a digest of every seed's event log (SHA-256 over ``"<seed> <sha256>"`` lines
in seed order) that two sweeps can be compared by.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jqc.errors import InvalidOptionError
from jqc.sim.config import SimConfig

__all__ = ["MAX_SEEDS", "SeedRun", "SeedsReport", "default_parallel", "parse_seeds", "run_seeds"]

MAX_SEEDS = 1_000_000
"""The most seeds one sweep may run."""


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"1-1000"``, ``"3,7,9-12"`` ...: each once, in increasing order."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise InvalidOptionError(
                f"--seeds: expected N, N-M or a comma-separated list of them, not {part!r}"
            ) from None
        if first < 0 or last < first:
            raise InvalidOptionError(f"--seeds: a range runs from a seed >= 0 up to a larger one, not {part!r}")
        if last - first + 1 + len(seeds) > MAX_SEEDS:
            raise InvalidOptionError(f"--seeds: at most {MAX_SEEDS:,} seeds in one sweep")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


@dataclass(frozen=True, slots=True)
class SeedRun:
    """What one seed's run said: its verdict, event log hash, counts, and how to replay it."""

    seed: int
    ok: bool
    violations: int
    event_log_sha256: str
    jobs: int
    lifecycles: int
    wall_seconds: float
    failed_invariants: tuple[str, ...]
    violation_examples: tuple[str, ...]
    replay_command: str


@dataclass(slots=True)
class SeedsReport:
    """Every seed's :class:`SeedRun`, in seed order, and the sweep's own figures."""

    runs: list[SeedRun]
    parallel: int
    wall_seconds: float
    failed: list[SeedRun] = field(init=False)

    def __post_init__(self) -> None:
        self.runs.sort(key=lambda r: r.seed)
        self.failed = [r for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        """Every seed held every invariant."""
        return not self.failed

    @property
    def digest(self) -> str:
        """SHA-256 over every seed's event log hash, in seed order: equal sweeps, equal digests."""
        h = hashlib.sha256()
        for r in self.runs:
            h.update(f"{r.seed} {r.event_log_sha256}\n".encode())
        return h.hexdigest()

    @property
    def lifecycles_per_wall_s(self) -> float:
        """Jobs finished (completed or dead-lettered) over every seed, per wall second of the sweep."""
        return sum(r.lifecycles for r in self.runs) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def verdict(self) -> str:
        """One line: how many seeds held and how many failed."""
        seeds = _seed_text([r.seed for r in self.runs])
        if self.ok:
            return f"jqc sim seeds {seeds}: all {len(self.runs)} ok  digest {self.digest}"
        return f"jqc sim seeds {seeds}: {len(self.failed)} of {len(self.runs)} FAILED  digest {self.digest}"

    def render(self) -> str:
        """The merged report as text: the verdict, the sweep's figures, and each failing seed."""
        jobs = sum(r.jobs for r in self.runs)
        lines = [
            self.verdict(),
            f"{jobs} jobs over {len(self.runs)} seeds in {self.wall_seconds:.1f} wall s on {self.parallel} "
            f"process{'es' if self.parallel != 1 else ''} ({self.lifecycles_per_wall_s:.0f} job lifecycles/s)",
        ]
        for r in self.failed:
            lines.append(f"seed {r.seed}: {r.violations} violations ({', '.join(r.failed_invariants) or 'self-check'})")
            lines.extend(f"    {example}" for example in r.violation_examples)
            lines.append(f"    replay: {r.replay_command}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The merged report as JSON: the verdict, the digest, the failing seeds and every seed's run."""
        return {
            "ok": self.ok,
            "seeds": len(self.runs),
            "failed": [asdict(r) for r in self.failed],
            "digest": self.digest,
            "parallel": self.parallel,
            "wall_seconds": round(self.wall_seconds, 3),
            "lifecycles_per_wall_s": round(self.lifecycles_per_wall_s, 1),
            "runs": [asdict(r) for r in self.runs],
        }


def _seed_text(seeds: Sequence[int]) -> str:
    if not seeds:
        return "(none)"
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    return f"{seeds[0]}..{seeds[-1]} ({len(seeds)} seeds)"


def run_one(config: SimConfig, self_check: bool, seed: int) -> SeedRun:
    """Run ``config`` with ``seed`` (twice with ``self_check``) and keep what the merged report needs."""
    from jqc.sim.runner import run

    report = run(config.replace(seed=seed), self_check=self_check)
    return SeedRun(
        seed=seed,
        ok=report.ok,
        violations=report.violations,
        event_log_sha256=report.event_log_sha256,
        jobs=report.jobs,
        lifecycles=report.completed + report.dead_lettered,
        wall_seconds=round(report.wall_seconds, 3),
        failed_invariants=tuple(name for name, counts in report.invariants.items() if counts["violations"]),
        violation_examples=tuple(report.violation_examples[:3]),
        replay_command=report.replay_command,
    )


def run_seeds(
    config: SimConfig,
    seeds: Sequence[int],
    *,
    parallel: int = 1,
    self_check: bool = False,
    on_done: Callable[[SeedRun], None] | None = None,
) -> SeedsReport:
    """Run ``config`` once per seed, over ``parallel`` processes (1: in this one), and merge the reports.

    ``on_done`` is called with each seed's run as it finishes (in the order runs finish).
    """
    if parallel < 1:
        raise InvalidOptionError(f"parallel must be at least 1 process, not {parallel!r}")
    if config.custom_policy is not None and parallel > 1:
        raise InvalidOptionError("a custom scaling policy runs in this process only: use parallel=1")
    if not seeds:
        raise InvalidOptionError("no seeds to run")
    started = time.perf_counter()
    one = functools.partial(run_one, config, self_check)
    runs: list[SeedRun] = []
    processes = min(parallel, len(seeds))
    if processes == 1:
        for seed in seeds:
            runs.append(one(seed))
            if on_done is not None:
                on_done(runs[-1])
    else:
        # A few seeds per task: fewer hand-offs, while every process still gets work to the end.
        chunk = max(1, min(16, len(seeds) // (processes * 8)))
        context = multiprocessing.get_context("spawn")  # no inherited connections, threads or state
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
            for seed_run in pool.map(one, seeds, chunksize=chunk):
                runs.append(seed_run)
                if on_done is not None:
                    on_done(seed_run)
    return SeedsReport(runs, parallel=processes, wall_seconds=time.perf_counter() - started)


def default_parallel() -> int:
    """Every core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)
