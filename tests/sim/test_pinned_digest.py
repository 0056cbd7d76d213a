"""One seed gives one report, release after release: the event log's SHA-256 and a digest of every
figure of the report that does not depend on the machine are pinned here.

The pins were taken before the simulator and the embedded backend were made faster, so a speed-up
that changed what a run does (an event reordered, a random draw taken in another order, a reply
read differently) fails here. A deliberate change of behaviour (a new event in the log, a new
invariant, an engine reply that changes) updates the pins in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jqc
from jqc.sim import Report, SimConfig, run
from tests.conftest import open_backend
from tests.sim.test_determinism import FAULTY

#: Figures that measure the machine, not the run.
MACHINE = ("wall_seconds", "engine_seconds", "lifecycles_per_wall_s")

PINNED = {
    "seed7": (
        "c1e8f9892b0ce9d48985e7e601455e6b87fecb4ac6b91f76a502a4083db0c4dc",
        "984171f5c225487593a03d978c62535409d96a74766dcda041ce7a621f07a01f",
    ),
    "seed42": (
        "2db86df31b8e2eff1a337b46d55b3ba4e708b24b78fecafab1ec161d0c424435",
        "3275d456b86652de3c4391624ca50307a02b61c00e079273464d668a4c4962bc",
    ),
}

SEED42 = SimConfig(seed=42, workers=20, jobs=400)


def report_digest(report: Report) -> str:
    """SHA-256 of the report's JSON without the machine's figures (and without the backend's name)."""
    out: dict[str, Any] = report.to_json()
    for name in (*MACHINE, "backend"):
        out.pop(name, None)
    return hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()


def _pinned(name: str, report: Report) -> None:
    sha, digest = PINNED[name]
    assert report.ok, report.render()
    assert report.event_log_sha256 == sha
    assert report_digest(report) == digest


def test_faulty_seed_gives_its_pinned_report_on_the_embedded_backend() -> None:
    _pinned("seed7", run(FAULTY))


def test_faulty_seed_gives_its_pinned_report_on_redis() -> None:
    conn = open_backend("redis", jqc.VirtualClock())
    try:
        _pinned("seed7", run(FAULTY, conn))
    finally:
        conn.close()


def test_plain_seed_gives_its_pinned_report() -> None:
    _pinned("seed42", run(SEED42))
