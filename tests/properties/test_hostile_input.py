"""Hostile input at the boundary, on both backends: job ids, names, queue names, prefixes, data and
option values that are huge, deeply nested, not UTF-8, NaN/inf, control characters or key-pattern
characters (``{ } * ? [ ] : \\``).

Each is either stored and read back exactly (and a worker's claim, result and removal of it work)
or refused with a typed :class:`jqc.InvalidInputError` that changed nothing at all. In every case
no key of another queue changes, nor of the same queue under another prefix: the keys of
bystander queues are snapshotted, with their contents, around each example.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jqc
from tests.conftest import BACKENDS, open_backend

SOAK = os.environ.get("JQC_HYPOTHESIS_PROFILE") == "soak"
EXAMPLES = 400 if SOAK else 40
SETTINGS = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])

PATTERN_CHARS = "{}*?[]:\\"
nasty_chars = st.one_of(
    st.sampled_from([*PATTERN_CHARS, "\x00", "\n", "\r", "\x1b", "\x7f", "\u2028", "\ufeff", "\ud800", "\udfff"]),
    st.characters(codec="utf-8"),
    st.characters(categories=["Cc", "Cs", "Zs"]),
)
nasty_text = st.one_of(
    st.text(nasty_chars, max_size=40),
    st.text(nasty_chars, min_size=150, max_size=260),  # around the 200-character limits
    st.sampled_from(["", "*", "}", "{", "{q}", "1}:x", "j:*", "\\", "[a-z]", "?", ":", "*:{other}:*"]),
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=30),
)
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)  # fmt: skip


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


hostile_data = st.one_of(
    json_value,
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not math.isfinite(f)),
    st.lists(st.sampled_from([math.nan, math.inf, -math.inf]), min_size=1, max_size=3),
    st.text(nasty_chars, max_size=50),  # lone surrogates: not UTF-8
    st.binary(max_size=20),
    st.integers(min_value=1, max_value=3000).map(nested),
    st.integers(min_value=0, max_value=3_000_000).map(lambda n: "x" * n),  # huge (past the payload limit)
    st.dictionaries(st.integers(), json_leaf, min_size=1, max_size=3),  # keys JSON would silently change
    st.sets(st.integers(), max_size=3),
    st.builds(object),
)


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest) -> Iterator[jqc.Connection]:
    connection = open_backend(request.param)
    yield connection
    if not connection.embedded:
        connection.sync_client().flushdb()
    connection.close()


def everything(conn: jqc.Connection) -> dict[str, Any]:
    """Every key with its type and contents."""
    r = conn.sync_client()
    out: dict[str, Any] = {}
    for key in r.scan_iter(match="*", count=1000):
        kind = r.type(key)
        if kind == "hash":
            value: Any = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = [fields for _, fields in r.xrange(key)]
        elif kind == "string":
            value = r.get(key)
        else:
            value = sorted(r.smembers(key)) if kind == "set" else None
        out[key] = (kind, value)
    return out


def own(prefix: str, queue: str) -> str:
    return f"{prefix}:{{{queue}}}:"


def bystanders(conn: jqc.Connection, queue: str = "photos", prefix: str = "jqc") -> None:
    """Jobs in several states in other queues, and in a queue of the same name under other prefixes."""
    conn.sync_client().flushdb()
    names = {("jqc", "other"), ("jqc", "photos"), ("app", "photos"), ("jqcx", "photos"), ("j", "x")}
    for pre, name in names - {(prefix, queue)}:
        q = jqc.Connection.over(conn.factory, prefix=pre, clock=conn.clock).queue(name)
        q.add("waiting", {"i": 1}, job_id="1")
        q.add("delayed", delay=60)
        q.complete(q.claim("w").jobs[0], {"done": True})
        q.add("held")
        q.claim("w")


def others(state: dict[str, Any], prefix: str, queue: str) -> dict[str, Any]:
    mine = own(prefix, queue)
    return {k: v for k, v in state.items() if not k.startswith(mine)}


def normal(value: Any) -> Any:
    """What JSON gives back for ``value`` (tuples become lists)."""
    return json.loads(json.dumps(value))


@SETTINGS
@given(name=nasty_text, data=hostile_data, job_id=st.none() | nasty_text)
def test_job_ids_names_and_data_are_stored_exactly_or_refused(
    conn: jqc.Connection, name: str, data: Any, job_id: str | None
) -> None:
    bystanders(conn)
    queue = conn.queue("photos")
    before = everything(conn)
    try:
        job = queue.add(name, data, job_id=job_id)
    except jqc.InvalidInputError as exc:
        assert everything(conn) == before, exc  # refused: nothing written
        assert "\n" not in str(exc)  # one line, whatever the input held
        return
    stored = queue.get_job(job.id)
    assert stored is not None
    assert (stored.name, stored.data) == (name, normal(data))
    if job_id is not None:
        assert job.id == job_id
    claimed = queue.claim("w").jobs[0]
    assert (claimed.id, claimed.job.name, claimed.job.data) == (job.id, name, normal(data))
    queue.complete(claimed, data)
    done = queue.get_job(job.id)
    assert done is not None and done.result == normal(data)
    queue.remove(job.id)
    assert queue.get_job(job.id) is None
    assert others(everything(conn), "jqc", "photos") == others(before, "jqc", "photos")


@SETTINGS
@given(job_id=st.sampled_from(["*", "?", "[0-9]", "\\*", "j:*", "1*", "}", "{photos}", "*:*"]))
def test_a_job_id_that_is_a_glob_touches_that_job_only(conn: jqc.Connection, job_id: str) -> None:
    bystanders(conn)
    queue = conn.queue("photos")
    plain = [queue.add("plain", i).id for i in range(3)]
    queue.add("glob", job_id=job_id)
    held = queue.claim("w", count=10).jobs
    target = next(c for c in held if c.id == job_id)
    queue.log(target, "line")
    queue.complete(target, {"ok": 1})
    assert queue.job_logs(job_id) == ["line"]
    queue.remove(job_id)
    assert queue.get_job(job_id) is None and queue.job_logs(job_id) == []
    assert all(queue.get_job(i) is not None for i in plain)
    assert queue.counts().active == 3


@SETTINGS
@example(queue="photos", prefix="j*")  # found by this test: obliterate's sweep took jqc:{photos}:*
@example(queue="photos", prefix="*")
@example(queue="photos", prefix="jq?")
@example(queue="photos", prefix="[j]qc")
@example(queue="photos", prefix="j")  # a prefix of another prefix, no glob: must stay apart
@given(
    queue=st.one_of(nasty_text, st.sampled_from(["photos", "other", "x", "a:b", "photos:"])),
    prefix=st.one_of(nasty_text, st.sampled_from(["jqc", "j*", "*", "jq?", "[j]qc", "jqc\\", "j", "app:"])),
)
def test_queue_names_and_prefixes_reach_their_own_keys_only(conn: jqc.Connection, queue: str, prefix: str) -> None:
    bystanders(conn, queue, prefix)
    before = everything(conn)
    try:
        handle = jqc.Connection.over(conn.factory, prefix=prefix, clock=conn.clock).queue(queue)
        handle.add("x", {"v": 1})
    except jqc.InvalidInputError:
        assert everything(conn) == before
        return
    assert handle.counts().waiting == 1
    handle.pause()
    handle.resume()
    assert handle.obliterate(force=True) >= 1
    after = everything(conn)
    assert after == before, sorted(set(before) ^ set(after))[:5]  # its own keys gone, nobody else's


options = st.fixed_dictionaries(
    {},
    optional={
        "priority": st.one_of(st.integers(-(2**64), 2**64), st.floats(), st.booleans(), st.text(max_size=3)),
        "delay": st.one_of(st.floats(), st.integers(-(2**64), 2**64), st.text(max_size=3)),
        "attempts": st.one_of(st.integers(-(2**64), 2**64), st.floats(), st.none()),
        "timeout": st.one_of(st.floats(), st.none(), st.integers(-5, 2**40)),
        "lifo": st.one_of(st.booleans(), st.integers(-1, 2), st.none()),
        "meta": st.one_of(st.none(), st.dictionaries(nasty_text, nasty_text, max_size=3), st.integers()),
    },
)


@SETTINGS
@given(given_options=options)
def test_option_values_are_applied_exactly_or_refused(conn: jqc.Connection, given_options: dict[str, Any]) -> None:
    bystanders(conn)
    queue = conn.queue("photos")
    before = everything(conn)
    try:
        job = queue.add("x", 1, **given_options)
    except jqc.InvalidInputError:
        assert everything(conn) == before
        return
    stored = queue.get_job(job.id)
    assert stored is not None
    for name, value in given_options.items():
        if name == "meta" and value is not None:
            assert dict(stored.options.meta or {}) == value
        elif name in ("priority", "attempts", "lifo") and value is not None:
            assert getattr(stored.options, name) == value, (name, value, stored.options)
        elif name == "delay":
            assert stored.ready_at - stored.created_at == pytest.approx(max(0.0, value), rel=1e-9, abs=0.002), value
        elif name == "timeout" and value is not None:
            assert stored.options.timeout == pytest.approx(value, rel=1e-9, abs=0.001), value
    assert others(everything(conn), "jqc", "photos") == others(before, "jqc", "photos")
