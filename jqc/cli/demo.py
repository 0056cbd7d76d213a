"""``jqc demo``: the photo pipeline of :mod:`jqc.demo`, run and checked, its summary printed."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

import jqc
from jqc import demo

from .arguments import Subparsers, add_url

__all__ = ["add_parser", "run_demo"]


def run_demo(photos: int, workers: int, url: str | None, json_path: str | None, concurrency: int = 8) -> int:
    """Run the demo, print its story and summary, check it; exit status 0 when every photo is accounted for."""
    print(
        f"jqc demo: {photos} photos through {' -> '.join(demo.STAGES)}, {workers} workers x {concurrency} in flight "
        f"({url or 'embedded backend'})"
    )
    summary = demo.run(photos=photos, workers=workers, concurrency=concurrency, url=url)
    print(demo.render(summary))
    ok = (
        summary.lost == 0
        and summary.completed_twice == 0
        and summary.completed + summary.dead_lettered == summary.jobs
        and summary.planned_jobs - summary.not_created == summary.jobs
        and summary.recovered_stalls >= 1
    )
    if ok:
        print("check: every photo ended completed or dead-lettered; no job completed twice")
    else:
        print("CHECK FAILED: see lost / completed twice / recovered stalls above")
    if json_path:
        Path(json_path).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    return run_demo(args.photos, args.workers, args.url, args.json_path, args.concurrency)


def add_parser(sub: Subparsers) -> None:
    """Register ``demo`` (it opens its own backend: ``--url``, else the embedded one)."""
    p = sub.add_parser("demo", help="run the photo-pipeline demo (embedded backend by default)")
    p.add_argument("--photos", type=int, default=2000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8, help="jobs in flight per worker (default 8)")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="also write the summary as JSON")
    add_url(p)
    p.set_defaults(handler=cmd_demo, owns_connection=True)
