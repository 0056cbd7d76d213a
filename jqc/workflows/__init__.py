"""Workflows on top of the engine: schedules that fire exactly once per tick. (Flows, trees of jobs
across queues, are engine operations: :mod:`jqc.engine.ops_flows`, ``docs/workflows.md``.)

:mod:`jqc.workflows.driver` is the sans-IO pass that fires due ticks, run by one elected worker per
queue (:mod:`jqc.worker.chores`) and by the simulator; the schedules themselves are stored by the
engine (:meth:`jqc.Queue.schedule`).
"""

from jqc.workflows.driver import SCHEDULE_LEASE, DrivePass, drive, fire_due, lease

__all__ = ["SCHEDULE_LEASE", "DrivePass", "drive", "fire_due", "lease"]
