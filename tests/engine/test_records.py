"""Packed records (jqc/engine/records.py and include/base.lua) read and write the same text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jqc
from jqc.engine.codes import lua_prelude
from jqc.engine.records import pack, pack_lines, record_of, unpack, unpack_lines
from tests.engine.lua_static import LUA_DIR

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_ABCXYZ", min_size=1, max_size=4)
VALUES = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)  # any text UTF-8 can carry


@given(st.dictionaries(NAMES, VALUES, max_size=12))
def test_pack_then_unpack_gives_the_fields_back(fields: dict[str, str]) -> None:
    assert unpack(pack(fields)) == fields


@given(st.lists(VALUES, max_size=20))
def test_log_lines_round_trip(lines: list[str]) -> None:
    assert unpack_lines(pack_lines(lines)) == lines


def test_lengths_count_bytes_and_the_last_repeat_wins() -> None:
    assert pack({"d": "é"}) == "d2:é"  # two UTF-8 bytes
    assert unpack("s1:an4:sends1:c") == {"s": "c", "n": "send"}
    assert record_of(None) == {} and record_of("") == {} and record_of(["a", "1"]) == {"a": "1"}


@pytest.mark.parametrize("text", ["x", "n4:se", "n:send", "9"])
def test_text_that_is_not_a_record_is_a_corrupt_job(text: str) -> None:
    with pytest.raises(jqc.CorruptJobError):
        unpack(text)


def test_names_that_would_break_the_format_are_refused() -> None:
    with pytest.raises(ValueError):
        pack({"n2": "x"})


# The Lua side, run by the server: decode what Python packed, encode what Lua holds.
_PROBE = (
    lua_prelude()
    + "local K_META, K_EVENTS\n"
    + (LUA_DIR / "include" / "base.lua").read_text("utf-8")
    + """
local rec = decode(ARGV[1])
rec.added = ARGV[2]
rec.big = 1800000000051001
return {encode(rec), field('x', ARGV[2]), ARGV[1] .. field('n', 'again')}
"""
)


@pytest.mark.parametrize("value", ["", "plain", "é ☕ 1:2", "d5:inner"])
def test_lua_and_python_agree(conn: jqc.Connection, value: str) -> None:
    client = conn.sync_client()
    fields = {"n": "send", "d": '{"a":[1,2]}', "t": "1700000000000"}
    encoded, one, appended = client.eval(_PROBE, 0, pack(fields), value)
    assert unpack(encoded) == {**fields, "added": value, "big": "1800000000051001"}
    assert unpack(one) == {"x": value}
    assert unpack(appended) == {**fields, "n": "again"}
