"""Flows: creating a tree of jobs across queues, delivering children's outcomes, repairing what a
crash left half done, and reading a flow back (sans-IO, like every operation).

Each step is one script on one queue (one Redis Cluster slot); ``docs/workflows.md`` ("Flows") has
the protocol: a creation writes its intent on the root's queue first, creates every node held,
marks the intent, releases the nodes, drops the intent; a child's outcome is written to its own
queue's outbox by the script that finishes it, then delivered to the parent and acknowledged. The
repair (:meth:`Flowing.repair_flows`, run by workers' stall checks) finishes either after a crash.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from jqc import _json
from jqc.clock import now_ms
from jqc.engine.arguments import BATCH, BULK_CHUNK, positive_int
from jqc.engine.calls import CommandCall, Op, Reply, ScriptCall, checked
from jqc.engine.flows import Flow, FlowNode, FlowPlan, plan_flow
from jqc.engine.job import ClaimedJob, Job, JobOptions
from jqc.engine.keys import QueueKeys, validate_job_id
from jqc.engine.lua_source import script_keys
from jqc.engine.ops_producing import Producing
from jqc.engine.records import pack, record_of, unpack
from jqc.engine.replies import as_int, as_str
from jqc.engine.results import RecoverResult
from jqc.errors import InvalidOptionError

__all__ = ["FlowFollowUps", "Flowing"]

#: Seconds an unfinished creation or an undelivered outcome waits before a repair takes it over.
REPAIR_GRACE = 300.0


def _first_str(reply: Reply) -> str:
    return as_str(checked(reply)[1])


class Flowing(Producing):
    """Flow operations of one queue; calls for the flow's other queues use the same prefix and clock."""

    def _on(self, queue: str, script: str, *args: str | int | float, parse: Any) -> ScriptCall[Any]:
        keys = QueueKeys(self.keys.prefix, queue).declared(script_keys(script))
        return ScriptCall(script, keys, (now_ms(self.clock), self.events_max_len, *args), parse)

    def _option_fields(self, opts: JobOptions) -> dict[str, str | int]:
        if opts.dedup is not None:
            # dedup is add's: a flow node's id is the flow's own (a root id in use returns that flow)
            raise InvalidOptionError("dedup does not apply to a flow's jobs: give the root a job_id instead")
        _, priority, lifo, attempts, extra, kc, ka, fc, fa = self._option_args(opts)[:9]
        fields: dict[str, str | int] = {}
        if priority != 0:
            fields["p"] = priority
        if lifo:
            fields["l"] = "1"
        if attempts != 1:
            fields["a"] = attempts
        for name, value in (("o", extra), ("kc", kc), ("ka", ka), ("fc", fc), ("fa", fa)):
            if value != "":
                fields[name] = value
        return fields

    def plan(self, flow: Flow) -> FlowPlan:
        """Check ``flow`` and plan its records (nothing is written)."""
        if not isinstance(flow, Flow):
            raise InvalidOptionError(f"add_flow takes a jqc.Flow, not {flow!r}")
        return plan_flow(
            flow,
            self.name,
            options_for=lambda given: self.options(given, {}),
            option_fields=self._option_fields,
            check_name=self._check_name,
            encode_data=lambda data: _json.encode(data, what="data", max_bytes=self.max_data_bytes),
        )

    def add_flow(self, flow: Flow | FlowPlan) -> Op[FlowNode]:
        """Create ``flow`` (see :meth:`jqc.Queue.add_flow`); a root id in use returns that flow unchanged."""
        plan = flow if isinstance(flow, FlowPlan) else self.plan(flow)
        root = plan.root
        intent = pack({"st": "c", "sp": plan.to_json()})
        existed = yield self._on(
            root.queue, "flow_create", root.id, intent, 1, root.id, root.record, parse=lambda r: as_int(checked(r)[2])
        )
        if not existed:
            yield from self._finish_creation(plan, created=False)
        tree: FlowNode | None = yield from self.read_flow(root.queue, root.id)
        if tree is None:  # removed (or its queue obliterated) between the writes and this read
            return FlowNode(root.queue, root.id, None)
        return tree

    def abort_calls(self, plan: FlowPlan) -> list[ScriptCall[Any]]:
        """The calls that take back a creation of ``plan`` refused half-way (run each on its own:
        one may be refused too): held nodes on every queue, then the root and its intent."""
        root = plan.root
        calls = [
            self._on(queue, "flow_abort", "", len(chunk), *(n.id for n in chunk), parse=checked)
            for queue, chunk in _chunks(plan.nodes[1:])
            if queue != root.queue
        ]
        on_root = [n.id for n in plan.nodes if n.queue == root.queue]
        calls.append(self._on(root.queue, "flow_abort", root.id, len(on_root), *on_root, parse=checked))
        return calls

    def _finish_creation(self, plan: FlowPlan, *, created: bool) -> Op[None]:
        """Steps 2 to 5 of a creation (all but the root's first write); ``created`` skips step 2."""
        root = plan.root
        by_queue: dict[str, list[str]] = {}
        for node in plan.nodes:
            by_queue.setdefault(node.queue, []).append(node.id)
        if not created:
            for queue, chunk in _chunks(plan.nodes[1:]):
                args = [a for node in chunk for a in (node.id, node.record)]
                yield self._on(queue, "flow_create", "", "", len(chunk), *args, parse=checked)
            yield self._on(root.queue, "flow_step", "mark", root.id, parse=checked)
        for queue, ids in by_queue.items():
            for start in range(0, len(ids), BULK_CHUNK):
                part = ids[start : start + BULK_CHUNK]
                yield self._on(queue, "flow_release", len(part), *part, parse=checked)
        yield self._on(root.queue, "flow_step", "drop", root.id, parse=checked)

    def park(self, claimed: ClaimedJob, children: Sequence[Flow]) -> Op[int]:
        """Fan-out at run time: give held job ``claimed`` these ``children`` and make it wait for
        them (see :meth:`jqc.Queue.add_children`); returns how many children were new."""
        if isinstance(children, Flow) or not isinstance(children, Sequence) or not children:
            raise InvalidOptionError(f"children must be a non-empty sequence of jqc.Flow, not {children!r}")
        plan = self.plan(Flow(claimed.job.name, children=list(children), options=JobOptions(job_id=claimed.id)))
        intent = pack({"st": "c", "sp": plan.to_json()})
        added: int = yield self._call(
            "flow_park", claimed.id, claimed.token, intent, unpack(plan.root.record)["ch"],
            parse=lambda r: as_int(checked(r)[1]),
        )  # fmt: skip
        yield from self._finish_creation(plan, created=False)
        return added

    # -- children's outcomes ----------------------------------------------------------------------

    def deliver(self, queue: str, child_id: str) -> Op[None]:
        """Deliver the outbox message of flow child ``child_id`` of ``queue`` to its parent, and
        on up the flow while parents fail for good because of a child. No message: nothing to do."""
        field = "o:" + child_id
        text: str | None = yield CommandCall(
            ("HGET", QueueKeys(self.keys.prefix, queue).key("fl"), field), lambda r: None if r is None else as_str(r)
        )
        if text is not None:
            yield from self._deliver_message(queue, child_id, text)

    def _deliver_message(self, queue: str, child_id: str, text: str) -> Op[None]:
        msg = unpack(text)
        parent_queue, parent_id = msg.get("q", ""), msg.get("i", "")
        what = ""
        if parent_queue and parent_id:
            what = yield self._on(
                parent_queue, "flow_deliver", parent_id, queue, child_id, msg.get("o", ""), msg.get("v", ""),
                parse=_first_str,
            )  # fmt: skip
        yield self._on(queue, "flow_ack", child_id, text, parse=checked)
        if what == "failed":
            yield from self.deliver(parent_queue, parent_id)

    def deliver_many(self, child_ids: list[str]) -> Op[None]:
        """:meth:`deliver` for several children of this queue."""
        for child_id in child_ids:
            yield from self.deliver(self.name, child_id)

    # -- repair -----------------------------------------------------------------------------------

    def repair_flows(self, *, grace: float = REPAIR_GRACE, limit: int = BATCH) -> Op[int]:
        """Finish what a crash left half done on this queue: creations whose intent is older than
        ``grace`` seconds, children's outcomes not delivered after ``grace`` seconds. Every step is
        idempotent, so a repair racing the original writer changes nothing twice. Returns how many
        entries it finished (at most ``limit``)."""
        limit = positive_int(limit, "limit")
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise InvalidOptionError(f"grace must be a number of seconds >= 0, not {grace!r}")
        cutoff = now_ms(self.clock) - round(grace * 1000)
        cursor, done = "0", 0
        while True:
            cursor, entries = yield self._call("flow_due", cursor, limit, cutoff, parse=_due_page)
            for field, value in entries:
                if field.startswith("o:"):
                    yield from self._deliver_message(self.name, field[2:], value)
                elif field.startswith("i:"):
                    intent = unpack(value)
                    plan = FlowPlan.from_json(intent["sp"])
                    yield from self._finish_creation(plan, created=intent.get("st") == "r")
                done += 1
            if cursor == "0" or done >= limit:
                return done

    # -- reading and removing ---------------------------------------------------------------------

    def flow(self, job_id: str) -> Op[FlowNode | None]:
        """The flow below job ``job_id`` of this queue, with every job's state; None if no such job."""
        tree: FlowNode | None = yield from self.read_flow(self.name, validate_job_id(job_id))
        return tree

    def read_flow(self, queue: str, job_id: str) -> Op[FlowNode | None]:
        """The tree below job ``job_id`` of ``queue`` (its children on any queue), or None."""
        budget = [10_000]
        fields = yield CommandCall(("HGET", QueueKeys(self.keys.prefix, queue).jobs, job_id), record_of)
        if not fields:
            return None
        node: FlowNode = yield from self._node(queue, job_id, fields, None, budget)
        return node

    def _node(self, queue: str, job_id: str, fields: dict[str, str], outcome: Any, budget: list[int]) -> Op[FlowNode]:
        job = Job.from_fields(queue, job_id, fields) if fields else None
        children: list[FlowNode] = []
        for kid in job.children if job else ():
            budget[0] -= 1
            if budget[0] < 0:
                break
            kid_fields = yield CommandCall(("HGET", QueueKeys(self.keys.prefix, kid.queue).jobs, kid.id), record_of)
            children.append((yield from self._node(kid.queue, kid.id, kid_fields, kid, budget)))
        return FlowNode(queue, job_id, job, outcome, tuple(children))

    def remove_flow(self, job_id: str) -> Op[list[str]]:
        """Remove job ``job_id`` and every job below it that has not finished and no worker holds
        (see :meth:`jqc.Queue.remove`); returns the ``queue/id`` of each removed job."""
        tree: FlowNode | None = yield from self.flow(job_id)
        yield self._call("remove", job_id, parse=checked)  # JobNotFoundError, JobActiveError
        removed = [f"{self.name}/{job_id}"]
        for node in tree.walk()[1:] if tree else ():
            if node.job is None or node.job.state.value in ("completed", "failed", "active"):
                continue  # finished ones are kept as any finished job is; a held one finishes on its own
            code = yield self._on(node.queue, "remove", node.id, parse=_code)
            if code == 0:
                removed.append(f"{node.queue}/{node.id}")
        return removed


def _chunks(nodes: tuple[Any, ...]) -> Iterator[tuple[str, list[Any]]]:
    by_queue: dict[str, list[Any]] = {}
    for node in nodes:
        by_queue.setdefault(node.queue, []).append(node)
    for queue, items in by_queue.items():
        for start in range(0, len(items), BULK_CHUNK):
            yield queue, items[start : start + BULK_CHUNK]


def _due_page(reply: Reply) -> tuple[str, list[tuple[str, str]]]:
    body = checked(reply)
    return as_str(body[1]), [(as_str(body[i]), as_str(body[i + 1])) for i in range(2, len(body), 2)]


class FlowFollowUps(Flowing):
    """The second step of the calls that can finish a flow child (see :mod:`jqc.engine.ops_flows`)."""

    def fail_flow(self, claimed: ClaimedJob, call: ScriptCall[str]) -> Op[str]:
        """Run a ``fail`` call; a flow child that failed for good then tells its parent."""
        outcome: str = yield call
        if outcome == "failed" and claimed.job.parent is not None:
            yield from self.deliver_many([claimed.id])
        return outcome

    def recover_flow(self, call: ScriptCall[RecoverResult]) -> Op[RecoverResult]:
        """Run a ``recover`` call; flow children it failed for good then tell their parents."""
        result: RecoverResult = yield call
        if result.failed:
            yield from self.deliver_many(list(result.failed))
        return result

    def replay_flow(self, job_id: str) -> Op[None]:
        """Replay a dead letter; a flow child's parent that it failed resumes waiting for it."""
        yield self._call("replay", validate_job_id(job_id), parse=checked)
        yield from self.deliver_many([job_id])


def _code(reply: Reply) -> int:
    """A script's reply code without raising (a remove that found the job gone or held)."""
    return reply[0] if isinstance(reply, list) and reply and isinstance(reply[0], int) else -1
