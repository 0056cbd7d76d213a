"""What a queue needs from its connection: the backends, the clock and the key prefix.

:class:`jqc.Connection` is the one implementation; queues depend on this small base instead, so the
engine never imports the connection module that builds them (the layers stay one-way).
"""

from __future__ import annotations

import abc

from jqc.backends.base import AsyncBackend, SyncBackend
from jqc.clock import Clock

__all__ = ["Host"]


class Host(abc.ABC):
    """A Redis deployment as queues see it."""

    clock: Clock
    prefix: str

    @property
    @abc.abstractmethod
    def safe_url(self) -> str:
        """The URL with any password replaced by ``***``."""

    @property
    @abc.abstractmethod
    def backend(self) -> SyncBackend:
        """The backend for synchronous calls (thread-safe)."""

    @abc.abstractmethod
    def async_backend(self) -> AsyncBackend:
        """The backend for asyncio calls of the running event loop."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the sync connections."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the asyncio backend of the running event loop."""
