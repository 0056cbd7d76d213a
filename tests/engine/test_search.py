"""Bounded search through a queue's listings (``Queue.search``) and the newest events
(``Queue.recent_events``), on both backends: what matches, where a step stops, how it goes on."""

from __future__ import annotations

import pytest

import jqc


def fill(queue: jqc.Queue, n: int) -> list[jqc.Job]:
    return queue.add_bulk(jqc.NewJob("resize" if i % 3 else "Crop", {"user": f"u{i}", "n": i}) for i in range(n))


def test_search_matches_id_name_and_data_case_insensitively(queue: jqc.Queue) -> None:
    jobs = fill(queue, 30)
    by_data = queue.search("waiting", '"u17"')
    assert [j.id for j in by_data.jobs] == [jobs[17].id] and by_data.next_offset is None
    assert by_data.scanned == 30 and by_data.total == 30
    by_name = queue.search("waiting", "crop")
    assert [j.id for j in by_name.jobs] == [j.id for j in jobs if j.name == "Crop"]
    by_id = queue.search("waiting", jobs[5].id)
    assert jobs[5].id in [j.id for j in by_id.jobs]
    assert queue.search("waiting", "nothing like it").jobs == ()
    assert queue.search("delayed", "u1").jobs == ()  # another state's listing


def test_a_search_step_stops_at_its_limit_and_goes_on_where_it_stopped(queue: jqc.Queue) -> None:
    jobs = fill(queue, 40)
    seen: list[str] = []
    offset: int | None = 0
    steps = 0
    while offset is not None:
        page = queue.search("waiting", "resize", offset=offset, limit=7)
        assert len(page.jobs) <= 7 and page.offset == offset
        seen += [j.id for j in page.jobs]
        offset = page.next_offset
        steps += 1
    assert seen == [j.id for j in jobs if j.name == "resize"]  # each match once, in claim order
    assert steps == 4  # 26 matches: 7 + 7 + 7 + 5


def test_a_search_step_looks_at_no_more_than_its_scan_budget(queue: jqc.Queue) -> None:
    jobs = fill(queue, 50)
    page = queue.search("waiting", '"u45"', scan=20)
    assert page.jobs == () and page.scanned == 20 and page.next_offset == 20
    page = queue.search("waiting", '"u45"', offset=40, scan=20)
    assert [j.id for j in page.jobs] == [jobs[45].id] and page.scanned == 10 and page.next_offset is None


def test_search_reads_dead_letters_as_letters(queue: jqc.Queue) -> None:
    queue.add("mail", {"to": "ann@example.com"})
    queue.add("mail", {"to": "bob@example.com"})
    for _ in range(2):
        claimed = queue.claim("w").jobs[0]
        queue.fail(claimed, f"bounced {claimed.job.data['to']}", retry=False)
    page = queue.search("dead", "BOB")
    assert [letter.job.data for letter in page.letters] == [{"to": "bob@example.com"}]
    assert [j.id for j in page.jobs] == [page.letters[0].job.id] and page.letters[0].reason == "bounced bob@example.com"
    assert queue.search("failed", "ann").jobs[0].failure_reason == "bounced ann@example.com"
    assert queue.search("failed", "ann").letters == ()  # letters only for the dead-letter listing


def test_search_filters_dead_letters_by_failure_code(queue: jqc.Queue) -> None:
    for i in range(4):
        queue.add("mail", {"n": i})
    for i in range(4):
        claimed = queue.claim("w").jobs[0]
        queue.fail(claimed, "no", retry=False, code="timeout" if i % 2 else "error")
    timeouts = queue.search("dead", code=jqc.FailureCode.TIMEOUT)
    assert sorted(letter.job.data["n"] for letter in timeouts.letters) == [1, 3]
    assert [j.data["n"] for j in queue.search("dead", "", code="error", limit=1).jobs] == [2]  # newest first
    with pytest.raises(jqc.InvalidOptionError):
        queue.search("dead", code="melted")


def test_search_refuses_bad_arguments(queue: jqc.Queue) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        queue.search("finished", "x")
    with pytest.raises(jqc.InvalidOptionError):
        queue.search("waiting", 5)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError):
        queue.search("waiting", "x", offset=-1)
    with pytest.raises(jqc.InvalidOptionError):
        queue.search("waiting", "x", limit=0)
    with pytest.raises(jqc.InvalidOptionError):
        queue.search("waiting", "x", scan=0)


def test_recent_events_come_newest_first_and_page_back(queue: jqc.Queue) -> None:
    jobs = fill(queue, 5)
    newest = queue.recent_events(3)
    assert [e.job_id for e in newest] == [j.id for j in reversed(jobs)][:3]
    older = queue.recent_events(10, before=newest[-1].id)
    assert [e.job_id for e in older] == [jobs[1].id, jobs[0].id]
    assert all(e.name == "added" for e in newest + older)


async def test_the_async_queue_searches_the_same_way(conn: jqc.Connection) -> None:
    fill(conn.queue("photos"), 10)
    aq = conn.async_queue("photos")
    page = await aq.search("waiting", '"u3"')
    assert [j.data for j in page.jobs] == [{"user": "u3", "n": 3}]
    assert len(await aq.recent_events(4)) == 4
    assert (await aq.search("waiting", code="timeout")).jobs == ()  # none failed: none has that code
    await conn.aclose()
