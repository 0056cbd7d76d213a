"""jqc, the Job Queue Coordinator: production job queues on Redis, provable in a simulator.

The public API is re-exported here; everything else is internal and may change.
"""

from jqc.clock import Clock, SystemClock, VirtualClock
from jqc.connection import Connection, connect
from jqc.engine.codes import Code
from jqc.engine.job import Backoff, ClaimedJob, DeadLetter, Job, JobOptions, JobState, Keep, NewJob
from jqc.engine.metrics import Histogram, Metrics
from jqc.engine.operations import ClaimResult, Counts, DeadLetterPage, Event, Page, RecoverResult
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
    ScriptReplyError,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncQueue",
    "Backoff",
    "BackendError",
    "ClaimResult",
    "ClaimedJob",
    "Clock",
    "Code",
    "Connection",
    "CorruptJobError",
    "Counts",
    "DataNotJsonError",
    "DeadLetter",
    "DeadLetterPage",
    "Event",
    "Histogram",
    "InvalidInputError",
    "InvalidJobIdError",
    "InvalidOptionError",
    "InvalidQueueNameError",
    "Job",
    "JobActiveError",
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
    "Queue",
    "RecoverResult",
    "ScriptReplyError",
    "SystemClock",
    "VirtualClock",
    "connect",
    "__version__",
]
