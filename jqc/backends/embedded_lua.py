"""Faster Lua for the embedded backend: compile each script once, check globals in Lua, collect less.

What fakeredis (2.41) does on every ``EVAL`` (``EVALSHA`` goes through it):

- it runs the script with ``lua_runtime.execute(script)``, which parses and compiles the whole
  source again (jqc's scripts are 2-13 KB with their includes, 15-30 µs per KB: 0.2-0.4 ms for
  ``add``, ``claim`` and ``complete``);
- before every ``redis.call`` and ``cjson`` call, and after the script, it checks that the script
  set no global variable by copying every global name into a Python set
  (``set(lua_runtime.globals().keys())``, 8-16 µs with the 44 globals it defines);
- after the script it runs a full ``collectgarbage()``, which walks the whole Lua heap.

Without those, a single ``add`` went from about 0.69 ms to 0.42 ms and a claim plus complete from
1.8 ms to 1.1 ms on a loaded 2-core machine; what is left is fakeredis's Python cost per command.

What this module does, for the :class:`fakeredis.FakeServer` that :func:`new_server` makes (jqc's
embedded connections) and for no other server: when fakeredis stores the server's Lua runtime (its
``_lua_runtime`` attribute), it gets a :class:`CachingRuntime` instead, which passes every
attribute through to the real lupa runtime except these:

- ``execute(source)`` for a script (bytes, no arguments) compiles the source once, under the chunk
  name lupa's ``execute`` uses, keeps the compiled function (at most :data:`MAX_SCRIPTS`, oldest
  dropped first) and calls it. Calling the compiled chunk is what ``execute`` does after compiling,
  so replies, error messages and exception types stay the same. A source that does not compile is
  handed to the real ``execute``, so compile errors keep their exact text, and so is a script that
  mentions ``setfenv`` (it could change the environment of the kept function). fakeredis still
  sets ``KEYS``/``ARGV`` and checks for leaked globals around the call itself.
- ``globals()`` returns a view of the globals table whose ``keys()`` first asks a small Lua
  function whether every global name is one fakeredis expects (the set it records in
  ``_lua_expected_globals``). If so it returns that expected set, whose difference with itself is
  empty, exactly as the full listing's would be; if any name is unexpected it returns the real
  listing, so fakeredis names, clears and reports the leaked globals as before. Everything else on
  the view goes to the real table.
- A metatable on the globals table calls back into Python whenever a new global name is assigned
  (``x = 1``, ``_G.x = 1``, a loaded chunk's assignment). While a kept script runs, the check
  fakeredis makes before each ``redis.call`` (and ``cjson`` or ``redis.log`` call) then answers at
  once when no new name was assigned since the last full check, instead of asking Lua each time;
  after any assignment it checks in full as above. The check after the script is always in full,
  and so is every check of a script that mentions ``rawset``, ``setmetatable``, ``getmetatable``,
  ``debug``, ``setfenv`` or ``getfenv`` (the ways round the metatable), so a leaked global is still
  refused before the next ``redis.call`` runs, as stock fakeredis refuses it.
- ``execute("collectgarbage()")``, fakeredis's clean-up after each script, runs a full collection
  only every :data:`FULL_GC_EVERY` scripts. Lua's incremental collector runs meanwhile (the garbage
  is the KEYS/ARGV tables and replies of finished scripts), so the heap stays bounded;
  ``tests/backends/test_embedded_lua_cache.py`` checks that over 20,000 calls.

It is version-guarded: :func:`available` checks once per process that fakeredis still makes the
runtime in ``ScriptingCommandsMixin._get_server_runtime`` under these attribute names, runs scripts
with ``execute`` and checks globals the way described above, and that lupa's compiled chunks reply
and fail exactly as ``execute`` does. If any of that does not hold, :func:`new_server` returns a
stock server and fakeredis behaves as shipped. ``JQC_EMBEDDED_LUA_CACHE=0`` in the environment
turns it off too (to compare).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable
from typing import Any, Final

import fakeredis

from jqc.backends import embedded_keys

__all__ = ["FULL_GC_EVERY", "MAX_SCRIPTS", "CachingRuntime", "available", "new_server"]

MAX_SCRIPTS: Final = 128
"""Compiled scripts kept per server (jqc has about 30; beyond this the oldest goes first)."""

FULL_GC_EVERY: Final = 1000
"""Scripts run between two full Lua garbage collections (stock fakeredis: one after every script)."""

_GC_SOURCE: Final = "collectgarbage()"
_CHUNK_NAME: Final = b"<python>"  # the name lupa's execute gives a chunk; it shows in error text
_NOT_CACHED: Final = object()  # marks a source that always goes to the real execute
_MISSING: Final = object()

# Set once per runtime on the globals table: any new global name, however it is assigned (``x = 1``,
# ``_G.x = 1``, ``loadstring('x = 1')()``), calls ``on_new`` (a Python callback that marks the table
# for a full check). Only ``rawset`` or replacing the metatable go around it: a script that mentions
# either (or ``debug``) is always checked in full (see CachingRuntime._plain).
_WATCH_NEW_GLOBALS: Final = b"""
function(globals, on_new)
    local rawset = rawset
    setmetatable(globals, {__newindex = function(t, k, v) rawset(t, k, v); on_new() end})
end
"""
_UNWATCHED: Final = (b"rawset", b"setmetatable", b"getmetatable", b"debug", b"setfenv", b"getfenv")

# Made once per runtime with the globals table and the expected names (a Lua set) as upvalues, so
# a script that overwrites ``next`` or ``_G`` cannot change what it checks.
_ALL_GLOBALS_EXPECTED: Final = b"""
function(globals, expected)
    local next = next
    return function()
        local name = next(globals)
        while name ~= nil do
            if expected[name] == nil then
                return false
            end
            name = next(globals, name)
        end
        return true
    end
end
"""


class _GlobalsView:
    """The Lua globals table, with a ``keys()`` that skips listing them when all are expected.

    While a watched script runs (``watching``) and no new global name was assigned since the last
    full check (``clean``), ``keys()`` answers at once with no name at all (the set difference
    fakeredis takes is then empty, as it would be). Otherwise it asks Lua whether every name is
    expected (then it answers the expected set) or returns the real listing.
    """

    __slots__ = ("_all_expected", "_expected", "_table", "clean", "watching")

    def __init__(self, table: Any, expected: frozenset[Any], all_expected: Callable[[], Any]) -> None:
        self._table = table
        self._expected = expected
        self._all_expected = all_expected
        self.clean = False
        self.watching = False

    def keys(self) -> Iterable[Any]:
        if self.watching and self.clean:
            return ()
        if self._all_expected() is True:
            self.clean = True
            return self._expected
        self.clean = False
        return self._table.keys()  # type: ignore[no-any-return]

    def new_global(self) -> None:
        """A new global name was assigned: the next check lists them all."""
        self.clean = False

    def __getitem__(self, name: Any) -> Any:
        return self._table[name]

    def __setitem__(self, name: Any, value: Any) -> None:
        self._table[name] = value

    def __delitem__(self, name: Any) -> None:
        del self._table[name]

    def __iter__(self) -> Any:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


class CachingRuntime:
    """A lupa ``LuaRuntime`` that reuses compiled scripts (see the module docstring)."""

    def __init__(self, runtime: Any, *, caching: bool = True) -> None:
        self._runtime = runtime
        self.caching = caching
        """False: pass every execute through (only the key check of the server stays)."""
        self._compiled: dict[bytes, Any] = {}
        self._scripts_since_gc = 0
        self._globals_view: _GlobalsView | None = None
        self._unwatched: set[bytes] = set()  # kept sources that could get round the new-global watch
        self.compiles = 0
        """Sources compiled so far (a new script, or one dropped from the cache and seen again)."""
        self.full_collections = 0
        """Full garbage collections run so far."""
        self.table_from = runtime.table_from  # called for every script: bound here, not via __getattr__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    @property
    def runtime(self) -> Any:
        """The real lupa runtime."""
        return self._runtime

    def cached_scripts(self) -> int:
        """How many compiled scripts are kept now."""
        return sum(1 for fn in self._compiled.values() if fn is not _NOT_CACHED)

    def expect_globals(self, names: Iterable[Any]) -> None:
        """Record the global names fakeredis allows; from now on ``globals().keys()`` checks in Lua."""
        expected = frozenset(names)
        make = self._runtime.eval(_ALL_GLOBALS_EXPECTED)
        table = self._runtime.globals()
        check = make(table, self._runtime.table_from({name: True for name in expected}))
        view = _GlobalsView(table, expected, check)
        self._runtime.eval(_WATCH_NEW_GLOBALS)(table, view.new_global)
        self._globals_view = view

    def globals(self) -> Any:
        if self._globals_view is None:
            return self._runtime.globals()
        return self._globals_view

    def execute(self, lua_code: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.caching:
            return self._runtime.execute(lua_code, *args, **kwargs)
        if args or kwargs or type(lua_code) is not bytes:
            if lua_code == _GC_SOURCE and not args and not kwargs:
                return self._collect_garbage()
            return self._runtime.execute(lua_code, *args, **kwargs)
        fn = self._compiled.get(lua_code, _MISSING)
        if fn is _MISSING:
            fn = self._compile(lua_code)
        if fn is _NOT_CACHED:
            return self._runtime.execute(lua_code)
        view = self._globals_view
        if view is None or lua_code in self._unwatched:
            return fn()
        view.watching = True  # checks during the script may skip the listing; the one after it does not
        try:
            return fn()
        finally:
            view.watching = False

    def _compile(self, source: bytes) -> Any:
        fn: Any = _NOT_CACHED
        if b"setfenv" not in source:
            try:
                fn = self._runtime.compile(source, name=_CHUNK_NAME)
            except Exception:  # a syntax error: the real execute reports it in its own words
                fn = _NOT_CACHED
            else:
                self.compiles += 1
        if len(self._compiled) >= MAX_SCRIPTS:
            dropped = next(iter(self._compiled))
            self._compiled.pop(dropped, None)
            self._unwatched.discard(dropped)
        self._compiled[source] = fn
        if any(word in source for word in _UNWATCHED):
            self._unwatched.add(source)
        return fn

    def _collect_garbage(self) -> None:
        self._scripts_since_gc += 1
        if self._scripts_since_gc >= FULL_GC_EVERY:
            self._scripts_since_gc = 0
            self.full_collections += 1
            self._runtime.execute(_GC_SOURCE)


class _CachingFakeServer(embedded_keys.DeclaredKeysServer):
    """A FakeServer whose Lua runtime, once fakeredis makes it, is wrapped in a CachingRuntime, and
    whose scripts may touch only the keys they declare (:mod:`jqc.backends.embedded_keys`). With
    ``cache`` False the runtime keeps the key check but compiles every script again and checks
    globals as fakeredis ships (to compare)."""

    def __init__(self, *args: Any, cache: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jqc_cache = cache

    @property
    def _lua_runtime(self) -> CachingRuntime:
        try:
            runtime: CachingRuntime = self.__dict__["_jqc_lua_runtime"]
        except KeyError:  # not made yet: hasattr() must say False, as fakeredis checks with it
            raise AttributeError("_lua_runtime") from None
        return runtime

    @_lua_runtime.setter
    def _lua_runtime(self, runtime: Any) -> None:
        from fakeredis.commands_mixins.scripting_mixin import LUA_MODULE  # importable: available() said so

        if isinstance(runtime, LUA_MODULE.LuaRuntime):  # anything else is kept as it comes
            runtime = CachingRuntime(runtime, caching=self._jqc_cache)
        self.__dict__["_jqc_lua_runtime"] = runtime

    @property
    def _lua_expected_globals(self) -> set[Any]:
        try:
            names: set[Any] = self.__dict__["_jqc_lua_expected_globals"]
        except KeyError:
            raise AttributeError("_lua_expected_globals") from None
        return names

    @_lua_expected_globals.setter
    def _lua_expected_globals(self, names: set[Any]) -> None:
        self.__dict__["_jqc_lua_expected_globals"] = names
        runtime = self.__dict__.get("_jqc_lua_runtime")
        if isinstance(runtime, CachingRuntime) and self._jqc_cache:
            runtime.expect_globals(names)


def new_server(*, cache: bool = True) -> fakeredis.FakeServer:
    """A fresh Redis-7 FakeServer for one embedded connection, whose scripts may touch only the keys
    they declare, with the compile cache unless ``cache`` is False (tests and benchmarks compare the
    two); a stock one when :func:`available` says fakeredis is not the one this module knows."""
    if available():
        return _CachingFakeServer(version=(7, 0), cache=cache)
    return fakeredis.FakeServer(version=(7, 0))


@functools.cache
def available() -> bool:
    """Whether the installed fakeredis and lupa work the way this module relies on (checked once)."""
    if os.environ.get("JQC_EMBEDDED_LUA_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        return _fakeredis_matches() and _lupa_matches()
    except Exception:
        return False


def _fakeredis_matches() -> bool:
    """fakeredis's scripting code still has the shape this module was written against."""
    from fakeredis.commands_mixins import scripting_mixin

    mixin = scripting_mixin.ScriptingCommandsMixin
    module = inspect.getsource(scripting_mixin)
    make_runtime = inspect.getsource(mixin._get_server_runtime)
    run_script = inspect.getsource(mixin.eval)
    check_globals = inspect.getsource(scripting_mixin._check_for_lua_globals)
    server = inspect.getsource(fakeredis.FakeServer)
    return (
        "s._lua_runtime = " in make_runtime
        and "lua_runtime = s._lua_runtime" in make_runtime
        and "s._lua_expected_globals = set(lua_runtime.globals().keys())" in make_runtime
        and "return s._lua_runtime" in make_runtime
        and "lua_runtime = self._get_server_runtime(self._server)" in run_script
        and "lua_runtime.execute(script)" in run_script
        and 'lua_runtime.execute("collectgarbage()")' in run_script
        # globals() is read in these two places only, and keys() only to take a set difference
        and module.count(".globals()") == 2
        and "set(lua_globals.keys()) - expected_globals" in check_globals
        and check_globals.count(".keys()") == 1
        # the server itself never sets or declares either attribute
        and "_lua_runtime" not in server
        and "_lua_expected_globals" not in server
        # the seams embedded_keys wraps: set on the server, read back from it
        and "s._lua_set_keys_argv = " in make_runtime
        and "s._lua_set_keys_argv(" in run_script
        and "s._lua_redis_call_wrapper = " in make_runtime
        and "s._lua_redis_pcall_wrapper = " in make_runtime
        and "s._lua_redis_call_wrapper," in make_runtime
        and "s._lua_redis_pcall_wrapper," in make_runtime
        and all(name not in server for name in ("_lua_set_keys_argv", "_lua_redis_call_wrapper"))
    )


def _lupa_matches() -> bool:
    """Compile-then-call replies and fails exactly as ``execute`` does (on a scratch runtime)."""
    from fakeredis.commands_mixins.scripting_mixin import LUA_MODULE

    runtime = LUA_MODULE.LuaRuntime(encoding=None, unpack_returned_tuples=True)
    for source in (b"return {1, 'a', {2}}, 3", b"local t = nil\nreturn t.x", b"error('boom')"):
        executed = _outcome(functools.partial(runtime.execute, source))
        compiled = _outcome(functools.partial(_compile_and_call, runtime, source))
        if executed != compiled:
            return False
    return True


def _compile_and_call(runtime: Any, source: bytes) -> Any:
    return runtime.compile(source, name=_CHUNK_NAME)()


def _outcome(run: Callable[[], Any]) -> tuple[str, str]:
    try:
        result = run()
    except Exception as exc:
        return type(exc).__qualname__, str(exc)
    return "ok", repr(_plain(result))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "values") and not isinstance(value, bytes | str):
        return [_plain(v) for v in value.values()]
    return value
