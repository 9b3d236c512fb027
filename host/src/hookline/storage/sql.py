"""The statements every webhook call makes, written once per dialect instead of built by the ORM
each time.

Building a query with tortoise (a model instance, pypika's copies, field validation) costs more
CPU than running it: about a millisecond per statement, several per call. These few statements
are fixed, so their SQL is made once per dialect (``?`` for SQLite, ``$1`` for PostgreSQL) and
their values are converted by the models' own fields, as tortoise would (enums, JSON text,
datetimes). Everything else goes through the ORM.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model
from tortoise.transactions import in_transaction

from hookline.storage.models import Execution, ExecutionStatus, Job, Workflow

log = logging.getLogger("hookline.storage")
T = TypeVar("T")

#: Columns written when an execution is created (the others keep their defaults: NULL).
EXECUTION_COLUMNS = (
    "workflow_id",
    "version_id",
    "status",
    "mode",
    "trigger_type",
    "context",
    "created_at",
    "started_at",
    "owner",
    "dedup_key",
    "dedup_until",
    "replay_of",
    "queued_at",
)
JOB_COLUMNS = (
    "execution_id",
    "position",
    "node",
    "type",
    "status",
    "input",
    "result",
    "branch",
    "error",
    "started_at",
    "finished_at",
)
#: Jobs per INSERT: far below the databases' limits on parameters (32766 SQLite, 32767 PostgreSQL).
JOBS_PER_STATEMENT = 500
#: What finishing an execution writes.
OUTCOME_COLUMNS = ("status", "error", "reply", "finished_at")


def default_connection() -> BaseDBAsyncClient:
    return connections.get("default")


def _dialect(connection: BaseDBAsyncClient) -> str:
    return "sqlite" if connection.capabilities.dialect == "sqlite" else "postgres"


class _Statements:
    """The SQL of one dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        numbered = dialect != "sqlite"
        self._numbered = numbered

        def marks(count: int, start: int = 1) -> list[str]:
            return [f"${n}" if numbered else "?" for n in range(start, start + count)]

        self.marks = marks
        execution = Execution._meta.db_table
        self.insert_execution = (
            f'INSERT INTO "{execution}" ({_names(EXECUTION_COLUMNS)}) '
            f'VALUES ({", ".join(marks(len(EXECUTION_COLUMNS)))}) RETURNING "id"'
        )
        sets = ", ".join(f'"{name}"={mark}' for name, mark in zip(OUTCOME_COLUMNS, marks(len(OUTCOME_COLUMNS))))
        where = marks(3, len(OUTCOME_COLUMNS) + 1)
        self.store_outcome = (
            f'UPDATE "{execution}" SET {sets} WHERE "id"={where[0]} AND "status"={where[1]} AND "owner"={where[2]}'
        )
        claim = marks(5)
        self.claim_queued = (
            f'UPDATE "{execution}" SET "status"={claim[0]}, "started_at"={claim[1]}, "owner"={claim[2]} '
            f'WHERE "id"={claim[3]} AND "status"={claim[4]}'
        )
        workflow = Workflow._meta.db_table
        self.find_workflow = (
            f'SELECT "id", "key", "enabled", "current_version_id" FROM "{workflow}" WHERE "key"={marks(1)[0]}'
        )

    def insert_jobs(self, count: int) -> str:
        width = len(JOB_COLUMNS)
        rows = ", ".join(f"({', '.join(self.marks(width, 1 + i * width))})" for i in range(count))
        return f'INSERT INTO "{Job._meta.db_table}" ({_names(JOB_COLUMNS)}) VALUES {rows}'


_STATEMENTS: dict[str, _Statements] = {}


def _statements(connection: BaseDBAsyncClient) -> _Statements:
    dialect = _dialect(connection)
    statements = _STATEMENTS.get(dialect)
    if statements is None:
        statements = _STATEMENTS[dialect] = _Statements(dialect)
    return statements


def _names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


_FIELDS: dict[type[Model], dict[str, Any]] = {}


def _convert(model: type[Model], columns: Sequence[str], values: dict[str, Any]) -> list[Any]:
    """Values as the model's fields store them (what tortoise's executor does)."""
    by_column = _FIELDS.get(model)
    if by_column is None:
        fields = model._meta.fields_map
        by_column = _FIELDS[model] = {field.source_field or name: field for name, field in fields.items()}
    return [
        None if values.get(column) is None else by_column[column].to_db_value(values[column], model)
        for column in columns
    ]


async def insert_execution(values: dict[str, Any], connection: BaseDBAsyncClient | None = None) -> int:
    """Create an execution row; returns its id. Raises tortoise's ``IntegrityError`` when a
    constraint refuses it (an idempotency key already held)."""
    connection = connection or default_connection()
    rows = await connection.execute_query_dict(
        _statements(connection).insert_execution, _convert(Execution, EXECUTION_COLUMNS, values)
    )
    return int(rows[0]["id"])


async def store_outcome(
    connection: BaseDBAsyncClient, execution_id: int, owner: str, values: dict[str, Any], jobs: list[dict[str, Any]]
) -> bool:
    """In the caller's transaction: finish the execution if this process still owns it, then
    add its jobs. Returns ``False`` (and writes nothing) when it is no longer this process's."""
    statements = _statements(connection)
    updated, _ = await connection.execute_query(
        statements.store_outcome,
        [*_convert(Execution, OUTCOME_COLUMNS, values), execution_id, ExecutionStatus.RUNNING.value, owner],
    )
    if not updated:
        return False
    for start in range(0, len(jobs), JOBS_PER_STATEMENT):
        chunk = jobs[start : start + JOBS_PER_STATEMENT]
        params: list[Any] = []
        for job in chunk:
            params.extend(_convert(Job, JOB_COLUMNS, job))
        await connection.execute_query(statements.insert_jobs(len(chunk)), params)
    return True


async def claim_queued(connection: BaseDBAsyncClient, execution_id: int, owner: str, now: Any) -> bool:
    """Take a queued execution to run it (``running``, owned by ``owner``); ``False`` if another
    process took it first."""
    started = Execution._meta.fields_map["started_at"].to_db_value(now, Execution)
    claimed, _ = await connection.execute_query(
        _statements(connection).claim_queued,
        [ExecutionStatus.RUNNING.value, started, owner, execution_id, ExecutionStatus.QUEUED.value],
    )
    return bool(claimed)


async def find_workflow(key: str) -> dict[str, Any] | None:
    """``id``, ``key``, ``enabled`` and ``current_version_id`` of workflow ``key``."""
    connection = default_connection()
    rows = await connection.execute_query_dict(_statements(connection).find_workflow, [key])
    if not rows:
        return None
    row = dict(rows[0])
    row["enabled"] = bool(row["enabled"])
    return row


class GroupCommit:
    """Writes of concurrent calls committed together: one transaction, one commit (one fsync on
    SQLite) for all the executions recorded or finished meanwhile, instead of one each. Each
    caller's ``await`` returns once the transaction holding its write is committed, so an answer
    still means the write is durable.

    Each write is all or nothing (a savepoint): one that fails (a constraint) fails alone. Used
    on SQLite, whose one connection runs statements one after another anyway and where a commit
    costs an fsync. On PostgreSQL concurrent connections commit in parallel, and writes go
    straight to the database.
    """

    #: Most writes in one transaction.
    MAX_BATCH = 256

    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[BaseDBAsyncClient], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    @staticmethod
    def applies() -> bool:
        return _dialect(default_connection()) == "sqlite"

    async def run(self, write: Callable[[BaseDBAsyncClient], Awaitable[T]]) -> T:
        """Run ``write(connection)`` in the next group's transaction; its result once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return await asyncio.shield(future)

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            try:
                async with in_transaction() as connection:
                    for write, future in batch:
                        # Each write all or nothing, within the group's transaction.
                        await connection.execute_query("SAVEPOINT hookline_write")
                        try:
                            result = await write(connection)
                        except Exception as exc:  # this write fails alone
                            await connection.execute_query("ROLLBACK TO hookline_write")
                            await connection.execute_query("RELEASE hookline_write")
                            outcomes.append((future, None, exc))
                        else:
                            await connection.execute_query("RELEASE hookline_write")
                            outcomes.append((future, result, None))
            except BaseException as exc:  # the commit failed: none of them is durable
                if not isinstance(exc, Exception):  # cancelled (shutdown): fail the waiting ones too
                    batch, self._pending = batch + self._pending, []
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the writer stopped"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for future, result, error in outcomes:
                if future.done():
                    continue
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
