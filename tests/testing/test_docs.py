"""docs/testing.md stays true: every Python example in it is a file, run here on both backends, and
every ``text`` block shows output those examples print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.testing.conftest import QUIET

DOC = Path(__file__).parents[2] / "docs" / "testing.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
NAME = re.compile(r"# (\w+\.py)\n")


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == kind]


def example_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for body in blocks("python"):
        name = NAME.match(body)
        assert name, f"every python example in {DOC.name} must start with '# <file>.py':\n{body[:200]}"
        assert name.group(1) not in files, f"two examples are called {name.group(1)}"
        files[name.group(1)] = body
    return files


def expected_output() -> list[list[str]]:
    """Each ``text`` block as fnmatch patterns (``...`` lines stand for lines left out; the first
    line may follow pytest's progress dots, as the examples print with ``-s``)."""
    out = []
    for body in blocks("text"):
        lines = [line for line in body.splitlines() if line.strip() and line.strip() != "..."]
        patterns = [re.sub(r"[\[\]*?]", lambda m: f"[{m.group(0)}]", line) for line in lines]
        out.append(["*" + patterns[0], *patterns[1:]])
    return out


def test_the_examples_run_and_print_what_the_page_shows(
    pytester: pytest.Pytester, backend: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    files = example_files()
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for name, body in files.items():
        pytester.path.joinpath(name).write_text(body)
    tests = sum(len(re.findall(r"^\s*(?:async )?def test_", body, re.M)) for body in files.values())
    assert tests >= 15

    result = pytester.runpytest(*QUIET, "-s", "-p", "pytester", *backend)

    result.assert_outcomes(passed=tests)
    for patterns in expected_output():
        result.stdout.fnmatch_lines(patterns, consecutive=False)
