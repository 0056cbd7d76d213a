"""A password in the URL never shows: not in any output, log line, exception message, traceback or repr.

One distinctive password (with characters that fool URL parsers: ``/ ? # @ :``) is put, percent-
encoded, into the URL of a private server's ACL user, and then everything an operator or a log
shipper can see is collected while jqc works and fails: an in-process worker with failing jobs
(logged as text and JSON at DEBUG), the ``jqc`` commands (``stats``, ``jobs``, ``job``, ``workers``,
``doctor``, ``health``, ``metrics show``, ``dlq list``, ``worker``), the Prometheus exporter over
HTTP, the reprs of every object on the way, and the errors of a wrong password, an unreachable
server, a TLS failure and malformed URLs, with their whole tracebacks.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import subprocess
import sys
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import jqc
from jqc.cli import main
from jqc.coordinator import doctor, prometheus
from jqc.worker.logs import JsonFormatter
from tests.security.tls_servers import Certs, TlsRedis
from tests.worker.processes import ROOT, free_port

pytestmark = pytest.mark.timeout(300)

TOKEN = secrets.token_hex(8)
PASSWORD = f"Pw{TOKEN}/q?h#a@c:Zq"
PIECES = (PASSWORD, quote(PASSWORD, safe=""), TOKEN, "Zq")  # any of these in the open is a leak
USER = "leak-test"


class Seen:
    """Everything that became visible, as text."""

    def __init__(self, minimum: int = 1) -> None:
        self.texts: list[tuple[str, str]] = []
        self.minimum = minimum  # texts a test must have collected (so an empty collection cannot pass)

    def add(self, where: str, value: object) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def error(self, where: str, exc: BaseException) -> None:
        self.add(f"{where}: str", str(exc))
        self.add(f"{where}: repr", repr(exc))
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))

    def check(self) -> None:
        leaks = [(where, piece) for where, text in self.texts for piece in PIECES if piece in text]
        assert not leaks, leaks
        assert len(self.texts) >= self.minimum, len(self.texts)


class Capture(logging.Handler):
    """Every log record: formatted as text and as JSON, and every attribute it carries."""

    def __init__(self, seen: Seen) -> None:
        super().__init__(logging.DEBUG)
        self.seen = seen
        self.text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.add(f"log {record.name}", self.text.format(record))
        self.seen.add(f"log {record.name} (json)", self.json.format(record))
        self.seen.add(f"log {record.name} (record)", vars(record))


@pytest.fixture
def seen() -> Iterator[Seen]:
    found = Seen()
    handler = Capture(found)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield found
    root.removeHandler(handler)
    root.setLevel(level)
    found.check()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsRedis]:
    """A private plain-text server on a TCP port with one ACL user whose password is ``PASSWORD``."""
    from tests.security.tls_servers import start_tls_redis

    started = start_tls_redis(tmp_path_factory.mktemp("leaks"), "leaks", certs, None)
    client = started.client()
    client.execute_command("ACL", "SETUSER", USER, "reset", "on", ">" + PASSWORD, "~*", "&*", "+@all")
    client.close()
    yield started
    started.kill()


def url_of(server: TlsRedis, password: str = PASSWORD, *, port: int | None = None, scheme: str = "redis") -> str:
    return f"{scheme}://{USER}:{quote(password, safe='')}@127.0.0.1:{port or server.port}/0"


def cli(seen: Seen, argv: list[str], *, env_url: str | None = None) -> int:
    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("JQC_REDIS_URL")
    if env_url is not None:
        os.environ["JQC_REDIS_URL"] = env_url
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = main(argv, out=out)
    except SystemExit as exc:  # argparse usage errors
        status = int(exc.code or 0)
    finally:
        if env_url is not None:
            if old is None:
                os.environ.pop("JQC_REDIS_URL", None)
            else:
                os.environ["JQC_REDIS_URL"] = old
    seen.add(f"jqc {' '.join(argv[:2])} stdout", out.getvalue())
    seen.add(f"jqc {' '.join(argv[:2])} stderr", err.getvalue())
    return status


def flaky(ctx: jqc.SyncJobContext) -> Any:
    if ctx.data % 3 == 0:
        raise ValueError(f"job {ctx.data} is broken")
    return {"ok": ctx.data}


def test_working_inspecting_and_exporting_never_show_the_password(server: TlsRedis, seen: Seen) -> None:
    seen.minimum = 100
    url = url_of(server)
    conn = jqc.connect(url)
    queue = conn.queue("photos")
    queue.add_bulk([("flaky", i) for i in range(12)])
    worker = jqc.Worker(queue, flaky, concurrency=3, connect_timeout=10)
    seen.add("worker repr (before)", worker)
    stats = worker.run(burst=True)
    assert stats.completed == 8 and stats.failed == 4
    for name, value in {
        "connection": conn, "safe_url": conn.safe_url, "factory": conn.factory, "config": conn.factory.config,
        "config str": str(getattr(conn.factory, "config", "")), "backend": conn.backend, "queue": queue,
        "async queue": conn.async_queue("photos"), "worker": worker, "stats": stats,
        "sync client": conn.sync_client(), "pool": conn.sync_client().connection_pool,
        "dead letters": queue.dead_letters(), "failed job": queue.list_jobs("failed"), "counts": queue.counts(),
    }.items():  # fmt: skip
        seen.add(name, value)
        seen.add(name + " (str)", str(value))

    async def asynchronous() -> None:
        backend = conn.async_backend()
        seen.add("async backend", backend)
        seen.add("async transport", getattr(backend, "transport", None))
        await conn.async_queue("photos").counts()
        await conn.aclose()

    asyncio.run(asynchronous())
    job_id = queue.list_jobs("failed").jobs[0].id
    for argv in (
        ["stats"], ["jobs", "photos", "--state", "failed"], ["job", "photos", job_id], ["workers", "photos"],
        ["doctor"], ["doctor", "--json"], ["health", "photos"], ["metrics", "show"], ["dlq", "list", "photos"],
    ):  # fmt: skip
        assert cli(seen, [*argv, "--url", url]) in (0, 1, 2), argv
    assert cli(seen, ["stats"], env_url=url) == 0
    seen.add("doctor report", doctor.run(conn).to_dict())
    seen.add("exposition", prometheus.render(conn, ["photos"]))
    http, _ = prometheus.serve(conn, 0, "127.0.0.1", ["photos"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http.server_port}/metrics", timeout=30) as answer:
            seen.add("exporter over HTTP", answer.read().decode())
    finally:
        http.shutdown()
        http.server_close()
    conn.close()


def test_the_worker_command_never_shows_the_password(server: TlsRedis, seen: Seen, tmp_path: Path) -> None:
    seen.minimum = 4
    url = url_of(server)
    conn = jqc.connect(url)
    conn.queue("photos").add_bulk([("sleep", {"ms": 1}) for _ in range(5)])
    for log_format, extra in (("text", ["--url", url]), ("json", [])):  # the URL in argv, then in the environment
        env = dict(os.environ, JQC_REDIS_URL=url)
        done = subprocess.run(
            [sys.executable, "-m", "jqc", "worker", "tests.worker.chaos_handlers:steady", "--queue", "photos",
             "--burst", "--log-format", log_format, "--log-level", "debug", "--connect-timeout", "20", *extra],
            capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "started on photos" in done.stderr or '"started"' in done.stderr, done.stderr
        seen.add(f"jqc worker {log_format} stdout", done.stdout)
        seen.add(f"jqc worker {log_format} stderr", done.stderr)
    conn.close()


def test_connection_failures_never_show_the_password(server: TlsRedis, tls_server: TlsRedis, seen: Seen) -> None:
    seen.minimum = 60
    wrong = url_of(server, PASSWORD[::-1])
    down = url_of(server, port=free_port())
    tls = url_of(tls_server, scheme="rediss")  # the CA is unknown: a TLS error
    cases: dict[str, tuple[str, type[jqc.JqcError]]] = {
        "wrong password": (wrong, jqc.AuthenticationFailedError),
        "server down": (down, jqc.ConnectionLostError),
        "tls": (tls, jqc.TlsCertificateError),
    }
    for name, (url, kind) in cases.items():
        seen.error(f"{name}: connect", capture(lambda u=url: jqc.connect(u, socket_connect_timeout=2).ping(), kind))

        async def asynchronous(url: str = url) -> None:
            conn = jqc.connect(url, socket_connect_timeout=2)
            try:
                await conn.async_queue("photos").add("x")
            finally:
                await conn.aclose()

        seen.error(f"{name}: async", capture(lambda: asyncio.run(asynchronous()), kind))
        worker = jqc.Worker(jqc.connect(url, socket_connect_timeout=1).queue("photos"), flaky, connect_timeout=1.5)
        seen.error(f"{name}: worker", capture(lambda w=worker: w.run(burst=True), jqc.ConnectionLostError))
        for argv in (["stats"], ["health", "photos"], ["workers", "photos"]):
            assert cli(seen, [*argv, "--url", url]) != 0, (name, argv)
        for argv in (["doctor"], ["metrics", "show"]):  # they report the failure (a finding, jqc_up 0)
            cli(seen, [*argv, "--url", url])
        seen.add(f"{name}: doctor", doctor.run(jqc.connect(url, socket_connect_timeout=1)).to_dict())
        seen.add(f"{name}: exposition", prometheus.render(jqc.connect(url, socket_connect_timeout=1), ["photos"]))


@pytest.mark.parametrize(
    "template",
    [
        "redis://u:{raw}@127.0.0.1:6379/0",  # unencoded: the parser splits it in odd places
        "redis://u:{raw}@127.0.0.1:99999/0",
        "redis://u:{enc}@127.0.0.1:6379/db",
        "redis://u:{enc}@127.0.0.1:6379/0?nope=1",
        "redis://127.0.0.1:6379/0?password={enc}",
        "redis:/u:{enc}@127.0.0.1:6379/0",
        "redis//u:{enc}@127.0.0.1:6379/0",
        "redis://{enc}@127.0.0.1:6379/0",
        "rediss://u:{enc}@127.0.0.1:6379/0?socket_timeout=x",
        "bogus://u:{enc}@127.0.0.1:6379/0",
        "redis://u:{enc}@[::1:6379/0",
        "unix://u:{enc}@",
    ],
)
def test_malformed_urls_never_show_the_password(template: str, seen: Seen) -> None:
    url = template.format(raw=PASSWORD, enc=quote(PASSWORD, safe=""))
    try:
        conn = jqc.connect(url)
    except jqc.InvalidUrlError as exc:
        seen.error("connect", exc)
    else:  # a URL that parses (a user name only): its repr must still hide what may be a password
        seen.add("repr", conn)
        seen.add("safe_url", conn.safe_url)
    cli(seen, ["stats", "--url", url])
    seen.add("redact", jqc.connection.redact(url))
    seen.minimum = 4


def capture(action: Callable[[], Any], kind: type[BaseException]) -> BaseException:
    with pytest.raises(kind) as info:
        action()
    return info.value


def test_the_checker_finds_a_planted_leak() -> None:
    found = Seen()
    found.add("planted", {"url": f"redis://u:{quote(PASSWORD, safe='')}@h:1/0"})
    with pytest.raises(AssertionError, match="planted"):
        found.check()
