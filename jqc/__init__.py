"""jqc, the Job Queue Coordinator: production job queues on Redis, provable in a simulator.

The public API is re-exported here; everything else is internal and may change.
"""

from jqc.clock import Clock, SystemClock, VirtualClock
from jqc.connection import Connection, connect
from jqc.engine.codes import Code
from jqc.engine.job import Backoff, ClaimedJob, DeadLetter, Job, JobOptions, JobState, Keep, NewJob
from jqc.engine.metrics import Histogram, Metrics
from jqc.engine.operations import (
    ClaimResult,
    CompleteResult,
    Counts,
    DeadLetterPage,
    Event,
    Page,
    RecoverResult,
    WorkerInfo,
)
from jqc.engine.queue import AsyncQueue, Queue
from jqc.errors import (
    BackendError,
    CorruptJobError,
    DataNotJsonError,
    InvalidInputError,
    InvalidJobIdError,
    InvalidOptionError,
    InvalidQueueNameError,
    JobActiveError,
    JobNotFoundError,
    JobStateError,
    JqcError,
    LockLostError,
    MissingDependencyError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ScriptReplyError,
)
from jqc.worker import Fail, JobContext, JobControl, RateLimited, Retry, SyncJobContext, Worker, WorkerStats

__version__ = "0.1.0"

__all__ = [
    "AsyncQueue",
    "Backoff",
    "BackendError",
    "ClaimResult",
    "ClaimedJob",
    "Clock",
    "Code",
    "CompleteResult",
    "Connection",
    "CorruptJobError",
    "Counts",
    "DataNotJsonError",
    "DeadLetter",
    "DeadLetterPage",
    "Event",
    "Fail",
    "Histogram",
    "InvalidInputError",
    "InvalidJobIdError",
    "InvalidOptionError",
    "InvalidQueueNameError",
    "Job",
    "JobActiveError",
    "JobContext",
    "JobControl",
    "JobNotFoundError",
    "JobOptions",
    "JobStateError",
    "JobState",
    "JqcError",
    "Keep",
    "LockLostError",
    "Metrics",
    "MissingDependencyError",
    "NewJob",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Queue",
    "RateLimited",
    "RecoverResult",
    "Retry",
    "ScriptReplyError",
    "SyncJobContext",
    "SystemClock",
    "VirtualClock",
    "Worker",
    "WorkerInfo",
    "WorkerStats",
    "connect",
    "__version__",
]
