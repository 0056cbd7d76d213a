"""Least-privilege ACL rules, checked against a real Redis server.

Each test creates its own users (``jqc-test-<random>``, deleted afterwards) from the generated rules
and connects as them. A refused operation must be refused *before anything runs*: every refusal
test compares the whole database before and after. Commands too dangerous to try for real on a
shared server (FLUSHALL, CONFIG SET, SHUTDOWN, ...) are checked with ``ACL DRYRUN``, which answers
without running them.

The rule-generation tests at the bottom need no server.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
import redis.exceptions

import jqc
from jqc import Keep
from jqc.coordinator import acl, health, prometheus
from jqc.coordinator.autoscale import Coordinator
from jqc.coordinator.lock import read_decision_op, read_lock
from jqc.coordinator.metrics import read_snapshot
from jqc.engine.calls import run_sync
from jqc.engine.keys import SUFFIXES
from jqc.engine.scripts import script_keys as scripts_keys
from jqc.engine.scripts import scripts
from jqc.scaling import SloPolicy
from jqc.worker import registry
from tests.coordinator.conftest import DB, MakeUser, heartbeat, lease, state


def refused(admin: jqc.Connection, action: Callable[[], Any]) -> str:
    """Run ``action``; it must be refused for lack of permission and change nothing."""
    before = state(admin.sync_client())
    with pytest.raises((jqc.JqcError, redis.exceptions.ResponseError)) as info:
        action()
    assert state(admin.sync_client()) == before
    message = str(info.value)
    assert "no permissions" in message, message  # refused at the door, not half-way through a script
    return message


def dry_refused(admin: jqc.Connection, user: jqc.Connection, *command: str) -> None:
    """ACL DRYRUN says the user may not run ``command`` (nothing is run)."""
    name = user.sync_client().execute_command("ACL", "WHOAMI")
    answer = admin.sync_client().execute_command("ACL", "DRYRUN", name, *command)
    assert answer != "OK" and "no permissions" in str(answer), (command, answer)


def plain(conn: jqc.Connection, *command: Any) -> Callable[[], Any]:
    return lambda: conn.sync_client().execute_command(*command)


K = "jqc:{photos}:"


# -- producer -------------------------------------------------------------------------------------


def test_producer_adds_and_reads_back_jobs(make_user: MakeUser, admin: jqc.Connection) -> None:
    producer = make_user("producer").queue("photos")
    first = producer.add("thumbnail", {"photo": 1})
    producer.add("urgent", priority=3)
    producer.add("later", delay=30)
    producer.add("last-in", lifo=True)
    producer.add_bulk([("bulk", 1), ("bulk", 2)])
    producer.add("once", job_id="custom")
    again = producer.add("twice", job_id="custom")  # an existing id returns that job, unchanged
    assert again.name == "once"
    stored = producer.get_job(first.id)
    assert stored is not None and stored.data == {"photo": 1}
    counts = admin.queue("photos").counts()
    assert (counts.waiting, counts.delayed) == (6, 1)


def test_producer_cannot_claim_and_a_refused_claim_changes_nothing(
    make_user: MakeUser, admin: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    user = make_user("producer")
    producer = user.queue("photos")
    job = producer.add("thumbnail")
    producer.add("urgent", priority=2)
    producer.add("soon", delay=1)
    clock.advance(5)  # a claim would first promote the due delayed job: a write before the pop
    refused(admin, lambda: producer.claim("w1"))
    refused(admin, lambda: producer.claim("w1", count=10))
    # nor by hand: the waiting containers are write-only for a producer, active is out of reach
    refused(admin, plain(user, "RPOP", K + "wait"))
    refused(admin, plain(user, "LRANGE", K + "wait", 0, -1))
    refused(admin, plain(user, "LMOVE", K + "wait", K + "wait", "RIGHT", "LEFT"))
    refused(admin, plain(user, "ZPOPMIN", K + "prio"))
    refused(admin, plain(user, "ZADD", K + "active", 1, job.id))
    refused(admin, plain(user, "ZRANGE", K + "delayed", 0, -1))
    # the jobs are intact: a worker gets all three
    got = admin.queue("photos").claim("w1", count=10)
    assert sorted(j.job.name for j in got.jobs) == ["soon", "thumbnail", "urgent"]


def test_producer_cannot_delete_jobs(make_user: MakeUser, admin: jqc.Connection) -> None:
    user = make_user("producer")
    producer = user.queue("photos")
    job = producer.add("thumbnail")
    producer.add("urgent", priority=2)
    producer.add("later", delay=60)
    refused(admin, lambda: producer.remove(job.id))
    refused(admin, lambda: producer.drain(delayed=True))
    refused(admin, lambda: producer.clean("waiting", 0))
    refused(admin, lambda: producer.purge_all_dead())
    refused(admin, lambda: producer.retry_failed())
    refused(admin, lambda: producer.change_priority(job.id, 5))
    refused(admin, lambda: producer.pause())
    for command in (
        ("DEL", K + "jobs"),
        ("UNLINK", K + "jobs"),
        ("EXPIRE", K + "jobs", 1),
        ("PEXPIRE", K + "meta", 1),
        ("HDEL", K + "jobs", job.id),
        ("SET", K + "jobs", "x"),
        ("RENAME", K + "wait", K + "gone"),
        ("LREM", K + "wait", 0, job.id),
        ("LTRIM", K + "wait", 1, 0),
        ("ZREM", K + "prio", "2"),
        ("XTRIM", K + "events", "MAXLEN", 0),
        ("FLUSHDB",),
        ("EVAL", "return redis.call('DEL', KEYS[1])", 1, K + "meta"),
    ):
        refused(admin, plain(user, *command))
    dry_refused(admin, user, "FLUSHALL")
    dry_refused(admin, user, "SCRIPT", "FLUSH")
    dry_refused(admin, user, "FUNCTION", "FLUSH")
    assert admin.queue("photos").counts().total == 3


def test_producer_cannot_obliterate(make_user: MakeUser, admin: jqc.Connection) -> None:
    user = make_user("producer")
    producer = user.queue("photos")
    producer.add("thumbnail")
    refused(admin, lambda: producer.obliterate(force=True))
    refused(admin, lambda: producer.obliterate())
    refused(admin, plain(user, "SCAN", 0))
    refused(admin, plain(user, "KEYS", "*"))
    assert admin.queue("photos").counts().waiting == 1


def test_a_role_is_confined_to_its_queue(make_user: MakeUser, admin: jqc.Connection) -> None:
    producer = make_user("producer")
    worker = make_user("worker")
    admin.queue("other").add("theirs")
    refused(admin, lambda: producer.queue("other").add("mine"))
    refused(admin, lambda: worker.queue("other").claim("w1"))
    refused(admin, plain(worker, "HGET", "jqc:{other}:jobs", "1"))
    refused(admin, plain(worker, "GET", "unrelated"))
    make_user("producer", prefix="app").queue("photos").add("fine")  # another prefix, its own grant
    refused(admin, lambda: make_user("producer", prefix="app").queue("other").add("no"))


# -- worker ---------------------------------------------------------------------------------------


def test_worker_runs_every_worker_operation(
    make_user: MakeUser, admin: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    boss = admin.queue("photos")
    boss.configure(dead_letter_cap=1, metrics_minutes=1)
    user = make_user("worker")
    worker = user.queue("photos", log_max_lines=1)
    boss.add("a", remove_on_complete=Keep.none())
    boss.add("b", attempts=2)
    for name in ("c", "d", "e", "f"):
        boss.add(name)

    def claim() -> jqc.ClaimedJob:
        got = worker.claim("w1", lock=10)
        assert got.status == jqc.Code.OK, got
        return got.jobs[0]

    held = claim()
    assert held.job.name == "a"
    assert worker.extend([held], lock=20) == {held.id: True}
    worker.progress(held, {"pct": 50})
    worker.log(held, "one")
    worker.log(held, "two")  # trims the log to one line
    nxt = worker.complete(held, {"ok": True}, fetch_next=1, worker="w1")  # a is deleted (HDEL jobs, logs)
    assert nxt is not None and nxt.jobs[0].job.name == "b"
    assert worker.fail(nxt.jobs[0], "boom", delay=0) == "retry"
    assert worker.fail(claim(), "dead") == "failed"  # c
    assert worker.fail(claim(), "dead") == "failed"  # d; the dead-letter cap drops c's record (HDEL dead)
    stalled = claim()
    clock.advance(11)
    assert worker.recover_stalled(max_stalls=1).recovered == (stalled.id,)
    worker.release(claim())
    for job in worker.claim("w1", count=5).jobs:
        worker.complete(job)
    clock.advance(180)  # a new minute trims the metrics of old minutes (HDEL metrics)
    boss.add("late")
    worker.complete(claim())
    assert admin.sync_client().zcard(K + "mi") == 1
    client = user.backend
    assert run_sync(client, heartbeat(worker.ops, "w1", "name", "w1", "ttl", "30000")) == 0
    assert run_sync(client, lease(worker.ops, "w1", 5000)) == 1
    assert run_sync(client, lease(worker.ops, "w1", 0)) == 0  # gives it up (DEL)
    assert run_sync(client, heartbeat(worker.ops, "w1")) == 0  # unregisters (HDEL winfo)
    counts = boss.counts()
    assert (counts.dead, counts.failed, counts.completed, counts.total) == (1, 2, 4, 6)
    assert worker.get_job(stalled.id) is not None


def test_worker_cannot_obliterate_or_remove_queue_keys(make_user: MakeUser, admin: jqc.Connection) -> None:
    boss = admin.queue("photos")
    job = boss.add("thumbnail")
    boss.add("later", delay=60)
    boss.add("held")
    user = make_user("worker")
    worker = user.queue("photos")
    refused(admin, lambda: worker.obliterate(force=True))
    refused(admin, lambda: worker.drain(delayed=True))
    refused(admin, lambda: worker.remove(job.id))
    refused(admin, lambda: worker.clean("waiting", 0))
    refused(admin, lambda: worker.purge_all_dead())
    refused(admin, lambda: worker.pause())
    refused(admin, lambda: worker.configure(concurrency=1))
    refused(admin, lambda: worker.add("not a producer"))
    for command in (
        ("DEL", K + "meta"),
        ("DEL", K + "wait"),
        ("DEL", K + "delayed"),
        ("DEL", K + "events"),
        ("UNLINK", K + "jobs"),
        ("LTRIM", K + "wait", 1, 0),
        ("EXPIRE", K + "meta", 1),
        ("SCAN", 0),
        ("FLUSHDB",),
        ("EVAL", "return 1", 0),
    ):
        refused(admin, plain(user, *command))
    dry_refused(admin, user, "FLUSHALL")
    dry_refused(admin, user, "SCRIPT", "FLUSH")
    assert boss.counts().total == 3


def test_worker_cannot_change_acls_or_server_settings(make_user: MakeUser, admin: jqc.Connection) -> None:
    user = make_user("worker")
    me = user.sync_client().execute_command("ACL", "WHOAMI")
    assert me.startswith("jqc-test-")
    refused(admin, plain(user, "ACL", "SETUSER", me, "+@all", "~*"))
    refused(admin, plain(user, "ACL", "SETUSER", "jqc-test-" + secrets.token_hex(6), "on", "nopass", "+@all"))
    refused(admin, plain(user, "ACL", "DELUSER", me))
    refused(admin, plain(user, "ACL", "GETUSER", me))
    refused(admin, plain(user, "ACL", "LIST"))
    refused(admin, plain(user, "CONFIG", "GET", "requirepass"))
    for command in (
        ("ACL", "SAVE"),
        ("ACL", "LOAD"),
        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
        ("CONFIG", "REWRITE"),
        ("SHUTDOWN",),
        ("DEBUG", "SLEEP", "0"),
        ("MODULE", "LIST"),
        ("CLIENT", "KILL", "ID", "1"),
        ("SLAVEOF", "NO", "ONE"),
    ):
        dry_refused(admin, user, *command)
    rules = admin.sync_client().execute_command("ACL", "GETUSER", me)
    assert "+@all" not in str(rules)


def test_what_acl_cannot_prevent(make_user: MakeUser, admin: jqc.Connection) -> None:
    """The documented limits: no per-field rules, and the commands a role's own scripts need."""
    boss = admin.queue("photos")
    job = boss.add("thumbnail")
    producer = make_user("producer")
    # a producer must write meta (job ids, sequence, next-due hint), so it can also set `paused`
    producer.sync_client().execute_command("HSET", K + "meta", "paused", "1")
    assert boss.counts().paused
    boss.resume()
    # a worker must delete job records (retention) and pop waiting ids (claim), so it can by hand
    worker = make_user("worker")
    assert worker.sync_client().execute_command("RPOP", K + "wait") == job.id
    assert worker.sync_client().execute_command("HDEL", K + "jobs", job.id) == 1


# -- admin and observer ---------------------------------------------------------------------------


def test_admin_obliterates_but_cannot_administer_redis(make_user: MakeUser, admin: jqc.Connection) -> None:
    boss = admin.queue("photos")
    boss.add("a")
    boss.add("b", delay=10)
    admin.queue("other").add("theirs")
    user = make_user("admin")
    queue = user.queue("photos")
    queue.pause()
    queue.resume()
    assert queue.counts().total == 2
    assert queue.obliterate() == 2
    left = state(admin.sync_client())
    assert not [k for k in left if k.startswith(K)]
    assert [k for k in left if k.startswith("jqc:{other}:")]
    refused(admin, lambda: user.queue("other").obliterate())
    refused(admin, plain(user, "ACL", "SETUSER", "jqc-test-" + secrets.token_hex(6), "on"))
    refused(admin, plain(user, "FLUSHDB"))
    refused(admin, plain(user, "CONFIG", "GET", "*"))
    dry_refused(admin, user, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    dry_refused(admin, user, "FLUSHALL")


def test_observer_reads_and_stores_health_but_changes_no_job(make_user: MakeUser, admin: jqc.Connection) -> None:
    boss = admin.queue("photos")
    boss.add("a")
    boss.complete(boss.claim("w").jobs[0])
    boss.add("b")
    user = make_user("observer")
    queue = user.queue("photos")
    assert queue.counts().waiting == 1
    assert queue.metrics(5).completed == 1
    assert queue.list_jobs("completed").total == 1
    assert queue.dead_letters().total == 0
    snap = read_snapshot(queue, stall_scan_limit=100)
    assert snap.oldest_waiting_age == 0.0 and snap.stalls is not None
    report = health.check(queue)
    assert health.read_health(boss) == report
    refused(admin, lambda: queue.add("c"))
    refused(admin, lambda: queue.claim("w"))
    refused(admin, lambda: queue.pause())
    refused(admin, plain(user, "HSET", K + "meta", "paused", "1"))
    refused(admin, plain(user, "DEL", K + "health"))


def test_prefix_wide_observer_finds_every_queue(make_user: MakeUser, admin: jqc.Connection) -> None:
    admin.queue("a").add("x")
    admin.queue("b").add("y")
    user = make_user("observer", queue=None)
    assert user.queue_names() == ["a", "b"]
    reports = health.check_all(user)
    assert [r.queue for r in reports] == ["a", "b"]


def test_coordinator_runs_autoscale_health_and_metrics(
    make_user: MakeUser, admin: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    boss = admin.queue("photos")
    boss.add("a")
    boss.complete(boss.claim("w").jobs[0])
    boss.add("b")
    boss.fail(boss.claim("w").jobs[0], "boom")  # a dead letter, whose record it cannot read
    boss.add("c")
    boss.add("d", delay=30)
    record = {"name": "w1", "active": 0, "concurrency": 4}
    run_sync(admin.backend, registry.heartbeat(boss.ops, "w1", record, ttl=30.0, prune_after=300.0))
    user = make_user("coordinator")
    queue = user.queue("photos")
    coordinator = Coordinator(user, "photos", SloPolicy(slo=60.0), min_workers=1, max_workers=5, holder="c1")
    tick = coordinator.tick()  # lock, snapshot (counts, metrics, oldest job, registry), fenced publish
    assert tick.leader and tick.decision is not None and tick.decision.token == 1
    assert run_sync(user.backend, read_decision_op(queue.ops)) == tick.decision
    assert run_sync(user.backend, read_lock(queue.ops)).holder == "c1"
    clock.advance(15)
    assert coordinator.tick().leader
    snap = read_snapshot(queue, stall_scan_limit=100)
    assert (snap.counts.waiting, snap.counts.dead, snap.live_workers) == (1, 1, 1)
    assert snap.metrics.completed == 1 and snap.oldest_waiting_age is not None
    report = health.check(queue)
    assert health.read_health(boss) == report
    exposition = prometheus.render(user, ["photos"])
    assert 'jqc_target_workers{queue="photos"}' in exposition and "jqc_up 1.0" in exposition
    assert coordinator.release()
    assert run_sync(admin.backend, read_lock(boss.ops)).holder == ""


def test_coordinator_cannot_touch_jobs_obliterate_or_acls(make_user: MakeUser, admin: jqc.Connection) -> None:
    boss = admin.queue("photos")
    boss.add("held")
    held = boss.claim("w").jobs[0]
    boss.log(held, "a line")
    job = boss.add("thumbnail")
    boss.add("later", delay=60)
    user = make_user("coordinator")
    queue = user.queue("photos")
    refused(admin, lambda: queue.claim("w1"))
    refused(admin, lambda: queue.complete(held, "stolen"))
    refused(admin, lambda: queue.fail(held, "no"))
    refused(admin, lambda: queue.extend([held], lock=60))
    refused(admin, lambda: queue.recover_stalled())
    refused(admin, lambda: queue.add("new"))
    refused(admin, lambda: queue.remove(job.id))
    refused(admin, lambda: queue.drain(delayed=True))
    refused(admin, lambda: queue.clean("waiting", 0))
    refused(admin, lambda: queue.purge_all_dead())
    refused(admin, lambda: queue.pause())
    refused(admin, lambda: queue.configure(concurrency=1))
    refused(admin, lambda: queue.obliterate(force=True))
    refused(admin, lambda: queue.obliterate())
    for command in (
        ("RPOP", K + "wait"),
        ("ZPOPMIN", K + "delayed"),
        ("ZADD", K + "active", 1, job.id),
        ("ZREM", K + "active", held.id),
        ("DEL", K + "jobs"),
        ("UNLINK", K + "meta"),
        ("HSET", K + "jobs", job.id, "d1:1"),
        ("HSET", K + "meta", "paused", "1"),
        ("HDEL", K + "coordinator", "t"),
        ("DEL", K + "health"),
        ("HGET", K + "logs", held.id),  # job logs are out of its reach
        ("EXPIRE", K + "autoscale", 1),
        ("SCAN", 0),
        ("KEYS", "*"),
        ("FLUSHDB",),
        ("EVAL", "return 1", 0),
        ("ACL", "SETUSER", "jqc-test-" + secrets.token_hex(6), "on", "nopass", "+@all"),
        ("ACL", "DELUSER", "default"),
        ("ACL", "GETUSER", "default"),
        ("ACL", "LIST"),
        ("CONFIG", "GET", "requirepass"),
    ):
        refused(admin, plain(user, *command))
    for command in (("FLUSHALL",), ("SCRIPT", "FLUSH"), ("ACL", "SAVE"), ("CONFIG", "SET", "save", ""), ("SHUTDOWN",)):
        dry_refused(admin, user, *command)
    assert boss.counts().total == 3


def test_prefix_wide_coordinator_finds_every_queue(make_user: MakeUser, admin: jqc.Connection) -> None:
    admin.queue("a").add("x")
    admin.queue("b").add("y")
    user = make_user("coordinator", queue=None)
    assert user.queue_names() == ["a", "b"]
    assert [r.queue for r in health.check_all(user)] == ["a", "b"]
    assert Coordinator(user, "b", SloPolicy(slo=60.0), holder="c1").tick().leader


def test_roles_combine(make_user: MakeUser, admin: jqc.Connection) -> None:
    queue = make_user("producer", "worker").queue("photos")
    queue.add("x")
    queue.complete(queue.claim("w").jobs[0])
    assert admin.queue("photos").counts().completed == 1
    refused(admin, lambda: queue.obliterate(force=True))


def test_redis_keeps_what_a_script_wrote_before_it_was_denied(
    make_user: MakeUser, admin: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    """Why scripts are allow-listed by SHA: key permissions alone stop a script half-way.

    This user may run the claim script (and so has read-write access to every key it declares)
    but not the RPOP command. Its claim promotes the due delayed job to waiting (writes), then fails
    at the RPOP: Redis does not undo the promotion.
    """
    boss = admin.queue("photos")
    boss.add("soon", delay=1)
    clock.advance(5)
    sha = scripts()["claim"].sha
    rules = [f"+evalsha|{sha}", "+hmget", "+hget", "+hset", "+hdel", "+zrange", "+zrem", "+lpush", "+rpush"]
    rules += ["+xadd", "+zcard", "+select|" + str(DB)]
    rules += ["~" + K + k for k in ("meta", "wait", "prio", "delayed", "active", "events", "jobs")]
    user = make_user(rules=rules)
    before = boss.counts()
    with pytest.raises(jqc.JqcError, match="can't run this command"):
        user.queue("photos").claim("w1")
    after = boss.counts()
    assert (before.delayed, before.waiting) == (1, 0)
    assert (after.delayed, after.waiting) == (0, 1)  # half of the claim happened


# -- rule generation (no server) ------------------------------------------------------------------


def commands_of(rules: acl.AclRules) -> set[str]:
    return {r[1:] for r in rules.rules if r.startswith("+") and not r.startswith("+evalsha|")}


def test_rules_grant_no_blanket_permissions() -> None:
    for role in acl.Role:
        r = acl.rules(role, "photos")
        text = " ".join(r.rules)
        assert r.rules[:3] == ("resetkeys", "resetchannels", "-@all")
        assert "+@" not in text and "~*" not in text.split() and "allkeys" not in text
        for banned in ("flushall", "flushdb", "keys", "config", "acl|setuser", "eval", "unlink", "expire", "set"):
            assert banned not in commands_of(r), (role, banned)
        assert all(p.split("~", 1)[1].startswith("jqc:{photos}:") for p in r.rules if "~" in p and "(" not in p)


def test_producer_rules_allow_only_adding() -> None:
    r = acl.rules("producer", "photos")
    adding = ("add", "flow_create", "flow_release", "flow_step")  # a job, or a flow (docs/workflows.md)
    assert r.scripts == adding
    assert [x for x in r.rules if x.startswith("+evalsha|")] == [f"+evalsha|{scripts()[n].sha}" for n in adding]
    assert not {"del", "rpop", "lrem", "ltrim", "scan", "zpopmin"} & commands_of(r)
    # a flow's release and its intent need HDEL and ZREM, confined to the flows hash and the
    # waiting-children set: a producer still deletes no job
    assert "(+hdel ~jqc:{photos}:fl)" in r.rules and "(+zrem ~jqc:{photos}:wc)" in r.rules
    assert not {"+hdel", "+zrem"} & set(r.rules)
    keys = [x for x in r.rules if "~" in x and not x.startswith("(")]
    # every key its scripts declare (dedup keys too), read-write (EVALSHA's declared keys need it); nothing of
    # running or finished jobs
    names = ("meta", "wait", "prio", "delayed", "events", "jobs", "dd", "wc", "fl")
    assert sorted(keys) == sorted(f"~jqc:{{photos}}:{k}" for k in names)


def test_worker_rules_confine_del_to_leases() -> None:
    r = acl.rules("worker", "photos")
    assert "del" not in commands_of(r) and "ltrim" not in commands_of(r)
    selector = next(x for x in r.rules if x.startswith("(+del "))
    assert selector == "(+del ~jqc:{photos}:*-lease)"  # records go with HDEL; only a lease is a whole key
    assert {"claim", "complete", "fail", "extend", "recover"} <= set(r.scripts)
    assert not {"obliterate", "drain", "remove", "clean", "purge", "pause", "configure"} & set(r.scripts)


def test_coordinator_rules_write_only_its_three_hashes() -> None:
    r = acl.rules("coordinator", "photos")
    assert set(r.scripts) == {"counts", "metrics", "coordinator"}
    assert not {"del", "unlink", "rpop", "zrem", "zadd", "lpush", "xadd", "scan", "hdel", "hset"} & commands_of(r)
    # read-write on the keys its scripts declare (EVALSHA needs it), but its only write commands are
    # confined to its three hashes
    declared = {k for name in r.scripts for k in scripts_keys(name)}
    writable = {x.split("~", 1)[1].removeprefix("jqc:{photos}:") for x in r.rules if x.startswith("~")}
    assert writable == {acl_suffix(k) for k in declared} | {"health"}
    assert "(+hincrby ~jqc:{photos}:coordinator)" in r.rules
    assert "(+hset ~jqc:{photos}:autoscale ~jqc:{photos}:coordinator ~jqc:{photos}:health)" in r.rules
    assert not any(k in x for x in r.rules for k in (":l:*", ":dl:*", "lease"))  # no logs, dead letters, leases
    assert "+scan" in acl.rules("coordinator", None).rules


def acl_suffix(name: str) -> str:
    """The key suffix (or pattern) the ACL rules grant for a declared key name."""
    return {"record": "sc:*", "lease": "*-lease"}.get(name) or SUFFIXES[name]


def test_admin_may_run_every_script_and_scan() -> None:
    r = acl.rules("admin", "photos")
    assert set(r.scripts) == set(scripts())
    assert {"scan", "del", "info"} <= commands_of(r)


def test_rules_cover_every_command_a_roles_scripts_call() -> None:
    for role in acl.Role:
        r = acl.rules(role, "photos")
        granted = set(r.commands)
        for name in r.scripts:
            assert acl.script_commands(scripts()[name].source) <= granted, (role, name)


def test_script_commands_follows_only_the_helpers_a_script_uses() -> None:
    source = "\n".join(
        [
            "local function key(id) return 'k' .. id end",
            "local function used(id)",
            "  if id then",
            "    redis.call('HSET', key(id), 'a', 1)",
            "  end",
            "  inner()",
            "end",
            "local function inner() redis.call('ZADD', 'z', 1, 'x') end",
            "local function unused()",
            "  redis.call('DEL', 'x') -- never reached",
            "end",
            "-- redis.call('FLUSHALL') in a comment",
            "used(ARGV[1])",
            "return redis.pcall('GET', 'x')",
        ]
    )
    assert acl.script_commands(source) == {"hset", "zadd", "get"}
    assert acl.script_commands(scripts()["add"].source) == {
        "exists", "hexists", "hget", "hincrby", "hset", "lpush", "rpush", "xadd", "zadd",
    }  # fmt: skip


def test_rules_for_a_prefix_and_rendering() -> None:
    r = acl.rules(["observer"], None, "my*app", db=7)
    assert "+select|7" in r.rules and "+scan" in r.rules
    assert "%R~my\\*app:{*}:*" in r.rules
    line = r.render("jqc-observer", password_sha256=acl.password_sha256("s3cret"))
    assert line.startswith("ACL SETUSER jqc-observer reset on '#") and "s3cret" not in line
    assert "'(+hset ~my\\*app:{*}:health)'" in line
    assert r.acl_file_line("u").startswith("user u reset on resetkeys")
    assert r.setuser("u", password="pw")[5] == ">pw"


def test_rules_reject_bad_input() -> None:
    with pytest.raises(jqc.InvalidOptionError):
        acl.rules("root", "photos")
    with pytest.raises(jqc.InvalidQueueNameError):
        acl.rules("producer", "bad queue")
    with pytest.raises(jqc.InvalidOptionError):
        acl.rules("producer", "photos", "a{b}")
    with pytest.raises(jqc.InvalidOptionError):
        acl.rules([], "photos")
    with pytest.raises(jqc.InvalidOptionError):
        acl.rules("producer", "photos").setuser("bad user")
    with pytest.raises(jqc.InvalidOptionError):
        acl.rules("producer", "photos").setuser("u", password_sha256="nope")
