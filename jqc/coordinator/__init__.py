"""The coordinator: what turns queues into something a team can operate.

- :mod:`~jqc.coordinator.metrics`: one snapshot of a queue's vital signs (sync and async);
- :mod:`~jqc.coordinator.prometheus`: the Prometheus exposition (needs ``jqc[prometheus]``);
- :mod:`~jqc.coordinator.health`: healthy / degraded / unhealthy from stated rules, stored in Redis;
- :mod:`~jqc.coordinator.doctor`: checks of the Redis server and of the connected user;
- :mod:`~jqc.coordinator.acl`: least-privilege ACL rules for producer, worker, observer, coordinator and
  admin;
- :mod:`~jqc.coordinator.autoscale`: the coordinator that runs a scaling policy (the wait-SLO policy
  of :mod:`jqc.scaling`) under the queue's lock;
- :mod:`~jqc.coordinator.lock`: the fenced per-queue coordinator lock and the published decision;
- :mod:`~jqc.coordinator.pool`: the supervisor of local worker processes behind ``jqc pool``.

Their commands (``metrics``, ``health``, ``doctor``, ``acl``, ``pool``, ``autoscale``) live in
:mod:`jqc.cli`. See ``docs/coordinator.md`` and ``docs/autoscaling.md``.
"""

from jqc.coordinator.acl import AclRules, Role
from jqc.coordinator.doctor import DoctorReport, Finding
from jqc.coordinator.health import HealthReport, HealthRules, HealthStatus, Reason
from jqc.coordinator.metrics import QueueSnapshot, StallCount

__all__ = [
    "AclRules",
    "DoctorReport",
    "Finding",
    "HealthReport",
    "HealthRules",
    "HealthStatus",
    "QueueSnapshot",
    "Reason",
    "Role",
    "StallCount",
]
