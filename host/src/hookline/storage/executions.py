"""The execution rows, as the execution service writes and reads them: a repository of verbs.

The one door to the ``hookline_execution`` and ``hookline_job`` tables for running executions
(the history's reads are :mod:`hookline.storage.history`'s, the purge :mod:`hookline.retention`'s).
Callers say what happens (an execution is inserted, claimed, finished, ...), never how: this
module alone chooses the statements (the hot path's hand-written SQL in
:mod:`hookline.storage.sql`, the ORM elsewhere), the group commit on SQLite
(:mod:`hookline.storage.group_commit`) and whether a write needs a transaction.

Execution ids are this process's before the row is written: it reserves them a block at a time
(:class:`_Ids`), so that a run can be written once, when it ends, and still have had its id
from its start.

Every write that changes a run in flight is fenced: it applies only while the row is still
``running`` and owned by the writing process (``owner``), and says whether it did. After being
taken for dead, a process must not write over what another did with the execution.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Collection, NamedTuple, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from hookline import jsontext
from hookline.delivery import ExecutionRecord
from hookline.engine import Outcome
from hookline.status import FAILURE_STATUSES, ExecutionStatus
from hookline.storage import sql
from hookline.storage.connection import default_connection, dialect
from hookline.storage.group_commit import GroupCommit
from hookline.storage.models import Execution, WorkflowVersion
from hookline.storage.pg_batch import PostgresBatches
from hookline.types import Reply

T = TypeVar("T")

Claimed = sql.Claimed


@dataclass
class NewExecution:
    """The columns of a new execution row (the others start empty)."""

    workflow_id: int
    version_id: int
    status: ExecutionStatus
    mode: str
    trigger_type: str
    context: Any
    created_at: datetime
    started_at: datetime | None = None
    #: The process that runs it (``None``: whichever claims it).
    owner: str | None = None
    queued_at: datetime | None = None
    replay_of: int | None = None


class KeyTaken(Exception):
    """An insert with an idempotency key was refused by a constraint: the key is held (see
    :meth:`ExecutionStore.key_holder`), or, if nobody holds it, another constraint refused it
    (``error``, the database's)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class KeyHolder:
    """The execution holding an idempotency key, and until when it holds it."""

    record: ExecutionRecord
    until: datetime | None


class RunningRow(NamedTuple):
    """A ``running`` execution, as recovery judges it."""

    id: int
    owner: str | None
    version_id: int
    started_at: datetime | None


class QueuedRow(NamedTuple):
    """A ``queued`` execution, as recovery judges it."""

    id: int
    owner: str | None
    created_at: datetime
    queued_at: datetime | None


#: Most ids reserved at a time. A block is sized by how fast the last one was used (one id at
#: a time for an idle process), and one older than ``ID_BLOCK_FRESH`` seconds is dropped: with
#: several processes, the history's order (by id) then stays within about that of the order
#: in which executions started. While a block is reserved (a commit), new calls wait for it:
#: with blocks of 100 a process at 2,000 calls/s stalled 20 times a second, breaking its group
#: commits into small ones (SQLite, one process, 3 alternating runs: sync 1,810 -> 1,984 req/s,
#: async 1,846 -> 2,026 with blocks of 1,000).
ID_BLOCK = 1000
ID_BLOCK_FRESH = 1.0

_INTERRUPTED = {"error": "interrupted", "message": "the process running it stopped before it finished"}


class ExecutionStore:
    """The verbs (see the module's docstring). One per execution service: it holds the group
    commit of its process's writes."""

    def __init__(self, *, on_failure: Callable[[], None] | None = None) -> None:
        #: Called once a failed outcome marked to be announced is written. Failed outcomes are
        #: marked (``notify_at``) only with it: when a plugin implements the ``execution_failed``
        #: hook (see hookline.failures).
        self._on_failure = on_failure
        #: Commits the hot path's writes of concurrent calls together (SQLite).
        self._group = GroupCommit()
        self._ids = _Ids(self._reserve_ids)
        #: The hot path's writes of concurrent calls, one statement per kind (PostgreSQL).
        self._batches = PostgresBatches()

    # --- the hot path: creating, claiming and finishing runs -----------------------------

    async def next_id(self) -> int:
        """An execution id of this process's, for a row written later (:meth:`insert_finished`)."""
        return await self._ids.take()

    async def insert(self, row: NewExecution, execution_id: int | None = None, *, reply: Reply | None = None) -> int:
        """Create the row (committed when this returns), with ``execution_id`` (from
        :meth:`next_id`) or a new id, and the ``reply`` its run gave already; its id."""
        if execution_id is None:
            execution_id = await self._ids.take()
        values = {**vars(row), "id": execution_id}
        if reply is not None:
            values["reply"] = reply.to_dict()
        await self._write(
            lambda connection: self._batches.insert(connection, values, [])
            if dialect(connection) == "postgres"
            else sql.insert_known(connection, values),
            lambda: sql.insert_known_sqlite(values),
        )
        return execution_id

    async def insert_finished(self, row: NewExecution, execution_id: int, outcome: Outcome) -> None:
        """Create the row of a run that has ended, with its outcome and jobs, all at once: the
        one write of a run written when it ends."""
        values = {**vars(row), "id": execution_id, **self._outcome_values(outcome)}
        jobs = _job_rows(execution_id, outcome)
        await self._write(
            lambda connection: self._batches.insert(connection, values, jobs)
            if dialect(connection) == "postgres"
            else sql.insert_finished(connection, values, jobs),
            lambda: sql.insert_finished_sqlite(values, jobs),
            # PostgreSQL: one statement, the batch's (never in a transaction shared with others).
            transaction=lambda connection: dialect(connection) != "postgres",
        )
        self._announce(values["notify_at"], True)

    async def insert_keyed(self, row: NewExecution, digest: str, until: datetime) -> int:
        """:meth:`insert`, holding idempotency key ``digest`` until ``until``, under the unique
        (workflow, key) constraint.

        :raises KeyTaken: a constraint refused the row (nothing was written).
        """
        execution_id = await self._ids.take()
        values = {**vars(row), "id": execution_id, "dedup_key": digest, "dedup_until": until}
        try:
            await sql.insert_known(default_connection(), values)
        except IntegrityError as exc:
            raise KeyTaken(exc) from exc
        return execution_id

    async def key_holder(self, workflow_id: int, digest: str) -> KeyHolder | None:
        """The execution holding key ``digest`` for the workflow, if any."""
        first = await Execution.filter(workflow_id=workflow_id, dedup_key=digest).first()
        return None if first is None else KeyHolder(record_of(first), first.dedup_until)

    async def release_key(self, execution_id: int, digest: str) -> None:
        """Execution ``execution_id`` no longer holds key ``digest``. The condition on the key
        makes one of several concurrent releases (and the insert that follows) the winner."""
        await Execution.filter(id=execution_id, dedup_key=digest).update(dedup_key=None)

    async def claim(self, execution_id: int, owner: str, now: datetime) -> bool:
        """Take a queued execution to run it (``running``, ``owner``'s); ``False`` if another
        process took it first."""
        return await self._write(
            lambda connection: sql.claim_queued(connection, execution_id, owner, now),
            lambda: sql.claim_queued_sqlite(execution_id, owner, now),
        )

    async def claim_and_load(self, execution_id: int, owner: str, now: datetime) -> Claimed | None:
        """:meth:`claim`, returning what running the execution needs, in one statement; ``None``
        if another process took it first."""
        if self._group.applies():
            return sql.claimed(await self._group.run(sql.claim_and_load_sqlite(execution_id, owner, now)))
        return await sql.claim_and_load(default_connection(), execution_id, owner, now)

    async def finish(self, execution_id: int, owner: str, outcome: Outcome) -> bool:
        """Store how the run ended, its status first and its jobs with it, all or nothing, if
        it is still ``owner``'s; ``False`` (nothing written) if it is not."""
        values = self._outcome_values(outcome)
        jobs = _job_rows(execution_id, outcome)
        finished = await self._write(
            lambda connection: self._batches.finish(connection, execution_id, owner, values, jobs)
            if dialect(connection) == "postgres"
            else sql.store_outcome(connection, execution_id, owner, values, jobs),
            lambda: sql.store_outcome_sqlite(execution_id, owner, values, jobs),
            # PostgreSQL: one statement, the batch's (never in a transaction shared with others).
            transaction=lambda connection: dialect(connection) != "postgres",
        )
        return self._announce(values["notify_at"], finished)

    async def discard(self, execution_id: int, owner: str) -> bool:
        """Delete a run of ``owner``'s that ended and is not to be kept (its workflow keeps
        only the executions that did not succeed). ``False`` if it was not deleted: it is no
        longer ``owner``'s, or it holds an idempotency key (kept for the key's window)."""
        return await self._write(
            lambda connection: self._batches.discard(connection, execution_id, owner)
            if dialect(connection) == "postgres"
            else sql.discard(connection, execution_id, owner),
            lambda: sql.discard_sqlite(execution_id, owner),
        )

    async def record_reply(self, execution_id: int, owner: str, reply: Reply) -> bool:
        """Record the reply a run let out before its end (the workflow goes on after answering)."""
        return bool(await _owned(execution_id, owner).update(reply=reply.to_dict()))

    async def end(
        self, execution_id: int, owner: str, status: ExecutionStatus, error: dict[str, Any], finished_at: datetime
    ) -> bool:
        """End a run without its outcome (it could not run, or was stopped): ``status`` and
        ``error``, if it is still ``owner``'s."""
        notify_at = self._notify_at(status, finished_at)
        ended = await _owned(execution_id, owner).update(
            status=status, error=error, finished_at=finished_at, notify_at=notify_at
        )
        return self._announce(notify_at, bool(ended))

    async def release_to_queue(self, execution_id: int, owner: str, now: datetime) -> bool:
        """Put a run of ``owner``'s back in the queue, nobody's (stopped by a shutdown)."""
        return bool(
            await _owned(execution_id, owner).update(
                status=ExecutionStatus.QUEUED, owner=None, started_at=None, queued_at=now
            )
        )

    # --- reading one execution ---------------------------------------------------------------

    async def record(self, execution_id: int) -> ExecutionRecord | None:
        """Where execution ``execution_id`` stands, or ``None`` if there is no such execution."""
        if not 0 < execution_id < 2**63:
            return None
        row = (
            await Execution.filter(id=execution_id)
            .only("id", "status", "mode", "reply", "error", "workflow_id", "trigger_type")
            .first()
        )
        return None if row is None else record_of(row)

    # --- recovery: what dead processes left ----------------------------------------------------

    async def running(self) -> list[RunningRow]:
        """Every ``running`` execution."""
        rows = await Execution.filter(status=ExecutionStatus.RUNNING).values("id", "owner", "version_id", "started_at")
        return [RunningRow(row["id"], row["owner"], row["version_id"], row["started_at"]) for row in rows]

    async def queued_left(
        self, alive: Collection[str], *, unowned: bool, unowned_queued_before: datetime | None, limit: int
    ) -> list[QueuedRow]:
        """Up to ``limit`` ``queued`` executions, by id, owned by a process not in ``alive``;
        with ``unowned``, also those nobody owns (with ``unowned_queued_before``, only those
        queued before it, or at an unknown time)."""
        left = Q(owner__isnull=False) & ~Q(owner__in=list(alive))
        if unowned:
            nobody = Q(owner__isnull=True)
            if unowned_queued_before is not None:
                nobody &= Q(queued_at__isnull=True) | Q(queued_at__lt=unowned_queued_before)
            left |= nobody
        return await _queued(Execution.filter(left, status=ExecutionStatus.QUEUED), limit)

    async def queued_by(self, owner: str, created_before: datetime, limit: int) -> list[QueuedRow]:
        """Up to ``limit`` ``queued`` executions of ``owner``'s created before ``created_before``, by id."""
        query = Execution.filter(status=ExecutionStatus.QUEUED, owner=owner, created_at__lt=created_before)
        return await _queued(query, limit)

    async def requeue_abandoned(self, row: RunningRow, owner: str | None, now: datetime) -> bool:
        """Put an abandoned run back in the queue, ``owner``'s, unless it changed since it was
        read (its ``started_at`` as read: a run that ended and was claimed again meanwhile is
        not taken)."""
        return bool(
            await _as_read(row).update(status=ExecutionStatus.QUEUED, owner=owner, started_at=None, queued_at=now)
        )

    async def interrupt_abandoned(self, row: RunningRow, now: datetime) -> bool:
        """End an abandoned run ``error`` (``interrupted``), unless it changed since it was read."""
        notify_at = self._notify_at(ExecutionStatus.ERROR, now)
        ended = await _as_read(row).update(
            status=ExecutionStatus.ERROR, error=_INTERRUPTED, finished_at=now, notify_at=notify_at
        )
        return self._announce(notify_at, bool(ended))

    async def take_over_queued(self, row: QueuedRow, owner: str | None, now: datetime) -> bool:
        """Make a queued execution ``owner``'s, queued again at ``now``, unless it changed since
        it was read (of several processes sending it again at once, one does)."""
        claim = Execution.filter(id=row.id, status=ExecutionStatus.QUEUED)
        claim = claim.filter(owner__isnull=True) if row.owner is None else claim.filter(owner=row.owner)
        claim = claim.filter(queued_at__isnull=True) if row.queued_at is None else claim.filter(queued_at=row.queued_at)
        return bool(await claim.update(owner=owner, queued_at=now))

    async def stored_definition(self, version_id: int) -> dict[str, Any]:
        """A version's definition as stored, not compiled (``{}`` if it is gone or unreadable)."""
        version = await WorkflowVersion.filter(id=version_id).only("id", "definition").first()
        return version.definition if version is not None and isinstance(version.definition, dict) else {}

    async def _reserve_ids(self, count: int) -> list[int]:
        return await self._write(
            lambda connection: sql.reserve_ids(connection, count),
            lambda: sql.reserve_ids_sqlite(count),
            transaction=sql.reserve_ids_in_transaction,
        )

    # --- failures to announce ----------------------------------------------------------------

    def _notify_at(self, status: ExecutionStatus, finished_at: datetime) -> datetime | None:
        """``notify_at`` of a run ending with ``status``: due at once for a failure, when a
        plugin listens; written in the same statement as the status, so a failure stored is a
        failure announced, whatever happens to this process afterwards."""
        return finished_at if self._on_failure is not None and status in FAILURE_STATUSES else None

    def _announce(self, notify_at: datetime | None, written: bool) -> bool:
        """After a write: a failure marked to be announced was written, say so."""
        if written and notify_at is not None and self._on_failure is not None:
            self._on_failure()
        return written

    def _outcome_values(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "status": outcome.status,
            "error": outcome.error,
            "reply": outcome.reply.to_dict() if outcome.reply else None,
            "finished_at": outcome.finished_at,
            "notify_at": self._notify_at(outcome.status, outcome.finished_at),
        }

    # --- how a write is made --------------------------------------------------------------------

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
        connection = default_connection()
        if transaction is None or not transaction(connection):
            return await write(connection)
        async with in_transaction() as connection:
            return await write(connection)


class _Ids:
    """This process's reserved execution ids (see ``ID_BLOCK``)."""

    def __init__(self, reserve: Callable[[int], Awaitable[list[int]]]) -> None:
        self._reserve = reserve
        self._free: deque[int] = deque()
        #: ``time.monotonic()`` when the block in hand was asked for, and its size.
        self._since = 0.0
        self._size = 0
        self._pending: asyncio.Future[None] | None = None

    async def take(self) -> int:
        while True:
            if self._free and time.monotonic() - self._since < ID_BLOCK_FRESH:
                return self._free.popleft()
            pending = self._pending
            if pending is None:
                pending = self._pending = asyncio.ensure_future(self._refill())
            try:
                await asyncio.shield(pending)
            finally:
                if self._pending is pending and pending.done():
                    self._pending = None

    async def _refill(self) -> None:
        began = time.monotonic()
        # As many as the last block's pace would use in ID_BLOCK_FRESH: one for an idle process.
        used = self._size - len(self._free)
        lasted = max(began - self._since, 0.001)
        size = min(ID_BLOCK, max(1, round(used * ID_BLOCK_FRESH / lasted) if self._size else 1))
        ids = await self._reserve(size)
        self._free = deque(ids)
        self._since, self._size = began, len(ids)




def _job_rows(execution_id: int, outcome: Outcome) -> list[dict[str, Any]]:
    return [
        {
            "execution_id": execution_id,
            "position": job.position,
            "node": job.node,
            "type": job.type,
            "status": job.status,
            "input": jsontext.encode(job.input),
            # The engine encoded it already when it checked it.
            "result": job.result_json if job.result_json is not None else jsontext.encode(job.result),
            "branch": job.branch,
            "error": job.error,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
        }
        for job in outcome.jobs
    ]


def record_of(row: Execution) -> ExecutionRecord:
    reply = Reply(**row.reply) if isinstance(row.reply, dict) else None
    return ExecutionRecord(
        id=row.id,
        status=row.status,
        mode=row.mode,
        reply=reply,
        error=row.error,
        workflow_id=row.workflow_id,
        trigger_type=row.trigger_type,
    )


def _owned(execution_id: int, owner: str) -> Any:
    """The execution's row, as long as ``owner`` runs it (the fence)."""
    return Execution.filter(id=execution_id, status=ExecutionStatus.RUNNING, owner=owner)


def _as_read(row: RunningRow) -> Any:
    return Execution.filter(id=row.id, status=ExecutionStatus.RUNNING, owner=row.owner, started_at=row.started_at)


async def _queued(query: Any, limit: int) -> list[QueuedRow]:
    rows = await query.order_by("id").limit(limit).values("id", "owner", "created_at", "queued_at")
    return [QueuedRow(row["id"], row["owner"], row["created_at"], row["queued_at"]) for row in rows]
