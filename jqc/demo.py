"""The photo-pipeline demo: thumbnail -> resize -> tag, driven through the engine on a virtual clock.

Several workers claim photos in batches, some attempts fail and are retried with backoff, some
photos are broken for good and end in the dead letters, and one worker crashes holding its jobs,
which stall recovery hands to the others. At the end every photo is checked: it must have finished
all stages or be dead-lettered, and no stage may have completed twice.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import jqc

STAGES = ("thumbnail", "resize", "tag")
QUEUE = "jqc-demo-photos"


@dataclass
class Summary:
    jobs: int
    completed: int
    dead_lettered: int
    lost: int
    completed_twice: int
    retries: int
    recovered_stalls: int
    throughput_per_s: float
    wait_p50_ms: float
    wait_p95_ms: float
    run_p95_ms: float
    workers: int
    wall_seconds: float


def run(
    *,
    photos: int = 2000,
    workers: int = 4,
    batch: int = 8,
    url: str | None = None,
    seed: int = 7,
    out: Callable[[str], object] = print,
) -> Summary:
    rng = random.Random(seed)
    clock = jqc.VirtualClock()
    conn = jqc.connect(url, clock=clock)
    queue = conn.queue(QUEUE)
    queue.obliterate(force=True)
    started = time.perf_counter()
    opts = jqc.JobOptions(attempts=3, backoff=jqc.Backoff.exponential(2, cap=30, jitter=0.5))
    queue.add_bulk(
        jqc.NewJob(
            "thumbnail",
            {"photoId": str(i), "stage": 0},
            jqc.JobOptions(job_id=f"{i}:0", attempts=3, backoff=opts.backoff, priority=0 if i % 10 else 1),
        )
        for i in range(photos)
    )
    broken = set(rng.sample(range(photos), max(1, photos // 100)))
    done: Counter[str] = Counter()
    retries = recovered = 0
    crash_at = photos // 2
    names = [f"worker-{n}" for n in range(workers)]
    alive = set(names)
    held: dict[str, list[jqc.ClaimedJob]] = {n: [] for n in names}
    processed = 0
    added = photos
    while True:
        progress = False
        for name in names:
            if name not in alive:
                continue
            if not held[name]:
                got = queue.claim(name, count=batch, lock=30)
                held[name] = list(got.jobs)
            if not held[name]:
                continue
            progress = True
            claimed = held[name].pop(0)
            clock.advance(rng.expovariate(1 / 0.05))
            photo, stage = claimed.job.data["photoId"], claimed.job.data["stage"]
            if int(photo) in broken and stage == 1:
                queue.fail(claimed, "corrupt image header", retry=False, worker=name)
            elif rng.random() < 0.05:
                outcome = queue.fail(claimed, "transient: storage timeout", rng=rng, worker=name)
                retries += outcome == "retry"
            else:
                queue.complete(claimed, {"photoId": photo, "stage": STAGES[stage]}, worker=name)
                done[claimed.id] += 1
                if stage + 1 < len(STAGES):
                    queue.add(
                        STAGES[stage + 1], {"photoId": photo, "stage": stage + 1}, opts, job_id=f"{photo}:{stage + 1}"
                    )
                    added += 1
            processed += 1
            if processed == crash_at:
                out(f"  {name} crashes holding {len(held[name])} claimed jobs")
                alive.discard(name)
        if processed % 500 == 0 and progress:
            c = queue.counts()
            out(f"  {processed:6d} attempts: waiting {c.waiting}, delayed {c.delayed}, completed {c.completed}")
        if not progress:
            counts = queue.counts()
            if counts.waiting + counts.delayed + counts.active == 0:
                break
            clock.advance(5)  # idle: let backoff delays and crashed workers' locks expire
            recovered += len(queue.recover_stalled().recovered)
    counts = queue.counts()
    metrics = queue.metrics(window_minutes=24 * 60)
    wall = time.perf_counter() - started
    completed_ids = set(done)
    dead_ids = {d.job.id for d in queue.dead_letters(limit=1_000_000).letters}
    # A photo is lost unless it finished every stage, or its chain ends in a dead letter.
    lost = 0
    for p in range(photos):
        stage = 0
        while f"{p}:{stage}" in completed_ids:
            stage += 1
        lost += stage < len(STAGES) and f"{p}:{stage}" not in dead_ids
    summary = Summary(
        jobs=added,
        completed=len(completed_ids),
        dead_lettered=counts.dead,
        lost=lost,
        completed_twice=sum(1 for n in done.values() if n > 1),
        retries=retries,
        recovered_stalls=recovered,
        throughput_per_s=round(len(completed_ids) / wall, 1),
        wait_p50_ms=round((metrics.wait.percentile(50) or 0) * 1000, 1),
        wait_p95_ms=round((metrics.wait.percentile(95) or 0) * 1000, 1),
        run_p95_ms=round((metrics.run.percentile(95) or 0) * 1000, 1),
        workers=workers,
        wall_seconds=round(wall, 2),
    )
    queue.obliterate(force=True)
    return summary


def render(summary: Summary) -> str:
    rows = [(k.replace("_", " "), v) for k, v in asdict(summary).items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main(photos: int, workers: int, url: str | None, json_path: str | None) -> int:
    print(f"jqc demo: {photos} photos through {' -> '.join(STAGES)} on {workers} workers ({url or 'embedded backend'})")
    summary = run(photos=photos, workers=workers, url=url)
    print(render(summary))
    ok = (
        summary.lost == 0
        and summary.completed_twice == 0
        and summary.completed + summary.dead_lettered == summary.jobs
        and summary.recovered_stalls >= 1
    )
    print("every photo ended completed or dead-lettered, none twice" if ok else "CHECK FAILED")
    if json_path:
        Path(json_path).write_text(json.dumps(asdict(summary), indent=2))
    return 0 if ok else 1
