"""``make screenshots``: the README's picture of the dashboard, taken by the browser tests' setup.

An embedded store gets an hour of traffic on a virtual clock (three queues: a steady one, one whose
mail bounces into the dead-letter queue, one paused with a backlog), the dashboard serves it from a
thread, and Chromium saves the overview as ``docs/images/dashboard.png``; then three schedules
are declared (one fires every quarter hour for the next hour) and the schedules page is saved as
``dashboard-schedules.png`` beside it.

    python -m tests.dashboard.screenshot [PATH]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

import jqc
from jqc.engine.calls import run_sync
from jqc.worker import registry
from jqc.workflows import fire_due

from .browser import ServerThread, host_app, launch_options, missing_browser

OUT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"


def _minute(queue: jqc.Queue, clock: jqc.VirtualClock, rng: random.Random, jobs: int, fail: float, run: float) -> None:
    """One minute of traffic: ``jobs`` added, waited on, run, and some failed for good."""
    for i in range(jobs):
        queue.add("resize" if queue.name == "photos" else "send", {"n": i, "user": f"user-{rng.randrange(1000)}"})
    for _ in range(jobs):
        clock.advance(rng.expovariate(1 / 0.2) * 60 / jobs / 4)
        got = queue.claim("screenshot-worker").jobs
        if not got:
            break
        clock.advance(rng.expovariate(1 / run) / 4)
        if rng.random() < fail:
            queue.fail(got[0], "SMTPRecipientsRefused: mailbox full", retry=False, code="error")
        else:
            queue.complete(got[0], {"ok": True})


def populate(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    """An hour of traffic on three queues, and live workers on two of them."""
    rng = random.Random(7)
    photos, emails, reports = conn.queue("photos"), conn.queue("emails"), conn.queue("reports")
    for minute in range(60):
        _minute(photos, clock, rng, 20 + int(10 * abs(30 - minute) / 30), 0.0, 0.35)
        _minute(emails, clock, rng, 8, 0.2 if minute > 40 else 0.02, 0.8)
        clock.advance(max(0.0, 60 - clock.now() % 60) + 0.001)  # on to the next minute
    reports.add_bulk(jqc.NewJob("monthly", {"month": m}) for m in range(1, 13))
    reports.pause()
    photos.add_bulk(jqc.NewJob("resize", {"n": i}) for i in range(14))
    now = int(clock.now() * 1000)
    for queue in (photos, emails):
        record = {"name": "pool-1", "host": "worker-host", "pid": 4242, "queues": ["photos", "emails"]}
        record |= {"active": 2, "concurrency": 8, "started": now - 3_600_000, "claimed": now}
        run_sync(conn.backend, registry.heartbeat(queue.ops, "pool-1", record, ttl=30, prune_after=300))


def add_schedules(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    """Three schedules, after the overview's hour: a digest that fires (and runs) every quarter hour
    for an hour, a nightly cleanup in Berlin time, a monthly report in New York time."""
    emails, photos, reports = conn.queue("emails"), conn.queue("photos"), conn.queue("reports")
    emails.schedule("digest", every=15 * 60, job="send", data={"kind": "digest"}, overlap="skip")
    photos.schedule("nightly-cleanup", cron="30 2 * * *", tz="Europe/Berlin", job="cleanup", data={"days": 30})
    reports.schedule("monthly", cron="0 6 1 * *", tz="America/New_York", job="monthly", missed="all")
    for _ in range(4):
        clock.advance(15 * 60)
        run_sync(conn.backend, fire_due(emails.ops))
        for job in emails.claim("screenshot-worker", count=10).jobs:
            emails.complete(job, {"sent": True})
    clock.advance(125)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    missing = missing_browser()
    if missing:
        print(f"screenshot: {missing}", file=sys.stderr)
        return 1
    clock = jqc.VirtualClock()
    conn = jqc.connect(clock=clock)
    populate(conn, clock)
    with ServerThread(host_app(conn, title="jqc dashboard")) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_options())
        page = browser.new_page(viewport={"width": 1640, "height": 400}, device_scale_factor=1)
        page.goto(f"{server.url}/jobs/")
        page.wait_for_selector('tr[data-queue="photos"]')
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        add_schedules(conn, clock)
        page.goto(f"{server.url}/jobs/schedules")
        page.wait_for_selector('tr[data-schedule="emails/digest"]')
        page.screenshot(path=str(out.with_name(out.stem + "-schedules.png")), full_page=True)
        browser.close()
    print(f"screenshot: wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
