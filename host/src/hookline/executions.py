"""Executions: starting, running in the background, storing and reading them.

The one implementation behind triggers, the API and the CLI. An execution row is written
before the workflow runs (``running`` for a waiting caller, ``queued`` for a background run);
when the engine is done, its jobs and final status are written in one transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Coroutine

from tortoise.transactions import in_transaction

from hookline.engine import CompiledWorkflow, Outcome, utcnow
from hookline.errors import BadRequest, NotFound, Overloaded
from hookline.pagination import Page, page_of
from hookline.storage.models import Execution, ExecutionStatus, Job, Workflow
from hookline.types import Reply, ReplySlot

if TYPE_CHECKING:
    from hookline.host import Host
    from hookline.workflows import ActiveWorkflow

log = logging.getLogger("hookline.executions")


class RunHandle:
    """A started execution. A trigger awaits :meth:`reply` to answer its caller."""

    def __init__(self, execution_id: int, task: asyncio.Task[Outcome], slot: ReplySlot) -> None:
        self.execution_id = execution_id
        self._task = task
        self._released: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        slot.on_release(lambda reply: self._released.done() or self._released.set_result(reply))

    async def reply(self) -> Reply | None:
        """The reply a node gave, once the execution is stored, or earlier when the workflow
        goes on after answering; ``None`` if it ended without one. Cancelling the caller does
        not cancel the execution."""
        if not self._released.done() and not self._task.done():
            await asyncio.wait({self._released, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._released.done():
            return self._released.result()
        if self._task.cancelled() or self._task.exception() is not None:
            return None
        return self._task.result().reply

    async def outcome(self) -> Outcome:
        """Wait for the execution to end (stored) and return how it ended."""
        return await asyncio.shield(self._task)


class ExecutionService:
    def __init__(self, host: Host) -> None:
        self.host = host
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots: asyncio.Semaphore | None = None
        #: Background runs created and not yet holding a slot (bounded by max_backlog).
        self._waiting = 0

    # --- starting ----------------------------------------------------------------------

    async def start(self, workflow: ActiveWorkflow, context: Any, *, mode: str = "sync") -> RunHandle:
        """Record the execution as ``running`` and run it now, in this process.

        With ``mode="sync"`` (or a manual run of a sync workflow) nodes can reply to the caller.
        If the caller is cancelled meanwhile (the client went away), the execution is still
        recorded and run: a row is never left ``running`` with nothing running it.
        """
        return await asyncio.shield(self._start(workflow, context, mode))

    async def _start(self, workflow: ActiveWorkflow, context: Any, mode: str) -> RunHandle:
        now = utcnow()
        row = await Execution.create(
            workflow_id=workflow.id,
            version_id=workflow.compiled.version_id,
            status=ExecutionStatus.RUNNING,
            mode=mode,
            trigger_type=workflow.definition.trigger.type,
            context=context,
            created_at=now,
            started_at=now,
        )
        slot = ReplySlot(waiting=workflow.definition.sync)
        task = self._spawn(self._run(row.id, workflow.compiled, context, mode, slot))
        return RunHandle(row.id, task, slot)

    async def enqueue(self, workflow: ActiveWorkflow, context: Any) -> int:
        """Record the execution as ``queued`` (committed when this returns) and run it in the
        background. Returns its id. Like :meth:`start`, it completes even if the caller is
        cancelled."""
        return await asyncio.shield(self._enqueue(workflow, context))

    async def _enqueue(self, workflow: ActiveWorkflow, context: Any) -> int:
        limit = self.host.settings.max_backlog
        if self._waiting >= limit:
            raise Overloaded(
                f"{self._waiting} executions are already waiting to run in this process (max_backlog {limit}); retry later"
            )
        row = await Execution.create(
            workflow_id=workflow.id,
            version_id=workflow.compiled.version_id,
            status=ExecutionStatus.QUEUED,
            mode="async",
            trigger_type=workflow.definition.trigger.type,
            context=context,
            created_at=utcnow(),
        )
        self._spawn_queued(row.id, (workflow.compiled, context))
        return row.id

    async def run_manual(self, key: str, data: Any) -> dict[str, Any]:
        """``hookline run KEY``: run now, through the same engine, and return the execution.
        Disabled workflows can be run by hand (it is how one tests them)."""
        workflow = await self.host.workflows.find(key)
        if workflow is None:
            raise NotFound(f"no workflow with key {key!r}", key=key)
        trigger = self.host.registry.triggers[workflow.definition.trigger.type]
        context = await trigger.manual_context(workflow.definition, data)
        handle = await self.start(workflow, context, mode="manual")
        await handle.outcome()
        return await self.get(handle.execution_id)

    async def resume_queued(self) -> int:
        """Run executions left ``queued`` by a previous process. Returns how many."""
        ids = await Execution.filter(status=ExecutionStatus.QUEUED).order_by("id").values_list("id", flat=True)
        for execution_id in ids:
            self._spawn_queued(execution_id, None)
        return len(ids)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running executions, then cancel the rest (background
        ones go back to ``queued`` and run at the next start)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    # --- running -----------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn_queued(self, execution_id: int, preloaded: tuple[CompiledWorkflow, Any] | None) -> None:
        self._waiting += 1
        self._spawn(self._run_queued(execution_id, preloaded))

    async def _run_queued(self, execution_id: int, preloaded: tuple[CompiledWorkflow, Any] | None) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.host.settings.max_concurrent_runs)
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            await self._claim_and_run(execution_id, preloaded)
        finally:
            self._slots.release()

    async def _claim_and_run(self, execution_id: int, preloaded: tuple[CompiledWorkflow, Any] | None) -> None:
        claimed = await Execution.filter(id=execution_id, status=ExecutionStatus.QUEUED).update(
            status=ExecutionStatus.RUNNING, started_at=utcnow()
        )
        if not claimed:  # another process took it
            return
        if preloaded is None:
            row = await Execution.get(id=execution_id)
            compiled = await self.host.workflows.compiled_version(row.version_id)
            context = row.context
        else:
            compiled, context = preloaded
        await self._run(execution_id, compiled, context, "async", ReplySlot(waiting=False))

    async def _run(
        self, execution_id: int, compiled: CompiledWorkflow, context: Any, mode: str, slot: ReplySlot
    ) -> Outcome:
        try:
            outcome = await self.host.engine.run(
                compiled, context, execution_id=execution_id, mode=mode, reply=slot
            )
        except asyncio.CancelledError:
            # Shutdown. A background run goes back to the queue (it runs again at the next
            # start: at-least-once); a caller waiting on a sync one has gone with the server.
            status = ExecutionStatus.QUEUED if mode == "async" else ExecutionStatus.CANCELLED
            await asyncio.shield(self._mark(execution_id, status))
            raise
        try:
            await self._store(execution_id, outcome)
        except Exception as exc:
            # Never leave the row "running": record that the outcome itself was lost.
            log.exception("could not store the outcome of execution %s", execution_id)
            error = {"error": "outcome_not_stored", "message": f"the outcome could not be stored: {type(exc).__name__}: {exc}"}
            # What the caller is told must match the history: no reply from an unstored run.
            outcome = replace(outcome, status=ExecutionStatus.ERROR, error=error, reply=None)
            try:
                await Execution.filter(id=execution_id).update(
                    status=ExecutionStatus.ERROR, error=error, finished_at=outcome.finished_at
                )
            except Exception:  # the database is gone; the row is found at the next start
                log.exception("execution %s is left 'running' in the database", execution_id)
        return outcome

    async def _mark(self, execution_id: int, status: ExecutionStatus) -> None:
        finished = None if status == ExecutionStatus.QUEUED else utcnow()
        error = None if status == ExecutionStatus.QUEUED else {"message": "the server shut down while it ran"}
        await Execution.filter(id=execution_id).update(status=status, finished_at=finished, error=error)

    @staticmethod
    async def _store(execution_id: int, outcome: Outcome) -> None:
        async with in_transaction():
            if outcome.jobs:
                await Job.bulk_create(
                    [
                        Job(
                            execution_id=execution_id,
                            position=job.position,
                            node=job.node,
                            type=job.type,
                            status=job.status,
                            input=_encode(job.input),
                            result=_encode(job.result),
                            branch=job.branch,
                            error=job.error,
                            started_at=job.started_at,
                            finished_at=job.finished_at,
                        )
                        for job in outcome.jobs
                    ]
                )
            await Execution.filter(id=execution_id).update(
                status=outcome.status,
                error=outcome.error,
                reply=outcome.reply.to_dict() if outcome.reply else None,
                finished_at=outcome.finished_at,
            )

    # --- reading -----------------------------------------------------------------------

    async def list(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        query = Execution.all()
        if workflow:
            workflow_id = await Workflow.filter(key=workflow).values_list("id", flat=True)
            if not workflow_id:
                raise NotFound(f"no workflow with key {workflow!r}", key=workflow)
            query = query.filter(workflow_id=workflow_id[0])
        if status:
            try:
                query = query.filter(status=ExecutionStatus(status))
            except ValueError:
                known = ", ".join(s.value for s in ExecutionStatus)
                raise BadRequest(f"unknown status {status!r} (known: {known})", status=status) from None
        rows, next_cursor = await page_of(query.prefetch_related("workflow"), limit=limit, cursor=cursor)
        return Page([_summary(row, row.workflow.key) for row in rows], next_cursor)

    async def get(self, execution_id: int | str) -> dict[str, Any]:
        try:
            number = int(execution_id)
        except (TypeError, ValueError):
            raise NotFound(f"no execution with id {execution_id!r}") from None
        row = await Execution.filter(id=number).prefetch_related("workflow", "version").first()
        if row is None:
            raise NotFound(f"no execution with id {number}", id=number)
        jobs = await Job.filter(execution_id=number).order_by("position")
        return {
            **_summary(row, row.workflow.key, row.version.number),
            "context": row.context,
            "reply": row.reply,
            "jobs": [
                {
                    "node": job.node,
                    "type": job.type,
                    "status": job.status.value,
                    "input": _decode(job.input),
                    "result": _decode(job.result),
                    "branch": job.branch,
                    "error": job.error,
                    "started_at": job.started_at.isoformat(),
                    "finished_at": job.finished_at.isoformat(),
                    "duration_ms": _ms(job.started_at, job.finished_at),
                }
                for job in jobs
            ],
        }


def _summary(row: Execution, workflow_key: str, version: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "workflow": workflow_key,
        "status": row.status.value,
        "mode": row.mode,
        "trigger": row.trigger_type,
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "duration_ms": _ms(row.started_at, row.finished_at),
    }
    if version is not None:
        data["version"] = version
    return data


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _ms(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)
