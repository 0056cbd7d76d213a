"""The plugin's marker, options and async runner, as a user's project meets them (through pytester)."""

from __future__ import annotations

import re

import pytest
import redis

from tests.testing.conftest import QUIET, real_redis_url

NO_ASYNC = ("-p", "no:asyncio")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    monkeypatch.delenv("CI", raising=False)
    return pytester


BACKEND_TESTS = """
import pytest

KIND = {"embedded": "embedded", "redis": "redis"}


@pytest.mark.jqc(backend="redis")
def test_on_redis(jqc_connection, jqc_backend):
    assert jqc_backend == "redis" and jqc_connection.kind == "redis"


@pytest.mark.jqc(backend="embedded")
def test_on_embedded(jqc_connection):
    assert jqc_connection.kind == "embedded"


@pytest.mark.jqc(backend=["embedded", "redis"])
def test_on_each(jqc_queue, jqc_backend, jqc_connection):
    jqc_queue("q").add("job", 1)
    assert jqc_connection.kind == KIND[jqc_backend] and jqc_queue("q").counts().waiting == 1


@pytest.mark.parametrize("jqc_backend", ["embedded", "redis"], indirect=True)
def test_parametrized(jqc_connection, jqc_backend):
    assert jqc_connection.kind == KIND[jqc_backend]


def test_default(jqc_connection):
    assert jqc_connection.kind == "redis"  # a URL is configured
"""


def test_one_module_runs_on_both_backends(project: pytest.Pytester) -> None:
    url = real_redis_url()
    project.makeini(f"[pytest]\njqc_redis_url = {url}\n")
    project.makepyfile(test_backends=BACKEND_TESTS)
    result = project.runpytest(*QUIET, *NO_ASYNC, "-v")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*test_on_each?embedded? PASSED*", "*test_on_each?redis? PASSED*"])
    client = redis.Redis.from_url(url)
    try:
        assert list(client.scan_iter(match="jqctest-*")) == []  # every test's keys were deleted
    finally:
        client.close()


def test_without_a_url_redis_tests_skip_or_fail_in_ci(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_backends=BACKEND_TESTS.replace('"redis"  # a URL', '"embedded"  # no URL'))
    result = project.runpytest(*QUIET, *NO_ASYNC, "-rs")
    result.assert_outcomes(passed=4, skipped=3)
    result.stdout.fnmatch_lines(["*jqc: backend 'redis' needs a Redis URL: pass --jqc-redis-url*"])
    monkeypatch.setenv("CI", "1")
    project.runpytest(*QUIET, *NO_ASYNC).assert_outcomes(passed=4, errors=3)


def test_the_url_option_beats_the_variable_which_beats_the_ini(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = real_redis_url()
    project.makeini("[pytest]\njqc_redis_url = redis://127.0.0.1:1/0\n")  # nothing listens there
    project.makepyfile("def test_kind(jqc_connection):\n    assert jqc_connection.kind == 'redis'\n")
    project.runpytest(*QUIET, *NO_ASYNC).assert_outcomes(skipped=1)
    monkeypatch.setenv("JQC_REDIS_URL", url)
    project.runpytest(*QUIET, *NO_ASYNC).assert_outcomes(passed=1)
    monkeypatch.setenv("JQC_REDIS_URL", "redis://127.0.0.1:1/0")
    project.runpytest(*QUIET, *NO_ASYNC, "--jqc-redis-url", url).assert_outcomes(passed=1)


def test_a_marker_written_wrong_is_a_typed_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_list="""
        import pytest

        @pytest.mark.jqc(backend=["embedded", "sqlite"])
        def test_bad_list(jqc_connection):
            pass
        """,
        test_others="""
        import pytest

        @pytest.mark.jqc(backend="mongo")
        def test_bad_backend(jqc_connection):
            pass

        @pytest.mark.jqc(backends="redis")
        def test_bad_keyword():
            pass

        @pytest.mark.jqc(seed=-1)
        def test_bad_seed():
            pass
        """,
    )
    result = project.runpytest(*QUIET, *NO_ASYNC, "test_list.py")
    result.assert_outcomes(errors=1)  # (a collection error: the parametrization cannot be made)
    result.stdout.fnmatch_lines(["*InvalidOptionError: unknown jqc backend 'sqlite': use 'embedded' or 'redis'*"])
    result = project.runpytest(*QUIET, *NO_ASYNC, "test_others.py")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*InvalidOptionError: unknown jqc backend 'mongo'*"])
    result.stdout.fnmatch_lines(["*InvalidOptionError: @pytest.mark.jqc got unknown keyword(s) ?'backends'?*"])
    result.stdout.fnmatch_lines(["*InvalidOptionError: @pytest.mark.jqc(seed=...) must be an int >= 0*"])


JITTER_TEST = """
import jqc
from jqc.testing import drain


def test_jitter(jqc_queue, jqc_seed, jqc_rng):
    q = jqc_queue("jitter")
    q.add("flaky", None, attempts=4, backoff=jqc.Backoff.exponential(100, jitter=0.5))

    def flaky(ctx):
        if ctx.attempt < 4:
            raise ConnectionError("busy")
        return "ok"

    result = drain(q, flaky)
    times = [round(run.started_at - result.started_at, 3) for run in result.jobs[0].runs]
    print(f"SEED={jqc_seed} TIMES={times} DRAW={jqc_rng.random()}")
    assert FAIL is False
"""


def _seed_and_times(result: pytest.RunResult) -> tuple[int, str]:
    [line] = [line for line in result.outlines if "SEED=" in line]
    found = re.search(r"SEED=(\d+) (TIMES=.*)", line)
    assert found, line
    return int(found.group(1)), found.group(2)


def test_the_seed_is_printed_and_replays(project: pytest.Pytester) -> None:
    project.makepyfile(test_jitter=JITTER_TEST.replace("FAIL", "False"))
    default = project.runpytest(*QUIET, *NO_ASYNC, "-s")
    default.stdout.fnmatch_lines(["jqc: seed 0 (--jqc-seed=0 replays this run's random choices)"])
    assert _seed_and_times(default) == _seed_and_times(project.runpytest(*QUIET, *NO_ASYNC, "-s"))

    fresh = project.runpytest(*QUIET, *NO_ASYNC, "-s", "--jqc-seed", "random")
    seed, times = _seed_and_times(fresh)
    fresh.stdout.fnmatch_lines([f"jqc: seed {seed} (--jqc-seed={seed} replays this run's random choices)"])
    assert _seed_and_times(project.runpytest(*QUIET, *NO_ASYNC, "-s", f"--jqc-seed={seed}")) == (seed, times)

    project.makeini("[pytest]\njqc_seed = 1234\n")
    from_ini = project.runpytest(*QUIET, *NO_ASYNC, "-s")
    assert _seed_and_times(from_ini)[0] == 1234
    assert _seed_and_times(project.runpytest(*QUIET, *NO_ASYNC, "-s", "--jqc-seed", "99"))[0] == 99  # option wins


def test_a_failed_test_reports_its_seed(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_jitter=JITTER_TEST.replace("FAIL", "True"),
        test_marked="""
            import pytest

            @pytest.mark.jqc(seed=7)
            def test_marked(jqc_seed):
                assert jqc_seed == 8

            def test_unrelated():
                assert False
        """,
    )
    result = project.runpytest(*QUIET, *NO_ASYNC, "--jqc-seed", "42")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*_ test_jitter _*",
            "*- jqc -*",
            "jqc seed 42 (this test's random stream: backoff jitter, worker ids); it replays with --jqc-seed=42",
            "*_ test_marked _*",
            "*- jqc -*",
            "jqc seed 7 (this test's random stream*); it replays with @pytest.mark.jqc(seed=...)",
        ]
    )
    assert result.stdout.str().count("- jqc -") == 2  # not for a test that did not use jqc

    project.makeini("[pytest]\njqc_seed = many\n")
    bad = project.runpytest(*QUIET, *NO_ASYNC)
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(["*InvalidOptionError: the jqc_seed ini option must be an int >= 0 or 'random'*"])


ASYNC_TESTS = """
import jqc
import pytest
from jqc.testing import adrain, assert_enqueued


async def send(ctx: jqc.JobContext) -> str:
    await ctx.log("sending")
    return f"sent {ctx.data} at {ctx.now() - jqc.clock.VIRTUAL_EPOCH:g}"


async def test_async_queue_and_handler(jqc_async_queue, jqc_clock):
    mail = jqc_async_queue("mail")
    await mail.add("welcome", "ann", delay=60)
    assert_enqueued(mail, name="welcome", delay=60)
    result = await adrain(mail, send)
    assert result.results == ["sent ann at 60"] and jqc_clock.now() == jqc.clock.VIRTUAL_EPOCH + 60


@pytest.mark.jqc
async def test_marked_without_fixtures():
    conn = jqc.connect(clock=jqc.VirtualClock())
    q = conn.async_queue("q")
    await q.add("job", 1)
    assert (await adrain(q, send)).results == ["sent 1 at 0"]
    await conn.aclose()
"""


def test_async_tests_run_without_pytest_asyncio(project: pytest.Pytester, backend: list[str]) -> None:
    project.makepyfile(test_async=ASYNC_TESTS)
    project.runpytest(
        *QUIET, *NO_ASYNC, *backend, "-W", "error::pytest.PytestUnraisableExceptionWarning"
    ).assert_outcomes(passed=2)


def test_async_tests_run_with_pytest_asyncio_too(project: pytest.Pytester, backend: list[str]) -> None:
    project.makepyfile(
        test_async=ASYNC_TESTS.replace("async def test_async_queue", "@pytest.mark.asyncio\nasync def test_async_queue")
    )
    project.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    project.runpytest(*QUIET, *backend).assert_outcomes(passed=2)  # one by pytest-asyncio, one by jqc
    project.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    project.runpytest(*QUIET, *backend).assert_outcomes(passed=2)  # both by pytest-asyncio


def test_the_inline_marker(project: pytest.Pytester, backend: list[str]) -> None:
    project.makepyfile(
        """
        import pytest

        def double(ctx):
            return ctx.data * 2

        @pytest.mark.jqc(inline={"double": double})
        def test_inline(jqc_queue, jqc_connection):
            assert jqc_queue("math").add("double", 21).result == 42
            assert jqc_connection.queue("other").add("double", 1).result == 2

        @pytest.mark.jqc(inline={"double": double})
        async def test_inline_async(jqc_async_queue):
            assert (await jqc_async_queue("math").add("double", 4)).result == 8
        """
    )
    project.runpytest(*QUIET, *NO_ASYNC, *backend).assert_outcomes(passed=2)


def test_the_new_fixtures_and_the_marker_are_listed(project: pytest.Pytester) -> None:
    listing = project.runpytest("--fixtures", *QUIET, *NO_ASYNC)
    for name in ("jqc_backend", "jqc_seed", "jqc_rng"):
        listing.stdout.fnmatch_lines([f"{name} -- *jqc_pytest*"])
    markers = project.runpytest("--markers", *QUIET, *NO_ASYNC)
    markers.stdout.fnmatch_lines(["@pytest.mark.jqc(backend=None, inline=None, seed=None): *"])
    options = project.runpytest("--help", *QUIET, *NO_ASYNC)
    options.stdout.fnmatch_lines(["*--jqc-seed=SEED*", "*jqc_redis_url (string):*", "*jqc_seed (string):*"])
