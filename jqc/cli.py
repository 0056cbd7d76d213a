"""The ``jqc`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jqc", description="Job Queue Coordinator")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the photo-pipeline demo (embedded backend by default)")
    demo.add_argument("--url", default=os.environ.get("JQC_REDIS_URL"), help="Redis URL (default: embedded)")
    demo.add_argument("--photos", type=int, default=2000)
    demo.add_argument("--workers", type=int, default=4)
    demo.add_argument("--json", dest="json_path", metavar="PATH", help="also write the summary as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from jqc import demo

        return demo.main(args.photos, args.workers, args.url, args.json_path)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
