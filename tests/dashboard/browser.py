"""What the browser tests and ``make screenshots`` share: Debian's Chromium driven by Playwright,
the dashboard served by uvicorn in a thread (mounted under prefixes of a host app, as a user would
mount it), and a jqc worker in a thread of its own.

Playwright's own browser download is not used: the browser is the system's Chromium
(``/usr/bin/chromium``, or ``$JQC_CHROMIUM``), which ``.ci/run`` installs when it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

import jqc
import jqc.dashboard

CHROMIUM = os.environ.get("JQC_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PORTS = range(8600, 8700)  # the dashboard tests' own ports, loopback only


def launch_options() -> dict[str, Any]:
    """Keyword arguments of ``playwright.chromium.launch`` for the system Chromium."""
    return {"executable_path": CHROMIUM, "args": LAUNCH_ARGS, "headless": True}


def missing_browser() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set JQC_CHROMIUM)"
    return None


def bound_socket() -> socket.socket:
    """A listening socket on the first free port of :data:`PORTS` (127.0.0.1)."""
    for port in PORTS:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(64)
        return sock
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def host_app(conn: jqc.Connection, **options: Any) -> Starlette:
    """A host application with the dashboard mounted at ``/jobs`` and a read-only one at ``/ro``."""

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse("<h1>the host app</h1><a href='/jobs/'>jobs</a>")

    return Starlette(
        routes=[
            Route("/", home),
            Mount("/jobs", app=jqc.dashboard.app(conn, **options)),
            Mount("/ro", app=jqc.dashboard.app(conn, read_only=True, **options)),
        ]
    )


class ServerThread:
    """uvicorn serving an ASGI app on 127.0.0.1 in a thread of its own (and its own event loop)."""

    def __init__(self, app: Any) -> None:
        self.sock = bound_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            self.thread.join(0.05)
        raise RuntimeError("the dashboard server did not start within 10 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@contextlib.contextmanager
def worker_thread(queue: jqc.Queue, handler: Callable[..., Any], **options: Any) -> Iterator[None]:
    """A jqc worker on ``queue`` in a thread with its own event loop, while the context lasts."""
    stop = threading.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        async with jqc.Worker(queue, handler, heartbeat=1, idle_block=0.5, **options):
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield
    finally:
        stop.set()
        thread.join(15)
    if failure:
        raise failure[0]
