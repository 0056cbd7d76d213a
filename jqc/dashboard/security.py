"""Who may see the dashboard and how its actions are protected: the auth hook, basic auth, CSRF.

- **Auth hook**: a callable the host app provides, ``hook(request)``, sync or async. It returns
  True to let the request through, False to refuse it (403), or a Starlette ``Response`` to send
  instead (a login redirect, a 401 with a challenge). It sees every request the dashboard gets:
  pages, live streams, static files and actions.
- :func:`basic_auth`: such a hook for HTTP basic authentication (what ``jqc dashboard
  --basic-auth`` uses).
- **CSRF**: every action is a POST that must carry the token of the page it came from (form field
  ``csrf`` or header ``X-CSRF-Token``), equal to the dashboard's cookie, whose value is signed with
  the app's secret (so a cookie planted from a sibling domain does not pass either).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from jqc.errors import InvalidOptionError

__all__ = ["AuthGate", "AuthHook", "Csrf", "basic_auth"]

AuthHook: TypeAlias = Callable[[Request], "bool | Response | Awaitable[bool | Response]"]
"""``hook(request) -> True | False | Response`` (or an awaitable of one): see the module's docs."""


class AuthGate:
    """ASGI middleware that asks the auth hook about every HTTP request before the dashboard sees it."""

    def __init__(self, app: ASGIApp, hook: AuthHook) -> None:
        self.app = app
        self.hook = hook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request through, refuse it with 403, or send the hook's own response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = self.hook(Request(scope, receive))
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is True:
            await self.app(scope, receive, send)
        elif isinstance(verdict, Response):
            await verdict(scope, receive, send)
        else:
            await PlainTextResponse("forbidden: the dashboard's auth hook refused this request", 403)(
                scope, receive, send
            )


def basic_auth(user: str, password: str, *, realm: str = "jqc dashboard") -> AuthHook:
    """An auth hook for HTTP basic authentication against one user and password.

    Compared in constant time; a missing or wrong ``Authorization`` header gets a 401 with a
    ``WWW-Authenticate`` challenge, so a browser asks for the credentials.
    """
    if not isinstance(user, str) or not user or ":" in user:
        raise InvalidOptionError("basic auth needs a non-empty user name without ':'")
    if not isinstance(password, str) or not password:
        raise InvalidOptionError("basic auth needs a non-empty password")
    expected = f"{user}:{password}".encode()
    challenge = {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}

    def hook(request: Request) -> bool | Response:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                given = b""
            if hmac.compare_digest(given, expected):
                return True
        return PlainTextResponse("authentication required", 401, headers=challenge)

    return hook


class Csrf:
    """Signed double-submit tokens: the cookie holds ``nonce.signature``; a form sends it back."""

    COOKIE = "jqc_csrf"
    FIELD = "csrf"
    HEADER = "x-csrf-token"

    def __init__(self, secret: bytes | str | None = None) -> None:
        if secret is None:
            secret = secrets.token_bytes(32)  # tokens last as long as this app object
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if len(self._secret) < 16:
            raise InvalidOptionError("csrf_secret must be at least 16 bytes")

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` is one this app issued."""
        if not token or token.count(".") != 1:
            return False
        nonce, signature = token.split(".")
        return hmac.compare_digest(signature, self._sign(nonce))

    def token_for(self, request: Request) -> tuple[str, bool]:
        """The request's token (from its cookie), or a new one; True when the cookie must be set."""
        current = request.cookies.get(self.COOKIE)
        if current is not None and self.valid(current):
            return current, False
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}", True

    def set_cookie(self, response: Response, token: str, request: Request) -> None:
        """Send the token's cookie, scoped to the dashboard's own path (its mount prefix)."""
        path = request.scope.get("root_path") or "/"
        response.set_cookie(self.COOKIE, token, path=path, httponly=True, samesite="strict")

    def check(self, request: Request, sent: str | None) -> bool:
        """True when the token sent with an action (form field or header) matches the signed cookie."""
        cookie = request.cookies.get(self.COOKIE)
        sent = sent or request.headers.get(self.HEADER)
        return bool(cookie and sent and self.valid(cookie) and hmac.compare_digest(sent, cookie))
