"""Every queue operation, built once as sans-IO calls; Queue and AsyncQueue only run them.

Each method returns a :class:`~jqc.engine.calls.ScriptCall`, a
:class:`~jqc.engine.calls.CommandCall`, or a generator of them (for bounded loops), never touching a
client itself. Times in the public API are seconds (float); scripts take whole milliseconds.

The operations are grouped by concern, one module each (``ops_producing``, ``ops_reading``,
``ops_events``, ``ops_dead``, ``ops_admin``, ``ops_settings``, ``ops_working``, ``ops_schedules``,
``ops_flows``, on ``ops_base``);
:class:`QueueOperations` is all of them for one queue.
"""

from __future__ import annotations

from jqc.engine.arguments import BATCH, BULK_CHUNK, CLEANABLE, LISTABLE, MAX_LOCK, MAX_NAME
from jqc.engine.ops_admin import Administering
from jqc.engine.ops_dead import DeadLetters
from jqc.engine.ops_events import Events
from jqc.engine.ops_flows import FlowFollowUps
from jqc.engine.ops_producing import OptionArgs, Producing
from jqc.engine.ops_schedules import Scheduling
from jqc.engine.ops_settings import QueueSettings, Settings
from jqc.engine.ops_working import Working
from jqc.engine.results import (
    ClaimResult,
    CompleteResult,
    Counts,
    DeadLetterPage,
    Event,
    FailResult,
    Page,
    RecoverResult,
    Renewal,
    SearchPage,
    WorkerInfo,
)

__all__ = [
    "BATCH",
    "BULK_CHUNK",
    "CLEANABLE",
    "LISTABLE",
    "MAX_LOCK",
    "MAX_NAME",
    "ClaimResult",
    "CompleteResult",
    "Counts",
    "DeadLetterPage",
    "Event",
    "FailResult",
    "OptionArgs",
    "Page",
    "QueueOperations",
    "QueueSettings",
    "RecoverResult",
    "Renewal",
    "SearchPage",
    "WorkerInfo",
]


class QueueOperations(FlowFollowUps, Scheduling, Producing, Events, DeadLetters, Administering, Settings, Working):
    """Builds the calls of one queue. Holds no connection and does no I/O."""
