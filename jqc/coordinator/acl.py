"""Least-privilege Redis ACL rules for the roles that use a queue: producer, worker, observer, coordinator, admin.

Every jqc operation is a Lua script run with ``EVALSHA``, and Redis 7 checks each command a script
calls, and each key it touches, against the *calling* user's permissions. That check happens when
the call is made, and Redis does not roll a script back: a script denied half-way keeps the writes
it made before the denial (``tests/coordinator/test_acl.py`` shows it on a real server). Denying a
role an operation by key or command permissions alone could therefore leave a queue half-changed.

So the rules work in three layers, each generated from the installed scripts:

1. **Which operations** (scripts): ``+evalsha|<sha>`` allows ``EVALSHA`` only with the SHA1 of each
   script the role may run (Redis's first-argument rule). ``EVAL``, ``FCALL`` and every other script
   are refused before anything runs, so a refused operation changes nothing.
2. **Which commands**: exactly the commands those scripts can call (read from their sources,
   following the helper functions they use) plus the few plain commands the Python side sends.
   Inner commands are also plain commands to Redis, so a role can send them directly; the
   destructive ones a role needs only on a few keys (``DEL`` for a worker: job, log, dead-letter,
   metrics and worker records) are confined to those keys with a Redis 7 selector.
3. **Which keys**: only the queue's keys, each named exactly: the keys a role's scripts declare
   (their ``--@keys`` lines) and the few its plain commands read. Redis checks ``EVALSHA``'s
   declared keys as read-write (its key spec is ``RW``), so a role gets read-write access to every
   key its scripts declare; the command list still confines what it can do by hand there (a
   producer has no ``RPOP``, ``LRANGE`` or ``ZRANGE``, so it can add to the waiting containers but
   not take or list jobs from them), and it has no access at all to the keys no script or read of
   its role needs (a producer: active, finished and dead-letter keys, logs, metrics).

What this cannot do: ACL has no per-field rules, so a role may change any field of a hash it must
write, with plain commands. A producer must write the queue's ``meta`` hash (job ids, priority
sequence, next-due hint), and so could also set its ``paused`` flag, rate limit or fencing-token
counter; a worker may pop or ``ZREM`` jobs it was not given; a coordinator must write the lock hash
``coordinator`` and the decision hash ``autoscale``, so by hand it can take the lock over or publish a
target without the fencing script (it still cannot touch a job). Closing that needs the engine to move
settings and the token counter out of ``meta`` into keys only an admin (settings) or a worker
(tokens) may write. ``SCAN`` cannot be confined to a pattern, so only roles that need it (admin,
and observers and coordinators of a whole prefix) get it, and it reveals every key name of the database.

The SHAs change whenever a script changes: regenerate and re-apply the rules after upgrading jqc.
Needs Redis 7.0 or newer (key read/write permissions and selectors).
"""

from __future__ import annotations

import enum
import hashlib
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.cluster import RedisCluster

from jqc.engine.keys import SUFFIXES, validate_queue_name
from jqc.engine.lua_source import reachable_code
from jqc.engine.scripts import script_keys, scripts
from jqc.errors import InvalidOptionError

__all__ = ["AclRules", "Role", "apply", "password_sha256", "rules", "script_commands"]


class Role(enum.StrEnum):
    """Who uses a queue, and for what."""

    PRODUCER = "producer"  # add jobs, read a job back
    WORKER = "worker"  # claim, renew, report progress and outcomes, recover stalled jobs, heartbeat,
    # wait on the event stream, count jobs (what `jqc worker` does, checked end to end in tests/security)
    OBSERVER = "observer"  # read counts, metrics, listings, events; store health checks
    COORDINATOR = "coordinator"  # autoscale, health, metrics: read counts, metrics, the worker registry;
    # write health checks, the coordinator lock and the published target; never touch a job
    ADMIN = "admin"  # every queue operation, including obliterate; no server administration


# Plain (non-script) commands each role's Python side sends. A queue snapshot sends these besides its
# scripts (the oldest waiting job, the worker registry, the stall scan).
# zrevrange and the winfo hash of worker records: while jobs wait, a snapshot reads the live workers' records to
# judge whether they consume (jqc.engine.liveness); Queue.workers() reads the registry newest first.
_SNAPSHOT_READS = (
    "lindex", "zrange", "zrevrange", "zrangebyscore", "zscore", "zcount", "zcard", "hmget", "exists", "xrevrange",
)  # fmt: skip
_READS = (
    "hget",
    "hgetall",
    "hmget",
    "lrange",
    "lindex",
    "zrange",
    "zrevrange",
    "zrangebyscore",
    "zscore",
    "zcount",
    "zcard",
    "exists",
)
_PLAIN: dict[Role, tuple[str, ...]] = {
    # get_job (HGET of the job's record, HMGET of meta's layout version); wait_for and listen read
    # the event stream; publish writes a custom event
    Role.PRODUCER: ("hget", "hmget", "xrevrange", "xread", "xadd"),
    # get_job, job_logs; an idle worker waits on events; the schedule driver finds due schedules and
    # reads their records; a handler may publish a custom event
    Role.WORKER: ("hget", "hmget", "hgetall", "xrevrange", "xread", "zrangebyscore", "xadd"),
    Role.OBSERVER: (*_READS, "xread", "xrevrange", "hset", "info"),  # snapshots, events, health, settings
    Role.COORDINATOR: (*_SNAPSHOT_READS, "hget", "hgetall", "hset"),  # snapshots, health and decision records
    # obliterate's sweep (scan, del); publish and trim_events; forget_dedup (hdel)
    Role.ADMIN: (*_READS, "xread", "xrevrange", "hset", "info", "scan", "del", "xadd", "xtrim", "hdel"),
}
# Every role may say who it is and keep its connection alive, and load the scripts it may run; on a
# Redis Cluster read which node serves which slot and follow ASK redirections, behind Sentinel check
# that a server is still the master (ROLE), and wait for replicas after an add (WAIT, with the
# wait_replicas option): the Cluster and Sentinel backends need them.
_ALWAYS = ("ping", "acl|whoami", "script|load", "cluster|slots", "asking", "role", "wait")

# Creating a flow (queue.add_flow): each queue of the flow runs these, so a producer of a flow needs
# its role on every queue the flow touches (or on the whole prefix). flow_abort (taking back a
# creation refused half-way) deletes jobs, so a producer does not get it: the repair finishes such
# a flow instead (docs/workflows.md); its HDEL and ZREM are confined to the flows hash and the
# waiting-children set, so a producer still cannot delete a job.
_FLOW_CREATE = ("flow_create", "flow_release", "flow_step")
_WORKER_SCRIPTS = (
    "claim", "complete", "complete_many", "fail", "extend", "progress", "log", "release", "recover", "heartbeat",
    "lease", "counts",  # counts: the periodic summary line, and a burst run's "is everything done?"
    "schedule_fire", "schedule_set",  # the schedule lease's holder fires ticks; a worker app declares schedules
    # flows: a child's outcome goes to its parent; the stall check repairs half-done creations and
    # deliveries; a creation refused half-way is taken back (docs/workflows.md, "Flows")
    *_FLOW_CREATE, "flow_abort", "flow_deliver", "flow_ack", "flow_due", "flow_park",
    "rate_limit",  # a handler's RateLimited(queue_wide=True) holds off every worker's claims
)  # fmt: skip
_SCRIPTS: dict[Role, tuple[str, ...] | None] = {
    Role.PRODUCER: ("add", *_FLOW_CREATE),
    Role.WORKER: _WORKER_SCRIPTS,
    Role.OBSERVER: ("counts", "priority_counts", "list", "metrics"),
    Role.COORDINATOR: ("counts", "metrics", "coordinator"),
    Role.ADMIN: None,  # every script
}

# Key permissions besides the keys the role's scripts declare (which get "RW": EVALSHA requires
# read-write permission on every declared key), as (suffix glob under "P:{Q}:", "R" | "W" | "RW").
_KEYS: dict[Role, tuple[tuple[str, str], ...]] = {
    # get_job, wait_for, listen and publish use only keys add declares (jobs, meta, events; dedup too)
    Role.PRODUCER: (),
    Role.WORKER: (("*", "RW"),),
    Role.OBSERVER: (("*", "R"), ("health", "RW")),
    # Reads only what a snapshot reads (no logs, dead-letter records, leases); writes three hashes.
    Role.COORDINATOR: (
        *((name, "R") for name in ("meta", "wait", "prio", "jobs", "workers", "winfo", "events")),
        ("health", "RW"),
    ),
    Role.ADMIN: (("*", "RW"),),
}

# The key patterns of the keys a script's caller names at call time (see jqc.engine.keys.SUFFIXES).
_GIVEN_KEYS = {"record": "sc:*", "lease": "*-lease"}

# Commands a role needs only on some keys: granted through a selector confined to those keys
# (unless another role in the same rule set grants the command everywhere).
_NARROW: dict[Role, dict[str, tuple[str, ...]]] = {
    Role.PRODUCER: {"hdel": ("fl",), "zrem": ("wc",)},
    Role.WORKER: {"del": ("*-lease",)},
    Role.OBSERVER: {"hset": ("health",)},
    Role.COORDINATOR: {"hset": ("health", "coordinator", "autoscale"), "hincrby": ("coordinator",)},
}

_CALL = re.compile(r"redis\.p?call\(\s*'([A-Za-z]+)'")
_GLOB = re.compile(r"([*?\[\]\\])")


def script_commands(source: str) -> frozenset[str]:
    """The Redis commands a script can call (lower case).

    Helpers defined in included files count only when the script's own code reaches them (directly
    or through other helpers), so a producer is not granted, say, ``LREM`` just because the
    ``enqueue`` include also defines a function that removes waiting jobs.
    """
    code = reachable_code(source)
    if code is None:  # unexpected layout: count the whole source, never too little
        code = source
    return frozenset(c.lower() for c in _CALL.findall(code))


def _glob_escape(text: str) -> str:
    return _GLOB.sub(r"\\\1", text)


@dataclass(frozen=True, slots=True)
class AclRules:
    """The ACL rules of one or more roles on one queue (or every queue under a prefix).

    ``rules`` holds the permission rules only (no ``reset``, no ``on``, no password): pass them to
    ``ACL SETUSER`` after those, as :meth:`setuser` does.
    """

    roles: tuple[Role, ...]
    prefix: str
    queue: str | None
    scripts: tuple[str, ...]
    commands: tuple[str, ...]
    rules: tuple[str, ...] = field(repr=False)

    def setuser(self, user: str, *, password: str | None = None, password_sha256: str | None = None) -> list[str]:
        """The ``ACL SETUSER`` arguments that (re)create ``user`` with exactly these rules.

        ``reset`` first, so rerunning it after an upgrade replaces the old rules instead of adding
        to them. Without a password the user exists but cannot log in until one is added.
        """
        _check_user(user)
        credentials: list[str] = []
        if password is not None:
            credentials.append(">" + password)
        if password_sha256 is not None:
            if not re.fullmatch(r"[0-9a-f]{64}", password_sha256):
                raise InvalidOptionError("password_sha256 must be 64 lower-case hex digits")
            credentials.append("#" + password_sha256)
        return ["ACL", "SETUSER", user, "reset", "on", *credentials, *self.rules]

    def render(self, user: str, *, password_sha256: str | None = None) -> str:
        """A ``redis-cli`` / shell line that applies the rules (never contains a clear password)."""
        return " ".join(shlex.quote(a) for a in self.setuser(user, password_sha256=password_sha256))

    def acl_file_line(self, user: str, *, password_sha256: str | None = None) -> str:
        """The same user as one line of a Redis ACL file (``aclfile`` setting)."""
        args = self.setuser(user, password_sha256=password_sha256)[3:]
        return " ".join(["user", user, *args])


def _check_user(user: object) -> None:
    if not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9._@:-]{1,100}", user):
        raise InvalidOptionError(f"user name must be 1-100 characters from A-Z a-z 0-9 . _ @ : -, not {user!r}")


def _roles(role: Role | str | Iterable[Role | str]) -> tuple[Role, ...]:
    items = [role] if isinstance(role, str) else list(role)
    out: list[Role] = []
    for item in items:
        try:
            parsed = Role(item)
        except ValueError:
            raise InvalidOptionError(f"role must be one of {[r.value for r in Role]}, not {item!r}") from None
        if parsed not in out:
            out.append(parsed)
    if not out:
        raise InvalidOptionError("name at least one role")
    return tuple(out)


def _mode(a: str, b: str) -> str:
    both = set(a) | set(b)
    return "".join(c for c in "RW" if c in both)


def _pattern(mode: str, key: str) -> str:
    return f"%{mode}~{key}" if mode != "RW" else f"~{key}"


def rules(
    role: Role | str | Sequence[Role | str],
    queue: str | None = None,
    prefix: str = "jqc",
    *,
    db: int | None = None,
) -> AclRules:
    """ACL rules for ``role`` (one, or several merged) on ``queue``, or on every queue under ``prefix``.

    ``db`` allows ``SELECT`` of that database only (needed when the URL names a database other
    than 0; ACL key permissions are not per database).
    """
    roles = _roles(role)
    if queue is not None:
        validate_queue_name(queue)
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise InvalidOptionError(f"prefix must be a non-empty str without braces, not {prefix!r}")
    if db is not None and (isinstance(db, bool) or not isinstance(db, int) or not 0 <= db <= 10_000):
        raise InvalidOptionError(f"db must be an int between 0 and 10000, not {db!r}")
    base = f"{_glob_escape(prefix)}:{{{queue if queue is not None else '*'}}}:"
    loaded = scripts()

    names: list[str] = []
    commands: set[str] = set(_ALWAYS)
    keys: dict[str, str] = {}
    narrow: dict[str, set[str]] = {}
    wide: set[str] = set()
    for r in roles:
        wanted = _SCRIPTS[r]
        for name in loaded if wanted is None else wanted:
            if name in loaded and name not in names:
                names.append(name)
        role_commands = set(_PLAIN[r])
        for name in loaded if wanted is None else wanted:
            if name in loaded:
                role_commands |= script_commands(loaded[name].source)
        role_narrow = _NARROW.get(r, {})
        for command in role_commands:
            if command in role_narrow:
                narrow.setdefault(command, set()).update(role_narrow[command])
            else:
                wide.add(command)
        for name in loaded if wanted is None else wanted:
            if name in loaded:
                for key in script_keys(name):
                    suffix = _GIVEN_KEYS[key] if key in _GIVEN_KEYS else SUFFIXES[key]
                    keys[suffix] = "RW"
        for suffix, mode in _KEYS[r]:
            keys[suffix] = _mode(keys.get(suffix, ""), mode)
    if keys.get("*") == "RW":
        keys = {"*": "RW"}  # every key of the queue: naming some of them again adds nothing
    if queue is None and ({Role.OBSERVER, Role.COORDINATOR, Role.ADMIN} & set(roles)):
        wide.add("scan")  # finding the queues of a prefix
    commands |= wide
    for command in wide:
        narrow.pop(command, None)

    out: list[str] = ["resetkeys", "resetchannels", "-@all"]
    if db is not None:
        out.append(f"+select|{db}")
    out += [f"+{c}" for c in sorted(commands)]
    out += [f"+evalsha|{loaded[n].sha}" for n in names]
    out += [_pattern(mode, base + suffix) for suffix, mode in keys.items()]
    for command in sorted(narrow):
        patterns = " ".join(f"~{base}{s}" for s in sorted(narrow[command]))
        out.append(f"(+{command} {patterns})")
    return AclRules(roles, prefix, queue, tuple(names), tuple(sorted(commands | set(narrow))), tuple(out))


def password_sha256(password: str) -> str:
    """The hex SHA-256 that Redis stores for a password (``#<hash>`` in an ACL rule)."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def apply(client: Any, user: str, acl: AclRules, *, password: str | None = None) -> None:
    """Create or replace ``user`` with ``acl`` through a sync redis client allowed ``ACL SETUSER``.

    Through a Redis Cluster client the user is created on every node, masters and replicas: the
    nodes of a cluster do not share their users, and a replica that is promoted must know them.
    """
    command = acl.setuser(user, password=password)
    if isinstance(client, RedisCluster):
        client.execute_command(*command, target_nodes=RedisCluster.ALL_NODES)  # type: ignore[no-untyped-call]
    else:
        client.execute_command(*command)
