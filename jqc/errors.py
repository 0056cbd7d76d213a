"""The jqc exception family.

Every error jqc raises on purpose is a :class:`JqcError`, so callers can catch one root. Subclasses
say *what* went wrong (bad input, a lost lock, a missing job, corrupt stored data, a server that is
unavailable for now or that refused for good) so code can react to each without parsing messages.

Server problems come in two kinds, told apart by the class attribute :attr:`JqcError.retryable`:

* **retryable** (:class:`BackendError` and its subclasses): the connection was lost or timed out,
  or the server is in a passing state (``READONLY`` after a failover, ``LOADING`` after a restart,
  ``BUSY`` running a slow script, a Cluster redirect or ``CLUSTERDOWN``/``MASTERDOWN``). Trying
  the same call again later can succeed; the worker backs off and retries these.
* **final** (:class:`ServerRefusedError` and :class:`ScriptReplyError`): the server will keep
  refusing until someone changes its configuration (``OOM`` under ``maxmemory`` with
  ``noeviction``, ``NOPERM`` from an ACL, bad credentials) or jqc and the server disagree (a
  script error). Retrying unchanged does not help.

A lost connection or a timeout leaves one question open: a write in flight may or may not have
been applied. Adds with a custom ``job_id`` are idempotent, so retrying them is always safe.
"""

from __future__ import annotations

from typing import Any, ClassVar


class JqcError(Exception):
    """Root of every error raised by jqc."""

    #: True when the same call may succeed if tried again later, unchanged.
    retryable: ClassVar[bool] = False


class InvalidInputError(JqcError, ValueError):
    """An argument or option given to jqc is malformed; nothing was written."""


class InvalidQueueNameError(InvalidInputError):
    """A queue name is empty, too long, or uses characters outside the allowed set."""


class InvalidJobIdError(InvalidInputError):
    """A custom job id is empty, too long, or contains control characters."""


class InvalidOptionError(InvalidInputError):
    """A job or queue option has the wrong type or an out-of-range value."""


class InvalidScheduleError(InvalidOptionError):
    """A schedule is malformed: a bad cron expression or time zone, an interval too short, a bad policy."""


class InvalidUrlError(InvalidOptionError):
    """A connection URL is malformed: unknown scheme, bad port or database, missing host, unknown option."""


class DataNotJsonError(InvalidInputError):
    """Job data, a result or a progress value holds something JSON cannot carry."""


class PayloadTooLargeError(InvalidInputError):
    """The encoded job data is larger than the queue's configured limit."""


class JobNotFoundError(JqcError, LookupError):
    """No job with this id exists in the queue."""


class JobStateError(JqcError):
    """The operation does not apply to the job's current state (e.g. promoting a waiting job)."""


class JobActiveError(JobStateError):
    """The job is held by a worker; it cannot be removed or changed this way until it finishes."""


class JobFailedError(JqcError):
    """The job that was waited for (``wait_for``, ``Job.wait``) failed for good.

    It carries the failure: :attr:`job_id`, :attr:`reason` (the last failure's message),
    :attr:`code` (its :class:`jqc.FailureCode`, a ``str``, None when unknown), :attr:`traceback`
    and :attr:`job`, the failed :class:`jqc.Job` as stored (None when its record was deleted as it
    failed, ``remove_on_fail``: the reason and code then come from its ``failed`` event).
    """

    def __init__(
        self, job_id: str, reason: str | None, code: str | None = None, *, traceback: str | None = None, job: Any = None
    ) -> None:
        super().__init__(f"job {job_id} failed: {reason or 'no reason given'}")
        self.job_id = job_id
        self.reason = reason
        self.code = code
        self.traceback = traceback
        self.job = job


class WaitTimeoutError(JqcError, TimeoutError):
    """A job that was waited for had not finished when the wait's timeout (on the queue's clock)
    passed. :attr:`job_id` names it, :attr:`timeout` is the wait's, :attr:`state` the job's state
    as last read (a :class:`jqc.JobState`). The job itself is untouched and may still finish."""

    def __init__(self, job_id: str, timeout: float, state: Any) -> None:
        super().__init__(f"job {job_id} did not finish within {timeout:g} s (it is {state})")
        self.job_id = job_id
        self.timeout = timeout
        self.state = state


class LockLostError(JqcError):
    """A worker wrote about a job with a token that is no longer current.

    The job's lock expired and it was recovered (and perhaps claimed by someone else), or the job was
    removed. The write was rejected and changed nothing; the worker must stop working on the job.
    """


class CorruptJobError(JqcError):
    """A job hash in Redis is missing fields or holds values jqc cannot decode."""


class LayoutVersionError(JqcError):
    """The queue's data is in a key layout this jqc does not read (written by an older jqc).

    jqc 0.x before the declared-keys layout kept a hash per job (``P:{Q}:j:<id>``); this version
    keeps every job as a field of ``P:{Q}:jobs`` and refuses to guess: reading the old keys as the
    new ones would take live jobs for missing ones. Finish the queue's jobs with the jqc that wrote
    them, or obliterate it; ``jqc doctor`` lists queues in another layout.
    """


class ScriptReplyError(JqcError):
    """A Lua script failed or answered with a code or shape jqc does not understand.

    This means jqc and the data or scripts on the server disagree (a version mismatch, data written
    by something else, or a bug in jqc); it is never a passing server state.
    """


# -- retryable: the server could not serve the call now -------------------------------------------


class BackendError(JqcError):
    """Talking to the Redis server (or the embedded backend) failed in a way that may pass.

    Subclasses name the cause; every one is retryable.
    """

    retryable = True


class ConnectionLostError(BackendError):
    """No connection could be made, or it broke during the call (a write in flight may have run)."""


class CallTimeoutError(ConnectionLostError):
    """The server did not answer within the read timeout; the connection was dropped and is rebuilt."""


class ServerUnavailableError(BackendError):
    """The server answered, but cannot serve this call in its present state."""


class ServerReadOnlyError(ServerUnavailableError):
    """``READONLY``: the connection reached a replica, typically a master demoted by a failover."""


class ServerLoadingError(ServerUnavailableError):
    """``LOADING``: the server is loading its data set after a restart."""


class ServerBusyError(ServerUnavailableError):
    """``BUSY``: the server is running a slow script (or a ``DEBUG SLEEP``) and serves nothing else."""


class ClusterRedirectError(ServerUnavailableError):
    """``MOVED``/``ASK``/``TRYAGAIN``: the key's slot is moving or served by another node."""


class ClusterDownError(ServerUnavailableError):
    """``CLUSTERDOWN`` or ``MASTERDOWN``: the cluster or the master is not serving (a failover is on)."""


# -- final: the server refuses until its configuration changes ------------------------------------


class ServerRefusedError(JqcError):
    """The server refused the call, and will go on refusing it until its configuration changes."""


class OutOfMemoryError(ServerRefusedError):
    """``OOM``: Redis reached ``maxmemory`` and its policy (``noeviction``) refuses writes.

    Free memory (clean finished jobs, purge dead letters), raise ``maxmemory``, or let Redis evict
    keys that are not jqc's; jqc's keys must never be evicted (use ``noeviction`` or a
    ``volatile-*`` policy).
    """


class PermissionDeniedError(ServerRefusedError):
    """``NOPERM``: the Redis user's ACL refused the call before anything ran (see ``jqc acl``).

    The message names what the user lacks: the jqc operation and its ``evalsha|<sha>`` rule, the
    key pattern of the operation's keys, or a plain command and its key.
    """

    #: The command Redis refused (lower case, ``"evalsha"`` for a jqc operation), if it named one.
    command: str | None = None
    #: True when Redis refused access to a key (its message does not say which).
    key_refused: bool = False
    #: The jqc operation (script name) or plain command refused, once the executor named it.
    operation: str | None = None


class AuthenticationFailedError(ServerRefusedError):
    """``WRONGPASS``/``NOAUTH``: the user name or password is wrong, or the server needs one."""


class TlsError(ServerRefusedError):
    """The TLS link to the server could not be set up, and will not be until a certificate, the
    server's TLS settings or the URL change (either side may be the one refusing).

    jqc never falls back to plain text: a ``rediss://`` URL talks TLS or fails with one of these.
    """


class TlsCertificateError(TlsError):
    """The server's certificate failed verification: not signed by a CA in ``ssl_ca_certs`` (or the
    system's store), self-signed, or otherwise invalid."""


class TlsCertificateExpiredError(TlsCertificateError):
    """The server's certificate has expired (or is not valid yet)."""


class TlsHostnameMismatchError(TlsCertificateError):
    """The server's certificate is not valid for the host name or address in the URL."""


class TlsClientCertificateError(TlsError):
    """The server demands a client certificate (mutual TLS) and got none, or refused the one given."""


class TlsRequiredError(TlsError):
    """A plain-text ``redis://`` URL points at a port where the server speaks TLS: use ``rediss://``."""


class TlsNotOfferedError(TlsError):
    """A ``rediss://`` URL points at a port where the server speaks plain text, not TLS."""


class NotReplicatedError(JqcError):
    """An add ran on the master, but fewer replicas than ``wait_replicas`` acknowledged it within
    ``wait_timeout`` (Redis's ``WAIT``): it may be lost if the master fails before they catch up.

    The write is not undone: :attr:`result` holds what the call returned (the added job, for an
    add), :attr:`acknowledged` how many replicas confirmed it and :attr:`wanted` how many were asked
    for. Not retryable as such: adding again would add a second job, unless it has a ``job_id``.
    """

    def __init__(self, message: str, *, acknowledged: int, wanted: int, reply: object = None) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged
        self.wanted = wanted
        self.reply = reply  # the call's raw reply (the engine parses it into result)
        self.result: object = None


class BatchError(JqcError):
    """Some calls of a batch failed; every call was sent and ran (or failed) on its own.

    ``results`` holds each call's result in order (None for the failed ones) and ``errors`` maps
    the index of each failed call to its error. :attr:`first` is the earliest error. The batch is
    retryable only when every failure is.
    """

    def __init__(self, message: str, results: list[object], errors: dict[int, JqcError]) -> None:
        super().__init__(message)
        self.results = results
        self.errors = errors

    @property
    def first(self) -> JqcError:
        """The error of the earliest failed call."""
        return self.errors[min(self.errors)]

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        """True when every failed call of the batch may succeed if sent again."""
        return all(error.retryable for error in self.errors.values())


class MissingDependencyError(JqcError, ImportError):
    """An optional dependency is needed for this feature; the message says what to install."""
