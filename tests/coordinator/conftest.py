"""Fixtures for the coordinator tests that need a real Redis: an unrestricted connection, and users
made from generated ACL rules (named ``jqc-test-<random>``, deleted when the test ends)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import jqc
from jqc.coordinator import acl
from jqc.engine.calls import ScriptCall, checked
from tests.conftest import REDIS_URL, open_backend

DB = int(urlsplit(REDIS_URL).path.strip("/") or 0)

MakeUser = Callable[..., jqc.Connection]


def state(client: Any) -> dict[str, Any]:
    """Every key of the database with its type and content."""
    out: dict[str, Any] = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key)
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = None
        out[key] = (kind, value)
    return out


@pytest.fixture
def admin(clock: jqc.VirtualClock) -> Iterator[jqc.Connection]:
    """The unrestricted test connection (default user), on the real server only."""
    conn = open_backend("redis", clock)
    yield conn
    conn.sync_client().flushdb()
    conn.close()


@pytest.fixture
def make_user(admin: jqc.Connection, clock: jqc.VirtualClock) -> Iterator[MakeUser]:
    """make_user(*roles, queue=, prefix=, rules=) -> a connection logged in as a fresh user."""
    created: list[str] = []
    conns: list[jqc.Connection] = []

    def make(
        *roles: str, queue: str | None = "photos", prefix: str = "jqc", rules: list[str] | None = None
    ) -> jqc.Connection:
        name = f"jqc-test-{secrets.token_hex(6)}"
        password = secrets.token_urlsafe(18)
        created.append(name)
        client = admin.sync_client()
        if rules is None:
            acl.apply(client, name, acl.rules(list(roles), queue, prefix, db=DB or None), password=password)
        else:
            client.execute_command("ACL", "SETUSER", name, "reset", "on", ">" + password, *rules)
        parts = urlsplit(REDIS_URL)
        url = urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port or 6379}"))
        conn = jqc.connect(url, clock=clock, prefix=prefix, socket_connect_timeout=2)
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        conn.close()
    for name in created:
        admin.sync_client().execute_command("ACL", "DELUSER", name)


def heartbeat(ops: Any, worker: str, *fields: str) -> ScriptCall[int]:
    """heartbeat.lua, called as its header documents (worker id, prune-before ms, field/value pairs)."""
    now = int(ops.clock.now() * 1000)
    return ScriptCall(
        "heartbeat", ops.declared("heartbeat"), (now, 0, worker, now - 60_000, *fields), lambda r: checked(r)[1]
    )


def lease(ops: Any, holder: str, ms: int) -> ScriptCall[int]:
    now = int(ops.clock.now() * 1000)
    return ScriptCall("lease", ops.lease_keys("stall"), (now, 0, "stall", holder, ms), lambda r: checked(r)[1])
