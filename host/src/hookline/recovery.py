"""Recovery: taking over what dead processes left.

Each process running executions holds a lease (:mod:`hookline.lease`), a
:class:`~hookline.storage.models.Process` row renewed by a heartbeat, and marks the executions
it runs as its own. Executions left ``running`` by a process whose heartbeat stopped are
re-queued or ended ``error`` (``interrupted``) by the others, or by the next process to start,
as their workflow's ``recovery`` says. With a shared queue, executions queued for longer than
``redeliver_after`` are sent to it again. Each is claimed with a conditional update, so
processes recovering at once take each one once.

A :class:`Recovery` runs once when it starts and then every third heartbeat interval, until
it stops.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hookline.background import stop_task
from hookline.engine import utcnow
from hookline.errors import HooklineError
from hookline.lease import ProcessLease
from hookline.runner import Runner
from hookline.storage.executions import ExecutionStore, QueuedRow, RunningRow

if TYPE_CHECKING:
    from hookline.host import Host

log = logging.getLogger("hookline.executions")

#: Most queued rows one recovery pass looks at (the rest wait for the next pass).
RECOVERY_BATCH = 1000


class Recovery:
    """This process's recovery of what others left (see the module's docstring)."""

    def __init__(self, host: Host, store: ExecutionStore, lease: ProcessLease, runner: Runner) -> None:
        self.host = host
        self.store = store
        self.lease = lease
        self.runner = runner
        self._periodic: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether recovery runs periodically (between :meth:`start` and :meth:`stop`)."""
        return self._periodic is not None

    async def start(self) -> None:
        """Recover now, then every third heartbeat interval until :meth:`stop`."""
        await self.recover()
        if self._periodic is None:
            self._periodic = asyncio.get_running_loop().create_task(self._recover_periodically())

    async def stop(self) -> None:
        """Stop recovering (a pass under way is cancelled: each of its steps is a claim, safe
        to leave half done)."""
        task, self._periodic = self._periodic, None
        await stop_task(task)

    async def _recover_periodically(self) -> None:
        interval = 3 * self.host.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("recovery failed; trying again in %g s", interval, exc_info=True)

    async def recover(self) -> tuple[int, int]:
        """Take over what dead processes left: executions left ``running`` are re-queued or ended
        ``error`` (``interrupted``), per their workflow's ``recovery``; executions they had
        queued and not started are queued again. This process's own rows that nothing runs
        any more (a run whose last writes failed) are treated the same. With a shared queue,
        executions waiting longer than ``redeliver_after`` are sent to it again (the message
        may have been lost). Returns ``(requeued, interrupted)``.

        A process that was stalled itself gives the others' leases as much more time (see
        :mod:`hookline.lease`): a live peer stalled with it must not have its runs taken and
        run twice."""
        now = utcnow()
        shared = self.host.queue.shared
        # The rows first, the live processes after: a process registers before it writes a
        # row, so every owner found alive below was alive when its row was read.
        running = await self.store.running()
        # Only the candidates (the decision is made below, with the live processes read after
        # the rows): queued for a process that was not alive just now, or for this one long
        # ago; with a shared queue, also whatever has waited longer than redeliver_after.
        slack = self.lease.slack()
        was_alive = await self.lease.alive(slack)
        stale = now - self.lease.length
        # Others' first, this process's own apart: its own backlog (waiting for a run slot, not
        # stuck) must not fill the batch and hide what a dead process left.
        if not shared:
            queued = await self.store.queued_left(
                was_alive, unowned=True, unowned_queued_before=None, limit=RECOVERY_BATCH
            )
            queued_here = self.runner.queued_here
            own = await self.store.queued_by(self.lease.process_id, stale, RECOVERY_BATCH + len(queued_here))
            queued += [row for row in own if row.id not in queued_here]
        else:
            # Sent long ago and still queued: the message was lost (or its worker died). While
            # the workers have not read everything sent, a late row is only waiting its turn.
            late = not await self.host.queue.behind()
            queued = await self.store.queued_left(
                was_alive, unowned=late, unowned_queued_before=now - self._redeliver_after, limit=RECOVERY_BATCH
            )
        alive = await self.lease.alive(slack)
        requeued = interrupted = 0
        for row in running:
            if row.owner in alive and not (row.owner == self.lease.process_id and self.runner.abandoned_here(row, stale)):
                continue
            if self.lease.stalled_since(slack):  # the leases read say too little now
                break
            outcome = await self._recover_running(row, now)
            requeued += outcome == "requeued"
            interrupted += outcome == "interrupted"
        resumed = await self._resume_queued(queued, alive, stale, slack, now)
        # Processes long dead are forgotten (what they left was recovered above).
        await self.lease.forget_long_dead()
        if requeued or interrupted or resumed:
            log.warning(
                "recovered what stopped processes left: %d re-queued, %d interrupted, %d queued taken over",
                requeued,
                interrupted,
                resumed,
            )
        return requeued, interrupted

    async def _recover_running(self, row: RunningRow, now: datetime) -> str | None:
        """Re-queue or interrupt an abandoned run, as its workflow says; what was done
        (``None``: another process did it first)."""
        shared = self.host.queue.shared
        try:
            compiled = await self.host.workflows.compiled_version(row.version_id)
            recovery = compiled.definition.recovery
            runnable = True
        except HooklineError as exc:  # its version cannot be compiled here (a plugin missing)
            recovery, runnable = await self._stored_recovery(row.version_id), False
            if shared and recovery == "requeue":
                # Another process (a worker with the plugin) may run it: the claim decides.
                log.warning("execution %s: %s here; re-queued for the workers", row.id, exc.message)
            else:
                log.warning("execution %s: %s; ending it", row.id, exc.message)
                recovery = "interrupt"
        if recovery == "requeue" and (runnable or shared):
            if await self.store.requeue_abandoned(row, self._queue_owner, now):
                await self.runner.dispatch(row.id, None)
                return "requeued"
            return None
        return "interrupted" if await self.store.interrupt_abandoned(row, now) else None

    async def _resume_queued(
        self, rows: list[QueuedRow], alive: set[str], stale: datetime, slack: float, now: datetime
    ) -> int:
        """Queue again the executions dead processes had queued (and, with a shared queue, those
        whose message was lost); how many."""
        shared = self.host.queue.shared
        resumed = 0
        for row in rows:
            if row.id in self.runner.queued_here:
                continue
            if row.owner is not None or not shared:
                # Queued for a process's own (memory) queue: taken over if that process is gone.
                mine = row.owner == self.lease.process_id
                if row.owner in alive and not (mine and row.created_at is not None and row.created_at < stale):
                    continue
            if self.runner.closing or self.runner.backlog_full():
                break
            if self.lease.stalled_since(slack):
                break
            if await self.store.take_over_queued(row, self._queue_owner, now):
                resumed += 1
                await self.runner.dispatch(row.id, None)
        return resumed

    async def _stored_recovery(self, version_id: int) -> str:
        """A version's ``recovery``, read from its stored definition without compiling it."""
        definition = await self.store.stored_definition(version_id)
        recovery = definition.get("recovery")
        if recovery in ("requeue", "interrupt"):
            return recovery
        return "interrupt" if definition.get("sync") else "requeue"

    @property
    def _queue_owner(self) -> str | None:
        """Who a queued execution belongs to: this process with the memory queue (it runs it),
        nobody with a shared queue (whichever worker claims it)."""
        return None if self.host.queue.shared else self.lease.process_id

    @property
    def _redeliver_after(self) -> timedelta:
        return timedelta(seconds=self.host.settings.redeliver_after)
