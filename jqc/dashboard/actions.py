"""The dashboard's actions (POST, never registered in read-only mode): pause and resume a queue;
retry, remove, promote, cancel jobs; replay and purge dead letters, one, selected or all matching;
remove a schedule.

Each action checks the CSRF token first, then calls the queue's public API and redirects back
(303) with a notice saying what it did. Bulk actions are bounded by ``Settings.bulk_limit`` jobs
per request; the notice says when more remain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Router

from jqc.connection import Connection
from jqc.engine.arguments import BATCH
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.keys import validate_queue_name
from jqc.errors import InvalidInputError, JqcError

from .pages import mounted_path
from .reads import Settings
from .security import Csrf

__all__ = ["Actions"]

JobAction = Callable[[AsyncQueue, str], Awaitable[object]]

_ONE: dict[str, JobAction] = {
    "retry": lambda q, job_id: q.retry(job_id),
    "remove": lambda q, job_id: q.remove(job_id),
    "cancel": lambda q, job_id: q.cancel(job_id, "cancelled from the dashboard"),  # running: marked
    "promote": lambda q, job_id: q.promote(job_id),
    "replay": lambda q, job_id: q.replay_dead(job_id),
    "purge": lambda q, job_id: q.purge_dead(job_id),
}

_DONE = {
    "retry": "retried",
    "remove": "removed",
    "cancel": "cancelled",
    "promote": "promoted",
    "replay": "replayed",
    "purge": "purged",
}


class Actions:
    """The POST side of one dashboard app."""

    router: Router | None = None  # set by app() once the routes exist

    def __init__(self, conn: Connection, settings: Settings, csrf: Csrf) -> None:
        self.conn = conn
        self.settings = settings
        self.csrf = csrf

    async def _open(self, request: Request) -> tuple[AsyncQueue, FormData] | Response:
        form = await request.form()
        sent = form.get(Csrf.FIELD)
        if not self.csrf.check(request, sent if isinstance(sent, str) else None):
            return PlainTextResponse("refused: missing or wrong CSRF token (reload the page and try again)", 403)
        name = request.path_params["queue"]
        try:
            validate_queue_name(name)
        except InvalidInputError as exc:
            return PlainTextResponse(f"refused: {exc}", 404)
        if self.settings.queues is not None and name not in self.settings.queues:
            return PlainTextResponse(f"refused: queue {name!r} is not shown by this dashboard", 404)
        return self.conn.async_queue(name), form

    def _back(self, request: Request, form: FormData, queue: str, notice: str, error: bool) -> Response:
        assert self.router is not None
        root = mounted_path(request, self.router, "queue", queue=queue)
        prefix = request.scope.get("root_path", "")
        target = form.get("next")
        # Only a path inside this dashboard: never an open redirect to another site.
        if not (isinstance(target, str) and target.startswith(prefix + "/") and not target.startswith("//")):
            target = root
        base, _, query = target.partition("?")
        kept = [part for part in query.split("&") if part and not part.startswith(("notice=", "error="))]
        extra = urlencode({"notice": notice, **({"error": "1"} if error else {})})
        return RedirectResponse(base + "?" + "&".join([*kept, extra]), status_code=303)

    async def pause(self, request: Request) -> Response:
        """Pause (``paused=1``) or resume (``paused=0``) claims from the queue."""
        opened = await self._open(request)
        if isinstance(opened, Response):
            return opened
        queue, form = opened
        if form.get("paused") == "1":
            changed = await queue.pause()
            notice = f"queue {queue.name} paused" if changed else f"queue {queue.name} was paused already"
        else:
            changed = await queue.resume()
            notice = f"queue {queue.name} resumed" if changed else f"queue {queue.name} was not paused"
        return self._back(request, form, queue.name, notice, False)

    async def jobs(self, request: Request) -> Response:
        """``action`` on the selected jobs (form field ``id``, repeated), or ``retry-all`` failed jobs."""
        opened = await self._open(request)
        if isinstance(opened, Response):
            return opened
        queue, form = opened
        action = str(form.get("action", ""))
        if action == "retry-all":
            ids = await queue.retry_failed(self.settings.bulk_limit)
            return self._back(request, form, queue.name, f"{len(ids)} failed job(s) retried", False)
        return await self._each(request, form, queue, action, ("retry", "remove", "cancel", "promote", "replay"))

    async def dead(self, request: Request) -> Response:
        """Replay or purge dead letters: the selected ones, or all matching the page's filter."""
        opened = await self._open(request)
        if isinstance(opened, Response):
            return opened
        queue, form = opened
        action = str(form.get("action", ""))
        if action in ("replay-all", "purge-all"):
            query = str(form.get("q", "") or "")
            code = str(form.get("code", "") or "") or None
            return await self._all_dead(request, form, queue, action.removesuffix("-all"), query, code)
        return await self._each(request, form, queue, action, ("replay", "purge"))

    async def schedules(self, request: Request) -> Response:
        """``action=remove`` deletes schedule ``name`` of the queue (the jobs it added stay)."""
        opened = await self._open(request)
        if isinstance(opened, Response):
            return opened
        queue, form = opened
        if form.get("action") != "remove":
            return PlainTextResponse(f"refused: unknown action {form.get('action')!r}", 400)
        name = str(form.get("name", ""))
        try:
            removed = await queue.remove_schedule(name)
        except JqcError as exc:
            return self._back(request, form, queue.name, f"schedule not removed: {exc}", True)
        if removed:
            return self._back(request, form, queue.name, f"schedule {name} of {queue.name} removed", False)
        return self._back(request, form, queue.name, f"{queue.name} has no schedule {name} (removed already?)", True)

    async def _each(
        self, request: Request, form: FormData, queue: AsyncQueue, action: str, allowed: tuple[str, ...]
    ) -> Response:
        if action not in allowed:
            return PlainTextResponse(f"refused: unknown action {action!r}", 400)
        ids = [value for value in form.getlist("id") if isinstance(value, str)][: self.settings.bulk_limit]
        if not ids:
            return self._back(request, form, queue.name, "nothing selected", True)
        done, failed = 0, []
        for job_id in ids:
            try:
                await _ONE[action](queue, job_id)
                done += 1
            except JqcError as exc:
                failed.append(f"{job_id}: {exc}")
        notice = f"{done} job(s) {_DONE[action]}"
        if failed:
            notice += f"; {len(failed)} refused ({'; '.join(failed[:3])}{'; ...' if len(failed) > 3 else ''})"
        return self._back(request, form, queue.name, notice, bool(failed))

    async def _all_dead(
        self, request: Request, form: FormData, queue: AsyncQueue, action: str, query: str, code: str | None
    ) -> Response:
        limit = self.settings.bulk_limit
        done, offset, more = 0, 0, False
        if action == "purge" and not query and code is None:
            done = await queue.purge_all_dead()
        else:
            while True:
                step = await queue.search("dead", query, code=code, offset=offset, limit=BATCH, scan=BATCH)
                for job in step.jobs:
                    if done >= limit:
                        more = True
                        break
                    try:
                        await _ONE[action](queue, job.id)
                        done += 1
                    except JqcError:
                        offset += 1  # left in place: look past it next time
                if more or step.next_offset is None:
                    break
                # Those handled left the listing, so the next step starts that much earlier.
                offset += step.scanned - len(step.jobs)
        notice = f"{done} dead letter(s) {_DONE[action]}"
        if more:
            notice += f" (the limit per request is {limit}: more remain)"
        return self._back(request, form, queue.name, notice, False)
