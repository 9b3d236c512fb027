"""Sync runs written once, when they end.

A caller waiting on a sync execution is answered once the execution is stored. Most sync runs
end within the caller's wait: their row is then written once, finished, with its jobs, in one
statement (or, on SQLite, in one group commit), just before the answer goes out; and a
successful one that its workflow does not keep (``history: failures``) is not written at all.
The id, which nodes and templates see from the start (``$execution.id``), is one the process
reserved beforehand.

The row is written as ``running`` earlier only when the caller must be told something before
the end: the run answered and goes on (its early reply), or the caller's wait ran out (it is
told the execution still runs, with where to look). Then the run ends like any other: its
outcome is stored on the condition that the row is still this process's.

Only runs that could not be recovered anyway are written late: sync, no idempotency key (its
row must hold the key before the run starts), ``recovery: interrupt`` (the default of sync
workflows; ``requeue`` needs the row, to run it again). If the process dies during such a run,
the history has no trace of it, where it would have shown it ``error``/``interrupted``; its
caller had no answer either way. ``docs/guarantees.md`` says so.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hookline.engine import Outcome
from hookline.status import ExecutionStatus
from hookline.storage.errors import unavailable
from hookline.storage.executions import ExecutionStore, NewExecution
from hookline.types import ReplySlot

log = logging.getLogger("hookline.executions")


class LateRow:
    """The row of one sync run written late: whether, when and how it is written."""

    def __init__(self, store: ExecutionStore, row: NewExecution, execution_id: int, owner: str, slot: ReplySlot) -> None:
        self.store = store
        self.row = row
        self.execution_id = execution_id
        self.owner = owner
        self.slot = slot
        #: The write that made the row ``running`` (before the end), once asked for.
        self._running: asyncio.Future[Any] | None = None
        #: The run's last write (or nothing, for a run not kept), once the run has ended.
        self._final: asyncio.Future[Any] | None = None

    async def persist(self) -> bool:
        """Make sure the row is written now: as ``running`` if the run goes on, else by its
        last write. Returns ``False`` if the run goes on, written; ``True`` to wait for its end
        instead: it has ended (its last write was made, or failed: the run says how), or its
        row could not be written now (it is tried again when the run ends)."""
        if self._final is not None:
            await asyncio.wait([self._final])
            return True
        if self._running is None:
            self._running = asyncio.ensure_future(self.store.insert(self.row, self.execution_id, reply=self.slot.reply))
        try:
            await asyncio.shield(self._running)
        except Exception:
            log.warning("execution %s could not be written before its end; trying at its end", self.execution_id, exc_info=True)
            if self._final is None:
                self._running = None
            return True
        return False

    async def end(self, outcome: Outcome, *, keep: bool) -> bool:
        """Store how the run ended (nothing for a run not kept that was never written). Returns
        ``False`` if the row, written early, is no longer this process's."""
        if self._running is None:
            self._final = asyncio.ensure_future(self._write_once(outcome, keep))
            await asyncio.shield(self._final)
            return True
        await asyncio.shield(self._running)
        if not keep and await self.store.discard(self.execution_id, self.owner):
            return True
        return await self.store.finish(self.execution_id, self.owner, outcome)

    async def _write_once(self, outcome: Outcome, keep: bool) -> None:
        if keep:
            await self.store.insert_finished(self.row, self.execution_id, outcome)

    async def end_without_outcome(self, status: ExecutionStatus, error: dict[str, Any], finished_at: Any) -> None:
        """End the run with ``status`` and ``error`` but none of its jobs (it was stopped, or
        its outcome could not be stored): the row says so, written now if it was not. If its
        last write failed because the database cannot write now, this is not tried (it would
        make the caller wait as long again): the error is raised again."""
        if self._final is not None and _failed(self._final) and not self._final.cancelled():
            failure = self._final.exception()
            if failure is not None and unavailable(failure):
                raise failure
        if self._running is None and (self._final is None or _failed(self._final)):
            ended = Outcome(status=status, jobs=[], started_at=self.row.created_at, finished_at=finished_at, error=error)
            self._final = asyncio.ensure_future(self.store.insert_finished(self.row, self.execution_id, ended))
            await asyncio.shield(self._final)
            return
        if self._running is not None:
            await asyncio.shield(self._running)
        await self.store.end(self.execution_id, self.owner, status, error, finished_at)


def _failed(write: asyncio.Future[Any]) -> bool:
    return write.done() and (write.cancelled() or write.exception() is not None)
