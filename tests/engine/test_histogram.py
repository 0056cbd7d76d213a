"""Percentiles over no samples: None, and said so, rather than a silent None or a made-up 0."""

from __future__ import annotations

import jqc
from jqc.engine.metrics import Histogram


def test_no_samples_means_none_and_the_repr_says_why(queue: jqc.Queue) -> None:
    queue.add("x")  # waiting, never finished: nothing recorded yet
    metrics = queue.metrics()
    assert metrics.wait.percentile(95) is None and metrics.run.mean() is None
    assert repr(metrics.wait) == "Histogram(no samples: no job finished in the window)"


def test_a_histogram_with_samples_shows_count_and_percentiles(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x")
    claimed = queue.claim("w").jobs[0]
    clock.advance(0.25)
    queue.complete(claimed)
    run = queue.metrics().run
    assert run.percentile(95) is not None
    assert repr(run).startswith("Histogram(1 samples, p50 ~") and "ms" in repr(run)
    assert repr(Histogram({3: 2})) == "Histogram(2 samples, p50 ~1.5 ms, p95 ~1.5 ms)"
