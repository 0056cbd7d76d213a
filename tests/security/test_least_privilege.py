"""Least privilege end to end: each role ``jqc acl`` generates, as a real Redis user on a private
server, does what it is for and is refused the rest with a :class:`jqc.PermissionDeniedError`
that names what it lacks (the operation's ``evalsha|<sha>`` rule, or a key pattern), while nothing
changes: every refusal compares the whole database before and after.

Written in terms of operations (add, a worker's claims and completions, counts, obliterate ...),
not key names, so it holds whatever the key layout. The roles: producer, worker, observer (also
prefix-wide, what a read-only dashboard uses), coordinator and admin.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from typing import Any
from urllib.parse import quote

import pytest
import redis.exceptions

import jqc
from jqc.cli import main
from jqc.coordinator import acl, health, prometheus
from jqc.coordinator.autoscale import Coordinator
from jqc.engine.scripts import scripts
from jqc.scaling import SloPolicy
from tests.coordinator.conftest import state
from tests.servers import PrivateRedis, private_redis

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path_factory.mktemp("acl"), "acl") as started:
        yield started


@pytest.fixture
def admin(server: PrivateRedis) -> Iterator[jqc.Connection]:
    conn = jqc.connect(server.url)
    conn.sync_client().flushall()
    yield conn
    conn.sync_client().flushall()
    for user in conn.sync_client().execute_command("ACL", "USERS"):
        if user != "default":
            conn.sync_client().execute_command("ACL", "DELUSER", user)
    conn.close()


Login = Callable[..., jqc.Connection]


@pytest.fixture
def login(server: PrivateRedis, admin: jqc.Connection) -> Iterator[Login]:
    """login(*roles, queue="photos", prefix="jqc") -> a connection as a new user with those rules."""
    made: list[jqc.Connection] = []

    def make(*roles: str, queue: str | None = "photos", prefix: str = "jqc") -> jqc.Connection:
        user, password = f"jqc-{'-'.join(roles)}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        acl.apply(admin.sync_client(), user, acl.rules(list(roles), queue, prefix), password=password)
        conn = jqc.connect(f"unix://{user}:{quote(password, safe='')}@{server.socket}", prefix=prefix)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def refused(admin: jqc.Connection, action: Callable[[], Any], *, lacks: str) -> jqc.PermissionDeniedError:
    """``action`` is refused as lacking ``lacks`` (a regex over the message), and nothing changed."""
    before = state(admin.sync_client())
    with pytest.raises(jqc.PermissionDeniedError) as info:
        action()
    assert state(admin.sync_client()) == before
    message = str(info.value)
    assert "\n" not in message and re.search(f"it lacks {lacks}", message), message
    return info.value


def operation(name: str) -> str:
    """What a refusal of jqc's ``name`` operation must say is missing."""
    return re.escape(f"the command evalsha|{scripts()[name].sha}")


def pattern(queue: str, prefix: str = "jqc") -> str:
    return re.escape(f"access to key pattern {prefix}:{{{queue}}}:*")


def seed(admin: jqc.Connection) -> None:
    """Jobs in every state in ``photos``, and another queue (``other``) that no test may touch."""
    boss = admin.queue("photos")
    boss.add("waiting")
    boss.add("later", delay=600)
    boss.complete(boss.claim("w").jobs[0])
    boss.add("broken")
    boss.fail(boss.claim("w").jobs[0], "boom")
    boss.add("waiting-2")
    admin.queue("other").add("theirs")


# -- producer -------------------------------------------------------------------------------------


def _waits_for(queue: jqc.Queue, admin: jqc.Connection, job_id: str, result: Any) -> Any:
    """``queue.wait_for(job_id)`` in a thread; ``admin`` runs the queue's jobs once the wait's shared
    reader blocks in XREAD (or the wait failed), finishing ``job_id`` with ``result``."""

    async def run() -> Any:
        waiter = asyncio.ensure_future(asyncio.to_thread(queue.wait_for, job_id, 30))
        for _ in range(3000):
            if waiter.done() or "cmd=xread" in str(admin.sync_client().execute_command("CLIENT", "LIST")):
                break
            await asyncio.sleep(0.01)
        boss = admin.queue("photos")
        while not waiter.done() and (claimed := boss.claim("w")).jobs:
            boss.complete(claimed.jobs[0], result if claimed.jobs[0].id == job_id else None)
        return await asyncio.wait_for(waiter, 30)

    return asyncio.run(run())


def test_a_producer_adds_and_is_refused_everything_else(admin: jqc.Connection, login: Login) -> None:
    seed(admin)
    queue = login("producer").queue("photos")
    added = queue.add("thumbnail", {"photo": 1}, priority=2)
    queue.add_bulk([("bulk", 1), ("bulk", 2)])
    queue.add("later", delay=60)
    got = queue.get_job(added.id)
    assert got is not None and got.data == {"photo": 1}
    assert admin.queue("photos").counts().waiting == 4  # waiting-2 from the seed, and these
    # deduplicated adds of every mode (the debounce rewrites a delayed job), custom events
    pending = queue.add("digest", 1, delay=60, dedup=jqc.Dedup("d", debounce=True))
    assert queue.add("digest", 2, delay=60, dedup=jqc.Dedup("d", debounce=True)).id == pending.id
    assert queue.add("digest", 3, dedup=jqc.Dedup("s")).id == queue.add("digest", 4, dedup=jqc.Dedup("s")).id
    assert queue.add("digest", 5, dedup=jqc.Dedup("t", ttl=9)).id == queue.add("x", dedup=jqc.Dedup("t", ttl=9)).id
    assert admin.queue("photos").get_job(pending.id).data == 2  # type: ignore[union-attr]
    queue.publish("thumbnail.requested", {"by": "api"})
    for name, action in {
        "claim": lambda: queue.claim("w"),
        "obliterate": lambda: queue.obliterate(force=True),
        "remove": lambda: queue.remove(added.id),
        "pause": queue.pause,
        "drain": lambda: queue.drain(delayed=True),
        "counts": queue.counts,
        "list": lambda: queue.list_jobs("waiting"),
        "metrics": lambda: queue.metrics(5),
    }.items():
        refused(admin, action, lacks=operation(name))
    producer = login("producer")
    refused(admin, lambda: producer.queue("other").add("mine"), lacks=pattern("other"))
    refused(
        admin,
        lambda: producer.queue("other").get_job("1"),
        lacks=r"access to key jqc:\{other\}:\S+ \(key pattern jqc:\{other\}:\*\)",
    )
    assert _waits_for(queue, admin, added.id, "thumb-1") == "thumb-1"  # a producer waits for a result
    refused(admin, lambda: producer.queue("other").wait_for("1", 0), lacks=r"access to key jqc:\{other\}:")


# -- worker ---------------------------------------------------------------------------------------


def test_a_worker_runs_a_real_worker_and_is_refused_the_rest(admin: jqc.Connection, login: Login) -> None:
    seed(admin)
    boss = admin.queue("photos")
    for i in range(6):
        boss.add("job", i, attempts=2)
    conn = login("worker")
    tries: dict[int, int] = {}

    def handler(ctx: jqc.SyncJobContext) -> Any:
        if ctx.data == "waiting" or not isinstance(ctx.data, int):
            return None
        tries[ctx.data] = tries.get(ctx.data, 0) + 1
        ctx.log("working")
        ctx.progress(50)
        if ctx.data % 2 == 0 and tries[ctx.data] == 1:
            raise RuntimeError("first try fails")  # retried, then completed
        return ctx.data * 10

    worker = jqc.Worker(conn.queue("photos"), handler, concurrency=2, connect_timeout=10)
    stats = worker.run(burst=True)
    assert stats.reconnects == 0  # never refused (a refusal is retried with backoff, and counted)
    counts = boss.counts()
    assert (counts.waiting, counts.active) == (0, 0) and counts.completed >= 7 and stats.retried == 3
    queue = conn.queue("photos")
    for name, action in {
        "add": lambda: queue.add("not a producer"),
        "obliterate": lambda: queue.obliterate(force=True),
        "pause": queue.pause,
        "clean": lambda: queue.clean("completed", 0),
        "purge": queue.purge_all_dead,
        "replay": lambda: queue.retry_failed(),
    }.items():
        refused(admin, action, lacks=operation(name) if name != "replay" else "the command evalsha")
    refused(admin, lambda: conn.queue("other").claim("w"), lacks=pattern("other"))
    app = login("worker", prefix="app")  # a worker of queue photos under another prefix
    jqc.connect(admin.factory.config.safe_url, prefix="app").queue("photos").add("for app")
    assert app.queue("photos").claim("w").jobs[0].job.name == "for app"
    same_user = jqc.Connection.over(app.factory, prefix="jqc")  # the same user, aimed at our prefix
    refused(admin, lambda: same_user.queue("photos").claim("w"), lacks=pattern("photos", "jqc"))


# -- observer, and a read-only dashboard ----------------------------------------------------------


def test_an_observer_reads_everything_and_writes_no_job(admin: jqc.Connection, login: Login) -> None:
    seed(admin)
    conn = login("observer")
    queue = conn.queue("photos")
    assert queue.counts() == admin.queue("photos").counts()
    assert queue.counts_per_priority([0, 1]) == {0: 1, 1: 0}  # waiting-2 of the seed
    assert queue.list_jobs("failed").total == 1 and queue.dead_letters().total in (0, 1)
    assert queue.metrics(5).completed == 1 and queue.events()
    assert health.check(queue).queue == "photos"
    assert 'jqc_jobs{queue="photos",state="waiting"}' in prometheus.render(conn, ["photos"])
    for argv in (["stats", "photos"], ["jobs", "photos", "--state", "failed"], ["health", "photos"]):
        assert main(argv, connection=conn, out=io.StringIO()) == 0, argv
    err = io.StringIO()
    with redirect_stderr(err):  # every queue needs SCAN, which only a prefix-wide observer has
        assert main(["stats"], connection=conn, out=io.StringIO()) == 1
    assert err.getvalue().count("\n") == 1 and "'scan' command" in err.getvalue(), err.getvalue()
    for name, action in {
        "add": lambda: queue.add("x"),
        "claim": lambda: queue.claim("w"),
        "pause": queue.pause,
        "obliterate": lambda: queue.obliterate(force=True),
        "remove": lambda: queue.remove("1"),
        "promote": lambda: queue.promote("2"),
    }.items():
        refused(admin, action, lacks=operation(name))
    refused(admin, lambda: queue.retry_failed(), lacks="the command evalsha")
    refused(admin, lambda: conn.queue("other").counts(), lacks=pattern("other"))


def test_a_read_only_dashboard_sees_every_queue_and_changes_nothing(admin: jqc.Connection, login: Login) -> None:
    """A dashboard is an observer of the whole prefix: it lists queues and reads each one."""
    seed(admin)
    conn = login("observer", queue=None)
    assert conn.queue_names() == ["other", "photos"]
    for name in conn.queue_names():
        queue = conn.queue(name)
        assert queue.counts().total >= 1
        assert queue.list_jobs("waiting").total >= 1
        job = queue.list_jobs("waiting").jobs[0]
        assert queue.get_job(job.id) is not None and queue.job_logs(job.id) == []

    async def live() -> int:
        events = await conn.async_queue("photos").events("0")
        await conn.aclose()
        return len(events)

    assert asyncio.run(live()) > 0
    out = io.StringIO()
    assert main(["metrics", "show"], connection=conn, out=out) == 0 and 'queue="other"' in out.getvalue()
    queue = conn.queue("photos")
    refused(admin, lambda: queue.add("x"), lacks=operation("add"))
    refused(admin, lambda: queue.obliterate(force=True), lacks=operation("obliterate"))
    with pytest.raises(redis.exceptions.NoPermissionError):  # nor by hand
        conn.sync_client().execute_command("FLUSHDB")


# -- coordinator and admin ------------------------------------------------------------------------


def test_a_coordinator_scales_and_touches_no_job(admin: jqc.Connection, login: Login) -> None:
    seed(admin)
    conn = login("coordinator")
    tick = Coordinator(conn, "photos", SloPolicy(slo=60.0), min_workers=1, max_workers=4, holder="c1").tick()
    assert tick.leader and tick.decision is not None
    queue = conn.queue("photos")
    for name, action in {
        "claim": lambda: queue.claim("w"),
        "add": lambda: queue.add("x"),
        "obliterate": lambda: queue.obliterate(force=True),
    }.items():
        refused(admin, action, lacks=operation(name))


def test_an_admin_obliterates_its_queue_only(admin: jqc.Connection, login: Login) -> None:
    seed(admin)
    conn = login("admin")
    queue = conn.queue("photos")
    queue.pause()
    queue.resume()
    assert queue.obliterate(force=True) > 0
    assert admin.queue("photos").counts().total == 0
    assert admin.queue("other").counts().total == 1
    refused(admin, lambda: conn.queue("other").obliterate(force=True), lacks=pattern("other"))
    with pytest.raises(redis.exceptions.NoPermissionError):  # no server administration
        conn.sync_client().execute_command("CONFIG", "SET", "maxmemory", "1")
