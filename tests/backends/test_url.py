"""Connection URLs and options are checked before anything connects: every mistake is a typed,
one-line error naming the bad part, and nothing is ever guessed (no silent db 0)."""

from __future__ import annotations

import pytest

import jqc
from jqc.backends.url import DEFAULTS, parse_server_url


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis://h:6379/banana", "database"),
        ("redis://h:notaport", "port"),
        ("redis://h:99999/0", "port"),
        ("redis://h:/0", "port"),
        ("redis:///0", "host"),
        ("redis://h:6379/0/1", "path"),
        ("redis://h:6379/-1", "database"),
        ("redis://h:6379/1?db=2", "twice"),
        ("redis://h?socket_timeout=soon", "socket_timeout"),
        ("redis://h?socket_timeout=-1", "socket_timeout"),
        ("redis://h?no_such_option=1", "unknown option"),
        ("redis://h?ssl_ca_certs=/ca.pem", "rediss://"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("unix://", "path"),
        ("http://localhost:6379", "unsupported URL scheme 'http'"),
        ("rediss://h?socket_keepalive=perhaps", "socket_keepalive"),
    ],
)
def test_malformed_urls_are_typed_errors_naming_the_part(url: str, names: str) -> None:
    with pytest.raises(jqc.InvalidUrlError, match=names) as info:
        jqc.connect(url)
    assert isinstance(info.value, jqc.InvalidOptionError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_the_password_never_shows_in_an_error() -> None:
    with pytest.raises(jqc.InvalidUrlError) as info:
        jqc.connect("redis://user:hunter2-secret@h:6379/banana")
    assert "hunter2-secret" not in str(info.value)
    assert "***" in str(info.value)


def test_options_come_from_the_query_and_arguments_win() -> None:
    config = parse_server_url("redis://u:p%40ss@h:7000/3?socket_timeout=2.5&client_name=svc", {"socket_timeout": 4})
    assert (config.host, config.port, config.db, config.username, config.password) == ("h", 7000, 3, "u", "p@ss")
    assert config.socket_timeout == 4.0 and config.client_name == "svc"
    assert "p@ss" not in repr(config)


def test_defaults_heal_silent_networks() -> None:
    config = parse_server_url("redis://h", None)
    assert config.socket_timeout == DEFAULTS["socket_timeout"] and config.socket_timeout is not None
    assert config.socket_connect_timeout is not None and config.socket_keepalive
    assert config.health_check_interval > 0
    assert parse_server_url("redis://h?socket_timeout=none", None).socket_timeout is None


def test_unix_urls_take_the_database_from_the_query() -> None:
    config = parse_server_url("unix:///run/redis.sock?db=4", None)
    assert (config.path, config.db) == ("/run/redis.sock", 4)


def test_tls_urls_carry_the_tls_options() -> None:
    config = parse_server_url("rediss://h:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=none", None)
    assert config.tls is not None and config.tls.ca_certs == "/etc/ca.pem" and config.tls.cert_reqs == "none"


def test_a_db_the_server_does_not_have_is_a_typed_error() -> None:
    from tests.conftest import REDIS_URL, open_backend

    open_backend("redis").close()  # fails under CI (skips elsewhere) when Redis does not answer
    base = REDIS_URL.rsplit("/", 1)[0]
    conn = jqc.connect(f"{base}/100000")
    with pytest.raises(jqc.InvalidInputError, match="database"):
        conn.queue("q").counts()
    conn.close()
