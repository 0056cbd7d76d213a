"""The shared checks of jqc's command-line options: what they accept, and the typed error otherwise."""

from __future__ import annotations

import argparse

import pytest

import jqc
from jqc.cli import validators


def test_handler_spec() -> None:
    assert validators.handler_spec("pkg.mod:handlers.thumb") == ("pkg.mod", "handlers.thumb")
    for bad in ("no_colon", ":f", "m:"):
        with pytest.raises(jqc.InvalidOptionError, match="MODULE:FUNCTION"):
            validators.handler_spec(bad)


def test_worker_range() -> None:
    validators.worker_range(0, 1)
    validators.worker_range(3, 3)
    for low, high in ((2, 1), (-1, 3), (0, 0)):
        with pytest.raises(jqc.InvalidOptionError, match=r"need 0 <= --min <= --max and --max >= 1"):
            validators.worker_range(low, high)


def test_require_positive_names_the_option() -> None:
    args = argparse.Namespace(slo=1.0, lock_ttl=0.0)
    validators.require_positive(args, "slo")
    with pytest.raises(jqc.InvalidOptionError, match=r"^--lock-ttl must be > 0$"):
        validators.require_positive(args, "slo", "lock_ttl")


def test_name_value_and_json_data() -> None:
    assert validators.name_value(" wait_slo = 5 ", "--rule") == ("wait_slo", "5")
    assert validators.name_value("a=b=c", "--rule") == ("a", "b=c")
    with pytest.raises(jqc.InvalidOptionError, match="--rule takes NAME=VALUE"):
        validators.name_value("wait_slo", "--rule")
    assert validators.json_data(None) is None and validators.json_data('{"a": [1]}') == {"a": [1]}
    with pytest.raises(jqc.DataNotJsonError, match="DATA is not valid JSON"):
        validators.json_data("{nope")


def test_rate_limit_is_an_argparse_type() -> None:
    assert validators.rate_limit("100/2") == (100, 2.0)
    assert validators.rate_limit("5") == (5, 1.0)
    with pytest.raises(argparse.ArgumentTypeError, match="100/1"):
        validators.rate_limit("x/y")
