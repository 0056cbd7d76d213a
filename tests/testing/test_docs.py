"""docs/testing.md stays true: every code block of it runs here, on both backends.

* a ``python`` block is a file (its first line names it: ``# test_x.py``); the test files are run
  with pytest in one go, except those a ``console`` block runs itself;
* an ``ini`` block is the examples' ``pytest.ini``;
* a ``console`` block is pytest commands (``VAR=value pytest args``), run in the examples' folder;
  the page's Redis URL stands for the real server's;
* a ``text`` block is output: of the ``console`` block just before it (each line the start of an
  output line), else of the python examples (each line a whole output line). ``...`` lines stand
  for lines left out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.testing.conftest import QUIET, real_redis_url

DOC = Path(__file__).parents[2] / "docs" / "testing.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
NAME = re.compile(r"# ([\w.]+)\n")
DOC_URL = "redis://localhost:6379/0"
KINDS = ("python", "ini", "console", "text")


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Page:
    files: dict[str, str] = field(default_factory=dict)
    ini: str = ""
    commands: list[Command] = field(default_factory=list)
    outputs: list[list[str]] = field(default_factory=list)  # text blocks of the python examples

    def main_tests(self) -> list[str]:
        named = {word for command in self.commands for word in shlex.split(command.line) if word.endswith(".py")}
        return [name for name in self.files if name.startswith("test_") and name not in named]


def _patterns(body: str) -> list[str]:
    lines = [line for line in body.splitlines() if line.strip() and line.strip() != "..."]
    return [re.sub(r"[\[\]*?]", lambda m: f"[{m.group(0)}]", line) for line in lines]


def read_page() -> Page:
    page = Page()
    last_console: list[Command] | None = None
    for kind, body in FENCE.findall(DOC.read_text()):
        assert kind in KINDS, f"a {kind!r} block in {DOC.name}: the docs test runs only {KINDS}"
        if kind == "text":
            patterns = _patterns(body)
            if last_console:
                last_console[-1].expected = ["*" + patterns[0] + "*", *(p + "*" for p in patterns[1:])]
            else:
                page.outputs.append(["*" + patterns[0], *patterns[1:]])
            continue
        last_console = None
        if kind == "console":
            last_console = [Command(line.split("  #")[0].strip()) for line in body.splitlines() if line.strip()]
            page.commands.extend(last_console)
            continue
        name = NAME.match(body)
        assert name, f"every {kind} block in {DOC.name} must start with '# <file name>':\n{body[:200]}"
        if kind == "ini":
            assert name.group(1) == "pytest.ini" and not page.ini, "one ini block: the examples' pytest.ini"
            page.ini = body
        else:
            assert name.group(1) not in page.files, f"two examples are called {name.group(1)}"
            page.files[name.group(1)] = body
    return page


def test_the_page_is_read_whole() -> None:
    page = read_page()
    assert len(page.files) >= 18 and page.ini and len(page.commands) >= 3
    assert all(command.line.split()[-1].endswith(".py") for command in page.commands), "commands name their files"
    for command in page.commands:
        for word in shlex.split(command.line):
            if word.endswith(".py"):
                assert word in page.files, f"{command.line!r} runs {word}, which the page does not show"


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, command: Command, backend: list[str]):
    words = shlex.split(command.line)
    while words and "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        monkeypatch.setenv(name, value.replace(DOC_URL, real_redis_url()) if DOC_URL in value else value)
    assert words[0] == "pytest", f"a console block runs pytest, not {command.line!r}"
    args = [real_redis_url() if word == DOC_URL else word for word in words[1:]]
    if backend and "--jqc-redis-url" not in args:
        args = [*backend, *args]
    return pytester.runpytest(*QUIET, *args)


def test_every_block_runs_and_prints_what_the_page_shows(
    pytester: pytest.Pytester, backend: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    page = read_page()
    pytester.path.joinpath("pytest.ini").write_text(page.ini)
    for name, body in page.files.items():
        pytester.path.joinpath(name).write_text(body)
    main = page.main_tests()
    tests = sum(len(re.findall(r"^\s*(?:async )?def test_", page.files[name], re.M)) for name in main)
    assert tests >= 30

    result = pytester.runpytest(*QUIET, "-s", "-p", "pytester", *backend, *main)

    result.assert_outcomes(passed=tests)
    for patterns in page.outputs:
        result.stdout.fnmatch_lines(patterns, consecutive=False)

    for command in page.commands:
        with monkeypatch.context() as env:
            ran = _run(pytester, env, command, backend)
        if command.expected:
            url = real_redis_url() if any(DOC_URL in line for line in command.expected) else DOC_URL
            ran.stdout.fnmatch_lines([line.replace(DOC_URL, url) for line in command.expected], consecutive=False)
        else:
            assert ran.ret == 0, f"{command.line!r} failed:\n{ran.stdout.str()}"
