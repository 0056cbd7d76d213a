"""The report of one run: what happened, what was checked, and how to replay it."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jqc.sim.checkers import Checker
from jqc.sim.config import SimConfig
from jqc.sim.events import Journal
from jqc.sim.faults import TARGETS
from jqc.sim.state import Model, ScalingStats, TimeAverages

__all__ = ["Report", "build_report", "percentile"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method; 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(slots=True, kw_only=True)
class Report:
    """What one run did and what it checked: counts, waits, Little's law, faults and their coverage,
    the invariants, the scaling figures, and the command that replays it (:meth:`render`, :meth:`to_json`)."""

    seed: int
    backend: str
    event_log_sha256: str
    events: int
    jobs: int
    completed: int
    dead_lettered: int
    pending: int
    dropped_by_redis: int
    lost: int
    duplicates: int
    duplicate_causes: dict[str, int]
    virtual_seconds: float
    wall_seconds: float
    engine_calls: int
    engine_seconds: float
    throughput_per_s: float
    wait_mean_s: float
    wait_p50_s: float
    wait_p95_s: float
    wait_p99_s: float
    wait_max_s: float
    p_wait: float
    measured_jobs: int
    utilization: float
    littles_law: dict[str, float]
    faults_injected: dict[str, int]
    coverage: dict[str, dict[str, Any]]
    invariants: dict[str, dict[str, int]]
    violation_examples: list[str]
    scaling: dict[str, Any]
    liveness_bound_s: float | None
    replay_command: str
    config: dict[str, Any]
    log_tail: list[str] = field(default_factory=list)
    timeline: list[dict[str, float]] = field(default_factory=list)
    self_check: dict[str, Any] | None = None
    lost_with_failover: int = 0
    failover: dict[str, int] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return sum(v["violations"] for v in self.invariants.values())

    @property
    def ok(self) -> bool:
        return self.violations == 0 and (self.self_check is None or bool(self.self_check.get("equal")))

    @property
    def lifecycles_per_wall_s(self) -> float:
        return (self.completed + self.dead_lettered) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["violations"] = self.violations
        out["lifecycles_per_wall_s"] = round(self.lifecycles_per_wall_s, 1)
        return out

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, indent=2, sort_keys=False)
            fh.write("\n")

    def render(self) -> str:
        """A human-readable summary."""
        lines = [
            f"jqc sim  seed {self.seed}  backend {self.backend}  "
            f"{self.virtual_seconds:.0f} virtual s in {self.wall_seconds:.1f} wall s "
            f"({self.lifecycles_per_wall_s:.0f} job lifecycles/s; {self.engine_calls} engine calls took "
            f"{self.engine_seconds:.1f} s, the simulator {max(0.0, self.wall_seconds - self.engine_seconds):.1f} s)",
            f"jobs {self.jobs}: completed {self.completed}, dead-lettered {self.dead_lettered}, "
            f"pending {self.pending}, lost {self.lost}, dropped by Redis {self.dropped_by_redis}, "
            + (f"lost with failover {self.lost_with_failover}, " if self.failover else "")
            + f"duplicate executions {self.duplicates}"
            + (
                f" ({', '.join(f'{k} {v}' for k, v in self.duplicate_causes.items())})" if self.duplicate_causes else ""
            ),
            f"throughput {self.throughput_per_s:.3f} jobs/s   utilization {self.utilization:.3f}   "
            f"P(wait>0) {self.p_wait:.3f}",
            f"wait mean {self.wait_mean_s:.3f}s  p50 {self.wait_p50_s:.3f}s  p95 {self.wait_p95_s:.3f}s  "
            f"p99 {self.wait_p99_s:.3f}s  max {self.wait_max_s:.3f}s  ({self.measured_jobs} jobs measured)",
            "Little's law: L {L:.4f} = lambda W {lambda_W:.4f};  Lq {Lq:.4f} = lambda Wq {lambda_Wq:.4f}".format(
                **self.littles_law
            ),
        ]
        if self.failover:
            lines.append("failovers: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.failover.items()))
        if self.faults_injected:
            lines.append("faults injected: " + ", ".join(f"{k} {v}" for k, v in self.faults_injected.items()))
            for kind, cov in self.coverage.items():
                lines.append(f"  {kind}: reached its recovery path {cov['reached']} times ({cov['target']})")
        sc = self.scaling
        lines.append(
            f"scaling ({sc['policy']}): {sc['worker_seconds']:.0f} worker-seconds, "
            f"{sc['slo_violation_minutes']} minutes with p95 wait > {sc['slo_wait_s']:.0f}s, "
            f"{sc['direction_reversals']} reversals, drain after bursts {sc['drain_after_burst_s']}, "
            f"lost {sc['lost_by_scaling']}, duplicated {sc['duplicated_by_scaling']}"
        )
        lines.append("invariants:")
        width = max(len(k) for k in self.invariants)
        for name, counts in self.invariants.items():
            extra = f"  (excused {counts['excused']})" if counts.get("excused") else ""
            mark = "ok " if counts["violations"] == 0 else "VIOLATED"
            lines.append(
                f"  {mark:8} {name:{width}}  checked {counts['checked']:>8}  violations {counts['violations']}{extra}"
            )
        for example in self.violation_examples:
            lines.append(f"  ! {example}")
        if self.liveness_bound_s is not None:
            lines.append(
                f"liveness bound: every job finished within {self.liveness_bound_s:.0f}s after the faults healed"
            )
        lines.append(f"event log sha256 {self.event_log_sha256} ({self.events} events)")
        if self.self_check is not None:
            verdict = "the same event log" if self.self_check["equal"] else "a DIFFERENT event log"
            lines.append(f"self-check: a second run of seed {self.seed} gave {verdict}")
        lines.append(f"replay: {self.replay_command}")
        return "\n".join(lines)


def build_report(
    cfg: SimConfig,
    *,
    backend: str,
    journal: Journal,
    checker: Checker,
    model: Model,
    averages: TimeAverages,
    scaling: ScalingStats,
    target: int,
    policy: str,
    engine_calls: int,
    engine_seconds: float,
    liveness_bound: float | None,
    wall: float,
    final: dict[str, int],
    little: dict[str, float],
    failover: dict[str, int] | None = None,
) -> Report:
    """Assemble the report of a finished run (``final``: the total-queue counts, ``little``: Little's law)."""
    ck = checker
    log = journal.log
    end = journal.q.now
    waits = sorted(j.first_start - j.ready for j in model.jobs.values() if j.measured and j.first_start is not None)
    ready, busy = averages.window_areas if averages.window_areas is not None else (averages.a_ready, averages.a_busy)
    injected, reached = journal.injected, journal.reached
    coverage: dict[str, dict[str, Any]] = {
        kind: {"injected": injected.get(kind, 0), "reached": reached.get(kind, 0), "target": description}
        for kind, description in TARGETS.items()
        if injected.get(kind)
    }
    by_scaling = scaling.released_by_scaling + sum(v for k, v in model.duplicate_causes.items() if "scale-down" in k)
    return Report(
        seed=cfg.seed,
        backend=backend,
        event_log_sha256=log.sha256,
        events=log.count,
        jobs=len(model.jobs),
        completed=final["completed"],
        dead_lettered=final["dead_lettered"],
        pending=final["pending"],
        dropped_by_redis=model.dropped,
        lost=final["lost"],
        duplicates=model.duplicates,
        duplicate_causes=dict(sorted(model.duplicate_causes.items())),
        virtual_seconds=end,
        wall_seconds=wall,
        engine_calls=engine_calls,
        engine_seconds=engine_seconds,
        throughput_per_s=model.completed / end if end > 0 else 0.0,
        wait_mean_s=math.fsum(waits) / len(waits) if waits else 0.0,
        wait_p50_s=percentile(waits, 0.5),
        wait_p95_s=percentile(waits, 0.95),
        wait_p99_s=percentile(waits, 0.99),
        wait_max_s=waits[-1] if waits else 0.0,
        p_wait=sum(1 for w in waits if w > 1e-9) / len(waits) if waits else 0.0,
        measured_jobs=len(waits),
        utilization=busy / ready if ready > 0 else 0.0,
        littles_law=little,
        faults_injected=dict(sorted(injected.items())),
        coverage=coverage,
        invariants={name: inv.as_dict() for name, inv in ck.inv.items()},
        violation_examples=[f"{inv.name}: {e}" for inv in ck.inv.values() for e in inv.examples],
        scaling={
            "policy": policy,
            "worker_seconds": averages.a_pool,
            "slo_wait_s": cfg.slo_wait,
            "slo_violation_minutes": scaling.slo_minutes,
            "direction_reversals": scaling.reversals,
            "drain_after_burst_s": scaling.drain_times,
            "lost_by_scaling": scaling.lost_by_scaling,
            "duplicated_by_scaling": by_scaling,
            "final_target": target,
        },
        liveness_bound_s=liveness_bound,
        replay_command=cfg.replay_command(),
        config=cfg.to_json(),
        log_tail=list(log.recent)[-30:] if ck.violations else [],
        timeline=scaling.timeline,
        lost_with_failover=final.get("lost_with_failover", 0),
        failover=dict(failover or {}),
    )
