"""Every way a TLS link can be wrong ends in one typed, one-line jqc error that says which.

Each case is tried through the engine's sync client, its asyncio client, and the ``jqc`` command
(exit status 1 and one ``jqc: error:`` line), never a hang (each test has a time limit) and never
a silent fall-back to plain text.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from contextlib import redirect_stderr
from typing import Any
from urllib.parse import quote

import pytest

import jqc
from jqc.cli import main
from tests.security.tls_servers import Certs, TlsRedis

pytestmark = pytest.mark.timeout(120)


def _timeouts(url: str) -> dict[str, Any]:
    return {} if "socket_connect_timeout" in url else {"socket_connect_timeout": 3}


def sync_error(url: str, **options: Any) -> jqc.JqcError:
    conn = jqc.connect(url, **_timeouts(url), **options)
    try:
        with pytest.raises(jqc.JqcError) as info:
            conn.queue("photos").add("x")
        return info.value
    finally:
        conn.close()


def async_error(url: str, **options: Any) -> jqc.JqcError:
    async def run() -> jqc.JqcError:
        conn = jqc.connect(url, **_timeouts(url), **options)
        try:
            with pytest.raises(jqc.JqcError) as info:
                await conn.async_queue("photos").add("x")
            return info.value
        finally:
            await conn.aclose()

    return asyncio.run(run())


def cli_error(url: str) -> str:
    err = io.StringIO()
    with redirect_stderr(err):
        status = main(["stats", "--url", url], out=io.StringIO())
    assert status == 1, err.getvalue()
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jqc: error: "), lines
    return lines[0]


def check_everywhere(
    url: str, kind: type[jqc.JqcError], *words: str, options: dict[str, Any] | None = None
) -> list[jqc.JqcError]:
    """The sync and async clients raise ``kind``; its one-line message holds ``words``; so does the CLI's."""
    found = [sync_error(url, **(options or {})), async_error(url, **(options or {}))]
    for error in found:
        assert type(error) is kind, (type(error), error)
        message = str(error)
        assert "\n" not in message
        for word in words:
            assert word in message, message
        assert not error.retryable  # an operator must act: retrying unchanged cannot help
    if options is None:  # the CLI takes everything in the URL
        line = cli_error(url)
        assert all(word in line for word in words), line
    return found


def ca_query(certs: Certs, ca: Any = None) -> str:
    return f"ssl_ca_certs={quote(str(ca or certs.ca))}"


def test_a_certificate_from_an_unknown_ca_is_refused(tls_server: TlsRedis, certs: Certs) -> None:
    check_everywhere(
        tls_server.tls_url(ca_query(certs, certs.other_ca)), jqc.TlsCertificateError, "not trusted", "ssl_ca_certs"
    )
    # without a CA, the system's store is used: it does not know the test CA either
    check_everywhere(tls_server.tls_url(), jqc.TlsCertificateError, "not trusted", tls_server.address)


def test_an_expired_certificate_is_refused(expired_server: TlsRedis, certs: Certs) -> None:
    check_everywhere(
        expired_server.tls_url(ca_query(certs)), jqc.TlsCertificateExpiredError, "expired", expired_server.address
    )


def test_a_certificate_for_another_host_is_refused(wrong_host_server: TlsRedis, certs: Certs) -> None:
    url = wrong_host_server.tls_url(ca_query(certs))
    check_everywhere(url, jqc.TlsHostnameMismatchError, "another host", "127.0.0.1")
    # the certificate itself is trusted: turning the host-name check off (explicitly) connects
    conn = jqc.connect(url + "&ssl_check_hostname=false")
    assert conn.ping()
    conn.close()


def test_a_plain_text_client_on_the_tls_port_is_told_to_use_rediss(tls_server: TlsRedis) -> None:
    check_everywhere(tls_server.tls_url(scheme="redis"), jqc.TlsRequiredError, "rediss://", tls_server.address)


def test_a_tls_client_on_a_plain_text_port_never_falls_back(plain_server: TlsRedis, certs: Certs) -> None:
    # the handshake waits for an answer that never comes: the connect timeout ends it
    url = plain_server.tls_url(ca_query(certs) + "&socket_connect_timeout=1")
    check_everywhere(url, jqc.TlsNotOfferedError, "does not speak TLS", "never falls back")
    # not even with verification turned off: rediss:// means TLS or nothing
    url = plain_server.tls_url("ssl_cert_reqs=none&socket_connect_timeout=1")
    check_everywhere(url, jqc.TlsNotOfferedError, "does not speak TLS")


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_server: TlsRedis, certs: Certs) -> None:
    check_everywhere(
        mtls_server.tls_url(ca_query(certs)), jqc.TlsClientCertificateError, "requires a client certificate",
        "ssl_certfile",
    )  # fmt: skip


def test_mutual_tls_refuses_a_certificate_from_another_ca(mtls_server: TlsRedis, certs: Certs) -> None:
    other = certs.other_client
    query = f"{ca_query(certs)}&ssl_certfile={quote(str(other.cert))}&ssl_keyfile={quote(str(other.key))}"
    check_everywhere(mtls_server.tls_url(query), jqc.TlsClientCertificateError, "refused the client certificate")


def test_certificate_options_in_arguments_are_used_like_those_in_the_url(mtls_server: TlsRedis, certs: Certs) -> None:
    options = {"ssl_ca_certs": str(certs.ca)}
    check_everywhere(mtls_server.tls_url(), jqc.TlsClientCertificateError, "client certificate", options=options)
    options |= {"ssl_certfile": str(certs.client.cert), "ssl_keyfile": str(certs.client.key)}
    conn = jqc.connect(mtls_server.tls_url(), **options)
    assert conn.queue("photos").add("x").id == "1"
    conn.close()


@pytest.mark.parametrize("option", ["ssl_ca_certs", "ssl_certfile"])
def test_an_unreadable_certificate_file_fails_at_connect(option: str, certs: Certs, tmp_path: Any) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(jqc.InvalidOptionError, match=f"{option}: cannot use .*missing.pem"):
        jqc.connect("rediss://127.0.0.1:1/0", **{option: missing})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(jqc.InvalidOptionError, match=option):
        jqc.connect("rediss://127.0.0.1:1/0", **{option: str(garbage)})
    err = io.StringIO()
    with redirect_stderr(err):
        status = main(["stats", "--url", f"rediss://127.0.0.1:1/0?{option}={quote(missing)}"], out=io.StringIO())
    assert status == 2 and err.getvalue().count("\n") == 1 and option in err.getvalue()


def test_a_key_without_its_certificate_is_refused() -> None:
    with pytest.raises(jqc.InvalidOptionError, match="ssl_keyfile needs ssl_certfile"):
        jqc.connect("rediss://127.0.0.1:1/0", ssl_keyfile="/dev/null")


def test_turning_verification_off_is_explicit_and_then_connects(expired_server: TlsRedis) -> None:
    """``ssl_cert_reqs=none`` is the one way to accept a bad certificate, and it must be asked for."""
    conn = jqc.connect(expired_server.tls_url("ssl_cert_reqs=none"))
    assert conn.ping()
    conn.close()


def test_a_worker_that_cannot_verify_the_server_says_why(tls_server: TlsRedis, certs: Certs) -> None:
    conn = jqc.connect(tls_server.tls_url(ca_query(certs, certs.other_ca)))
    worker = jqc.Worker(conn.queue("photos"), lambda ctx: None, connect_timeout=1.0)
    with pytest.raises(jqc.ConnectionLostError) as info:
        worker.run(burst=True)
    assert "TlsCertificateError" in str(info.value) and "not trusted" in str(info.value)


def test_errors_after_the_first_answer_are_not_probed(tls_server: TlsRedis, certs: Certs) -> None:
    """Once a server answered, a lost connection is an outage, reported as one (no probe, no TLS error)."""
    conn = jqc.connect(tls_server.tls_url(ca_query(certs)))
    assert conn.ping()
    victim: Callable[[], Any] = conn.sync_client().client_kill_filter
    victim(_type="normal", skipme=True)  # drops the engine's connection
    with pytest.raises(jqc.JqcError) as info:
        conn.ping()
    assert type(info.value) is jqc.ConnectionLostError, info.value
    assert conn.ping()  # and the next call reconnects
    conn.close()
