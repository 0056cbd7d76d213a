"""Bad input is refused with a typed error and writes nothing; corrupt stored jobs are reported.

"Nothing written" is checked against a snapshot of every key in the database (type and full
contents, events stream included; on a shared cluster, every key of the test's prefix), taken
around each refused call on a queue that holds jobs in every state. Every backend runs every test.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import jqc
from jqc import Backoff, JobOptions, Keep, NewJob
from jqc.engine.job import MAX_PRIORITY
from jqc.engine.operations import BULK_CHUNK
from tests.conftest import own_keys
from tests.stored import edit_job, job_record

# -- helpers --------------------------------------------------------------------------------------


def snapshot(conn: jqc.Connection) -> dict[str, tuple[str, Any]]:
    """Every key of the database with its type and contents."""
    r = conn.sync_client()
    out: dict[str, tuple[str, Any]] = {}
    for key in sorted(r.scan_iter(match=own_keys(conn), count=1000)):
        kind = r.type(key)
        value: Any
        if kind == "hash":
            value = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = r.xrange(key)
        elif kind == "set":
            value = sorted(r.smembers(key))
        else:
            value = r.get(key)
        out[key] = (kind, value)
    return out


def assert_refused(
    conn: jqc.Connection, error: type[Exception], call: Callable[[], object], match: str | None = None
) -> pytest.ExceptionInfo[Exception]:
    """``call`` raises ``error`` (its message matching ``match``) and changes no key at all."""
    before = snapshot(conn)
    with pytest.raises(error, match=match) as info:
        call()
    assert snapshot(conn) == before, f"{error.__name__} was raised but something was written"
    return info


@dataclass
class Populated:
    """A queue with jobs in every state, for refusals to be checked against."""

    waiting: str
    prioritised: str
    delayed: str
    active: jqc.ClaimedJob
    completed: str
    failed: str


@pytest.fixture
def jobs(queue: jqc.Queue) -> Populated:
    done = queue.add("done", {"n": 1})
    dead = queue.add("dead", {"n": 2})
    held = queue.add("held", {"n": 3})
    first = queue.claim("w1").jobs[0]
    queue.complete(first, {"ok": True})
    second = queue.claim("w1").jobs[0]
    queue.fail(second, "boom", retry=False)
    active = queue.claim("w1").jobs[0]
    assert (first.id, second.id, active.id) == (done.id, dead.id, held.id)
    waiting = queue.add("wait", {"n": 4})
    prioritised = queue.add("prio", {"n": 5}, priority=3)
    delayed = queue.add("later", {"n": 6}, delay=60)
    counts = queue.counts()
    assert (counts.waiting, counts.delayed, counts.active, counts.completed, counts.failed, counts.dead) == (
        2, 1, 1, 1, 1, 1,
    )  # fmt: skip
    return Populated(waiting.id, prioritised.id, delayed.id, active, done.id, dead.id)


class Weird:
    pass


# -- data that JSON cannot carry ------------------------------------------------------------------

NOT_JSON = [
    pytest.param({"tags": {"a", "b"}}, r"data\['tags'\]: set", id="set"),
    pytest.param({"raw": [b"\x00"]}, r"data\['raw'\]\[0\]: bytes", id="bytes"),
    pytest.param(Weird(), r"data: Weird", id="object"),
    pytest.param({"score": float("nan")}, r"data\['score'\]: nan", id="nan"),
    pytest.param([1, float("-inf")], r"data\[1\]: -inf", id="inf"),
    pytest.param({"by_id": {1: "a"}}, r"data\['by_id'\]: key 1 is int", id="int-key"),
    pytest.param({"k": {(1, 2): 3}}, r"data\['k'\]: key \(1, 2\) is tuple", id="tuple-key"),
    pytest.param({"a": [{"ok": 1}, {"at": datetime.date(2026, 1, 1)}]}, r"data\['a'\]\[1\]\['at'\]: date", id="deep"),
]


@pytest.mark.parametrize(("data", "path"), NOT_JSON)
def test_non_json_data_is_refused_naming_the_path(
    queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, data: Any, path: str
) -> None:
    assert_refused(conn, jqc.DataNotJsonError, lambda: queue.add("x", data), match=path)


@pytest.mark.parametrize(("data", "path"), NOT_JSON[:3])
def test_non_json_result_and_progress_are_refused_and_the_job_stays_held(
    queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, data: Any, path: str
) -> None:
    where = path.split(":")[0].replace("data", "{}", 1)
    held = jobs.active
    assert_refused(conn, jqc.DataNotJsonError, lambda: queue.complete(held, data), match=where.format("result"))
    assert_refused(conn, jqc.DataNotJsonError, lambda: queue.progress(held, data), match=where.format("progress"))
    queue.complete(jobs.active, "fine")  # still held under its token
    assert queue.get_job(jobs.active.id).result == "fine"  # type: ignore[union-attr]


class NaNFloat(float):
    pass


def cyclic() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"v": NaNFloat("nan")}, id="float-subclass-nan"),
        pytest.param({"text": "half a pair \ud800"}, id="lone-surrogate"),
        pytest.param(cyclic(), id="cyclic"),
    ],
)
def test_edge_values_raise_data_not_json_not_a_raw_python_error(
    queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, data: Any
) -> None:
    assert_refused(conn, jqc.DataNotJsonError, lambda: queue.add("x", data))


# -- payload size ---------------------------------------------------------------------------------


def test_payload_limit_is_in_utf8_bytes_of_the_json_and_inclusive(conn: jqc.Connection) -> None:
    small = conn.queue("photos", max_data_bytes=64)
    assert small.add("fits", "x" * 62).data == "x" * 62  # '"' + 62 + '"' = 64 bytes
    assert small.add("fits", "é" * 31).data == "é" * 31  # 2 + 31 * 2 = 64 bytes
    assert_refused(conn, jqc.PayloadTooLargeError, lambda: small.add("big", "x" * 63), match="65 bytes.*limit is 64")
    # 34 characters, but 66 bytes once encoded: the limit counts bytes.
    assert_refused(conn, jqc.PayloadTooLargeError, lambda: small.add("big", "é" * 32), match="66 bytes")
    bulk = [("ok", 1), ("big", "x" * 100), ("ok", 2)]
    assert_refused(conn, jqc.PayloadTooLargeError, lambda: small.add_bulk(bulk))
    assert small.counts().waiting == 2


def test_oversize_result_is_refused_and_the_job_stays_held(conn: jqc.Connection) -> None:
    small = conn.queue("photos", max_data_bytes=64)
    small.add("x")
    held = small.claim("w").jobs[0]
    assert_refused(conn, jqc.PayloadTooLargeError, lambda: small.complete(held, ["y" * 80]), match="result")
    small.complete(held, "ok")


@pytest.mark.parametrize("limit", [0, -1, "64", 64.0, True, None])
def test_max_data_bytes_must_be_a_positive_int(conn: jqc.Connection, limit: Any) -> None:
    with pytest.raises(jqc.InvalidOptionError, match="max_data_bytes"):
        conn.queue("photos", max_data_bytes=limit)


# -- job options ----------------------------------------------------------------------------------

BAD_OPTIONS = [
    {"delay": -1},
    {"delay": "5"},
    {"delay": float("nan")},
    {"delay": float("inf")},
    {"delay": None},
    {"priority": -MAX_PRIORITY - 1},  # negative priorities are allowed, down to -MAX_PRIORITY
    {"priority": MAX_PRIORITY + 1},
    {"priority": 1.5},
    {"priority": True},
    {"priority": "1"},
    {"attempts": 0},
    {"attempts": -3},
    {"attempts": 2.0},
    {"attempts": False},
    {"lifo": 1},
    {"lifo": "yes"},
    {"timeout": 0},
    {"timeout": "10"},
    {"backoff": {"kind": "fixed", "delay": 1}},
    {"backoff": "exponential"},
    {"remove_on_complete": True},
    {"remove_on_complete": 10},
    {"remove_on_fail": None},
]


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()))
def test_bad_job_options_are_refused(queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, options: Any) -> None:
    assert_refused(conn, jqc.InvalidOptionError, lambda: queue.add("x", 1, **options))
    assert_refused(conn, jqc.InvalidOptionError, lambda: queue.add_bulk([("x", 1, JobOptions(**options))]))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Keep(count=-1),
        lambda: Keep(count=1.5),
        lambda: Keep(age=-1),
        lambda: Backoff.fixed(-1),
        lambda: Backoff.exponential(1, cap=-1),
        lambda: Backoff.fixed(1, jitter=2),
        lambda: Backoff(kind="linear"),  # type: ignore[arg-type]
        lambda: Backoff.custom(""),
    ],
)
def test_bad_keep_and_backoff_values_are_refused_when_built(make: Callable[[], object]) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        make()


@pytest.mark.parametrize("name", ["", 7, None, "n" * 201])
def test_bad_job_names_are_refused(queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, name: Any) -> None:
    assert_refused(conn, jqc.InvalidOptionError, lambda: queue.add(name, 1), match="job name")


def test_unknown_option_keyword_is_refused(queue: jqc.Queue, conn: jqc.Connection, jobs: Populated) -> None:
    assert_refused(conn, jqc.InvalidOptionError, lambda: queue.add("x", 1, no_such_option=1), match="no_such_option")


def test_options_must_be_job_options(queue: jqc.Queue, conn: jqc.Connection, jobs: Populated) -> None:
    assert_refused(conn, jqc.InvalidOptionError, lambda: queue.add("x", 1, {"priority": 1}))  # type: ignore[arg-type]


# -- add_bulk is all or nothing -------------------------------------------------------------------

BAD_BULK_ITEMS = [
    pytest.param(("bad", {1: 2}), jqc.DataNotJsonError, id="not-json"),
    pytest.param(("", 1), jqc.InvalidOptionError, id="empty-name"),
    pytest.param(("x", 1, {"delay": 5}), jqc.InvalidOptionError, id="options-not-JobOptions"),
    pytest.param(("x", 1, None, "extra"), jqc.InvalidOptionError, id="four-tuple"),
    pytest.param("x", jqc.InvalidOptionError, id="bare-string"),
    pytest.param(NewJob("x", {1, 2}), jqc.DataNotJsonError, id="newjob-not-json"),
]


@pytest.mark.parametrize(("bad", "error"), BAD_BULK_ITEMS)
def test_add_bulk_with_one_bad_job_adds_none(
    queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, bad: Any, error: type[Exception]
) -> None:
    good = [("ok", {"i": i}) for i in range(3)]
    assert_refused(conn, error, lambda: queue.add_bulk([*good, bad, *good]))


def test_add_bulk_validates_every_chunk_before_writing_the_first(queue: jqc.Queue, conn: jqc.Connection) -> None:
    items: list[Any] = [("ok", i) for i in range(BULK_CHUNK + 100)]
    items[BULK_CHUNK + 50] = ("bad", float("nan"))  # in the second chunk
    assert_refused(conn, jqc.DataNotJsonError, lambda: queue.add_bulk(items))
    assert queue.counts().waiting == 0


# -- unknown jobs, invalid ids and queue names ----------------------------------------------------

BY_ID: dict[str, Callable[[jqc.Queue, Any], object]] = {
    "promote": lambda q, i: q.promote(i),
    "remove": lambda q, i: q.remove(i),
    "retry": lambda q, i: q.retry(i),
    "change_delay": lambda q, i: q.change_delay(i, 5),
    "change_priority": lambda q, i: q.change_priority(i, 2),
    "replay_dead": lambda q, i: q.replay_dead(i),
    "purge_dead": lambda q, i: q.purge_dead(i),
}


@pytest.mark.parametrize("op", sorted(BY_ID))
def test_unknown_job_id_is_job_not_found(queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, op: str) -> None:
    assert_refused(conn, jqc.JobNotFoundError, lambda: BY_ID[op](queue, "no-such-job"), match="no-such-job")


def test_get_job_of_unknown_id_is_none(queue: jqc.Queue, jobs: Populated) -> None:
    assert queue.get_job("no-such-job") is None
    assert queue.job_logs("no-such-job") == []


BAD_IDS = ["", "a\x00b", "tab\there", "new\nline", "x" * 201, 5, b"bytes"]
ID_OPS: dict[str, Callable[[jqc.Queue, Any], object]] = {
    **BY_ID,
    "get_job": lambda q, i: q.get_job(i),
    "job_logs": lambda q, i: q.job_logs(i),
    "add": lambda q, i: q.add("x", 1, job_id=i),
}


@pytest.mark.parametrize("job_id", BAD_IDS, ids=repr)
@pytest.mark.parametrize("op", sorted(ID_OPS))
def test_invalid_job_ids_are_refused(
    queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, op: str, job_id: Any
) -> None:
    assert_refused(conn, jqc.InvalidJobIdError, lambda: ID_OPS[op](queue, job_id))


@pytest.mark.parametrize("call", [lambda q: q.add("x", 1, job_id="id-\ud800"), lambda q: q.add("n-\ud800", 1)])
def test_ids_and_names_utf8_cannot_carry_are_invalid_input(
    queue: jqc.Queue, conn: jqc.Connection, call: Callable[[jqc.Queue], object]
) -> None:
    assert_refused(conn, jqc.InvalidInputError, lambda: call(queue))


def test_longest_valid_job_id_is_accepted(queue: jqc.Queue) -> None:
    job_id = "é" + "x" * 199
    assert queue.add("x", 1, job_id=job_id).id == job_id
    assert queue.get_job(job_id) is not None


@pytest.mark.parametrize(
    "name", ["", " ", "has space", "a{b}", "{photos}", "-lead", ".lead", "q" * 101, "tab\t", "ü", 5, None, b"photos"]
)
def test_invalid_queue_names_are_refused(conn: jqc.Connection, name: Any) -> None:
    before = snapshot(conn)
    with pytest.raises(jqc.InvalidQueueNameError):
        conn.queue(name)
    with pytest.raises(jqc.InvalidQueueNameError):
        conn.async_queue(name)
    assert snapshot(conn) == before


@pytest.mark.parametrize("name", ["q" * 100, "a.b:c-d_e", "0", "Photos-2026"])
def test_valid_queue_names_are_accepted(conn: jqc.Connection, name: str) -> None:
    assert conn.queue(name).add("x", 1).queue == name


def test_prefix_with_braces_is_refused() -> None:
    with pytest.raises(jqc.InvalidOptionError, match="prefix"):
        jqc.connect(prefix="jqc{x}").queue("photos")


# -- operations that do not apply to the job's state ----------------------------------------------


def test_state_refusals_write_nothing(queue: jqc.Queue, conn: jqc.Connection, jobs: Populated) -> None:
    active = jobs.active.id
    for job_id in (jobs.waiting, jobs.prioritised, active, jobs.completed, jobs.failed):
        assert_refused(conn, jqc.JobStateError, lambda i=job_id: queue.promote(i), match="not delayed")
        assert_refused(conn, jqc.JobStateError, lambda i=job_id: queue.change_delay(i, 1), match="not delayed")
    for job_id in (jobs.waiting, jobs.delayed, active):
        assert_refused(conn, jqc.JobStateError, lambda i=job_id: queue.retry(i), match="has not failed or completed")
    assert_refused(conn, jqc.JobActiveError, lambda: queue.remove(active), match="held by a worker")
    assert_refused(conn, jqc.JobActiveError, lambda: queue.obliterate(), match="active")


def test_stale_token_writes_write_nothing(
    queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock, jobs: Populated
) -> None:
    clock.advance(31)
    assert queue.recover_stalled().recovered == (jobs.active.id,)
    stale = jobs.active
    for write in (
        lambda: queue.complete(stale, "late"),
        lambda: queue.complete(stale, "late", fetch_next=1, worker="w1"),
        lambda: queue.fail(stale, "late"),
        lambda: queue.fail(stale, "late", retry=False),
        lambda: queue.release(stale, delay=5),
        lambda: queue.progress(stale, 50),
        lambda: queue.log(stale, "late"),
    ):
        assert_refused(conn, jqc.LockLostError, write, match=f"job {stale.id} ")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda q, j: q.list_jobs("dead"), id="list-dead"),
        pytest.param(lambda q, j: q.list_jobs("bogus"), id="list-bogus"),
        pytest.param(lambda q, j: q.list_jobs("waiting", offset=-1), id="list-offset"),
        pytest.param(lambda q, j: q.list_jobs("waiting", limit=0), id="list-limit"),
        pytest.param(lambda q, j: q.dead_letters(limit=0), id="dead-limit"),
        pytest.param(lambda q, j: q.clean("active", 0), id="clean-state"),
        pytest.param(lambda q, j: q.clean("completed", -1), id="clean-grace"),
        pytest.param(lambda q, j: q.clean("completed", 0, limit=0), id="clean-limit"),
        pytest.param(lambda q, j: q.claim(""), id="claim-worker"),
        pytest.param(lambda q, j: q.claim("w", count=0), id="claim-count"),
        pytest.param(lambda q, j: q.claim("w", lock=0), id="claim-lock"),
        pytest.param(lambda q, j: q.extend([j.active], lock=-1), id="extend-lock"),
        pytest.param(lambda q, j: q.configure(concurrency=0), id="concurrency"),
        pytest.param(lambda q, j: q.configure(concurrency=2.5), id="concurrency-float"),
        pytest.param(lambda q, j: q.configure(rate_limit=(0, 1)), id="rate-max"),
        pytest.param(lambda q, j: q.configure(rate_limit=(5, 0)), id="rate-window"),
        pytest.param(lambda q, j: q.configure(rate_limit=5), id="rate-shape"),
        pytest.param(lambda q, j: q.configure(max_stalls=-1), id="max-stalls"),
        pytest.param(lambda q, j: q.configure(dead_letter_cap=True), id="dlq-cap-bool"),
        pytest.param(lambda q, j: q.retry_failed(limit=0), id="retry-limit"),
        pytest.param(lambda q, j: q.metrics(window_minutes=0), id="metrics-window"),
        pytest.param(lambda q, j: q.events(count=0), id="events-count"),
        pytest.param(lambda q, j: q.change_priority(j.waiting, -MAX_PRIORITY - 1), id="priority"),
        pytest.param(lambda q, j: q.change_priority(j.waiting, MAX_PRIORITY + 1), id="priority-max"),
        pytest.param(lambda q, j: q.change_delay(j.delayed, -1), id="change-delay-negative"),
        pytest.param(lambda q, j: q.change_delay(j.delayed, "5"), id="change-delay-str"),
        pytest.param(lambda q, j: q.fail(j.active, 5), id="fail-reason"),
        pytest.param(lambda q, j: q.fail(j.active, "x", delay=-1), id="fail-delay"),
        pytest.param(lambda q, j: q.release(j.active, delay=-1), id="release-delay"),
        pytest.param(lambda q, j: q.log(j.active, 5), id="log-line"),
        pytest.param(lambda q, j: q.complete(j.active, fetch_next=1, worker=""), id="fetch-next-worker"),
        pytest.param(lambda q, j: q.recover_stalled(max_stalls=-1), id="recover-stalls"),
    ],
)
def test_bad_operation_arguments_are_refused(
    queue: jqc.Queue, conn: jqc.Connection, jobs: Populated, call: Callable[[jqc.Queue, Populated], object]
) -> None:
    assert_refused(conn, jqc.InvalidInputError, lambda: call(queue, jobs))


# -- corrupt job hashes ---------------------------------------------------------------------------

CORRUPTIONS = [
    pytest.param({"n": None}, "lacks field 'n'", id="missing-name"),
    pytest.param({"t": None}, "lacks field 't'", id="missing-created"),
    pytest.param({"d": "{oops"}, r"data is not valid JSON: '\{oops'", id="data-not-json"),
    pytest.param({"s": "z"}, "unknown job state code 'z'", id="unknown-state"),
    pytest.param({"t": "yesterday"}, "invalid value.*yesterday", id="created-not-a-number"),
    pytest.param({"p": "high"}, "invalid value.*high", id="priority-not-a-number"),
    pytest.param({"am": "x"}, "invalid value", id="attempts-not-a-number"),
    pytest.param({"o": "{"}, "options is not valid JSON", id="options-not-json"),
    pytest.param({"o": '{"backoff": {"kind": "linear"}}'}, "stored backoff is invalid", id="bad-backoff"),
    pytest.param({"rv": "nope"}, "result is not valid JSON", id="result-not-json"),
]


def corrupt(conn: jqc.Connection, queue: jqc.Queue, job_id: str, change: dict[str, str | None]) -> None:
    edit_job(conn, queue, job_id, change)


@pytest.mark.parametrize(("change", "message"), CORRUPTIONS)
def test_get_job_of_a_corrupt_hash_raises_corrupt_job_error(
    queue: jqc.Queue, conn: jqc.Connection, change: dict[str, str | None], message: str
) -> None:
    job = queue.add("x", {"v": 1})
    corrupt(conn, queue, job.id, change)
    with pytest.raises(jqc.CorruptJobError, match=message):
        queue.get_job(job.id)


def test_a_job_key_of_the_wrong_type_is_a_jqc_error(queue: jqc.Queue, conn: jqc.Connection) -> None:
    conn.sync_client().set(queue.ops.keys.jobs, "not a hash")
    with pytest.raises(jqc.JqcError, match="WRONGTYPE"):
        queue.get_job("7")


# A claim rewrites the state field, so an unknown state code alone does not stop a job being run.
CLAIM_CORRUPTIONS = [c for c in CORRUPTIONS if c.id != "unknown-state"]


@pytest.mark.parametrize(("change", "message"), CLAIM_CORRUPTIONS)
def test_claiming_a_corrupt_job_dead_letters_it_and_delivers_the_rest(
    queue: jqc.Queue, conn: jqc.Connection, change: dict[str, str | None], message: str
) -> None:
    """The claim path (operations._parse_claim + dead_letter_corrupt): a job whose hash cannot be
    decoded is failed for good at once with the decoding error as its reason, so it is neither
    run, nor left in active, nor lost; healthy jobs claimed in the same call are delivered."""
    bad = queue.add("bad", {"v": 1})
    good = queue.add("good", {"v": 2})
    corrupt(conn, queue, bad.id, change)
    got = queue.claim("w", count=2)
    assert [c.id for c in got.jobs] == [good.id]
    assert [job_id for job_id, _, _ in got.corrupt] == [bad.id]
    counts = queue.counts()
    assert (counts.waiting, counts.active, counts.failed, counts.dead) == (0, 1, 1, 1)
    reason = job_record(conn, queue, bad.id).get("fr")
    assert reason.startswith("corrupt job:") and re.search(message, reason), reason
    assert job_record(conn, queue, bad.id).get("s") == "f"


def assert_dead_lettered_as_corrupt(queue: jqc.Queue, job_id: str, got: jqc.ClaimResult) -> None:
    assert got.jobs == () and [j for j, _, _ in got.corrupt] == [job_id]
    counts = queue.counts()
    assert (counts.waiting, counts.delayed, counts.active, counts.failed, counts.dead) == (0, 0, 0, 1, 1)


def test_a_corrupt_priority_does_not_lose_a_delayed_job_when_it_falls_due(
    queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    """Scripts are not rolled back when they fail half-way (on either backend): promotion removed the
    job from the delayed set and then failed on the bad priority, leaving it in no container."""
    job = queue.add("later", {"v": 1}, delay=5, priority=2)
    corrupt(conn, queue, job.id, {"p": "high"})
    clock.advance(6)
    assert_dead_lettered_as_corrupt(queue, job.id, queue.claim("w"))


def test_a_corrupt_priority_does_not_lose_a_stalled_job_when_it_is_recovered(
    queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    job = queue.add("x", {"v": 1})
    queue.claim("w", lock=5)
    corrupt(conn, queue, job.id, {"p": "high"})  # changed while a worker held it
    clock.advance(6)
    assert queue.recover_stalled().recovered == (job.id,)
    assert_dead_lettered_as_corrupt(queue, job.id, queue.claim("w"))
