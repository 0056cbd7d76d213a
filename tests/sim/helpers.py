"""Helpers for the simulator tests: a fast backend and planted bugs."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator

import jqc
from jqc.engine.scripts import Script, scripts
from tests.conftest import REDIS_URL

#: complete's fencing check (wherever the script keeps it), and a planted bug that drops it: any
#: worker may complete a job that still exists, whatever its token and state.
COMPLETE_TOKEN_CHECK = re.compile(
    r"local rec, err, stored = check_token\(([^,]+), ([^)]*)\)\n(\s*)if err then return err end"
)
COMPLETE_NO_TOKEN_CHECK = (
    r"local rec, stored = load_job(\1)\n"
    r"\3if not rec then return {LOCK_LOST, 'job ' .. \1 .. ' no longer exists'} end"
)


def fast_connection() -> jqc.Connection:
    """A real Redis when one answers, else the embedded backend.

    A run gives a byte-identical event log on both backends (``test_determinism`` checks it), so
    a test that only looks at a run's results may use whichever is faster; the simulator works
    in its own uniquely named queue and deletes it afterwards, so nothing is flushed.
    """
    conn = jqc.connect(REDIS_URL, socket_connect_timeout=1)
    try:
        conn.ping()
    except Exception:
        conn.close()
        return jqc.connect()
    return conn


@contextlib.contextmanager
def planted(name: str, old: str | re.Pattern[str], new: str) -> Iterator[None]:
    """Swap the source of one engine script for a copy with ``old`` (text or a regex) replaced by ``new``.

    The copy has its own SHA, so it is loaded next to the real script (EVALSHA reloads it on
    NoScriptError); the real one is put back afterwards.
    """
    table = scripts()
    original = table[name]
    if isinstance(old, re.Pattern):
        source, found = old.subn(new, original.source)
    else:
        source, found = original.source.replace(old, new), original.source.count(old)
    assert found == 1, f"{name}.lua changed: the planted bug no longer applies ({found} matches)"
    table[name] = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
    try:
        yield
    finally:
        table[name] = original
