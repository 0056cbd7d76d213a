"""The job lifecycle on both backends: options, ordering, retries, retention, stalls, tokens."""

from __future__ import annotations

import random

import pytest

import jqc
from jqc import Backoff, Code, JobOptions, JobState, Keep
from tests.conftest import own_keys
from tests.stored import edit_job, job_record


def claim_one(queue: jqc.Queue, worker: str = "w1", lock: float = 30.0) -> jqc.ClaimedJob:
    got = queue.claim(worker, lock=lock)
    assert got.status == Code.OK, got
    assert len(got.jobs) == 1
    return got.jobs[0]


def claim_order(queue: jqc.Queue) -> list[str]:
    order = []
    while (got := queue.claim("w", count=1)).jobs:
        order.append(got.jobs[0].job.name)
    return order


# -- adding ---------------------------------------------------------------------------------------


def test_add_stores_name_data_and_timestamps(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("thumbnail", {"photoId": "123", "sizes": [64, 128], "meta": None})
    stored = queue.get_job(job.id)
    assert stored is not None
    assert stored.name == "thumbnail"
    assert stored.data == {"photoId": "123", "sizes": [64, 128], "meta": None}
    assert stored.state == JobState.WAITING
    assert stored.created_at == pytest.approx(clock.now(), abs=0.001)
    assert stored.started_at is None and stored.finished_at is None
    assert stored.attempts_made == 0 and stored.stall_count == 0


def test_unicode_data_round_trips(queue: jqc.Queue) -> None:
    data = {"caption": "café / naïve ☕", "path": "a/b\\c", "big": 2**53 + 1, "f": 0.1}
    job = queue.add("tag", data)
    assert queue.claim("w").jobs[0].job.data == data
    assert queue.get_job(job.id).data == data  # type: ignore[union-attr]


def test_existing_job_id_returns_existing_job_unchanged(queue: jqc.Queue) -> None:
    first = queue.add("resize", {"v": 1}, job_id="photo-1", priority=3)
    again = queue.add("other", {"v": 2}, job_id="photo-1", delay=60)
    assert again.id == "photo-1"
    assert again.name == "resize" and again.data == {"v": 1} and again.state == JobState.WAITING
    assert again.options.priority == 3
    assert queue.counts().waiting == 1 and queue.counts().delayed == 0
    assert first.created_at == again.created_at


def test_auto_ids_skip_custom_ids_that_look_numeric(queue: jqc.Queue) -> None:
    queue.add("x", job_id="1")
    auto = queue.add("y")
    assert auto.id != "1"
    assert queue.get_job("1").name == "x"  # type: ignore[union-attr]


def test_add_bulk_adds_all_in_order(queue: jqc.Queue) -> None:
    jobs = queue.add_bulk([("a", {"i": i}) for i in range(1203)] + [jqc.NewJob("b", 1, JobOptions(delay=5))])
    assert len(jobs) == 1204
    assert len({j.id for j in jobs}) == 1204
    counts = queue.counts()
    assert counts.waiting == 1203 and counts.delayed == 1
    first = queue.claim("w", count=3).jobs
    assert [c.job.data["i"] for c in first] == [0, 1, 2]


def test_add_bulk_with_existing_ids(queue: jqc.Queue) -> None:
    queue.add("a", 1, job_id="k")
    jobs = queue.add_bulk([("a", 2, JobOptions(job_id="k")), ("a", 3, JobOptions(job_id="m"))])
    assert [j.data for j in jobs] == [1, 3]
    assert queue.counts().waiting == 2


# -- ordering -------------------------------------------------------------------------------------


def test_fifo_by_default(queue: jqc.Queue) -> None:
    for name in "abcde":
        queue.add(name)
    assert claim_order(queue) == list("abcde")


def test_lifo_jobs_run_first(queue: jqc.Queue) -> None:
    queue.add("a")
    queue.add("b")
    queue.add("c", lifo=True)
    queue.add("d", lifo=True)
    assert claim_order(queue) == ["d", "c", "a", "b"]


def test_priority_lower_first_fifo_within(queue: jqc.Queue) -> None:
    queue.add("p5-a", priority=5)
    queue.add("p1-a", priority=1)
    queue.add("p0-a")
    queue.add("p5-b", priority=5)
    queue.add("p1-b", priority=1)
    queue.add("big", priority=jqc.engine.job.MAX_PRIORITY)
    assert claim_order(queue) == ["p0-a", "p1-a", "p1-b", "p5-a", "p5-b", "big"]


def test_change_priority_order_exact(queue: jqc.Queue) -> None:
    a = queue.add("a", priority=2)
    queue.add("b", priority=2)
    c = queue.add("c")
    queue.change_priority(a.id, 9)
    queue.change_priority(c.id, 1)
    assert claim_order(queue) == ["c", "b", "a"]
    assert queue.get_job(a.id).options.priority == 9  # type: ignore[union-attr]


# -- delays ---------------------------------------------------------------------------------------


def test_delayed_job_runs_only_after_its_delay(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("later", delay=10)
    assert queue.get_job(job.id).state == JobState.DELAYED  # type: ignore[union-attr]
    got = queue.claim("w")
    assert got.status == Code.EMPTY
    assert got.retry_at == pytest.approx(clock.now() + 10, abs=0.002)
    clock.advance(9.99)
    assert queue.claim("w").status == Code.EMPTY
    clock.advance(0.02)
    claimed = claim_one(queue)
    assert claimed.id == job.id
    assert claimed.job.ready_at == pytest.approx(job.ready_at)


def test_delayed_jobs_promote_in_due_order(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("c", delay=3)
    queue.add("a", delay=1)
    queue.add("b", delay=2)
    clock.advance(5)
    assert claim_order(queue) == ["a", "b", "c"]


def test_many_due_jobs_promote_in_batches(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("d", i, JobOptions(delay=1 + i / 1000)) for i in range(250)])
    clock.advance(10)
    seen = []
    while (got := queue.claim("w", count=50)).jobs:
        seen += [c.job.data for c in got.jobs]
    assert seen == list(range(250))


def test_promote_and_change_delay(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    a = queue.add("a", delay=100)
    b = queue.add("b", delay=100)
    queue.promote(a.id)
    assert claim_one(queue).id == a.id
    queue.change_delay(b.id, 5)
    clock.advance(4)
    assert queue.claim("w").status == Code.EMPTY
    clock.advance(1.5)
    assert claim_one(queue).id == b.id


def test_change_delay_zero_makes_job_wait(queue: jqc.Queue) -> None:
    a = queue.add("a", delay=100)
    queue.change_delay(a.id, 0)
    assert claim_one(queue).id == a.id


# -- completing and failing -----------------------------------------------------------------------


def test_complete_records_result_timestamps_and_metrics(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("t", {"x": 1})
    clock.advance(2)
    claimed = claim_one(queue)
    clock.advance(0.5)
    queue.complete(claimed, {"url": "s3://thumb"})
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.COMPLETED
    assert stored.result == {"url": "s3://thumb"}
    assert stored.started_at == pytest.approx(job.created_at + 2, abs=0.002)
    assert stored.finished_at == pytest.approx(job.created_at + 2.5, abs=0.002)
    metrics = queue.metrics()
    assert metrics.completed == 1
    assert metrics.wait.percentile(50) == pytest.approx(2.0, rel=0.12)
    assert metrics.run.percentile(95) == pytest.approx(0.5, rel=0.12)


def test_complete_with_fetch_next_claims_in_same_call(queue: jqc.Queue) -> None:
    queue.add_bulk([("a", i) for i in range(3)])
    first = claim_one(queue)
    nxt = queue.complete(first, None, fetch_next=2, worker="w1")
    assert nxt is not None and nxt.status == Code.OK
    assert [c.job.data for c in nxt.jobs] == [1, 2]
    last = queue.complete(nxt.jobs[0], None, fetch_next=1, worker="w1")
    assert last is not None and last.status == Code.EMPTY


def test_fail_retries_with_fixed_backoff(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("flaky", attempts=3, backoff=Backoff.fixed(4))
    claimed = claim_one(queue)
    assert queue.fail(claimed, "timeout talking to S3", traceback="Traceback ...") == "retry"
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.DELAYED
    assert stored.attempts_made == 1 and stored.failure_reason == "timeout talking to S3"
    assert stored.traceback == "Traceback ..."
    clock.advance(3.9)
    assert queue.claim("w").status == Code.EMPTY
    clock.advance(0.2)
    second = claim_one(queue)
    assert queue.fail(second, "again") == "retry"
    clock.advance(4.1)
    third = claim_one(queue)
    assert queue.fail(third, "last") == "failed"
    final = queue.get_job(job.id)
    assert final is not None and final.state == JobState.FAILED and final.attempts_made == 3
    assert queue.counts().failed == 1


def test_exponential_backoff_with_cap_and_jitter_bounds() -> None:
    backoff = Backoff.exponential(1, cap=10, jitter=0.5)
    rng = random.Random(1)
    waits = [backoff.seconds(n, rng=rng) for n in range(1, 8)]
    for n, wait in enumerate(waits, start=1):
        full = min(2 ** (n - 1), 10)
        assert full * 0.5 <= wait <= full
    assert Backoff.exponential(2).seconds(4) == 16


def test_custom_backoff_uses_registered_function(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("c", attempts=2, backoff=Backoff.custom("linear"))
    claimed = claim_one(queue)
    queue.fail(claimed, "x", backoff_functions={"linear": lambda attempt, err: 7.0 * attempt})
    clock.advance(6.9)
    assert queue.claim("w").status == Code.EMPTY
    clock.advance(0.2)
    assert claim_one(queue).job.attempts_made == 1


def test_custom_backoff_missing_function_fails_for_good_not_lost(queue: jqc.Queue) -> None:
    job = queue.add("c", attempts=5, backoff=Backoff.custom("nowhere"))
    claimed = claim_one(queue)
    assert queue.fail(claimed, "boom") == "failed"
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.FAILED
    assert "not retried" in (stored.failure_reason or "")
    assert queue.counts().dead == 1


def test_retry_with_zero_delay_goes_straight_to_waiting(queue: jqc.Queue) -> None:
    queue.add("z", attempts=2)
    claimed = claim_one(queue)
    assert queue.fail(claimed, "x") == "retry"
    assert queue.counts().waiting == 1
    assert claim_one(queue).job.attempts_made == 1


def test_fail_without_retry_dead_letters_with_metadata(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("bad", {"photoId": "9"}, attempts=5)
    claimed = claim_one(queue, worker="worker-7")
    assert queue.fail(claimed, "corrupt image", traceback="tb", retry=False, worker="worker-7") == "failed"
    page = queue.dead_letters()
    assert page.total == 1
    record = page.letters[0]
    assert record.job.id == job.id and record.job.data == {"photoId": "9"}
    assert record.job.failure_reason == "corrupt image" and record.job.traceback == "tb"
    assert record.job.attempts_made == 1
    assert record.worker == "worker-7"
    assert record.dead_at == pytest.approx(clock.now(), abs=0.002)


def test_retry_failed_job_resets_attempts_and_withdraws_dead_letter(queue: jqc.Queue) -> None:
    job = queue.add("bad", attempts=1)
    queue.fail(claim_one(queue), "x")
    queue.retry(job.id)
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.WAITING
    assert stored.attempts_made == 0 and stored.retried == 1
    assert queue.counts().dead == 0 and queue.counts().failed == 0


def test_retry_failed_in_bulk(queue: jqc.Queue) -> None:
    queue.add_bulk([("x", i) for i in range(5)])
    for _ in range(5):
        queue.fail(claim_one(queue), "no")
    assert sorted(queue.retry_failed(limit=2)) == ["1", "2"]
    assert len(queue.retry_failed()) == 3
    assert queue.counts().waiting == 5


# -- retention ------------------------------------------------------------------------------------


def test_remove_on_complete_keep_none(queue: jqc.Queue) -> None:
    job = queue.add("x", remove_on_complete=Keep.none())
    queue.complete(claim_one(queue))
    assert queue.get_job(job.id) is None
    assert queue.counts().completed == 0


def test_remove_on_complete_keep_last_n(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    jobs = queue.add_bulk([("x", i, JobOptions(remove_on_complete=Keep.last(2))) for i in range(5)])
    for _ in range(5):
        clock.advance(1)
        queue.complete(claim_one(queue))
    assert queue.counts().completed == 2
    assert [j.id for j in queue.list_jobs("completed").jobs] == [jobs[4].id, jobs[3].id]
    assert queue.get_job(jobs[0].id) is None


def test_remove_on_complete_by_age(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("x", i, JobOptions(remove_on_complete=Keep.younger_than(10))) for i in range(3)])
    queue.complete(claim_one(queue))
    clock.advance(11)
    queue.complete(claim_one(queue))
    assert queue.counts().completed == 1
    clock.advance(5)
    queue.complete(claim_one(queue))
    assert queue.counts().completed == 2


def test_remove_on_fail_keeps_dead_letter(queue: jqc.Queue) -> None:
    job = queue.add("x", remove_on_fail=Keep.none())
    queue.fail(claim_one(queue), "no")
    assert queue.get_job(job.id) is None
    page = queue.dead_letters()
    assert page.total == 1 and page.letters[0].job.id == job.id


# -- tokens, locks and stalls ---------------------------------------------------------------------


def test_each_claim_gets_a_fresh_increasing_token(queue: jqc.Queue) -> None:
    queue.add_bulk([("x", i) for i in range(3)])
    tokens = [c.token for c in queue.claim("w", count=3).jobs]
    assert len(set(tokens)) == 3 and tokens == sorted(tokens)


def test_stale_token_writes_are_rejected_and_change_nothing(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", attempts=3)
    zombie = claim_one(queue, worker="zombie", lock=5)
    clock.advance(6)
    assert queue.recover_stalled().recovered == (job.id,)
    fresh = claim_one(queue, worker="fresh")
    assert fresh.token != zombie.token
    before = queue.get_job(job.id)
    for write in (
        lambda: queue.complete(zombie, "late"),
        lambda: queue.fail(zombie, "late"),
        lambda: queue.progress(zombie, 50),
        lambda: queue.log(zombie, "late"),
        lambda: queue.release(zombie),
    ):
        with pytest.raises(jqc.LockLostError):
            write()
    assert queue.extend([zombie]) == {job.id: False}
    assert queue.get_job(job.id) == before
    assert queue.job_logs(job.id) == []
    queue.complete(fresh, "ok")
    assert queue.get_job(job.id).result == "ok"  # type: ignore[union-attr]


def test_extend_keeps_job_from_being_recovered(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("x", 1), ("x", 2)])
    held = queue.claim("w", count=2, lock=10).jobs
    for _ in range(5):
        clock.advance(8)
        assert queue.extend(held, lock=10) == {c.id: True for c in held}
        assert queue.recover_stalled().recovered == ()
    clock.advance(11)
    assert sorted(queue.recover_stalled().recovered) == sorted(c.id for c in held)


def test_recovered_job_runs_next_and_counts_a_stall_not_an_attempt(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    crashed = queue.add("crashed")
    queue.add("other")
    claim_one(queue, lock=5)
    clock.advance(5.1)
    queue.recover_stalled()
    again = claim_one(queue)
    assert again.id == crashed.id
    assert again.job.stall_count == 1 and again.job.attempts_made == 0


def test_job_stalling_past_the_maximum_fails_and_is_dead_lettered(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x")
    for _ in range(2):
        claim_one(queue, lock=1)
        clock.advance(2)
        result = queue.recover_stalled(max_stalls=1)
    assert result.failed == (job.id,)
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.FAILED and stored.stall_count == 2
    assert "stalled" in (stored.failure_reason or "")
    assert queue.counts().dead == 1


def test_recover_is_bounded_per_call(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("x", i) for i in range(30)])
    queue.claim("w", count=30, lock=1)
    clock.advance(2)
    first = queue.recover_stalled(limit=10)
    assert len(first.recovered) == 10 and first.more
    rest = queue.recover_stalled(limit=100)
    assert len(rest.recovered) == 20 and not rest.more
    assert queue.counts().waiting == 30


def test_release_hands_back_without_counting_an_attempt(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", attempts=1)
    queue.add("y")
    queue.release(claim_one(queue))
    again = claim_one(queue)
    assert again.id == job.id and again.job.attempts_made == 0
    queue.release(again, delay=3)
    assert queue.get_job(job.id).state == JobState.DELAYED  # type: ignore[union-attr]
    assert claim_one(queue).job.name == "y"
    clock.advance(3.1)
    assert claim_one(queue).id == job.id


def test_progress_and_bounded_log(conn: jqc.Connection) -> None:
    queue = conn.queue("logs", log_max_lines=3)
    job = queue.add("x")
    claimed = claim_one(queue)
    queue.progress(claimed, {"done": 3, "of": 10})
    for i in range(5):
        queue.log(claimed, f"line {i}")
    assert queue.get_job(job.id).progress == {"done": 3, "of": 10}  # type: ignore[union-attr]
    assert queue.job_logs(job.id) == ["line 2", "line 3", "line 4"]


# -- pause, limits --------------------------------------------------------------------------------


def test_pause_stops_claims_and_resume_restarts(queue: jqc.Queue) -> None:
    queue.add("x")
    assert queue.pause() is True
    assert queue.pause() is False
    assert queue.claim("w").status == Code.PAUSED
    assert queue.counts().paused and queue.counts().waiting == 1
    assert queue.resume() is True
    assert claim_one(queue).job.name == "x"


def test_rate_limit_caps_claims_per_window(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    clock.move_to(1_000_000.0)  # a window boundary for a 2 s window
    queue.configure(rate_limit=(3, 2.0))
    queue.add_bulk([("x", i) for i in range(10)])
    got = queue.claim("w", count=5)
    assert len(got.jobs) == 3
    limited = queue.claim("w")
    assert limited.status == Code.RATE_LIMITED
    assert limited.retry_at == pytest.approx(1_000_002.0)
    clock.advance(2)
    assert len(queue.claim("w", count=5).jobs) == 3
    queue.configure(rate_limit=None)
    assert len(queue.claim("w", count=5).jobs) == 4


def test_concurrency_limit_is_queue_wide(queue: jqc.Queue) -> None:
    queue.configure(concurrency=2)
    queue.add_bulk([("x", i) for i in range(5)])
    assert len(queue.claim("a", count=5).jobs) == 2
    assert queue.claim("b").status == Code.CONCURRENCY_LIMITED
    queue.configure(concurrency=None)
    assert len(queue.claim("b", count=5).jobs) == 3


def test_unknown_setting_is_rejected(queue: jqc.Queue) -> None:
    with pytest.raises(jqc.InvalidOptionError, match="bogus"):
        queue.configure(bogus=1)


# -- admin ----------------------------------------------------------------------------------------


def test_list_jobs_paginates_in_claim_order(queue: jqc.Queue) -> None:
    queue.add_bulk([("x", i, JobOptions(priority=1 if i % 2 else 0)) for i in range(10)])
    seen = []
    offset = 0
    while True:
        page = queue.list_jobs("waiting", offset, 3)
        assert page.total == 10
        if not page.jobs:
            break
        seen += [j.data for j in page.jobs]
        offset += 3
    assert seen == [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    assert claim_order(queue) == ["x"] * 10


def test_counts_cover_every_state(queue: jqc.Queue) -> None:
    queue.add_bulk([("x", i) for i in range(4)])
    queue.add("d", delay=50)
    done, bad, held = queue.claim("w", count=3).jobs
    queue.complete(done)
    queue.fail(bad, "no")
    counts = queue.counts()
    assert (counts.waiting, counts.delayed, counts.active, counts.completed, counts.failed, counts.dead) == (
        1, 1, 1, 1, 1, 1,
    )  # fmt: skip
    assert counts.total == 5
    assert held.id in {j.id for j in queue.list_jobs("active").jobs}


def test_remove_each_state_and_refuse_active(queue: jqc.Queue) -> None:
    w = queue.add("w")
    d = queue.add("d", delay=9)
    a = queue.add("a")
    queue.claim("w")  # takes w
    queue.remove(d.id)
    with pytest.raises(jqc.JobActiveError):
        queue.remove(w.id)
    queue.remove(a.id)
    assert queue.get_job(a.id) is None and queue.get_job(d.id) is None
    counts = queue.counts()
    assert counts.waiting == 0 and counts.delayed == 0 and counts.active == 1


def test_clean_old_completed_with_limit(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("x", i) for i in range(6)])
    for _ in range(4):
        queue.complete(claim_one(queue))
    clock.advance(100)
    for _ in range(2):
        queue.complete(claim_one(queue))
    assert len(queue.clean("completed", grace=50, limit=3)) == 3
    assert len(queue.clean("completed", grace=50, limit=10)) == 1
    assert queue.counts().completed == 2


def test_clean_waiting_and_delayed_by_age(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("old")
    queue.add("old-delayed", delay=1000)
    clock.advance(60)
    queue.add("new")
    assert len(queue.clean("waiting", grace=30)) == 1
    assert len(queue.clean("delayed", grace=30)) == 1
    assert claim_order(queue) == ["new"]


def test_drain_and_obliterate(queue: jqc.Queue, conn: jqc.Connection) -> None:
    queue.add_bulk([("x", i) for i in range(2500)])
    queue.add("later", delay=10)
    assert queue.drain() == 2500
    assert queue.counts().delayed == 1
    assert queue.drain(delayed=True) == 1
    queue.add("busy")
    held = claim_one(queue)
    queue.log(held, "hello")
    with pytest.raises(jqc.JobActiveError):
        queue.obliterate()
    queue.obliterate(force=True)
    client = conn.sync_client()
    assert list(client.scan_iter(match=queue.ops.keys.scan_pattern)) == []


def test_queues_are_isolated(conn: jqc.Connection) -> None:
    a, b = conn.queue("a"), conn.queue("b")
    a.add("x")
    assert b.counts().waiting == 0
    assert b.claim("w").status == Code.EMPTY
    b.obliterate(force=True)
    assert a.counts().waiting == 1


def test_all_keys_share_the_queue_hash_tag(queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("x", i, JobOptions(priority=i % 2, attempts=2)) for i in range(4)])
    queue.add("d", delay=5)
    held = queue.claim("w", count=3).jobs
    queue.log(held[0], "l")
    queue.complete(held[0])
    queue.fail(held[1], "x", retry=False)
    keys = list(conn.sync_client().scan_iter(match=own_keys(conn)))
    assert keys and all(k.startswith(f"{conn.prefix}:{{photos}}:") for k in keys), keys


# -- events ---------------------------------------------------------------------------------------


def test_events_tell_the_story_of_a_job(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=2)
    claimed = claim_one(queue)
    queue.progress(claimed, 10)
    queue.fail(claimed, "once")
    queue.complete(claim_one(queue))
    names = [e.name for e in queue.events() if e.job_id == job.id]
    assert names == ["added", "active", "progress", "retrying", "active", "completed"]
    queue.pause()
    queue.resume()
    assert [e.name for e in queue.events()][-2:] == ["paused", "resumed"]


def test_events_stream_is_capped(conn: jqc.Connection) -> None:
    queue = conn.queue("capped", events_max_len=100)
    queue.add_bulk([("x", i) for i in range(1000)])
    length = conn.sync_client().xlen(queue.ops.keys.events)
    assert 100 <= length < 400


def test_events_can_be_turned_off(conn: jqc.Connection) -> None:
    queue = conn.queue("quiet", events_max_len=0)
    queue.add("x")
    assert queue.events() == []


async def test_async_events_block_until_a_job_arrives(aqueue: jqc.AsyncQueue, conn: jqc.Connection) -> None:
    import asyncio

    waiter = asyncio.ensure_future(aqueue.events("$", block=5))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # nothing to read: it blocks
    # The blocked read may not have reached the server yet (opening a TLS connection takes a while):
    # add until one addition wakes it, so the test does not depend on how fast that is.
    for _ in range(40):
        await asyncio.to_thread(conn.queue("photos").add, "x")
        done, _ = await asyncio.wait({waiter}, timeout=0.25)
        if done:
            break
    events = waiter.result()
    assert events and {e.name for e in events} == {"added"}


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_per_minute_and_percentiles(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    clock.move_to(60_000_000.0)  # start of a minute
    queue.add_bulk([("x", i) for i in range(100)])
    for i in range(100):
        claimed = claim_one(queue)
        clock.advance(0.001 * (i + 1))  # run times 1..100 ms
        if i % 10 == 0:
            queue.fail(claimed, "no")
        else:
            queue.complete(claimed)
    clock.advance(60)
    metrics = queue.metrics(window_minutes=5)
    assert metrics.completed == 90 and metrics.failed == 10
    assert metrics.error_rate == pytest.approx(0.1)
    assert metrics.run.percentile(50) == pytest.approx(0.050, rel=0.12)
    assert metrics.run.percentile(95) == pytest.approx(0.095, rel=0.12)
    assert queue.metrics(window_minutes=1).completed == 0


def test_metrics_are_kept_for_a_bounded_window(queue: jqc.Queue, clock: jqc.VirtualClock, conn: jqc.Connection) -> None:
    queue.configure(metrics_minutes=3)
    for _ in range(10):
        queue.add("x")
        queue.complete(claim_one(queue))
        clock.advance(60)
    minutes = conn.sync_client().zcard(queue.ops.keys.minutes)
    assert minutes <= 4
    assert queue.metrics(window_minutes=60).completed <= 4


# -- asyncio --------------------------------------------------------------------------------------


async def test_async_queue_matches_sync_behaviour(aqueue: jqc.AsyncQueue, clock: jqc.VirtualClock) -> None:
    await aqueue.add_bulk([("x", i, JobOptions(priority=2)) for i in range(3)])
    await aqueue.add("first", priority=1)
    got = await aqueue.claim("w", count=2)
    assert [c.job.name for c in got.jobs] == ["first", "x"]
    assert await aqueue.extend(got.jobs) == {c.id: True for c in got.jobs}
    await aqueue.complete(got.jobs[0], "ok")
    assert await aqueue.fail(got.jobs[1], "no", retry=False) == "failed"
    counts = await aqueue.counts()
    assert (counts.waiting, counts.completed, counts.failed) == (2, 1, 1)
    assert (await aqueue.dead_letters()).total == 1
    clock.advance(1)
    assert (await aqueue.recover_stalled()).recovered == ()
    assert await aqueue.drain() == 2


# -- corrupt stored data --------------------------------------------------------------------------


def test_claimed_corrupt_job_is_dead_lettered_not_run_or_lost(queue: jqc.Queue, conn: jqc.Connection) -> None:
    bad = queue.add("x", {"ok": 1})
    good = queue.add("y", {"ok": 2})
    edit_job(conn, queue, bad.id, {"d": "{not json"})
    got = queue.claim("w", count=2)
    assert [c.id for c in got.jobs] == [good.id]
    assert [(job_id, "not valid JSON" in reason) for job_id, _, reason in got.corrupt] == [(bad.id, True)]
    counts = queue.counts()
    assert (counts.active, counts.failed, counts.dead) == (1, 1, 1)
    page = queue.dead_letters()
    assert page.total == 1 and page.letters == ()
    assert page.corrupt[0][0] == bad.id  # the record keeps the bad data as it was found
    reason = job_record(conn, queue, bad.id).get("fr")
    assert reason.startswith("corrupt job:")
    failed = queue.list_jobs("failed")
    assert failed.total == 1 and failed.jobs == () and failed.corrupt[0][0] == bad.id


def test_corrupt_job_next_claimed_by_complete_is_dead_lettered(queue: jqc.Queue, conn: jqc.Connection) -> None:
    queue.add("a")
    bad = queue.add("b")
    edit_job(conn, queue, bad.id, {"n": None})
    following = queue.complete(claim_one(queue), fetch_next=1, worker="w")
    assert following is not None and following.jobs == () and following.corrupt[0][0] == bad.id
    assert queue.counts().failed == 1 and queue.counts().active == 0


# -- dead letters ---------------------------------------------------------------------------------


def test_replay_dead_letter_of_kept_job(queue: jqc.Queue) -> None:
    job = queue.add("x", {"v": 1}, attempts=2)
    queue.fail(claim_one(queue), "a")
    queue.fail(claim_one(queue), "b")
    queue.replay_dead(job.id)
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.WAITING
    assert stored.attempts_made == 0 and stored.replayed == 1
    counts = queue.counts()
    assert (counts.waiting, counts.failed, counts.dead) == (1, 0, 0)
    queue.complete(claim_one(queue), "fine")
    assert queue.get_job(job.id).result == "fine"  # type: ignore[union-attr]


def test_replay_rebuilds_a_removed_job_from_its_record(queue: jqc.Queue) -> None:
    job = queue.add("x", {"v": 2}, remove_on_fail=Keep.none())
    queue.fail(claim_one(queue), "no")
    assert queue.get_job(job.id) is None
    queue.replay_dead(job.id)
    again = claim_one(queue)
    assert again.id == job.id and again.job.data == {"v": 2} and again.job.replayed == 1


def test_replay_refuses_when_the_id_is_live_again(queue: jqc.Queue) -> None:
    job = queue.add("x", job_id="order-1", remove_on_fail=Keep.none())
    queue.fail(claim_one(queue), "no")
    queue.add("x", job_id="order-1")
    with pytest.raises(jqc.JobStateError):
        queue.replay_dead(job.id)
    assert queue.dead_letters().total == 1
    with pytest.raises(jqc.JobNotFoundError):
        queue.replay_dead("never-died")


def test_find_and_purge_dead_letters(queue: jqc.Queue) -> None:
    queue.add_bulk([("resize" if i % 2 else "tag", i) for i in range(6)])
    for i in range(6):
        queue.fail(claim_one(queue), "timeout" if i < 4 else "corrupt")
    timeouts = queue.find_dead(lambda d: d.job.failure_reason == "timeout")
    assert sorted(d.job.data for d in timeouts) == [0, 1, 2, 3]
    assert len(queue.find_dead(lambda d: d.job.name == "tag", limit=2)) == 2
    assert queue.purge_dead(timeouts[0].job.id) == 1
    with pytest.raises(jqc.JobNotFoundError):
        queue.purge_dead(timeouts[0].job.id)
    assert queue.purge_all_dead() == 5
    assert queue.dead_letters().total == 0
    assert queue.counts().failed == 6


def test_dead_letter_cap_drops_oldest(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.configure(dead_letter_cap=3)
    queue.add_bulk([("x", i) for i in range(5)])
    for _ in range(5):
        clock.advance(1)
        queue.fail(claim_one(queue), "no")
    page = queue.dead_letters()
    assert page.total == 3 and [d.job.data for d in page.letters] == [4, 3, 2]


def test_complete_many_completes_and_claims_next_in_one_call(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add_bulk([("x", i) for i in range(7)])
    held = queue.claim("w", count=3, lock=5).jobs
    zombie = held[2]
    clock.advance(4)
    assert queue.extend(held[:2], lock=5) == {held[0].id: True, held[1].id: True}
    clock.advance(2)
    assert queue.recover_stalled().recovered == (zombie.id,)  # its token is revoked
    result = queue.complete_many([(c, {"n": c.job.data}) for c in held], fetch_next=3, worker="w")
    assert result.completed == (held[0].id, held[1].id)
    assert result.lost == (zombie.id,)
    assert result.next is not None and [c.job.data for c in result.next.jobs] == [2, 3, 4]  # 2 ran again
    assert queue.get_job(held[0].id).result == {"n": 0}  # type: ignore[union-attr]
    counts = queue.counts()
    assert (counts.completed, counts.active, counts.waiting) == (2, 3, 2)
    assert queue.metrics().completed == 2


def test_waiting_jobs_store_no_state_field(queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", attempts=2)
    assert job_record(conn, queue, job.id).get("s") is None
    queue.fail(claim_one(queue), "again")  # back to waiting: the state field goes again
    assert job_record(conn, queue, job.id).get("s") is None
    assert queue.get_job(job.id).state == JobState.WAITING  # type: ignore[union-attr]
    queue.change_priority(job.id, 3)
    with pytest.raises(jqc.JobStateError):
        queue.promote(job.id)
    queue.remove(job.id)
    with pytest.raises(jqc.JobNotFoundError):
        queue.remove(job.id)


def test_obliterated_queue_never_hands_out_an_old_token(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x", job_id="order-5")
    old = claim_one(queue, worker="before")
    queue.obliterate(force=True)
    clock.advance(0.001)
    queue.add("x", job_id="order-5")
    new = claim_one(queue, worker="after")
    assert new.token != old.token
    with pytest.raises(jqc.LockLostError):
        queue.complete(old, "stale")
    queue.complete(new, "fresh")
    assert queue.get_job("order-5").result == "fresh"  # type: ignore[union-attr]
