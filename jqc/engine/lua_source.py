"""The source Redis runs for each script: reply codes, declared keys bound to names, includes.

Every key a script reads or writes is declared in ``KEYS`` (so Redis Cluster can redirect a call
whose keys are moving, and no key is ever built inside Lua). A script names its keys on one header
line, ``--@keys meta wait jobs events``; the loader prepends ``local K_META, K_WAIT, ... = KEYS[1],
KEYS[2], ...`` in that order, and the Python side passes the same names' keys in the same order
(:func:`script_keys`, :meth:`jqc.engine.keys.QueueKeys.declared`). Scripts and their includes refer
to keys only through these ``K_`` names; ``tests/engine/test_declared_keys.py`` checks that every
``redis.call`` key is one, and that each script declares exactly the ``K_`` names its code reaches.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from jqc.engine.codes import lua_prelude

__all__ = ["build_source", "key_local", "raw_source", "reachable_code", "script_keys"]

_INCLUDE = re.compile(r"^--@include (.+)$", re.MULTILINE)
_KEYS = re.compile(r"^--@keys (.+)$", re.MULTILINE)
_NAME = re.compile(r"[a-z][a-z_]*")
_FUNCTION = re.compile(r"local function (\w+)\(")
_COMMENT = re.compile(r"--.*$", re.MULTILINE)
_K_NAME = re.compile(r"\bK_[A-Z_]+\b")


def _read(path: str) -> str:
    return resources.files("jqc.engine").joinpath("lua", path).read_text("utf-8")


def key_local(name: str) -> str:
    """The Lua local a declared key is bound to: ``jobs`` -> ``K_JOBS``."""
    return "K_" + name.upper()


@functools.cache
def script_keys(name: str) -> tuple[str, ...]:
    """The key names script ``name`` declares, in ``KEYS`` order (its ``--@keys`` line)."""
    found = _KEYS.findall(_read(f"{name}.lua"))
    if len(found) != 1:
        raise ValueError(f"script {name} must have exactly one --@keys line, has {len(found)}")
    names = tuple(found[0].split())
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"script {name} declares bad or repeated key names: {names}")
    return names


def raw_source(name: str) -> str:
    """The script's file with its includes expanded (no prelude, no key bindings)."""
    text = _read(f"{name}.lua")

    def expand(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split(",")]
        return "\n".join(_read(f"include/{p}.lua") for p in parts)

    return _INCLUDE.sub(expand, text, count=1)


def build_source(name: str) -> str:
    """The source Redis runs for ``name``: code prelude, key bindings, the file with includes expanded.

    ``K_`` names that included helpers mention but this script does not declare (helpers it never
    calls) are bound to nil locals, so they are never globals: calling such a helper would pass nil
    as a key, which Redis refuses.
    """
    names = script_keys(name)
    body = raw_source(name)
    binding = ""
    if names:
        locals_ = ", ".join(key_local(n) for n in names)
        values = ", ".join(f"KEYS[{i}]" for i in range(1, len(names) + 1))
        binding = f"local {locals_} = {values}\n"
    declared = {key_local(n) for n in names}
    unbound = sorted(set(_K_NAME.findall(_COMMENT.sub("", body))) - declared)
    if unbound:
        binding += f"local {', '.join(unbound)} -- not declared by this script (helpers it does not call)\n"
    return lua_prelude() + binding + body


def reachable_code(source: str) -> str | None:
    """The parts of ``source`` its top-level code can run: the top level plus every ``local
    function`` it calls, directly or through other helpers (comments removed). None when the layout
    is not the one jqc's scripts use (then count the whole source, never too little)."""
    lines = _COMMENT.sub("", source).splitlines()
    functions: dict[str, str] = {}
    top: list[str] = []
    i = 0
    while i < len(lines):
        match = _FUNCTION.match(lines[i])
        if not match:
            top.append(lines[i])
            i += 1
            continue
        body = [lines[i]]
        one_line = re.search(r"\bend\s*$", lines[i]) is not None
        i += 1
        while not one_line and i < len(lines) and not re.match(r"end\b", lines[i]):
            body.append(lines[i])
            i += 1
        if not one_line:
            if i >= len(lines):
                return None
            i += 1
        functions[match.group(1)] = "\n".join(body)
    reached: set[str] = set()
    pending = ["\n".join(top)]
    while pending:
        text = pending.pop()
        for name, text_of in functions.items():
            if name not in reached and re.search(rf"\b{name}\s*\(", text):
                reached.add(name)
                pending.append(text_of)
    return "\n".join(["\n".join(top), *(functions[n] for n in reached)])
