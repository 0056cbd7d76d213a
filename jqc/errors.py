"""The jqc exception family.

Every error jqc raises on purpose is a :class:`JqcError`, so callers can catch one root. Subclasses
say *what* went wrong (bad input, a lost lock, a missing job, corrupt stored data) so code can react
to each without parsing messages.
"""

from __future__ import annotations


class JqcError(Exception):
    """Root of every error raised by jqc."""


class InvalidInputError(JqcError, ValueError):
    """An argument or option given to jqc is malformed; nothing was written."""


class InvalidQueueNameError(InvalidInputError):
    """A queue name is empty, too long, or uses characters outside the allowed set."""


class InvalidJobIdError(InvalidInputError):
    """A custom job id is empty, too long, or contains control characters."""


class InvalidOptionError(InvalidInputError):
    """A job or queue option has the wrong type or an out-of-range value."""


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


class LockLostError(JqcError):
    """A worker wrote about a job with a token that is no longer current.

    The job's lock expired and it was recovered (and perhaps claimed by someone else), or the job was
    removed. The write was rejected and changed nothing; the worker must stop working on the job.
    """


class CorruptJobError(JqcError):
    """A job hash in Redis is missing fields or holds values jqc cannot decode."""


class ScriptReplyError(JqcError):
    """A Lua script answered with a code or shape jqc does not understand (a version mismatch or a bug)."""


class PermissionDeniedError(JqcError):
    """The Redis user may not run this operation (its ACL refused the call before anything ran)."""


class BackendError(JqcError):
    """Talking to the Redis server (or the embedded backend) failed."""


class MissingDependencyError(JqcError, ImportError):
    """An optional dependency is needed for this feature; the message says what to install."""
