"""A job page's timeline (through Starlette's TestClient, on both backends): it looks back through
the queue's event stream past the newest page of entries, stops at the job's creation, says when
it may be incomplete (trimmed, or beyond its budget), and leaves out an earlier job of the same
id. And search by name."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

import jqc
import jqc.dashboard


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
