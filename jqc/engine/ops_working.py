"""Working: claims under fencing tokens and every token-checked write about a held job."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from jqc import _json
from jqc.clock import now_ms
from jqc.engine.arguments import (
    BATCH,
    MAX_LOCK,
    positive_int,
    seconds_to_ms,
    worker_id,
)
from jqc.engine.calls import Op, Reply, ScriptCall, checked, code_of
from jqc.engine.codes import Code
from jqc.engine.failures import FailureCode, failure_code
from jqc.engine.job import (
    BackoffFunction,
    ClaimedJob,
    Keep,
)
from jqc.engine.ops_base import OperationsBase
from jqc.engine.records import record_of
from jqc.engine.replies import as_int, as_list, as_str, as_strs
from jqc.engine.results import (
    ClaimResult,
    CompleteResult,
    FailResult,
    RecoverResult,
    Renewal,
)
from jqc.errors import CorruptJobError, InvalidOptionError

__all__ = ["Working"]

T = TypeVar("T")


class Working(OperationsBase):
    """What workers (and the simulator) call: claim, renew, complete, fail, release, report, recover."""

    def claim(self, worker: str, *, count: int = 1, lock: float = 30.0, now: int | None = None) -> Op[ClaimResult]:
        stamp = now_ms(self.clock) if now is None else now
        result: ClaimResult = yield self._call(
            "claim",
            positive_int(count, "count", high=10_000),
            seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK),
            worker_id(worker),
            parse=lambda r: self._parse_claim(r, worker, stamp),
            now=stamp,
        )
        yield from self.dead_letter_corrupt(result, worker)
        return result

    def dead_letter_corrupt(self, result: ClaimResult | None, worker: str) -> Op[None]:
        """Fail for good (the decoding error as reason) every claimed job whose hash is corrupt."""
        for job_id, token, reason in result.corrupt if result else ():
            yield self._call(
                "fail", job_id, token, f"corrupt job: {reason}", "", worker or "-", -1, FailureCode.CORRUPT.value,
                parse=lambda r: r,
            )  # fmt: skip

    def _parse_claim(self, reply: Reply, worker: str, now: int) -> ClaimResult:
        body = checked(reply)
        code = code_of(body)
        if code != Code.OK:
            when = as_int(body[1]) if len(body) > 1 else 0
            return ClaimResult(code, (), when / 1000.0 if when else None)
        deadline = as_int(body[1]) / 1000.0
        jobs = []
        corrupt = []
        for i in range(2, len(body), 3):
            job_id, token, fields = as_str(body[i]), as_int(body[i + 1]), record_of(body[i + 2])
            fields.update(s="a", k=str(token), ps=str(now), w=worker)
            try:
                jobs.append(ClaimedJob(job=self._job(job_id, fields), token=token, lock_until=deadline))
            except CorruptJobError as exc:
                corrupt.append((job_id, token, str(exc)))
        return ClaimResult(Code.OK, tuple(jobs), None, tuple(corrupt))

    def extend(
        self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0, now: int | None = None
    ) -> ScriptCall[dict[str, bool]]:
        """Renew many locks at once; returns job id -> still held."""
        call = self.renew(held, lock=lock, now=now)
        return ScriptCall(call.script, call.keys, call.args, lambda r: dict(call.parse(r).held))

    def renew(
        self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0, now: int | None = None
    ) -> ScriptCall[Renewal]:
        """Renew many locks at once, as :meth:`extend`, and report the held jobs marked cancelled."""
        held_pairs = [(h.id, h.token) if isinstance(h, ClaimedJob) else h for h in held]
        args = [str(a) for pair in held_pairs for a in pair]

        def parse(reply: Reply) -> Renewal:
            body = checked(reply)
            still: dict[str, bool] = {}
            cancelled: dict[str, str] = {}
            for (job_id, _), ok in zip(held_pairs, body[2:], strict=True):
                if isinstance(ok, (list, tuple)):  # renewed, and marked by cancel.lua: {reason}
                    still[job_id], cancelled[job_id] = True, as_str(ok[0])
                else:
                    still[job_id] = bool(as_int(ok))
            return Renewal(still, cancelled)

        return self._call("extend", seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK), *args, parse=parse, now=now)

    def complete(
        self,
        claimed: ClaimedJob,
        result: Any = None,
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        now: int | None = None,
        keep: Keep | None = None,
    ) -> Op[ClaimResult | None]:
        """Report success; with ``fetch_next`` > 0 also claim that many next jobs for ``worker``.
        ``keep``: the worker's retention for the completed job, instead of the job's own."""
        stamp = now_ms(self.clock) if now is None else now
        text = _json.encode(result, what="result", max_bytes=self.max_data_bytes)
        if fetch_next:
            worker_id(worker)

        def parse(reply: Reply) -> ClaimResult | None:
            body = checked(reply)
            return self._parse_claim(body[1], worker, stamp) if fetch_next else None

        following: ClaimResult | None = yield self._call(
            "complete",
            claimed.id,
            claimed.token,
            text,
            fetch_next,
            seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK),
            worker or "-",
            *_keep_args(keep),
            parse=parse,
            now=stamp,
        )
        if claimed.job.parent is not None:  # a flow child: tell its parent (docs/workflows.md, "Flows")
            yield from self.deliver_many([claimed.id])
        yield from self.dead_letter_corrupt(following, worker)
        return following

    def complete_many(
        self,
        done: Sequence[tuple[ClaimedJob, Any]],
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        now: int | None = None,
        keep: Keep | None = None,
    ) -> Op[CompleteResult]:
        """Report many successes and claim the next jobs, in one round trip.

        A job whose token is stale is reported in ``lost`` and left unchanged; the others complete.
        """
        stamp = now_ms(self.clock) if now is None else now
        args: list[str | int] = [len(done)]
        for claimed, result in done:
            args += [claimed.id, claimed.token, _json.encode(result, what="result", max_bytes=self.max_data_bytes)]
        if fetch_next:
            worker_id(worker)
        args += [fetch_next, seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK), worker or "-", *_keep_args(keep)]
        ids = [claimed.id for claimed, _ in done]

        def parse(reply: Reply) -> CompleteResult:
            body = checked(reply)
            flags = [as_int(ok) for ok in as_list(body[1])]
            completed = tuple(i for i, ok in zip(ids, flags, strict=True) if ok)
            lost = tuple(i for i, ok in zip(ids, flags, strict=True) if not ok)
            following = self._parse_claim(body[2], worker, stamp) if fetch_next else None
            return CompleteResult(completed, lost, following)

        outcome: CompleteResult = yield self._call("complete_many", *args, parse=parse, now=stamp)
        children = {claimed.id for claimed, _ in done if claimed.job.parent is not None}
        if children:  # flow children: tell their parents (docs/workflows.md, "Flows")
            yield from self.deliver_many([i for i in outcome.completed if i in children])
        yield from self.dead_letter_corrupt(outcome.next, worker)
        return outcome

    def retry_delay(
        self,
        claimed: ClaimedJob,
        *,
        error: BaseException | None = None,
        rng: random.Random | None = None,
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
    ) -> float:
        """Seconds to wait before the next attempt, from the job's backoff policy."""
        backoff = claimed.job.options.backoff
        if backoff is None:
            return 0.0
        return backoff.seconds(claimed.job.failed_attempts + 1, rng=rng, error=error, functions=backoff_functions)

    def fail(
        self,
        claimed: ClaimedJob,
        reason: str,
        *,
        traceback: str | None = None,
        retry: bool = True,
        delay: float | None = None,
        error: BaseException | None = None,
        rng: random.Random | None = None,
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
        worker: str = "",
        code: FailureCode | str | None = None,
        now: int | None = None,
        fetch_next: int = 0,
        lock: float = 30.0,
        keep: Keep | None = None,
    ) -> ScriptCall[str]:
        """Report a failed attempt: 'retry' if it will run again, else 'failed' (dead-lettered).

        The retry delay is ``delay`` if given, else the job's backoff policy. If that policy cannot
        be computed (say, a custom backoff whose function is not registered), the job fails for
        good with the reason saying why, rather than being lost or retried blindly. ``code`` is
        the stable :class:`FailureCode` stored beside ``reason``; by default ``error``, or
        ``unrecoverable`` with ``retry=False``. ``keep``: the worker's retention for a job that
        fails for good, instead of the job's own.
        """
        if not isinstance(reason, str):
            raise InvalidOptionError(f"failure reason must be a str, not {reason!r}")
        stored_code = failure_code(code, retry=retry)
        if retry and delay is None:
            try:
                delay = self.retry_delay(claimed, error=error, rng=rng, backoff_functions=backoff_functions)
            except InvalidOptionError as exc:
                retry, reason = False, f"{reason} (not retried: {exc})"
        delay_ms = seconds_to_ms(delay or 0.0, "retry delay") if retry else -1
        return self._call(
            "fail",
            claimed.id,
            claimed.token,
            reason[:10_000],
            (traceback or "")[:100_000],
            worker or "-",
            delay_ms,
            stored_code.value,
            *self._fetch_args(fetch_next, lock, worker, always=keep is not None),
            *_keep_args(keep),
            parse=lambda r: as_str(checked(r)[1]),
            now=now,
        )

    def _fetch_args(self, fetch_next: int, lock: float, worker: str, *, always: bool = False) -> list[str | int]:
        """The trailing 'claim next' arguments of fail.lua and release.lua (none when not fetching,
        unless ``always``: placeholders, so arguments after them keep their places)."""
        if not fetch_next:
            return [0, 1, "-"] if always else []
        count = positive_int(fetch_next, "fetch_next", high=10_000)
        return [count, seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK), worker_id(worker)]

    def fail_and_fetch(
        self,
        claimed: ClaimedJob,
        reason: str,
        *,
        fetch_next: int = 1,
        lock: float = 30.0,
        worker: str,
        now: int | None = None,
        **how: Any,
    ) -> Op[FailResult]:
        """:meth:`fail` (``how`` takes its options), claiming ``fetch_next`` next jobs for ``worker``
        in the same call, as ``complete(..., fetch_next=)`` does: one round trip for both."""
        stamp = now_ms(self.clock) if now is None else now
        call = self.fail(claimed, reason, worker=worker, fetch_next=fetch_next, lock=lock, now=stamp, **how)

        def parse(reply: Reply) -> FailResult:
            body = checked(reply)
            following = self._parse_claim(body[3], worker, stamp) if fetch_next else None
            return FailResult(as_str(body[1]), following)

        outcome: FailResult = yield ScriptCall(call.script, call.keys, call.args, parse)
        if outcome.verdict == "failed" and claimed.job.parent is not None:  # a flow child: tell its parent
            yield from self.deliver_many([claimed.id])
        yield from self.dead_letter_corrupt(outcome.next, worker)
        return outcome

    def release(self, claimed: ClaimedJob, *, delay: float = 0.0, now: int | None = None) -> ScriptCall[None]:
        """Hand a job back without counting an attempt."""
        return self._call("release", claimed.id, claimed.token, seconds_to_ms(delay, "delay"), parse=self._ok, now=now)

    def release_and_fetch(
        self, claimed: ClaimedJob, *, delay: float = 0.0, fetch_next: int = 1, lock: float = 30.0, worker: str
    ) -> Op[ClaimResult | None]:
        """:meth:`release` (to waiting, or delayed by ``delay``: BullMQ's move-to-delayed), claiming
        ``fetch_next`` next jobs for ``worker`` in the same call."""
        stamp = now_ms(self.clock)
        extra = self._fetch_args(fetch_next, lock, worker)

        def parse(reply: Reply) -> ClaimResult | None:
            body = checked(reply)
            return self._parse_claim(body[1], worker, stamp) if extra else None

        following: ClaimResult | None = yield self._call(
            "release", claimed.id, claimed.token, seconds_to_ms(delay, "delay"), *extra, parse=parse, now=stamp
        )
        yield from self.dead_letter_corrupt(following, worker)
        return following

    def progress(self, claimed: ClaimedJob, value: Any) -> ScriptCall[None]:
        text = _json.encode(value, what="progress", max_bytes=64 * 1024)
        return self._call("progress", claimed.id, claimed.token, text, parse=self._ok)

    def log(self, claimed: ClaimedJob, line: str) -> ScriptCall[int]:
        if not isinstance(line, str):
            raise InvalidOptionError(f"a log line must be a str, not {line!r}")
        return self._call(
            "log", claimed.id, claimed.token, line[:10_000], self.log_max_lines, parse=lambda r: as_int(checked(r)[1])
        )

    def recover_stalled(
        self, *, limit: int = BATCH, max_stalls: int = 1, now: int | None = None
    ) -> ScriptCall[RecoverResult]:
        if isinstance(max_stalls, bool) or not isinstance(max_stalls, int) or max_stalls < 0:
            raise InvalidOptionError(f"max_stalls must be an int >= 0, not {max_stalls!r}")

        def parse(reply: Reply) -> RecoverResult:
            body = checked(reply)
            return RecoverResult(tuple(as_strs(body[1])), tuple(as_strs(body[2])), code_of(body) == Code.MORE)

        return self._call("recover", positive_int(limit, "limit"), max_stalls, parse=parse, now=now)


def _keep_args(keep: Keep | None) -> list[str | int]:
    """The optional trailing retention override of complete, complete_many and fail ('1', count, age)."""
    if keep is None:
        return []
    if not isinstance(keep, Keep):
        raise InvalidOptionError(f"keep must be a jqc.Keep, not {keep!r}")
    return ["1", *keep.encode()]
