"""``jqc doctor``: is this Redis fit to hold job queues, and what may the connected user do?

Checks, each a :class:`Finding` graded ok / info / warn / fail:

- the server answers; every queue of the prefix (or the one named) is in the key layout this jqc
  reads (fail for a queue an older jqc wrote: the engine refuses it rather than misread it);
- its version (fail below 6.2, which the scripts need; warn below 7.0, which
  the ACL rules of ``jqc acl`` need), mode and role;
- memory used and peak, against ``maxmemory`` when set; ``maxmemory-policy`` (warn unless
  ``noeviction``: any other policy may silently delete jobs) and keys evicted so far;
- connected and blocked clients (against ``maxclients``), ops/s, keyspace hit rate;
- persistence: AOF on/off and its last write, the RDB snapshot schedule (``CONFIG GET save``,
  when the user may read it) and the last snapshot's status; warn when neither is on, since a
  restart then loses every job;
- the link (TLS on, certificate and host name verified: see :mod:`~jqc.coordinator.doctor_security`),
  and whether the ``default`` user serves connections without a password;
- the user: ``ACL WHOAMI``, its rules when ``ACL GETUSER`` is allowed (warn for an unrestricted
  user), for every jqc operation whether it may run it, and whether it has more rights (operations,
  commands, key patterns) than its role needs. That probe sends
  ``EVALSHA <sha> 99`` with no keys: Redis checks permission first and then refuses the call for
  its key count, so the script never runs and nothing changes.

On the embedded backend (fakeredis, which has no ``INFO``, ``CONFIG GET`` or ``ACL DRYRUN``) the
server checks are replaced by one finding that says so; the doctor never fails because of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.exceptions as rex

from jqc.connection import Connection
from jqc.coordinator import acl
from jqc.coordinator import doctor_security as security
from jqc.coordinator.findings import Finding, Level
from jqc.engine.calls import run_sync
from jqc.engine.keys import LAYOUT_VERSION, validate_queue_name
from jqc.engine.scripts import scripts
from jqc.errors import BackendError, JqcError, LayoutVersionError

__all__ = ["DoctorReport", "Finding", "Level", "evaluate_info", "run"]

# Which operation each script is, for the permission summary.
OPERATIONS = {
    "add": "add jobs",
    "claim": "claim jobs",
    "complete": "complete jobs",
    "fail": "fail jobs",
    "extend": "renew locks",
    "recover": "recover stalled jobs",
    "heartbeat": "register workers",
    "counts": "read counts",
    "metrics": "read metrics",
    "list": "list jobs",
    "pause": "pause/resume",
    "configure": "configure queues",
    "remove": "remove jobs",
    "drain": "drain queues",
    "clean": "clean old jobs",
    "replay": "replay dead letters",
    "purge": "purge dead letters",
    "obliterate": "obliterate queues",
}


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Everything the doctor found about one connection (URL without password)."""

    url: str
    embedded: bool
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Level:
        return max((f.level for f in self.findings), key=lambda lv: lv.rank, default=Level.OK)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "embedded": self.embedded,
            "worst": self.worst.value,
            "findings": [{"check": f.check, "level": f.level.value, "message": f.message} for f in self.findings],
        }


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _int(info: Mapping[str, Any], key: str) -> int | None:
    value = info.get(key)
    try:
        return None if value is None else int(float(value))
    except (TypeError, ValueError):
        return None


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def evaluate_info(info: Mapping[str, Any], config: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings from an ``INFO`` reply (parsed to a mapping) and, if readable, ``CONFIG GET`` values.

    Pure: it reads nothing, so it is tested with canned replies as well as a live server.
    """
    out: list[Finding] = []
    version = str(info.get("redis_version", "?"))
    v = _version(version) if version != "?" else (0,)
    if v < (6, 2):
        out.append(Finding("version", Level.FAIL, f"Redis {version}: jqc needs 6.2 or newer (7.0 for `jqc acl`)"))
    elif v < (7, 0):
        out.append(Finding("version", Level.WARN, f"Redis {version}: works, but `jqc acl` rules need 7.0 or newer"))
    else:
        out.append(Finding("version", Level.OK, f"Redis {version}"))
    mode, role = info.get("redis_mode", "?"), info.get("role", "?")
    note = "; each queue lives in one hash slot" if mode == "cluster" else ""
    level = Level.WARN if role not in ("master", "?") else Level.INFO
    extra = " (a replica is read-only: point producers and workers at the primary)" if level == Level.WARN else ""
    out.append(Finding("mode", level, f"{mode}, role {role}{extra}{note}"))

    used, peak, limit = _int(info, "used_memory"), _int(info, "used_memory_peak"), _int(info, "maxmemory")
    if used is not None:
        text = f"used {_bytes(used)}, peak {_bytes(peak or used)}"
        if limit:
            share = used / limit
            text += f", {100 * share:.0f}% of maxmemory {_bytes(limit)}"
            level = Level.FAIL if share >= 0.95 else Level.WARN if share >= 0.8 else Level.OK
        else:
            text += ", no maxmemory limit"
            level = Level.OK
        out.append(Finding("memory", level, text))
    policy = str(info.get("maxmemory_policy") or (config or {}).get("maxmemory-policy") or "")
    if policy:
        if policy == "noeviction":
            out.append(Finding("maxmemory-policy", Level.OK, "noeviction: Redis refuses writes rather than drop keys"))
        else:
            out.append(
                Finding(
                    "maxmemory-policy",
                    Level.WARN,
                    f"{policy}: when memory runs out Redis deletes keys, jobs included; set noeviction",
                )
            )
    evicted = _int(info, "evicted_keys")
    if evicted:
        out.append(Finding("evictions", Level.FAIL, f"{evicted} key(s) evicted since start: jobs may have been lost"))

    clients, blocked, max_clients = (
        _int(info, "connected_clients"),
        _int(info, "blocked_clients"),
        _int(info, "maxclients"),
    )
    if clients is not None:
        text = f"{clients} connected, {blocked or 0} blocked"
        level = Level.OK
        if max_clients:
            text += f", maxclients {max_clients}"
            if clients >= 0.9 * max_clients:
                level = Level.WARN
                text += " (nearly full)"
        rejected = _int(info, "rejected_connections")
        if rejected:
            level = Level.WARN
            text += f"; {rejected} connection(s) rejected since start"
        out.append(Finding("clients", level, text))
    ops = _int(info, "instantaneous_ops_per_sec")
    if ops is not None:
        out.append(Finding("ops", Level.INFO, f"{ops} ops/s"))
    hits, misses = _int(info, "keyspace_hits"), _int(info, "keyspace_misses")
    if hits is not None and misses is not None:
        total = hits + misses
        rate = "no lookups yet" if total == 0 else f"{100 * hits / total:.1f}% of {total} key lookups"
        out.append(Finding("hit rate", Level.INFO, rate))

    out += _persistence(info, config)
    return out


def _persistence(info: Mapping[str, Any], config: Mapping[str, str] | None) -> list[Finding]:
    out: list[Finding] = []
    aof = _int(info, "aof_enabled") == 1
    save = None if config is None else config.get("save")
    parts = [f"AOF {'on' if aof else 'off'}"]
    if aof:
        fsync = None if config is None else config.get("appendfsync")
        if fsync:
            parts[0] += f" (appendfsync {fsync})"
        if info.get("aof_last_write_status") not in (None, "ok"):
            out.append(Finding("persistence", Level.FAIL, f"last AOF write: {info.get('aof_last_write_status')}"))
    if save is None:
        parts.append("RDB schedule unknown (CONFIG GET not allowed or not available)")
    else:
        parts.append(f"RDB save {save!r}" if save else "RDB snapshots off")
    if info.get("rdb_last_bgsave_status") not in (None, "ok"):
        out.append(Finding("persistence", Level.FAIL, f"last RDB snapshot: {info.get('rdb_last_bgsave_status')}"))
    if not aof and save == "":
        level, tail = Level.WARN, ": a restart loses every job"
    elif not aof and save is None:
        level, tail = Level.INFO, ""
    else:
        level, tail = Level.OK, ""
    out.insert(0, Finding("persistence", level, ", ".join(parts) + tail))
    return out


def _getuser(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    items = list(reply or [])
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


@dataclass
class _User:
    """Who the connection is, its rules (None: not readable), and the operations it may run."""

    name: str | None = None
    rules: dict[str, Any] | None = None
    allowed: tuple[str, ...] = ()


def _user_findings(client: Any, me: _User) -> list[Finding]:
    out: list[Finding] = []
    try:
        user = me.name = str(client.execute_command("ACL", "WHOAMI"))
    except rex.ResponseError as exc:
        return [Finding("user", Level.INFO, f"ACL WHOAMI refused ({exc}); cannot tell who is connected")]
    try:
        rules = me.rules = _getuser(client.execute_command("ACL", "GETUSER", user))
    except rex.ResponseError:
        out.append(Finding("user", Level.OK, f"{user} (may not read its own rules: expected for a restricted user)"))
    else:
        flags = [str(f) for f in rules.get("flags", [])]
        commands, keys = _text(rules.get("commands", "")), _text(rules.get("keys", ""))
        unrestricted = "+@all" in commands.split() and (keys in ("~*", "%RW~*") or "allkeys" in flags)
        if "nopass" in flags:
            out.append(Finding("user", Level.WARN, f"{user} needs no password: anyone who reaches the port is {user}"))
        if unrestricted:
            text = f"{user} may run every command on every key: give producers and workers their own users (jqc acl)"
            out.append(Finding("user", Level.WARN, text))
        elif "nopass" not in flags:
            out.append(Finding("user", Level.OK, f"{user}: commands {commands or '-'}; keys {keys or '-'}"))
    allowed, denied, names = [], [], []
    for name, script in scripts().items():
        label = OPERATIONS.get(name)
        try:
            client.execute_command("EVALSHA", script.sha, 99)
        except rex.NoPermissionError:
            if label is not None:
                denied.append(label)
            continue
        except rex.ResponseError:
            pass  # permitted: refused only for its (deliberately wrong) key count
        names.append(name)
        if label is not None:
            allowed.append(label)
    me.allowed = tuple(names)
    if allowed:
        out.append(Finding("operations", Level.INFO, "may " + ", ".join(allowed)))
    if denied:
        out.append(Finding("operations", Level.INFO, "may not " + ", ".join(denied)))
    if not allowed:
        out.append(Finding("operations", Level.FAIL, "may run no jqc operation"))
    return out


def _info(client: Any) -> dict[str, Any] | None:
    """INFO as a mapping, or None when the server has no INFO command (the embedded backend)."""
    try:
        reply = client.execute_command("INFO")
    except rex.ResponseError as exc:
        if "unknown command" in str(exc).lower():
            return None
        raise
    if isinstance(reply, str):  # an unparsed reply
        parsed: dict[str, Any] = {}
        for line in reply.splitlines():
            if ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                parsed[key] = value
        return parsed
    return dict(reply)


def _config(client: Any) -> dict[str, str] | None:
    try:
        reply = client.execute_command("CONFIG", "GET", "save")
        more = client.execute_command("CONFIG", "GET", "appendfsync")
    except rex.ResponseError:
        return None  # not allowed (least-privilege users), or not available (embedded)
    out: dict[str, str] = {}
    for part in (reply, more):
        out.update({str(k): str(v) for k, v in _getuser(part).items()})
    return out


#: Queues whose layout version the doctor reads at most (one HMGET each).
LAYOUT_CHECK_LIMIT = 1000


def layout_findings(connection: Connection, queue: str | None = None) -> list[Finding]:
    """Whether the queues (``queue``, or every queue of the prefix up to :data:`LAYOUT_CHECK_LIMIT`)
    hold data in the key layout this jqc reads; a queue an older jqc wrote is a FAIL: the engine
    refuses it (:class:`jqc.LayoutVersionError`) rather than misread it."""
    try:
        names = [queue] if queue is not None else connection.queue_names()[:LAYOUT_CHECK_LIMIT]
    except JqcError as exc:
        return [Finding("layout", Level.INFO, f"cannot list the queues ({type(exc).__name__}): layout not checked")]
    old: list[str] = []
    for name in names:
        try:
            run_sync(connection.backend, connection.queue(name).ops.check_layout())
        except LayoutVersionError:
            old.append(name)
        except JqcError as exc:
            return [
                Finding("layout", Level.INFO, f"cannot read queue {name!r} ({type(exc).__name__}): layout not checked")
            ]
    if old:
        shown = ", ".join(old[:10]) + (f" and {len(old) - 10} more" if len(old) > 10 else "")
        text = (
            f"{len(old)} queue(s) hold data in an older key layout ({shown}): jqc refuses them; finish their "
            f"jobs with the jqc that wrote them, or obliterate them (docs/keys.md)"
        )
        return [Finding("layout", Level.FAIL, text)]
    return [Finding("layout", Level.OK, f"{len(names)} queue(s) in key layout {LAYOUT_VERSION}")]


def run(connection: Connection, *, role: str | None = None, queue: str | None = None) -> DoctorReport:
    """Run every check against ``connection``; never raises for a server that answers.

    ``role`` (and ``queue``) say what the connected user is for, so the doctor can tell whether
    it has more rights than that role needs; without them it compares with the closest role.
    """
    if role is not None:
        acl.rules(role, queue, connection.prefix)  # a bad role or queue name raises here, before any I/O
    elif queue is not None:
        validate_queue_name(queue)
    findings: list[Finding] = []
    try:
        client = connection.sync_client()
        client.ping()
    except (rex.RedisError, OSError, BackendError) as exc:
        text = f"cannot reach {connection.safe_url}: {type(exc).__name__}: {exc}"
        return DoctorReport(connection.safe_url, connection.in_process, (Finding("connection", Level.FAIL, text),))
    findings.append(Finding("connection", Level.OK, f"{connection.safe_url} answers"))
    findings += layout_findings(connection, queue)
    if connection.in_process:
        text = (
            "embedded backend (fakeredis in this process): no INFO, CONFIG or ACL DRYRUN, so server checks do not apply"
        )
        findings.append(Finding("server", Level.INFO, text))
        return DoctorReport(connection.safe_url, True, tuple(findings))
    try:
        info = _info(client)
    except rex.NoPermissionError:
        findings.append(Finding("server", Level.INFO, "INFO not allowed for this user: server checks skipped"))
        info = {}
    if info is None:
        findings.append(Finding("server", Level.INFO, "the server has no INFO command: server checks skipped"))
    elif info:
        findings += evaluate_info(info, _config(client))
    config = getattr(connection.factory, "config", None)
    findings += security.tls_findings(config)
    me = _User()
    user_findings = _user_findings(client, me)
    if me.name != "default" and security.default_user_open(config):  # (as default, "user" says it)
        text = (
            "the default user needs no password: anyone who reaches the port has its rights "
            "(ACL SETUSER default off, or give it a password)"
        )
        findings.append(Finding("default user", Level.WARN, text))
    findings += user_findings
    if me.name is not None:
        chosen = role or security.infer_role(me.allowed)
        confined = chosen is not None and "scan" not in acl.rules(chosen, queue).commands
        probed = security.probe_rights(client, connection.prefix, confined=confined)
        findings += security.excess_findings(
            me.name, me.rules, me.allowed, prefix=connection.prefix, role=role, queue=queue, probed=probed
        )
    return DoctorReport(connection.safe_url, False, tuple(findings))
