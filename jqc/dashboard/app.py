"""``jqc.dashboard.app()``: the Starlette application, assembled from pages, actions, live streams
and static files, ready to serve alone or to mount under a prefix of another ASGI app."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from jqc.connection import Connection
from jqc.coordinator.health import HealthRules
from jqc.engine.keys import validate_queue_name
from jqc.errors import InvalidOptionError

from .actions import Actions
from .live import Hub
from .pages import Pages
from .reads import Settings
from .security import AuthGate, AuthHook, Csrf

__all__ = ["app"]


def _positive(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidOptionError(f"{name} must be a positive number, not {value!r}")


def app(
    conn: Connection,
    *,
    read_only: bool = False,
    auth: AuthHook | None = None,
    csrf_secret: bytes | str | None = None,
    queues: Iterable[str] | None = None,
    title: str = "jqc",
    page_size: int = 50,
    search_scan: int = 500,
    bulk_limit: int = 10_000,
    timeline_events: int = 5000,
    health_rules: HealthRules | None = None,
    idle_after: float | None = None,
    live_block: float = 5.0,
) -> Starlette:
    """The dashboard of the queues on ``conn``, as an ASGI application.

    Serve it alone (``jqc dashboard``, or ``uvicorn``) or mount it in your app under any prefix
    (``app.mount("/jobs", jqc.dashboard.app(conn))``): every link it renders is relative to where it
    is mounted.

    - ``read_only``: no action routes at all (POSTs are refused) and no buttons; reading needs only
      the Redis ACL ``observer`` role (``jqc acl --role observer``).
    - ``auth``: a hook called with every request (see :mod:`jqc.dashboard.security`); e.g.
      :func:`jqc.dashboard.basic_auth`. None: no authentication (put it behind your own).
    - ``csrf_secret``: signs the CSRF cookie; default a random secret per app object (so give
      one when several processes serve the same dashboard).
    - ``queues``: show only these queues (default: every queue under the connection's prefix).
    - ``page_size``: jobs per page; ``search_scan``: entries one search step looks at;
      ``bulk_limit``: jobs one bulk action handles; ``timeline_events``: event-stream entries a
      job page looks back through for the job's timeline; ``health_rules``: how health is judged;
      ``idle_after``: seconds without a claim attempt reaching the server, while jobs wait and the
      worker has a free slot, before it is flagged (None: each worker's own ``stuck_after``);
      ``live_block``: seconds each event-stream read blocks on the server.
    """
    if not isinstance(conn, Connection):
        raise InvalidOptionError(f"conn must come from jqc.connect(), not {conn!r}")
    if not isinstance(read_only, bool):
        raise InvalidOptionError(f"read_only must be a bool, not {read_only!r}")
    if auth is not None and not callable(auth):
        raise InvalidOptionError(f"auth must be a callable taking the request, not {auth!r}")
    sizes = (page_size, "page_size"), (search_scan, "search_scan"), (bulk_limit, "bulk_limit")
    for value, name in (*sizes, (timeline_events, "timeline_events")):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise InvalidOptionError(f"{name} must be an int between 1 and 100000, not {value!r}")
    if idle_after is not None:
        _positive(idle_after, "idle_after")
    _positive(live_block, "live_block")
    shown = None if queues is None else tuple(validate_queue_name(name) for name in queues)
    settings = Settings(
        read_only=read_only,
        queues=shown,
        page_size=page_size,
        search_scan=search_scan,
        bulk_limit=bulk_limit,
        timeline_events=timeline_events,
        idle_after=None if idle_after is None else float(idle_after),
        health_rules=health_rules or HealthRules(),
        worker_ttl=(health_rules or HealthRules()).worker_ttl,
        title=str(title),
    )
    csrf = Csrf(csrf_secret)
    pages = Pages(conn, settings, csrf, Hub(conn, block=float(live_block)))
    routes: list[BaseRoute] = [
        Route("/", pages.overview, name="overview"),
        Route("/queues/{queue}", pages.queue, name="queue"),
        Route("/queues/{queue}/job", pages.job, name="job"),
        Route("/workers", pages.workers, name="workers"),
        Route("/schedules", pages.schedules, name="schedules"),
        Route("/autoscaler", pages.autoscaler, name="autoscaler"),
        Route("/live", pages.live_overview, name="live_overview"),
        Route("/live/queues/{queue}", pages.live_queue, name="live_queue"),
        Route("/live/queues/{queue}/job", pages.live_job, name="live_job"),
        Mount("/static", StaticFiles(packages=[("jqc.dashboard", "static")]), name="static"),
    ]
    actions: Actions | None = None
    if not read_only:
        actions = Actions(conn, settings, csrf)
        routes += [
            Route("/queues/{queue}/pause", actions.pause, methods=["POST"], name="pause"),
            Route("/queues/{queue}/jobs", actions.jobs, methods=["POST"], name="jobs_action"),
            Route("/queues/{queue}/dead", actions.dead, methods=["POST"], name="dead_action"),
            Route("/queues/{queue}/schedules", actions.schedules, methods=["POST"], name="schedule_action"),
        ]
    middleware = [Middleware(AuthGate, hook=auth)] if auth is not None else []
    dashboard = Starlette(routes=routes, middleware=middleware)
    dashboard.state.jqc_settings = settings
    pages.router = dashboard.router  # links resolve on these routes, wherever the app is mounted
    if actions is not None:
        actions.router = dashboard.router
    return dashboard
