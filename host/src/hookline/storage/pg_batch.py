"""Group commit on PostgreSQL: the hot path's writes of concurrent calls made by one statement
per kind, in one round trip and one commit.

A round trip to PostgreSQL costs the server process more CPU than building the rows (the
driver, the socket, the event loop waking for each answer): writing the rows of calls that
arrive meanwhile together divides it by the size of the batch. Three kinds are batched: new
executions (with the jobs of those that ended: a sync run written when it ends), outcomes (an
execution's status and reply, with its jobs, on the condition that it is still ``running`` and
its writer's), and runs not kept (deleted on the same condition). Each statement is always the
same, whatever the number of rows: each column is an array parameter, spread by ``unnest``, so
it is prepared once per connection.

One batch of a kind is written at a time; writes that arrive meanwhile form the next one. A
batch is all or nothing: if PostgreSQL refuses it (one row breaks a constraint: its workflow was
deleted meanwhile), its writes are made again one by one, so that only the faulty one fails. If
it fails because the database cannot write now (down, locked past ``lock_timeout``, full), the
writes that queued behind it fail with it at once rather than each waiting as long again: their
callers are told to retry within the time one write may take. Each caller's ``await`` returns
once the statement holding its row is committed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from hookline.status import ExecutionStatus
from hookline.storage import columns
from hookline.storage.errors import unavailable
from hookline.storage.models import Execution, Job

#: Most writes in one statement.
MAX_BATCH = 128

R = TypeVar("R")


class _Batches(Generic[R]):
    """The queue and writer of one kind of write: ``_execute`` writes a batch and returns each
    write's result."""

    def __init__(self) -> None:
        self._pending: list[tuple[Any, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._statement: str | None = None

    async def add(self, connection: Any, item: Any) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(connection))
        return await asyncio.shield(future)

    async def _write(self, connection: Any) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write_batch(connection, batch)
        finally:
            self._writer = None
            if self._pending:  # cancelled (the loop closing): the writes left fail, none hangs
                for _, future in self._pending:
                    _settle(future, RuntimeError("the database writer stopped"))
                self._pending = []

    async def _write_batch(self, connection: Any, batch: list[tuple[Any, asyncio.Future[R]]]) -> None:
        try:
            results = await self._execute(connection, [item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:
            if unavailable(exc):  # every write would wait as long again: they all fail now
                waiting, self._pending = self._pending, []
                for _, future in [*batch, *waiting]:
                    _settle(future, exc)
                return
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for n, (item, future) in enumerate(batch):  # which one is refused: each on its own
                try:
                    [result] = await self._execute(connection, [item])
                except asyncio.CancelledError:
                    for _, left in batch[n:]:
                        left.cancel()
                    raise
                except Exception as one:
                    _settle(future, one)
                    if unavailable(one):  # the database stopped writing meanwhile: the rest too
                        for _, left in batch[n + 1 :]:
                            _settle(left, one)
                        return
                else:
                    _settle(future, None, result)
            return
        for (_, future), result in zip(batch, results):
            _settle(future, None, result)

    async def _execute(self, connection: Any, items: list[Any]) -> list[R]:
        raise NotImplementedError


def _arrays(types: list[str], first: int = 1) -> str:
    return ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, first))


def _transposed(rows: list[list[Any]], width: int) -> list[list[Any]]:
    """Rows as columns (one array parameter each)."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def _jobs_insert(first: int, condition: str) -> str:
    """The insert of the jobs given as array parameters from ``$first``, where ``condition``
    (on the jobs' alias ``j``) holds."""
    job = Job._meta.db_table
    names = columns.names(columns.JOB_COLUMNS)
    aliased = ", ".join(f'j."{name}"' for name in columns.JOB_COLUMNS)
    arrays = _arrays(columns.postgres_types(Job, columns.JOB_COLUMNS), first)
    return f'INSERT INTO "{job}" ({names}) SELECT {aliased} FROM unnest({arrays}) AS j({names}) WHERE {condition}'


class _Inserts(_Batches[None]):
    """New executions with their ids (see :mod:`hookline.storage.sql`'s ``reserve_ids``), and
    the jobs of those that ended."""

    def _sql(self) -> str:
        execution = Execution._meta.db_table
        types = columns.postgres_types(Execution, columns.KNOWN_COLUMNS)
        return (
            f'WITH done AS (INSERT INTO "{execution}" ({columns.names(columns.KNOWN_COLUMNS)}) '
            f'SELECT * FROM unnest({_arrays(types)}) RETURNING "id") '
            + _jobs_insert(len(types) + 1, "EXISTS (SELECT 1 FROM done)")
        )

    async def _execute(self, connection: Any, items: list[Any]) -> list[None]:
        if self._statement is None:
            self._statement = self._sql()
        rows = [row for row, _ in items]
        jobs = [job for _, job_rows in items for job in job_rows]
        params = [*_transposed(rows, len(columns.KNOWN_COLUMNS)), *_transposed(jobs, len(columns.JOB_COLUMNS))]
        await connection.execute_query(self._statement, params)
        return [None] * len(items)


#: The columns of an outcome's batch: the execution, its writer, then what is stored.
_OUTCOME = ("id", "owner", *columns.OUTCOME_COLUMNS)


class _Outcomes(_Batches[bool]):
    """Outcomes: each execution's status, error, reply and end, with its jobs, on the condition
    that it is still ``running`` and its writer's; ``True`` for each one written."""

    def _sql(self) -> str:
        execution = Execution._meta.db_table
        types = columns.postgres_types(Execution, _OUTCOME)
        sets = ", ".join(f'"{name}" = v."{name}"' for name in columns.OUTCOME_COLUMNS)
        running = len(types) + 1
        jobs = _jobs_insert(running + 1, 'j."execution_id" IN (SELECT "id" FROM done)')
        return (
            f"WITH v AS (SELECT * FROM unnest({_arrays(types)}) AS v({columns.names(_OUTCOME)})), "
            f'done AS (UPDATE "{execution}" AS e SET {sets} FROM v '
            f'WHERE e."id" = v."id" AND e."status" = ${running} AND e."owner" = v."owner" RETURNING e."id"), '
            f'jobs AS ({jobs}) SELECT "id" FROM done'
        )

    async def _execute(self, connection: Any, items: list[Any]) -> list[bool]:
        if self._statement is None:
            self._statement = self._sql()
        rows = [row for row, _ in items]
        jobs = [job for _, job_rows in items for job in job_rows]
        params = [
            *_transposed(rows, len(_OUTCOME)),
            ExecutionStatus.RUNNING.value,
            *_transposed(jobs, len(columns.JOB_COLUMNS)),
        ]
        done = {row["id"] for row in await connection.execute_query_dict(self._statement, params)}
        return [row[0] in done for row in rows]


class _Discards(_Batches[bool]):
    """Runs not kept, deleted on the condition that each is still ``running``, its writer's
    and holds no idempotency key; ``True`` for each one deleted."""

    def _sql(self) -> str:
        execution = Execution._meta.db_table
        types = columns.postgres_types(Execution, ("id", "owner"))
        return (
            f'DELETE FROM "{execution}" AS e USING unnest({_arrays(types)}) AS v("id", "owner") '
            'WHERE e."id" = v."id" AND e."status" = $3 AND e."owner" = v."owner" AND e."dedup_key" IS NULL '
            'RETURNING e."id"'
        )

    async def _execute(self, connection: Any, items: list[Any]) -> list[bool]:
        if self._statement is None:
            self._statement = self._sql()
        params = [*_transposed(items, 2), ExecutionStatus.RUNNING.value]
        # (execute_query would not fetch what a DELETE returns: tortoise runs it as a command)
        done = {row["id"] for row in await connection.execute_query_dict(self._statement, params)}
        return [item[0] in done for item in items]


class PostgresBatches:
    """See the module's docstring."""

    def __init__(self) -> None:
        self._inserts = _Inserts()
        self._outcomes = _Outcomes()
        self._discards = _Discards()

    async def insert(self, connection: Any, values: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """Insert an execution with its id (and its ``jobs``, if it ended) in the next batch."""
        row = columns.convert(Execution, columns.KNOWN_COLUMNS, values)
        job_rows = [columns.convert(Job, columns.JOB_COLUMNS, job) for job in jobs]
        await self._inserts.add(connection, (row, job_rows))

    async def finish(
        self, connection: Any, execution_id: int, owner: str, values: dict[str, Any], jobs: list[dict[str, Any]]
    ) -> bool:
        """Store an execution's outcome (``values``: its status, error, reply, end) and its
        ``jobs`` if it is still ``running`` and ``owner``'s; whether it was."""
        row = columns.convert(Execution, _OUTCOME, {**values, "id": execution_id, "owner": owner})
        job_rows = [columns.convert(Job, columns.JOB_COLUMNS, job) for job in jobs]
        return await self._outcomes.add(connection, (row, job_rows))

    async def discard(self, connection: Any, execution_id: int, owner: str) -> bool:
        """Delete a run not kept if it is still ``running``, ``owner``'s and holds no
        idempotency key; whether it was deleted."""
        return await self._discards.add(connection, [execution_id, owner])


def _settle(future: asyncio.Future[Any], error: BaseException | None, result: Any = None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
