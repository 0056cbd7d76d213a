"""A job page's timeline (through Starlette's TestClient, on both backends): it looks back through
the queue's event stream past the newest page of entries, stops at the job's creation, says when
it may be incomplete (trimmed, or beyond its budget), and leaves out an earlier job of the same
id; a job removed after it failed for good still has a page, its dead letter's. And search by
name."""

from __future__ import annotations

import html
import re

from starlette.testclient import TestClient

import jqc
import jqc.dashboard

from .conftest import notice_of, token_of


def timeline(page: str) -> list[str]:
    """The event names of a job page's timeline, oldest first."""
    body = page[page.index('data-testid="timeline"') : page.index("</table>", page.index('data-testid="timeline"'))]
    return re.findall(r"<tr><td>[^<]*</td><td>([^<]+)</td>", body)


def test_the_timeline_reaches_past_the_newest_thousand_events(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    job = queue.add("resize", {"path": "a.jpg"})
    clock.advance(1)
    queue.complete(queue.claim("w").jobs[0], "ok")
    clock.advance(1)
    queue.add_bulk(jqc.NewJob("other", i) for i in range(2500))  # 2,500 newer events of other jobs
    with TestClient(jqc.dashboard.app(conn)) as client:
        page = client.get("/queues/photos/job", params={"id": job.id}).text
        assert timeline(page) == ["added", "active", "completed"]
        assert 'data-testid="timeline-partial"' not in page  # it reached the job's creation
    with TestClient(jqc.dashboard.app(conn, timeline_events=2000)) as client:
        page = client.get("/queues/photos/job", params={"id": job.id}).text
        assert timeline(page) == [] and 'data-testid="timeline-partial"' in page
        assert "No events of this job in the 2000 newest entries" in page


def test_the_timeline_stops_at_the_job_s_creation(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    queue.add("first life", job_id="report-1")
    queue.remove("report-1")
    clock.advance(5)
    queue.add("second life", job_id="report-1")
    with TestClient(jqc.dashboard.app(conn)) as client:
        page = client.get("/queues/photos/job", params={"id": "report-1"}).text
    assert timeline(page) == ["added"]  # not the first job's added and removed
    assert 'data-testid="timeline-partial"' not in page


def test_a_job_whose_first_events_were_trimmed_says_its_timeline_may_be_incomplete(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    quiet = conn.queue("quiet", events_max_len=0)  # a queue that keeps no events at all
    job = quiet.add("x")
    clock.advance(1)
    short = conn.queue("short", events_max_len=1)  # keeps about one entry: the add's is gone soon
    old = short.add("old")
    clock.advance(1)
    short.add_bulk(jqc.NewJob("newer", i) for i in range(300))
    with TestClient(jqc.dashboard.app(conn)) as client:
        quiet_page = client.get("/queues/quiet/job", params={"id": job.id}).text
        assert timeline(quiet_page) == [] and 'data-testid="timeline-partial"' in quiet_page
        clock.advance(1)
        claimed = short.claim("w").jobs[0]
        assert claimed.id == old.id
        short.complete(claimed, "ok")  # its newest events are still in the stream: they are shown
        page = client.get("/queues/short/job", params={"id": old.id}).text
        assert timeline(page) == ["active", "completed"] and 'data-testid="timeline-partial"' in page


def test_search_finds_jobs_by_name(conn: jqc.Connection, client: TestClient) -> None:
    queue = conn.queue("photos")
    queue.add_bulk(jqc.NewJob("resize" if i % 3 else "Thumbnail", {"n": i}) for i in range(9))
    page = client.get("/queues/photos", params={"q": "thumb"}).text  # case-insensitive
    assert page.count('data-testid="job-row"') == 3 and "resize" not in page.split('data-testid="jobs"')[1]


def test_a_removed_job_s_dead_letter_has_a_page_to_replay_or_purge_it(conn: jqc.Connection) -> None:
    queue = conn.queue("mail")
    job = queue.add("send", {"to": "ann"})
    queue.fail(queue.claim("w").jobs[0], "bounced", retry=False, code="error", traceback="Traceback: boom")
    queue.remove(job.id)  # the job goes; its dead-letter record stays
    with TestClient(jqc.dashboard.app(conn)) as client:
        dead_tab = client.get("/queues/mail", params={"state": "dead"}).text
        assert f'href="/queues/mail/job?id={job.id}"' in dead_tab
        page = client.get("/queues/mail/job", params={"id": job.id})
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert 'data-testid="dead-letter"' in text and "last run by w" in text
        assert "bounced" in text and "Traceback: boom" in text and '"to": "ann"' in text
        assert 'value="retry"' not in text and 'value="remove"' not in text  # no job to act on
        token = token_of(page.text)
        replayed = client.post("/queues/mail/dead", data={"csrf": token, "action": "replay", "id": job.id})
        assert notice_of(replayed.text) == "1 job(s) replayed" and 'data-testid="dead-letter"' not in replayed.text
        assert queue.get_job(job.id).state == jqc.JobState.WAITING  # type: ignore[union-attr]
        queue.fail(queue.claim("w").jobs[0], "bounced again", retry=False)
        queue.remove(job.id)
        token = token_of(client.get("/queues/mail/job", params={"id": job.id}).text)
        client.post("/queues/mail/dead", data={"csrf": token, "action": "purge", "id": job.id})
        assert client.get("/queues/mail/job", params={"id": job.id}).status_code == 404  # nothing left
    with TestClient(jqc.dashboard.app(conn, read_only=True)) as client:
        other = queue.add("send")
        queue.fail(queue.claim("w").jobs[0], "bounced", retry=False)
        queue.remove(other.id)
        page = client.get("/queues/mail/job", params={"id": other.id}).text
        assert 'data-testid="dead-letter"' in page and "<button" not in page
