"""The coordinator's inspection commands: ``metrics serve|show``, ``health``, ``doctor`` and ``acl``."""

from __future__ import annotations

import argparse
import json
import os
import threading
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

import jqc
from jqc.backends import parse_url
from jqc.coordinator import acl, doctor, health, prometheus
from jqc.errors import InvalidOptionError

from .arguments import Subparsers, add_json, add_url
from .output import rich_table, show, styled, when
from .validators import name_value

__all__ = ["add_parsers"]


# -- metrics ----------------------------------------------------------------------------------------


def _metrics_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"window_minutes": args.window, "stall_scan_limit": args.stall_scan, "worker_ttl": args.worker_ttl}


def cmd_metrics_show(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Print the Prometheus exposition once (for a look, or a node-exporter textfile)."""
    out.write(prometheus.render(conn, args.queues or None, **_metrics_options(args)))
    return 0


def cmd_metrics_serve(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Serve the exposition over HTTP until interrupted (or for ``--duration`` seconds)."""
    try:
        server, _ = prometheus.serve(conn, args.port, args.addr, args.queues or None, **_metrics_options(args))
    except OSError as exc:
        raise InvalidOptionError(f"cannot listen on {args.addr}:{args.port}: {exc}") from exc
    out.write(f"serving jqc metrics of {conn.safe_url} on http://{args.addr}:{server.server_port}/metrics\n")
    out.flush()
    try:
        threading.Event().wait(args.duration)  # None = until interrupted
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


# -- health -----------------------------------------------------------------------------------------


def _rule_value(text: str) -> Any:
    if text.lower() in ("none", "off", ""):
        return None
    if text.lower() in {lv.value for lv in health.Level}:
        return health.Level(text.lower())
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise InvalidOptionError(f"rule value {text!r} is not a number, 'none' or a level") from None


def _rules(args: argparse.Namespace) -> health.HealthRules:
    values: dict[str, Any] = {"window_minutes": args.window}
    if args.wait_slo is not None:
        values["wait_slo"] = args.wait_slo
    for item in args.rule or ():
        name, text = name_value(item, "--rule")
        values[name.replace("-", "_")] = _rule_value(text)
    return health.rules_from(values)


def cmd_health(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Check (and store) each queue's health; exit 2 when any is unhealthy (1 for degraded with --strict)."""
    names = args.queues or conn.queue_names()
    reports: list[health.HealthReport] = []
    if args.read:
        for name in names:
            found = health.read_health(conn.queue(name))
            if found is not None:
                reports.append(found)
    else:
        reports = health.check_all(conn, names, _rules(args), store=not args.no_store)
    if args.json:
        out.write(json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
    elif not reports:
        out.write("no queues\n" if not args.read else "no stored health checks\n")
    else:
        rows = [
            [r.queue, styled(r.status.value), when(r.checked_at), "; ".join(x.message for x in r.reasons) or "-"]
            for r in reports
        ]
        show(out, rich_table(rows, ["queue", "status", "checked at (UTC)", "reasons"]))
    worst = max((r.status.rank for r in reports), default=0)
    if worst >= health.HealthStatus.UNHEALTHY.rank:
        return 2
    if args.strict and worst >= health.HealthStatus.DEGRADED.rank:
        return 1
    return 0


# -- doctor -----------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Check the Redis server and the connected user; exit 1 on any failure (or warning with --strict)."""
    report = doctor.run(conn, role=args.role, queue=args.queue)
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        rows = [[styled(f.level.value), f.check, f.message] for f in report.findings]
        show(out, rich_table(rows, ["level", "check", "finding"]))
    worst = report.worst
    if worst == doctor.Level.FAIL or (args.strict and worst == doctor.Level.WARN):
        return 1
    return 0


# -- acl --------------------------------------------------------------------------------------------


def _db_of(url: str | None) -> int | None:
    if not url:
        return None
    if "+" in url.partition("://")[0]:  # a Cluster (database 0) or a Sentinel URL (.../service/db)
        return parse_url(url).db or None
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme == "unix":
        found = parse_qs(parts.query).get("db")
        path = found[0] if found else ""
    return int(path) if path.isdigit() and int(path) != 0 else None


def cmd_acl(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Print (or with --apply, create) a least-privilege Redis user for the given role(s)."""
    db = args.db if args.db is not None else _db_of(args.url)
    rules = acl.rules(args.role, args.queue, args.prefix, db=db)
    user = args.user or "jqc-" + "-".join(r.value for r in rules.roles) + "-" + (args.queue or "all")
    password: str | None = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            raise InvalidOptionError(f"environment variable {args.password_env} is empty or not set")
    digest = acl.password_sha256(password) if password else None
    if args.apply:
        if password is None:
            raise InvalidOptionError(
                "--apply needs --password-env VAR (the password is never taken on the command line)"
            )
        target = jqc.connect(args.url) if conn.in_process and args.url else conn
        if target.in_process:
            raise InvalidOptionError("--apply needs a real Redis: pass --url or set JQC_REDIS_URL")
        acl.apply(target.sync_client(), user, rules, password=password)
        out.write(f"user {user} now has the {'+'.join(r.value for r in rules.roles)} rules on {target.safe_url}\n")
        return 0
    if args.format == "rules":
        out.write("\n".join(rules.rules) + "\n")
    elif args.format == "acl-file":
        out.write(rules.acl_file_line(user, password_sha256=digest) + "\n")
    elif args.format == "json":
        data = {
            "user": user,
            "roles": [r.value for r in rules.roles],
            "prefix": rules.prefix,
            "queue": rules.queue,
            "scripts": list(rules.scripts),
            "commands": list(rules.commands),
            "rules": list(rules.rules),
            "setuser": rules.setuser(user, password_sha256=digest),
        }
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write(rules.render(user, password_sha256=digest) + "\n")
    return 0


# -- parser -----------------------------------------------------------------------------------------


def add_parsers(subparsers: Subparsers) -> None:
    """Register ``metrics``, ``health``, ``doctor`` and ``acl``."""
    p = subparsers.add_parser("metrics", help="Prometheus metrics: serve over HTTP, or show once")
    sub = p.add_subparsers(dest="metrics_command", required=True, metavar="ACTION")
    for name, text in (("serve", "serve the Prometheus exposition over HTTP"), ("show", "print it once")):
        q = sub.add_parser(name, help=text)
        q.add_argument("queues", nargs="*", help="queues (default: every queue found with SCAN, at each scrape)")
        q.add_argument("--window", type=int, default=5, help="minutes the windowed metrics cover (default 5)")
        q.add_argument("--worker-ttl", type=float, default=30.0, help="seconds a heartbeat keeps a worker live")
        q.add_argument("--stall-scan", type=int, default=0, help="events read to count stalls (default 0: off)")
        add_url(q)
        if name == "serve":
            port = prometheus.DEFAULT_PORT
            q.add_argument("--port", type=int, default=port, help=f"default {port}; 0 picks one")
            q.add_argument("--addr", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
            q.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
            q.set_defaults(handler=cmd_metrics_serve)
        else:
            q.set_defaults(handler=cmd_metrics_show)

    p = subparsers.add_parser("health", help="check queue health; exit 2 when any queue is unhealthy")
    p.add_argument("queues", nargs="*", help="queues (default: every queue found with SCAN)")
    p.add_argument("--window", type=int, default=5, help="minutes of metrics judged (default 5)")
    p.add_argument("--wait-slo", type=float, default=None, help="seconds the p95 wait should stay under")
    p.add_argument(
        "--rule",
        action="append",
        metavar="NAME=VALUE",
        help="set any HealthRules field, e.g. error_rate_degraded=0.1 or oldest_waiting_unhealthy=none",
    )
    p.add_argument("--no-store", action="store_true", help="do not store the result in Redis")
    p.add_argument("--read", action="store_true", help="show the stored results instead of checking")
    p.add_argument("--strict", action="store_true", help="exit 1 when any queue is degraded")
    add_json(p)
    add_url(p)
    p.set_defaults(handler=cmd_health)

    p = subparsers.add_parser("doctor", help="check the Redis server and what the connected user may do")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument(
        "--role", choices=[r.value for r in acl.Role], default=None,
        help="what the connected user is for: warn about rights beyond it (default: the closest role)",
    )  # fmt: skip
    p.add_argument("--queue", default=None, help="the queue the role is for (default: read from the user's keys)")
    add_json(p)
    add_url(p)
    p.set_defaults(handler=cmd_doctor)

    p = subparsers.add_parser("acl", help="least-privilege Redis ACL rules for a role on a queue")
    p.add_argument("--role", action="append", required=True, choices=[r.value for r in acl.Role])
    p.add_argument("--queue", default=None, help="the queue (default: every queue under the prefix)")
    p.add_argument("--prefix", default="jqc", help="key prefix (default jqc)")
    p.add_argument("--user", default=None, help="user name (default jqc-ROLE-QUEUE)")
    p.add_argument("--db", type=int, default=None, help="allow SELECT of this database (default: from --url)")
    p.add_argument("--format", choices=("command", "acl-file", "rules", "json"), default="command")
    p.add_argument("--password-env", metavar="VAR", help="take the password from this environment variable")
    p.add_argument("--apply", action="store_true", help="create or replace the user on the server at --url")
    add_url(p)
    p.set_defaults(handler=cmd_acl, owns_connection=True)
