"""Certificates made at run time (``trustme``) and private ``redis-server`` processes that speak TLS.

Each server listens for TLS on a loopback TCP port (plain-text port off) and, for the test's own
setup commands, on a unix socket. Ports come from ``JQC_TEST_TLS_PORTS`` (default ``6500-6599``);
a port another process took is skipped. Under ``CI`` a server that cannot start fails the test
(never skips it), like every real-service test.
"""

from __future__ import annotations

import datetime
import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import PrivateRedis


def need(condition: bool, message: str) -> None:
    """Skip (fail under CI) unless ``condition``."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Certs:
    """Everything the TLS tests need: two CAs and certificates good and bad."""

    ca: Path  # signs every certificate below except other_client's
    other_ca: Path  # an unrelated CA
    server: Pair  # valid for 127.0.0.1 and localhost
    expired: Pair  # for 127.0.0.1, expired yesterday
    wrong_host: Pair  # valid, but for redis.example.org only
    client: Pair  # a client certificate signed by ``ca``
    other_client: Pair  # a client certificate signed by ``other_ca``


def make_certs(directory: Path) -> Certs:
    """Fresh CAs and certificates under ``directory`` (nothing is ever committed)."""
    try:
        import trustme
    except ImportError:  # pragma: no cover - dev extra missing
        need(False, "trustme is not installed (pip install -e '.[dev]')")
        raise
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    other.cert_pem.write_to_path(str(directory / "other-ca.pem"))
    now = datetime.datetime.now(datetime.UTC)

    def write(name: str, leaf: Any) -> Pair:
        pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
        leaf.cert_chain_pems[0].write_to_path(str(pair.cert))
        leaf.private_key_pem.write_to_path(str(pair.key))
        return pair

    return Certs(
        ca=directory / "ca.pem",
        other_ca=directory / "other-ca.pem",
        server=write("server", ca.issue_cert("127.0.0.1", "localhost")),
        expired=write(
            "expired",
            ca.issue_cert(
                "127.0.0.1",
                "localhost",
                not_before=now - datetime.timedelta(days=30),
                not_after=now - datetime.timedelta(days=1),
            ),
        ),
        wrong_host=write("wrong-host", ca.issue_cert("redis.example.org")),
        client=write("client", ca.issue_cert("jqc-client")),
        other_client=write("other-client", other.issue_cert("jqc-client")),
    )


def _port_range() -> list[int]:
    text = os.environ.get("JQC_TEST_TLS_PORTS", "6500-6599")
    low, _, high = text.partition("-")
    ports = list(range(int(low), int(high or low) + 1))
    random.shuffle(ports)  # parallel test processes rarely try the same port first
    return ports


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class TlsRedis(PrivateRedis):
    """A redis-server speaking TLS only on loopback port ``port`` (plus a unix socket for setup)."""

    def __init__(
        self, workdir: Path, name: str, certs: Certs, pair: Pair | None, *, port: int, client_certs: bool
    ) -> None:
        if pair is None:  # plain text on the port, no TLS at all
            args = ["--bind", "127.0.0.1", "--port", str(port)]
        else:
            args = ["--bind", "127.0.0.1", "--tls-port", str(port), "--tls-cert-file", str(pair.cert)]
            args += ["--tls-key-file", str(pair.key), "--tls-ca-cert-file", str(certs.ca)]
            args += ["--tls-auth-clients", "yes" if client_certs else "no"]
        super().__init__(workdir, name, args)
        self.certs = certs
        self.port = port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tls_url(self, query: str = "", *, scheme: str = "rediss", host: str = "127.0.0.1", db: int = 0) -> str:
        """A URL of this server's TLS port (``query`` without its ``?``)."""
        return f"{scheme}://{host}:{self.port}/{db}" + (f"?{query}" if query else "")


def start_tls_redis(
    workdir: Path, name: str, certs: Certs, pair: Pair | None, *, client_certs: bool = False
) -> TlsRedis:
    """A started :class:`TlsRedis` on a free port of ``JQC_TEST_TLS_PORTS`` (``pair`` None: plain text)."""
    last = "every port is taken"
    for port in _port_range():
        if not _free(port):
            continue
        server = TlsRedis(workdir, f"{name}-{port}", certs, pair, port=port, client_certs=client_certs)
        server.start(wait=False)
        try:
            server.wait_ready(timeout=20)
        except RuntimeError as exc:
            log = server.workdir / "redis.log"
            text = log.read_text() if log.exists() else ""
            server.kill()
            if "Address already in use" in text:
                last = text[-300:]
                continue  # another process took it between the check and the start
            need(False, f"a TLS redis-server did not start ({exc}): {text[-500:]}")
        return server
    need(False, f"no TLS redis-server could start on a port of JQC_TEST_TLS_PORTS: {last}")
    raise AssertionError("unreachable")
