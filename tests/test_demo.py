"""The demo's summary explains how its numbers add up, whatever the run did."""

from __future__ import annotations

import dataclasses

import jqc
from jqc import demo

BASE = demo.Summary(
    photos=10, planned_jobs=30, not_created=1, jobs=29, completed=28, dead_lettered=1, lost=0, completed_twice=0,
    retries=2, killed_holding=5, stranded=5, recovered_stalls=5, throughput_per_s=1.0, wait_p50_ms=1.0,
    wait_p95_ms=1.0, run_p50_ms=1.0, run_p95_ms=1.0, workers=2, concurrency=2, wall_seconds=1.0, backend="embedded",
)  # fmt: skip


def test_the_job_total_is_explained() -> None:
    (jobs, _) = demo.explain(BASE)
    assert "30 planned (10 photos x 3 stages) - 1 next stages never added after a dead letter = 29" in jobs
    assert "= 28 completed + 1 dead-lettered" in jobs


def test_every_kind_of_stall_count_is_explained() -> None:
    assert "all 5 recovered" in demo.explain(BASE)[1]
    done_first = dataclasses.replace(BASE, killed_holding=10, stranded=7, recovered_stalls=7)
    assert "10: 7 still active in Redis, 3 already reported done; all 7 recovered" in demo.explain(done_first)[1]
    under_load = dataclasses.replace(BASE, recovered_stalls=7)
    assert "7 recovered = those 5 + 2 whose locks ran out under load" in demo.explain(under_load)[1]
    prefetched = dataclasses.replace(BASE, killed_holding=3)
    assert "5 active in Redis under its name (2 claimed but not yet started)" in demo.explain(prefetched)[1]


def test_progress_counts_finished_jobs_of_those_added() -> None:
    counts = jqc.Counts(waiting=1, delayed=0, active=2, completed=5, failed=1, dead=1, paused=False)
    assert demo.progress_line(counts, 10.0).startswith("  finished      6/9 jobs (completed 5, dead 1)")
