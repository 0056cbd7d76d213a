"""Dead letters: listing (newest first), replay, purge and search in bounded pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from jqc.engine.arguments import (
    BATCH,
    positive_int,
)
from jqc.engine.calls import Op, Reply, ScriptCall, checked
from jqc.engine.codes import Code
from jqc.engine.job import (
    DeadLetter,
)
from jqc.engine.keys import validate_job_id
from jqc.engine.ops_base import OperationsBase, code_and_count, letter_of
from jqc.engine.replies import as_int
from jqc.engine.results import (
    DeadLetterPage,
)

__all__ = ["DeadLetters"]

T = TypeVar("T")


class DeadLetters(OperationsBase):
    """The dead-letter queue: list, replay, purge and search dead letters."""

    def dead_letters(self, offset: int = 0, limit: int = 100) -> ScriptCall[DeadLetterPage]:
        def parse(reply: Reply) -> DeadLetterPage:
            total, decoded, corrupt = self._decode_listing(reply)
            letters = tuple(letter_of(job, fields) for job, fields in decoded)
            return DeadLetterPage(total, letters, tuple(corrupt))

        return self._call("list", "dead", self._offset(offset), positive_int(limit, "limit"), parse=parse)

    def replay_dead(self, job_id: str) -> ScriptCall[None]:
        """Send a dead-lettered job back to waiting (attempts reset, replay counted)."""
        return self._call("replay", validate_job_id(job_id), parse=self._ok)

    def purge_dead(self, job_id: str) -> ScriptCall[int]:
        """Delete one dead-letter record."""
        return self._call("purge", validate_job_id(job_id), 1, parse=lambda r: as_int(checked(r)[1]))

    def purge_all_dead(self) -> Op[int]:
        """Delete every dead-letter record, in bounded batches."""
        deleted: int = 0
        while True:
            code, n = yield self._call("purge", "", BATCH, parse=code_and_count)
            deleted += n
            if code != Code.MORE or n == 0:
                return deleted

    def find_dead(self, match: Callable[[DeadLetter], bool], *, limit: int | None = None) -> Op[list[DeadLetter]]:
        """Dead letters (newest first) for which ``match`` is true, reading page by page."""
        found: list[DeadLetter] = []
        offset = 0
        while limit is None or len(found) < limit:
            page: DeadLetterPage = yield self.dead_letters(offset, BATCH)
            found.extend(letter for letter in page.letters if match(letter))
            offset += BATCH
            if offset >= page.total:
                break
        return found if limit is None else found[:limit]
