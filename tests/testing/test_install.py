"""Installing jqc is all it takes: in a fresh virtual environment, pytest lists the jqc fixtures.

The environment gets jqc by ``pip install`` from this checkout (not editable) and its dependencies
and pytest from the running environment, without jqc's own files, through a ``.pth`` file, so the
only network access is pip fetching the build backend (none when setuptools >= 77 is installed
here, or when pip's cache has it). It takes a while, hence ``soak`` (``make soak`` runs it);
``test_the_entry_point_is_installed`` in test_plugin.py is the quick check.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FIXTURES = ("jqc_async_queue", "jqc_clock", "jqc_connection", "jqc_queue", "jqc_worker")


def _setuptools_is_new_enough() -> bool:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= 77
    except importlib.metadata.PackageNotFoundError:
        return False


def _borrowed_site_packages(into: Path) -> Path:
    """A directory of links to this environment's installed packages, jqc's own left out."""
    into.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        name = entry.name.lower()
        if name.startswith(("jqc", "__editable__")) or name.endswith(".pth"):
            continue
        (into / entry.name).symlink_to(entry)
    return into


@pytest.mark.soak
def test_a_fresh_environment_lists_the_fixtures_and_runs_a_test(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "borrowed.pth").write_text(str(_borrowed_site_packages(tmp_path / "borrowed")) + "\n")

    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    if _setuptools_is_new_enough():
        install.append("--no-build-isolation")
    installed = subprocess.run([*install, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, f"pip install failed:\n{installed.stdout}\n{installed.stderr}"

    project = tmp_path / "project"
    project.mkdir()
    (project / "test_mail.py").write_text(
        "from jqc.testing import drain\n\n\n"
        "def test_mail(jqc_queue, jqc_clock):\n"
        "    mail = jqc_queue('mail')\n"
        "    mail.add('welcome', 'ann', delay=3600)\n"
        "    assert drain(mail, lambda ctx: f'hello {ctx.data}').results == ['hello ann']\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JQC_REDIS_URL", "PYTEST_ADDOPTS")}

    def pytest_in_venv(*args: str) -> str:
        run = subprocess.run(
            [str(python), "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    listing = pytest_in_venv("--fixtures")
    for name in FIXTURES:
        [line] = [line for line in listing.splitlines() if line.startswith(f"{name} -- ")]
        assert str(venv) in line or "site-packages/jqc_pytest" in line, line
    assert "1 passed" in pytest_in_venv("-q", "test_mail.py")
    dist = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.distribution('jqc')._path)"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=project,
    ).stdout
    assert dist.startswith(str(venv)), dist  # this environment's own install, not a borrowed one
