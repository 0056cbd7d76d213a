"""The jqc simulator: thousands of virtual workers and injected faults on a virtual clock,
driving the real engine (embedded backend by default, or a real Redis).

    >>> from jqc.sim import SimConfig, run
    >>> report = run(SimConfig(seed=42, workers=20, jobs=2000))
    >>> report.ok, report.event_log_sha256

Modules: :mod:`~jqc.sim.workload` (arrivals, service times, job mix), :mod:`~jqc.sim.faults`,
:mod:`~jqc.sim.checkers` (the model and the invariants), :mod:`~jqc.sim.runner` (the event
loop), :mod:`~jqc.sim.report`, :mod:`~jqc.sim.cli` (``jqc sim``). Scaling policies and queueing
theory (Erlang C) are :mod:`jqc.scaling`'s.
"""

from jqc.sim.config import SimConfig
from jqc.sim.faults import FaultConfig, ScheduledFault, parse_faults
from jqc.sim.report import Report
from jqc.sim.runner import Simulator, run
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
    parse_arrival,
    parse_job_class,
    parse_service,
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
    "Simulator",
    "Step",
    "parse_arrival",
    "parse_faults",
    "parse_job_class",
    "parse_service",
    "run",
]
