"""The plugin's settings: where the Redis URL and the seed come from, the ``jqc`` marker, the running test.

Standard library and pytest only, like the rest of the plugin (jqc is imported by the fixtures).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "BACKENDS",
    "ENV_URL",
    "FIXTURES",
    "ActiveTest",
    "backend_names",
    "marker_settings",
    "redact",
    "redis_url",
    "session_seed",
]

ENV_URL = "JQC_REDIS_URL"
BACKENDS = ("embedded", "redis")
FIXTURES = frozenset(
    {
        "jqc_async_queue",
        "jqc_backend",
        "jqc_clock",
        "jqc_connection",
        "jqc_queue",
        "jqc_rng",
        "jqc_seed",
        "jqc_worker",
    }
)
MARKER_KEYS = ("backend", "inline", "seed")
MARKER_HELP = (
    "jqc(backend=None, inline=None, seed=None): run this test's jqc fixtures on backend 'embedded' or "
    "'redis' (a list, or 'both', runs the test once on each); with inline=handlers, jqc_connection's "
    "queues run each added job at once; seed= fixes this test's random stream"
)


def _invalid(message: str) -> Exception:
    from jqc.errors import InvalidOptionError  # (only reached when a marker is written wrong)

    return InvalidOptionError(message)


def redis_url(config: pytest.Config) -> str | None:
    """The real server's URL: ``--jqc-redis-url``, else ``$JQC_REDIS_URL``, else the ``jqc_redis_url``
    ini option; None (the embedded backend) when none is set or it is ``memory://``."""
    url = (
        config.getoption("jqc_redis_url", default=None)
        or os.environ.get(ENV_URL)
        or str(config.getini("jqc_redis_url") or "")
        or None
    )
    return None if url is None or url.startswith("memory://") else str(url)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _seed(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise _invalid(f"{where} must be an int >= 0 or 'random', not {value!r}")
    if isinstance(value, int):
        seed = value
    else:
        text = str(value).strip()
        if text == "random":
            return random.SystemRandom().randrange(2**32)
        try:
            seed = int(text)
        except ValueError:
            raise _invalid(f"{where} must be an int >= 0 or 'random', not {value!r}") from None
    if seed < 0:
        raise _invalid(f"{where} must be an int >= 0 or 'random', not {value!r}")
    return seed


def session_seed(config: pytest.Config) -> int:
    """The run's seed: ``--jqc-seed``, else the ``jqc_seed`` ini option, else 0 (``random`` picks one)."""
    workerinput = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict) and "jqc_seed" in workerinput:  # a pytest-xdist worker: the controller's
        return int(workerinput["jqc_seed"])
    option = config.getoption("jqc_seed", default=None)
    if option is not None:
        return _seed(option, "--jqc-seed")
    ini = str(config.getini("jqc_seed") or "").strip()
    return _seed(ini, "the jqc_seed ini option") if ini else 0


def marker_settings(item: pytest.Item) -> dict[str, Any]:
    """The ``jqc`` markers' keywords for ``item``, the closest marker winning for each keyword."""
    found: dict[str, Any] = {}
    for marker in item.iter_markers("jqc"):
        if marker.args:
            raise _invalid(f"@pytest.mark.jqc takes keywords ({', '.join(MARKER_KEYS)}), not {marker.args!r}")
        unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise _invalid(f"@pytest.mark.jqc got unknown keyword(s) {unknown}; known: {', '.join(MARKER_KEYS)}")
        for key, value in marker.kwargs.items():
            found.setdefault(key, value)
    if "seed" in found:
        found["seed"] = _seed(found["seed"], "@pytest.mark.jqc(seed=...)")
    return found


def backend_names(value: object) -> list[str]:
    """The backends a marker's ``backend=`` names (``"both"`` is both), checked."""
    if value == "both":
        return list(BACKENDS)
    names: Iterable[object] = [value] if isinstance(value, str) else value  # type: ignore[assignment]
    if not isinstance(names, (list, tuple)) or not names:
        raise _invalid(f"backend= takes 'embedded', 'redis', 'both' or a list of them, not {value!r}")
    checked = []
    for name in names:
        if name not in BACKENDS:
            raise _invalid(f"unknown jqc backend {name!r}: use 'embedded' or 'redis'")
        checked.append(str(name))
    return list(dict.fromkeys(checked))


class ActiveTest:
    """The test running now, as :mod:`jqc.testing.seeding` reads it (``jqc_pytest.active_test``)."""

    def __init__(self, seed: int, test_id: str, *, from_marker: bool = False) -> None:
        self.seed = seed
        self.test_id = test_id
        self.from_marker = from_marker
        self.drawn = False
        self._rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        """The test's random stream (made on first use): the same numbers on every run with this seed."""
        self.drawn = True
        if self._rng is None:
            self._rng = random.Random(f"jqc:{self.seed}:{self.test_id}")
        return self._rng

    def note(self) -> str:
        """What a failure report says about the seed."""
        how = "@pytest.mark.jqc(seed=...)" if self.from_marker else f"--jqc-seed={self.seed}"
        return f"jqc seed {self.seed} (this test's random stream: backoff jitter, worker ids); it replays with {how}"
