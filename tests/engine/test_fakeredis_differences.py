"""jqc is built around the places where the embedded backend (fakeredis + Lua) differs from Redis.

Each test names the difference (see the project's fakeredis research notes) and checks the design
choice that makes it harmless: statically over the Lua scripts and engine sources, or by running
the same behaviour on both backends, or (for speed) on the embedded backend alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions as rex

import jqc
from jqc.backends.exchange import ExchangeBackend
from jqc.backends.routed import RoutedBackend
from jqc.engine import scripts
from jqc.engine.calls import CommandCall, ScriptCall, run_sync
from jqc.engine.job import MAX_PRIORITY
from tests.engine.lua_static import all_lua_files, global_uses, strip_lua
from tests.stored import job_record

PACKAGE = Path(jqc.__file__).parent
ENGINE_SOURCES = [
    *sorted(PACKAGE.joinpath("engine").glob("*.py")),
    *sorted(PACKAGE.joinpath("backends").glob("*.py")),
    PACKAGE / "connection.py",
]


def lua_texts() -> dict[str, str]:
    return {name: path.read_text("utf-8") for name, path in all_lua_files().items()}


def strip_lua_comments(source: str) -> str:
    """Comments removed, strings kept (so command names stay visible)."""
    return "\n".join(re.sub(r"--.*$", "", line) for line in source.splitlines())


def commands_called(source: str) -> list[str]:
    """The command of every redis.call / redis.pcall in ``source`` (all must be string literals)."""
    code = strip_lua_comments(source)
    calls = re.findall(r"redis\.p?call\(\s*(\S)", code)
    names = re.findall(r"redis\.p?call\(\s*'([A-Za-z_]+)'", code)
    assert len(names) == len(calls), "a redis.call whose command is not a literal defeats these checks"
    return [n.upper() for n in names]


def every_command() -> set[str]:
    found = {c for text in lua_texts().values() for c in commands_called(text)}
    assert {"HSET", "ZADD", "RPOP", "XADD"} <= found, "the command scan found nothing: it is broken"
    return found


class Recorder:
    """Records every command the sync backend sends, through :meth:`wrap`ped transports."""

    def __init__(self, client: Any) -> None:
        self.client = client  # a plain client of the same server, for the test's own commands
        self.commands: list[tuple[Any, ...]] = []
        self.shas: list[str] = []
        self.loaded: list[str] = []

    def record(self, commands: list[tuple[Any, ...]]) -> None:
        for args in commands:
            self.commands.append(args)
            if str(args[0]).upper() == "EVALSHA":
                self.shas.append(str(args[1]))
            elif [str(a).upper() for a in args[:2]] == ["SCRIPT", "LOAD"]:
                self.loaded.append(str(args[2]))

    def wrap(self, transport: Any) -> Recording:
        return Recording(self, transport)


class Recording:
    """A transport whose commands a :class:`Recorder` sees."""

    def __init__(self, recorder: Recorder, transport: Any) -> None:
        self.recorder = recorder
        self.transport = transport
        self.address = transport.address

    def exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.recorder.record(commands)
        return list(self.transport.exchange(commands))

    def close(self) -> None:
        self.transport.close()


def run_lifecycle(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    """Touch most engine paths: add, delay, claim, progress, log, complete, fail, retry, stall."""
    queue.add("a", {"n": 1})
    queue.add("b", {"n": 2}, delay=5, priority=4)
    queue.add_bulk([("c", 3), ("d", 4)])
    first = queue.claim("w1").jobs[0]
    queue.progress(first, 50)
    queue.log(first, "working")
    queue.extend([first])
    queue.complete(first, {"ok": True}, fetch_next=1, worker="w1")
    second = queue.claim("w1").jobs[0]
    queue.fail(second, "boom", retry=False)
    queue.retry(second.id)
    clock.advance(6)
    queue.claim("w2", lock=1)
    clock.advance(2)
    queue.recover_stalled()
    queue.configure(concurrency=10, rate_limit=(100, 1.0))
    queue.counts()
    queue.list_jobs("waiting")
    queue.dead_letters()
    queue.metrics()
    queue.events()
    queue.get_job(first.id)
    queue.job_logs(first.id)
    queue.clean("completed", 0)


@pytest.fixture
def recorded(conn: jqc.Connection, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Every sync engine call of ``conn`` goes through a Recorder (on every node of a cluster)."""
    backend = conn.backend
    recorder = Recorder(conn.sync_client())
    if isinstance(backend, RoutedBackend):
        node = backend.node
        monkeypatch.setattr(backend, "node", lambda address: recorder.wrap(node(address)))
        return recorder
    assert isinstance(backend, ExchangeBackend)
    monkeypatch.setattr(backend, "transport", recorder.wrap(backend.transport))
    return recorder


# -- Lua libraries and APIs fakeredis does not have -----------------------------------------------


def test_no_script_mentions_cjson() -> None:
    """fakeredis's cjson encodes {} as [], escapes differently and raises Python errors on bad
    input: jqc encodes and decodes JSON in Python only, and scripts pass it through as text."""
    assert [name for name, text in lua_texts().items() if "cjson" in text.lower()] == []


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_scripts_use_no_library_fakeredis_lacks(name: str) -> None:
    """cmsgpack, struct and bit are nil in fakeredis (so is cjson's real behaviour)."""
    source = scripts.build_source(name)
    read = {u.name for u in global_uses(source)}
    assert read.isdisjoint({"cjson", "cmsgpack", "struct", "bit"}), read
    assert not re.search(r"\b(cjson|cmsgpack|struct|bit)\s*\.", strip_lua(source))


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_scripts_use_only_redis_call(name: str) -> None:
    """redis.sha1hex, set_repl, replicate_commands, breakpoint, debug and REDIS_VERSION are nil in
    fakeredis; error() texts and error({err=...}) differ. jqc reports outcomes as reply codes."""
    code = strip_lua(scripts.build_source(name))
    assert set(re.findall(r"\bredis\s*\.\s*(\w+)", code)) <= {"call"}
    assert not re.search(r"\bREDIS_VERSION", code)
    assert not re.search(r"\b(error|assert)\s*\(", code), "signal failures with a Code, not a Lua error"


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_scripts_touch_nothing_outside_the_redis_sandbox(name: str) -> None:
    """fakeredis leaves os, io, require, print, dofile, getfenv ... reachable; real Redis does not."""
    escaped = {"os", "io", "require", "print", "dofile", "loadfile", "load", "loadstring", "getfenv", "setfenv"}
    escaped |= {"package", "module", "debug", "collectgarbage", "rawset", "rawget", "setmetatable", "_G"}
    read = {u.name for u in global_uses(scripts.build_source(name))}
    assert read.isdisjoint(escaped), read & escaped


def test_no_script_uses_a_shebang_or_read_only_variant() -> None:
    """fakeredis cannot run '#!lua flags=...' scripts, EVAL_RO or EVALSHA_RO."""
    assert [n for n, text in lua_texts().items() if text.startswith("#!")] == []
    sources = "\n".join(p.read_text("utf-8") for p in ENGINE_SOURCES).lower()
    for name in ("eval_ro", "evalsha_ro", "fcall", "function load", "#!lua"):
        assert name not in sources, name


# -- commands ---------------------------------------------------------------------------------------


def test_scripts_call_no_blocking_or_depth_dependent_pop() -> None:
    """BLMOVE never blocks in fakeredis (and is refused inside scripts by Redis); blocking commands
    are refused in scripts anyway; ZPOPMIN copies the whole sorted set in fakeredis (O(N))."""
    blocking = {"BLMOVE", "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"}
    assert every_command().isdisjoint(blocking | {"ZPOPMIN", "ZPOPMAX", "ZMPOP"})


def test_scripts_never_read_server_time_or_set_expiry() -> None:
    """jqc passes the caller's clock to every script and keeps no server TTLs: fakeredis has no
    clock injection and sends no 'expired' notifications, and tests move a virtual clock."""
    timed = {"TIME", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "SETEX", "PSETEX", "GETEX", "SET", "PERSIST"}
    assert every_command().isdisjoint(timed)


def test_engine_sources_name_no_command_fakeredis_lacks() -> None:
    """INFO, OBJECT and CONFIG GET are unknown commands in fakeredis; XINFO's shape differs;
    keyspace notifications are sent even when disabled. None is used by the engine."""
    text = "\n".join(p.read_text("utf-8") for p in ENGINE_SOURCES)
    literals = set(re.findall(r"['\"]([A-Z][A-Z_]{2,})['\"]", text))
    assert {"HGETALL", "SCAN"} <= literals, "the literal scan found nothing: it is broken"
    missing = {"INFO", "OBJECT", "CONFIG", "DEBUG", "MEMORY", "XINFO", "BLMOVE", "EVAL_RO", "EVALSHA_RO", "ACL"}
    assert literals.isdisjoint(missing), literals & missing
    methods = r"\.(info|object|config_get|config_set|memory_usage|xinfo_\w+|blmove|psubscribe|subscribe)\("
    assert not re.search(methods, text)
    assert "__keyspace" not in text and "notify-keyspace-events" not in text


def test_engine_calls_send_no_command_fakeredis_lacks(
    queue: jqc.Queue, clock: jqc.VirtualClock, recorded: Recorder
) -> None:
    run_lifecycle(queue, clock)
    queue.obliterate(force=True)
    sent = {str(args[0]).upper() for args in recorded.commands}
    assert {"HGET", "SCAN"} <= sent, "the recorder saw nothing: it is broken"
    assert sent.isdisjoint({"INFO", "OBJECT", "CONFIG", "XINFO", "BLMOVE", "EVAL_RO", "EVALSHA_RO"}), sent


# -- script caching ----------------------------------------------------------------------------------


def test_evalsha_is_always_sent_in_lower_case(
    queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock, recorded: Recorder
) -> None:
    """fakeredis answers NoScriptError to an upper-case SHA that real Redis would run."""
    run_lifecycle(queue, clock)
    if conn.embedded:  # (SCRIPT FLUSH is server-wide: spare a shared real server)
        recorded.client.script_flush()  # the reload path must send lower case too
        loads = len(recorded.loaded)
        queue.counts()
        assert recorded.loaded[loads:] == [scripts.scripts()["counts"].source]
        assert recorded.shas[-2:] == [scripts.scripts()["counts"].sha] * 2  # NoScriptError, load, retry
    known = {s.sha for s in scripts.scripts().values()}
    assert recorded.shas and set(recorded.shas) <= known
    assert all(re.fullmatch(r"[0-9a-f]{40}", sha) for sha in recorded.shas)


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [ValueError("bad"), OverflowError("1/0"), json.JSONDecodeError("x", "y", 0)])
@pytest.mark.parametrize("kind", ["script", "command"])
def test_python_exceptions_escaping_the_backend_become_backend_errors(failure: Exception, kind: str) -> None:
    """fakeredis lets Python exceptions out of Lua (return 1/0, cjson.decode of bad input)."""

    class Broken:
        address = "broken"

        def exchange(self, commands: list[Any]) -> list[Any]:
            raise failure

        def close(self) -> None:
            pass

    call: ScriptCall[Any] | CommandCall[Any]
    if kind == "script":
        call = ScriptCall("counts", ("jqc:{q}:",), (0, 0), lambda r: r)
    else:
        call = CommandCall(("HGETALL", "k"), lambda r: r)
    with pytest.raises(jqc.BackendError, match=type(failure).__name__):
        run_sync(ExchangeBackend(Broken()), call)


def test_script_error_texts_are_never_parsed() -> None:
    """Error texts differ between fakeredis and Redis; the executor decides by exception type."""
    calls_source = PACKAGE.joinpath("engine", "calls.py").read_text("utf-8")
    assert not re.search(r"in str\(exc\)|str\(exc\)\.(startswith|find)|\.args\[0\]\.", calls_source)
    assert issubclass(rex.NoScriptError, rex.ResponseError)


def test_refusals_carry_the_same_reason_on_both_backends(queue: jqc.Queue) -> None:
    """Reasons travel in the reply table (identical everywhere), never in a Lua error text."""
    with pytest.raises(jqc.JobNotFoundError) as info:
        queue.remove("ghost")
    assert str(info.value) == "no job ghost"
    queue.add("x")
    held = queue.claim("w").jobs[0]
    queue.complete(held)
    with pytest.raises(jqc.LockLostError) as lost:
        queue.complete(held)
    assert str(lost.value) == f"job {held.id} is no longer held under token {held.token}"


# -- numbers and JSON -----------------------------------------------------------------------------


def test_json_is_encoded_by_python_exactly(queue: jqc.Queue, conn: jqc.Connection) -> None:
    """The cjson differences (empty objects, sparse arrays, number and string formatting) never
    reach jqc: what Redis stores is exactly Python's compact JSON, on both backends."""
    data = {"path": "a/b", "name": "é ☕", "empty": {}, "none": [], "nested": {"e": {}}, "big": 2**53, "third": 1 / 3}
    data |= {"e14": 1e14, "neg_zero": -0.0, "null": None}
    expected = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    job = queue.add("x", data)
    assert job_record(conn, queue, job.id)["d"] == expected
    held = queue.claim("w").jobs[0]
    assert held.job.data == data and isinstance(held.job.data["empty"], dict)
    queue.progress(held, {"done": {}})
    queue.complete(held, [{}, [], "x/y"])
    assert job_record(conn, queue, job.id)["pg"] == '{"done":{}}'
    assert job_record(conn, queue, job.id)["rv"] == '[{},[],"x/y"]'
    assert queue.get_job(job.id).result == [{}, [], "x/y"]  # type: ignore[union-attr]


def test_priority_scores_stay_exact_at_the_highest_priority(queue: jqc.Queue, conn: jqc.Connection) -> None:
    """Scripts compute scores as Lua numbers (priority * 2^32 + a sequence slot) that Redis and
    fakeredis turn into arguments with %.17g; MAX_PRIORITY keeps every score below 2^53, so scores
    stay exact and FIFO holds even among jobs of the highest priority. (Were adjacent scores
    rounded together, Redis would order the tied members by name: the ids sort against FIFO.)"""
    fifo = [queue.add("x", job_id=job_id, priority=MAX_PRIORITY).id for job_id in ("c-job", "b-job", "a-job")]
    first = queue.add("x", job_id="z-job", priority=MAX_PRIORITY - 1).id
    raw = {
        job_id: conn.sync_client().execute_command("ZSCORE", queue.ops.keys.key("prio"), job_id)
        for job_id in [*fifo, first]
    }
    scores = {job_id: float(value) for job_id, value in raw.items()}
    assert all(score.is_integer() and score < 2**53 for score in scores.values()), raw
    assert len(set(scores.values())) == 4, raw
    assert [queue.claim("w").jobs[0].id for _ in range(4)] == [first, *fifo]


# -- speed: claiming does not get slower as the queue gets deeper ---------------------------------
# fakeredis's ZPOPMIN / ZPOPMAX copy the whole sorted set on every call, and ZRANGEBYSCORE with LIMIT
# walks it from the start, so a claim built on them slows down with depth on the embedded backend
# (about 4x at 50,000 jobs). The timing itself is measured in benchmarks/embedded_depth.py; here the
# choice that avoids it is checked on the scripts' text.

DEPTH_COSTLY = re.compile(r"redis\.call\(\s*'(ZPOPMIN|ZPOPMAX|BZPOPMIN|BZPOPMAX)'", re.IGNORECASE)


def test_no_script_pops_a_sorted_set() -> None:
    """Waiting jobs are taken with RPOP (list) and ZRANGE by rank + ZREM (sorted set), never a pop
    whose fakeredis implementation copies the set."""
    assert DEPTH_COSTLY.search("local top = redis.call('zpopmin', K_PRIO, 1)")  # (the check can fail)
    offenders = {name: DEPTH_COSTLY.findall(text) for name, text in lua_texts().items()}
    assert not {name: found for name, found in offenders.items() if found}
