"""A read-only dashboard needs nothing more than the Redis ACL ``observer`` role (real Redis only):
mounted under a prefix of a host app, every page renders for a user made from ``jqc acl --role
observer``, and its live streams read the queue's events."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

import jqc
import jqc.dashboard
import jqc.dashboard.live
from jqc.coordinator import lock
from jqc.engine.calls import run_sync
from jqc.worker import registry
from tests.coordinator.conftest import MakeUser, admin, make_user  # noqa: F401  (fixtures)

pytestmark = pytest.mark.redis_only


def test_every_read_only_page_renders_for_an_observer(make_user: MakeUser, admin: jqc.Connection) -> None:  # noqa: F811
    boss = admin.queue("photos")
    job = boss.add("resize", {"path": "a.jpg"})
    boss.fail(boss.claim("w").jobs[0], "boom", retry=False)
    gone = boss.add("resize", {"path": "c.jpg"})
    boss.fail(boss.claim("w").jobs[0], "boom", retry=False)
    boss.remove(gone.id)  # its dead letter stays, and keeps a page
    boss.add("resize", {"path": "b.jpg"})
    boss.schedule("nightly", cron="30 2 * * *", tz="Europe/Berlin")
    run_sync(
        admin.backend, registry.heartbeat(boss.ops, "w1", {"name": "w1", "concurrency": 2}, ttl=30, prune_after=300)
    )
    held = run_sync(admin.backend, lock.acquire(boss.ops, "c1", 30))
    run_sync(admin.backend, lock.publish(boss.ops, "c1", held.token, lock.ScaleDecision("photos", 3, ("busy",))))
    observer = make_user("observer", queue=None)
    host = Starlette(routes=[Mount("/ops/status", app=jqc.dashboard.app(observer, read_only=True))])
    with TestClient(host) as client:
        for path in (
            "/",
            "/queues/photos",
            "/queues/photos?state=dead",
            "/queues/photos?state=failed&code=unrecoverable",
            "/queues/photos?q=b.jpg",
            f"/queues/photos/job?id={job.id}",
            f"/queues/photos/job?id={gone.id}",
            "/workers",
            "/schedules",
            "/schedules?queue=photos",
            "/autoscaler",
        ):
            reply = client.get("/ops/status" + path)
            assert reply.status_code == 200, (path, reply.text[-500:])
            assert 'href="/ops/status/' in reply.text and "cannot be read" not in reply.text
        assert 'data-queue="photos"' in client.get("/ops/status/").text  # found by its SCAN
        assert "w1" in client.get("/ops/status/workers").text
        assert 'data-schedule="photos/nightly"' in client.get("/ops/status/schedules").text
        timeline = client.get(f"/ops/status/queues/photos/job?id={job.id}").text
        assert timeline.index("<td>added</td>") < timeline.index("<td>failed</td>")
        assert 'data-testid="dead-letter"' in client.get(f"/ops/status/queues/photos/job?id={gone.id}").text
        autoscaler = client.get("/ops/status/autoscaler").text
        assert "<b>3</b>" in autoscaler and "not readable by this Redis user" in autoscaler


def test_an_observer_s_live_stream_sees_new_events(make_user: MakeUser, admin: jqc.Connection) -> None:  # noqa: F811
    admin.queue("photos").add("first")
    observer = make_user("observer", queue=None)

    async def watch() -> list[tuple[str, str]]:
        hub = jqc.dashboard.live.Hub(observer, block=0.2)
        try:
            async with hub.subscribe(["photos"]) as inbox:
                added = admin.queue("photos").add("second")
                name, events = await asyncio.wait_for(inbox.get(), 10)
                assert name == "photos"
                return [(e.name, e.job_id) for e in events if e.job_id == added.id]
        finally:
            await observer.aclose()

    assert asyncio.run(watch()) == [("added", "2")]
