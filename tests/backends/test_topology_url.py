"""Cluster and Sentinel URLs: parsed and checked before anything connects, every mistake a typed
one-line error naming the bad part, credentials never shown."""

from __future__ import annotations

import pytest

import jqc
from jqc.backends import parse_url
from jqc.backends.url import parse_server_url


def test_a_cluster_url_lists_its_seed_nodes() -> None:
    config = parse_url("redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert config.topology == "cluster"
    assert config.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (config.db, config.tls, config.service, config.failover_timeout) == (0, None, None, 10.0)


def test_a_sentinel_url_names_the_master_and_the_database() -> None:
    config = parse_url("redis+sentinel://s1:26380,s2/mymaster/3")
    assert config.topology == "sentinel"
    assert config.nodes == (("s1", 26380), ("s2", 26379))
    assert (config.service, config.db) == ("mymaster", 3)


def test_the_url_credentials_are_the_data_servers_the_sentinels_have_their_own() -> None:
    config = parse_url("redis+sentinel://jobs:p%40ss-w0rd@s1/mymaster?sentinel_username=watch&sentinel_password=s3nt")
    assert (config.username, config.password) == ("jobs", "p@ss-w0rd")
    assert (config.sentinel_username, config.sentinel_password) == ("watch", "s3nt")
    assert "w0rd" not in config.safe_url and "s3nt" not in config.safe_url
    assert config.safe_url == ("redis+sentinel://jobs:***@s1/mymaster?sentinel_username=watch&sentinel_password=***")
    assert "s3nt" not in repr(config) and "w0rd" not in repr(config)
    given = parse_url("redis+sentinel://s1/m", {"sentinel_password": "kw", "failover_timeout": 2.5})
    assert (given.sentinel_password, given.failover_timeout) == ("kw", 2.5)


def test_rediss_variants_use_tls_for_every_node() -> None:
    config = parse_url("rediss+cluster://a:7000,b:7001?ssl_ca_certs=/ca.pem&ssl_cert_reqs=optional")
    assert config.tls is not None and (config.tls.ca_certs, config.tls.cert_reqs) == ("/ca.pem", "optional")
    assert parse_url("rediss+sentinel://s1/m").tls is not None
    with pytest.raises(jqc.InvalidUrlError, match="rediss://"):
        parse_url("redis+cluster://a?ssl_ca_certs=/ca.pem")


def test_wait_replicas_and_wait_timeout_are_checked() -> None:
    config = parse_url("redis+sentinel://s/m?wait_replicas=1&wait_timeout=0.5")
    assert (config.wait_replicas, config.wait_timeout) == (1, 0.5)
    assert parse_url("redis+cluster://a", {"wait_replicas": 2}).wait_replicas == 2
    assert (parse_url("redis+cluster://a").wait_replicas, parse_url("redis+cluster://a").wait_timeout) == (0, 1.0)


def test_client_options_mean_what_they_mean_for_one_server() -> None:
    config = parse_url("redis+cluster://a?socket_timeout=2&client_name=svc", {"socket_connect_timeout": 1})
    assert (config.socket_timeout, config.socket_connect_timeout, config.client_name) == (2.0, 1.0, "svc")


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis+cluster://", "hosts are missing"),
        ("redis+cluster://a,,b", "empty host"),
        ("redis+cluster://a:x", "port of a"),
        ("redis+cluster://a:70000", "port of a"),
        ("redis+cluster://:7000", "missing before its port"),
        ("redis+cluster://a:1,a:1", "listed twice"),
        ("redis+cluster://a/3", "database 0 only"),
        ("redis+cluster://a?db=2", "database 0 only"),
        ("redis+cluster://a/zero", "database"),
        ("redis+cluster://a?failover_timeout=-1", "failover_timeout"),
        ("redis+cluster://a?failover_timeout=soon", "failover_timeout"),
        ("redis+cluster://a?bogus=1", "unknown option"),
        ("redis+cluster://a?wait_replicas=-1", "wait_replicas"),
        ("redis+cluster://a?wait_replicas=1.5", "wait_replicas"),
        ("redis+cluster://a?wait_timeout=0", "wait_timeout"),
        ("redis+sentinel://s/m?wait_timeout=61", "wait_timeout"),
        ("redis+cluster://a#frag", "fragment"),
        ("redis+sentinel://s1:26379", "name of the master is missing"),
        ("redis+sentinel://s1/bad name", "master's name"),
        ("redis+sentinel://s1/m/1/2", "too many parts"),
        ("redis+sentinel://s1/m/x", "database"),
        ("redis://h:6379?cluster=1", r"redis\+cluster://"),
        ("redis+clustr://a", "unsupported URL scheme"),
    ],
)
def test_malformed_topology_urls_are_typed_errors_naming_the_part(url: str, names: str) -> None:
    with pytest.raises(jqc.InvalidUrlError, match=names) as info:
        jqc.connect(url)
    assert "\n" not in str(info.value)


def test_the_passwords_never_show_in_an_error() -> None:
    for url in (
        "redis+cluster://user:hunter2-secret@a:1,b:x",
        "redis+sentinel://user:hunter2-secret@s1/m/x",
        "redis+sentinel://s1/m?sentinel_password=hunter2-secret&bogus=1",
    ):
        with pytest.raises(jqc.InvalidUrlError) as info:
            jqc.connect(url)
        assert "hunter2-secret" not in str(info.value), url


def test_connect_reaches_no_server_before_the_first_call() -> None:
    conn = jqc.connect("redis+cluster://127.0.0.1:1,127.0.0.1:2")  # nothing listens there
    assert (conn.kind, conn.embedded, conn.safe_url) == ("cluster", False, "redis+cluster://127.0.0.1:1,127.0.0.1:2")
    assert jqc.connect("redis+sentinel://127.0.0.1:1/m").kind == "sentinel"


def test_no_node_reachable_is_a_typed_retryable_error_after_the_failover_timeout() -> None:
    conn = jqc.connect("redis+cluster://127.0.0.1:1", failover_timeout=0.3, socket_connect_timeout=0.5)
    with pytest.raises(jqc.ConnectionLostError, match="failover_timeout") as info:
        conn.ping()
    assert info.value.retryable
    conn = jqc.connect("redis+sentinel://127.0.0.1:1/m", failover_timeout=0.3, socket_connect_timeout=0.5)
    with pytest.raises(jqc.ConnectionLostError, match="no sentinel"):
        conn.queue("q").add("x")


def test_the_single_server_parser_points_topology_urls_elsewhere() -> None:
    with pytest.raises(jqc.InvalidUrlError, match="parse_url"):
        parse_server_url("redis+cluster://a:1")
