"""``jqc dashboard``: serve the web dashboard (:mod:`jqc.dashboard`) with uvicorn.

Needs ``pip install 'jqc[dashboard]'``; without it the command says so in one line. Basic auth
comes from ``--basic-auth USER:PASSWORD`` or, better (a command line is visible to other users of
the host), from ``$JQC_DASHBOARD_AUTH``.
"""

from __future__ import annotations

import argparse
import os
from typing import TextIO

import jqc
from jqc.errors import InvalidOptionError, MissingDependencyError

from .arguments import Subparsers, add_url
from .guards import CommandRefused, opened_in_process

__all__ = ["add_parser"]

AUTH_ENV = "JQC_DASHBOARD_AUTH"


def _credentials(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise InvalidOptionError("--basic-auth (or $JQC_DASHBOARD_AUTH) must be USER:PASSWORD, both non-empty")
    return user, password


def cmd_dashboard(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Serve the dashboard until interrupted."""
    if opened_in_process(args):
        raise CommandRefused(
            "jqc dashboard needs a server: pass --url or set JQC_REDIS_URL (the embedded backend starts "
            "empty in this process, so there would be nothing to show)"
        )
    if not 0 <= args.port <= 65535:
        raise InvalidOptionError(f"--port must be between 0 and 65535, not {args.port}")
    credentials = args.basic_auth if args.basic_auth is not None else os.environ.get(AUTH_ENV)
    try:
        import uvicorn

        from jqc import dashboard
    except ImportError as exc:
        raise MissingDependencyError("jqc dashboard needs: pip install 'jqc[dashboard]'") from exc
    auth = dashboard.basic_auth(*_credentials(credentials)) if credentials else None
    application = dashboard.app(conn, read_only=args.read_only, auth=auth, title=args.title)
    mode = "read-only" if args.read_only else "read-write"
    guard = "basic auth" if auth else "no authentication"
    out.write(
        f"serving the jqc dashboard of {conn.safe_url} ({mode}, {guard}) on http://{args.host}:{args.port}"
        f"{args.root_path}/\n"
    )
    out.flush()
    config = uvicorn.Config(
        application,
        host=args.host,
        port=args.port,
        root_path=args.root_path,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run()
    return 0


def add_parser(sub: Subparsers) -> None:
    """Register ``dashboard``."""
    p = sub.add_parser(
        "dashboard",
        help="serve the web dashboard (needs jqc[dashboard])",
        description="Serve the web dashboard of the queues on --url with uvicorn, until interrupted.",
    )
    add_url(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this host only)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--read-only", action="store_true", help="no actions at all: no buttons, POSTs refused")
    p.add_argument(
        "--basic-auth",
        metavar="USER:PASSWORD",
        default=None,
        help=f"require HTTP basic auth (default: ${AUTH_ENV}, which keeps the password off the command line)",
    )
    p.add_argument("--title", default="jqc", help="name shown in the page header (default jqc)")
    p.add_argument(
        "--root-path", default="", help="the path prefix a reverse proxy serves the dashboard under (e.g. /jobs)"
    )
    p.set_defaults(handler=cmd_dashboard)
