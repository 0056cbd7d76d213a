"""The dashboard in a real browser (Chromium driven by Playwright), on both backends, mounted under
``/jobs`` of a host app (and read-only under ``/ro``): find a job by its data and open it, replay a
dead letter and watch it complete live, filter dead letters by code and replay all matching,
purge a removed job's dead letter from its page, pause a queue, watch a schedule fire and remove it,
read-only mode, CSRF.

The dashboard and a worker run in threads of this process on the same connection; each test works
on a queue of its own. Few tests, each a short user story, so the suite stays fast.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

import jqc

from .browser import worker_thread

TIMEOUT = 15_000  # ms: generous deadlines for outcomes, never a duration assert


def fresh_queue(conn: jqc.Connection, stem: str) -> jqc.Queue:
    return conn.queue(f"{stem}-{uuid.uuid4().hex[:6]}")


def eventually(check: object, within: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_find_a_job_by_its_data_and_open_it(served: tuple[jqc.Connection, str], page: Page) -> None:
    conn, url = served
    queue = fresh_queue(conn, "photos")
    jobs = queue.add_bulk(jqc.NewJob("resize", {"user": f"user-{i}", "size": i}) for i in range(30))
    page.goto(f"{url}/jobs/")
    row = page.locator(f'tr[data-queue="{queue.name}"]')
    expect(row.get_by_test_id("waiting")).to_have_text("30", timeout=TIMEOUT)
    row.get_by_test_id("queue-link").click()
    expect(page.get_by_test_id("queue-name")).to_have_text(queue.name)
    page.get_by_test_id("search").fill("user-17")
    page.get_by_test_id("search-button").click()
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(1)
    rows.first.get_by_test_id("job-link").click()
    expect(page.get_by_test_id("job-id")).to_have_text(jobs[17].id)
    expect(page.get_by_test_id("job-data")).to_contain_text('"user": "user-17"')
    expect(page.get_by_test_id("job-state")).to_have_text("waiting")
    assert page.url.startswith(f"{url}/jobs/queues/{queue.name}/job?id=")


def test_replay_a_dead_letter_and_watch_it_complete_live(served: tuple[jqc.Connection, str], page: Page) -> None:
    conn, url = served
    queue = fresh_queue(conn, "mail")

    def send(ctx: jqc.SyncJobContext) -> str:
        if ctx.data.get("bounce") and ctx.job.replayed == 0:
            raise jqc.Fail("mailbox full")
        return "sent"

    with worker_thread(queue, send):
        job = queue.add("send", {"to": "ann@example.com", "bounce": True})
        eventually(lambda: queue.counts().dead == 1)
        page.goto(f"{url}/jobs/queues/{queue.name}?state=dead")
        letter = page.locator(f'tr[data-job="{job.id}"]')
        expect(letter).to_contain_text("mailbox full")
        page.evaluate("window.jqcMarker = 'same page'")
        letter.locator("input[type=checkbox]").check()
        page.get_by_test_id("selected-replay").click()
        expect(page.get_by_role("status")).to_have_text("1 job(s) replayed")
        expect(page.get_by_test_id("count-completed")).to_have_text("1", timeout=TIMEOUT)
        eventually(lambda: queue.get_job(job.id).state == jqc.JobState.COMPLETED)  # type: ignore[union-attr]
        assert page.evaluate("window.jqcMarker") is None  # the action loaded a new page...
        page.evaluate("window.jqcMarker = 'same page'")
        queue.add("send", {"to": "bob@example.com"})  # ...and now the counts move with no reload
        expect(page.get_by_test_id("count-completed")).to_have_text("2", timeout=TIMEOUT)
        assert page.evaluate("window.jqcMarker") == "same page"


def test_filter_dead_letters_by_code_replay_all_matching_and_purge_one(
    served: tuple[jqc.Connection, str], page: Page
) -> None:
    conn, url = served
    queue = fresh_queue(conn, "bounces")
    letters = []
    for i, code in enumerate(("timeout", "error", "timeout", "error")):
        letters.append(queue.add("send", {"to": f"user{i}"}))
        queue.fail(queue.claim("w").jobs[0], f"failed with {code}", retry=False, code=code)
    queue.remove(letters[3].id)  # its dead letter stays, and keeps a page
    page.goto(f"{url}/jobs/queues/{queue.name}?state=dead")
    expect(page.get_by_test_id("job-row")).to_have_count(4)
    page.get_by_test_id("code").select_option("timeout")
    page.get_by_test_id("search-button").click()
    expect(page.get_by_test_id("job-row")).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())  # "Replay every matching dead letter?"
    page.get_by_test_id("replay-all").click()
    expect(page.get_by_role("status")).to_have_text("2 dead letter(s) replayed")
    expect(page.get_by_test_id("count-dead")).to_have_text("2")
    assert {job.id for job in queue.list_jobs("waiting").jobs} == {letters[0].id, letters[2].id}
    page.goto(f"{url}/jobs/queues/{queue.name}?state=dead")
    page.locator(f'tr[data-job="{letters[3].id}"]').get_by_test_id("job-link").click()
    expect(page.get_by_test_id("dead-letter")).to_contain_text("removed")
    expect(page.get_by_test_id("job-error")).to_contain_text("failed with error")
    page.get_by_test_id("letter-purge").click()
    expect(page.get_by_role("status")).to_have_text("1 job(s) purged")
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    assert queue.counts().dead == 1


def test_pause_and_resume_a_queue(served: tuple[jqc.Connection, str], page: Page) -> None:
    conn, url = served
    queue = fresh_queue(conn, "thumbs")
    queue.add("x")
    page.goto(f"{url}/jobs/queues/{queue.name}")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("paused")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"queue {queue.name} paused")
    assert queue.counts().paused
    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("paused")).to_have_count(0)
    assert not queue.counts().paused


def test_watch_a_schedule_fire_then_remove_it(served: tuple[jqc.Connection, str], page: Page) -> None:
    conn, url = served
    queue = fresh_queue(conn, "ticks")
    queue.schedule("heartbeat", every=1, job="beat", data={"from": "browser"})
    with worker_thread(queue, lambda ctx: "ok", schedule_interval=0.5):
        eventually(lambda: queue.get_schedule("heartbeat").fired >= 1)  # type: ignore[union-attr]
        page.goto(f"{url}/jobs/queues/{queue.name}")
        page.get_by_test_id("queue-schedules").click()  # the overview may not list a new queue yet
        row = page.locator(f'tr[data-schedule="{queue.name}/heartbeat"]')
        expect(row.get_by_test_id("schedule-when")).to_contain_text("every 1.0 s from", timeout=TIMEOUT)
        expect(row).to_contain_text('beat {"from":"browser"}')
        row.get_by_test_id("schedule-last-job").click()
        expect(page.get_by_test_id("job-id")).to_have_text(re.compile(r"^s:heartbeat:\d+$"))
        expect(page.get_by_test_id("job-state")).to_have_text("completed", timeout=TIMEOUT)  # live, as it runs
        page.go_back()
        page.once("dialog", lambda dialog: dialog.accept())  # "Remove schedule ...?"
        row.get_by_test_id("schedule-remove").click()
        expect(page.get_by_role("status")).to_have_text(f"schedule heartbeat of {queue.name} removed")
        expect(row).to_have_count(0)
    assert queue.get_schedule("heartbeat") is None and queue.counts().completed >= 1  # its jobs stay


def test_read_only_mode_has_no_buttons_and_refuses_posts(served: tuple[jqc.Connection, str], page: Page) -> None:
    conn, url = served
    queue = fresh_queue(conn, "audit")
    job = queue.add("x", {"n": 1})
    page.goto(f"{url}/ro/queues/{queue.name}")
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    expect(page.locator("form[method=post]")).to_have_count(0)
    expect(page.locator("button")).to_have_count(1)  # the search button, nothing else
    status = page.evaluate(
        """async (path) => (await fetch(path, {method: 'POST', body: new URLSearchParams({paused: '1'})})).status""",
        f"/ro/queues/{queue.name}/pause",
    )
    assert status in (404, 405)
    page.get_by_test_id("job-link").click()
    expect(page.get_by_test_id("job-state")).to_have_text("waiting")
    expect(page.locator("form[method=post]")).to_have_count(0)
    queue.schedule("hourly", every=3600)
    page.goto(f"{url}/ro/schedules?queue={queue.name}")
    expect(page.locator(f'tr[data-schedule="{queue.name}/hourly"]')).to_have_count(1)
    expect(page.locator("button")).to_have_count(0)
    assert not queue.counts().paused and queue.get_job(job.id) is not None
    assert queue.get_schedule("hourly") is not None


def test_an_action_without_the_csrf_token_is_refused(served: tuple[jqc.Connection, str], page: Page) -> None:
    conn, url = served
    queue = fresh_queue(conn, "csrf")
    queue.add("x")
    page.goto(f"{url}/jobs/queues/{queue.name}")
    post = """async ([path, token]) => {
        const body = new URLSearchParams({paused: '1'});
        if (token) body.set('csrf', token);
        return (await fetch(path, {method: 'POST', body, redirect: 'manual'})).status;
    }"""
    path = f"/jobs/queues/{queue.name}/pause"
    assert page.evaluate(post, [path, ""]) == 403
    assert page.evaluate(post, [path, "forged.0123456789abcdef0123456789abcdef"]) == 403
    assert not queue.counts().paused
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert page.evaluate(post, [path, token]) in (0, 303)  # 'manual' redirects read as status 0
    assert queue.counts().paused


@pytest.mark.parametrize("path", ["/jobs/", "/jobs/workers", "/jobs/schedules", "/jobs/autoscaler"])
def test_every_page_renders_under_the_prefix(served: tuple[jqc.Connection, str], page: Page, path: str) -> None:
    _, url = served
    response = page.goto(url + path)
    assert response is not None and response.status == 200
    for link in page.locator("header nav a").all():
        assert (link.get_attribute("href") or "").startswith("/jobs/")
