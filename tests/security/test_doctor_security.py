"""``jqc doctor``'s security checks: the link (TLS, verification), a default user without a
password, and a user with more rights than its role needs, against real servers."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import pytest

import jqc
from jqc.backends.url import parse_server_url
from jqc.cli import main
from jqc.coordinator import acl, doctor
from jqc.coordinator.doctor_security import excess_findings, infer_role, tls_findings
from jqc.coordinator.findings import Finding, Level
from tests.security.tls_servers import Certs, TlsRedis
from tests.servers import PrivateRedis, private_redis


def the(findings: tuple[Finding, ...] | list[Finding], check: str) -> Finding:
    found = [f for f in findings if f.check == check]
    assert len(found) == 1, (check, findings)
    return found[0]


def tls_of(url: str) -> Finding:
    return the(tls_findings(parse_server_url(url)), "tls")


def test_the_link_is_graded_by_where_it_goes_and_what_it_verifies() -> None:
    assert tls_of("unix:///run/redis.sock").level == Level.OK
    assert tls_of("redis://127.0.0.1:6379/0").level == Level.INFO  # loopback
    assert tls_of("redis://[::1]:6379/0").level == Level.INFO
    remote = tls_of("redis://redis.internal:6379/0")
    assert remote.level == Level.WARN and "use rediss://" in remote.message
    assert tls_of("rediss://redis.internal/0").level == Level.OK
    assert "client certificate" in tls_of("rediss://r/0?ssl_certfile=/c.pem&ssl_keyfile=/k.pem").message
    for weak in ("ssl_cert_reqs=none", "ssl_cert_reqs=optional", "ssl_check_hostname=false"):
        finding = tls_of(f"rediss://redis.internal/0?{weak}")
        assert finding.level == Level.WARN and weak in finding.message, finding
    assert tls_findings(None) == [] and tls_findings(parse_server_url("memory://")) == []


def test_the_doctor_reports_tls_on_real_servers(tls_server: TlsRedis, mtls_server: TlsRedis, certs: Certs) -> None:
    ca = quote(str(certs.ca))
    report = doctor.run(jqc.connect(tls_server.tls_url(f"ssl_ca_certs={ca}")))
    assert the(report.findings, "tls").level == Level.OK
    pair = certs.client
    url = mtls_server.tls_url(
        f"ssl_ca_certs={ca}&ssl_certfile={quote(str(pair.cert))}&ssl_keyfile={quote(str(pair.key))}"
    )
    out = io.StringIO()
    assert main(["doctor", "--url", url, "--json"], out=out) == 0 or True  # warnings (default user) are allowed
    tls = next(f for f in json.loads(out.getvalue())["findings"] if f["check"] == "tls")
    assert tls["level"] == "ok" and "client certificate" in tls["message"]
    unverified = doctor.run(jqc.connect(tls_server.tls_url("ssl_cert_reqs=none")))
    assert the(unverified.findings, "tls").level == Level.WARN


@pytest.fixture
def server(tmp_path: object) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path, "doctor") as started:  # type: ignore[arg-type]
        yield started


def user_url(server: PrivateRedis, admin: jqc.Connection, *rules: str) -> str:
    name, password = f"u{secrets.token_hex(3)}", secrets.token_hex(8)
    admin.sync_client().execute_command("ACL", "SETUSER", name, "reset", "on", ">" + password, *rules)
    return f"unix://{name}:{password}@{server.socket}"


def role_url(server: PrivateRedis, admin: jqc.Connection, role: str, queue: str | None, *extra: str) -> str:
    return user_url(server, admin, *acl.rules(role, queue).rules, *extra)


def test_a_default_user_without_a_password_is_found_whoever_is_connected(server: PrivateRedis) -> None:
    admin = jqc.connect(server.url)
    url = role_url(server, admin, "worker", "photos")
    assert the(doctor.run(jqc.connect(url)).findings, "default user").level == Level.WARN
    boss = user_url(server, admin, "+@all", "~*", "&*")
    admin.sync_client().execute_command("ACL", "SETUSER", "default", "off")
    report = doctor.run(jqc.connect(url))
    assert not [f for f in report.findings if f.check == "default user"]
    jqc.connect(boss).sync_client().execute_command("ACL", "SETUSER", "default", "on", ">a-password")
    assert not [f for f in doctor.run(jqc.connect(url)).findings if f.check == "default user"]


def test_a_user_with_exactly_its_roles_rights_passes(server: PrivateRedis) -> None:
    admin = jqc.connect(server.url)
    for role in ("producer", "worker", "observer", "coordinator", "admin"):
        url = role_url(server, admin, role, "photos")
        rights = the(doctor.run(jqc.connect(url)).findings, "rights")
        assert rights.level == Level.OK and f"the {role} role" in rights.message, rights
        assert "its rules are not readable" in rights.message  # least privilege: not even its own rules
        given = the(doctor.run(jqc.connect(url), role=role, queue="photos").findings, "rights")
        assert given.level == Level.OK and "queue photos" in given.message, given


def test_rights_beyond_the_role_are_named(server: PrivateRedis) -> None:
    admin = jqc.connect(server.url)
    # rules it may read: every extra command and key pattern is named
    loose = role_url(server, admin, "worker", "photos", "+flushdb", "+keys", "+acl|getuser", "~other:*")
    rights = the(doctor.run(jqc.connect(loose)).findings, "rights")
    assert rights.level == Level.WARN
    assert "+flushdb" in rights.message and "+keys" in rights.message and "~other:*" in rights.message
    assert "queue photos" in rights.message  # read from its key patterns
    # rules it may not read: the harmless probes find what is open
    sloppy = role_url(server, admin, "worker", "photos", "~*", "+config|get", "+scan")
    probed = the(doctor.run(jqc.connect(sloppy)).findings, "rights")
    assert probed.level == Level.WARN, probed
    for what in ("read keys outside", "write keys outside", "CONFIG GET", "SCAN"):
        assert what in probed.message, (what, probed.message)
    # a worker's user run as a producer: the operations it does not need are listed
    worker = role_url(server, admin, "worker", "photos")
    told = the(doctor.run(jqc.connect(worker), role="producer", queue="photos").findings, "rights")
    assert told.level == Level.WARN and "claim" in told.message and "complete" in told.message
    out = io.StringIO()
    assert main(["doctor", "--url", worker, "--role", "producer", "--queue", "photos", "--strict"], out=out) == 1
    assert "more rights than the producer role" in out.getvalue().replace("\n", " ") or "rights" in out.getvalue()


def test_rules_that_cannot_be_read_are_judged_by_operations() -> None:
    allowed = acl.rules("observer", "photos").scripts
    assert infer_role(allowed) == acl.Role.OBSERVER
    ok = excess_findings("watcher", None, allowed, queue="photos")
    assert ok[0].level == Level.OK and "rules are not readable" in ok[0].message
    probed = excess_findings("watcher", None, allowed, queue="photos", probed=["server settings (CONFIG GET)"])
    assert probed[0].level == Level.WARN and "CONFIG GET" in probed[0].message
    more = excess_findings("watcher", None, (*allowed, "obliterate"), role="observer", queue="photos")
    assert more[0].level == Level.WARN and "obliterate" in more[0].message
    assert infer_role(()) is None


def test_a_bad_role_or_queue_is_refused_before_any_check() -> None:
    with pytest.raises(jqc.InvalidOptionError):
        doctor.run(jqc.connect(), role="root")
    with pytest.raises(jqc.InvalidQueueNameError):
        doctor.run(jqc.connect(), queue="bad queue")
