"""TLS for server backends: the client context, and telling *why* a link could not be set up.

A failed TLS link reaches the caller as one typed, one-line :class:`jqc.TlsError` that says which
problem it is, never as a generic lost connection that would be retried forever:

* the server's certificate is untrusted (:class:`~jqc.TlsCertificateError`), expired
  (:class:`~jqc.TlsCertificateExpiredError`) or for another host
  (:class:`~jqc.TlsHostnameMismatchError`);
* the server wants a client certificate, or refused ours (:class:`~jqc.TlsClientCertificateError`);
* a ``redis://`` URL points at a TLS port (:class:`~jqc.TlsRequiredError`), or a ``rediss://``
  URL at a plain-text port (:class:`~jqc.TlsNotOfferedError`).

:func:`classify` reads what the exception chain already says (the SSL library names the reason).
Two cases leave no such trace: a plain-text client is simply reset by a TLS port, and a TLS client
on a plain-text port waits for a handshake answer until its connect timeout. For those, and for a
client-certificate refusal that a sync client sees only as an end of stream, :func:`diagnose`
opens one short probe connection (a TLS handshake with no data sent, or a plain ``PING``), and only
while a backend has not yet had a single good answer, so an outage of a server that was reached
before never pays for it. Nothing is ever retried over a weaker link.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

from jqc.backends.url import ServerConfig, TlsOptions
from jqc.errors import (
    InvalidOptionError,
    JqcError,
    TlsCertificateError,
    TlsCertificateExpiredError,
    TlsClientCertificateError,
    TlsError,
    TlsHostnameMismatchError,
    TlsNotOfferedError,
    TlsRequiredError,
)

__all__ = ["PROBE_TIMEOUT", "classify", "diagnose", "tls_context"]

#: The most one diagnostic probe may take, in seconds (also bounded by the connect timeout).
PROBE_TIMEOUT = 2.0

# OpenSSL's X509_V_ERR_* codes that have a type of their own.
_EXPIRED = {9, 10}  # not yet valid, has expired
_HOSTNAME = {62, 63, 64}  # host name, e-mail, IP address mismatch
# Alerts the server sends about the client's certificate.
_CLIENT_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "requires a client certificate: set ssl_certfile and ssl_keyfile",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "refused the handshake (a client certificate may be required)",
    "TLSV1_ALERT_UNKNOWN_CA": "refused the client certificate: it is not signed by a CA the server trusts",
    "SSLV3_ALERT_BAD_CERTIFICATE": "refused the client certificate as invalid",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "refused the client certificate: it has expired",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "refused the client certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "refused the client certificate as unsupported",
    "TLSV1_ALERT_ACCESS_DENIED": "refused the client certificate (access denied)",
    "TLSV1_ALERT_DECRYPT_ERROR": "refused the client certificate (its key does not match)",
}
# Reasons meaning the peer does not speak TLS at all.
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "UNKNOWN_PROTOCOL",
}
_RESETS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def tls_context(tls: TlsOptions) -> ssl.SSLContext:
    """The client-side TLS context for ``tls``: verification on unless ``cert_reqs`` is ``none``.

    An unreadable or malformed certificate or key file raises :class:`jqc.InvalidOptionError`
    naming the option and the file.
    """
    try:
        context = ssl.create_default_context(cafile=tls.ca_certs)
    except (OSError, ValueError) as exc:
        raise _bad_file("ssl_ca_certs", tls.ca_certs, exc) from None
    if tls.cert_reqs == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_mode = ssl.CERT_REQUIRED if tls.cert_reqs == "required" else ssl.CERT_OPTIONAL
        context.check_hostname = tls.check_hostname
    if tls.certfile:
        try:
            context.load_cert_chain(tls.certfile, tls.keyfile)
        except (OSError, ValueError) as exc:
            name, path = ("ssl_certfile", tls.certfile)
            if tls.keyfile and isinstance(exc, ssl.SSLError) and "KEY" in str(exc.reason or "").upper():
                name, path = ("ssl_keyfile", tls.keyfile)
            raise _bad_file(name, path, exc) from None
    elif tls.keyfile:
        raise InvalidOptionError("ssl_keyfile needs ssl_certfile (the client certificate it belongs to)")
    return context


def _bad_file(option: str, path: str | None, exc: BaseException) -> InvalidOptionError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return InvalidOptionError(f"{option}: cannot use {path!r}: {' '.join(reason.split())}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _address(config: ServerConfig | None) -> str:
    if config is None:
        return "the server"
    return f"the server at {config.host}:{config.port}"


def classify(exc: BaseException, config: ServerConfig | None = None) -> TlsError | None:
    """The :class:`jqc.TlsError` that ``exc`` (or an exception it was raised from) shows, if any.

    Pure: it looks at the SSL library's reason codes, and at the text when a client kept only that.
    """
    where = _address(config)
    for item in _chain(exc):
        if isinstance(item, TlsError):
            return item
        if isinstance(item, ssl.SSLCertVerificationError):
            return _verification(item.verify_code, item.verify_message or str(item), where)
        if isinstance(item, ssl.SSLError) and item.reason:
            found = _by_reason(str(item.reason), where)
            if found is not None:
                return found
    text = " ".join(str(item) for item in _chain(exc))
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip(" .:")
        lowered = detail.lower()
        code = 10 if "expired" in lowered else 62 if "mismatch" in lowered else 0
        return _verification(code, detail, where)
    for reason in (*_CLIENT_ALERTS, *_NOT_TLS):
        if reason in text:
            return _by_reason(reason, where)
    return None


def _verification(code: int, detail: str, where: str) -> TlsCertificateError:
    detail = " ".join(detail.split()).rstrip(".")
    if code in _EXPIRED:
        return TlsCertificateExpiredError(
            f"TLS: the certificate of {where} is out of its validity period ({detail}): renew it on the server"
        )
    if code in _HOSTNAME:
        return TlsHostnameMismatchError(
            f"TLS: the certificate of {where} is for another host ({detail}): connect by a name or address "
            "the certificate lists, or issue one for this name"
        )
    return TlsCertificateError(
        f"TLS: the certificate of {where} is not trusted ({detail}): pass the CA that signed it "
        "as ssl_ca_certs (URL query or jqc.connect argument)"
    )


def _by_reason(reason: str, where: str) -> TlsError | None:
    if reason in _CLIENT_ALERTS:
        return TlsClientCertificateError(f"TLS: {where} {_CLIENT_ALERTS[reason]} ({reason})")
    if reason in _NOT_TLS:
        return _not_offered(where, reason)
    return None


def _not_offered(where: str, detail: str) -> TlsNotOfferedError:
    return TlsNotOfferedError(
        f"TLS: {where} does not speak TLS on this port ({detail}): point rediss:// at its tls-port "
        "(jqc never falls back to plain text)"
    )


def _tls_required(where: str) -> TlsRequiredError:
    return TlsRequiredError(
        f"{where} speaks TLS on this port and closed the plain-text connection: use a rediss:// URL "
        "(with ssl_ca_certs for a private CA)"
    )


def _errno(exc: BaseException) -> int | None:
    for item in _chain(exc):
        if isinstance(item, OSError) and item.errno is not None:
            return item.errno
        if isinstance(item, ssl.SSLEOFError):
            return errno.ECONNRESET
    return None


def _closed_early(exc: BaseException) -> bool:
    """True when the peer reset or closed the connection (as a TLS port does to plain text)."""
    if _errno(exc) in _RESETS:
        return True
    text = " ".join(str(item) for item in _chain(exc)).lower()
    return any(
        words in text
        for words in ("connection reset", "closed the connection", "connection closed", "eof occurred", "broken pipe")
    )


def _timed_out(exc: BaseException) -> bool:
    """True when the call timed out (as a TLS handshake with a plain-text port does)."""
    for item in _chain(exc):
        if isinstance(item, TimeoutError) or "timed out" in str(item).lower() or "timeout" in str(item).lower():
            return True
    return False


def _probe_timeout(config: ServerConfig) -> float:
    return min(PROBE_TIMEOUT, config.socket_connect_timeout or PROBE_TIMEOUT)


def _speaks_tls(config: ServerConfig) -> bool:
    """True when a TLS handshake (verification off: only to learn the protocol) gets a TLS answer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    timeout = _probe_timeout(config)
    try:
        with socket.create_connection((config.host, config.port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=config.host):
                return True
    except ssl.SSLError as exc:
        return str(exc.reason or "") not in _NOT_TLS  # an alert is a TLS answer (a client cert required ...)
    except OSError:
        return False


def _answers_plain(config: ServerConfig) -> bool:
    """True when a plain ``PING`` gets a RESP answer (``+PONG``, ``-NOAUTH`` ...)."""
    try:
        with socket.create_connection((config.host, config.port), timeout=_probe_timeout(config)) as raw:
            raw.sendall(b"PING\r\n")
            first = raw.recv(1)
    except OSError:
        return False
    return first in (b"+", b"-")


def _client_refusal(config: ServerConfig, context: ssl.SSLContext) -> TlsError | None:
    """What the server says right after a handshake (its alert about our certificate), if anything.

    Nothing is sent: a TLS 1.3 server judges the client's certificate after the client finished
    its handshake, and its verdict is an alert waiting to be read (a write could race it).
    """
    try:
        with socket.create_connection((config.host, config.port), timeout=_probe_timeout(config)) as raw:
            with context.wrap_socket(raw, server_hostname=config.host) as sock:
                sock.recv(1)
    except ssl.SSLError as exc:
        return classify(exc, config)
    except OSError:
        return None
    return None


def diagnose(exc: BaseException, config: ServerConfig, *, fresh: bool) -> JqcError | None:
    """The :class:`jqc.TlsError` behind a failed call to ``config``'s server, or None.

    ``fresh`` says the backend never had a good answer yet: only then may this open a probe
    connection (blocking, at most :data:`PROBE_TIMEOUT` seconds) to tell a protocol mismatch from
    an outage. Unix sockets and embedded stores never need one.
    """
    found = classify(exc, config)
    if found is not None or not fresh or config.path is not None:
        return found
    where = _address(config)
    if config.tls is None:
        if _closed_early(exc) and _speaks_tls(config):
            return _tls_required(where)
        return None
    if _timed_out(exc):
        if _answers_plain(config):
            return _not_offered(where, "the handshake got no answer, a plain PING did")
        return None
    if _closed_early(exc):
        try:
            context = tls_context(config.tls)
        except InvalidOptionError:
            return None
        return _client_refusal(config, context)
    return None
