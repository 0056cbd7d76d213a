"""The schedules page through Starlette's TestClient, on both backends: every queue's schedules with
their timing, next ticks in their own zone, last tick, counters and policies; a late schedule
flagged; removing one (CSRF-checked, absent in read-only mode); a corrupt record reported for its
queue alone."""

from __future__ import annotations

import html
import re

from starlette.testclient import TestClient

import jqc
import jqc.dashboard
from jqc.dashboard import reads
from jqc.engine.calls import run_sync
from jqc.workflows import fire_due

from .conftest import notice_of, token_of

EPOCH = jqc.clock.VIRTUAL_EPOCH  # 2026-01-01T00:00:00Z


def rows(page: str) -> dict[str, str]:
    """Each schedule row's HTML, by ``queue/name``, in page order."""
    found = re.findall(r'data-schedule="([^"]+)">(.*?)</tr>', page, re.S)
    return {key: html.unescape(body) for key, body in found}


def cell(row: str, testid: str) -> str:
    """The text of one cell of a row, tags dropped and whitespace collapsed."""
    found = re.search(rf'data-testid="{testid}">(.*?)</td>', row, re.S)
    assert found, testid
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def fire(queue: jqc.Queue) -> None:
    run_sync(queue.connection.backend, fire_due(queue.ops))


def test_the_schedules_page_lists_every_queue_s_schedules(conn: jqc.Connection, client: TestClient) -> None:
    assert 'data-testid="no-schedules"' in client.get("/schedules").text
    photos, mail = conn.queue("photos"), conn.queue("mail")
    photos.schedule("nightly", cron="30 2 * * *", tz="Europe/Berlin", job="cleanup", data={"days": 30})
    photos.schedule("sync", every=90, overlap="skip", missed="all", max_catch_up=5)
    mail.schedule("digest", cron="0 9 * * 1")
    page = client.get("/schedules")
    assert page.status_code == 200
    found = rows(page.text)
    assert list(found) == ["mail/digest", "photos/sync", "photos/nightly"]  # per queue, the next to fire first
    nightly, sync, digest = found["photos/nightly"], found["photos/sync"], found["mail/digest"]
    assert cell(nightly, "schedule-when") == "cron 30 2 * * * in Europe/Berlin"
    assert cell(nightly, "schedule-next").startswith(
        "2026-01-01 02:30:00 CET 2026-01-02 02:30:00 CET 2026-01-03 02:30:00 CET next in"
    )
    assert 'cleanup <code>{"days":30}</code>' in nightly
    assert cell(nightly, "schedule-policy") == "missed: once after 60.0 s overlap: allow"
    assert cell(sync, "schedule-when") == "every 90.0 s from 2026-01-01 00:00:00 UTC"
    assert cell(sync, "schedule-next").startswith("2026-01-01 00:01:30 UTC 2026-01-01 00:03:00 UTC 2026-01-01 00:04:30")
    assert cell(sync, "schedule-policy") == "missed: all (at most 5) after 60.0 s overlap: skip"
    assert cell(digest, "schedule-next").startswith("2026-01-05 09:00:00 UTC")  # the first Monday
    for row in found.values():
        assert cell(row, "schedule-last") == "not fired yet" and cell(row, "schedule-counts") == "0 / 0 / 0"
    assert 'href="/schedules"' in page.text  # in the header's navigation
    only = rows(client.get("/schedules", params={"queue": "mail"}).text)
    assert list(only) == ["mail/digest"]
    assert client.get("/schedules", params={"queue": "nope"}).status_code == 404
    assert client.get("/schedules", params={"queue": "bad name"}).status_code == 404
    assert 'href="/schedules?queue=photos"' in client.get("/queues/photos").text


def test_a_fired_tick_shows_as_the_last_one_with_its_job(
    conn: jqc.Connection, client: TestClient, clock: jqc.VirtualClock
) -> None:
    queue = conn.queue("photos")
    queue.schedule("sync", every=60, overlap="skip")
    clock.advance(60)
    fire(queue)
    clock.advance(60)
    fire(queue)  # the first tick's job still waits: this tick is skipped for overlap
    row = rows(client.get("/schedules").text)["photos/sync"]
    job_id = f"s:sync:{int((EPOCH + 60) * 1000)}"
    assert cell(row, "schedule-counts") == "1 / 0 / 1"
    assert cell(row, "schedule-last").startswith(f"2026-01-01 00:01:00 UTC {job_id} last pass 0.00 ms ago")
    assert f'href="/queues/photos/job?id={job_id.replace(":", "%3A")}"' in row
    assert cell(row, "schedule-next").startswith("2026-01-01 00:03:00 UTC")
    assert client.get(f"/queues/photos/job?id={job_id}").status_code == 200


def test_a_schedule_no_worker_fires_is_flagged_late(
    conn: jqc.Connection, client: TestClient, clock: jqc.VirtualClock
) -> None:
    queue = conn.queue("photos")
    queue.schedule("sync", every=60)
    clock.advance(110)  # 50 s past the tick: within the minute the page allows
    assert 'data-testid="schedule-late"' not in client.get("/schedules").text
    clock.advance(20)
    row = rows(client.get("/schedules").text)["photos/sync"]
    assert 'data-testid="schedule-late"' in row and "its next tick is 70.0 s overdue" in row
    fire(queue)
    assert 'data-testid="schedule-late"' not in client.get("/schedules").text


def test_removing_a_schedule_needs_the_csrf_token_and_keeps_its_jobs(
    conn: jqc.Connection, client: TestClient, clock: jqc.VirtualClock
) -> None:
    queue = conn.queue("photos")
    queue.schedule("sync", every=60)
    queue.schedule("other", every=60)
    clock.advance(60)
    fire(queue)
    page = client.get("/schedules").text
    assert page.count('data-testid="schedule-remove"') == 2
    token = token_of(page)
    form = {"action": "remove", "name": "sync", "next": "/schedules"}
    assert client.post("/queues/photos/schedules", data=form).status_code == 403
    assert TestClient(client.app).post("/queues/photos/schedules", data={**form, "csrf": token}).status_code == 403
    assert queue.get_schedule("sync") is not None
    done = client.post("/queues/photos/schedules", data={**form, "csrf": token})
    assert done.status_code == 200 and notice_of(done.text) == "schedule sync of photos removed"
    assert list(rows(done.text)) == ["photos/other"]  # back on the schedules page
    assert queue.get_schedule("sync") is None and queue.counts().waiting == 2  # the jobs it added stay
    again = client.post("/queues/photos/schedules", data={**form, "csrf": token})
    assert notice_of(again.text) == "photos has no schedule sync (removed already?)"
    bad = client.post("/queues/photos/schedules", data={**form, "name": "bad name", "csrf": token})
    assert html.unescape(notice_of(bad.text)).startswith("schedule not removed: invalid schedule name 'bad name'")
    unknown = client.post("/queues/photos/schedules", data={**form, "action": "fire", "csrf": token})
    assert unknown.status_code == 400 and queue.get_schedule("other") is not None


def test_read_only_schedules_have_no_remove_button_nor_route(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    queue.schedule("sync", every=60)
    with TestClient(jqc.dashboard.app(conn, read_only=True)) as client:
        page = client.get("/schedules").text
        assert "photos/sync" in page and "<button" not in page and 'method="post"' not in page
        reply = client.post("/queues/photos/schedules", data={"action": "remove", "name": "sync"})
        assert reply.status_code in (404, 405)
    assert queue.get_schedule("sync") is not None


def test_a_corrupt_schedule_is_reported_for_its_queue_alone(conn: jqc.Connection, client: TestClient) -> None:
    photos, mail = conn.queue("photos"), conn.queue("mail")
    photos.schedule("sync", every=60)
    mail.schedule("digest", every=60)
    conn.sync_client().hset(photos.ops.schedule_key("sync"), "mc", "many")
    page = client.get("/schedules")
    assert page.status_code == 200 and list(rows(page.text)) == ["mail/digest"]
    error = html.unescape(page.text[page.text.index('data-testid="schedule-error"') :])
    assert error.startswith('data-testid="schedule-error">The schedules of photos cannot be read: schedule sync')


async def test_a_queue_with_more_schedules_than_shown_says_so(conn: jqc.Connection) -> None:
    queue = conn.async_queue("photos")
    for i in range(4):
        await queue.schedule(f"s{i}", every=60 + i)
    listing = await reads.schedule_rows(conn, ["photos"], reads.Settings(schedules_shown=3))
    assert [row.schedule.name for row in listing.rows] == ["s0", "s1", "s2"] and listing.capped == ("photos",)
    await conn.aclose()
