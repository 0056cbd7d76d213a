"""``jqc sim --seeds 1-1000 --parallel N``: one configuration over many seeds, spread over processes.

The seeds run in :func:`jqc.sim.seeds.run_seeds`; this prints the merged report (text, ``--json PATH``
or ``--json -``, or only the verdict with ``--quiet``), shows a bar of seeds done on a terminal, and
prints each failing seed's replay command on stderr. Exit status: 0 when every seed held every
invariant, 1 when any failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from jqc.sim.config import SimConfig
from jqc.sim.seeds import SeedRun, default_parallel, parse_seeds, run_seeds

from .progress import seeds_bar

__all__ = ["run_sweep"]


def run_sweep(args: argparse.Namespace, config: SimConfig) -> int:
    """Run ``config`` over ``args.seeds`` on ``args.parallel`` processes; returns the exit status."""
    try:
        seeds = parse_seeds(args.seeds)
        if args.seed is not None:
            raise ValueError("give --seed or --seeds, not both")
        if args.log_path:
            raise ValueError("--log writes one run's event log; with --seeds replay the seed you want to read")
        parallel = default_parallel() if args.parallel is None else args.parallel
        if parallel < 1:
            raise ValueError(f"--parallel must be at least 1, not {parallel}")
    except ValueError as exc:
        print(f"jqc sim: {exc}", file=sys.stderr)
        return 2
    json_out = args.json_path == "-"
    with seeds_bar(sys.stderr, len(seeds), enabled=not (args.quiet or json_out)) as bar:

        def done(run: SeedRun) -> None:
            if bar is not None:
                bar(run.ok)

        report = run_seeds(config, seeds, parallel=parallel, self_check=args.self_check, on_done=done)
    if args.json_path and not json_out:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(report.to_json(), fh, indent=2)
            fh.write("\n")
    if json_out:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.quiet:
        print(report.verdict())
    else:
        print(report.render())
    for run in report.failed:
        print(f"seed {run.seed} failed; replay with: {run.replay_command}", file=sys.stderr)
    return 0 if report.ok else 1
