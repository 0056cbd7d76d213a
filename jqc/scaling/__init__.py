"""Scaling: the queueing theory and the policies that size a worker pool, shared by the coordinator
(which runs a policy live, :mod:`jqc.coordinator.autoscale`) and the simulator (which evaluates the
same policy object on a virtual clock, :mod:`jqc.sim`).

- :mod:`~jqc.scaling.theory`: M/M/c (Erlang C) waits and quantiles, the servers a wait target
  needs, the FCFS c-server recursion;
- :mod:`~jqc.scaling.metrics`: :class:`PoolMetrics` (what a policy sees) and the
  :class:`ScalingPolicy` protocol;
- :mod:`~jqc.scaling.policies`: :class:`FixedPolicy`, :class:`HpaPolicy` and :func:`make_policy`;
- :mod:`~jqc.scaling.slo`: :class:`SloPolicy`, the wait-SLO policy.

This package imports nothing of jqc but :mod:`jqc.errors`: both layers above it can use it.
"""

from jqc.scaling.metrics import PoolMetrics, ScalingPolicy
from jqc.scaling.policies import FixedPolicy, HpaPolicy, make_policy
from jqc.scaling.slo import SloPolicy
from jqc.scaling.theory import (
    erlang_c,
    fcfs_waits,
    mean_wait,
    p_wait_longer,
    servers_for_wait,
    stationary_in_system,
    wait_quantile,
)

__all__ = [
    "FixedPolicy",
    "HpaPolicy",
    "PoolMetrics",
    "ScalingPolicy",
    "SloPolicy",
    "erlang_c",
    "fcfs_waits",
    "make_policy",
    "mean_wait",
    "p_wait_longer",
    "servers_for_wait",
    "stationary_in_system",
    "wait_quantile",
]
