"""One seed for every random choice of a run.

A run has one :class:`SimRandom` made from its seed. Each kind of choice draws from its own named
stream (``arrivals``, ``service``, ``faults``, ``ties`` ...), derived deterministically from the
seed and the name, so the same seed always replays the same run, and changing how one kind of
choice is drawn (say, adding a fault) leaves the others untouched: two scaling policies compared
on one seed see the very same arrivals and service times (common random numbers).
"""

from __future__ import annotations

import random

__all__ = ["SimRandom"]


class SimRandom:
    """The seed of a run and its named, independent streams of random numbers."""

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {seed!r}")
        self.seed = seed
        self._streams: dict[str, random.Random] = {}

    def stream(self, name: str) -> random.Random:
        """The stream called ``name`` (made on first use; str seeds hash with SHA-512, not hash())."""
        rng = self._streams.get(name)
        if rng is None:
            rng = self._streams[name] = random.Random(f"jqc-sim:{self.seed}:{name}")
        return rng
