"""The jqc simulator: thousands of virtual workers and injected faults on a virtual clock,
driving the real engine (embedded backend by default, or a real Redis).

    >>> from jqc.sim import SimConfig, run
    >>> report = run(SimConfig(seed=42, workers=20, jobs=2000))
    >>> report.ok, report.event_log_sha256

What a run is made of: :mod:`~jqc.sim.config` (:class:`SimConfig`), :mod:`~jqc.sim.workload`
(arrivals, service times, job mix) and :mod:`~jqc.sim.specs` (their command-line forms),
:mod:`~jqc.sim.faults` (fault rates and schedules). How it runs: :mod:`~jqc.sim.runner` (the
:class:`Simulator` and its loop) over the state of :mod:`~jqc.sim.state`, with its parts
:mod:`~jqc.sim.network`, :mod:`~jqc.sim.producer`, :mod:`~jqc.sim.pool`, :mod:`~jqc.sim.dispatch`,
:mod:`~jqc.sim.attempts`, :mod:`~jqc.sim.recovery`, :mod:`~jqc.sim.inject`, :mod:`~jqc.sim.hang`
and :mod:`~jqc.sim.scaler`. What it checks and says: :mod:`~jqc.sim.checkers` (the model and the
invariants), :mod:`~jqc.sim.report`, and :mod:`~jqc.sim.progress` (what a progress display is
handed, as it goes). On top: :mod:`~jqc.sim.planning` (capacity planning) and :mod:`jqc.cli.sim`
(``jqc sim``). Scaling policies and queueing theory are :mod:`jqc.scaling`'s.
"""

from jqc.sim.config import SimConfig
from jqc.sim.faults import FaultConfig, ScheduledFault, parse_faults
from jqc.sim.progress import SimProgress
from jqc.sim.report import Report
from jqc.sim.runner import Simulator, run
from jqc.sim.specs import parse_arrival, parse_job_class, parse_service
from jqc.sim.workload import (
    Bursts,
    Daily,
    Empirical,
    Exponential,
    Fixed,
    JobClass,
    LogNormal,
    Poisson,
    Replay,
    Step,
)

__all__ = [
    "Bursts",
    "Daily",
    "Empirical",
    "Exponential",
    "FaultConfig",
    "Fixed",
    "JobClass",
    "LogNormal",
    "Poisson",
    "Replay",
    "Report",
    "ScheduledFault",
    "SimConfig",
    "SimProgress",
    "Simulator",
    "Step",
    "parse_arrival",
    "parse_faults",
    "parse_job_class",
    "parse_service",
    "run",
]
