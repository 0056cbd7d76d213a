"""The coordinator's ``jqc`` commands: ``metrics serve|show``, ``health``, ``doctor``, ``acl``, ``pool``.

:func:`add_parsers` registers them on the ``jqc`` parser's subparsers; each sets ``handler`` to a
function ``(args, connection, out) -> exit code`` as the commands of :mod:`jqc.cli` do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

import jqc
from jqc.errors import InvalidOptionError
from jqc.scaling import SloPolicy

from . import acl, doctor, health, prometheus
from .autoscale import Coordinator, Tick, run_coordinator
from .pool import WorkerPool, default_lock_ttl, run_pool, worker_command

__all__ = ["add_parsers"]


def _url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("JQC_REDIS_URL"),
        help="Redis URL: redis://, rediss://, unix:// (default: $JQC_REDIS_URL, else the embedded backend)",
    )


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from jqc.cli import table  # late: jqc.cli may import this module

    return table(rows, headers)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


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
        name, sep, text = item.partition("=")
        if not sep:
            raise InvalidOptionError(f"--rule takes NAME=VALUE, not {item!r}")
        values[name.strip().replace("-", "_")] = _rule_value(text.strip())
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
            [r.queue, r.status.value, _when(r.checked_at), "; ".join(x.message for x in r.reasons) or "-"]
            for r in reports
        ]
        out.write(_table(rows, ["queue", "status", "checked at (UTC)", "reasons"]) + "\n")
    worst = max((r.status.rank for r in reports), default=0)
    if worst >= health.HealthStatus.UNHEALTHY.rank:
        return 2
    if args.strict and worst >= health.HealthStatus.DEGRADED.rank:
        return 1
    return 0


# -- doctor -----------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Check the Redis server and the connected user; exit 1 on any failure (or warning with --strict)."""
    report = doctor.run(conn)
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        rows = [[f.level.value, f.check, f.message] for f in report.findings]
        out.write(_table(rows, ["level", "check", "finding"]) + "\n")
    worst = report.worst
    if worst == doctor.Level.FAIL or (args.strict and worst == doctor.Level.WARN):
        return 1
    return 0


# -- acl --------------------------------------------------------------------------------------------


def _db_of(url: str | None) -> int | None:
    if not url:
        return None
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme == "unix":
        from urllib.parse import parse_qs

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
        target = jqc.connect(args.url) if conn.embedded and args.url else conn
        if target.embedded:
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


# -- pool -----------------------------------------------------------------------------------------


def cmd_pool(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Supervise local ``jqc worker`` processes, scaled by the wait-SLO policy under the queue's lock."""
    if conn.embedded:
        raise InvalidOptionError(
            "jqc pool needs a real Redis: its workers are separate processes (pass --url or set JQC_REDIS_URL)"
        )
    module, sep, function = args.handler_spec.partition(":")
    if not sep or not module or not function:
        raise InvalidOptionError(f"handler must be given as MODULE:FUNCTION, not {args.handler_spec!r}")
    if not 0 <= args.min <= args.max or args.max < 1:
        raise InvalidOptionError(f"need 0 <= --min <= --max and --max >= 1, not {args.min} and {args.max}")
    for name in ("slo", "interval", "grace"):
        if getattr(args, name) <= 0:
            raise InvalidOptionError(f"--{name} must be > 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = dict(os.environ)
    env["JQC_REDIS_URL"] = args.url  # the workers' URL goes through the environment, never argv
    command = worker_command(
        args.handler_spec,
        args.queue,
        concurrency=args.concurrency,
        grace=args.grace,
        lock=args.lock,
        extra=args.worker_arg or (),
    )
    startup = args.startup if args.startup is not None else 5.0
    pool = WorkerPool(command, env=env, clock=conn.clock, startup=startup, grace=args.grace)
    policy = SloPolicy(
        slo=args.slo,
        startup=startup,
        concurrency=args.concurrency,
        scale_down_delay=args.scale_down_delay,
        burst_reserve=args.burst_reserve,
    )
    coordinator = Coordinator(
        conn,
        args.queue,
        policy,
        actuator=pool,
        min_workers=args.min,
        max_workers=args.max,
        lock_ttl=args.lock_ttl if args.lock_ttl is not None else default_lock_ttl(args.interval),
    )
    out.write(
        f"pool for {args.queue!r} on {conn.safe_url}: {args.min}-{args.max} worker(s) x {args.concurrency}, "
        f"wait SLO {args.slo:g} s, coordinator {coordinator.holder}\n"
    )
    out.flush()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                stop.set()
            else:
                pool.hurry()  # a second signal: workers hand their jobs back at once

        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await run_pool(
                conn, args.queue, pool, coordinator, interval=args.interval, duration=args.duration, stop=stop, out=out
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    asyncio.run(main())
    if args.json:
        stats = pool.stats
        data = {
            "spawned": stats.spawned,
            "drained": stats.drained,
            "crashed": stats.crashed,
            "killed": stats.killed,
            "ticks": stats.ticks,
            "led": stats.led,
            "decisions": stats.decisions,
        }
        out.write(json.dumps(data, indent=2) + "\n")
    return 0


def cmd_autoscale(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Run the coordinator without local workers: decide under the lock and publish the target only
    (for KEDA or a Kubernetes HPA reading ``jqc_target_workers``)."""
    if not 0 <= args.min <= args.max or args.max < 1:
        raise InvalidOptionError(f"need 0 <= --min <= --max and --max >= 1, not {args.min} and {args.max}")
    for name in ("slo", "interval"):
        if getattr(args, name) <= 0:
            raise InvalidOptionError(f"--{name} must be > 0")
    policy = SloPolicy(
        slo=args.slo,
        startup=args.startup,
        concurrency=args.concurrency,
        scale_down_delay=args.scale_down_delay,
        burst_reserve=args.burst_reserve,
    )
    coordinator = Coordinator(
        conn,
        args.queue,
        policy,
        min_workers=args.min,
        max_workers=args.max,
        lock_ttl=args.lock_ttl if args.lock_ttl is not None else default_lock_ttl(args.interval),
    )
    last: list[int | None] = [None]

    def report(tick: Tick) -> None:
        d = tick.decision
        if args.json:
            out.write(json.dumps(d.to_dict() if d is not None else {"leader": False, "holder": tick.lease.holder}))
            out.write("\n")
        elif d is None:
            if last[0] is not None or tick.lost:
                out.write(f"standby: the lock of {args.queue!r} is held by {tick.lease.holder or 'nobody'}\n")
            last[0] = None
        elif d.target != last[0]:
            out.write(f"{_when(d.at)} target {d.target} (token {d.token}): {'; '.join(d.reasons)}\n")
            last[0] = d.target
        out.flush()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            return await run_coordinator(
                coordinator, interval=args.interval, duration=args.duration, stop=stop, on_tick=report
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    asyncio.run(main())
    return 0


# -- parser -----------------------------------------------------------------------------------------


def _policy_options(p: argparse.ArgumentParser, *, startup: float | None, startup_help: str) -> None:
    """The scaling policy's options, shared by `jqc pool` and `jqc autoscale`."""
    p.add_argument("--min", type=int, default=1, help="fewest workers (default 1)")
    p.add_argument("--max", type=int, default=10, help="most workers (default 10)")
    p.add_argument("--slo", type=float, default=60.0, help="p95 queue wait to stay under, seconds (default 60)")
    p.add_argument("--concurrency", type=int, default=10, help="jobs in flight per worker (default 10)")
    p.add_argument("--startup", type=float, default=startup, help=startup_help)
    p.add_argument("--interval", type=float, default=15.0, help="seconds between decisions (default 15)")
    p.add_argument("--scale-down-delay", type=float, default=120.0, help="stabilization before scaling down, s")
    p.add_argument(
        "--burst-reserve",
        type=float,
        default=1.0,
        help="share of the free workers a repeat of the largest recent burst needs, kept once bursts recur "
        "(0: none; default 1)",
    )
    p.add_argument("--lock-ttl", type=float, default=None, help="coordinator lock duration (default 3 x interval)")


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``metrics``, ``health``, ``doctor``, ``acl`` and ``pool`` on the ``jqc`` subparsers."""
    p = subparsers.add_parser("metrics", help="Prometheus metrics: serve over HTTP, or show once")
    sub = p.add_subparsers(dest="metrics_command", required=True, metavar="ACTION")
    for name, text in (("serve", "serve the Prometheus exposition over HTTP"), ("show", "print it once")):
        q = sub.add_parser(name, help=text)
        q.add_argument("queues", nargs="*", help="queues (default: every queue found with SCAN, at each scrape)")
        q.add_argument("--window", type=int, default=5, help="minutes the windowed metrics cover (default 5)")
        q.add_argument("--worker-ttl", type=float, default=30.0, help="seconds a heartbeat keeps a worker live")
        q.add_argument("--stall-scan", type=int, default=0, help="events read to count stalls (default 0: off)")
        _url(q)
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
    p.add_argument("--json", action="store_true", help="print data as JSON")
    _url(p)
    p.set_defaults(handler=cmd_health)

    p = subparsers.add_parser("doctor", help="check the Redis server and what the connected user may do")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--json", action="store_true", help="print data as JSON")
    _url(p)
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
    _url(p)
    p.set_defaults(handler=cmd_acl, owns_connection=True)

    p = subparsers.add_parser(
        "pool",
        help="supervise local worker processes, scaled to a wait SLO under the queue's coordinator lock",
        description=(
            "Runs `jqc worker MODULE:FUNCTION` processes for one queue and scales them between --min and --max "
            "to keep the p95 queue wait under --slo. One pool per queue decides at a time (a fenced Redis "
            "lock); others stand by with no workers and take over when it dies. The decision is published "
            "for other orchestrators as jqc_target_workers."
        ),
    )
    p.add_argument("handler_spec", metavar="MODULE:FUNCTION", help="the workers' handler (as for jqc worker)")
    p.add_argument("--queue", required=True, help="the queue to work on")
    _policy_options(
        p, startup=None, startup_help="seconds a worker takes to start (default: 5, raised to what the pool measures)"
    )
    p.add_argument("--grace", type=float, default=30.0, help="seconds a draining worker gets to finish (default 30)")
    p.add_argument("--lock", type=float, default=None, help="the workers' job lock duration, s")
    p.add_argument("--worker-arg", action="append", metavar="ARG", help="extra argument for jqc worker (repeat)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print what the pool did as JSON at the end")
    _url(p)
    p.set_defaults(handler=cmd_pool)

    p = subparsers.add_parser(
        "autoscale",
        help="decide a queue's worker count under its coordinator lock and publish it (no local workers)",
        description=(
            "The coordinator of `jqc pool` without the pool: every --interval it takes or keeps the queue's "
            "fenced lock, reads the queue's metrics, decides a worker count for the wait SLO and publishes it in "
            "P:{Q}:autoscale, which `jqc metrics serve` exposes as jqc_target_workers for KEDA or an HPA."
        ),
    )
    p.add_argument("--queue", required=True, help="the queue to decide for")
    _policy_options(p, startup=30.0, startup_help="seconds a new worker takes to start (default 30)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print every decision as a JSON line")
    _url(p)
    p.set_defaults(handler=cmd_autoscale)
