"""Administering: pause, configure, remove, cancel, promote (one or all), retry, change (priority, delay,
data), clean, drain, obliterate."""

from __future__ import annotations

from typing import Any, TypeVar

from jqc import _json
from jqc.engine.arguments import (
    BATCH,
    CLEANABLE,
    positive_int,
    seconds_to_ms,
)
from jqc.engine.calls import Batch, CommandCall, Op, Reply, Scan, ScriptCall, checked
from jqc.engine.codes import Code
from jqc.engine.job import (
    JobOptions,
)
from jqc.engine.keys import validate_job_id
from jqc.engine.ops_base import OperationsBase, code_and_count, code_and_ids
from jqc.engine.replies import as_int, as_str, as_strs
from jqc.errors import InvalidOptionError, JobNotFoundError, JobStateError

__all__ = ["Administering"]

T = TypeVar("T")


class Administering(OperationsBase):
    """Changing a queue or its jobs from outside: pause, settings, remove, promote, retry, clean."""

    def pause(self, paused: bool) -> ScriptCall[bool]:
        return self._call("pause", "1" if paused else "0", parse=lambda r: bool(checked(r)[1]))

    def configure(
        self,
        *,
        rate_limit: tuple[int, float] | bool | None = False,
        concurrency: int | bool | None = False,
        max_stalls: int | bool | None = False,
        dead_letter_cap: int | bool | None = False,
        metrics_minutes: int | bool | None = False,
        **unknown: object,
    ) -> ScriptCall[None]:
        """Set queue-wide settings; pass None to clear one, leave it out (False) to keep it."""
        if unknown:
            known = "rate_limit, concurrency, max_stalls, dead_letter_cap, metrics_minutes"
            raise InvalidOptionError(f"unknown queue setting(s) {sorted(unknown)}; known: {known}")
        args: list[str | int] = []
        if rate_limit is not False:
            if rate_limit is None:
                args += ["rlm", "", "rlw", ""]
            else:
                if not isinstance(rate_limit, tuple) or len(rate_limit) != 2:
                    raise InvalidOptionError(f"rate_limit must be (max jobs, per seconds), not {rate_limit!r}")
                args += ["rlm", positive_int(rate_limit[0], "rate limit max", high=10**9)]
                args += ["rlw", seconds_to_ms(rate_limit[1], "rate limit window", low=0.001, high=86400 * 31)]
        for key, value, label in (
            ("cc", concurrency, "concurrency"),
            ("ms", max_stalls, "max_stalls"),
            ("dm", dead_letter_cap, "dead_letter_cap"),
            ("mr", metrics_minutes, "metrics_minutes"),
        ):
            if value is False:
                continue
            if value is None:
                args += [key, ""]
            elif key == "ms" and value == 0:
                args += [key, 0]
            else:
                args += [key, positive_int(value, label, high=10**9)]
        return self._call("configure", *args, parse=self._ok)

    def remove(self, job_id: str) -> ScriptCall[None]:
        return self._call("remove", validate_job_id(job_id), parse=self._ok)

    def cancel(self, job_id: str, reason: str = "", *, retry: bool = False) -> Op[str]:
        """Cancel a job: 'removed' if it had not started (waiting or delayed: deleted, with a
        'cancelled' event), 'marked' if a worker holds it (its holder stops it within one lock
        renewal, and it ends failed with code ``cancelled``, retried only with ``retry=True``),
        'failed' for a flow child that had not started (failed for good, code ``cancelled``, and
        its parent told, so the parent's ``on_failure`` policy applies)."""
        if not isinstance(reason, str):
            raise InvalidOptionError(f"a cancel reason must be a str, not {reason!r}")
        if not isinstance(retry, bool):
            raise InvalidOptionError(f"retry must be a bool, not {retry!r}")
        outcome: str = yield self._call(
            "cancel", validate_job_id(job_id), reason[:10_000] or "cancelled", "1" if retry else "0",
            parse=lambda r: as_str(checked(r)[1]),
        )  # fmt: skip
        if outcome == "failed":  # a flow child: tell its parent (docs/workflows.md, "Flows")
            yield from self.deliver_many([job_id])
        return outcome

    def promote(self, job_id: str) -> ScriptCall[None]:
        return self._call("promote", validate_job_id(job_id), parse=self._ok)

    def promote_all(self, limit: int | None = None) -> Op[list[str]]:
        """Make the delayed jobs wait now, soonest due first (all of them when ``limit`` is None).

        Each job moves by its own ``promote`` script, pipelined a batch of ids at a time (read
        from the delayed set, by due time): no script runs unbounded, the whole is not one atomic
        step, and a job that stopped being delayed meanwhile (due and claimed, or removed) is
        passed over.
        """
        budget = None if limit is None else positive_int(limit, "limit", high=10**9)
        done: list[str] = []
        while budget is None or len(done) < budget:
            size = BATCH if budget is None else min(BATCH, budget - len(done))
            ids: list[str] = yield CommandCall(("ZRANGE", self.keys.key("delayed"), 0, size - 1), as_strs)
            if not ids:
                break
            moved: list[bool] = yield Batch(tuple(self._promote_if_delayed(job_id) for job_id in ids))
            promoted = [job_id for job_id, ok in zip(ids, moved, strict=True) if ok]
            done += promoted
            if not promoted:
                break
        return done

    def _promote_if_delayed(self, job_id: str) -> ScriptCall[bool]:
        """``promote`` answering False, not an error, for a job no longer delayed or gone."""

        def parse(reply: Reply) -> bool:
            try:
                checked(reply)
            except (JobStateError, JobNotFoundError):
                return False
            return True

        return self._call("promote", job_id, parse=parse)

    def retry(self, job_id: str, *, reset_attempts: bool = True) -> ScriptCall[None]:
        """Send a failed (or completed) job back to waiting; ``reset_attempts`` gives it a fresh
        budget of failed attempts and stalls (else it keeps its counts: one more run, then it fails for
        good if that run fails). Runs are kept either way."""
        return self._call("retry", validate_job_id(job_id), 1, _reset(reset_attempts), parse=self._ok)

    def retry_failed(
        self, limit: int | None = None, *, before: float | None = None, reset_attempts: bool = True
    ) -> Op[list[str]]:
        """Retry the oldest failed jobs (all of them when ``limit`` is None), in batches; with
        ``before``, only those that failed at or before it (see :meth:`retry_finished`)."""
        if before is not None:
            return (yield from self.retry_finished("failed", limit, before=before, reset_attempts=reset_attempts))
        budget = None if limit is None else positive_int(limit, "limit", high=10**9)
        reset = _reset(reset_attempts)
        done: list[str] = []
        while budget is None or len(done) < budget:
            size = BATCH if budget is None else min(BATCH, budget - len(done))
            code, ids = yield self._call("retry", "", size, reset, parse=code_and_ids)
            done.extend(ids)
            if code != Code.MORE or not ids:
                break
        return done

    def retry_finished(
        self,
        state: str,
        limit: int | None = None,
        *,
        before: float | None = None,
        reset_attempts: bool = True,
    ) -> Op[list[str]]:
        """Retry the oldest jobs of ``state`` ('completed' or 'failed') that finished at or before
        ``before`` (seconds on the queue's clock; None: any time), all of them when ``limit`` is None.

        Ids are read from the state's set by finish time a batch at a time and each job moves by its
        own ``retry`` script, pipelined: no script runs unbounded, and a job that left the state
        meanwhile is passed over.
        """
        if state not in ("completed", "failed"):
            raise InvalidOptionError(f"state must be 'completed' or 'failed', not {state!r}")
        budget = None if limit is None else positive_int(limit, "limit", high=10**9)
        cutoff: str | int = "+inf" if before is None else _instant_ms(before)
        reset = _reset(reset_attempts)
        done: list[str] = []
        while budget is None or len(done) < budget:
            size = BATCH if budget is None else min(BATCH, budget - len(done))
            read = ("ZRANGEBYSCORE", self.keys.key(state), "-inf", cutoff, "LIMIT", 0, size)
            ids: list[str] = yield CommandCall(read, as_strs)
            if not ids:
                break
            moved: list[bool] = yield Batch(tuple(self._retry_if_finished(job_id, reset) for job_id in ids))
            retried = [job_id for job_id, ok in zip(ids, moved, strict=True) if ok]
            done += retried
            if not retried:
                break
        return done

    def _retry_if_finished(self, job_id: str, reset: str) -> ScriptCall[bool]:
        """``retry`` answering False, not an error, for a job no longer finished or gone."""

        def parse(reply: Reply) -> bool:
            try:
                checked(reply)
            except (JobStateError, JobNotFoundError):
                return False
            return True

        return self._call("retry", job_id, 1, reset, parse=parse)

    def update_data(self, job_id: str, data: Any) -> ScriptCall[None]:
        """Replace the data of a waiting or delayed job (checked as ``add`` checks data)."""
        text = _json.encode(data, what="data", max_bytes=self.max_data_bytes)
        return self._call("update_data", validate_job_id(job_id), text, parse=self._ok)

    def change_priority(self, job_id: str, priority: int) -> ScriptCall[None]:
        opts = JobOptions(priority=priority)
        return self._call("change_priority", validate_job_id(job_id), opts.priority, parse=self._ok)

    def change_delay(self, job_id: str, delay: float) -> ScriptCall[None]:
        return self._call("change_delay", validate_job_id(job_id), seconds_to_ms(delay, "delay"), parse=self._ok)

    def clean(self, state: str, grace: float, limit: int = BATCH) -> ScriptCall[list[str]]:
        """Delete up to ``limit`` jobs in ``state`` finished (or created) ``grace`` s ago or earlier."""
        if state not in CLEANABLE:
            raise InvalidOptionError(f"state must be one of {CLEANABLE}, not {state!r}")
        return self._call(
            "clean",
            state,
            seconds_to_ms(grace, "grace"),
            positive_int(limit, "limit"),
            parse=lambda r: as_strs(checked(r)[1]),
        )

    def drain(self, *, delayed: bool = False) -> Op[int]:
        deleted: int = 0
        while True:
            code, n = yield self._call("drain", "1" if delayed else "0", BATCH, parse=code_and_count)
            deleted += n
            if code != Code.MORE:
                return deleted

    def obliterate(self, *, force: bool = False) -> Op[int]:
        """Delete every key of the queue: scripted batches, then a SCAN sweep for strays. Refused
        (:class:`jqc.JobStateError`) while jobs are active or the queue holds flow members whose
        relatives on other queues would wait forever, unless ``force``."""
        deleted: int = 0
        while True:
            flag = "1" if force else "0"
            code, n = yield self._call("obliterate", flag, BATCH, flag, parse=code_and_count)
            deleted += n
            if code != Code.MORE:
                break
        strays: list[str] = yield Scan(self.keys.scan_pattern, BATCH)
        for start in range(0, len(strays), BATCH):
            yield CommandCall(("DEL", *strays[start : start + BATCH]), as_int)
        return deleted


def _instant_ms(when: object) -> int:
    if isinstance(when, bool) or not isinstance(when, (int, float)) or not 0 <= when < 2**42 / 1000:
        raise InvalidOptionError(f"before must be a time in seconds since the epoch, not {when!r}")
    return int(when * 1000)


def _reset(reset_attempts: object) -> str:
    if not isinstance(reset_attempts, bool):
        raise InvalidOptionError(f"reset_attempts must be a bool, not {reset_attempts!r}")
    return "1" if reset_attempts else "0"
