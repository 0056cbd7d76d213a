"""An application running a worker, for the signal tests (not a test module).

``python -m tests.worker.signal_app serve|run URL QUEUE`` works the queue with :func:`slow`
(which sleeps ``data["ms"]`` milliseconds) through ``await worker.serve()`` inside the
application's own ``asyncio.run`` (``serve``) or through the blocking ``worker.run()`` (``run``),
with a grace period of ``$JQC_GRACE`` seconds (default 30). It installs no signal handler of its
own: the worker's handling is what is tested. It exits 0 once the worker stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import jqc


async def slow(ctx: jqc.JobContext) -> dict[str, Any]:
    await asyncio.sleep(ctx.data.get("ms", 0) / 1000)
    return {"pid": os.getpid()}


def main(mode: str, url: str, queue: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    conn = jqc.connect(url)
    grace = float(os.environ.get("JQC_GRACE", "30"))
    worker = jqc.Worker(conn.queue(queue), slow, grace=grace, summary_interval=None)
    if mode == "serve":

        async def app() -> None:
            await worker.serve()
            await conn.aclose()

        asyncio.run(app())
    else:
        worker.run()
    print(f"exited cleanly: {worker.stats}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
