"""Testing code that uses jqc: run jobs on a virtual clock, assert on what was enqueued, inject faults.

* :func:`drain` / :func:`adrain` / :class:`BurstWorker` run queues' jobs with a real worker until
  idle, a clock time, a predicate or n finished jobs (:mod:`jqc.testing.limits`);
* :func:`perform_job` / :func:`aperform_job` run one handler once;
* :func:`inline` makes queues whose ``add`` runs the job at once (:mod:`jqc.testing.inline`);
* :func:`assert_enqueued`, :func:`refute_enqueued`, :func:`all_enqueued` check what queues hold
  (the criteria: :mod:`jqc.testing.matching`); :func:`assert_flow` checks a whole flow's states
  (:mod:`jqc.testing.flows`);
* :func:`crash_worker`, :func:`expire_lock`, :func:`drop_connection` are faults for a drain;
* :func:`temporary_connection` is a connection for one test, outside pytest.

The pytest fixtures (``jqc_connection``, ``jqc_clock``, ``jqc_backend``, ``jqc_queue``,
``jqc_async_queue``, ``jqc_worker``, ``jqc_seed``, ``jqc_rng``) and the ``jqc`` marker come from the
plugin jqc registers with pytest (``jqc_pytest``); everything they hand out can also be built with
the helpers here. See ``docs/testing.md``.
"""

from jqc.testing.assertions import all_enqueued, assert_enqueued, enqueued_jobs, refute_enqueued
from jqc.testing.backend import temporary_connection
from jqc.testing.drain import BurstWorker, Handlers, QueueLike, adrain, drain
from jqc.testing.faults import Fault, crash_worker, drop_connection, expire_lock
from jqc.testing.flows import assert_flow, draw_flow
from jqc.testing.inline import InlineAsyncQueue, InlineConnection, InlineQueue, inline
from jqc.testing.perform import aperform_job, perform_job
from jqc.testing.report import DrainError, DrainResult, JobReport, Run

__all__ = [
    "BurstWorker",
    "DrainError",
    "DrainResult",
    "Fault",
    "Handlers",
    "InlineAsyncQueue",
    "InlineConnection",
    "InlineQueue",
    "JobReport",
    "QueueLike",
    "Run",
    "adrain",
    "all_enqueued",
    "aperform_job",
    "assert_enqueued",
    "assert_flow",
    "crash_worker",
    "drain",
    "draw_flow",
    "drop_connection",
    "enqueued_jobs",
    "expire_lock",
    "inline",
    "perform_job",
    "refute_enqueued",
    "temporary_connection",
]
