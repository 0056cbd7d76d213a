"""The dashboard's pages (GET) and live streams: each reads through :mod:`jqc.dashboard.reads` and
renders a Jinja2 template; a live stream re-renders the part of the page an event changed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Router

from jqc.connection import Connection
from jqc.engine.failures import FailureCode
from jqc.engine.job import Job
from jqc.engine.keys import validate_queue_name
from jqc.engine.results import Event
from jqc.errors import InvalidInputError

from . import reads
from .formatting import ago, duration, pretty, when, zoned
from .live import Hub, stream
from .reads import STATES, Settings
from .security import Csrf

__all__ = ["JOB_ACTIONS", "JOB_PAGE_ACTIONS", "Pages", "mounted_path"]

#: Actions offered on the selected rows of each state's list (none in read-only mode).
JOB_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "waiting": ("remove",),
    "delayed": ("promote", "remove"),
    "active": ("cancel",),
    "completed": ("remove",),
    "failed": ("retry", "remove"),
    "dead": ("replay", "purge"),
}

#: Actions offered on a job's own page, by its state. ``cancel`` (``Queue.cancel``) removes a job
#: that is not running; a running one is marked, and its worker stops it at its next lock renewal.
JOB_PAGE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "waiting": ("cancel",),
    "delayed": ("promote", "cancel"),
    "active": ("cancel",),
    "completed": ("remove",),
    "failed": ("retry", "replay", "remove"),
}


def mounted_path(request: Request, router: Router, name: str, **params: str) -> str:
    """``router``'s path for route ``name`` with the prefix the request came in under (root_path)."""
    return str(request.scope.get("root_path", "")) + str(router.url_path_for(name, **params))


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def _details(fields: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(fields.items()) if k not in ("e", "j", "t"))


def environment() -> jinja2.Environment:
    """The templates (packaged with jqc), HTML-escaped, with the dashboard's filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jqc.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        duration=duration, when=when, pretty=pretty, compact=_compact, details=_details, ago=ago, zoned=zoned
    )
    return env


def _options(job: Job) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(job.options).items() if v not in (None, {})}


class NotFound(Exception):
    """A page for a queue or job that does not exist."""


class Pages:
    """The GET side of one dashboard app: its connection, settings, templates, CSRF and live hub."""

    def __init__(self, conn: Connection, settings: Settings, csrf: Csrf, hub: Hub) -> None:
        self.conn = conn
        self.settings = settings
        self.csrf = csrf
        self.hub = hub
        self.names = reads.QueueNames()
        self.env = environment()

    # -- rendering ----------------------------------------------------------------------------------

    router: Router | None = None  # set by app() once the routes exist

    def path(self, request: Request, name: str, **params: str) -> str:
        """The path of the dashboard's route ``name``, under the prefix the dashboard is mounted at.

        Resolved on the dashboard's own routes, never the host app's (whose names may clash, and
        which may mount several dashboards).
        """
        assert self.router is not None
        return mounted_path(request, self.router, name, **params)

    def _base(self, request: Request) -> dict[str, Any]:
        def url(name: str, **params: str) -> str:
            return self.path(request, name, **params)

        def static(path: str) -> str:
            return self.path(request, "static", path=path)

        def job_url(queue: str, job_id: str) -> str:
            return url("job", queue=queue) + "?" + urlencode({"id": job_id})

        notice = request.query_params.get("notice", "")
        return {
            "conn": self.conn,
            "settings": self.settings,
            "url": url,
            "static": static,
            "job_url": job_url,
            "now": self.conn.clock.now(),
            "states": STATES,
            "notice": notice[:300],
            "notice_error": request.query_params.get("error") == "1",
            "nav": "",
        }

    def fragment(self, request: Request, template: str, **context: Any) -> str:
        """A template rendered with the page context (for live updates)."""
        return self.env.get_template(template).render({**self._base(request), "csrf_token": "", **context})

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        """A full page, with the CSRF cookie set when the browser has none yet."""
        token, fresh = self.csrf.token_for(request)
        html = self.env.get_template(template).render({**self._base(request), "csrf_token": token, **context})
        response = HTMLResponse(html, status_code=status_code)
        if fresh:
            self.csrf.set_cookie(response, token, request)
        return response

    def not_found(self, request: Request, message: str) -> Response:
        """The 404 page."""
        return self.render(request, "error.html", 404, status=404, heading="Not found", message=message)

    async def _queue(self, request: Request) -> str:
        return await self._shown(str(request.path_params["queue"]))

    async def _shown(self, name: str) -> str:
        try:
            validate_queue_name(name)
        except InvalidInputError as exc:
            raise NotFound(str(exc)) from None
        if self.settings.queues is not None and name not in self.settings.queues:
            raise NotFound(f"queue {name!r} is not shown by this dashboard")
        if not await self.conn.async_queue(name).exists():
            raise NotFound(f"there is no queue {name!r} under prefix {self.conn.prefix!r}")
        return name

    # -- pages --------------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        """Every queue: counts, throughput, wait and run percentiles with charts, health, paused."""
        names = await self.names.get(self.conn, self.settings)
        rows = [await reads.queue_row(self.conn, name, self.settings) for name in names]
        return self.render(request, "overview.html", rows=rows, nav="overview")

    async def queue(self, request: Request) -> Response:
        """One queue: counts, jobs per state a page at a time, search, bulk actions."""
        try:
            name = await self._queue(request)
        except NotFound as exc:
            return self.not_found(request, str(exc))
        params = request.query_params
        state = params.get("state", "waiting")
        if state not in STATES:
            return self.not_found(request, f"no state {state!r}; the states are {', '.join(STATES)}")
        query = params.get("q", "").strip()
        code = params.get("code") or None
        if code is not None and code not in {c.value for c in FailureCode}:
            code = None
        try:
            offset = max(0, int(params.get("offset", "0")))
        except ValueError:
            offset = 0
        aq = self.conn.async_queue(name)
        counts = await aq.counts()
        listing = await reads.listing(self.conn, name, state, self.settings, offset=offset, query=query, code=code)
        base = self.path(request, "queue", queue=name)

        def page_url(at: int) -> str:
            args = {"state": state, "offset": str(at)}
            if query:
                args["q"] = query
            if code:
                args["code"] = code
            return base + "?" + urlencode(args)

        size = self.settings.page_size
        total = getattr(counts, state)
        last_offset = max(0, (max(total, 1) - 1) // size * size)
        here = page_url(offset)
        return self.render(
            request,
            "queue.html",
            name=name,
            counts=counts,
            state=state,
            listing=listing,
            page_url=page_url,
            last_offset=last_offset,
            here=here,
            codes=[c.value for c in FailureCode],
            job_actions=JOB_ACTIONS,
            nav="overview",
        )

    async def job(self, request: Request) -> Response:
        """One job: data, options, attempts, error and traceback, progress, timeline, log."""
        try:
            name = await self._queue(request)
        except NotFound as exc:
            return self.not_found(request, str(exc))
        job_id = request.query_params.get("id", "")
        try:
            view = await reads.job_view(self.conn, name, job_id, self.settings) if job_id else None
        except InvalidInputError:
            view = None
        if view is None:
            return self.not_found(request, f"queue {name!r} has no job {job_id!r} (removed, or never added)")
        return self.render(request, "job.html", **self._job_context(request, name, view))

    def _job_context(self, request: Request, name: str, view: reads.JobView) -> dict[str, Any]:
        query = urlencode({"id": view.job.id})
        return {
            "name": name,
            "view": view,
            "options": _options(view.job),
            "job_page_actions": JOB_PAGE_ACTIONS,
            "back": self.path(request, "job", queue=name) + "?" + query,
            "live_url": self.path(request, "live_job", queue=name) + "?" + query,
            "nav": "overview",
        }

    async def workers(self, request: Request) -> Response:
        """Live workers of every queue, flagged when connected but not consuming."""
        names = await self.names.get(self.conn, self.settings)
        rows = await reads.worker_rows(self.conn, names, self.settings)
        return self.render(request, "workers.html", rows=rows, nav="workers")

    async def schedules(self, request: Request) -> Response:
        """Every queue's schedules (or one queue's, ``?queue=``): timing, next ticks, last tick, policies."""
        only = request.query_params.get("queue", "")
        if only:
            try:
                names = [await self._shown(only)]
            except NotFound as exc:
                return self.not_found(request, str(exc))
        else:
            names = await self.names.get(self.conn, self.settings)
        listing = await reads.schedule_rows(self.conn, names, self.settings)
        here = self.path(request, "schedules") + ("?" + urlencode({"queue": only}) if only else "")
        return self.render(request, "schedules.html", listing=listing, only=only, here=here, nav="schedules")

    async def autoscaler(self, request: Request) -> Response:
        """The autoscaler's last decision per queue, with its reasons and numbers."""
        names = await self.names.get(self.conn, self.settings)
        rows = await reads.decisions(self.conn, names)
        return self.render(request, "autoscaler.html", rows=rows, nav="autoscaler")

    # -- live ---------------------------------------------------------------------------------------

    def _events(self, request: Request, queues: list[str], render: Any) -> Response:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(self.hub, queues, render), media_type="text/event-stream", headers=headers)

    async def live_overview(self, request: Request) -> Response:
        """Overview rows, re-rendered after events of their queue."""
        names = await self.names.get(self.conn, self.settings)

        async def render(changed: set[str], _: list[Event] | None) -> list[tuple[str, str]]:
            out = []
            for name in sorted(changed):
                row = await reads.queue_row(self.conn, name, self.settings)
                out.append((f"row:{name}", self.fragment(request, "_overview_row.html", row=row)))
            return out

        return self._events(request, names, render)

    async def live_queue(self, request: Request) -> Response:
        """A queue page's counts, re-read after events of the queue."""
        try:
            name = await self._queue(request)
        except NotFound as exc:
            return self.not_found(request, str(exc))

        async def render(_: set[str], __: list[Event] | None) -> list[tuple[str, str]]:
            counts = await self.conn.async_queue(name).counts()
            return [("counts", self.fragment(request, "_counts.html", counts=counts))]

        return self._events(request, [name], render)

    async def live_job(self, request: Request) -> Response:
        """A job page's body, re-read after events of that job."""
        try:
            name = await self._queue(request)
        except NotFound as exc:
            return self.not_found(request, str(exc))
        job_id = request.query_params.get("id", "")
        token, _ = self.csrf.token_for(request)

        async def render(_: set[str], events: list[Event] | None) -> list[tuple[str, str]]:
            if events is not None and not any(e.job_id == job_id for e in events):
                return []
            view = await reads.job_view(self.conn, name, job_id, self.settings)
            if view is None:
                return [("job", "<p data-testid='job-gone'>This job was removed.</p>")]
            context = self._job_context(request, name, view)
            html = self.env.get_template("_job.html").render({**self._base(request), "csrf_token": token, **context})
            return [("job", html)]

        return self._events(request, [name], render)
