"""URLs of deployments of several servers: Redis Cluster and Sentinel.

* ``redis+cluster://[user:password@]host:port[,host:port ...][/0][?options]`` reaches a Redis
  Cluster through any of the listed seed nodes (each node's port defaults to 6379). A cluster has
  database 0 only: any other number is refused.
* ``redis+sentinel://[user:password@]host:port[,host:port ...]/service[/db][?options]`` asks the
  listed sentinels (port 26379 by default) which server is the master called ``service``, and
  uses database ``db`` (0 by default) there.

``rediss+cluster://`` and ``rediss+sentinel://`` do the same over TLS (the ``ssl_*`` options
apply to every node and every sentinel). The user name and password of the URL are the data
servers' (the cluster nodes', the Sentinel master's and its replicas'); sentinels that ask for a
password of their own get it from the ``sentinel_password`` option (and ``sentinel_username``
for an ACL user), in the query or as arguments of :func:`jqc.connect`. Without it, sentinels are
asked with no credentials.

Every client option of a single server applies (see :mod:`jqc.backends.url`), plus
``failover_timeout`` (seconds, 10 by default): how long one call keeps retrying while the
deployment fails over or reshards (``CLUSTERDOWN``, ``TRYAGAIN``, ``READONLY`` from a demoted
master, a master that cannot be reached) before it raises the typed error; and ``wait_replicas``
(0 by default) with ``wait_timeout`` (seconds, 1 by default): every add is followed by Redis's
``WAIT`` for that many replicas, and raises :class:`jqc.NotReplicatedError` when fewer confirmed it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import parse_qsl, unquote, urlsplit

from jqc.backends.url import TOPOLOGY_SCHEMES, ServerConfig, parse_server_url, redact
from jqc.errors import InvalidUrlError

__all__ = ["EXTRA_OPTIONS", "parse_topology_url", "parse_url"]

#: The options only these URLs take, with their defaults.
EXTRA_OPTIONS: Mapping[str, object] = {
    "failover_timeout": 10.0,
    "sentinel_username": None,
    "sentinel_password": None,
    "wait_replicas": 0,
    "wait_timeout": 1.0,
}
_DEFAULT_PORTS = {"cluster": 6379, "sentinel": 26379}
_SERVICE = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_HOST_PORT = re.compile(r"^(\[[^\]]*\]|[^:\[\]]*)(?::(.*))?$")
MAX_FAILOVER_TIMEOUT = 3600.0
MAX_WAIT_TIMEOUT = 60.0
MAX_WAIT_REPLICAS = 100


def _bad(url: str, what: str) -> InvalidUrlError:
    return InvalidUrlError(f"invalid Redis URL {redact(url)!r}: {what}")


def _node(url: str, entry: str, default_port: int) -> tuple[str, int]:
    if not entry:
        raise _bad(url, "an empty host in the list of hosts (host:port,host:port)")
    found = _HOST_PORT.match(entry)
    if found is None:
        raise _bad(url, f"a host must be host[:port] or [ipv6][:port], not {entry!r}")
    host, port_text = found.group(1).strip("[]"), found.group(2)
    if not host:
        raise _bad(url, "a host of the list is missing before its port")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _bad(url, f"the port of {host} must be a number between 1 and 65535, not {port_text!r}")
    return host, int(port_text)


def _seconds(url: str, name: str, value: object, high: float) -> float:
    try:
        seconds = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else math.nan
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= high:
        raise _bad(url, f"{name} must be a number of seconds > 0 and <= {high:g}, not {value!r}")
    return seconds


def _replicas(url: str, value: object) -> int:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) > MAX_WAIT_REPLICAS:
        raise _bad(url, f"wait_replicas must be a whole number from 0 to {MAX_WAIT_REPLICAS}, not {value!r}")
    return int(text)


def _text(url: str, name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(url, f"{name} must be a str, not a {type(value).__name__}")
    return value


def parse_url(url: str | None, options: Mapping[str, object] | None = None) -> ServerConfig:
    """Parse and check any URL :func:`jqc.connect` takes (one server, a Cluster, a Sentinel group)."""
    if isinstance(url, str) and url.partition("://")[0].lower() in TOPOLOGY_SCHEMES:
        return parse_topology_url(url, options)
    return parse_server_url(url, options)


def parse_topology_url(text: str, options: Mapping[str, object] | None = None) -> ServerConfig:
    """Parse a ``redis+cluster://`` or ``redis+sentinel://`` URL (and ``rediss+`` variants).

    The credentials, the client options and the TLS options are checked by the single-server
    parser (:func:`jqc.backends.url.parse_server_url`), so they mean the same everywhere.
    """
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    base, _, kind = scheme.partition("+")
    found = re.match(r"([^/?#]*)(.*)", rest, re.S)
    assert found is not None  # (the pattern matches any text)
    netloc, tail = found.groups()
    userinfo, at, hosts = netloc.rpartition("@")
    if not hosts:
        shape = "HOST:PORT,HOST:PORT" if kind == "cluster" else "HOST:PORT,HOST:PORT/SERVICE"
        raise _bad(text, f"the hosts are missing ({scheme}://{shape})")
    nodes = tuple(_node(text, entry.strip(), _DEFAULT_PORTS[kind]) for entry in hosts.split(","))
    if len(set(nodes)) != len(nodes):
        raise _bad(text, "a host is listed twice")
    try:
        tail_parts = urlsplit("x://h" + tail)
    except ValueError:
        raise _bad(text, "the path or query cannot be parsed") from None
    if tail_parts.fragment:
        raise _bad(text, "a fragment (#...) has no meaning here (percent-encode '#' in a password as %23)")
    segments = [unquote(part) for part in tail_parts.path.split("/")[1:]]
    if segments and segments[-1] == "":
        segments.pop()
    service: str | None = None
    if kind == "sentinel":
        if not segments:
            raise _bad(text, "the name of the master is missing (redis+sentinel://HOST:PORT,HOST:PORT/SERVICE[/DB])")
        service = segments.pop(0)
        if not _SERVICE.fullmatch(service):
            raise _bad(text, f"the master's name must be 1-200 letters, digits or . _ : -, not {service!r}")
    if len(segments) > 1:
        raise _bad(text, f"the path has too many parts: {tail_parts.path!r}")
    db_text = segments[0] if segments else ""
    # The query without this module's own options goes to the single-server parser, untouched.
    extras: dict[str, object] = dict(EXTRA_OPTIONS)
    kept: list[str] = []
    for item in tail_parts.query.split("&") if tail_parts.query else []:
        name = unquote(item.partition("=")[0])
        if name in EXTRA_OPTIONS:
            extras[name] = dict(parse_qsl(item, keep_blank_values=True)).get(name, "")
        else:
            kept.append(item)
    others = dict(options or {})
    for name in EXTRA_OPTIONS:
        if name in others:
            extras[name] = others.pop(name)
    first_host, first_port = nodes[0]
    shown_host = f"[{first_host}]" if ":" in first_host else first_host
    delegate = f"{base}://{userinfo}{at}{shown_host}:{first_port}/{db_text}" + (f"?{'&'.join(kept)}" if kept else "")
    try:
        config = parse_server_url(delegate, others)
    except InvalidUrlError as exc:
        raise InvalidUrlError(str(exc).replace(repr(redact(delegate)), repr(redact(text)))) from None
    if kind == "cluster" and config.db != 0:
        raise _bad(text, f"a Redis Cluster has database 0 only, not {config.db}")
    sentinel_password = _text(text, "sentinel_password", extras["sentinel_password"])
    auth = config.safe_url.partition("://")[2].rpartition("@")
    safe_query = [
        item if unquote(item.partition("=")[0]) != "sentinel_password" else "sentinel_password=***"
        for item in (tail_parts.query.split("&") if tail_parts.query else [])
    ]
    query = f"?{'&'.join(safe_query)}" if safe_query else ""
    safe_url = f"{scheme}://{auth[0]}{auth[1]}{hosts}{tail_parts.path}{query}"
    return replace(
        config,
        scheme=scheme,
        safe_url=safe_url,
        nodes=nodes,
        service=service,
        sentinel_username=_text(text, "sentinel_username", extras["sentinel_username"]),
        sentinel_password=sentinel_password,
        failover_timeout=_seconds(text, "failover_timeout", extras["failover_timeout"], MAX_FAILOVER_TIMEOUT),
        wait_replicas=_replicas(text, extras["wait_replicas"]),
        wait_timeout=_seconds(text, "wait_timeout", extras["wait_timeout"], MAX_WAIT_TIMEOUT),
    )
