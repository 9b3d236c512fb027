"""The runner: the executions this process runs, from their row's first write to their
outcome's.

A background run's row is written before it runs (``queued``, or ``running`` for one this
process starts at once: see :mod:`hookline.queued`); a sync run's when it ends, or earlier if
its caller must hear before (see :mod:`hookline.deferred`), or before it runs when it holds an
idempotency key or is to be re-run after a crash. When the engine is done, the outcome and the
jobs are written together (:meth:`hookline.storage.executions.ExecutionStore.finish`), or the
row is deleted if the workflow does not keep successes (``history: failures``).

The runner knows which executions it runs, is inserting or has queued for itself: recovery
(:mod:`hookline.recovery`) never takes them for abandoned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine

from hookline.deferred import LateRow
from hookline.delivery import Dedup, Duplicate, NotRecorded, RunHandle, ShuttingDown
from hookline.engine import CompiledWorkflow, Outcome, utcnow
from hookline.errors import Overloaded
from hookline.lease import ProcessLease
from hookline.queued import BackgroundRuns, Preloaded, new_row
from hookline.status import ExecutionStatus
from hookline.storage.executions import ExecutionStore, KeyHolder, KeyTaken, NewExecution, RunningRow
from hookline.types import Reply, ReplySlot

if TYPE_CHECKING:
    from hookline.host import Host
    from hookline.workflows import ActiveWorkflow

log = logging.getLogger("hookline.executions")

#: Modes of executions run from the queue, with no caller waiting.
BACKGROUND_MODES = ("async", "replay")


class _NotOwned(Exception):
    """The execution is no longer this process's to finish."""


class Runner(BackgroundRuns):
    """Starts, queues and runs executions in this process (see the module's docstring)."""

    def __init__(self, host: Host, store: ExecutionStore, lease: ProcessLease) -> None:
        self.host = host
        self.store = store
        self.lease = lease
        #: Every task running, claiming or storing an execution (what :meth:`drain` waits for).
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots: asyncio.Semaphore | None = None
        #: Background runs created and not yet holding a slot (bounded by max_backlog).
        self.waiting = 0
        self.closing = False
        #: Queued executions this process has a task for.
        self.queued_here: set[int] = set()
        #: Executions this process is running (claiming them, in the engine or storing their
        #: outcome): recovery never takes them for abandoned.
        self._running_here: set[int] = set()
        #: ``started_at`` of the ``running`` rows this process is inserting, in flight.
        self._inserting: Counter[datetime] = Counter()
        #: What this process queued for itself (memory queue), until the delivery runs it.
        self._preloaded: dict[int, Preloaded] = {}

    @property
    def process_id(self) -> str:
        return self.lease.process_id

    # --- starting ----------------------------------------------------------------------------

    async def start(self, workflow: ActiveWorkflow, context: Any, mode: str, dedup: Dedup | None) -> RunHandle:
        """See :meth:`hookline.executions.ExecutionService.start`."""
        self.check_open()
        # One task records the execution, then runs it: the caller waits for the first part
        # only, and going away (cancelled) stops neither.
        started: asyncio.Future[RunHandle] = asyncio.get_running_loop().create_future()
        self._spawn(self._start_and_run(workflow, context, mode, dedup, started))
        return await asyncio.shield(started)

    def check_open(self) -> None:
        if self.closing:
            raise ShuttingDown("the server is shutting down; retry later")
        if not self.lease.registered:
            raise RuntimeError(
                "executions can only start in a registered process: await host.executions.open() first "
                "(the server does it at start)"
            )

    async def _start_and_run(
        self,
        workflow: ActiveWorkflow,
        context: Any,
        mode: str,
        dedup: Dedup | None,
        started: asyncio.Future[RunHandle],
    ) -> Outcome | None:
        if mode == "sync" and dedup is None and workflow.definition.recovery == "interrupt":
            return await self._run_late(workflow, context, started)
        try:
            execution_id = await self._insert_running(workflow, workflow.compiled, context, mode, dedup)
        except asyncio.CancelledError:  # stopped (a shutdown) before it was recorded: nothing runs
            started.cancel()
            raise
        except Exception as exc:  # nothing was started: the caller is told why
            started.set_exception(exc)
            return None
        slot = ReplySlot(waiting=workflow.definition.sync)
        task = asyncio.current_task()
        assert task is not None
        started.set_result(RunHandle(execution_id, task, slot))  # listening to the slot before it runs
        return await self._run(execution_id, workflow.compiled, context, mode, slot)

    async def _run_late(
        self, workflow: ActiveWorkflow, context: Any, started: asyncio.Future[RunHandle]
    ) -> Outcome | None:
        """A sync run whose row is written when it ends (see :mod:`hookline.deferred`)."""
        try:
            execution_id = await self.store.next_id()
        except asyncio.CancelledError:
            started.cancel()
            raise
        except Exception as exc:
            started.set_exception(exc)
            return None
        compiled = workflow.compiled
        now = utcnow()
        row = new_row(workflow, compiled, context, "sync", ExecutionStatus.RUNNING, now)
        row.started_at = now
        row.owner = self.process_id
        slot = ReplySlot(waiting=workflow.definition.sync)
        late = LateRow(self.store, row, execution_id, self.process_id, slot)
        task = asyncio.current_task()
        assert task is not None
        handle = RunHandle(execution_id, task, slot, persist=late.persist)
        slot.on_release(lambda reply: self._spawn(self._release_late(late, handle, reply)))
        started.set_result(handle)
        self._running_here.add(execution_id)
        try:
            try:
                outcome = await self.host.engine.run(compiled, context, execution_id=execution_id, mode="sync", reply=slot)
            except asyncio.CancelledError:  # the shutdown: its caller has gone with the server
                error = {"error": "shutdown", "message": "the server shut down while it ran"}
                await asyncio.shield(late.end_without_outcome(ExecutionStatus.CANCELLED, error, utcnow()))
                raise
            try:
                if not await late.end(outcome, keep=self._keeps(compiled, "sync", outcome)):
                    raise _NotOwned(execution_id)
            except Exception as exc:
                return await self._not_stored(execution_id, outcome, exc, late.end_without_outcome, written=False)
            return outcome
        finally:
            self._running_here.discard(execution_id)

    async def _release_late(self, late: LateRow, handle: RunHandle, reply: Reply) -> None:
        """The early reply of a run written late goes out once its row (with the reply) is."""
        try:
            await late.persist()
        except Exception:  # the caller gets the answer when the run ends, written or not
            log.warning("could not record execution %s before its early reply", late.execution_id, exc_info=True)
            return
        handle.release(reply)

    def _keeps(self, compiled: CompiledWorkflow, mode: str, outcome: Outcome) -> bool:
        """Whether an execution that ended is kept in the history: all of them, or, with
        ``history: failures`` (the workflow's, else the server's), those that did not succeed.
        Replays and manual runs are always kept (someone asked for them and looks)."""
        if outcome.status != ExecutionStatus.SUCCEEDED or mode not in ("sync", "async"):
            return True
        return (compiled.definition.history or self.host.settings.history) != "failures"

    async def _insert_running(
        self, workflow: ActiveWorkflow, compiled: CompiledWorkflow, context: Any, mode: str, dedup: Dedup | None
    ) -> int:
        """Create the row of an execution this process starts now: ``running``, its own, and
        counted as running here from the moment the insert returns (the caller runs it)."""
        now = utcnow()
        row = new_row(workflow, compiled, context, mode, ExecutionStatus.RUNNING, now)
        row.started_at = now
        row.owner = self.process_id
        # Until the insert returns, its id is unknown: recovery leaves this process's rows
        # started from ``now`` on alone (see abandoned_here), however long the write takes.
        self._inserting[now] += 1
        try:
            execution_id = await self._insert(row, dedup)
            self._running_here.add(execution_id)
            return execution_id
        finally:
            self._inserting[now] -= 1
            if not self._inserting[now]:
                del self._inserting[now]

    async def _insert(self, row: NewExecution, dedup: Dedup | None) -> int:
        """Create the row and return its id; with ``dedup``, holding its key.

        :raises Duplicate: the key is held by a delivery within its window.
        """
        if dedup is None:
            return await self.store.insert(row)
        digest = dedup.digest
        missing = 0
        for _ in range(5):
            now = utcnow()
            try:
                return await self.store.insert_keyed(row, digest, now + dedup.window)
            except KeyTaken as taken:
                holder = await self.store.key_holder(row.workflow_id, digest)
                if holder is None:
                    missing += 1
                    if missing > 1:  # not the key's constraint (the workflow was deleted?)
                        raise taken.error from None
                    continue  # released meanwhile: try again
            if holder.until is not None and holder.until > now and not _released(holder):
                raise Duplicate(holder.record)
            # Expired, or its caller was told to retry: the key moves to the new delivery.
            await self.store.release_key(holder.record.id, digest)
        raise Overloaded(f"idempotency key {dedup.key!r} is contended; retry later")

    # --- the queue -----------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- running -----------------------------------------------------------------------------

    async def _run(
        self, execution_id: int, compiled: CompiledWorkflow, context: Any, mode: str, slot: ReplySlot
    ) -> Outcome:
        self._running_here.add(execution_id)
        try:
            return await self._run_and_store(execution_id, compiled, context, mode, slot)
        finally:
            self._running_here.discard(execution_id)

    async def _run_and_store(
        self, execution_id: int, compiled: CompiledWorkflow, context: Any, mode: str, slot: ReplySlot
    ) -> Outcome:
        # A reply let out before the end (the workflow goes on after answering) is recorded at
        # once: a duplicate delivery gets it, and it survives this process dying meanwhile.
        slot.on_release(lambda reply: self._spawn(self._record_reply(execution_id, reply)))
        try:
            outcome = await self.host.engine.run(
                compiled, context, execution_id=execution_id, mode=mode, reply=slot
            )
        except asyncio.CancelledError:
            # Shutdown. A background run goes back to the queue (it runs again at the next
            # start: at-least-once); a caller waiting on a sync one has gone with the server.
            status = ExecutionStatus.QUEUED if mode in BACKGROUND_MODES else ExecutionStatus.CANCELLED
            await asyncio.shield(self._stop(execution_id, status))
            raise
        try:
            if not await self._end(execution_id, compiled, mode, outcome):
                raise _NotOwned(execution_id)
        except Exception as exc:
            return await self._not_stored(execution_id, outcome, exc, self._end_without_outcome(execution_id))
        return outcome

    async def _end(self, execution_id: int, compiled: CompiledWorkflow, mode: str, outcome: Outcome) -> bool:
        """Store how a run ended, or delete it if it is not kept; ``False`` if the row is no
        longer this process's."""
        if not self._keeps(compiled, mode, outcome) and await self.store.discard(execution_id, self.process_id):
            return True
        # Kept, or not deleted: it holds an idempotency key (kept for its window), or it is
        # not this process's (then this says so too).
        return await self.store.finish(execution_id, self.process_id, outcome)

    def _end_without_outcome(self, execution_id: int) -> Callable[..., Awaitable[Any]]:
        return lambda status, error, finished_at: self.store.end(execution_id, self.process_id, status, error, finished_at)

    async def _not_stored(
        self,
        execution_id: int,
        outcome: Outcome,
        exc: Exception,
        end_without_outcome: Callable[[ExecutionStatus, dict[str, Any], datetime], Awaitable[Any]],
        *,
        written: bool = True,
    ) -> Outcome:
        """A run's outcome could not be stored: what its caller is told, and the row says.

        :param written: whether the row was written before (else, if it cannot be written now,
            :class:`~hookline.delivery.NotRecorded`).
        """
        if isinstance(exc, _NotOwned):
            # Taken for dead meanwhile (a pause longer than its lease): the execution was
            # re-queued or interrupted by another process, whose record stands.
            log.warning("execution %s was recovered by another process; this run's outcome is dropped", execution_id)
            return replace(outcome, status=ExecutionStatus.ERROR, error={"error": "interrupted"}, reply=None)
        # Never leave the row "running": record that the outcome itself was lost.
        log.exception("could not store the outcome of execution %s", execution_id, exc_info=exc)
        error = {"error": "outcome_not_stored", "message": f"the outcome could not be stored: {type(exc).__name__}: {exc}"}
        # What the caller is told must match the history: no reply from an unstored run.
        outcome = replace(outcome, status=ExecutionStatus.ERROR, error=error, reply=None)
        try:
            await end_without_outcome(ExecutionStatus.ERROR, error, outcome.finished_at)
        except Exception as again:  # the database is gone
            if not written:
                raise NotRecorded(f"execution {execution_id} could not be recorded; retry later") from again
            log.exception("execution %s is left 'running' in the database (found at the next start)", execution_id)
        return outcome

    async def _record_reply(self, execution_id: int, reply: Reply) -> None:
        try:
            await self.store.record_reply(execution_id, self.process_id, reply)
        except Exception:  # the whole outcome is stored at the end anyway
            log.warning("could not record the early reply of execution %s", execution_id, exc_info=True)

    async def _stop(self, execution_id: int, status: ExecutionStatus) -> None:
        """A run of this process's stopped before its end: back to the queue (``QUEUED``), or
        ended with ``status`` (the shutdown)."""
        if status == ExecutionStatus.QUEUED:
            # Nobody's: the next process to recover takes it, or, with a shared queue, the
            # worker that receives it (sent again at once; the delivery that brought it here is
            # acknowledged when this run ends).
            if await self.store.release_to_queue(execution_id, self.process_id, utcnow()):
                if self.host.queue.shared:
                    await self.dispatch(execution_id, None)
            return
        error = {"error": "shutdown", "message": "the server shut down while it ran"}
        await self.store.end(execution_id, self.process_id, status, error, utcnow())

    # --- what recovery asks, and the shutdown --------------------------------------------------

    def abandoned_here(self, row: RunningRow, stale: datetime) -> bool:
        """Whether a ``running`` row of this process's own has nothing running it (its last
        writes failed): not running here, nor being inserted, and started over a lease ago."""
        started_at = row.started_at
        if row.id in self._running_here or started_at is None or not started_at < stale:
            return False
        return not self._inserting or started_at < min(self._inserting)

    async def drain(self, grace: float) -> None:
        """See :meth:`hookline.executions.ExecutionService.drain` (what it does here: the runs)."""
        self.closing = True
        self.host.queue.stop_receiving()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


def _released(holder: KeyHolder) -> bool:
    """Whether a delivery's key is free again although within its window: its caller waited
    (sync) and was told to retry, because the execution ended without success and without a
    reply (an internal error, a shutdown, an interruption). Retrying is what it was asked to do."""
    first = holder.record
    return (
        first.mode == "sync"
        and first.status.finished
        and first.status != ExecutionStatus.SUCCEEDED
        and first.reply is None
    )
