"""The flow methods of :class:`~jqc.engine.queue.Queue` (``docs/workflows.md``, "Flows"), apart
so that the queue module stays small; :class:`~jqc.engine.async_queue.AsyncQueue` has the same as
coroutines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from jqc.engine.calls import Step, run_sync
from jqc.engine.flows import Flow, FlowNode
from jqc.engine.job import ClaimedJob
from jqc.engine.ops_flows import REPAIR_GRACE
from jqc.engine.queue_base import QueueBase, T
from jqc.errors import JqcError, PermissionDeniedError


class QueueFlows(QueueBase):
    """A synchronous queue's calls and its flow methods: what :class:`jqc.Queue` builds on."""

    def _run(self, step: Step[T]) -> T:
        return run_sync(self.connection.backend, step)

    def add_flow(self, flow: Flow) -> FlowNode:
        """Create ``flow``: a parent job and its children (any depth, on any queues of this
        connection; a child's queue defaults to its parent's, the root's to this queue).

        Either the whole flow is created or, when this raises before the first write, nothing is;
        a crash after it leaves an intent that the workers' repair finishes (``docs/workflows.md``).
        Each parent waits in ``waiting-children`` until every child is done. Returns the stored
        tree; a root ``job_id`` already in use returns that flow unchanged.
        """
        plan = self.ops.plan(flow)
        try:
            return self._run(self.ops.add_flow(plan))
        except PermissionDeniedError:  # a queue of the flow refused us: take back what was written
            for call in self.ops.abort_calls(plan):
                with contextlib.suppress(JqcError):
                    self._run(call)
            raise

    def add_children(self, claimed: ClaimedJob, children: Sequence[Flow]) -> int:
        """Fan-out at run time: the held job ``claimed`` gets ``children`` (each a :class:`jqc.Flow`,
        any depth, any queue) and waits for them in ``waiting-children``; its lock is released at
        once and it runs again when they are done. Token-checked (:class:`jqc.LockLostError` once
        the lock is lost, nothing changed). What ``ctx.wait_for_children`` calls; returns how many
        children were new (a child already listed is not added twice)."""
        return self._run(self.ops.park(claimed, children))

    def flow(self, job_id: str) -> FlowNode | None:
        """The flow below job ``job_id`` with every job's state, or None if there is no such job."""
        return self._run(self.ops.flow(job_id))

    def repair_flows(self, *, grace: float = REPAIR_GRACE) -> int:
        """Finish flow steps a crash left half done on this queue (creations, children's outcomes
        older than ``grace`` seconds); what workers' stall checks run. Returns how many it finished."""
        return self._run(self.ops.repair_flows(grace=grace))
