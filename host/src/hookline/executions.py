"""Executions: starting, running in the background, storing and reading them.

The one implementation behind triggers, the API and the CLI. An execution row is written
before the workflow runs (``running`` for a waiting caller, ``queued`` for a background run, or
``running`` for one this process starts at once); when the engine is done, its jobs and final
status are written in one transaction.

Idempotency: a trigger may pass a :class:`Dedup` key; the row carries its digest under a unique
constraint, so a second delivery of the same event (even a concurrent one, from another process)
fails to insert and gets :class:`Duplicate`, naming the first execution.

Queue: a queued execution's id goes through :class:`~hookline.queue.ExecutionQueue` (taskiq) to
the process that runs it: this one (``memory``) or any worker (Redis). The receiver claims the row
with a conditional update, so a delivery repeated or lost is harmless: see :mod:`hookline.queue`.

Recovery: each process running executions holds a lease (:mod:`hookline.lease`), a
:class:`~hookline.storage.models.Process` row renewed by a heartbeat, and marks the executions it
runs as its own. Executions left ``running`` by a
process whose heartbeat stopped are re-queued or ended ``error`` (``interrupted``) by the others,
or by the next process to start, as their workflow's ``recovery`` says. With a shared queue,
executions queued for longer than ``redeliver_after`` are sent to it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from hookline import history, jsontext
from hookline.background import stop_task
from hookline.engine import CompiledWorkflow, Outcome, utcnow
from hookline.errors import HooklineError, NotFound, Overloaded
from hookline.lease import ProcessLease
from hookline.storage import sql
from hookline.storage.group_commit import GroupCommit
from hookline.storage.models import Execution, ExecutionStatus, WorkflowVersion
from hookline.types import Reply, ReplySlot

if TYPE_CHECKING:
    from hookline.host import Host
    from hookline.workflows import ActiveWorkflow

log = logging.getLogger("hookline.executions")
T = TypeVar("T")


#: Modes of executions run from the queue, with no caller waiting.
BACKGROUND_MODES = ("async", "replay")
#: A queued execution's version, context and mode, when the process that queued it runs it.
_Preloaded = tuple[CompiledWorkflow, Any, str]

#: Most queued rows one recovery pass looks at (the rest wait for the next pass).
RECOVERY_BATCH = 1000

#: How long an idempotency key holds unless the trigger says otherwise.
DEFAULT_DEDUP_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Dedup:
    """The idempotency key of a delivery (a provider's event or delivery id). Within ``window``
    of the first delivery, another with the same key for the same workflow runs nothing."""

    key: str
    window: timedelta = DEFAULT_DEDUP_WINDOW

    @property
    def digest(self) -> str:
        # Keys come from callers: hashed, they fit the column whatever their length or bytes.
        return hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ExecutionRecord:
    """Where an execution stands, as stored: what a trigger needs to answer a duplicate."""

    id: int
    status: ExecutionStatus
    mode: str
    reply: Reply | None
    error: dict[str, Any] | None
    workflow_id: int = 0
    trigger_type: str = ""

    @property
    def finished(self) -> bool:
        return self.status.finished

    @classmethod
    def of(cls, row: Execution) -> ExecutionRecord:
        reply = Reply(**row.reply) if isinstance(row.reply, dict) else None
        return cls(
            id=row.id,
            status=row.status,
            mode=row.mode,
            reply=reply,
            error=row.error,
            workflow_id=row.workflow_id,
            trigger_type=row.trigger_type,
        )


class Duplicate(HooklineError):
    """The delivery's idempotency key was seen within its window: nothing was started.
    ``execution`` is the first delivery's execution."""

    code = "duplicate"
    status = 409

    def __init__(self, execution: ExecutionRecord) -> None:
        super().__init__(
            f"this delivery was already received: execution {execution.id} ({execution.status.value})",
            execution=execution.id,
        )
        self.execution = execution


class ShuttingDown(Overloaded):
    """The process is stopping: it starts nothing new (503, retry later)."""

    code = "shutting_down"


class _NotOwned(Exception):
    """The execution is no longer this process's to finish."""


class RunHandle:
    """A started execution. A trigger awaits :meth:`reply` to answer its caller."""

    def __init__(self, execution_id: int, task: asyncio.Task[Outcome], slot: ReplySlot) -> None:
        self.execution_id = execution_id
        self._task = task
        self._released: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        slot.on_release(lambda reply: self._released.done() or self._released.set_result(reply))

    async def reply(self, timeout: float | None = None) -> Reply | None:
        """The reply a node gave, once the execution is stored, or earlier when the workflow
        goes on after answering; ``None`` if it ended without one. Cancelling the caller does
        not cancel the execution.

        :param timeout: seconds to wait at most; then ``TimeoutError`` (the execution goes on).
        """
        if not self._released.done() and not self._task.done():
            # One future and one timer: cheaper, on every sync call, than asyncio.wait under
            # asyncio.timeout.
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: object = None) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            self._released.add_done_callback(wake)
            self._task.add_done_callback(wake)
            timer = loop.call_later(timeout, wake) if timeout is not None else None
            try:
                await waiter
            finally:
                self._released.remove_done_callback(wake)
                self._task.remove_done_callback(wake)
                if timer is not None:
                    timer.cancel()
            if not self._released.done() and not self._task.done():
                raise TimeoutError(f"no reply within {timeout:g} s")
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
        #: This process's registration and heartbeat (see :meth:`open`).
        self._lease = ProcessLease(host.settings)
        #: This process, as the owner of the executions it runs.
        self.process_id = self._lease.process_id
        self._closing = False
        #: Queued executions this process has a task for.
        self._queued_here: set[int] = set()
        #: Whether what dead processes left is recovered (every third heartbeat interval).
        self.recovering = False
        self._recovery: asyncio.Task[None] | None = None
        #: Executions this process is running (claiming them, in the engine or storing their
        #: outcome): recovery never takes them for abandoned.
        self._running_here: set[int] = set()
        #: ``started_at`` of the ``running`` rows this process is inserting, in flight.
        self._inserting: Counter[datetime] = Counter()
        #: Commits the hot path's writes of concurrent calls together (SQLite).
        self._group = GroupCommit()
        #: What this process queued for itself (memory queue), until the delivery runs it.
        self._preloaded: dict[int, _Preloaded] = {}

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
        self._check_open()
        # One task records the execution, then runs it: the caller waits for the first part
        # only, and going away (cancelled) stops neither.
        started: asyncio.Future[RunHandle] = asyncio.get_running_loop().create_future()
        self._spawn(self._start_and_run(workflow, context, mode, dedup, started))
        return await asyncio.shield(started)

    def _check_open(self) -> None:
        if self._closing:
            raise ShuttingDown("the server is shutting down; retry later")
        if not self._lease.registered:
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
        ``running`` instead and started at once, without the queue (see
        :meth:`_start_in_background`). Like :meth:`start`, it completes even if the caller is
        cancelled.

        :param compiled: the version to run, if not the workflow's current one (replays).
        :param replay_of: the execution this one replays.
        :raises Duplicate: ``dedup`` names a delivery already received; nothing was queued.
        :raises Overloaded: too many executions already wait in this process.
        """
        self._check_open()
        return await asyncio.shield(self._enqueue(workflow, context, dedup, compiled or workflow.compiled, replay_of))

    async def _enqueue(
        self, workflow: ActiveWorkflow, context: Any, dedup: Dedup | None, compiled: CompiledWorkflow, replay_of: int | None
    ) -> int:
        shared = self.host.queue.shared
        limit = self.host.settings.max_backlog
        if not shared and self._waiting >= limit:
            raise Overloaded(
                f"{self._waiting} executions are already waiting to run in this process (max_backlog {limit}); retry later"
            )
        mode = "replay" if replay_of is not None else "async"
        if not shared and mode == "async" and self._slot_free():
            return await self._start_in_background(workflow, context, dedup, compiled)
        now = utcnow()
        execution_id = await self._insert(
            dedup,
            **_new_row(workflow, compiled, context, mode, ExecutionStatus.QUEUED, now),
            replay_of=replay_of,
            # With the memory queue, the process that will run it: if it dies first, another
            # adopts it (recover). A shared queue's executions are nobody's until claimed.
            owner=None if shared else self.process_id,
            queued_at=now,
        )
        await self._dispatch(execution_id, (compiled, context, mode))
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

    async def _insert_running(
        self, workflow: ActiveWorkflow, compiled: CompiledWorkflow, context: Any, mode: str, dedup: Dedup | None
    ) -> int:
        """Create the row of an execution this process starts now: ``running``, its own, and
        counted as running here from the moment the insert returns (the caller runs it)."""
        now = utcnow()
        # Until the insert returns, its id is unknown: recovery leaves this process's rows
        # started from ``now`` on alone (see _abandoned_here), however long the write takes.
        self._inserting[now] += 1
        try:
            execution_id = await self._insert(
                dedup,
                **_new_row(workflow, compiled, context, mode, ExecutionStatus.RUNNING, now),
                started_at=now,
                owner=self.process_id,
            )
            self._running_here.add(execution_id)
            return execution_id
        finally:
            self._inserting[now] -= 1
            if not self._inserting[now]:
                del self._inserting[now]

    async def _insert(self, dedup: Dedup | None, **values: Any) -> int:
        """Create the row and return its id; with ``dedup``, under the unique (workflow, key)
        constraint."""
        if dedup is None:
            return await self._write(
                lambda connection: sql.insert_execution(values, connection), lambda: sql.insert_execution_sqlite(values)
            )
        digest = dedup.digest
        workflow_id = values["workflow_id"]
        missing = 0
        for _ in range(5):
            now = utcnow()
            try:
                return await sql.insert_execution({**values, "dedup_key": digest, "dedup_until": now + dedup.window})
            except IntegrityError:
                first = await Execution.filter(workflow_id=workflow_id, dedup_key=digest).first()
                if first is None:
                    missing += 1
                    if missing > 1:  # not the key's constraint (the workflow was deleted?)
                        raise
            if first is None:  # released meanwhile: try again
                continue
            if first.dedup_until is not None and first.dedup_until > now and not _released(first):
                raise Duplicate(ExecutionRecord.of(first))
            # Expired, or its caller was told to retry: the key moves to the new delivery. The
            # condition on dedup_key makes one of several concurrent retries the winner.
            await Execution.filter(id=first.id, dedup_key=digest).update(dedup_key=None)
        raise Overloaded(f"idempotency key {dedup.key!r} is contended; retry later")

    async def record(self, execution_id: int) -> ExecutionRecord | None:
        """Where execution ``execution_id`` stands, or ``None`` if there is no such execution."""
        if not 0 < execution_id < 2**63:
            return None
        row = (
            await Execution.filter(id=execution_id)
            .only("id", "status", "mode", "reply", "error", "workflow_id", "trigger_type")
            .first()
        )
        return None if row is None else ExecutionRecord.of(row)

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
        registered = not self._lease.registered
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
        heartbeat. A worker then calls :meth:`receive`.

        Called by the server at start (``Host.start``) before anything runs, and by commands
        that run executions themselves (``hookline run``) with ``recover=False``. Starting an
        execution before this is refused: another process would take it for abandoned.
        """
        self._closing = False
        await self.host.queue.start()
        await self._lease.register()
        # Apart from the heartbeat, so that a long recovery never delays a renewal.
        self._recovery = asyncio.get_running_loop().create_task(self._recover_periodically())
        if recover:
            await self.recover()
            self.recovering = True

    def receive(self) -> None:
        """Run what a shared queue delivers (as a worker), up to ``max_concurrent_runs`` at once."""
        settings = self.host.settings
        self.host.queue.receive(concurrency=settings.max_concurrent_runs, grace=settings.shutdown_grace)

    async def close(self) -> None:
        """Stop the heartbeat and unregister (after :meth:`drain`): what this process left queued
        is then any other process's to run."""
        self.recovering = False
        await stop_task(self._recovery)
        self._recovery = None
        await self._lease.release()
        await self.host.queue.close()

    async def _recover_periodically(self) -> None:
        interval = 3 * self.host.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            if not self.recovering:
                continue
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
        may have been lost). Each is claimed with a conditional update, so processes
        recovering at once take each one once. Returns ``(requeued, interrupted)``.

        A process that was stalled itself gives the others' leases as much more time (see
        :mod:`hookline.lease`): a live peer stalled with it must not have its runs taken and
        run twice."""
        now = utcnow()
        shared = self.host.queue.shared
        # The rows first, the live processes after: a process registers before it writes a
        # row, so every owner found alive below was alive when its row was read.
        running = await Execution.filter(status=ExecutionStatus.RUNNING).values("id", "owner", "version_id", "started_at")
        # Only the candidates (the decision is made below, with the live processes read after
        # the rows): queued for a process that was not alive just now, or for this one long
        # ago; with a shared queue, also whatever has waited longer than redeliver_after.
        slack = self._lease.slack()
        was_alive = await self._lease.alive(slack)
        stale = now - self._lease.length
        # Others' first, this process's own apart: its own backlog (waiting for a run slot, not
        # stuck) must not fill the batch and hide what a dead process left.
        others = Q(owner__isnull=False) & ~Q(owner__in=list(was_alive))
        if not shared:
            others |= Q(owner__isnull=True)
        elif not await self.host.queue.behind():
            # Sent long ago and still queued: the message was lost (or its worker died). While
            # the workers have not read everything sent, a late row is only waiting its turn.
            others |= Q(owner__isnull=True) & (Q(queued_at__isnull=True) | Q(queued_at__lt=now - self._redeliver_after))
        fields = ("id", "owner", "created_at", "queued_at")
        queued_rows = await (
            Execution.filter(others, status=ExecutionStatus.QUEUED).order_by("id").limit(RECOVERY_BATCH).values(*fields)
        )
        if not shared:
            own = Execution.filter(status=ExecutionStatus.QUEUED, owner=self.process_id, created_at__lt=stale)
            queued_rows += [
                row
                for row in await own.order_by("id").limit(RECOVERY_BATCH + len(self._queued_here)).values(*fields)
                if row["id"] not in self._queued_here
            ]
        alive = await self._lease.alive(slack)
        requeued = interrupted = 0
        for row in running:
            if row["owner"] in alive and not (row["owner"] == self.process_id and self._abandoned_here(row, stale)):
                continue
            if self._lease.stalled_since(slack):  # the leases read say too little now
                break
            try:
                compiled = await self.host.workflows.compiled_version(row["version_id"])
                recovery = compiled.definition.recovery
                runnable = True
            except HooklineError as exc:  # its version cannot be compiled here (a plugin missing)
                recovery, runnable = await _stored_recovery(row["version_id"]), False
                if shared and recovery == "requeue":
                    # Another process (a worker with the plugin) may run it: the claim decides.
                    log.warning("execution %s: %s here; re-queued for the workers", row["id"], exc.message)
                else:
                    log.warning("execution %s: %s; ending it", row["id"], exc.message)
                    recovery = "interrupt"
            # started_at as read: a run that ended and was claimed again meanwhile is not taken.
            claim = Execution.filter(
                id=row["id"], status=ExecutionStatus.RUNNING, owner=row["owner"], started_at=row["started_at"]
            )
            if recovery == "requeue" and (runnable or shared):
                if await claim.update(
                    status=ExecutionStatus.QUEUED, owner=self._queue_owner, started_at=None, queued_at=now
                ):
                    requeued += 1
                    await self._dispatch(row["id"], None)
            elif await claim.update(
                status=ExecutionStatus.ERROR,
                error={"error": "interrupted", "message": "the process running it stopped before it finished"},
                finished_at=now,
            ):
                interrupted += 1
        resumed = 0
        for row in queued_rows:
            if row["id"] in self._queued_here:
                continue
            owner = row["owner"]
            if owner is not None or not shared:
                # Queued for a process's own (memory) queue: taken over if that process is gone.
                mine = owner == self.process_id
                if owner in alive and not (mine and _before(row["created_at"], stale)):
                    continue
            if self._closing or (not shared and self._waiting >= self.host.settings.max_backlog):
                break
            if self._lease.stalled_since(slack):
                break
            claim = Execution.filter(id=row["id"], status=ExecutionStatus.QUEUED)
            claim = claim.filter(owner__isnull=True) if owner is None else claim.filter(owner=owner)
            # queued_at as read: of several processes sending it again at once, one does.
            claim = claim.filter(queued_at__isnull=True) if row["queued_at"] is None else claim.filter(queued_at=row["queued_at"])
            if await claim.update(owner=self._queue_owner, queued_at=now):
                resumed += 1
                await self._dispatch(row["id"], None)
        # Processes long dead are forgotten (what they left was recovered above).
        await self._lease.forget_long_dead()
        if requeued or interrupted or resumed:
            log.warning(
                "recovered what stopped processes left: %d re-queued, %d interrupted, %d queued taken over",
                requeued,
                interrupted,
                resumed,
            )
        return requeued, interrupted

    def _abandoned_here(self, row: dict[str, Any], stale: datetime) -> bool:
        """Whether a ``running`` row of this process's own has nothing running it (its last
        writes failed): not running here, nor being inserted, and started over a lease ago."""
        started_at = row["started_at"]
        if row["id"] in self._running_here or not _before(started_at, stale):
            return False
        return not self._inserting or started_at < min(self._inserting)

    @property
    def _queue_owner(self) -> str | None:
        """Who a queued execution belongs to: this process with the memory queue (it runs it),
        nobody with a shared queue (whichever worker claims it)."""
        return None if self.host.queue.shared else self.process_id

    @property
    def _redeliver_after(self) -> timedelta:
        return timedelta(seconds=self.host.settings.redeliver_after)

    async def drain(self, grace: float) -> None:
        """Refuse new executions and stop taking queued ones; wait up to ``grace`` seconds for
        running executions (those started meanwhile included), then cancel the rest (background
        ones go back to ``queued``, for another process or the next start)."""
        self._closing = True
        self.recovering = False
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

    # --- running -----------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _dispatch(self, execution_id: int, preloaded: _Preloaded | None) -> None:
        """Send a queued execution (committed) to the queue. With the memory queue this process
        runs it (``preloaded`` spares reading it back); a shared queue that cannot be reached
        now gets it again from :meth:`recover` after ``redeliver_after``."""
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
        self._queued_here.add(execution_id)
        self._waiting += 1
        if preloaded is not None:
            self._preloaded[execution_id] = preloaded
        try:
            await self.host.queue.send(execution_id)
        except BaseException:
            self._queued_here.discard(execution_id)
            self._waiting -= 1
            self._preloaded.pop(execution_id, None)
            raise

    async def run_delivered(self, execution_id: int) -> None:
        """Run a queued execution the queue delivered: claim it, run it, store its outcome. An
        id delivered again, or already taken by another process, finds nothing to claim."""
        task = asyncio.current_task()
        if task is not None:  # waited for (and cancelled) by drain, like the runs it spawns
            self._tasks.add(task)
        counted = execution_id in self._queued_here
        try:
            await self._run_queued(execution_id, self._preloaded.pop(execution_id, None), counted=counted)
        except asyncio.CancelledError:
            # Shutdown (drain): the run was put back in the queue (see _mark). taskiq would log
            # the cancellation as a task failure, with a traceback.
            log.info("execution %s was stopped by the shutdown and is queued again", execution_id)
        except Exception:  # taskiq would only log it; say which execution
            log.exception("execution %s failed to run", execution_id)
        finally:
            if counted:
                self._queued_here.discard(execution_id)
            if task is not None:
                self._tasks.discard(task)

    async def _run_queued(self, execution_id: int, preloaded: _Preloaded | None, *, counted: bool) -> None:
        self._slot_free()  # (makes the semaphore)
        assert self._slots is not None
        try:
            await self._slots.acquire()
        finally:
            if counted:
                self._waiting -= 1
        try:
            await self._claim_and_run(execution_id, preloaded)
        finally:
            self._slots.release()

    async def _claim_and_run(self, execution_id: int, preloaded: _Preloaded | None) -> None:
        if self._closing:  # shutting down: it stays queued, for another worker or the next start
            if self.host.queue.shared:  # this delivery is acknowledged when it returns: send it again
                await self._dispatch(execution_id, None)
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

    async def _claim_load_and_run(self, execution_id: int, preloaded: _Preloaded | None) -> None:
        now = utcnow()
        if preloaded is not None:  # this process queued it: the claim only
            claimed = await self._write(
                lambda connection: sql.claim_queued(connection, execution_id, self.process_id, now),
                lambda: sql.claim_queued_sqlite(execution_id, self.process_id, now),
            )
            if not claimed:  # another process took it
                return
            compiled, context, mode = preloaded
        else:
            row = await self._claim_and_load(execution_id, now)
            if row is None:  # another process took it
                return
            try:
                compiled = await self.host.workflows.compiled_version(row.version_id)
            except HooklineError as exc:  # its version cannot run here (a node type is missing)
                log.error("execution %s cannot run: %s", execution_id, exc.message)
                error = {"error": exc.code, "message": exc.message}
                await self._own(execution_id).update(status=ExecutionStatus.ERROR, error=error, finished_at=utcnow())
                return
            except Exception:
                # The database failed after the claim, reading its version: back to the queue
                # (if this fails too, recovery finds the row running with nothing running it).
                log.exception("execution %s could not be loaded; it goes back to the queue", execution_id)
                await self._mark(execution_id, ExecutionStatus.QUEUED)
                return
            context, mode = row.context, row.mode
        await self._run(execution_id, compiled, context, mode, ReplySlot(waiting=False))

    async def _claim_and_load(self, execution_id: int, now: datetime) -> sql.Claimed | None:
        """Claim a queued execution and read what running it needs, in one statement."""
        if self._group.applies():
            return sql.claimed(await self._group.run(sql.claim_and_load_sqlite(execution_id, self.process_id, now)))
        return await sql.claim_and_load(sql.default_connection(), execution_id, self.process_id, now)

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
            await asyncio.shield(self._mark(execution_id, status))
            raise
        try:
            await self._store(execution_id, outcome)
        except _NotOwned:
            # Taken for dead meanwhile (a pause longer than its lease): the execution was
            # re-queued or interrupted by another process, whose record stands.
            log.warning("execution %s was recovered by another process; this run's outcome is dropped", execution_id)
            return replace(outcome, status=ExecutionStatus.ERROR, error={"error": "interrupted"}, reply=None)
        except Exception as exc:
            # Never leave the row "running": record that the outcome itself was lost.
            log.exception("could not store the outcome of execution %s", execution_id)
            error = {"error": "outcome_not_stored", "message": f"the outcome could not be stored: {type(exc).__name__}: {exc}"}
            # What the caller is told must match the history: no reply from an unstored run.
            outcome = replace(outcome, status=ExecutionStatus.ERROR, error=error, reply=None)
            try:
                await self._own(execution_id).update(
                    status=ExecutionStatus.ERROR, error=error, finished_at=outcome.finished_at
                )
            except Exception:  # the database is gone; the row is found at the next start
                log.exception("execution %s is left 'running' in the database", execution_id)
        return outcome

    async def _record_reply(self, execution_id: int, reply: Reply) -> None:
        try:
            await self._own(execution_id).update(reply=reply.to_dict())
        except Exception:  # the whole outcome is stored at the end anyway
            log.warning("could not record the early reply of execution %s", execution_id, exc_info=True)

    def _own(self, execution_id: int) -> Any:
        """The execution's row, as long as this process runs it (fencing: after being taken for
        dead, a process must not write over what another did with it)."""
        return Execution.filter(id=execution_id, status=ExecutionStatus.RUNNING, owner=self.process_id)

    async def _mark(self, execution_id: int, status: ExecutionStatus) -> None:
        if status == ExecutionStatus.QUEUED:
            # Nobody's: the next process to recover takes it, or, with a shared queue, the
            # worker that receives it (sent again at once; the delivery that brought it here is
            # acknowledged when this run ends).
            if await self._own(execution_id).update(status=status, owner=None, started_at=None, queued_at=utcnow()):
                if self.host.queue.shared:
                    await self._dispatch(execution_id, None)
            return
        error = {"error": "shutdown", "message": "the server shut down while it ran"}
        await self._own(execution_id).update(status=status, finished_at=utcnow(), error=error)

    async def _store(self, execution_id: int, outcome: Outcome) -> None:
        outcome_values = {
            "status": outcome.status,
            "error": outcome.error,
            "reply": outcome.reply.to_dict() if outcome.reply else None,
            "finished_at": outcome.finished_at,
        }
        jobs = [
            {
                "execution_id": execution_id,
                "position": job.position,
                "node": job.node,
                "type": job.type,
                "status": job.status,
                "input": jsontext.encode(job.input),
                "result": job.result_json if job.result_json is not None else jsontext.encode(job.result),
                "branch": job.branch,
                "error": job.error,
                "started_at": job.started_at,
                "finished_at": job.finished_at,
            }
            for job in outcome.jobs
        ]
        # The status first, on the condition that the row is still this process's; the jobs
        # after it, in the same transaction (rolled back if it is not).
        stored = await self._write(
            lambda connection: sql.store_outcome(connection, execution_id, self.process_id, outcome_values, jobs),
            lambda: sql.store_outcome_sqlite(execution_id, self.process_id, outcome_values, jobs),
            transaction=lambda connection: not sql.outcome_in_one_statement(connection, len(jobs)),
        )
        if not stored:
            raise _NotOwned(execution_id)

    async def _write(
        self,
        write: Callable[[Any], Awaitable[T]],
        sqlite_write: Callable[[], sql.SqliteWrite],
        *,
        transaction: Callable[[Any], bool] | None = None,
    ) -> T:
        """A hot-path write: on SQLite in the next group commit (``sqlite_write()`` makes it);
        elsewhere ``write(connection)`` on its own, in a transaction if ``transaction(connection)``
        says it takes several statements."""
        if self._group.applies():
            return await self._group.run(sqlite_write())
        connection = sql.default_connection()
        if transaction is None or not transaction(connection):
            return await write(connection)
        async with in_transaction() as connection:
            return await write(connection)

    # --- reading: the history, as the API, the CLI and the console read it ------------------
    # The functions of hookline.history, whole (their signatures and docstrings are the API).

    list = staticmethod(history.list_executions)
    activity = staticmethod(history.workflow_activity)
    get = staticmethod(history.get_execution)


def _new_row(
    workflow: ActiveWorkflow, compiled: CompiledWorkflow, context: Any, mode: str, status: ExecutionStatus, now: datetime
) -> dict[str, Any]:
    """The columns every new execution row has; the caller adds those of its status."""
    return {
        "workflow_id": workflow.id,
        "version_id": compiled.version_id,
        "status": status,
        "mode": mode,
        "trigger_type": compiled.definition.trigger.type,
        "context": context,
        "created_at": now,
    }


def _before(moment: Any, limit: Any) -> bool:
    return moment is not None and moment < limit


async def _stored_recovery(version_id: int) -> str:
    """A version's ``recovery``, read from its stored definition without compiling it."""
    version = await WorkflowVersion.filter(id=version_id).only("id", "definition").first()
    definition = version.definition if version is not None and isinstance(version.definition, dict) else {}
    recovery = definition.get("recovery")
    if recovery in ("requeue", "interrupt"):
        return recovery
    return "interrupt" if definition.get("sync") else "requeue"


def _released(first: Execution) -> bool:
    """Whether a delivery's key is free again although within its window: its caller waited
    (sync) and was told to retry, because the execution ended without success and without a
    reply (an internal error, a shutdown, an interruption). Retrying is what it was asked to do."""
    return (
        first.mode == "sync"
        and first.status.finished
        and first.status != ExecutionStatus.SUCCEEDED
        and first.reply is None
    )

