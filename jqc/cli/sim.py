"""``jqc sim``: run the simulator from the command line.

    jqc sim --workers 2000 --jobs 100000 --arrival poisson:rate=60 \\
        --service lognormal:mean=30,sigma=0.5 --faults crash=0.001,pause=0.0005 --seed 42 \\
        [--url URL] [--policy fixed|hpa|slo] [--json PATH] [--self-check]
    jqc sim ... --seeds 1-1000 [--parallel N]     # many seeds over N processes, one merged report

On a terminal, a progress bar on stderr shows virtual time and jobs done while it runs (not with
``--quiet``, nor when stderr is piped; see :mod:`jqc.cli.progress`). ``--json -`` prints the JSON
report on stdout instead of the text one.

Exit status: 0 when every invariant held (and, with ``--self-check``, both runs gave the same
event log), 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

import jqc
from jqc.sim.config import SimConfig
from jqc.sim.faults import FaultConfig, parse_faults
from jqc.sim.schedules import parse_schedule
from jqc.sim.specs import parse_arrival, parse_job_class, parse_service
from jqc.sim.workload import JobClass

from .arguments import Subparsers
from .progress import sim_bar
from .sim_flows import add_flow_arguments, run_flow_sim
from .validators import rate_limit

__all__ = ["add_parser", "build_config", "run_sim"]


ARRIVAL_HELP = (
    "poisson:rate=R | bursts:rate=R,size=N,every=S,width=W | step:rate=R,to=R2,at=T | "
    "daily:mean=R,amp=A,period=P | replay:FILE"
)
SERVICE_HELP = "fixed:S | exp:mean=S | lognormal:mean=S,sigma=X | list:FILE"
MIX_HELP = "NAME:weight=W,priority=P,delay=S,attempts=N,backoff=S,transient=P,permanent=P (repeat for more classes)"
FAULTS_HELP = (
    "crash=P,pause=P,partition=P,jump=P,error=P,hang=P (per attempt), skew=P (per worker), slow=R,restart=R,"
    "failover=R (per virtual second), and scheduled kind@time[/slot][:duration=S][:by=S][:persist=0] "
    "(failover@T:by=LAG:duration=S: a replica LAG seconds behind is promoted, its lost writes accounted for)"
)


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register ``sim``."""
    p = subparsers.add_parser(
        "sim",
        help="simulate workers, faults and scaling against the real engine on a virtual clock",
        description="Deterministic simulation: one seed drives every choice; the same seed gives the same event log.",
    )
    work = p.add_argument_group("workload")
    work.add_argument("--workers", type=int, default=10, help="worker count (the starting count with --policy hpa)")
    work.add_argument("--jobs", type=int, default=1000, help="jobs to add (0: no limit, use --duration)")
    work.add_argument("--duration", type=float, help="stop adding jobs after this many virtual seconds")
    work.add_argument("--arrival", default="poisson:rate=1", help=ARRIVAL_HELP)
    work.add_argument("--service", default="exp:mean=1", help=SERVICE_HELP)
    work.add_argument("--mix", action="append", default=[], metavar="CLASS", help=MIX_HELP)
    work.add_argument(
        "--schedule", action="append", default=[], metavar="SPEC",
        help="a schedule of the queue, every=SECONDS,missed=once|all|skip,overlap=allow|skip (repeatable): "
        "its ticks add jobs of the first class while arrivals last, every live worker racing to fire them",
    )  # fmt: skip
    work.add_argument("--prefill", type=int, default=0, help="jobs waiting at time 0 (not measured)")
    work.add_argument("--warmup", type=int, default=0, help="first arrivals left out of the wait statistics")
    work.add_argument("--rate-limit", type=rate_limit, metavar="N/S", help="queue rate limit: N jobs per S seconds")
    faults = p.add_argument_group("faults")
    faults.add_argument("--faults", default="", help=FAULTS_HELP)
    faults.add_argument("--heal-at", type=float, help="no fault starts after this time (default: the last arrival)")
    faults.add_argument("--restart-persist", type=float, default=1.0, help="chance a Redis restart keeps its data")
    pool = p.add_argument_group("workers and scaling")
    pool.add_argument(
        "--policy",
        choices=("fixed", "hpa", "slo"),
        default="fixed",
        help="slo: the wait-SLO policy of jqc.scaling (uses --slo, --startup-delay, --stabilization)",
    )
    pool.add_argument("--min-workers", type=int)
    pool.add_argument("--max-workers", type=int)
    pool.add_argument("--target-backlog", type=float, default=1.0, help="hpa: jobs (waiting + active) per worker")
    pool.add_argument("--stabilization", type=float, default=300.0, help="hpa, slo: scale-down stabilization window, s")
    pool.add_argument("--tick", type=float, default=15.0, help="seconds between policy decisions")
    pool.add_argument("--startup-delay", type=float, default=0.0, help="seconds before a new worker is ready")
    pool.add_argument("--drain-grace", type=float, help="scale-down: release a job still running after this long")
    pool.add_argument("--slo", type=float, default=60.0, help="wait SLO: minutes with p95 wait above it are counted")
    pool.add_argument("--lock", type=float, default=30.0, help="lock duration, s")
    pool.add_argument("--heartbeat", type=float, help="lock renewal interval, s (default lock / 3)")
    pool.add_argument("--stall-interval", type=float, default=15.0)
    pool.add_argument("--max-stalls", type=int, default=3)
    pool.add_argument("--restart-delay", type=float, default=5.0, help="seconds before a crashed worker is replaced")
    pool.add_argument("--idle-poll", type=float, default=5.0, help="fallback poll of one idle worker, s")
    pool.add_argument("--no-fetch-next", action="store_true", help="claim in a separate call after each complete")
    pool.add_argument("--progress", action="store_true", help="also report progress at every heartbeat")
    run = p.add_argument_group("run")
    run.add_argument("--seed", type=int, help="the seed of every random choice (default 0)")
    run.add_argument(
        "--seeds", metavar="SEEDS", help="run every seed of N-M or N,M,... and print one merged report listing "
        "the failing seeds with their replay commands",
    )  # fmt: skip
    run.add_argument(
        "--parallel", type=int, metavar="N", help="with --seeds: processes to spread them over (default: every core)"
    )
    run.add_argument("--url", default=os.environ.get("JQC_SIM_URL"), help="a real Redis (default: embedded backend)")
    run.add_argument("--liveness-bound", type=float, help="seconds after healing by which every job must finish")
    run.add_argument("--max-time", type=float, help="hard stop, virtual seconds")
    run.add_argument("--no-keep-completed", action="store_true", help="delete completed jobs (saves memory)")
    run.add_argument(
        "--json", dest="json_path", metavar="PATH", help="write the report as JSON (-: on stdout, instead of the text)"
    )
    run.add_argument("--log", dest="log_path", metavar="PATH", help="write the full event log")
    run.add_argument("--self-check", action="store_true", help="run the seed twice and compare the event logs")
    run.add_argument(
        "--quiet", action="store_true", help="print only the verdict line, and no progress bar (shown on a terminal)"
    )
    p.set_defaults(handler=cmd_sim, owns_connection=True)
    add_flow_arguments(p)
    return p


def build_config(args: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` the parsed arguments describe."""
    base = FaultConfig(restart_persist=args.restart_persist, heal_at=args.heal_at)
    mix = tuple(parse_job_class(m) for m in args.mix) or (JobClass(),)
    return SimConfig(
        seed=args.seed if args.seed is not None else 0,
        workers=args.workers,
        jobs=args.jobs or None,
        duration=args.duration,
        arrival=parse_arrival(args.arrival),
        service=parse_service(args.service),
        mix=mix,
        schedules=tuple(parse_schedule(spec) for spec in args.schedule),
        faults=parse_faults(args.faults, base),
        prefill=args.prefill,
        warmup=args.warmup,
        policy=args.policy,
        min_workers=args.min_workers,
        max_workers=args.max_workers,
        target_backlog=args.target_backlog,
        stabilization=args.stabilization,
        policy_tick=args.tick,
        startup_delay=args.startup_delay,
        drain_grace=args.drain_grace,
        slo_wait=args.slo,
        lock=args.lock,
        heartbeat=args.heartbeat,
        stall_interval=args.stall_interval,
        max_stalls=args.max_stalls,
        restart_delay=args.restart_delay,
        fetch_next=not args.no_fetch_next,
        progress=args.progress,
        rate_limit=args.rate_limit,
        idle_poll=args.idle_poll,
        liveness_bound=args.liveness_bound,
        max_time=args.max_time,
        keep_completed=not args.no_keep_completed,
        url=args.url,
    )


def run_sim(args: argparse.Namespace) -> int:
    """Run ``jqc sim`` with parsed arguments; returns the exit status."""
    from jqc.sim.runner import Simulator

    if args.flows:
        return run_flow_sim(args)
    try:
        config = build_config(args)
    except (ValueError, TypeError) as exc:
        print(f"jqc sim: {exc}", file=sys.stderr)
        return 2
    if args.seeds is not None:
        from .sim_seeds import run_sweep

        return run_sweep(args, config)
    if args.parallel is not None:
        print("jqc sim: --parallel spreads --seeds over processes; give --seeds", file=sys.stderr)
        return 2
    json_out = args.json_path == "-"
    with sim_bar(sys.stderr, enabled=not (args.quiet or json_out)) as bar:
        sim = Simulator(
            config, keep_log=bool(args.log_path), on_progress=bar.follow(f"seed {config.seed}") if bar else None
        )
        report = sim.run()
        if args.self_check:
            again = Simulator(config, on_progress=bar.follow("self-check") if bar else None).run()
            report.self_check = {
                "first": report.event_log_sha256,
                "second": again.event_log_sha256,
                "equal": again.event_log_sha256 == report.event_log_sha256,
            }
    if args.log_path and sim.log.lines is not None:
        with open(args.log_path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(sim.log.lines) + "\n")
    if args.json_path and not json_out:
        report.dump(args.json_path)
    if json_out:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.quiet:
        verdict = "ok" if report.ok else f"FAILED ({report.violations} violations)"
        print(f"jqc sim seed {report.seed}: {verdict}  sha256 {report.event_log_sha256}")
    else:
        print(report.render())
    if not report.ok:
        print(f"replay with: {report.replay_command}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_sim(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """``jqc sim``: the simulator opens its own backend (``--url``, default embedded) and prints its report."""
    return run_sim(args)
