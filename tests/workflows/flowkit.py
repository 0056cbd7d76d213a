"""Helpers for the flow tests: run one job of a queue by hand, and the photo pipeline as a flow."""

from __future__ import annotations

from typing import Any

import jqc
from jqc import Flow, JobOptions


def photo_flow(photo: str = "cat.jpg", **publish: Any) -> Flow:
    """thumbnail, then resize and tag in parallel, then publish (each stage on its own queue)."""
    data = {"photo": photo}
    thumb = Flow("thumbnail", data, queue="thumbs", options=JobOptions(job_id=f"thumb-{photo}"))
    resize = Flow("resize", data, queue="resize", children=[thumb], options=JobOptions(job_id=f"resize-{photo}"))
    tag = Flow("tag", data, queue="tags", options=JobOptions(job_id=f"tag-{photo}"))
    return Flow("publish", data, children=[resize, tag], options=JobOptions(job_id=f"pub-{photo}"), **publish)


def run_one(queue: jqc.Queue, result: Any = None, *, fail: str | None = None) -> jqc.ClaimedJob | None:
    """Claim the next job of ``queue`` and complete it with ``result`` (or fail it for good)."""
    claimed = queue.claim("w1")
    if not claimed.jobs:
        return None
    job = claimed.jobs[0]
    if fail is not None:
        queue.fail(job, fail, retry=False)
    else:
        queue.complete(job, result)
    return job


def state(conn: jqc.Connection, queue: str, job_id: str) -> str | None:
    job = conn.queue(queue).get_job(job_id)
    return None if job is None else job.state.value


def crash_after(conn: jqc.Connection, op: Any, calls: int) -> int:
    """Run the first ``calls`` calls of the sans-IO ``op`` on ``conn``, then drop it, as a process
    that dies there would; returns how many calls the op had made (fewer if it ended sooner)."""
    from jqc.engine.calls import run_sync

    made = 0
    try:
        call = next(op)
        while made < calls:
            reply = run_sync(conn.backend, call)
            made += 1
            call = op.send(reply)
    except StopIteration:
        pass
    op.close()
    return made


def every_state(conn: jqc.Connection, queues: tuple[str, ...]) -> dict[str, str]:
    """queue/id -> state of every job of ``queues`` (dead letters not included)."""
    out: dict[str, str] = {}
    for name in queues:
        queue = conn.queue(name)
        for state in ("waiting", "delayed", "active", "completed", "failed", "waiting-children"):
            for job in queue.list_jobs(state).jobs:
                out[f"{name}/{job.id}"] = state
    return out
