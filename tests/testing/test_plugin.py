"""The pytest plugin as a user meets it: pytester runs the downstream project in ``downstream/``
(which installs nothing of this repository and uses only the documented API) on each backend."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import redis

from tests.testing.conftest import QUIET, closed_port_url, real_redis_url

DOWNSTREAM = Path(__file__).parent / "downstream"
ROOT = Path(__file__).parents[2]
DOWNSTREAM_TESTS = 28  # every test of downstream/tests
SYNC_FILES = ("tests/test_enqueueing.py", "tests/test_running_sync.py")
SYNC_TESTS = 19
FIXTURES = ("jqc_async_queue", "jqc_clock", "jqc_connection", "jqc_queue", "jqc_worker")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    shutil.copytree(DOWNSTREAM, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    return pytester


def _leftover_keys(url: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return list(client.scan_iter(match="jqctest-*", count=1000))
    finally:
        client.close()


def test_the_downstream_project_passes(project: pytest.Pytester, backend: list[str]) -> None:
    result = project.runpytest(*QUIET, *backend)
    result.assert_outcomes(passed=DOWNSTREAM_TESTS)
    if backend:
        result.stdout.fnmatch_lines(["jqc: fixtures use Redis at redis://* (a key prefix per test)"])
        assert _leftover_keys(backend[1]) == []


def test_sync_tests_need_no_asyncio_plugin(project: pytest.Pytester, backend: list[str]) -> None:
    result = project.runpytest(*QUIET, "-p", "no:asyncio", *backend, *SYNC_FILES)
    result.assert_outcomes(passed=SYNC_TESTS)


def test_async_tests_leave_no_connection_open(project: pytest.Pytester) -> None:
    # In a process of its own, so that only the inner run's garbage is judged.
    url = real_redis_url()
    result = project.runpytest_subprocess(
        *QUIET, "--jqc-redis-url", url, "-W", "error::ResourceWarning", "tests/test_running_async.py"
    )
    result.assert_outcomes(passed=9)
    result.stdout.no_fnmatch_line("*unclosed*")


def test_failures_tell_what_happened(project: pytest.Pytester, backend: list[str]) -> None:
    result = project.runpytest(*QUIET, *backend, "failing")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*DrainError: 1 of the 2 jobs drained from 'orders' failed (pass raise_on_failure=False to inspect *",
            "*2 jobs, 4 runs in 86400s of clock time: 1 completed, 2 retried, 1 failed, 0 lost",
            "*job charge-A1 'charge' in queue 'orders', data={'order': 'A1', 'amount': 1200, *}",
            "*  state: failed for good (dead-lettered); attempts made 3 of 3; last failure: ValueError: card *",
            "*    1. attempt 1 at +0s: raised ValueError: card declined for order A1",
            "*    2. attempt 2 at +10s: raised ValueError: card declined for order A1",
            "*    3. attempt 3 at +30s: raised ValueError: card declined for order A1",
            "*  traceback of run 3:",
            "*      File *shop*, line *, in charge",  # (jqc.testing's wrapper frame is left out)
            "*  log (3 lines):",
            "*    charging order A1, attempt 3",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected a job matching name='charge', data={'order': 'B2'} in queue 'orders', found 0",
            "*enqueued in 'orders' (waiting and delayed, in run order): 2",
            "*  - 'charge' id=charge-A1 data={'order': 'A1', *} delay=0s priority=0 (waiting)  <- data[[]'order'[]] is "
            "'A1', not 'B2'",  # ([[] and []] are fnmatch's escapes for [ and ])
            "*  - 'ask_review' id=1 data=* delay=86400s priority=5 (delayed)  <- name is 'ask_review'",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ValueError: card declined for order A1",
            "*perform_job: the job did not complete",
            "*job 1 'charge' in queue 'jqc-perform-*', data={'order': 'A1', 'amount': 5}",
        ]
    )
    result.stdout.fnmatch_lines(["*DrainError: fault(s) never injected: crash_worker('refund', at='end'); *"])


def test_an_unreachable_server_fails_tests_in_ci_and_skips_them_elsewhere(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = closed_port_url()
    monkeypatch.setenv("CI", "true")
    result = project.runpytest(*QUIET, "--jqc-redis-url", url, "tests/test_enqueueing.py")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines([f"*jqc: Redis at {url} does not answer: *(CI is set: not skipping)*"])
    monkeypatch.delenv("CI")
    result = project.runpytest(*QUIET, "-rs", "--jqc-redis-url", url, "tests/test_enqueueing.py")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines([f"SKIPPED *jqc: Redis at {url} does not answer*"])


def test_the_environment_variable_chooses_the_server_and_the_option_wins(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("JQC_REDIS_URL", closed_port_url())
    result = project.runpytest(*QUIET, "tests/test_enqueueing.py")
    result.assert_outcomes(skipped=4)
    result = project.runpytest(*QUIET, "--jqc-redis-url", "memory://", "tests/test_enqueueing.py")
    result.assert_outcomes(passed=4)


def test_each_test_has_its_own_key_prefix_deleted_afterwards(pytester: pytest.Pytester) -> None:
    url = real_redis_url()
    neighbour = redis.Redis.from_url(url, decode_responses=True)
    neighbour.set("someone-else:key", "kept")  # another user's data in the same database
    record = pytester.path / "prefixes.txt"
    pytester.makepyfile(
        f"""
        def test_one(jqc_connection, jqc_queue):
            jqc_queue("a").add("job", 1)
            open({str(record)!r}, "a").write(jqc_connection.prefix + "\\n")

        def test_two(jqc_connection, jqc_queue):
            jqc_queue("a").add("job", 2)
            assert jqc_queue("a").counts().waiting == 1  # test_one's job is not visible here
            open({str(record)!r}, "a").write(jqc_connection.prefix + "\\n")
        """
    )
    try:
        pytester.runpytest(*QUIET, "-p", "no:asyncio", "--jqc-redis-url", url).assert_outcomes(passed=2)
        prefixes = record.read_text().split()
        assert len(set(prefixes)) == 2 and all(p.startswith("jqctest-") for p in prefixes)
        assert [k for p in prefixes for k in neighbour.scan_iter(match=f"{p}:*")] == []
        assert neighbour.get("someone-else:key") == "kept"
    finally:
        neighbour.delete("someone-else:key")
        neighbour.close()


def test_the_fixtures_are_listed_without_configuration(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", *QUIET, "-p", "no:asyncio")
    result.stdout.fnmatch_lines(["*fixtures defined from jqc_pytest*"])
    for name in FIXTURES:
        result.stdout.fnmatch_lines([f"{name} -- *jqc_pytest*"])
    result = pytester.runpytest("--fixtures", *QUIET, "-p", "no:asyncio", "-p", "no:jqc")
    result.stdout.no_fnmatch_line("jqc_connection*")


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, jqc_pytest\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'jqc', 'redis', 'fakeredis', 'lupa', 'asyncio'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_entry_point_is_installed() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert declared == {"jqc": "jqc_pytest"}
    found = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "jqc"]
    assert found, "jqc's pytest11 entry point is not installed: reinstall jqc (pip install -e .)"
    assert [(ep.value, ep.dist.name if ep.dist else None) for ep in found] == [("jqc_pytest", "jqc")]
    assert found[0].load().__file__ == str(ROOT / "jqc_pytest" / "__init__.py")
