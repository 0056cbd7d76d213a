"""Static views of the Lua scripts for the tests: sources, code with comments stripped, and the
exact set of global names each script reads and writes (from Lua 5.1 bytecode, via lupa).

Not a test module itself; test_codes.py and test_fakeredis_differences.py import it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

LUA_DIR = Path(str(resources.files("jqc.engine").joinpath("lua")))
INCLUDE_DIR = LUA_DIR / "include"

# Lua 5.1 opcodes that touch globals (lopcodes.h: GETGLOBAL = 5, SETGLOBAL = 7).
_GETGLOBAL, _SETGLOBAL = 5, 7


def script_files() -> dict[str, Path]:
    """Top-level scripts by name (lua/*.lua)."""
    return {p.stem: p for p in sorted(LUA_DIR.glob("*.lua"))}


def include_files() -> dict[str, Path]:
    """Include files by name (lua/include/*.lua)."""
    return {p.stem: p for p in sorted(INCLUDE_DIR.glob("*.lua"))}


def all_lua_files() -> dict[str, Path]:
    """Every Lua file, keyed by its path relative to lua/ (``add.lua``, ``include/base.lua``)."""
    out = {f"{name}.lua": path for name, path in script_files().items()}
    out.update({f"include/{name}.lua": path for name, path in include_files().items()})
    return out


def strip_lua(source: str) -> str:
    """``source`` with comments removed and every string literal replaced by ``''``.

    Newlines are kept, so line numbers still match. Handles ``--`` and ``--[==[ ]==]`` comments,
    quoted strings with backslash escapes and ``[==[ ]==]`` long strings.
    """
    out: list[str] = []
    i, n = 0, len(source)
    long_open = re.compile(r"\[(=*)\[")
    while i < n:
        ch = source[i]
        if source.startswith("--", i):
            m = long_open.match(source, i + 2)
            if m:
                end = source.find("]" + m.group(1) + "]", m.end())
                end = n if end < 0 else end + len(m.group(1)) + 2
                out.append("\n" * source.count("\n", i, end))
                i = end
            else:
                end = source.find("\n", i)
                i = n if end < 0 else end
            continue
        if ch in "'\"":
            j = i + 1
            while j < n and source[j] != ch:
                if source[j] == "\\":
                    j += 1
                elif source[j] == "\n":
                    break
                j += 1
            out.append("''")
            i = j + 1
            continue
        m = long_open.match(source, i)
        if m:
            end = source.find("]" + m.group(1) + "]", m.end())
            end = n if end < 0 else end + len(m.group(1)) + 2
            out.append("''" + "\n" * source.count("\n", i, end))
            i = end
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# -- globals from bytecode --------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalUse:
    name: str
    line: int
    write: bool


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.endian = "<"
        self.int_size = 4
        self.size_t = 8
        self.number_size = 8

    def take(self, count: int) -> bytes:
        chunk = self.data[self.pos : self.pos + count]
        if len(chunk) != count:
            raise ValueError("truncated Lua bytecode")
        self.pos += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        fmt = {4: "i", 8: "q"}[self.int_size]
        value: int = struct.unpack(self.endian + fmt, self.take(self.int_size))[0]
        return value

    def size(self) -> int:
        fmt = {4: "I", 8: "Q"}[self.size_t]
        value: int = struct.unpack(self.endian + fmt, self.take(self.size_t))[0]
        return value

    def string(self) -> bytes | None:
        length = self.size()
        return self.take(length)[:-1] if length else None


def _function(r: _Reader, uses: list[GlobalUse]) -> None:
    r.string()  # source name
    r.int()  # line defined
    r.int()  # last line defined
    r.take(4)  # upvalues, params, vararg flag, max stack
    code = [struct.unpack(r.endian + "I", r.take(4))[0] for _ in range(r.int())]
    constants: list[object] = []
    for _ in range(r.int()):
        kind = r.byte()
        if kind == 0:
            constants.append(None)
        elif kind == 1:
            constants.append(bool(r.byte()))
        elif kind == 3:
            r.take(r.number_size)
            constants.append(0.0)
        elif kind == 4:
            raw = r.string()
            constants.append(raw.decode("utf-8", "replace") if raw is not None else None)
        else:
            raise ValueError(f"unknown Lua constant type {kind}")
    for _ in range(r.int()):
        _function(r, uses)
    lines = [r.int() for _ in range(r.int())]
    for _ in range(r.int()):  # local variable names and ranges
        r.string()
        r.int()
        r.int()
    for _ in range(r.int()):  # upvalue names
        r.string()
    for pc, instr in enumerate(code):
        op = instr & 0x3F
        if op in (_GETGLOBAL, _SETGLOBAL):
            name = constants[instr >> 14]
            uses.append(GlobalUse(str(name), lines[pc] if pc < len(lines) else 0, op == _SETGLOBAL))


def _dump(source: str) -> bytes:
    import lupa.lua51  # the runtime fakeredis runs scripts in, Lua 5.1 like Redis

    runtime = lupa.lua51.LuaRuntime(encoding=None, unpack_returned_tuples=True)
    compile_ = runtime.eval(
        "function(src) local f, err = loadstring(src, '=script') "
        "if not f then return nil, err end return string.dump(f), nil end"
    )
    dumped, err = compile_(source.encode("utf-8"))
    if dumped is None:
        raise SyntaxError(err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err))
    return bytes(dumped)


def compile_check(source: str) -> None:
    """Raise SyntaxError if Lua 5.1 cannot compile ``source`` (what SCRIPT LOAD checks on Redis)."""
    _dump(source)


def global_uses(source: str) -> list[GlobalUse]:
    """Every read and write of a global name in ``source``, from its compiled bytecode."""
    r = _Reader(_dump(source))
    if r.take(4) != b"\x1bLua" or r.byte() != 0x51:
        raise ValueError("not Lua 5.1 bytecode")
    r.byte()  # format
    r.endian = "<" if r.byte() == 1 else ">"
    r.int_size, r.size_t, instruction, r.number_size = r.take(4)
    r.byte()  # integral numbers flag
    if instruction != 4:
        raise ValueError(f"unexpected instruction size {instruction}")
    uses: list[GlobalUse] = []
    _function(r, uses)
    return uses
