"""The worker runtime: :class:`Worker`, the contexts handed to handlers, and control-flow signals."""

from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.control import Fail, JobControl, RateLimited, Retry, WaitingForChildren
from jqc.worker.lifecycle import WorkerState
from jqc.worker.options import WorkerOptions
from jqc.worker.runtime import JobObserver, QueueSpec, Worker, WorkerStats

__all__ = [
    "Fail",
    "JobContext",
    "JobControl",
    "JobObserver",
    "QueueSpec",
    "RateLimited",
    "Retry",
    "SyncJobContext",
    "WaitingForChildren",
    "Worker",
    "WorkerOptions",
    "WorkerState",
    "WorkerStats",
]
