"""Handlers run by real ``jqc worker`` processes in the chaos and Redis-restart tests (not a test module).

``handle`` first records that it started, as ``"<pid> <job id> <token>"`` pushed to the Redis list
``$JQC_CHAOS_KEY`` at ``$JQC_CHAOS_URL``, then sleeps ``data["ms"]`` milliseconds, and returns its
pid and token, so the test can match every execution of a job to the process that ran it.

``steady`` records nothing (the restart test's Redis goes away under it): it sleeps ``data["ms"]``
and returns its pid.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis.asyncio

import jqc

_client: redis.asyncio.Redis | None = None


def _recorder() -> redis.asyncio.Redis:
    global _client
    if _client is None:
        _client = redis.asyncio.from_url(os.environ["JQC_CHAOS_URL"])
    return _client


async def handle(ctx: jqc.JobContext) -> dict[str, Any]:
    pid = os.getpid()
    await _recorder().rpush(os.environ["JQC_CHAOS_KEY"], f"{pid} {ctx.id} {ctx.token}")
    await asyncio.sleep(ctx.data.get("ms", 0) / 1000)
    return {"pid": pid, "token": ctx.token}


async def steady(ctx: jqc.JobContext) -> dict[str, Any]:
    await asyncio.sleep(ctx.data.get("ms", 0) / 1000)
    return {"pid": os.getpid()}
