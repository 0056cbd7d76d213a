"""The autoscaling commands: ``jqc pool`` (local workers scaled to a wait SLO) and ``jqc autoscale``
(the same decisions, published for KEDA or an HPA, without local workers).

Both take the same policy options and build their :class:`~jqc.coordinator.autoscale.SloPolicy` and
:class:`~jqc.coordinator.autoscale.Coordinator` in one place, :func:`build_coordinator`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import jqc
from jqc.coordinator.autoscale import Actuator, Coordinator, Tick, run_coordinator
from jqc.coordinator.pool import WorkerPool, default_lock_ttl, run_pool, worker_command
from jqc.errors import InvalidOptionError
from jqc.scaling import SloPolicy

from .arguments import Subparsers, add_json, add_url
from .output import when
from .validators import handler_spec, require_positive, worker_range

__all__ = ["add_parsers", "build_coordinator"]


def build_coordinator(
    args: argparse.Namespace, conn: jqc.Connection, *, startup: float, actuator: Actuator | None = None
) -> Coordinator:
    """The wait-SLO policy and its coordinator for ``args.queue``, from the shared policy options."""
    policy = SloPolicy(
        slo=args.slo,
        startup=startup,
        concurrency=args.concurrency,
        scale_down_delay=args.scale_down_delay,
        burst_reserve=args.burst_reserve,
    )
    return Coordinator(
        conn,
        args.queue,
        policy,
        actuator=actuator,
        min_workers=args.min,
        max_workers=args.max,
        lock_ttl=args.lock_ttl if args.lock_ttl is not None else default_lock_ttl(args.interval),
    )


@contextmanager
def _on_stop_signals(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` on SIGTERM and SIGINT while in the block (where the event loop can)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def cmd_pool(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Supervise local ``jqc worker`` processes, scaled by the wait-SLO policy under the queue's lock."""
    if conn.in_process:
        raise InvalidOptionError(
            "jqc pool needs a real Redis: its workers are separate processes (pass --url or set JQC_REDIS_URL)"
        )
    handler_spec(args.handler_spec)
    worker_range(args.min, args.max)
    require_positive(args, "slo", "interval", "grace")
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
    coordinator = build_coordinator(args, conn, startup=startup, actuator=pool)
    out.write(
        f"pool for {args.queue!r} on {conn.safe_url}: {args.min}-{args.max} worker(s) x {args.concurrency}, "
        f"wait SLO {args.slo:g} s, coordinator {coordinator.holder}\n"
    )
    out.flush()

    async def main() -> None:
        stop = asyncio.Event()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                stop.set()
            else:
                pool.hurry()  # a second signal: workers hand their jobs back at once

        with _on_stop_signals(on_signal):
            await run_pool(
                conn, args.queue, pool, coordinator, interval=args.interval, duration=args.duration, stop=stop, out=out
            )

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
    worker_range(args.min, args.max)
    require_positive(args, "slo", "interval")
    coordinator = build_coordinator(args, conn, startup=args.startup)
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
            out.write(f"{when(d.at)} target {d.target} (token {d.token}): {'; '.join(d.reasons)}\n")
            last[0] = d.target
        out.flush()

    async def main() -> int:
        stop = asyncio.Event()
        with _on_stop_signals(stop.set):
            return await run_coordinator(
                coordinator, interval=args.interval, duration=args.duration, stop=stop, on_tick=report
            )

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


def add_parsers(subparsers: Subparsers) -> None:
    """Register ``pool`` and ``autoscale``."""
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
    add_json(p, "print what the pool did as JSON at the end")
    add_url(p)
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
    add_json(p, "print every decision as a JSON line")
    add_url(p)
    p.set_defaults(handler=cmd_autoscale)
