"""A read-only dashboard needs nothing more than the Redis ACL ``observer`` role (real Redis only):
every page renders for a user made from ``jqc acl --role observer``."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

import jqc
import jqc.dashboard
from jqc.coordinator import lock
from jqc.engine.calls import run_sync
from jqc.worker import registry
from tests.coordinator.conftest import MakeUser, admin, make_user  # noqa: F401  (fixtures)

pytestmark = pytest.mark.redis_only


def test_every_read_only_page_renders_for_an_observer(make_user: MakeUser, admin: jqc.Connection) -> None:  # noqa: F811
    boss = admin.queue("photos")
    job = boss.add("resize", {"path": "a.jpg"})
    boss.fail(boss.claim("w").jobs[0], "boom", retry=False)
    boss.add("resize", {"path": "b.jpg"})
    run_sync(
        admin.backend, registry.heartbeat(boss.ops, "w1", {"name": "w1", "concurrency": 2}, ttl=30, prune_after=300)
    )
    held = run_sync(admin.backend, lock.acquire(boss.ops, "c1", 30))
    run_sync(admin.backend, lock.publish(boss.ops, "c1", held.token, lock.ScaleDecision("photos", 3, ("busy",))))
    observer = make_user("observer", queue=None)
    with TestClient(jqc.dashboard.app(observer, read_only=True)) as client:
        for path in (
            "/",
            "/queues/photos",
            "/queues/photos?state=dead",
            "/queues/photos?state=failed&code=unrecoverable",
            "/queues/photos?q=b.jpg",
            f"/queues/photos/job?id={job.id}",
            "/workers",
            "/autoscaler",
        ):
            reply = client.get(path)
            assert reply.status_code == 200, (path, reply.text[-500:])
        assert "w1" in client.get("/workers").text
        autoscaler = client.get("/autoscaler").text
        assert "<b>3</b>" in autoscaler and "not readable by this Redis user" in autoscaler
