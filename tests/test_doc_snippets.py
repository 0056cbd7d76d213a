"""Every code block in the README and docs/ runs as written (docs/testing.md and docs/worker.md are
checked by their own tests).

Each fenced block says what it is in its info string, and the info string says what is checked:

* ``python``: run as is, in a fresh namespace, on the embedded backend (so a block that names a
  server in a comment still runs anywhere);
* ``sh``: every line that starts a ``jqc`` (or ``python -m jqc``) command must parse with jqc's own
  parser, so no block shows an option jqc does not have; ``sh synopsis`` blocks show placeholders
  (``[--url URL]``, ``…``) and are only read;
* ``text``, ``yaml``, ``json``: read, not run.

A block without an info string fails the test: a reader cannot tell what it is, nor can this test.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jqc.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
OWNED_ELSEWHERE = {"testing.md", "worker.md"}  # tests/testing/test_docs.py and the worker's own tests
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in OWNED_ELSEWHERE)]
KINDS = {"python", "sh", "text", "yaml", "json"}
FENCE = re.compile(r"^```(.*)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    info: tuple[str, ...]
    code: str

    @property
    def kind(self) -> str:
        return self.info[0] if self.info else ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    info: tuple[str, ...] = ()
    for number, line in enumerate(lines, 1):
        found = FENCE.match(line)
        if not found:
            continue
        if start is None:
            start, info = number, tuple(found.group(1).split())
        else:
            yield Block(page, start, info, "\n".join(lines[start : number - 1]) + "\n")
            start = None


ALL = [b for page in PAGES for b in blocks(page)]


def test_the_pages_have_blocks_to_check() -> None:
    assert {b.page.name for b in ALL} >= {"README.md", "engine.md", "sim.md", "coordinator.md", "autoscaling.md"}
    assert sum(b.kind == "python" for b in ALL) >= 6 and sum(b.kind == "sh" for b in ALL) >= 4


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.where)
def test_every_block_says_what_it_is(block: Block) -> None:
    assert block.kind in KINDS, f"{block.where}: give the fence an info string, one of {sorted(KINDS)}"


PYTHON = [b for b in ALL if b.kind == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.where)
def test_python_blocks_run_as_written(
    block: Block, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    code = compile(block.code, block.where, "exec")
    exec(code, {"__name__": "__main__"})
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # no block leaves an event loop running behind it


def commands(block: Block) -> Iterator[list[str]]:
    """The jqc command lines of a shell block: continuations joined, comments cut, split at ; and &&."""
    text = block.code.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in (";", "&&", "||", "|"):
                words.append(token)
                continue
            if words[:3] == ["python", "-m", "jqc"]:
                words = ["jqc", *words[3:]]
            if words[:1] == ["jqc"]:
                yield words[1:]
            words = []


SHELL = [b for b in ALL if b.kind == "sh" and "synopsis" not in b.info]


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.where)
def test_jqc_commands_in_shell_blocks_parse(block: Block) -> None:
    for argv in commands(block):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"{block.where}: `jqc {shlex.join(argv)}` does not parse") from exc
