"""Background runs: the run slots, the backlog and the queue's deliveries.

Background runs (async, replays) take one of ``max_concurrent_runs`` slots; at most
``max_backlog`` wait for one in this process. Queued executions go through
:class:`~hookline.queue.ExecutionQueue` to the process that runs them: this one (``memory``) or
any worker (Redis). The receiver claims the row with a conditional update, so a delivery
repeated or lost is harmless. Part of :class:`~hookline.runner.Runner` (a mixin: the state it
uses is the runner's).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hookline.delivery import Dedup
from hookline.engine import CompiledWorkflow, utcnow
from hookline.errors import HooklineError, Overloaded
from hookline.status import ExecutionStatus
from hookline.storage.executions import ExecutionStore, NewExecution
from hookline.types import ReplySlot

if TYPE_CHECKING:
    from hookline.host import Host
    from hookline.workflows import ActiveWorkflow

log = logging.getLogger("hookline.executions")

#: A queued execution's version, context and mode, when the process that queued it runs it.
Preloaded = tuple[CompiledWorkflow, Any, str]


class BackgroundRuns:
    """Queueing, slots and deliveries of :class:`~hookline.runner.Runner`."""

    host: Host
    store: ExecutionStore
    closing: bool
    waiting: int
    queued_here: set[int]
    _slots: asyncio.Semaphore | None
    _tasks: set[asyncio.Task[Any]]
    _running_here: set[int]
    _preloaded: dict[int, Preloaded]

    if TYPE_CHECKING:  # the runner's
        process_id: str

        def check_open(self) -> None: ...
        def _spawn(self, coroutine: Any) -> asyncio.Task[Any]: ...
        async def _insert(self, row: NewExecution, dedup: Dedup | None) -> int: ...
        async def _insert_running(
            self, workflow: ActiveWorkflow, compiled: CompiledWorkflow, context: Any, mode: str, dedup: Dedup | None
        ) -> int: ...
        async def _run(self, execution_id: int, compiled: CompiledWorkflow, context: Any, mode: str, slot: ReplySlot) -> Any: ...
        async def _stop(self, execution_id: int, status: ExecutionStatus) -> None: ...

    async def enqueue(
        self,
        workflow: ActiveWorkflow,
        context: Any,
        dedup: Dedup | None,
        compiled: CompiledWorkflow,
        replay_of: int | None,
    ) -> int:
        """See :meth:`hookline.executions.ExecutionService.enqueue`."""
        self.check_open()
        return await asyncio.shield(self._enqueue(workflow, context, dedup, compiled, replay_of))

    async def _enqueue(
        self, workflow: ActiveWorkflow, context: Any, dedup: Dedup | None, compiled: CompiledWorkflow, replay_of: int | None
    ) -> int:
        shared = self.host.queue.shared
        limit = self.host.settings.max_backlog
        if not shared and self.waiting >= limit:
            raise Overloaded(
                f"{self.waiting} executions are already waiting to run in this process (max_backlog {limit}); retry later"
            )
        mode = "replay" if replay_of is not None else "async"
        if not shared and mode == "async" and self._slot_free():
            return await self._start_in_background(workflow, context, dedup, compiled)
        now = utcnow()
        row = new_row(workflow, compiled, context, mode, ExecutionStatus.QUEUED, now)
        row.replay_of = replay_of
        # With the memory queue, the process that will run it: if it dies first, another
        # adopts it (recovery). A shared queue's executions are nobody's until claimed.
        row.owner = None if shared else self.process_id
        row.queued_at = now
        execution_id = await self._insert(row, dedup)
        await self.dispatch(execution_id, (compiled, context, mode))
        return execution_id

    def _slot_free(self) -> bool:
        """Whether a run could start now in this process without waiting for a slot (nor
        overtaking runs that wait for one)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.host.settings.max_concurrent_runs)
        return not self._slots.locked()

    async def _start_in_background(
        self, workflow: ActiveWorkflow, context: Any, dedup: Dedup | None, compiled: CompiledWorkflow
    ) -> int:
        """An async execution this process can run at once (memory queue, a run slot free):
        recorded as ``running`` (committed when this returns) and run here, holding the slot,
        as if the queue had delivered it and it had been claimed. This spares the claim's write
        and the in-process queue's round trip; a backlog goes through the queue. If the process
        dies meanwhile, recovery re-queues (or interrupts) it like any claimed run."""
        assert self._slots is not None
        await self._slots.acquire()  # free (checked just before, nothing awaited since): at once
        try:
            execution_id = await self._insert_running(workflow, compiled, context, "async", dedup)
        except BaseException:
            self._slots.release()
            raise
        task = self._spawn(self._run_in_slot(execution_id, compiled, context))
        # Cancelled before it started (a shutdown), the run never reaches _run, which would
        # have forgotten it: recovery must not take the row for running here forever.
        task.add_done_callback(lambda _: self._running_here.discard(execution_id))
        return execution_id

    async def _run_in_slot(self, execution_id: int, compiled: CompiledWorkflow, context: Any) -> None:
        assert self._slots is not None
        try:
            await self._run(execution_id, compiled, context, "async", ReplySlot(waiting=False))
        except asyncio.CancelledError:  # the shutdown: _run put it back in the queue
            log.info("execution %s was stopped by the shutdown and is queued again", execution_id)
            raise
        except Exception:
            log.exception("execution %s failed to run", execution_id)
        finally:
            self._slots.release()

    async def dispatch(self, execution_id: int, preloaded: Preloaded | None) -> None:
        """Send a queued execution (committed) to the queue. With the memory queue this process
        runs it (``preloaded`` spares reading it back); a shared queue that cannot be reached
        now gets it again from recovery after ``redeliver_after``."""
        if self.host.queue.shared:
            try:
                await self.host.queue.send(execution_id)
            except Exception as exc:
                log.warning(
                    "execution %s could not be sent to the queue (%s: %s); it stays queued and is sent again within %g s",
                    execution_id,
                    type(exc).__name__,
                    exc,
                    self.host.settings.redeliver_after + 3 * self.host.settings.heartbeat_interval,
                )
            return
        self.queued_here.add(execution_id)
        self.waiting += 1
        if preloaded is not None:
            self._preloaded[execution_id] = preloaded
        try:
            await self.host.queue.send(execution_id)
        except BaseException:
            self.queued_here.discard(execution_id)
            self.waiting -= 1
            self._preloaded.pop(execution_id, None)
            raise

    async def run_delivered(self, execution_id: int) -> None:
        """See :meth:`hookline.executions.ExecutionService.run_delivered`."""
        task = asyncio.current_task()
        if task is not None:  # waited for (and cancelled) by drain, like the runs it spawns
            self._tasks.add(task)
        counted = execution_id in self.queued_here
        try:
            await self._run_queued(execution_id, self._preloaded.pop(execution_id, None), counted=counted)
        except asyncio.CancelledError:
            # Shutdown (drain): the run was put back in the queue (see _stop). taskiq would log
            # the cancellation as a task failure, with a traceback.
            log.info("execution %s was stopped by the shutdown and is queued again", execution_id)
        except Exception:  # taskiq would only log it; say which execution
            log.exception("execution %s failed to run", execution_id)
        finally:
            if counted:
                self.queued_here.discard(execution_id)
            if task is not None:
                self._tasks.discard(task)

    async def _run_queued(self, execution_id: int, preloaded: Preloaded | None, *, counted: bool) -> None:
        self._slot_free()  # (makes the semaphore)
        assert self._slots is not None
        try:
            await self._slots.acquire()
        finally:
            if counted:
                self.waiting -= 1
        try:
            await self._claim_and_run(execution_id, preloaded)
        finally:
            self._slots.release()

    async def _claim_and_run(self, execution_id: int, preloaded: Preloaded | None) -> None:
        if self.closing:  # shutting down: it stays queued, for another worker or the next start
            if self.host.queue.shared:  # this delivery is acknowledged when it returns: send it again
                await self.dispatch(execution_id, None)
            return
        # Running here from before the claim: however long the claim and the loading take,
        # this process's recovery never takes the row it claimed for abandoned. An id already
        # running here (delivered again) stays so: its claim fails, and the run goes on.
        added = execution_id not in self._running_here
        self._running_here.add(execution_id)
        try:
            await self._claim_load_and_run(execution_id, preloaded)
        finally:
            if added:
                self._running_here.discard(execution_id)

    async def _claim_load_and_run(self, execution_id: int, preloaded: Preloaded | None) -> None:
        now = utcnow()
        if preloaded is not None:  # this process queued it: the claim only
            if not await self.store.claim(execution_id, self.process_id, now):  # another process took it
                return
            compiled, context, mode = preloaded
        else:
            claimed = await self.store.claim_and_load(execution_id, self.process_id, now)
            if claimed is None:  # another process took it
                return
            try:
                compiled = await self.host.workflows.compiled_version(claimed.version_id)
            except HooklineError as exc:  # its version cannot run here (a node type is missing)
                log.error("execution %s cannot run: %s", execution_id, exc.message)
                error = {"error": exc.code, "message": exc.message}
                await self.store.end(execution_id, self.process_id, ExecutionStatus.ERROR, error, utcnow())
                return
            except Exception:
                # The database failed after the claim, reading its version: back to the queue
                # (if this fails too, recovery finds the row running with nothing running it).
                log.exception("execution %s could not be loaded; it goes back to the queue", execution_id)
                await self._stop(execution_id, ExecutionStatus.QUEUED)
                return
            context, mode = claimed.context, claimed.mode
        await self._run(execution_id, compiled, context, mode, ReplySlot(waiting=False))

    def backlog_full(self) -> bool:
        """Whether this process's memory queue holds ``max_backlog`` executions already."""
        return not self.host.queue.shared and self.waiting >= self.host.settings.max_backlog


def new_row(
    workflow: ActiveWorkflow, compiled: CompiledWorkflow, context: Any, mode: str, status: ExecutionStatus, now: datetime
) -> NewExecution:
    """The columns every new execution row has; the caller sets those of its status."""
    return NewExecution(
        workflow_id=workflow.id,
        version_id=compiled.version_id,
        status=status,
        mode=mode,
        trigger_type=compiled.definition.trigger.type,
        context=context,
        created_at=now,
    )
