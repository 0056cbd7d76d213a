"""The reply-code contract between the Lua scripts and Python, and the hygiene of the scripts.

Static checks read the files under jqc/engine/lua (comments and strings stripped where it matters,
globals taken from the compiled Lua 5.1 bytecode); runtime checks load every script on both
backends. Each checker is also run on a small bad example, so a checker that stopped finding
anything would fail here rather than pass silently.
"""

from __future__ import annotations

import hashlib
import re

import pytest

import jqc
from jqc.engine import codes, scripts
from jqc.engine.calls import checked
from jqc.engine.codes import Code
from tests.engine.lua_static import (
    all_lua_files,
    compile_check,
    global_uses,
    include_files,
    script_files,
    strip_lua,
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FIRST = rf"(-?\s*\d[\w.]*|{_IDENT})"  # the first element of a table constructor
_LUA_KEYWORDS = {"end", "nil", "true", "false", "not", "and", "or", "function", "else", "elseif"}

#: Globals a Redis script may read: what Redis provides plus the Lua 5.1 builtins jqc relies on.
ALLOWED_GLOBAL_READS = {
    "redis", "KEYS", "ARGV",
    "tonumber", "tostring", "type", "ipairs", "pairs", "next", "select", "unpack",
    "math", "string", "table",
}  # fmt: skip


def reply_codes(source: str) -> list[tuple[str, str]]:
    """(first element, context) of every table a script returns as its reply.

    Covers ``return {X, ...}``, ``return nil, {X, ...}`` and ``v = {X, ...}`` for every variable
    ``v`` that is returned somewhere (``local out = {OK}`` ... ``return out``).
    """
    code = strip_lua(source)
    found = [(m.group(1), m.group(0)) for m in re.finditer(rf"\breturn\s+(?:nil\s*,\s*)?\{{\s*{_FIRST}", code)]
    returned = set(re.findall(rf"\breturn\s+({_IDENT})\s*(?:$|;|\bend\b|\belse)", code, re.MULTILINE))
    for var in sorted(returned - _LUA_KEYWORDS):
        found += [(m.group(1), m.group(0)) for m in re.finditer(rf"\b{var}\s*=\s*\{{\s*{_FIRST}", code)]
    return found


def code_problems(source: str) -> list[str]:
    """Reply codes that are not members of Code, or are spelled as numbers."""
    problems = []
    for first, context in reply_codes(source):
        if first[0] in "-0123456789":
            problems.append(f"numeric literal {first!r} used as a reply code: {context!r}")
        elif first.isupper() and first not in Code.__members__:
            problems.append(f"{first} is not a member of jqc.engine.codes.Code: {context!r}")
    code = strip_lua(source)
    problems += [f"negative literal as a code: {m.group(0)!r}" for m in re.finditer(r"\{\s*-\s*\d", code)]
    problems += [f"returns a bare negative number: {m.group(0)!r}" for m in re.finditer(r"\breturn\s+-\s*\d", code)]
    return problems


def header(text: str) -> list[str]:
    """The leading comment block of a Lua file."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return lines


def documented_codes(text: str) -> set[str]:
    """Code names written as ``{NAME`` in the header, from its ``-- Returns`` line on."""
    lines = header(text)
    start = next((i for i, line in enumerate(lines) if line.startswith("-- Returns")), len(lines))
    return set(re.findall(r"\{([A-Z][A-Z0-9_]*)", "\n".join(lines[start:])))


def include_lines(text: str) -> list[list[str]]:
    return [[p.strip() for p in m.group(1).split(",")] for m in re.finditer(r"^--@include (.+)$", text, re.M)]


# -- the Code enum and its mapping ----------------------------------------------------------------


def test_code_members_are_unique_and_every_error_code_maps_to_an_exception() -> None:
    assert len(Code.__members__) == len(list(Code)), "a Code value is reused: the alias would not reach Lua"
    errors = {c for c in Code if c < 0}
    outcomes = {c for c in Code if c >= 0}
    assert set(codes.ERRORS) == errors, "every error code (< 0) needs an exception, and only those"
    assert codes.OUTCOMES == outcomes
    for code, exc in codes.ERRORS.items():
        assert issubclass(exc, jqc.JqcError), (code, exc)


@pytest.mark.parametrize("code", [c for c in Code if c < 0], ids=lambda c: c.name)
def test_each_error_code_raises_its_exception_with_the_script_reason(code: Code) -> None:
    with pytest.raises(codes.ERRORS[code], match="the reason"):
        checked([int(code), "the reason"])


@pytest.mark.parametrize("code", [c for c in Code if c >= 0], ids=lambda c: c.name)
def test_outcome_codes_do_not_raise(code: Code) -> None:
    assert checked([int(code), 7]) == [int(code), 7]


@pytest.mark.parametrize("reply", [[-99, "x"], [], "OK", None, [None], ["0"]])
def test_unknown_codes_and_malformed_replies_are_script_reply_errors(reply: object) -> None:
    with pytest.raises(jqc.ScriptReplyError):
        checked(reply)


def test_the_prelude_gives_lua_every_code_with_its_value() -> None:
    import lupa.lua51

    runtime = lupa.lua51.LuaRuntime()
    names = [c.name for c in Code]
    values = runtime.execute(codes.lua_prelude() + f"return {{{', '.join(names)}}}")
    assert [values[i + 1] for i in range(len(names))] == [int(c) for c in Code]


# -- reply codes used by the scripts --------------------------------------------------------------


def test_code_checker_catches_unknown_names_and_numeric_codes() -> None:
    bad = """
local out = {LOCK_LOTS}
if x then return {K_WAIT, 1} end
if y then return nil, {-2, 'lost'} end
if z then return {3} end
return out
"""
    problems = code_problems(bad)
    assert any("LOCK_LOTS" in p for p in problems)
    assert any("K_WAIT" in p for p in problems)
    assert any("'-2'" in p for p in problems)
    assert any("'3'" in p for p in problems)
    assert code_problems("local out = {OK, 1}\nif a then return {JOB_NOT_FOUND, 'x'} end\nreturn out") == []


@pytest.mark.parametrize("path", sorted(all_lua_files()))
def test_scripts_reply_only_with_code_names(path: str) -> None:
    text = all_lua_files()[path].read_text("utf-8")
    assert code_problems(text) == []


def test_the_code_checker_sees_the_replies_of_the_scripts() -> None:
    seen = {first for path in all_lua_files().values() for first, _ in reply_codes(path.read_text("utf-8"))}
    # If these stop being found, the extraction broke (and the test above proves nothing).
    assert {"OK", "MORE", "EMPTY", "LOCK_LOST", "JOB_NOT_FOUND", "WRONG_STATE", "JOB_ACTIVE"} <= seen


# -- file layout ----------------------------------------------------------------------------------


def test_every_script_file_is_registered_and_every_registered_script_exists() -> None:
    assert len(scripts.NAMES) == len(set(scripts.NAMES)), "a name is listed twice in scripts.NAMES"
    assert set(script_files()) == set(scripts.NAMES)


@pytest.mark.parametrize("name", sorted(script_files()))
def test_script_header_lists_keys_argv_and_returns(name: str) -> None:
    text = script_files()[name].read_text("utf-8")
    lines = header(text)
    assert lines and re.match(rf"-- {re.escape(name)}: \S", lines[0]), f"{name}.lua must open with '-- {name}: ...'"
    block = "\n".join(lines)
    assert re.search(r"^--@keys( [a-z_]+)*$", text, re.M), "the script must declare its keys on a --@keys line"
    assert re.search(r"^-- ARGV\[1\]\s+now", block, re.M), "header must describe ARGV[1] (now, from base)"
    assert re.search(r"ARGV\[2\]\s+events cap", block), "header must describe ARGV[2] (events cap, from base)"
    assert re.search(r"^-- Returns\s+\S", block, re.M), "header must say what the script returns"
    documented = documented_codes(text)
    assert documented, "the Returns section must name the reply codes as {CODE, ...}"
    assert documented <= set(Code.__members__), documented - set(Code.__members__)
    returned = {first for first, _ in reply_codes(text) if first.isupper()}
    assert returned <= documented, f"returned but not documented: {sorted(returned - documented)}"


@pytest.mark.parametrize("name", sorted(include_files()))
def test_include_files_start_with_a_comment(name: str) -> None:
    text = include_files()[name].read_text("utf-8")
    assert header(text), f"include/{name}.lua must open with a comment saying what it provides"


def test_includes_resolve_and_are_all_used() -> None:
    used: set[str] = set()
    for name, path in script_files().items():
        groups = include_lines(path.read_text("utf-8"))
        assert len(groups) <= 1, f"{name}.lua: the loader expands only the first --@include line"
        for group in groups:
            assert group[0] == "base", f"{name}.lua: base must be included first"
            assert len(group) == len(set(group)), f"{name}.lua includes a file twice"
            unknown = set(group) - set(include_files())
            assert not unknown, f"{name}.lua: unknown include {unknown}"
            used.update(group)
        assert "--@include" not in scripts.build_source(name)
    assert used == set(include_files()), f"unused include files: {set(include_files()) - used}"


# -- globals: fakeredis reads undefined globals as nil, real Redis raises -------------------------


def test_global_checker_sees_reads_and_writes() -> None:
    uses = global_uses("x = 1\nlocal y = z\nfunction f() end\nlocal function g() return h end")
    assert {(u.name, u.write) for u in uses} == {("x", True), ("z", False), ("f", True), ("h", False)}


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_script_assigns_no_global_and_reads_only_known_ones(name: str) -> None:
    source = scripts.build_source(name)
    lines = source.splitlines()
    uses = global_uses(source)
    writes = [f"line {u.line}: {lines[u.line - 1].strip()!r} sets global {u.name!r}" for u in uses if u.write]
    assert writes == [], "declare it local (real Redis refuses global writes)"
    unknown = [
        f"line {u.line}: {lines[u.line - 1].strip()!r} reads undefined global {u.name!r}"
        for u in uses
        if not u.write and u.name not in ALLOWED_GLOBAL_READS
    ]
    assert unknown == [], "a typo, a missing include or a code name missing from Code"


# -- runtime: every script loads on both backends -------------------------------------------------


def test_script_shas_are_lowercase_sha1_of_the_source() -> None:
    for name, script in scripts.scripts().items():
        assert script.sha == hashlib.sha1(script.source.encode("utf-8")).hexdigest(), name
        assert re.fullmatch(r"[0-9a-f]{40}", script.sha), name


def test_every_script_compiles_and_loads(conn: jqc.Connection) -> None:
    client = conn.sync_client()
    for name, script in scripts.scripts().items():
        # fakeredis's SCRIPT LOAD stores without compiling, so compile with the Lua 5.1 it runs.
        compile_check(script.source)
        assert client.script_load(script.source) == script.sha, name
    shas = [s.sha for s in scripts.scripts().values()]
    assert client.script_exists(*shas) == [True] * len(shas)


def test_compile_check_rejects_broken_lua(conn: jqc.Connection) -> None:
    broken = codes.lua_prelude() + "return {OK"
    with pytest.raises(SyntaxError):
        compile_check(broken)
    if not conn.embedded:
        with pytest.raises(Exception, match=r"(?i)compil"):
            conn.sync_client().script_load(broken)
