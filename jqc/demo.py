"""The photo-pipeline demo: thumbnail -> resize -> tag, run by real jqc workers.

Several workers with several jobs in flight each take photos through three stages. Some attempts
fail and are retried with backoff, some photos are broken for good and end in the dead letters,
and one worker is killed in the middle of its jobs: its locks expire and another worker's stall
check hands the jobs back. At the end every photo is checked: it finished every stage or its
chain ends in a dead letter, and no job was completed twice (counted from the event stream).

Every number it prints adds up: ``jobs`` = ``completed`` + ``dead_lettered`` (a photo whose job is
dead-lettered gets no next stage, so ``jobs`` is ``planned_jobs`` less ``not_created``), and of the
``killed_holding`` jobs the killed worker had in hand, ``stranded`` were still active in Redis (the
rest had already been reported done when it died) and come back through stall recovery.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import jqc

STAGES = ("thumbnail", "resize", "tag")
QUEUE = "jqc-demo-photos"
LOCK = 2.0  # short locks so the killed worker's jobs come back within seconds


@dataclass
class Summary:
    """What the demo reports (also written with --json)."""

    photos: int
    planned_jobs: int  # photos x stages, if no photo stopped early
    not_created: int  # next stages never added, because a photo's job was dead-lettered
    jobs: int  # jobs that existed: planned_jobs - not_created = completed + dead_lettered
    completed: int
    dead_lettered: int
    lost: int
    completed_twice: int
    retries: int
    killed_holding: int  # jobs in the killed worker's hands when it died
    stranded: int  # of those, still active in Redis: only stall recovery brings them back
    recovered_stalls: int  # stall recoveries: the stranded jobs, plus any lock that ran out under load
    throughput_per_s: float
    wait_p50_ms: float
    wait_p95_ms: float
    run_p50_ms: float
    run_p95_ms: float
    workers: int
    concurrency: int
    wall_seconds: float
    backend: str


class Pipeline:
    """The handlers: each stage does a little (simulated) work and enqueues the next stage."""

    def __init__(self, queue: jqc.AsyncQueue, rng: random.Random, broken: set[str]) -> None:
        self.queue = queue
        self.rng = rng
        self.broken = broken
        self.options = jqc.JobOptions(attempts=4, backoff=jqc.Backoff.exponential(0.05, cap=1.0, jitter=0.5))

    def handlers(self) -> dict[str, Any]:
        return {stage: self._stage(index) for index, stage in enumerate(STAGES)}

    def _stage(self, index: int) -> Any:
        async def handle(ctx: jqc.JobContext) -> dict[str, Any]:
            photo = ctx.data["photoId"]
            await self.queue.clock.sleep(self.rng.uniform(0.001, 0.006))  # the "image work"
            if index == 1 and photo in self.broken:
                raise jqc.Fail(f"photo {photo}: corrupt image header")
            if self.rng.random() < 0.05:
                raise OSError(f"photo {photo}: storage timeout (transient)")
            if index + 1 < len(STAGES):
                # A fixed job id makes the hand-off idempotent: a re-run adds nothing twice.
                await self.queue.add(STAGES[index + 1], {"photoId": photo}, self.options, job_id=f"{photo}:{index + 1}")
            return {"photoId": photo, "stage": STAGES[index]}

        return handle


def progress_line(c: jqc.Counts, rate: float) -> str:
    """One progress line: jobs finished (completed or dead-lettered) of the jobs added so far."""
    return (
        f"  finished {c.completed + c.failed:6d}/{c.total} jobs (completed {c.completed}, dead {c.failed})  "
        f"waiting {c.waiting:5d}  delayed {c.delayed:3d}  active {c.active:3d}  ({rate:,.0f} jobs/s)"
    )


async def _progress(queue: jqc.AsyncQueue, started: float, out: Any, done: asyncio.Event) -> None:
    while not done.is_set():
        await queue.clock.sleep(1.0)
        c = await queue.counts()
        out(progress_line(c, c.completed / max(1e-9, time.perf_counter() - started)))


async def _run(photos: int, workers: int, concurrency: int, url: str | None, seed: int, out: Any) -> Summary:
    rng = random.Random(seed)
    conn = jqc.connect(url)
    queue = conn.async_queue(QUEUE, events_max_len=10 * photos * len(STAGES))
    await queue.obliterate(force=True)
    broken = {str(p) for p in rng.sample(range(photos), max(1, photos // 100))}
    pipeline = Pipeline(queue, rng, broken)
    await queue.add_bulk(
        jqc.NewJob(
            "thumbnail",
            {"photoId": str(p)},
            jqc.JobOptions(job_id=f"{p}:0", attempts=4, backoff=pipeline.options.backoff),
        )
        for p in range(photos)
    )
    pool = [
        jqc.Worker(
            queue,
            pipeline.handlers(),
            concurrency=concurrency,
            name=f"worker-{n + 1}",
            lock=LOCK,
            stall_interval=0.5,
            heartbeat=1.0,
            rng=random.Random(seed + n),
        )
        for n in range(workers)
    ]
    started = time.perf_counter()
    finished = asyncio.Event()
    reporter = asyncio.ensure_future(_progress(queue, started, out, finished))
    for worker in pool:
        await worker.start()
    # Kill one worker while it holds jobs, as a SIGKILL would: no hand-back, no goodbye.
    victim = pool[-1]
    while victim.active == 0:
        await queue.clock.sleep(0.001)
    await queue.clock.sleep(0.2)
    held = victim.active
    await victim.kill()
    # What the kill left behind is what Redis still shows as the victim's: jobs whose completion
    # had already been written before it died are done, the rest wait for their locks to expire.
    active = (await queue.list_jobs("active", 0, 10_000)).jobs
    stranded = sum(1 for job in active if job.worker == victim.id)
    out(f"  {victim.name} killed holding {held} job(s): {kill_story(held, stranded)};")
    out(f"  the others take the {stranded} back once their {LOCK:g} s locks expire")
    survivors = pool[:-1]
    await asyncio.gather(*(w.run_until_empty(delayed=True) for w in survivors))
    wall = time.perf_counter() - started
    finished.set()
    reporter.cancel()

    counts = await queue.counts()
    out(progress_line(counts, counts.completed / wall))
    metrics = await queue.metrics(window_minutes=60)
    completions: Counter[str] = Counter()
    last = "0"
    while batch := await queue.events(last, count=10_000):
        completions.update(e.job_id for e in batch if e.name == "completed")
        last = batch[-1].id
    dead = {d.job.id for d in await queue.find_dead(lambda d: True)}
    lost = 0
    for p in range(photos):
        stage = 0
        while completions[f"{p}:{stage}"]:
            stage += 1
        lost += stage < len(STAGES) and f"{p}:{stage}" not in dead
    stats = [w.stats for w in pool]
    summary = Summary(
        photos=photos,
        planned_jobs=photos * len(STAGES),
        not_created=photos * len(STAGES) - counts.total,
        jobs=counts.total,
        completed=counts.completed,
        dead_lettered=counts.dead,
        lost=lost,
        completed_twice=sum(1 for n in completions.values() if n > 1),
        retries=sum(s.retried for s in stats),
        killed_holding=held,
        stranded=stranded,
        recovered_stalls=sum(s.recovered for s in stats),
        throughput_per_s=round(counts.completed / wall, 1),
        wait_p50_ms=round((metrics.wait.percentile(50) or 0) * 1000, 1),
        wait_p95_ms=round((metrics.wait.percentile(95) or 0) * 1000, 1),
        run_p50_ms=round((metrics.run.percentile(50) or 0) * 1000, 1),
        run_p95_ms=round((metrics.run.percentile(95) or 0) * 1000, 1),
        workers=workers,
        concurrency=concurrency,
        wall_seconds=round(wall, 2),
        backend="embedded" if conn.in_process else conn.safe_url,
    )
    await queue.obliterate(force=True)
    await conn.aclose()
    return summary


def run(
    *,
    photos: int = 2000,
    workers: int = 4,
    concurrency: int = 8,
    url: str | None = None,
    seed: int = 7,
    out: Any = print,
) -> Summary:
    """Run the demo and return its summary (``out`` receives the progress lines)."""
    logging.getLogger("jqc.worker").setLevel(logging.ERROR)  # the demo prints its own story
    return asyncio.run(_run(photos, workers, concurrency, url, seed, out))


def render(summary: Summary) -> str:
    """The summary as aligned ``name  value`` lines, then how its numbers add up."""
    rows = [(k.replace("_", " "), v) for k, v in asdict(summary).items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join([*(f"  {k:<{width}}  {v}" for k, v in rows), *explain(summary)])


def kill_story(held: int, stranded: int) -> str:
    """What became of the jobs a killed worker held: still active in Redis, or already done."""
    if stranded <= held:
        return f"{stranded} still active in Redis, {held - stranded} already reported done"
    return f"{stranded} active in Redis under its name ({stranded - held} claimed but not yet started)"


def explain(s: Summary) -> list[str]:
    """How the summary's numbers relate, in words (each line is checked by the demo's tests)."""
    lines = [
        f"  jobs: {s.planned_jobs} planned ({s.photos} photos x {len(STAGES)} stages) - {s.not_created} next stages "
        f"never added after a dead letter = {s.jobs} = {s.completed} completed + {s.dead_lettered} dead-lettered"
    ]
    extra = s.recovered_stalls - s.stranded
    stalls = f"  stalls: the killed worker held {s.killed_holding}: {kill_story(s.killed_holding, s.stranded)}"
    if extra > 0:
        stalls += f"; {s.recovered_stalls} recovered = those {s.stranded} + {extra} whose locks ran out under load"
    elif extra < 0:
        stalls += f"; {s.recovered_stalls} recovered so far (the rest failed for good after too many stalls)"
    else:
        stalls += f"; all {s.recovered_stalls} recovered by the others' stall checks"
    return [*lines, stalls]
