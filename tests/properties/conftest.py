"""Hypothesis profiles for the property tests, chosen with ``JQC_HYPOTHESIS_PROFILE``.

* ``default``: what ``make test`` and CI run; sized so the engine model machine
  (``test_engine_model.py``) stays well under a minute and a half on both backends together on a
  small (2-core) machine.
* ``soak``: many more and longer runs (``make soak``); expect tens of minutes.

Loading a profile is process-wide: every hypothesis test in the same pytest session starts from it
(a test's own ``@settings`` still overrides what it sets).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = settings(
    deadline=None,  # a step may wait on a real server; per-example time limits only add flakes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,  # a CI failure prints the @reproduce_failure line that replays it
)

settings.register_profile("default", _COMMON, max_examples=100, stateful_step_count=60)
settings.register_profile("soak", _COMMON, max_examples=1000, stateful_step_count=100)
settings.load_profile(os.environ.get("JQC_HYPOTHESIS_PROFILE", "default"))
