"""One seed for every random choice jqc.testing makes, so a failing test replays.

Drains, ``perform_job`` and inline queues give their workers a ``random.Random`` (the Worker's
``rng``: backoff jitter, the jitter of reconnect backoff, the random part of worker ids) from
:func:`current_rng`. Under the pytest plugin that is one stream per test, seeded from the run's
seed (``--jqc-seed`` / the ``jqc_seed`` ini option, 0 by default) and the test's id, so a test gets
the same numbers whichever other tests run, in whatever order. Outside pytest (or with the plugin
disabled) every call returns a new stream seeded with :data:`DEFAULT_SEED`.

The plugin publishes the running test as ``jqc_pytest.active_test``, an object whose ``rng``
attribute is that test's stream. It is looked up by name in ``sys.modules``, never imported, so
this module works without pytest and the plugin imports nothing of jqc.
"""

from __future__ import annotations

import random
import sys

__all__ = ["DEFAULT_SEED", "current_rng"]

#: The seed used when none is given (and outside pytest).
DEFAULT_SEED = 0


def current_rng() -> random.Random:
    """The stream the running test's workers draw from (see the module docstring)."""
    plugin = sys.modules.get("jqc_pytest")
    active = getattr(plugin, "active_test", None) if plugin is not None else None
    rng = getattr(active, "rng", None) if active is not None else None
    return rng if isinstance(rng, random.Random) else random.Random(DEFAULT_SEED)
