"""``jqc sim --flows N``: the flow workload of :mod:`jqc.sim.flows` instead of the job workload.

It runs the seeds ``--seeds`` names (``N-M`` or ``N,M,...``, as for the job workload; ``--seed``
alone when absent), each ``N`` random flows over ``--flow-queues`` queues,
``--workers`` workers, crashes between any two calls at ``--flow-crash`` per call sequence),
prints one line per failing seed with the command that replays it and a verdict line, and exits
1 when an invariant was violated.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_flow_arguments", "run_flow_sim"]


def add_flow_arguments(parser: argparse.ArgumentParser) -> None:
    """The flow workload's options of ``jqc sim``."""
    group = parser.add_argument_group("flows (see docs/sim.md)")
    group.add_argument("--flows", type=int, default=0, help="run the flow workload: this many flows per seed")
    group.add_argument("--flow-queues", type=int, default=3, help="with --flows: queues the flows spread over")
    group.add_argument("--flow-crash", type=float, default=0.2, help="with --flows: crash rate per call sequence")
    group.add_argument("--flow-fail", type=float, default=0.1, help="with --flows: failure rate per run")


def run_flow_sim(args: argparse.Namespace) -> int:
    """Run the flow workload for every seed asked; returns the exit status."""
    from jqc.connection import connect
    from jqc.errors import InvalidOptionError
    from jqc.sim.flows import FlowSimConfig, run_flows
    from jqc.sim.seeds import parse_seeds

    if args.flow_queues < 1 or not 0 <= args.flow_crash <= 1 or not 0 <= args.flow_fail <= 1:
        print("jqc sim: --flow-queues must be >= 1, --flow-crash and --flow-fail in [0, 1]", file=sys.stderr)
        return 2
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    except InvalidOptionError as exc:
        print(f"jqc sim: {exc}", file=sys.stderr)
        return 2
    opener = (lambda clock: connect(args.url, clock=clock)) if args.url else None
    bad = jobs = crashes = 0
    for seed in seeds:
        config = FlowSimConfig(
            seed=seed, flows=args.flows, queues=args.flow_queues, workers=args.workers,
            fail_rate=args.flow_fail, crash_rate=args.flow_crash,
        )  # fmt: skip
        report = run_flows(config, opener)
        jobs, crashes = jobs + report.jobs, crashes + report.crashes
        if not report.ok:
            bad += 1
            replay = (
                f"jqc sim --flows {args.flows} --seed {seed} --workers {args.workers} --flow-queues {args.flow_queues} "
                f"--flow-crash {args.flow_crash} --flow-fail {args.flow_fail}"
            )
            print(f"seed {seed}: {report.violations}; {report.examples[0]}; replay: {replay}")
    verdict = "OK" if not bad else f"VIOLATIONS in {bad} seed(s)"
    print(f"{verdict}: {len(seeds)} seed(s), {jobs} flow jobs, {crashes} crashes")
    return 1 if bad else 0
