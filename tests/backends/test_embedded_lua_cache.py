"""The embedded backend's Lua speed-ups (jqc/backends/embedded_lua.py): each script compiled once,
leaked globals found in Lua, full garbage collections every 1,000 scripts.

Every check compares a jqc embedded server with one that runs fakeredis's Lua as shipped
(``new_server(cache=False)``: no compile cache, globals checked by fakeredis, only the declared-keys
check of jqc.backends.embedded_keys kept):
the same engine operations must reply and store the same, the same scripts must fail with the same
exception and text, and a script that sets a global must still be refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import fakeredis
import pytest
import redis.exceptions as rex

import jqc
from jqc import Backoff
from jqc.backends import embedded_lua
from jqc.backends.embedded import EmbeddedFactory
from jqc.backends.embedded_lua import CachingRuntime

FROZEN_WALL_CLOCK = 1_800_000_000.0  # fakeredis stamps stream IDs with time.time(); both runs see this


@pytest.fixture(autouse=True)
def _fresh_availability(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees the cache as the installed versions allow, whatever the environment says."""
    monkeypatch.delenv("JQC_EMBEDDED_LUA_CACHE", raising=False)
    embedded_lua.available.cache_clear()
    yield
    embedded_lua.available.cache_clear()


def connection(*, cache: bool, clock: jqc.Clock | None = None) -> jqc.Connection:
    return jqc.Connection.over(EmbeddedFactory(server=embedded_lua.new_server(cache=cache)), clock=clock)


def server_of(conn: jqc.Connection) -> fakeredis.FakeServer:
    factory = conn.factory
    assert isinstance(factory, EmbeddedFactory)
    return factory.server


def runtime_of(conn: jqc.Connection) -> CachingRuntime:
    runtime = server_of(conn)._lua_runtime
    assert isinstance(runtime, CachingRuntime)
    return runtime


def lua_memory_kb(conn: jqc.Connection) -> float:
    """The Lua heap in use, read without collecting anything."""
    return float(runtime_of(conn).runtime.eval("collectgarbage('count')"))


def lua_live_kb(conn: jqc.Connection) -> float:
    """The Lua heap after a full collection: what is still referenced."""
    runtime = runtime_of(conn).runtime
    runtime.execute("collectgarbage()")
    return float(runtime.eval("collectgarbage('count')"))


def outcome(call: Callable[[], Any]) -> tuple[str, str]:
    try:
        return "ok", repr(call())
    except Exception as exc:
        return type(exc).__qualname__, str(exc)


# -- the cached path is the one in use -----------------------------------------------------------


def test_cache_is_active_with_the_installed_fakeredis_and_lupa() -> None:
    """Pins the fast path to the installed versions: an upgrade that turns it off fails here."""
    versions = f"fakeredis {metadata.version('fakeredis')}, lupa {metadata.version('lupa')}"
    assert embedded_lua._fakeredis_matches(), f"{versions}: fakeredis's scripting internals changed"
    assert embedded_lua._lupa_matches(), f"{versions}: compiled chunks no longer fail like execute"
    assert embedded_lua.available()
    conn = jqc.connect()
    conn.queue("q").add("x")
    runtime = runtime_of(conn)
    assert runtime.compiles == 1 and runtime.cached_scripts() == 1
    assert isinstance(server_of(conn)._lua_runtime.globals(), embedded_lua._GlobalsView)


def test_each_script_is_compiled_once(clock: jqc.VirtualClock) -> None:
    conn = jqc.connect(clock=clock)
    q = conn.queue("q")
    for _ in range(3):
        q.add("x")
        q.complete(q.claim("w").jobs[0], None)
    runtime = runtime_of(conn)
    assert runtime.compiles == 3  # add, claim, complete
    client = conn.sync_client()
    assert [client.eval("return ARGV[1]", 0, str(i)) for i in range(3)] == ["0", "1", "2"]
    assert runtime.compiles == 4 and runtime.cached_scripts() == 4


def test_async_clients_share_the_cache(clock: jqc.VirtualClock) -> None:
    import asyncio

    conn = jqc.connect(clock=clock)
    conn.queue("q").add("sync")

    async def main() -> int:
        aq = conn.async_queue("q")
        await aq.add("async")
        claimed = await aq.claim("w", count=2)
        await conn.aclose()
        return len(claimed.jobs)

    assert asyncio.run(main()) == 2
    assert runtime_of(conn).compiles == 2  # add once for both clients, then claim


def test_stock_server_when_fakeredis_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fakeredis whose internals differ (or a failing check) silently gets stock behaviour."""
    monkeypatch.setattr(embedded_lua, "_fakeredis_matches", lambda: False)
    assert not embedded_lua.available()
    conn = jqc.connect()
    assert type(server_of(conn)) is fakeredis.FakeServer
    conn.queue("q").add("x")
    assert conn.queue("q").counts().waiting == 1
    assert not isinstance(server_of(conn)._lua_runtime, CachingRuntime)

    embedded_lua.available.cache_clear()

    def broken(*args: Any) -> str:
        raise OSError("no source")

    monkeypatch.setattr(embedded_lua.inspect, "getsource", broken)
    assert not embedded_lua.available()


def test_environment_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JQC_EMBEDDED_LUA_CACHE", "0")
    assert not embedded_lua.available()
    assert type(server_of(jqc.connect())) is fakeredis.FakeServer


# -- same behaviour as stock fakeredis ------------------------------------------------------------


def keyspace(conn: jqc.Connection) -> dict[str, Any]:
    """Every key with its type and full contents."""
    client = conn.sync_client()
    out: dict[str, Any] = {}
    for key in sorted(client.scan_iter(match="*", count=1000)):
        kind = client.type(key)
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = sorted(client.hgetall(key).items())
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = kind
        out[key] = (kind, value, client.pttl(key))
    return out


def lifecycle(conn: jqc.Connection, clock: jqc.VirtualClock) -> list[tuple[str, str]]:
    """Most engine paths, each step's result (or error) recorded."""
    q = conn.queue("photos")
    steps: list[tuple[str, str]] = []

    def step(call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except Exception as exc:
            steps.append((type(exc).__qualname__, str(exc)))
            return None
        steps.append(("ok", repr(result)))
        return result

    step(lambda: q.add("a", {"n": 1}, attempts=3, backoff=Backoff.exponential(2, cap=60)))
    step(lambda: q.add("b", {"n": 2}, delay=5, priority=4))
    step(lambda: q.add("c", {"n": 3}, job_id="fixed-id"))
    step(lambda: q.add("c", {"n": 3}, job_id="fixed-id"))  # idempotent
    step(lambda: q.add_bulk([("d", i) for i in range(20)]))
    first = step(lambda: q.claim("w1", count=2)).jobs[0]
    step(lambda: q.progress(first, 50))
    step(lambda: q.log(first, "working"))
    step(lambda: q.extend([first], lock=60))
    step(lambda: q.fail(first, "flaky"))  # retried with backoff
    step(lambda: q.complete(first, {"late": True}))  # stale token: LockLostError
    second = step(lambda: q.claim("w2")).jobs[0]
    step(lambda: q.complete(second, {"ok": True}, fetch_next=3, worker="w2"))
    held = step(lambda: q.claim("w3", count=5, lock=1)).jobs
    step(lambda: q.complete_many([(c, i) for i, c in enumerate(held[:3])], fetch_next=2, worker="w3"))
    step(lambda: q.release(held[3], delay=2))
    step(lambda: q.fail(held[4], "broken", retry=False))
    step(lambda: q.change_priority("fixed-id", 7))
    step(lambda: q.change_delay("fixed-id", 30))
    step(lambda: q.promote("fixed-id"))
    clock.advance(10)
    step(lambda: q.recover_stalled())
    step(lambda: q.pause())
    step(lambda: q.claim("w4"))
    step(lambda: q.resume())
    step(lambda: q.configure(concurrency=10, rate_limit=(100, 1.0)))
    step(lambda: q.claim("w4", count=3))
    step(lambda: q.counts())
    step(lambda: q.list_jobs("waiting"))
    step(lambda: q.list_jobs("failed"))
    step(lambda: q.dead_letters())
    step(lambda: q.replay_dead(held[4].job.id))
    step(lambda: q.metrics())
    step(lambda: q.events())
    step(lambda: q.get_job(second.job.id))
    step(lambda: q.job_logs(first.job.id))
    step(lambda: q.remove("fixed-id"))
    step(lambda: q.retry("no-such-job"))
    step(lambda: q.clean("completed", 0))
    step(lambda: q.drain(delayed=True))
    step(lambda: q.counts())
    return steps


def test_jqc_operations_reply_and_store_the_same_as_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: FROZEN_WALL_CLOCK)
    runs = []
    for cache in (True, False):
        clock = jqc.VirtualClock()
        conn = connection(cache=cache, clock=clock)
        runs.append((lifecycle(conn, clock), keyspace(conn)))
        assert runtime_of(conn).caching is cache
    (cached_steps, cached_keys), (stock_steps, stock_keys) = runs
    assert any(kind == "LockLostError" for kind, _ in cached_steps), "the stale-token path was not exercised"
    assert cached_steps == stock_steps
    assert cached_keys == stock_keys


SCRIPTS: list[tuple[str, tuple[Any, ...]]] = [
    ("return {1, 'two', {3, false, 'x'}, nil, 5}", (0,)),
    ("return 3.7", (0,)),
    ("return {KEYS[1], ARGV[1], #ARGV}", (1, "k", "a", "b")),
    ("return redis.call('SET', KEYS[1], ARGV[1])", (1, "k", "v")),
    ("redis.call('SET', KEYS[1], 'x') return redis.call('LPUSH', KEYS[1], 'y')", (1, "str")),  # WRONGTYPE
    ("return redis.call('HSET', KEYS[1])", (1, "h")),  # wrong number of arguments
    ("return redis.call('NOSUCHCMD', KEYS[1])", (1, "a")),
    ("return redis.pcall('INCR', KEYS[1], 'extra')", (1, "str2")),
    ("return redis.call('SET', KEYS[1], {})", (1, "k")),  # bad argument type
    ("return redis.call('GET', 'undeclared')", (0,)),  # refused by the declared-keys check
    ("return redis.pcall('DEL', KEYS[1], 'undeclared')", (1, "k")),
    ("error('boom')", (0,)),
    ("local t = nil\nreturn t.field", (0,)),
    ("error({err='MYERR custom'})", (0,)),
    ("return redis.error_reply('MYERR replied')", (0,)),
    ("return redis.status_reply('FINE')", (0,)),
    ("return {err='ERR table'}", (0,)),
    ("return 1 +", (0,)),  # compile error
    ("return 'unterminated", (0,)),  # compile error
    ("local f = function() setfenv(1, {}) end return 7", (0,)),  # mentions setfenv: never cached
    ("return ARGV[1]", (2, "only-one")),  # numkeys larger than the arguments
    ("return 1", (-1,)),  # negative numkeys
    ("return cjson.encode({a = 1})", (0,)),
    ("return cjson.decode('[1, 2]')", (0,)),
]


def on_cached_and_stock(run: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``run(client)`` on a fresh cached server, then on a fresh stock one."""
    return run(connection(cache=True).sync_client()), run(connection(cache=False).sync_client())


@pytest.mark.parametrize(("source", "args"), SCRIPTS, ids=[s for s, _ in SCRIPTS])
def test_scripts_reply_and_fail_as_stock(source: str, args: tuple[Any, ...]) -> None:
    numkeys, *rest = args

    def run(client: Any) -> Any:
        eval_twice = [outcome(lambda: client.eval(source, numkeys, *rest)) for _ in range(2)]
        sha = client.script_load(source)
        by_sha = outcome(lambda: client.evalsha(sha, numkeys, *rest))
        after = outcome(lambda: client.eval("return 'still fine'", 0))
        return eval_twice, by_sha, after

    cached, stock = on_cached_and_stock(run)
    assert cached == stock
    assert cached[2] == ("ok", "'still fine'")


def test_script_errors_keep_their_messages() -> None:
    client = connection(cache=True).sync_client()
    with pytest.raises(rex.ResponseError, match=r"Error running script .*: boom"):
        client.eval("error('boom')", 0)
    with pytest.raises(rex.ResponseError, match=r"error loading code: .*unexpected symbol near '<eof>'"):
        client.eval("return 1 +", 0)
    with pytest.raises(rex.ResponseError, match="WRONGTYPE"):
        client.eval("redis.call('SET', KEYS[1], 'x') return redis.call('LPUSH', KEYS[1], 'y')", 1, "s")
    with pytest.raises(rex.ResponseError, match="Wrong number of args calling Redis command from script"):
        client.eval("return redis.call('HSET', KEYS[1])", 1, "h")


LEAKS = [
    "leaked = 1 return 1",
    "_G.leaked = 1 return 1",
    "rawset(_G, 'leaked', 1) return 1",
    "function leaked() end return 1",
    "leaked = 1 return redis.call('PING')",  # caught before the call runs
    "leaked = 1 return cjson.encode({1})",
    "KEYS = nil leaked = 1 return 1",  # a global removed does not hide one added
    "_G[1] = 'numeric name' return 1",
    "_G.leaked = 1 return redis.call('PING')",
    "loadstring('leaked = 1')() return redis.call('PING')",
    "rawset(_G, 'leaked', 1) return redis.call('PING')",  # goes round the watch: checked in full
    "setmetatable(_G, nil) leaked = 1 return redis.call('PING')",
    "local ok = pcall(function() leaked = 1 end) return redis.pcall('PING')",
]


@pytest.mark.parametrize("source", LEAKS)
def test_a_script_that_sets_a_global_still_raises(source: str) -> None:
    def run(client: Any) -> Any:
        leak = [outcome(lambda: client.eval(source, 0)) for _ in range(2)]
        return leak, outcome(lambda: client.eval("return type(leaked)", 0))

    cached, stock = on_cached_and_stock(run)
    assert cached == stock
    (first, _), after = cached
    assert first[0] == "ResponseError" and "Script attempted to set global variables" in first[1]
    assert after == ("ok", "'nil'")  # the leaked global was cleared, as stock fakeredis does


WRITES_AROUND_A_LEAK = [
    "redis.call('SET', 'a', 1) leaked = 1 redis.call('SET', 'b', 1) return 1",
    "redis.call('SET', 'a', 1) _G['leaked'] = 1 redis.call('SET', 'b', 1) return 1",
    "redis.call('SET', 'a', 1) leaked = 1 leaked = nil redis.call('SET', 'b', 1) return 1",  # gone again: no leak
    "redis.call('SET', 'a', 1) return 1",
]


@pytest.mark.parametrize("source", WRITES_AROUND_A_LEAK)
def test_writes_before_and_after_a_leaked_global_as_stock(source: str) -> None:
    """A leak is found before the next redis.call runs, on the cached server as on the stock one."""

    def run(client: Any) -> Any:
        results = []
        for _ in range(3):  # the same script again, and after it a clean one
            results.append(outcome(lambda: client.eval(source, 0)))
            results.append(outcome(lambda: client.eval("return redis.call('EXISTS', 'a', 'b')", 0)))
            client.delete("a", "b")
        return results

    cached, stock = on_cached_and_stock(run)
    assert cached == stock


def test_engine_keeps_working_after_a_leaking_script(clock: jqc.VirtualClock) -> None:
    conn = jqc.connect(clock=clock)
    q = conn.queue("q")
    q.add("before")
    with pytest.raises(rex.ResponseError, match="Script attempted to set global variables: leaked"):
        conn.sync_client().eval("leaked = 1 return 1", 0)
    q.add("after")
    assert [c.job.name for c in q.claim("w", count=2).jobs] == ["before", "after"]


def test_script_load_exists_and_flush_are_unchanged() -> None:
    def run(client: Any) -> list[tuple[str, str]]:
        sha = client.script_load("return 'loaded'")
        return [
            outcome(lambda: client.script_exists(sha, "0" * 40)),
            outcome(lambda: client.evalsha(sha, 0)),
            outcome(lambda: client.script_flush()),
            outcome(lambda: client.script_exists(sha)),
            outcome(lambda: client.evalsha(sha, 0)),  # flushed: the compiled copy does not bring it back
            outcome(lambda: client.eval("return 'loaded'", 0)),
            outcome(lambda: client.script_exists(sha)),
            outcome(lambda: client.evalsha(sha, 0)),
        ]

    cached, stock = on_cached_and_stock(run)
    assert cached == stock
    assert cached[4][0] == "NoScriptError"


# -- memory stays bounded ---------------------------------------------------------------------------


def test_lua_memory_stays_bounded_over_20k_scripts() -> None:
    conn = connection(cache=True)
    client = conn.sync_client()
    # Allocates a table and strings per call, and replies with a table: garbage for Lua to collect.
    sha = client.script_load(
        "local t = {} for i = 1, #ARGV do t[i] = ARGV[i] .. KEYS[1] end redis.call('SET', KEYS[1], t[1]) return t"
    )
    args = [f"value-{i}" * 4 for i in range(8)]
    samples: list[float] = []
    live_at_start = 0.0
    total, batch = 20_000, 500
    for start in range(0, total, batch):
        if start == batch:
            live_at_start = lua_live_kb(conn)
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            pipe.evalsha(sha, 1, "k", *args)
        replies = pipe.execute()
        assert replies[-1] == [a + "k" for a in args]
        samples.append(lua_memory_kb(conn))
        if start % 1_500 == 0:  # also mid-cycle between two full collections
            client.evalsha(sha, 1, "k", *args)
            samples.append(lua_memory_kb(conn))
    runtime = runtime_of(conn)
    assert runtime.full_collections >= total // embedded_lua.FULL_GC_EVERY
    assert runtime.compiles == 1
    quarter = len(samples) // 4
    early, late = max(samples[:quarter]), max(samples[-quarter:])
    assert max(samples) < 2_048, samples  # KB: Lua's incremental collector keeps up
    assert late <= 2 * early + 64, samples
    assert lua_live_kb(conn) <= live_at_start + 1, "something stays referenced after each script"


def test_engine_lua_memory_stays_bounded(clock: jqc.VirtualClock) -> None:
    conn = jqc.connect(clock=clock)
    q = conn.queue("q")
    samples = []
    for i in range(600):
        q.add("x", {"i": i})
        q.complete(q.claim("w").jobs[0], {"i": i})
        if i % 19 == 0:
            samples.append(lua_memory_kb(conn))
    quarter = len(samples) // 4
    assert max(samples) < 4_096, samples
    assert max(samples[-quarter:]) <= 2 * max(samples[:quarter]) + 64, samples


def test_compiled_scripts_are_bounded() -> None:
    conn = connection(cache=True)
    client = conn.sync_client()
    for i in range(embedded_lua.MAX_SCRIPTS + 40):
        assert client.eval(f"return {i}", 0) == i
    runtime = runtime_of(conn)
    assert runtime.cached_scripts() == embedded_lua.MAX_SCRIPTS
    assert client.eval("return 0", 0) == 0  # dropped long ago: compiled again, same reply
    assert runtime.compiles == embedded_lua.MAX_SCRIPTS + 41
