"""The dashboard's routes through Starlette's TestClient, on both backends: what each page shows,
what each action does (and refuses), read-only mode, the auth hook, CSRF and mounting under a prefix."""

from __future__ import annotations

import base64
import html

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

import jqc
import jqc.dashboard
from jqc.coordinator import lock
from jqc.engine.calls import run_sync
from jqc.worker import registry

from .conftest import notice_of, token_of

DASH = "\N{EN DASH}"  # how the pages write ranges


def dead_letter(queue: jqc.Queue, data: object, code: str = "error", traceback: str | None = None) -> jqc.Job:
    job = queue.add("mail", data)
    claimed = queue.claim("w").jobs[0]
    assert claimed.id == job.id
    queue.fail(claimed, f"bounced {data}", retry=False, code=code, traceback=traceback)
    return job


def test_the_overview_lists_every_queue_with_counts_health_and_paused(conn: jqc.Connection, client: TestClient) -> None:
    assert 'data-testid="no-queues"' in client.get("/").text
    photos, mail = conn.queue("photos"), conn.queue("mail")
    photos.add_bulk(jqc.NewJob("resize", i) for i in range(3))
    mail.add("send", {"to": "ann"})
    mail.pause()
    page = client.get("/")
    assert page.status_code == 200
    text = page.text
    assert text.index('data-queue="mail"') < text.index('data-queue="photos"')
    photos_row = text[text.index('data-queue="photos"') :]
    assert '<td class="num" data-testid="waiting">3</td>' in photos_row
    mail_row = text[text.index('data-queue="mail"') : text.index('data-queue="photos"')]
    assert 'data-testid="paused"' in mail_row and "queue is paused" in mail_row
    assert "no worker registry" in photos_row  # health reasons are shown with the status
    assert 'sse-connect="/live"' in text


def test_the_queue_page_pages_through_jobs_in_claim_order(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("photos")
    jobs = queue.add_bulk(jqc.NewJob("resize", {"n": i}) for i in range(120))
    first = client.get("/queues/photos").text
    rows = [jobs[i].id for i in range(50)]
    assert [part.split('"')[0] for part in first.split('data-job="')[1:]] == rows
    assert f"1{DASH}50 of 120" in first and "offset=50" in first
    last = client.get("/queues/photos?state=waiting&offset=100").text
    assert [part.split('"')[0] for part in last.split('data-job="')[1:]] == [j.id for j in jobs[100:]]
    assert f"101{DASH}120 of 120" in last and 'data-testid="next"' not in last and 'data-testid="prev"' in last
    assert client.get("/queues/photos?state=finished").status_code == 404


def test_search_finds_jobs_by_data_and_by_id(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("photos")
    jobs = queue.add_bulk(jqc.NewJob("resize", {"user": f"user-{i}"}) for i in range(30))
    found = client.get("/queues/photos", params={"q": "user-17"}).text
    assert [part.split('"')[0] for part in found.split('data-job="')[1:]] == [jobs[17].id]
    assert f"searched entries 1{DASH}30 of 30" in found
    by_id = client.get("/queues/photos", params={"q": jobs[3].id}).text
    assert 'data-testid="found"' in by_id and f"?id={jobs[3].id}" in by_id


def test_a_search_goes_on_from_where_its_scan_stopped(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    jobs = queue.add_bulk(jqc.NewJob("resize", {"user": f"user-{i}"}) for i in range(30))
    with TestClient(jqc.dashboard.app(conn, search_scan=10)) as client:
        first = client.get("/queues/photos", params={"q": "user-25"}).text
        assert 'data-testid="no-jobs"' in first and f"searched entries 1{DASH}10 of 30" in first
        assert "offset=10" in first
        later = client.get("/queues/photos", params={"q": "user-25", "offset": 20}).text
        assert f'data-job="{jobs[25].id}"' in later


def test_the_job_page_shows_data_error_traceback_logs_and_timeline(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("photos")
    job = queue.add("resize", {"path": "a.jpg"}, attempts=2)
    claimed = queue.claim("w").jobs[0]
    queue.log(claimed, "opening a.jpg")
    queue.progress(claimed, {"done": 40})
    queue.fail(claimed, "OSError: disk full", traceback="Traceback (most recent call last):\n  ...\nOSError: disk full")
    page = html.unescape(client.get("/queues/photos/job", params={"id": job.id}).text)
    assert '"path": "a.jpg"' in page
    assert "OSError: disk full" in page and "Traceback (most recent call last):" in page
    assert "opening a.jpg" in page and '{"done":40}' in page
    timeline = page[page.index('data-testid="timeline"') :]
    assert timeline.index("added") < timeline.index("active") < timeline.index("retrying")
    assert "1 failed of 2 allowed (1 left)" in page
    assert client.get("/queues/photos/job", params={"id": "nope"}).status_code == 404
    assert client.get("/queues/photos/job").status_code == 404


def test_unknown_and_invalid_queues_are_404(conn: jqc.Connection, client: TestClient) -> None:
    conn.queue("photos").add("x")
    assert client.get("/queues/elsewhere").status_code == 404
    assert client.get("/queues/bad%20name").status_code == 404
    assert client.get("/live/queues/elsewhere").status_code == 404


def test_dead_letters_filter_by_failure_code(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("mail")
    timed_out = dead_letter(queue, {"to": "ann"}, code="timeout")
    dead_letter(queue, {"to": "bob"}, code="error")
    page = client.get("/queues/mail", params={"state": "dead", "code": "timeout"}).text
    assert [part.split('"')[0] for part in page.split('data-job="')[1:]] == [timed_out.id]
    everything = client.get("/queues/mail", params={"state": "dead"}).text
    assert everything.count('data-testid="job-row"') == 2


def test_pause_and_resume_need_the_csrf_token(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    token = token_of(client.get("/queues/photos").text)
    refused = client.post("/queues/photos/pause", data={"paused": "1"})
    assert refused.status_code == 403 and not queue.counts().paused
    forged = token.split(".")[0] + ".0123456789abcdef0123456789abcdef"
    assert client.post("/queues/photos/pause", data={"paused": "1", "csrf": forged}).status_code == 403
    other = TestClient(client.app)  # a browser without the cookie (another site's form)
    assert other.post("/queues/photos/pause", data={"paused": "1", "csrf": token}).status_code == 403
    assert not queue.counts().paused
    done = client.post("/queues/photos/pause", data={"paused": "1", "csrf": token})
    assert done.status_code == 200 and notice_of(done.text) == "queue photos paused" and queue.counts().paused
    resumed = client.post("/queues/photos/pause", data={"paused": "0"}, headers={"X-CSRF-Token": token})
    assert notice_of(resumed.text) == "queue photos resumed" and not queue.counts().paused


def test_job_actions_retry_remove_promote_and_cancel(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("photos")
    failed = dead_letter(queue, "d")
    waiting = queue.add("a")
    delayed = queue.add("b", delay=600)
    later = queue.add("c", delay=600)
    token = token_of(client.get("/queues/photos").text)

    def act(action: str, *ids: str) -> str:
        reply = client.post("/queues/photos/jobs", data={"csrf": token, "action": action, "id": list(ids)})
        assert reply.status_code == 200
        return notice_of(reply.text)

    assert act("promote", delayed.id) == "1 job(s) promoted"
    assert queue.get_job(delayed.id).state == jqc.JobState.WAITING  # type: ignore[union-attr]
    assert act("cancel", later.id) == "1 job(s) cancelled" and queue.get_job(later.id) is None
    assert act("retry", failed.id) == "1 job(s) retried"
    assert queue.get_job(failed.id).state == jqc.JobState.WAITING  # type: ignore[union-attr]
    assert act("remove", waiting.id, "no-such-job").startswith("1 job(s) removed; 1 refused (no-such-job:")
    assert queue.get_job(waiting.id) is None
    assert act("remove") == "nothing selected"
    assert client.post("/queues/photos/jobs", data={"csrf": token, "action": "explode", "id": "x"}).status_code == 400


def test_the_job_page_of_a_running_job_has_a_cancel_button_that_marks_it(
    conn: jqc.Connection, client: TestClient
) -> None:
    queue = conn.queue("photos")
    job = queue.add("resize")
    held = queue.claim("w").jobs[0]
    page = client.get("/queues/photos/job", params={"id": job.id}).text
    assert 'data-testid="job-cancel"' in page
    refused = client.post("/queues/photos/jobs", data={"action": "cancel", "id": job.id})
    assert refused.status_code == 403 and queue.get_job(job.id).cancel_reason is None  # type: ignore[union-attr]
    reply = client.post("/queues/photos/jobs", data={"csrf": token_of(page), "action": "cancel", "id": job.id})
    assert notice_of(reply.text) == "1 job(s) cancelled"
    assert queue.get_job(job.id).cancel_reason == "cancelled from the dashboard"  # type: ignore[union-attr]
    assert queue.renew([held]).cancelled == {job.id: "cancelled from the dashboard"}
    with TestClient(jqc.dashboard.app(conn, read_only=True)) as read_only:
        assert 'data-testid="job-cancel"' not in read_only.get("/queues/photos/job", params={"id": job.id}).text


def test_retry_all_failed(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("mail")
    for i in range(3):
        dead_letter(queue, i)
    token = token_of(client.get("/queues/mail").text)
    reply = client.post("/queues/mail/jobs", data={"csrf": token, "action": "retry-all"})
    assert notice_of(reply.text) == "3 failed job(s) retried" and queue.counts().waiting == 3


def test_dead_letters_replay_one_selected_or_all_matching_and_purge(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("mail")
    letters = [dead_letter(queue, {"to": f"user{i}"}, code="timeout" if i % 2 else "error") for i in range(6)]
    token = token_of(client.get("/queues/mail?state=dead").text)

    def dead(**form: object) -> str:
        reply = client.post("/queues/mail/dead", data={"csrf": token, **form})
        assert reply.status_code == 200
        return notice_of(reply.text)

    assert dead(action="replay", id=[letters[0].id]) == "1 job(s) replayed"
    assert queue.counts().dead == 5 and queue.counts().waiting == 1
    assert dead(action="replay-all", code="timeout") == "3 dead letter(s) replayed"
    assert {letter.job.id for letter in queue.dead_letters().letters} == {letters[2].id, letters[4].id}
    assert dead(action="purge-all", q="user4") == "1 dead letter(s) purged"
    assert dead(action="purge-all") == "1 dead letter(s) purged" and queue.counts().dead == 0
    assert dead(action="replay", id=["gone"]).startswith("0 job(s) replayed; 1 refused")


def test_bulk_replay_stops_at_the_limit_and_says_more_remain(conn: jqc.Connection) -> None:
    queue = conn.queue("mail")
    for i in range(5):
        dead_letter(queue, i)
    with TestClient(jqc.dashboard.app(conn, bulk_limit=3)) as client:
        token = token_of(client.get("/queues/mail?state=dead").text)
        reply = client.post("/queues/mail/dead", data={"csrf": token, "action": "replay-all"})
        assert notice_of(reply.text) == "3 dead letter(s) replayed (the limit per request is 3: more remain)"
    assert queue.counts().dead == 2


def test_an_action_redirects_only_inside_the_dashboard(conn: jqc.Connection, client: TestClient) -> None:
    conn.queue("photos").add("x")
    token = token_of(client.get("/queues/photos").text)
    for target, expected in (
        ("https://evil.example/", "/queues/photos?"),
        ("//evil.example/x", "/queues/photos?"),
        ("/queues/photos?state=delayed", "/queues/photos?state=delayed&notice="),
    ):
        reply = client.post(
            "/queues/photos/pause", data={"csrf": token, "paused": "1", "next": target}, follow_redirects=False
        )
        assert reply.status_code == 303 and reply.headers["location"].startswith(expected)


def test_read_only_mode_has_no_buttons_and_no_action_routes(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    dead_letter(queue, "y")
    job = queue.add("x")
    with TestClient(jqc.dashboard.app(conn, read_only=True)) as client:
        for path in ("/", "/queues/photos", "/queues/photos?state=dead", "/queues/photos?state=failed", "/workers"):
            page = client.get(path).text
            assert 'method="post"' not in page and 'name="csrf"' not in page
            assert page.count("<button") == page.count('data-testid="search-button"')  # searching only
        assert 'data-testid="read-only"' in client.get("/").text
        page = client.get("/queues/photos/job", params={"id": job.id}).text
        assert 'method="post"' not in page
        for path in ("/queues/photos/pause", "/queues/photos/jobs", "/queues/photos/dead"):
            assert client.post(path, data={"paused": "1", "action": "remove", "id": job.id}).status_code in (404, 405)
    assert not queue.counts().paused and queue.get_job(job.id) is not None


def test_the_auth_hook_sees_every_request(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    seen: list[str] = []

    async def hook(request: Request) -> bool | Response:
        seen.append(request.url.path)
        if request.headers.get("x-team") == "ops":
            return True
        if request.headers.get("x-team") == "guest":
            return PlainTextResponse("go to /login", 302, headers={"Location": "/login"})
        return False

    with TestClient(jqc.dashboard.app(conn, auth=hook)) as client:
        assert client.get("/").status_code == 403
        assert client.get("/static/htmx.min.js").status_code == 403
        assert client.post("/queues/photos/pause", data={"paused": "1"}).status_code == 403
        guest = client.get("/", headers={"x-team": "guest"}, follow_redirects=False)
        assert guest.status_code == 302 and guest.headers["location"] == "/login"
        assert client.get("/queues/photos", headers={"x-team": "ops"}).status_code == 200
    assert seen == ["/", "/static/htmx.min.js", "/queues/photos/pause", "/", "/queues/photos"]
    assert not conn.queue("photos").counts().paused


def test_basic_auth(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    good = base64.b64encode(b"ops:s3cret").decode()
    bad = base64.b64encode(b"ops:guess").decode()
    with TestClient(jqc.dashboard.app(conn, auth=jqc.dashboard.basic_auth("ops", "s3cret"))) as client:
        challenge = client.get("/")
        assert challenge.status_code == 401 and challenge.headers["www-authenticate"].startswith("Basic realm=")
        assert client.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401
        assert client.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401
        assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    for user, password in (("", "x"), ("a:b", "x"), ("ops", "")):
        with pytest.raises(jqc.InvalidOptionError):
            jqc.dashboard.basic_auth(user, password)


def test_mounted_under_a_prefix_every_link_and_action_stays_under_it(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    job = queue.add("resize", {"n": 1})
    host = Starlette(routes=[Mount("/ops/jobs", app=jqc.dashboard.app(conn))])
    with TestClient(host) as client:
        assert client.get("/").status_code == 404  # the host app's own root: not the dashboard
        overview = client.get("/ops/jobs/")
        assert overview.status_code == 200
        assert 'href="/ops/jobs/queues/photos"' in overview.text
        assert 'src="/ops/jobs/static/htmx.min.js"' in overview.text and 'sse-connect="/ops/jobs/live"' in overview.text
        assert client.get("/ops/jobs/static/htmx.min.js").text.startswith("/*! htmx 2.0.11")
        assert "Path=/ops/jobs;" in overview.headers["set-cookie"]
        page = client.get("/ops/jobs/queues/photos").text
        assert (
            'action="/ops/jobs/queues/photos/pause"' in page
            and f'href="/ops/jobs/queues/photos/job?id={job.id}"' in page
        )
        reply = client.post(
            "/ops/jobs/queues/photos/pause", data={"csrf": token_of(page), "paused": "1"}, follow_redirects=False
        )
        assert reply.status_code == 303 and reply.headers["location"].startswith("/ops/jobs/queues/photos?")
    assert queue.counts().paused


def test_two_dashboards_in_one_host_app_each_link_under_their_own_prefix(conn: jqc.Connection) -> None:
    job = conn.queue("photos").add("resize")

    async def host_overview(request: Request) -> Response:
        return PlainTextResponse("the host's own page named overview")

    host = Starlette(
        routes=[
            Route("/overview", host_overview, name="overview"),  # a name the dashboard uses too
            Mount("/jobs", app=jqc.dashboard.app(conn)),
            Mount("/ro", app=jqc.dashboard.app(conn, read_only=True)),
        ]
    )
    with TestClient(host) as client:
        page = client.get("/ro/queues/photos").text
        assert f'href="/ro/queues/photos/job?id={job.id}"' in page and 'href="/ro/"' in page
        assert "/jobs/" not in page and 'href="/overview"' not in page
        assert 'href="/jobs/workers"' in client.get("/jobs/").text


def test_the_workers_page_flags_a_worker_that_does_not_consume(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    record = {"name": "stuck", "host": "box1", "pid": 42, "queues": ["photos"], "active": 0, "concurrency": 4}
    started = int(clock.now() * 1000)
    run_sync(
        conn.backend,
        registry.heartbeat(queue.ops, "w-stuck", {**record, "started": started}, ttl=600, prune_after=6000),
    )
    # "idle" polls (its claims reach the server) but got no job for 110 s: not stuck. "wedged"
    # polled last 100 s ago and its claims now fail. "stuck" never polled since it started.
    idle = {**record, "name": "idle", "started": started, "polled": started + 110_000}
    wedged = {**record, "name": "wedged", "started": started, "polled": started + 20_000, "error": "NOPERM no"}
    clock.advance(120)
    for worker_id, fields in (("w-idle", idle), ("w-wedged", wedged), ("w-stuck", {**record, "started": started})):
        run_sync(conn.backend, registry.heartbeat(queue.ops, worker_id, fields, ttl=600, prune_after=6000))
    with TestClient(jqc.dashboard.app(conn)) as client:
        page = client.get("/workers").text
    rows = {part.split("<div")[0].split("<td>")[-1]: part for part in page.split('data-testid="worker-row"')[1:]}
    assert set(rows) == {"stuck", "idle", "wedged"}
    assert 'data-testid="flagged"' in rows["stuck"] and "since it started 120 s ago" in rows["stuck"]
    assert 'data-testid="flagged"' in rows["wedged"] and "100 s ago" in rows["wedged"] and "NOPERM" in rows["wedged"]
    assert 'data-testid="flagged"' not in rows["idle"] and "box1" in rows["idle"]
    queue.pause()  # a paused queue is not consumed by design: nobody is flagged
    with TestClient(jqc.dashboard.app(conn)) as client:
        assert 'data-testid="flagged"' not in client.get("/workers").text


def test_the_autoscaler_page_shows_the_last_decision_and_its_reasons(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    lease = run_sync(conn.backend, lock.acquire(queue.ops, "coord-1", 30))
    decision = lock.ScaleDecision(
        "photos", 7, ("wait p95 2.0 s above the 1.0 s SLO",), policy="wait-slo", values={"rate": 3.5}
    )
    run_sync(conn.backend, lock.publish(queue.ops, "coord-1", lease.token, decision))
    with TestClient(jqc.dashboard.app(conn)) as client:
        page = client.get("/autoscaler").text
    assert "<b>7</b>" in page and "wait p95 2.0 s above the 1.0 s SLO" in page and "wait-slo" in page
    assert "held by coord-1" in page


def test_app_refuses_bad_options(conn: jqc.Connection) -> None:
    for bad in (
        {"page_size": 0},
        {"bulk_limit": True},
        {"read_only": "yes"},
        {"auth": "admin"},
        {"queues": ["bad name"]},
        {"idle_after": -1},
        {"csrf_secret": "short"},
    ):
        with pytest.raises((jqc.InvalidOptionError, jqc.InvalidQueueNameError)):
            jqc.dashboard.app(conn, **bad)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError):
        jqc.dashboard.app("redis://localhost")  # type: ignore[arg-type]


def test_a_dashboard_limited_to_some_queues_shows_and_acts_on_those_only(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    conn.queue("secret").add("y")
    with TestClient(jqc.dashboard.app(conn, queues=["photos"])) as client:
        overview = client.get("/").text
        assert 'data-queue="photos"' in overview and "secret" not in overview
        assert client.get("/queues/secret").status_code == 404
        token = token_of(client.get("/queues/photos").text)
        assert client.post("/queues/secret/pause", data={"csrf": token, "paused": "1"}).status_code == 404
    assert not conn.queue("secret").counts().paused
