"""The jqc web dashboard: an ASGI application (Starlette, Jinja2 templates, htmx served from the
package itself: no CDN, no Node build step) to watch and operate queues in a browser.

``jqc.dashboard.app(conn)`` returns the application; serve it with ``jqc dashboard --url ...`` or
mount it in your own app under any prefix. Needs ``pip install 'jqc[dashboard]'``.

- :mod:`~jqc.dashboard.app`: :func:`app`, assembling the routes;
- :mod:`~jqc.dashboard.pages`: the pages and their live streams;
- :mod:`~jqc.dashboard.actions`: the actions (absent in read-only mode);
- :mod:`~jqc.dashboard.reads`: what the pages read, through jqc's public queue API only;
- :mod:`~jqc.dashboard.live`: server-sent events fed by the queues' event streams;
- :mod:`~jqc.dashboard.security`: the auth hook, :func:`basic_auth`, CSRF tokens;
- :mod:`~jqc.dashboard.formatting`: numbers, times and the small charts.

See ``docs/dashboard.md``.
"""

from jqc.errors import MissingDependencyError

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - the dev extra installs both
    raise MissingDependencyError("the dashboard needs: pip install 'jqc[dashboard]'") from exc

from jqc.dashboard.app import app
from jqc.dashboard.security import AuthHook, basic_auth

__all__ = ["AuthHook", "app", "basic_auth"]
