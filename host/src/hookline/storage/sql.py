"""The writes every webhook call makes, written once per dialect instead of built by the ORM
each time.

Building a query with tortoise (a model instance, pypika's copies, field validation) costs more
CPU than running it: about a millisecond per statement, several per call. These few statements
are fixed, so their SQL is made once per dialect (``?`` for SQLite, ``$1`` for PostgreSQL) and
their values are converted by the models' own fields (:mod:`hookline.storage.columns`). Each
write comes in two forms: a coroutine on tortoise's connection, and a ``*_sqlite`` function
returning a :data:`SqliteWrite` for the group commit (:mod:`hookline.storage.group_commit`).
The per-call reads are :mod:`hookline.storage.readers`'; everything else goes through the ORM.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient

from hookline.storage.columns import (
    JOB_COLUMNS,
    JOBS_PER_STATEMENT,
    KNOWN_COLUMNS,
    OUTCOME_COLUMNS,
    convert,
    names,
)
from hookline.storage.connection import dialect
from hookline.storage.models import Execution, ExecutionStatus, Job

#: A write for the group commit: run on aiosqlite's connection, in its thread.
SqliteWrite = Callable[[sqlite3.Connection], Any]


class _Statements:
    """The SQL of one dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        numbered = dialect != "sqlite"
        self._numbered = numbered

        def marks(count: int, start: int = 1) -> list[str]:
            return [f"${n}" if numbered else "?" for n in range(start, start + count)]

        self.marks = marks
        self._insert_jobs: dict[int, str] = {}
        execution = Execution._meta.db_table
        sets = ", ".join(f'"{name}"={mark}' for name, mark in zip(OUTCOME_COLUMNS, marks(len(OUTCOME_COLUMNS))))
        where = marks(3, len(OUTCOME_COLUMNS) + 1)
        self.store_outcome = (
            f'UPDATE "{execution}" SET {sets} WHERE "id"={where[0]} AND "status"={where[1]} AND "owner"={where[2]}'
        )
        self.insert_known = (
            f'INSERT INTO "{execution}" ({names(KNOWN_COLUMNS)}) VALUES ({", ".join(marks(len(KNOWN_COLUMNS)))})'
        )
        gone = marks(3)
        self.discard = (
            f'DELETE FROM "{execution}" WHERE "id"={gone[0]} AND "status"={gone[1]} AND "owner"={gone[2]} '
            'AND "dedup_key" IS NULL'
        )
        if numbered:
            self.reserve_ids = (
                f"SELECT nextval(pg_get_serial_sequence('\"{execution}\"', 'id')) AS \"id\" FROM generate_series(1, $1)"
            )
        else:
            self.reserve_ids = 'UPDATE sqlite_sequence SET "seq" = "seq" + ? WHERE "name" = ? RETURNING "seq"'
        claim = marks(5)
        self.claim_queued = (
            f'UPDATE "{execution}" SET "status"={claim[0]}, "started_at"={claim[1]}, "owner"={claim[2]} '
            f'WHERE "id"={claim[3]} AND "status"={claim[4]}'
        )
        self.claim_and_load = f'{self.claim_queued} RETURNING "version_id", "context", "mode"'

    def insert_jobs(self, count: int) -> str:
        query = self._insert_jobs.get(count)
        if query is None:
            width = len(JOB_COLUMNS)
            rows = ", ".join(f"({', '.join(self.marks(width, 1 + i * width))})" for i in range(count))
            query = f'INSERT INTO "{Job._meta.db_table}" ({names(JOB_COLUMNS)}) VALUES {rows}'
            if count <= 64:  # the usual workflow sizes; a rare long one is built again
                self._insert_jobs[count] = query
        return query


_STATEMENTS: dict[str, _Statements] = {}


def _statements(connection: BaseDBAsyncClient) -> _Statements:
    return _statements_of(dialect(connection))


def _statements_of(dialect: str) -> _Statements:
    statements = _STATEMENTS.get(dialect)
    if statements is None:
        statements = _STATEMENTS[dialect] = _Statements(dialect)
    return statements


async def store_outcome(
    connection: BaseDBAsyncClient, execution_id: int, owner: str, values: dict[str, Any], jobs: list[dict[str, Any]]
) -> bool:
    """Finish the execution if this process still owns it, then add its jobs, in the caller's
    transaction (on PostgreSQL the store batches these: :mod:`hookline.storage.pg_batch`).
    Returns ``False`` (and writes nothing) when it is no longer this process's."""
    statements = _statements(connection)
    updated, _ = await connection.execute_query(statements.store_outcome, _outcome_params(execution_id, owner, values))
    if not updated:
        return False
    for query, chunk in _job_inserts(statements, jobs):
        await connection.execute_query(query, chunk)
    return True


def _outcome_params(execution_id: int, owner: str, values: dict[str, Any]) -> list[Any]:
    """The values of the outcome's ``UPDATE``: its columns, then its condition (the row is still
    ``running`` and ``owner``'s)."""
    return [*convert(Execution, OUTCOME_COLUMNS, values), execution_id, ExecutionStatus.RUNNING.value, owner]


async def claim_queued(connection: BaseDBAsyncClient, execution_id: int, owner: str, now: Any) -> bool:
    """Take a queued execution to run it (``running``, owned by ``owner``); ``False`` if another
    process took it first."""
    claimed, _ = await connection.execute_query(
        _statements(connection).claim_queued, _claim_params(execution_id, owner, now)
    )
    return bool(claimed)


async def claim_and_load(connection: BaseDBAsyncClient, execution_id: int, owner: str, now: Any) -> Claimed | None:
    """:func:`claim_queued`, returning what running the execution needs (one round trip
    instead of the claim and a read); ``None`` if another process took it first."""
    rows = await connection.execute_query_dict(
        _statements(connection).claim_and_load, _claim_params(execution_id, owner, now)
    )
    return _claimed(rows[0]["version_id"], rows[0]["context"], rows[0]["mode"]) if rows else None


class Claimed(NamedTuple):
    """A claimed execution: what running it needs."""

    version_id: int
    context: Any
    mode: str


def _claim_params(execution_id: int, owner: str, now: Any) -> list[Any]:
    started = Execution._meta.fields_map["started_at"].to_db_value(now, Execution)
    return [ExecutionStatus.RUNNING.value, started, owner, execution_id, ExecutionStatus.QUEUED.value]


def _claimed(version_id: int, context: Any, mode: str) -> Claimed:
    return Claimed(version_id, Execution._meta.fields_map["context"].to_python_value(context), mode)


def store_outcome_sqlite(
    execution_id: int, owner: str, values: dict[str, Any], jobs: list[dict[str, Any]]
) -> SqliteWrite:
    """:func:`store_outcome` as a write for :class:`~hookline.storage.group_commit.GroupCommit`."""
    statements = _statements_of("sqlite")
    outcome = _outcome_params(execution_id, owner, values)
    inserts = _job_inserts(statements, jobs)

    def write(connection: sqlite3.Connection) -> bool:
        if not connection.execute(statements.store_outcome, outcome).rowcount:
            return False
        for query, params in inserts:
            connection.execute(query, params)
        return True

    return write


def claim_queued_sqlite(execution_id: int, owner: str, now: Any) -> SqliteWrite:
    """:func:`claim_queued` as a write for :class:`~hookline.storage.group_commit.GroupCommit`."""
    query = _statements_of("sqlite").claim_queued
    params = _claim_params(execution_id, owner, now)
    return lambda connection: bool(connection.execute(query, params).rowcount)


def claim_and_load_sqlite(execution_id: int, owner: str, now: Any) -> SqliteWrite:
    """:func:`claim_and_load` as a write for the group commit (its result is read in the
    connection's thread, decoded by the caller: see :func:`claimed`)."""
    query = _statements_of("sqlite").claim_and_load
    params = _claim_params(execution_id, owner, now)
    # fetchall: the statement is run to its end before the savepoint is released.
    return lambda connection: connection.execute(query, params).fetchall()


def claimed(rows: list[tuple[int, Any, str]]) -> Claimed | None:
    """What :func:`claim_and_load_sqlite`'s write returned, decoded."""
    return _claimed(*rows[0]) if rows else None


async def reserve_ids(connection: BaseDBAsyncClient, count: int) -> list[int]:
    """``count`` execution ids no other insert will take: on PostgreSQL from the table's
    sequence; on SQLite the table's ``AUTOINCREMENT`` counter moves past them (in the caller's
    transaction: see :func:`reserve_ids_in_transaction`)."""
    statements = _statements(connection)
    if statements.dialect != "sqlite":
        rows = await connection.execute_query_dict(statements.reserve_ids, [count])
        return [int(row["id"]) for row in rows]
    table = Execution._meta.db_table
    _, rows = await connection.execute_query(statements.reserve_ids, [count, table])
    if rows:
        last = int(rows[0][0])
    else:  # the table never had a row: its counter starts from the largest id (0)
        _, rows = await connection.execute_query(f'SELECT coalesce(max("id"), 0) FROM "{table}"')
        last = int(rows[0][0]) + count
        await connection.execute_query('INSERT INTO sqlite_sequence ("name", "seq") VALUES (?, ?)', [table, last])
    return list(range(last - count + 1, last + 1))


def reserve_ids_in_transaction(connection: BaseDBAsyncClient) -> bool:
    """Whether :func:`reserve_ids` takes several statements (SQLite), needing a transaction."""
    return dialect(connection) == "sqlite"


def reserve_ids_sqlite(count: int) -> SqliteWrite:
    """:func:`reserve_ids` as a write for the group commit."""
    return lambda connection: _reserve_sqlite_ids(connection, count)


def _reserve_sqlite_ids(connection: Any, count: int) -> list[int]:
    table = Execution._meta.db_table
    row = connection.execute(_statements_of("sqlite").reserve_ids, (count, table)).fetchone()
    if row is None:  # the table never had a row: its counter starts from the largest id (0)
        largest = connection.execute(f'SELECT coalesce(max("id"), 0) FROM "{table}"').fetchone()[0]
        connection.execute('INSERT INTO sqlite_sequence ("name", "seq") VALUES (?, ?)', (table, largest + count))
        last = largest + count
    else:
        last = int(row[0])
    return list(range(last - count + 1, last + 1))


async def insert_known(connection: BaseDBAsyncClient, values: dict[str, Any]) -> None:
    """Create an execution row with its id (one of :func:`reserve_ids`). Raises tortoise's
    ``IntegrityError`` when a constraint refuses it (an idempotency key already held)."""
    await connection.execute_query(_statements(connection).insert_known, convert(Execution, KNOWN_COLUMNS, values))


def insert_known_sqlite(values: dict[str, Any]) -> SqliteWrite:
    """:func:`insert_known` as a write for the group commit."""
    query = _statements_of("sqlite").insert_known
    params = convert(Execution, KNOWN_COLUMNS, values)
    return lambda connection: connection.execute(query, params) and None


async def insert_finished(connection: BaseDBAsyncClient, values: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    """Create a finished execution with its id, and its jobs, in the caller's transaction (on
    PostgreSQL the store batches these: :mod:`hookline.storage.pg_batch`)."""
    statements = _statements(connection)
    await connection.execute_query(statements.insert_known, convert(Execution, KNOWN_COLUMNS, values))
    for query, chunk in _job_inserts(statements, jobs):
        await connection.execute_query(query, chunk)


def insert_finished_sqlite(values: dict[str, Any], jobs: list[dict[str, Any]]) -> SqliteWrite:
    """:func:`insert_finished` as a write for the group commit."""
    statements = _statements_of("sqlite")
    params = convert(Execution, KNOWN_COLUMNS, values)
    inserts = _job_inserts(statements, jobs)

    def write(connection: sqlite3.Connection) -> None:
        connection.execute(statements.insert_known, params)
        for query, chunk in inserts:
            connection.execute(query, chunk)

    return write


def _job_inserts(statements: _Statements, jobs: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The INSERTs of ``jobs``, ``JOBS_PER_STATEMENT`` at a time, with their values."""
    inserts = []
    for start in range(0, len(jobs), JOBS_PER_STATEMENT):
        chunk = jobs[start : start + JOBS_PER_STATEMENT]
        params: list[Any] = []
        for job in chunk:
            params.extend(convert(Job, JOB_COLUMNS, job))
        inserts.append((statements.insert_jobs(len(chunk)), params))
    return inserts


async def discard(connection: BaseDBAsyncClient, execution_id: int, owner: str) -> bool:
    """Delete a run of ``owner``'s that ended (it is not to be kept), unless it holds an
    idempotency key; ``False`` if nothing was deleted."""
    deleted, _ = await connection.execute_query(
        _statements(connection).discard, [execution_id, ExecutionStatus.RUNNING.value, owner]
    )
    return bool(deleted)


def discard_sqlite(execution_id: int, owner: str) -> SqliteWrite:
    """:func:`discard` as a write for the group commit."""
    query = _statements_of("sqlite").discard
    params = [execution_id, ExecutionStatus.RUNNING.value, owner]
    return lambda connection: bool(connection.execute(query, params).rowcount)
