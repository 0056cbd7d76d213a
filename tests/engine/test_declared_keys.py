"""Every key a script touches is declared in KEYS, and no key is ever built inside Lua.

Redis Cluster redirects a script (ASK, TRYAGAIN) during a slot migration only by the keys it
declares; a key built inside the script is read on whichever node runs it, where it may already
have moved away and so reads as missing. These checks parse every script with its includes:

- each ``redis.call`` names its command as a string literal, and each key argument is a ``K_``
  name (bound by the loader to a ``KEYS`` position) or a helper's parameter that every call of the
  helper fills with a ``K_`` name; a concatenation, a string, ``KEYS[...]`` or any other
  expression is refused;
- the ``K_`` names a script's code can reach are exactly the names on its ``--@keys`` line (none
  missing, none declared for nothing), and each is a known key or one its caller names.

The embedded backend enforces the same at run time (``jqc.backends.embedded_keys``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from jqc.engine import scripts
from jqc.engine.keys import SUFFIXES
from jqc.engine.lua_source import key_local, raw_source, reachable_code, script_keys

#: Names a script may declare that its caller fills at call time (not in SUFFIXES).
GIVEN = {"record", "lease"}
#: Commands whose every argument after the command name is a key.
ALL_KEYS = {"DEL", "EXISTS", "UNLINK", "TOUCH", "MGET", "WATCH"}
#: Commands with no key.
NO_KEY = {"PING", "TIME", "ECHO"}

_CALL = re.compile(r"\bredis\s*\.\s*p?call\s*\(")
_K = re.compile(r"\bK_[A-Z_]+\b")
_IDENT = re.compile(r"[A-Za-z_]\w*")
_FUNCTION = re.compile(r"\bfunction\s+(\w+)\s*\(([^)]*)\)")


def _comments_out(source: str) -> str:
    """``source`` without ``--`` comments (strings kept: command names are read from them)."""
    out = []
    for line in source.splitlines():
        quote = None
        for i, ch in enumerate(line):
            if quote:
                if ch == quote and line[i - 1] != "\\":
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif line.startswith("--", i):
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _arguments(text: str, start: int) -> list[str]:
    """The top-level comma-separated arguments of the call whose '(' ends just before ``start``."""
    args, depth, quote, current = [], 0, None, []
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\":
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch in "({[":
            depth += 1
            current.append(ch)
        elif ch in ")}]":
            if depth == 0:
                args.append("".join(current).strip())
                return [a for a in args if a]
            depth -= 1
            current.append(ch)
        elif ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    raise ValueError("unbalanced call")


@dataclass(frozen=True)
class Finding:
    """A redis.call whose key argument is not a declared K_ name."""

    where: str
    call: str
    why: str


def key_findings(source: str, where: str = "script") -> list[Finding]:
    """Every redis.call in ``source`` whose command is not a literal or whose key is built."""
    code = _comments_out(source)
    params: dict[str, list[tuple[str, int]]] = {}  # parameter name -> (function, position)
    for match in _FUNCTION.finditer(code):
        for pos, name in enumerate(p.strip() for p in match.group(2).split(",")):
            params.setdefault(name, []).append((match.group(1), pos))
    found: list[Finding] = []
    for match in _CALL.finditer(code):
        args = _arguments(code, match.end())
        text = code[match.start() : match.end()] + ", ".join(args) + ")"
        command = re.fullmatch(r"'([A-Za-z]+)'", args[0]) if args else None
        if command is None:
            found.append(Finding(where, text, "the command is not a string literal"))
            continue
        name = command.group(1).upper()
        if name in NO_KEY:
            continue
        keys = args[1:] if name in ALL_KEYS else args[1:2]
        if not keys:
            found.append(Finding(where, text, "no key argument"))
        for key in keys:
            why = _key_problem(code, key, params)
            if why:
                found.append(Finding(where, text, why))
    return found


def _key_problem(
    code: str, key: str, params: dict[str, list[tuple[str, int]]], seen: frozenset[tuple[str, int]] = frozenset()
) -> str | None:
    """Why ``key`` (a key argument) is not a declared name: None when it is a K_ name, or a helper
    parameter that every call of the helper fills with one (directly or through other helpers)."""
    if _K.fullmatch(key):
        return None
    if not _IDENT.fullmatch(key):
        return f"key {key!r} is an expression (built in Lua)"
    if key not in params:
        return f"key {key!r} is neither a K_ name nor a helper's parameter"
    for function, pos in params[key]:
        if (function, pos) in seen:
            continue  # checked further up this chain
        for call in re.finditer(rf"(?<!function )\b{function}\s*\(", code):
            passed = _arguments(code, call.end())
            arg = passed[pos] if pos < len(passed) else None
            if arg is None or _key_problem(code, arg, params, seen | {(function, pos)}):
                return f"{function}() is called with key {arg!r}"
    return None


def reached_key_names(name: str) -> set[str]:
    """The K_ names the code of script ``name`` can run (its top level and the helpers it calls)."""
    code = reachable_code(raw_source(name))
    assert code is not None, f"{name}.lua: unexpected layout"
    return set(_K.findall(_comments_out(code)))


# -- the checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_every_key_argument_is_a_declared_name(name: str) -> None:
    assert key_findings(raw_source(name), name) == []


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_a_script_declares_exactly_the_keys_its_code_reaches(name: str) -> None:
    declared = {key_local(n) for n in script_keys(name)}
    reached = reached_key_names(name)
    assert reached - declared == set(), f"{name}.lua uses keys it does not declare"
    assert declared - reached == set(), f"{name}.lua declares keys it never touches"
    assert set(script_keys(name)) <= set(SUFFIXES) | GIVEN


@pytest.mark.parametrize("name", sorted(scripts.NAMES))
def test_no_script_builds_or_indexes_keys(name: str) -> None:
    """KEYS is read only by the loader's binding line; no prefix to build keys from exists."""
    code = _comments_out(raw_source(name))
    assert not re.search(r"\bKEYS\b", code)
    assert not re.search(r"\bBASE\b", code)


def test_the_loader_binds_the_declared_keys_in_order() -> None:
    source = scripts.build_source("claim")
    names = script_keys("claim")
    binding = f"local {', '.join(key_local(n) for n in names)} = "
    binding += ", ".join(f"KEYS[{i}]" for i in range(1, len(names) + 1))
    assert binding in source


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("redis.call('HGET', K_JOBS .. id, 'x')", "expression"),
        ("redis.call('DEL', BASE .. 'j:' .. id)", "expression"),
        ("redis.call('HGET', KEYS[2], 'x')", "expression"),
        ("redis.call('HGET', 'jqc:{q}:meta', 'x')", "expression"),
        ("local k = K_META\nredis.call('HGET', k, 'x')", "neither"),
        ("redis.call('DEL', K_META, other)", "neither"),
        ("local function f(key) redis.call('ZADD', key, 1, 'x') end\nf(K_A)\nf(K_B .. 'x')", "called with"),
        ("redis.call(command, K_META)", "not a string literal"),
    ],
)
def test_the_checker_refuses_built_keys(source: str, why: str) -> None:
    found = key_findings(source)
    assert found and why in found[0].why, found


def test_the_checker_accepts_declared_names_and_helper_parameters() -> None:
    source = "local function f(key) redis.call('ZADD', key, 1, 'x') end\nf(K_A)\nf(K_B)\n"
    source += "redis.call('DEL', K_META, K_EVENTS) -- redis.call('DEL', BASE)\nredis.call('HGET', K_JOBS, id)"
    assert key_findings(source) == []
