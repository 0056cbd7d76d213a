"""Connection URLs and client options, parsed and checked once into a :class:`ServerConfig`.

Schemes: ``memory://`` (or no URL) is the embedded backend; ``redis://[user:password@]host[:port][/db]``,
``rediss://`` (TLS) and ``unix:///path/to/socket[?db=N]`` reach a real server. Client options may
be given in the URL's query (``?socket_timeout=5&ssl_ca_certs=/etc/ca.pem``) or as keyword
arguments of :func:`jqc.connect`; keyword arguments win. Anything malformed raises
:class:`jqc.InvalidUrlError` naming the bad part, before any connection is tried.

Defaults heal broken networks on their own (a connection that went silent, as after a NAT or
firewall state loss, fails the call instead of hanging it; the next call opens a new one):

* ``socket_timeout`` (10 s): the read deadline of every call. Blocking waits (``XREAD BLOCK``)
  get their own, longer deadline: their block plus a margin.
* ``socket_connect_timeout`` (5 s): how long opening one connection may take.
* ``socket_keepalive`` (on): TCP keepalive, probing after 30 s idle, every 5 s, 3 probes
  (:data:`KEEPALIVE`), so a dead peer is found out even on an idle connection.
* ``health_check_interval`` (15 s): an asyncio connection idle that long is checked with a PING
  before it is used again (0 or ``none`` turns it off).

On top of these, every asyncio call has a deadline as a whole (:attr:`ServerConfig.call_deadline`:
``socket_timeout + socket_connect_timeout + 1`` s, 16 s by default): whatever a call is doing when
it passes, it is abandoned, its connection dropped, and :class:`jqc.CallTimeoutError` raised.
``socket_timeout=none`` turns off both the read deadline and the call deadline.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from jqc.errors import InvalidUrlError

__all__ = ["DEFAULTS", "KEEPALIVE", "ServerConfig", "TlsOptions", "keepalive_options", "parse_server_url", "redact"]

SCHEMES = ("memory", "redis", "rediss", "unix")
#: Schemes of deployments of several servers (see :mod:`jqc.backends.topology_url`).
TOPOLOGY_SCHEMES = ("redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")

#: The client options and their defaults.
DEFAULTS: Mapping[str, object] = {
    "socket_timeout": 10.0,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
    "health_check_interval": 15.0,
    "client_name": None,
    "ssl_ca_certs": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_cert_reqs": "required",
    "ssl_check_hostname": True,
}
#: TCP keepalive with ``socket_keepalive`` on: seconds idle before the first probe, seconds between
#: probes, probes unanswered before the connection is dropped (45 s of silence in all).
KEEPALIVE = {"idle": 30, "interval": 5, "count": 3}
#: Seconds a call may take beyond its read and connect timeouts before it is abandoned.
CALL_MARGIN = 1.0

# Query options whose values are never secret (and so stay visible in a redacted URL).
_SAFE_OPTIONS = frozenset({*DEFAULTS, "db", "failover_timeout", "sentinel_username", "wait_replicas", "wait_timeout"})
_SECONDS = ("socket_timeout", "socket_connect_timeout", "health_check_interval")
_FLAGS = ("socket_keepalive", "ssl_check_hostname")
_CERT_REQS = ("required", "optional", "none")


def keepalive_options() -> dict[int, int]:
    """:data:`KEEPALIVE` as socket options of this platform (the ones it has)."""
    names = {"idle": ("TCP_KEEPIDLE", "TCP_KEEPALIVE"), "interval": ("TCP_KEEPINTVL",), "count": ("TCP_KEEPCNT",)}
    options: dict[int, int] = {}
    for what, candidates in names.items():
        for name in candidates:
            constant = getattr(socket, name, None)
            if constant is not None:
                options[constant] = KEEPALIVE[what]
                break
    return options


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_PLAIN_USER = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=-]*")


def redact(url: object) -> str:
    """``url`` with its credentials replaced by ``***``: safe to print and log, whatever it holds.

    Whatever stands between the scheme and the *last* ``@`` counts as credentials, since a
    password may hold unencoded ``/``, ``?``, ``#`` or ``@`` that would fool a URL parser: only a
    plain user name before a ``:`` is kept (``redis://jobs:***@host``), anything else becomes
    ``***``; when a ``?`` or ``#`` comes before that ``@``, nothing after the scheme is shown. In
    the query, the first item that is not one of jqc's own client options is masked with
    everything after it (``?password=***``). (A URL that parsed is shown by its checked parts
    instead: see :attr:`ServerConfig.safe_url`.)
    It never fails: a value that is not a str comes back as ``<a bytes, not a URL>`` (its type only).
    """
    if not isinstance(url, str):
        return f"<a {type(url).__name__}, not a URL>"
    match = _SCHEME.match(url)
    head = match.group(0) if match else ""
    rest = url[len(head) :]
    at = rest.rfind("@")
    if at >= 0 and ("?" in rest[:at] or "#" in rest[:at]):
        return head + "***"  # an '@' in a query or fragment, or a password holding '?': trust nothing
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        shown = f"{user}:***" if colon and _PLAIN_USER.fullmatch(user) else "***"
        rest = f"{shown}@{rest[at + 1 :]}"
    base, question, query = rest.partition("?")
    if question:
        query, hash_, _ = query.partition("#")
        items = []
        for item in query.split("&"):
            name, equals, _ = item.partition("=")
            if not equals or unquote(name) not in _SAFE_OPTIONS:
                items.append(f"{name}=***" if equals else "***")
                break  # a secret value may itself hold "&": nothing after it is shown
            items.append(item)
        rest = base + "?" + "&".join(items) + (hash_ + "***" if hash_ else "")
    return head + rest


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How a ``rediss://`` connection checks the server (and proves itself, for mutual TLS)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    cert_reqs: str = "required"
    check_hostname: bool = True


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything needed to reach one Redis deployment; credentials never show in a repr."""

    scheme: str
    safe_url: str
    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = field(default=None, repr=False)  # (a lone user name may be a misplaced password)
    password: str | None = field(default=None, repr=False)
    tls: TlsOptions | None = None
    socket_timeout: float | None = 10.0
    socket_connect_timeout: float | None = 5.0
    socket_keepalive: bool = True
    health_check_interval: float = 15.0
    client_name: str | None = None
    #: Cluster seed nodes or sentinels, as (host, port); empty for a single server.
    nodes: tuple[tuple[str, int], ...] = ()
    #: The name the sentinels know the master by (Sentinel only).
    service: str | None = None
    sentinel_username: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    #: Seconds a call keeps retrying through a failover or a resharding (Cluster and Sentinel only).
    failover_timeout: float = 10.0
    #: Replicas that must acknowledge each add (``WAIT``), and how long to wait for them, in seconds.
    wait_replicas: int = 0
    wait_timeout: float = 1.0

    @property
    def embedded(self) -> bool:
        """True for ``memory://``."""
        return self.scheme == "memory"

    @property
    def topology(self) -> str:
        """``"embedded"``, ``"server"``, ``"cluster"`` or ``"sentinel"``: the kind of deployment."""
        if self.embedded:
            return "embedded"
        return self.scheme.partition("+")[2] or "server"

    @property
    def call_deadline(self) -> float | None:
        """The most one asyncio call may take as a whole, in seconds (None without a read timeout)."""
        if self.socket_timeout is None:
            return None
        return self.socket_timeout + (self.socket_connect_timeout or self.socket_timeout) + CALL_MARGIN

    def redis_py_options(self) -> dict[str, object]:
        """Keyword arguments for a redis-py client (sync or asyncio) of this server."""
        options: dict[str, object] = {
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_keepalive": self.socket_keepalive,
            "socket_keepalive_options": keepalive_options() if self.socket_keepalive else None,
            "health_check_interval": self.health_check_interval,
            "client_name": self.client_name,
            "decode_responses": True,
            "protocol": 2,
        }
        if self.path is not None:
            options["unix_socket_path"] = self.path
        else:
            options.update(host=self.host, port=self.port)
        if self.tls is not None:
            options.update(
                ssl=True,
                ssl_ca_certs=self.tls.ca_certs,
                ssl_certfile=self.tls.certfile,
                ssl_keyfile=self.tls.keyfile,
                ssl_cert_reqs=self.tls.cert_reqs,
                ssl_check_hostname=self.tls.check_hostname and self.tls.cert_reqs != "none",
            )
        return options


def _bad(url: str, what: str) -> InvalidUrlError:
    return InvalidUrlError(f"invalid Redis URL {redact(url)!r}: {what}")


def _option(url: str, name: str, value: object, *, echo: bool = True) -> object:
    """One client option, checked and converted (text from a URL query, or a Python value).

    With ``echo`` False (a query that may hold part of a password) no name or value of the query
    is quoted in an error.
    """
    if name not in DEFAULTS:
        shown = repr(name) if echo and _NAME.fullmatch(name) else "(name not shown)"
        raise _bad(url, f"unknown option {shown}; known: {', '.join(sorted(DEFAULTS))}")
    given = repr(value) if echo else "the value given (not shown)"
    if name in _SECONDS:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
            if name == "health_check_interval":
                return 0.0
            return None
        try:
            seconds = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else math.nan
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and name != "health_check_interval"):
            raise _bad(url, f"{name} must be a number of seconds > 0 (or none), not {given}")
        return seconds
    if name in _FLAGS:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise _bad(url, f"{name} must be true or false, not {given}")
    if name == "ssl_cert_reqs":
        text = str(value).lower() if value is not None else "required"
        if text not in _CERT_REQS:
            raise _bad(url, f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, not {given}")
        return text
    if value is not None and not isinstance(value, str):
        raise _bad(url, f"{name} must be a str, not {given}")
    return value or None


def _db(url: str, text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise _bad(url, f"the database must be a number >= 0, not {text!r}")
    return int(text)


def parse_server_url(url: str | None, options: Mapping[str, object] | None = None) -> ServerConfig:
    """Parse and check the URL of one server (or ``memory://``) and the keyword ``options`` of
    :func:`jqc.connect` (:func:`jqc.backends.parse_url` takes the Cluster and Sentinel URLs too)."""
    text = url or "memory://"
    if not isinstance(text, str):
        raise InvalidUrlError(f"a Redis URL must be a str, not {type(url).__name__}")
    if text.partition("://")[0].lower() in TOPOLOGY_SCHEMES:  # (jqc.backends.parse_url takes them)
        raise InvalidUrlError(f"{redact(text)!r} is not the URL of one server: parse it with jqc.backends.parse_url")
    try:
        parts = urlsplit(text)
        port_text = parts.netloc.rsplit("@", 1)[-1]
        port = parts.port
    except ValueError as exc:
        # (never the parser's own message: it quotes the text it choked on, which may be a password)
        what = (
            "the host is not a valid IPv6 address"
            if "IPv6" in str(exc)
            else "the port must be a number between 1 and 65535"
        )
        raise _bad(text, f"{what} (percent-encode any / ? # @ : in a user name or password)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidUrlError(
            f"unsupported URL scheme {parts.scheme!r} in {redact(text)!r}: use redis://, rediss://, unix://, "
            "memory://, redis+cluster:// (Redis Cluster) or redis+sentinel:// (Sentinel)"
        )
    if "@" in parts.fragment or "@" in parts.path:
        raise _bad(text, "an '@' after the host: percent-encode (%40) any / ? # @ : in a user name, password or path")
    echo = "@" not in parts.query  # an '@' there may end a password split off at an unencoded '?'
    chosen: dict[str, object] = dict(DEFAULTS)
    query_db: str | None = None
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "db":
            query_db = value
            continue
        if name == "cluster" and echo:
            raise _bad(text, "jqc reaches a Redis Cluster through a redis+cluster://HOST:PORT,HOST:PORT URL")
        chosen[name] = _option(text, name, value, echo=echo)
    for option, given in (options or {}).items():
        chosen[option] = _option(text, option, given)
    timeouts = {name: _seconds_value(chosen[name]) for name in _SECONDS}
    common = _Common(
        socket_timeout=timeouts["socket_timeout"],
        socket_connect_timeout=timeouts["socket_connect_timeout"],
        health_check_interval=timeouts["health_check_interval"] or 0.0,
        socket_keepalive=chosen["socket_keepalive"] is True,
        client_name=_str_value(chosen["client_name"]),
    )
    if scheme == "memory":
        return common.config(scheme, redact(text))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme == "unix":
        if not parts.path:
            raise _bad(text, "a unix:// URL needs the socket's path (unix:///run/redis.sock)")
        db = _db(text, query_db) if query_db is not None else 0
        return common.config(
            scheme, _shown(parts, password), path=unquote(parts.path), db=db, username=username, password=password
        )
    host = parts.hostname
    if not host:
        raise _bad(text, "the host is missing (redis://HOST[:PORT][/DB])")
    if port_text.endswith(":"):
        raise _bad(text, "the port is empty")
    path = parts.path.lstrip("/")
    if "/" in path:
        raise _bad(text, f"the path must be a database number, not {parts.path!r}")
    if path and query_db is not None:
        raise _bad(text, "the database is given twice (in the path and in ?db=)")
    db = _db(text, path) if path else (_db(text, query_db) if query_db is not None else 0)
    tls = None
    if scheme == "rediss":
        tls = TlsOptions(
            ca_certs=_str_value(chosen["ssl_ca_certs"]),
            certfile=_str_value(chosen["ssl_certfile"]),
            keyfile=_str_value(chosen["ssl_keyfile"]),
            cert_reqs=_str_value(chosen["ssl_cert_reqs"]) or "required",
            check_hostname=chosen["ssl_check_hostname"] is True,
        )
    elif any(chosen[name] != DEFAULTS[name] for name in DEFAULTS if name.startswith("ssl_")):
        raise _bad(text, "TLS options need a rediss:// URL")
    return common.config(
        scheme,
        _shown(parts, password),
        host=host,
        port=port or 6379,
        db=db,
        username=username,
        password=password,
        tls=tls,
    )


def _shown(parts: SplitResult, password: str | None) -> str:
    """The URL of a checked configuration for display: rebuilt from its parts, password never included.

    Every query option of a checked URL is one of jqc's own (none secret), so the query stays.
    """
    netloc = parts.netloc
    auth = ""
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        auth = f"{user}:***@" if password is not None and _PLAIN_USER.fullmatch(user) else "***@"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{auth}{netloc}{parts.path}{query}"


def _seconds_value(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str_value(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class _Common:
    """The options every scheme shares, checked."""

    socket_timeout: float | None
    socket_connect_timeout: float | None
    health_check_interval: float
    socket_keepalive: bool
    client_name: str | None

    def config(
        self,
        scheme: str,
        safe_url: str,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: TlsOptions | None = None,
    ) -> ServerConfig:
        return ServerConfig(
            scheme,
            safe_url,
            host=host,
            port=port,
            path=path,
            db=db,
            username=username,
            password=password,
            tls=tls,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_connect_timeout,
            socket_keepalive=self.socket_keepalive,
            health_check_interval=self.health_check_interval,
            client_name=self.client_name,
        )
