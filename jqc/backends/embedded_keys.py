"""The embedded backend refuses a script that touches a key it did not declare in ``KEYS``.

Real Redis runs a script that builds key names inside Lua without complaint on one server, and
only a Redis Cluster in mid-migration (or Dragonfly, which refuses undeclared keys) shows the bug:
the built key may already live on another node and reads as missing. So that no test passes by
accident, the embedded backend checks every ``redis.call``/``redis.pcall`` of every script: each key
argument must be one of the script's ``KEYS``, or the call fails with a script error (the engine
raises :class:`jqc.ScriptReplyError`) naming the command and the key.

Which arguments are keys: every argument of :data:`ALL_KEYS` commands (``DEL``, ``EXISTS`` ...),
the first argument of every other command (true of each command jqc's scripts call, and of almost
all of Redis's). A command with no argument at all (``PING``, ``TIME``) touches no key and passes.

:class:`DeclaredKeysServer` does it on fakeredis's own seams (checked by
:func:`jqc.backends.embedded_lua.available`): fakeredis stores, on the server, the function that
sets ``KEYS``/``ARGV`` before each script (``_lua_set_keys_argv``) and the Python callbacks behind
``redis.call`` and ``redis.pcall`` (``_lua_redis_call_wrapper``, ``_lua_redis_pcall_wrapper``); this
class keeps each one it is given wrapped: the first records the script's keys, the others check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import fakeredis
from fakeredis._helpers import SimpleError

__all__ = ["ALL_KEYS", "DeclaredKeysServer", "UndeclaredKeyError"]

ALL_KEYS: Final = frozenset({b"DEL", b"EXISTS", b"UNLINK", b"TOUCH", b"MGET", b"WATCH"})
"""Commands whose every argument is a key."""

_ATTRIBUTES: Final = ("_lua_set_keys_argv", "_lua_redis_call_wrapper", "_lua_redis_pcall_wrapper")
"""The server attributes fakeredis sets and this class wraps."""


class UndeclaredKeyError(SimpleError):
    """A script called a command on a key it did not declare (raised inside the script run)."""


def _key(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    return str(arg).encode()


class DeclaredKeysServer(fakeredis.FakeServer):
    """A FakeServer whose scripts may call commands only on the keys they declare."""

    def _jqc_record_keys(self, original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def set_keys_argv(keys: Any, argv: Any) -> Any:
            self.__dict__["_jqc_declared"] = frozenset(_key(k) for k in keys.values())
            return original(keys, argv)

        return set_keys_argv

    def _jqc_checked(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(op: bytes, *args: Any) -> Any:
            declared: frozenset[bytes] = self.__dict__.get("_jqc_declared", frozenset())
            name = _key(op).upper()
            for arg in args if name in ALL_KEYS else args[:1]:
                if _key(arg) not in declared:
                    raise UndeclaredKeyError(
                        f"jqc embedded backend: {name.decode()} on key {_key(arg).decode(errors='replace')!r}, "
                        "which the script did not declare in KEYS (every key a script touches must be declared)"
                    )
            return original(op, *args)

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_lua_set_keys_argv":
            value = self._jqc_record_keys(value)
        elif name in ("_lua_redis_call_wrapper", "_lua_redis_pcall_wrapper"):
            value = self._jqc_checked(value)
        super().__setattr__(name, value)
