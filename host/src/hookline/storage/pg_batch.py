"""Group commit on PostgreSQL: the new executions (and the jobs of those that ended) of
concurrent calls inserted by one statement, in one round trip and one commit.

A round trip to PostgreSQL costs the server process more CPU than building the rows (the
driver, the socket, the event loop waking for each answer): inserting the rows of calls that
arrive meanwhile together divides it by the size of the batch. The statement is always the
same, whatever the number of rows: each column is an array parameter, spread by ``unnest``,
so it is prepared once per connection.

One batch is written at a time; writes that arrive meanwhile form the next one. A batch is all
or nothing: if PostgreSQL refuses it (one row breaks a constraint: its workflow was deleted
meanwhile), its writes are made again one by one, so that only the faulty one fails. If it
fails because the database cannot write now (down, locked past ``lock_timeout``, full), the
writes that queued behind it fail with it at once rather than each waiting as long again: their
callers are told to retry within the time one write may take. Each caller's ``await`` returns
once the statement holding its row is committed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hookline.storage import columns
from hookline.storage.errors import unavailable
from hookline.storage.models import Execution, Job

#: Most executions in one statement.
MAX_BATCH = 128


def _statement() -> str:
    execution, job = Execution._meta.db_table, Job._meta.db_table
    execution_types = columns.postgres_types(Execution, columns.KNOWN_COLUMNS)
    job_types = columns.postgres_types(Job, columns.JOB_COLUMNS)
    executions = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(execution_types, 1))
    first = len(execution_types) + 1
    jobs = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(job_types, first))
    return (
        f'WITH done AS (INSERT INTO "{execution}" ({columns.names(columns.KNOWN_COLUMNS)}) '
        f'SELECT * FROM unnest({executions}) RETURNING "id") '
        f'INSERT INTO "{job}" ({columns.names(columns.JOB_COLUMNS)}) '
        f"SELECT * FROM unnest({jobs}) WHERE EXISTS (SELECT 1 FROM done)"
    )


class PostgresBatches:
    """See the module's docstring."""

    def __init__(self) -> None:
        self._pending: list[tuple[list[Any], list[list[Any]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._statement: str | None = None

    async def insert(self, connection: Any, values: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """Insert an execution with its id (and its ``jobs``, if it ended) in the next batch."""
        row = columns.convert(Execution, columns.KNOWN_COLUMNS, values)
        job_rows = [columns.convert(Job, columns.JOB_COLUMNS, job) for job in jobs]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, job_rows, future))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(connection))
        await asyncio.shield(future)

    async def _write(self, connection: Any) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write_batch(connection, batch)
        finally:
            self._writer = None
            if self._pending:  # cancelled (the loop closing): the writes left fail, none hangs
                for _, _, future in self._pending:
                    if not future.done():
                        future.set_exception(RuntimeError("the database writer stopped"))
                self._pending = []

    async def _write_batch(
        self, connection: Any, batch: list[tuple[list[Any], list[list[Any]], asyncio.Future[None]]]
    ) -> None:
        try:
            await self._execute(connection, [(row, jobs) for row, jobs, _ in batch])
        except asyncio.CancelledError:
            for _, _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:
            if unavailable(exc):  # every write would wait as long again: they all fail now
                waiting, self._pending = self._pending, []
                for _, _, future in [*batch, *waiting]:
                    _settle(future, exc)
                return
            if len(batch) == 1:
                _settle(batch[0][2], exc)
                return
            for row, jobs, future in batch:  # which one is refused: each on its own
                try:
                    await self._execute(connection, [(row, jobs)])
                except asyncio.CancelledError:
                    raise
                except Exception as one:
                    _settle(future, one)
                else:
                    _settle(future, None)
            return
        for _, _, future in batch:
            _settle(future, None)

    async def _execute(self, connection: Any, rows: list[tuple[list[Any], list[list[Any]]]]) -> None:
        if self._statement is None:
            self._statement = _statement()
        execution_columns = [list(column) for column in zip(*(row for row, _ in rows))]
        all_jobs = [job for _, jobs in rows for job in jobs]
        width = len(columns.JOB_COLUMNS)
        job_columns = [list(column) for column in zip(*all_jobs)] if all_jobs else [[] for _ in range(width)]
        await connection.execute_query(self._statement, [*execution_columns, *job_columns])


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
