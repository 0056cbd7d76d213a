"""One mapping from what a Redis client raises to jqc's typed errors, for every backend.

A server's error reply starts with a code word (``READONLY``, ``OOM``, ``NOPERM`` ...). redis-py
turns some codes into exception classes and strips the code from the message, hiredis keeps the
text whole, and fakeredis raises redis-py's classes; :func:`translate` looks at both the class and
the text so each refusal becomes the same jqc error on every backend.
"""

from __future__ import annotations

import re

import redis.exceptions as rex

from jqc.errors import (
    AuthenticationFailedError,
    BackendError,
    CallTimeoutError,
    ClusterDownError,
    ClusterRedirectError,
    ConnectionLostError,
    InvalidInputError,
    JqcError,
    OutOfMemoryError,
    PermissionDeniedError,
    ScriptReplyError,
    ServerBusyError,
    ServerLoadingError,
    ServerReadOnlyError,
)

__all__ = ["CLIENT_ERRORS", "refusal_code", "translate", "translate_reply_error"]

#: What a backend catches around a call and hands to :func:`translate`.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (rex.RedisError, OSError, UnicodeError, OverflowError, ValueError)

_OOM_HINT = (
    "Redis is out of memory (maxmemory reached with the noeviction policy) and refuses writes: "
    "free memory (clean finished jobs, purge dead letters) or raise maxmemory"
)

# Error codes by the first word of the server's reply, and what each becomes.
_BY_CODE: dict[str, tuple[type[JqcError], str]] = {
    "READONLY": (ServerReadOnlyError, "the server is a read-only replica (a failover demoted it?)"),
    "LOADING": (ServerLoadingError, "the server is loading its data set"),
    "BUSY": (ServerBusyError, "the server is busy running a script"),
    "MOVED": (ClusterRedirectError, "the key's slot is served by another cluster node"),
    "ASK": (ClusterRedirectError, "the key's slot is migrating to another cluster node"),
    "TRYAGAIN": (ClusterRedirectError, "the key's slot is being migrated"),
    "CLUSTERDOWN": (ClusterDownError, "the cluster is down"),
    "MASTERDOWN": (ClusterDownError, "the link with the master is down"),
    "OOM": (OutOfMemoryError, _OOM_HINT),
    "NOPERM": (PermissionDeniedError, "the Redis user's ACL does not allow this (see jqc acl)"),
    "WRONGPASS": (AuthenticationFailedError, "the Redis user name or password is wrong"),
    "NOAUTH": (AuthenticationFailedError, "the Redis server needs a password"),
}

# redis-py classes whose message no longer carries the code word.
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (rex.ReadOnlyError, "READONLY"),
    (rex.BusyLoadingError, "LOADING"),
    (rex.OutOfMemoryError, "OOM"),
    (rex.NoPermissionError, "NOPERM"),
    (rex.AuthenticationError, "WRONGPASS"),
    (rex.AuthenticationWrongNumberOfArgsError, "WRONGPASS"),
    (rex.MasterDownError, "MASTERDOWN"),
    (rex.ClusterDownError, "CLUSTERDOWN"),
    (rex.TryAgainError, "TRYAGAIN"),
    (rex.AskError, "ASK"),
    (rex.MovedError, "MOVED"),
)


def _code_of(exc: BaseException, text: str) -> str | None:
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    word = text.split(" ", 1)[0].upper()
    if word in _BY_CODE:
        return word
    if "NOPERM" in text or "-NOPERM" in text:  # inside a script's error text
        return "NOPERM"
    return None


def refusal_code(exc: BaseException) -> str | None:
    """The code word of a server refusal (``MOVED``, ``READONLY``, ``NOPERM`` ...), or None."""
    return _code_of(exc, str(exc))


_DENIED_COMMAND = re.compile(r"permissions to run the '([^']+)' command")


def _what_was_denied(error: PermissionDeniedError, text: str) -> None:
    """Record on ``error`` what Redis's NOPERM text says was refused: a command, or a key."""
    found = _DENIED_COMMAND.search(text)
    if found:
        error.command = found.group(1).lower()
    error.key_refused = "access one of the keys" in text or "access a key" in text or "can't access" in text


def translate_reply_error(text: str) -> JqcError:
    """The jqc error for a server's error reply ``text`` (code word included)."""
    return translate(rex.ResponseError(text))


def translate(exc: BaseException) -> JqcError:
    """The typed jqc error for an exception raised by a client (returned, not raised)."""
    if isinstance(exc, JqcError):
        return exc
    if type(exc) is rex.ConnectionError and isinstance(exc.__cause__, rex.RedisError):
        # redis-py's asyncio client wraps what the server said while connecting (WRONGPASS, LOADING,
        # NOPERM on SELECT ...) in a plain ConnectionError: what the server said is what counts.
        return translate(exc.__cause__)
    text = str(exc)
    if isinstance(exc, rex.BusyLoadingError):  # a ConnectionError subclass in redis-py
        return ServerLoadingError(f"{_BY_CODE['LOADING'][1]}: LOADING {text}")
    if isinstance(exc, (rex.TimeoutError, TimeoutError)):
        return CallTimeoutError(f"Redis did not answer in time: {text or type(exc).__name__}")
    if isinstance(exc, rex.AuthenticationError):
        return AuthenticationFailedError(f"Redis refused the credentials: {text}")
    if isinstance(exc, (rex.ConnectionError, ConnectionError, OSError)) and not isinstance(exc, rex.ResponseError):
        return ConnectionLostError(f"cannot reach Redis: {text or type(exc).__name__}")
    if isinstance(exc, UnicodeError):
        return InvalidInputError(f"an argument cannot be encoded as UTF-8 for Redis: {text}")
    if isinstance(exc, rex.ResponseError):
        code = _code_of(exc, text)
        if code is not None:
            cls, meaning = _BY_CODE[code]
            shown = text if text.upper().startswith(code) else f"{code} {text}"
            error = cls(f"{meaning}: {shown}")
            if isinstance(error, PermissionDeniedError):
                _what_was_denied(error, text)
            return error
        if "DB index is out of range" in text or "invalid DB index" in text:
            return InvalidInputError(f"the URL's database number is out of the server's range: {text}")
        return ScriptReplyError(f"Redis refused the call (jqc version mismatch, foreign data or a bug): {text}")
    return BackendError(f"backend failure: {type(exc).__name__}: {text}")
