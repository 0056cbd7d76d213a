"""The embedded backend refuses a script that touches a key it did not declare (embedded_keys.py).

This is what makes every engine test, on the embedded backend, also a test that the engine's
scripts declare every key they touch: a script that built a key inside Lua would fail here even
though a single real Redis server would run it.
"""

from __future__ import annotations

import hashlib

import pytest
import redis.exceptions as rex

import jqc
from jqc.backends.base import Script


def script(source: str) -> Script:
    return Script("probe", source, hashlib.sha1(source.encode()).hexdigest())


def test_a_key_built_in_lua_is_refused() -> None:
    conn = jqc.connect()
    source = "return redis.call('HGET', KEYS[1] .. 'j:1', 's')"  # the old layout's job key
    with pytest.raises(jqc.ScriptReplyError, match=r"HGET on key 'jqc:\{q\}:j:1', which the script did not declare"):
        conn.backend.run_script(script(source), ["jqc:{q}:"], [])


def test_every_key_of_a_multi_key_command_is_checked() -> None:
    client = jqc.connect().sync_client()
    client.set("declared", "1")
    with pytest.raises(rex.ResponseError, match="DEL on key 'other'"):
        client.eval("return redis.call('DEL', KEYS[1], 'other')", 1, "declared")
    assert client.get("declared") == "1"  # refused before the command ran
    with pytest.raises(rex.ResponseError, match="did not declare"):
        client.eval("return redis.pcall('EXISTS', 'other')", 0)


def test_declared_keys_and_keyless_commands_pass() -> None:
    client = jqc.connect().sync_client()
    assert client.eval("redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])", 1, "k", "v") == "v"
    assert client.eval("return redis.call('DEL', KEYS[1], KEYS[2])", 2, "k", "absent") == 1
    assert client.eval("return redis.call('PING')", 0) == "PONG"


def test_each_script_is_checked_against_its_own_keys() -> None:
    """The declared set is the running script's: keys another script declared do not count."""
    client = jqc.connect().sync_client()
    client.eval("return redis.call('SET', KEYS[1], 'x')", 1, "mine")
    with pytest.raises(rex.ResponseError, match="GET on key 'mine'"):
        client.eval("return redis.call('GET', 'mine')", 1, "theirs")
