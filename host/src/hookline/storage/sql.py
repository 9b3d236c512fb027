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
import json
import logging
import sqlite3
import threading
import weakref
from datetime import datetime
from typing import Any, Callable, Iterable, NamedTuple, Sequence, TypeVar
from urllib.parse import quote

import aiosqlite
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields import BigIntField, CharField, DatetimeField, IntField, JSONField, TextField
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.validators import MaxLengthValidator

from hookline import jsontext
from hookline.storage.models import Execution, ExecutionStatus, Job, Workflow, WorkflowVersion

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
#: Columns written when an execution is created with an id of this process's (see
#: :func:`reserve_ids`), finished or not.
KNOWN_COLUMNS = ("id", *EXECUTION_COLUMNS, "reply", "error", "finished_at")
#: Jobs per INSERT: far below the databases' limits on parameters (32766 SQLite, 32767 PostgreSQL).
JOBS_PER_STATEMENT = 500
#: What finishing an execution writes.
OUTCOME_COLUMNS = ("status", "error", "reply", "finished_at")


def default_connection() -> BaseDBAsyncClient:
    """tortoise's ``default`` client. Looking it up through tortoise's context costs more than
    a statement's conversion, and the hot path needs it several times per call: an open SQLite
    client is kept per event loop, until its connection is closed (``close_database``, or
    tortoise replacing it)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return connections.get("default")
    client = _DEFAULTS.get(loop)
    if client is not None and client._connection is not None:
        return client
    client = connections.get("default")
    if _sqlite_client(client) is not None and client._connection is not None:
        _DEFAULTS[loop] = client
    else:
        _DEFAULTS.pop(loop, None)
    return client


#: See :func:`default_connection`.
_DEFAULTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def dialect(connection: BaseDBAsyncClient) -> str:
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
        self._insert_jobs: dict[int, str] = {}
        self._finish_with_jobs: dict[int, str] = {}
        execution = Execution._meta.db_table
        self.insert_execution = (
            f'INSERT INTO "{execution}" ({names(EXECUTION_COLUMNS)}) '
            f'VALUES ({", ".join(marks(len(EXECUTION_COLUMNS)))}) RETURNING "id"'
        )
        sets = ", ".join(f'"{name}"={mark}' for name, mark in zip(OUTCOME_COLUMNS, marks(len(OUTCOME_COLUMNS))))
        where = marks(3, len(OUTCOME_COLUMNS) + 1)
        self.store_outcome = (
            f'UPDATE "{execution}" SET {sets} WHERE "id"={where[0]} AND "status"={where[1]} AND "owner"={where[2]}'
        )
        self.insert_known = (
            f'INSERT INTO "{execution}" ({names(KNOWN_COLUMNS)}) VALUES ({", ".join(marks(len(KNOWN_COLUMNS)))})'
        )
        self._insert_finished: dict[int, str] = {}
        gone = marks(3)
        self.discard = (
            f'DELETE FROM "{execution}" WHERE "id"={gone[0]} AND "status"={gone[1]} AND "owner"={gone[2]} '
            'AND "dedup_key" IS NULL'
        )
        if numbered:
            self.reserve_ids = (
                f"SELECT nextval(pg_get_serial_sequence('\"{execution}\"', 'id')) AS \"id\" "
                "FROM generate_series(1, $1)"
            )
        else:
            self.reserve_ids = 'UPDATE sqlite_sequence SET "seq" = "seq" + ? WHERE "name" = ? RETURNING "seq"'
        claim = marks(5)
        self.claim_queued = (
            f'UPDATE "{execution}" SET "status"={claim[0]}, "started_at"={claim[1]}, "owner"={claim[2]} '
            f'WHERE "id"={claim[3]} AND "status"={claim[4]}'
        )
        self.claim_and_load = f'{self.claim_queued} RETURNING "version_id", "context", "mode"'
        workflow = Workflow._meta.db_table
        self.find_workflow = (
            f'SELECT "id", "key", "enabled", "current_version_id" FROM "{workflow}" WHERE "key"={marks(1)[0]}'
        )
        self.read_version = (
            f'SELECT "number", "definition" FROM "{WorkflowVersion._meta.db_table}" WHERE "id"={marks(1)[0]}'
        )
        survey = marks(3)
        self.current_definitions = (
            f'SELECT w."id", w."key", v."id", v."definition" FROM "{workflow}" w '
            f'JOIN "{WorkflowVersion._meta.db_table}" v ON v."id" = w."current_version_id" '
            f'WHERE w."enabled" = {survey[0]} AND w."id" > {survey[1]} ORDER BY w."id" LIMIT {survey[2]}'
        )

    def finish_with_jobs(self, count: int) -> str:
        """PostgreSQL: :func:`store_outcome` as one statement, atomic by itself (no transaction:
        one round trip instead of four). The jobs are inserted only if the update matched (the
        execution is still this process's); it returns one row, ``updated`` (0 or 1). The
        values' types are cast, as the columns of ``INSERT ... SELECT`` do not give them."""
        query = self._finish_with_jobs.get(count)
        if query is not None:
            return query
        execution = Execution._meta.db_table
        outcome = len(OUTCOME_COLUMNS)
        sets = ", ".join(f'"{name}"={mark}' for name, mark in zip(OUTCOME_COLUMNS, self.marks(outcome)))
        where = self.marks(3, outcome + 1)
        width = len(JOB_COLUMNS)
        casts = postgres_types(Job, JOB_COLUMNS)
        rows = ", ".join(
            "(" + ", ".join(f"{m}::{cast}" for m, cast in zip(self.marks(width, outcome + 4 + i * width), casts)) + ")"
            for i in range(count)
        )
        jobs = (
            f', jobs AS (INSERT INTO "{Job._meta.db_table}" ({names(JOB_COLUMNS)}) '
            f"SELECT * FROM (VALUES {rows}) AS v WHERE EXISTS (SELECT 1 FROM done))"
            if count
            else ""
        )
        query = (
            f'WITH done AS (UPDATE "{execution}" SET {sets} WHERE "id"={where[0]} AND "status"={where[1]} '
            f'AND "owner"={where[2]} RETURNING "id"){jobs} '
            'SELECT count(*) AS "updated" FROM done'
        )
        if count <= 64:
            self._finish_with_jobs[count] = query
        return query

    def insert_finished(self, count: int) -> str:
        """PostgreSQL: a finished execution and its ``count`` jobs inserted by one statement,
        atomic by itself (see :func:`finish_with_jobs` for the casts)."""
        query = self._insert_finished.get(count)
        if query is not None:
            return query
        execution = Execution._meta.db_table
        width = len(JOB_COLUMNS)
        casts = postgres_types(Job, JOB_COLUMNS)
        first = len(KNOWN_COLUMNS) + 1
        rows = ", ".join(
            "(" + ", ".join(f"{m}::{cast}" for m, cast in zip(self.marks(width, first + i * width), casts)) + ")"
            for i in range(count)
        )
        query = (
            f'WITH done AS (INSERT INTO "{execution}" ({names(KNOWN_COLUMNS)}) '
            f'VALUES ({", ".join(self.marks(len(KNOWN_COLUMNS)))}) RETURNING "id") '
            f'INSERT INTO "{Job._meta.db_table}" ({names(JOB_COLUMNS)}) '
            f"SELECT * FROM (VALUES {rows}) AS v WHERE EXISTS (SELECT 1 FROM done)"
        )
        if count <= 64:
            self._insert_finished[count] = query
        return query

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


def postgres_types(model: type[Model], columns: Sequence[str]) -> list[str]:
    """The PostgreSQL type of each column (``BIGINT``, ``JSONB``, ``VARCHAR(64)``...), as
    tortoise creates them (the models are initialised by then)."""
    by_column = {field.source_field or name: field for name, field in model._meta.fields_map.items()}
    return [by_column[column].get_for_dialect("postgres", "SQL_TYPE") for column in columns]


def names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


_CONVERTERS: dict[type[Model], dict[str, Callable[[Any], Any]]] = {}


def convert(model: type[Model], columns: Sequence[str], values: dict[str, Any]) -> list[Any]:
    """Values as the model's fields store them (what tortoise's executor does)."""
    converters = _CONVERTERS.get(model)
    if converters is None:
        fields = model._meta.fields_map
        converters = _CONVERTERS[model] = {
            field.source_field or name: _converter(model, field) for name, field in fields.items()
        }
    return [None if (value := values.get(column)) is None else converters[column](value) for column in columns]


def _converter(model: type[Model], field: Any) -> Callable[[Any], Any]:
    """``field.to_db_value``, without its generic checks for the values the hot path writes
    (checked here once per field rather than on every value): what it would return for them."""

    def generic(value: Any) -> Any:
        return field.to_db_value(value, model)

    if isinstance(field, CharEnumFieldInstance) and _only_max_length(field):
        # The enum's own values are checked against max_length once.
        enum, limit = field.enum_type, field.max_length
        if all(len(str(member.value)) <= limit for member in enum):
            return lambda value: str(value.value) if type(value) is enum else generic(value)
        return generic
    if type(field) is CharField and _only_max_length(field):
        limit = field.max_length
        return lambda value: value if type(value) is str and len(value) <= limit else generic(value)
    if field.validators:
        return generic
    if isinstance(field, JSONField):
        encode = field.encoder
        # A str or bytes is taken as JSON already encoded (and checked): that stays generic.
        return lambda value: encode(value) if type(value) in (dict, list) else generic(value)
    if type(field) in (IntField, BigIntField):
        return lambda value: value if type(value) is int else generic(value)
    if type(field) is TextField:
        return lambda value: value if type(value) is str else generic(value)
    if type(field) is DatetimeField and not (field.auto_now or field.auto_now_add):
        # An aware datetime is stored as it is, whatever the time zone settings.
        return lambda value: value if type(value) is datetime and value.tzinfo is not None else generic(value)
    return generic


def _only_max_length(field: Any) -> bool:
    return len(field.validators) == 1 and isinstance(field.validators[0], MaxLengthValidator)


async def insert_execution(values: dict[str, Any], connection: BaseDBAsyncClient | None = None) -> int:
    """Create an execution row; returns its id. Raises tortoise's ``IntegrityError`` when a
    constraint refuses it (an idempotency key already held)."""
    connection = connection or default_connection()
    rows = await connection.execute_query_dict(
        _statements(connection).insert_execution, convert(Execution, EXECUTION_COLUMNS, values)
    )
    return int(rows[0]["id"])


async def store_outcome(
    connection: BaseDBAsyncClient, execution_id: int, owner: str, values: dict[str, Any], jobs: list[dict[str, Any]]
) -> bool:
    """Finish the execution if this process still owns it, then add its jobs. Returns ``False``
    (and writes nothing) when it is no longer this process's. On PostgreSQL, with at most
    ``JOBS_PER_STATEMENT`` jobs, one statement (see :func:`outcome_in_one_statement`); else in
    the caller's transaction."""
    statements = _statements(connection)
    if outcome_in_one_statement(connection, len(jobs)):
        params = _outcome_params(execution_id, owner, values)
        for job in jobs:
            params.extend(convert(Job, JOB_COLUMNS, job))
        rows = await connection.execute_query_dict(statements.finish_with_jobs(len(jobs)), params)
        return bool(rows[0]["updated"])
    updated, _ = await connection.execute_query(
        statements.store_outcome,
        _outcome_params(execution_id, owner, values),
    )
    if not updated:
        return False
    for start in range(0, len(jobs), JOBS_PER_STATEMENT):
        chunk = jobs[start : start + JOBS_PER_STATEMENT]
        params: list[Any] = []
        for job in chunk:
            params.extend(convert(Job, JOB_COLUMNS, job))
        await connection.execute_query(statements.insert_jobs(len(chunk)), params)
    return True


def _outcome_params(execution_id: int, owner: str, values: dict[str, Any]) -> list[Any]:
    """The values of the outcome's ``UPDATE``: its columns, then its condition (the row is still
    ``running`` and ``owner``'s)."""
    return [*convert(Execution, OUTCOME_COLUMNS, values), execution_id, ExecutionStatus.RUNNING.value, owner]


def outcome_in_one_statement(connection: BaseDBAsyncClient, jobs: int) -> bool:
    """Whether :func:`store_outcome` is one statement, needing no transaction around it."""
    return dialect(connection) == "postgres" and jobs <= JOBS_PER_STATEMENT


async def claim_queued(connection: BaseDBAsyncClient, execution_id: int, owner: str, now: Any) -> bool:
    """Take a queued execution to run it (``running``, owned by ``owner``); ``False`` if another
    process took it first."""
    claimed, _ = await connection.execute_query(
        _statements(connection).claim_queued, _claim_params(execution_id, owner, now)
    )
    return bool(claimed)


async def claim_and_load(
    connection: BaseDBAsyncClient, execution_id: int, owner: str, now: Any
) -> Claimed | None:
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


async def find_workflow(key: str) -> dict[str, Any] | None:
    """``id``, ``key``, ``enabled`` and ``current_version_id`` of workflow ``key``. Read on
    every call, so that a change made by any process applies at once."""
    found = await _read_one(lambda statements: statements.find_workflow, (key,))
    if found is None:
        return None
    return {"id": found[0], "key": found[1], "enabled": bool(found[2]), "current_version_id": found[3]}


async def read_version(version_id: int) -> tuple[int, str] | None:
    """The ``number`` of workflow version ``version_id`` and its definition as the stored JSON
    text (decoded by the caller, who also weighs it by its length), or ``None``."""
    found = await _read_one(lambda statements: statements.read_version, (version_id,))
    if found is None:
        return None
    number, definition = found
    return number, definition if isinstance(definition, str) else jsontext.encode(definition)


async def current_definitions(after: int, limit: int) -> list[tuple[int, str, int, Any]]:
    """``(id, key, current version id, its definition)`` of up to ``limit`` enabled workflows
    whose id is above ``after``, by id: a survey of every stored workflow, a batch at a time.
    One statement per batch, without the ORM's objects: ten thousand workflows are read (and
    their definitions decoded) in a fraction of a second."""
    connection = default_connection()
    _, rows = await connection.execute_query(_statements(connection).current_definitions, [True, after, limit])
    return [
        (row[0], row[1], row[2], json.loads(row[3]) if isinstance(row[3], (str, bytes)) else row[3]) for row in rows
    ]


async def _read_one(query: Callable[[_Statements], str], params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The first row of ``query`` (chosen in the dialect's statements): on SQLite, from the
    read-only connection of this thread (:func:`_read_here`); elsewhere, or where that does not
    apply, through the ORM's connection."""
    connection = default_connection()
    found = _read_here(connection, query(_statements_of("sqlite")), params)
    if found is not False:
        return found
    _, rows = await connection.execute_query(query(_statements(connection)), list(params))
    return tuple(rows[0]) if rows else None


#: Read-only SQLite connections of this thread, by database file.
_readers = threading.local()


def _read_here(client: BaseDBAsyncClient, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None | bool:
    """On a SQLite file: ``query``'s first row read on a read-only connection of the calling
    thread, without a round trip to aiosqlite's thread nor a wait for its lock (held while a
    group commits). For indexed SELECTs: microseconds; in WAL mode a reader waits for no
    writer, and sees every commit made before it. ``False`` where it does not apply
    (PostgreSQL, an in-memory database) or fails: then the ORM's connection is used."""
    path = getattr(client, "filename", None)
    if dialect(client) != "sqlite" or not isinstance(path, str) or path == ":memory:" or path.startswith("file:"):
        return False
    readers: dict[str, sqlite3.Connection | None] = _readers.__dict__.setdefault("by_path", {})
    try:
        reader = readers.get(path)
        if reader is None:
            reader = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None)
            if reader.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # Outside WAL a writer blocks readers: the loop would wait on it. Not here, then.
                reader.close()
                readers[path] = None
                return False
            reader.execute("PRAGMA busy_timeout=200")
            readers[path] = reader
        if reader is None:
            return False
        row = reader.execute(query, params).fetchone()
    except sqlite3.Error:
        log.debug("read-only query on %s failed; using the ORM's connection", path, exc_info=True)
        close_readers(path)
        return False
    return None if row is None else tuple(row)


def close_readers(path: str | None = None) -> None:
    """Close this thread's read-only connections (of ``path``, or all): when the database closes."""
    readers: dict[str, sqlite3.Connection | None] = _readers.__dict__.get("by_path", {})
    for name in [path] if path is not None else list(readers):
        reader = readers.pop(name, None)
        if reader is not None:
            reader.close()


SqliteWrite = Callable[[sqlite3.Connection], Any]


def insert_execution_sqlite(values: dict[str, Any]) -> SqliteWrite:
    """:func:`insert_execution` as a write for :class:`~hookline.storage.group_commit.GroupCommit` (values converted now)."""
    query = _statements_of("sqlite").insert_execution
    params = convert(Execution, EXECUTION_COLUMNS, values)
    return lambda connection: int(connection.execute(query, params).fetchone()[0])


def store_outcome_sqlite(execution_id: int, owner: str, values: dict[str, Any], jobs: list[dict[str, Any]]) -> SqliteWrite:
    """:func:`store_outcome` as a write for :class:`~hookline.storage.group_commit.GroupCommit`."""
    statements = _statements_of("sqlite")
    outcome = _outcome_params(execution_id, owner, values)
    inserts = []
    for start in range(0, len(jobs), JOBS_PER_STATEMENT):
        chunk = jobs[start : start + JOBS_PER_STATEMENT]
        params: list[Any] = []
        for job in chunk:
            params.extend(convert(Job, JOB_COLUMNS, job))
        inserts.append((statements.insert_jobs(len(chunk)), params))

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
    """:func:`claim_and_load` as a write for :class:`~hookline.storage.group_commit.GroupCommit` (its result is read in the
    connection's thread, decoded by the caller: see :func:`claimed`)."""
    query = _statements_of("sqlite").claim_and_load
    params = _claim_params(execution_id, owner, now)
    # fetchall: the statement is run to its end before the savepoint is released.
    return lambda connection: connection.execute(query, params).fetchall()


def claimed(rows: list[tuple[int, Any, str]]) -> Claimed | None:
    """What :func:`claim_and_load_sqlite`'s write returned, decoded."""
    return _claimed(*rows[0]) if rows else None


# --- executions with an id of this process's: written once when they end in time -------------


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
    """Create a finished execution with its id, and its jobs, all or nothing: on PostgreSQL one
    statement with at most ``JOBS_PER_STATEMENT`` jobs (see :func:`finished_in_one_statement`),
    else in the caller's transaction."""
    statements = _statements(connection)
    params = convert(Execution, KNOWN_COLUMNS, values)
    if finished_in_one_statement(connection, len(jobs)):
        for job in jobs:
            params.extend(convert(Job, JOB_COLUMNS, job))
        await connection.execute_query(statements.insert_finished(len(jobs)), params)
        return
    await connection.execute_query(statements.insert_known, params)
    for query, chunk in _job_inserts(statements, jobs):
        await connection.execute_query(query, chunk)


def finished_in_one_statement(connection: BaseDBAsyncClient, jobs: int) -> bool:
    """Whether :func:`insert_finished` is one statement, needing no transaction around it."""
    return dialect(connection) == "postgres" and 0 < jobs <= JOBS_PER_STATEMENT


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


#: Clients already checked by :func:`_sqlite_client` (its answer, apart from the connection,
#: does not change for a client: checked once, not on every write).
_CHECKED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _sqlite_client(client: BaseDBAsyncClient) -> Any:
    """tortoise's SQLite client, if it has what :class:`~hookline.storage.group_commit.GroupCommit` uses (its lock, and
    aiosqlite's connection with its thread); ``None`` otherwise (another tortoise or aiosqlite
    version: the writes then go through the ORM's connection, one statement at a time)."""
    suitable = _CHECKED.get(client)
    if suitable is None:
        suitable = _CHECKED[client] = (
            dialect(client) == "sqlite"
            and isinstance(getattr(client, "_lock", None), asyncio.Lock)
            and hasattr(client, "_connection")
            and hasattr(client, "create_connection")
            and hasattr(aiosqlite.Connection, "_execute")
        )
    if not suitable:
        return None
    connection = client._connection
    if connection is not None:
        try:
            raw = getattr(connection, "_conn", None)
        except ValueError:  # closed: the ORM's path reconnects, or says why it cannot
            return None
        if not isinstance(raw, sqlite3.Connection):
            return None
    return client
