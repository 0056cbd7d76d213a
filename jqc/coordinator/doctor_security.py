"""The security checks of ``jqc doctor``: the link, the default user, and rights beyond a role.

* **tls**: is the link encrypted (``rediss://``), and are the server's certificate and host name
  verified? A plain-text link is fine on a unix socket or the loopback interface, and a warning
  anywhere else (passwords and job data cross the network readable).
* **default user**: a connection *without* credentials is opened and sent ``PING``. If it answers,
  the ``default`` user is enabled without a password: anyone who reaches the port has its rights.
  This needs no permission at all, so it works for any connected user.
* **excess rights**: what the connected user may do beyond what its role needs. The role is the
  one given (``jqc doctor --role worker --queue photos``) or else the role with the most
  operations that the user may all run. Operations come from the doctor's permission probe;
  commands and key patterns from ``ACL GETUSER`` when the user may read its own rules (a
  least-privilege user may not), and in any case from :func:`probe_rights`: a few commands that
  change nothing whatever the answer (reads and deletions of a key that does not exist, outside
  jqc's keys; ``SCAN 0 COUNT 1``, ``CONFIG GET``, ``CLIENT LIST``), each a right no role of
  ``jqc acl`` has (``SCAN`` only prefix-wide).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from jqc.backends.resp import RespClient
from jqc.backends.url import ServerConfig
from jqc.coordinator import acl
from jqc.coordinator.findings import Finding, Level

__all__ = ["default_user_open", "excess_findings", "infer_role", "probe_rights", "tls_findings"]


def _local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_findings(config: ServerConfig | None) -> list[Finding]:
    """Whether the link to ``config``'s server is encrypted and verified (pure)."""
    if config is None or config.embedded:
        return []
    if config.path is not None:
        return [Finding("tls", Level.OK, "a unix socket: the link never leaves this machine")]
    where = f"{config.host}:{config.port}"
    tls = config.tls
    if tls is None:
        if _local(config.host):
            return [Finding("tls", Level.INFO, f"plain text to {where} (loopback: the link stays on this machine)")]
        text = f"plain text to {where}: passwords and job data cross the network readable; use rediss://"
        return [Finding("tls", Level.WARN, text)]
    if tls.cert_reqs == "none":
        text = (
            "encrypted, but the server's certificate is not verified (ssl_cert_reqs=none): "
            "anyone in the path can pose as the server"
        )
        return [Finding("tls", Level.WARN, text)]
    if tls.cert_reqs == "optional":
        return [
            Finding(
                "tls", Level.WARN, "encrypted, but a server without a certificate is accepted (ssl_cert_reqs=optional)"
            )
        ]
    if not tls.check_hostname:
        text = "encrypted and the certificate verified, but not its host name (ssl_check_hostname=false)"
        return [Finding("tls", Level.WARN, text)]
    client = " with a client certificate" if tls.certfile else ""
    return [Finding("tls", Level.OK, f"encrypted (TLS), certificate and host name verified{client}")]


def default_user_open(config: ServerConfig | None) -> bool | None:
    """True when a connection without credentials is served (the ``default`` user needs no
    password), False when it is refused, None when it cannot be told (embedded, unreachable)."""
    if config is None or config.embedded:
        return None
    anonymous = replace(config, username=None, password=None, db=0, client_name=None)
    client = RespClient(anonymous)
    try:
        answer = client.exchange([("PING",)])[0]
    except Exception:  # unreachable or a TLS problem: the main checks report those
        return None
    finally:
        client.close()
    if isinstance(answer, BaseException):
        text = str(answer).upper()
        return False if ("NOAUTH" in text or "WRONGPASS" in text or "NOPERM" in text) else None
    return True


def probe_rights(client: Any, prefix: str, *, confined: bool) -> list[str]:
    """Rights beyond every role that harmless commands reveal (``confined``: to one queue, so SCAN
    is more than it needs). Each probe changes nothing, allowed or not: reads and deletions of a
    key that does not exist, under no prefix of jqc's."""
    outside = f"jqc-doctor-probe-{secrets.token_hex(8)}"
    reads = [("EXISTS", outside), ("HGETALL", outside), ("LRANGE", outside, "0", "0"), ("ZCARD", outside)]
    writes = [("DEL", outside), ("HDEL", outside, "f"), ("ZREM", outside, "m"), ("LREM", outside, "0", "m")]
    probes: list[tuple[str, list[tuple[str, ...]]]] = [
        (f"read keys outside {prefix}:{{...}}", reads),
        (f"write keys outside {prefix}:{{...}}", writes),
        ("read server settings (CONFIG GET)", [("CONFIG", "GET", "maxmemory")]),
        ("list other clients (CLIENT LIST)", [("CLIENT", "LIST")]),
    ]
    if confined:
        probes.append(("list every key name (SCAN), though it serves one queue", [("SCAN", "0", "COUNT", "1")]))
    found = []
    for what, commands in probes:
        for command in commands:
            try:
                client.execute_command(*command)
            except Exception:  # refused (as it should be), or not there at all
                continue
            found.append(what)
            break
    return found


def infer_role(allowed: Collection[str]) -> acl.Role | None:
    """The role with the most operations, all of which the user may run (None: not even a producer's)."""
    fitting = [role for role in acl.Role if set(acl.rules(role).scripts) <= set(allowed)]
    return max(fitting, key=lambda role: len(acl.rules(role).scripts), default=None)


def _tokens(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in str(item).split()]
    return str(value or "").split()


def _queue_of(keys: Sequence[str], prefix: str) -> str | None:
    """The one queue a user's key patterns under ``prefix`` name, if they all name the same one."""
    head = f"{prefix}:{{"
    queues = set()
    for pattern in keys:
        body = pattern.split("~", 1)[-1]
        if body.startswith(head) and "}" in body:
            queues.add(body[len(head) : body.index("}")])
    return queues.pop() if len(queues) == 1 and "*" not in next(iter(queues)) else None


def excess_findings(
    user: str,
    getuser: Mapping[str, Any] | None,
    allowed: Collection[str],
    *,
    prefix: str = "jqc",
    role: acl.Role | str | None = None,
    queue: str | None = None,
    probed: Sequence[str] = (),
) -> list[Finding]:
    """What ``user`` may do beyond its role (given, or inferred from the ``allowed`` operations).

    ``getuser`` is the user's ``ACL GETUSER`` reply as a mapping, or None when it may not read it;
    ``probed`` what :func:`probe_rights` found.
    """
    chosen = acl.Role(role) if role is not None else infer_role(allowed)
    if chosen is None:
        return [Finding("rights", Level.INFO, f"{user} may run no role's full set of operations")]
    user_keys = [t for t in _tokens((getuser or {}).get("keys")) if "~" in t]
    if queue is None and role is None:
        queue = _queue_of(user_keys, prefix)
    expected = acl.rules(chosen, queue, prefix)
    how = "as given" if role is not None else "the closest match"
    extra_ops = sorted(set(allowed) - set(expected.scripts))
    excess: list[str] = []
    if extra_ops:
        excess.append("operations " + ", ".join(extra_ops))
    if probed:
        excess.append("it can " + ", ".join(probed))
    if getuser is not None:
        wanted = {t for t in expected.rules if t.startswith("+")}
        granted = [t for t in _tokens(getuser.get("commands")) if t.startswith("+")]
        extra = [t for t in granted if t not in wanted and not t.startswith(("+evalsha|", "+select|"))]
        if extra:
            excess.append("commands " + " ".join(extra))
        wanted_keys = {t for t in expected.rules if "~" in t and not t.startswith("(")}
        extra_keys = [t for t in user_keys if t not in wanted_keys]
        flags = [str(f) for f in getuser.get("flags", [])]
        if "allkeys" in flags:
            extra_keys.insert(0, "~* (allkeys)")
        if extra_keys:
            excess.append("keys " + " ".join(extra_keys))
    scope = f"queue {queue}" if queue else f"every queue under {prefix}"
    if excess:
        text = f"{user} has more rights than the {chosen.value} role ({how}, {scope}) needs: " + "; ".join(excess)
        return [Finding("rights", Level.WARN, text + " (jqc acl prints the least-privilege rules)")]
    checked = (
        "operations, commands and keys" if getuser is not None else "operations and probes; its rules are not readable"
    )
    return [
        Finding("rights", Level.OK, f"{user}: no more than the {chosen.value} role ({how}, {scope}) needs ({checked})")
    ]
