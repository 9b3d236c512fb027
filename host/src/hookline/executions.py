"""Executions: the service triggers, the API and the CLI start and read them through.

A thin facade over the rooms of the execution core:

- :mod:`hookline.delivery`: what a trigger sees (:class:`Dedup`, :class:`Duplicate`,
  :class:`ExecutionRecord`, :class:`RunHandle`);
- :mod:`hookline.runner`: running executions in this process (run slots, the backlog, the
  queue's deliveries, storing outcomes);
- :mod:`hookline.lease`: this process's lease and heartbeat;
- :mod:`hookline.recovery`: taking over what dead processes left;
- :mod:`hookline.history`: reading the history;
- :mod:`hookline.storage.executions`: the rows, behind verbs.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hookline import history
from hookline.delivery import (
    DEFAULT_DEDUP_WINDOW,
    Dedup,
    Duplicate,
    ExecutionRecord,
    NotRecorded,
    RunHandle,
    ShuttingDown,
)
from hookline.engine import CompiledWorkflow
from hookline.errors import NotFound
from hookline.failures import FailureNotices
from hookline.lease import ProcessLease
from hookline.recovery import Recovery
from hookline.runner import Runner
from hookline.storage.executions import ExecutionStore

if TYPE_CHECKING:
    from hookline.host import Host
    from hookline.workflows import ActiveWorkflow

__all__ = [
    "DEFAULT_DEDUP_WINDOW",
    "Dedup",
    "Duplicate",
    "ExecutionRecord",
    "ExecutionService",
    "NotRecorded",
    "RunHandle",
    "ShuttingDown",
]


class ExecutionService:
    """Starting executions, running them in this process and reading them (``host.executions``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        #: Announces failed executions to plugins (the ``execution_failed`` hook).
        self.failures = FailureNotices(host)
        self.store = ExecutionStore(on_failure=self.failures.wake if self.failures.enabled else None)
        #: This process's registration and heartbeat (see :meth:`open`).
        self.lease = ProcessLease(host.settings)
        self.runner = Runner(host, self.store, self.lease)
        self.recovery = Recovery(host, self.store, self.lease, self.runner)

    @property
    def process_id(self) -> str:
        """This process, as the owner of the executions it runs."""
        return self.lease.process_id

    # --- starting ----------------------------------------------------------------------

    async def start(
        self, workflow: ActiveWorkflow, context: Any, *, mode: str = "sync", dedup: Dedup | None = None
    ) -> RunHandle:
        """Record the execution as ``running`` and run it now, in this process.

        With ``mode="sync"`` (or a manual run of a sync workflow) nodes can reply to the caller.
        If the caller is cancelled meanwhile (the client went away), the execution is still
        recorded and run: a row is never left ``running`` with nothing running it.

        :raises Duplicate: ``dedup`` names a delivery already received; nothing was started.
        """
        return await self.runner.start(workflow, context, mode, dedup)

    async def enqueue(
        self,
        workflow: ActiveWorkflow,
        context: Any,
        *,
        dedup: Dedup | None = None,
        compiled: CompiledWorkflow | None = None,
        replay_of: int | None = None,
    ) -> int:
        """Record the execution as ``queued`` (committed when this returns) and run it in the
        background. Returns its id. With the memory queue and a run slot free, it is recorded as
        ``running`` instead and started at once, without the queue. Like :meth:`start`, it
        completes even if the caller is cancelled.

        :param compiled: the version to run, if not the workflow's current one (replays).
        :param replay_of: the execution this one replays.
        :raises Duplicate: ``dedup`` names a delivery already received; nothing was queued.
        :raises Overloaded: too many executions already wait in this process.
        """
        return await self.runner.enqueue(workflow, context, dedup, compiled or workflow.compiled, replay_of)

    async def run_delivered(self, execution_id: int) -> None:
        """Run a queued execution the queue delivered: claim it, run it, store its outcome. An
        id delivered again, or already taken by another process, finds nothing to claim."""
        await self.runner.run_delivered(execution_id)

    async def record(self, execution_id: int) -> ExecutionRecord | None:
        """Where execution ``execution_id`` stands, or ``None`` if there is no such execution."""
        return await self.store.record(execution_id)

    async def wait_finished(self, execution_id: int, timeout: float, *, or_reply: bool = False) -> ExecutionRecord | None:
        """Wait up to ``timeout`` seconds for an execution (run by any process) to finish, or
        with ``or_reply`` to have replied; its record then, or as it stands at the timeout.
        Polls the database, with backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pause = 0.02
        while True:
            record = await self.record(execution_id)
            if record is None or record.finished or (or_reply and record.reply) or loop.time() >= deadline:
                return record
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 0.5)

    async def run_manual(self, key: str, data: Any) -> dict[str, Any]:
        """``hookline run KEY``: run now, through the same engine, and return the execution.
        Disabled workflows can be run by hand (it is how one tests them)."""
        workflow = await self.host.workflows.current(key)
        if workflow is None:
            raise NotFound(f"no workflow with key {key!r}", key=key)
        trigger = self.host.registry.triggers[workflow.definition.trigger.type]
        context = await trigger.manual_context(workflow.definition, data)
        # From the command line, this process runs it: it must be known alive meanwhile.
        registered = not self.lease.registered
        if registered:
            await self.open(recover=False)
        try:
            handle = await self.start(workflow, context, mode="manual")
            await handle.outcome()
        finally:
            if registered:
                await self.close()
        return await self.get(handle.execution_id)

    # --- this process: heartbeat and recovery --------------------------------------------

    async def open(self, *, recover: bool = True) -> None:
        """Connect to the queue, register this process and keep its heartbeat; with ``recover``,
        take over what dead processes left (see :meth:`recover`), now and every third
        heartbeat (see :meth:`start_recovery`). A worker then calls :meth:`receive`.

        Called by the server at start (``Host.start``) before anything runs, and by commands
        that run executions themselves (``hookline run``) with ``recover=False``. Starting an
        execution before this is refused: another process would take it for abandoned.
        """
        self.runner.closing = False
        await self.host.queue.start()
        await self.lease.register()
        if recover:
            await self.recovery.start()

    def receive(self) -> None:
        """Run what a shared queue delivers (as a worker), up to ``max_concurrent_runs`` at once."""
        settings = self.host.settings
        self.host.queue.receive(concurrency=settings.max_concurrent_runs, grace=settings.shutdown_grace)

    async def close(self) -> None:
        """Stop the heartbeat and unregister (after :meth:`drain`): what this process left queued
        is then any other process's to run."""
        await self.recovery.stop()
        await self.lease.release()
        await self.host.queue.close()

    async def recover(self) -> tuple[int, int]:
        """Take over what dead processes left: executions left ``running`` are re-queued or ended
        ``error`` (``interrupted``), per their workflow's ``recovery``; executions they had
        queued and not started are queued again. This process's own rows that nothing runs
        any more (a run whose last writes failed) are treated the same. With a shared queue,
        executions waiting longer than ``redeliver_after`` are sent to it again (the message
        may have been lost). Each is claimed with a conditional update, so processes
        recovering at once take each one once. Returns ``(requeued, interrupted)``.

        A process that was stalled itself gives the others' leases as much more time (see
        :mod:`hookline.lease`): a live peer stalled with it must not have its runs taken and
        run twice."""
        return await self.recovery.recover()

    async def start_recovery(self) -> None:
        """Recover now, then every third heartbeat interval until :meth:`drain` or :meth:`close`
        (what :meth:`open` does with ``recover``; ``Host.start`` calls it once plugins are ready)."""
        await self.recovery.start()

    async def drain(self, grace: float) -> None:
        """Refuse new executions and stop taking queued ones; wait up to ``grace`` seconds for
        running executions (those started meanwhile included), then cancel the rest (background
        ones go back to ``queued``, for another process or the next start)."""
        await self.recovery.stop()
        await self.runner.drain(grace)

    # --- reading: the history, as the API, the CLI and the console read it ------------------
    # The functions of hookline.history, whole (their signatures and docstrings are the API).

    list = staticmethod(history.list_executions)
    activity = staticmethod(history.workflow_activity)
    get = staticmethod(history.get_execution)
