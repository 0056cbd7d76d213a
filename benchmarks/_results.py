"""What every benchmark script shares: run statistics, key clean-up, writing the result files.

Scripts import it as ``_results`` (``python benchmarks/<name>.py`` puts this folder on sys.path).
Standard library only, so the peers' own interpreters can import it too.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def summary(values: list[float]) -> dict[str, Any] | None:
    """Median and min-max of repeated runs (None when nothing was measured)."""
    if not values:
        return None
    return {"runs": values, "median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``pct`` % of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def delete_matching(client: Any, pattern: str) -> int:
    """UNLINK every key matching ``pattern``, found with SCAN, in batches of 1,000."""
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def write_results(out_dir: str | Path, stem: str, report: dict[str, Any], md: str) -> None:
    """Write ``<stem>-latest.json`` and ``.md`` atomically, print the table and where it went."""
    import sys

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, text in (("json", json.dumps(report, indent=2) + "\n"), ("md", md)):
        tmp = folder / f"{stem}-latest.{suffix}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / f"{stem}-latest.{suffix}")
    print(md)
    print(f"written: {folder / f'{stem}-latest.json'}, {folder / f'{stem}-latest.md'}", file=sys.stderr)


def command_line(env_vars: tuple[str, ...] = ()) -> str:
    """How this script was started: the interpreter (relative when under the working directory), the
    arguments, and whichever of ``env_vars`` were set, so a reader can run it again."""
    exe = sys.executable
    try:
        rel = os.path.relpath(exe)
        if not rel.startswith(".."):
            exe = rel
    except ValueError:  # another drive on Windows
        pass
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in env_vars if os.environ.get(k))
    return (env + " " if env else "") + shlex.join([exe, *sys.argv])


def machine_info(server: Mapping[str, Any], url: str, **extra: Any) -> dict[str, Any]:
    """The machine block every results file starts with; ``server`` is Redis's ``INFO server``."""
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "redis_version": server.get("redis_version"),
        "url": url,
        **extra,
        "loadavg_1min_start": round(os.getloadavg()[0], 2),
    }


def stop_child(proc: subprocess.Popen[Any]) -> None:
    """Close a child's stdin (its signal to finish) and wait 30 s for it to exit, then kill it."""
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def json_line_call(proc: subprocess.Popen[str], op: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Send ``{"op": op, **params}`` as one JSON line to a child and read its one-line JSON reply.

    None when the child has exited (its stdout closed); the caller words the error.
    """
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps({"op": op, **params}) + "\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass
    line = proc.stdout.readline()
    if not line:
        return None
    reply: dict[str, Any] = json.loads(line)
    return reply
