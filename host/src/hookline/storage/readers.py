"""The reads every webhook call makes (its workflow's row, a version's definition) and the survey
of every enabled workflow, as fixed SQL. On a SQLite file the per-call reads go through a
read-only connection of the calling thread: no round trip to aiosqlite's thread, no wait for
the lock a group commit holds."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from typing import Any
from urllib.parse import quote

from tortoise.backends.base.client import BaseDBAsyncClient

from hookline import jsontext
from hookline.storage.connection import default_connection, dialect
from hookline.storage.models import Workflow, WorkflowAddress, WorkflowVersion

log = logging.getLogger("hookline.storage")


def _reads(dialect: str) -> dict[str, str]:
    """The SELECTs of one dialect (``?`` for SQLite, ``$1`` for PostgreSQL), by name."""
    marks = ["?"] * 3 if dialect == "sqlite" else ["$1", "$2", "$3"]
    workflow, version, address = Workflow._meta.db_table, WorkflowVersion._meta.db_table, WorkflowAddress._meta.db_table
    return {
        "find_by_address_prefix": (
            f'SELECT w."id", w."key", w."enabled", w."current_version_id" FROM "{address}" a '
            f'JOIN "{workflow}" w ON w."id" = a."workflow_id" '
            f'WHERE a."trigger_type" = {marks[0]} AND a."address" LIKE {marks[1]} ESCAPE \'\\\' ORDER BY w."id"'
        ),
        "find_workflow": (
            f'SELECT "id", "key", "enabled", "current_version_id" FROM "{workflow}" WHERE "key"={marks[0]}'
        ),
        "read_version": f'SELECT "number", "definition" FROM "{version}" WHERE "id"={marks[0]}',
        "current_definitions": (
            f'SELECT w."id", w."key", v."id", v."definition" FROM "{workflow}" w '
            f'JOIN "{version}" v ON v."id" = w."current_version_id" '
            f'WHERE w."enabled" = {marks[0]} AND w."id" > {marks[1]} ORDER BY w."id" LIMIT {marks[2]}'
        ),
    }


_READS: dict[str, dict[str, str]] = {}


def _query(dialect: str, name: str) -> str:
    reads = _READS.get(dialect)
    if reads is None:
        reads = _READS[dialect] = _reads(dialect)
    if name not in reads and name.startswith("find_by_address_"):  # one per number of addresses
        reads[name] = _find_by_address(dialect, int(name.rsplit("_", 1)[1]))
    return reads[name]


async def find_workflow(key: str) -> dict[str, Any] | None:
    """``id``, ``key``, ``enabled`` and ``current_version_id`` of workflow ``key``. Read on
    every call, so that a change made by any process applies at once."""
    found = await _read_one("find_workflow", (key,))
    return None if found is None else _workflow_row(found)


#: More addresses than this in one lookup are refused (a trigger's URL has a few segments).
MAX_ADDRESSES = 64


async def find_by_address(trigger_type: str, addresses: list[str]) -> list[dict[str, Any]]:
    """The workflows whose trigger ``trigger_type`` gave them any of ``addresses``, by id, as
    :func:`find_workflow`'s. Read on every call, like it: one statement, on the index."""
    if not addresses:
        return []
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} addresses in one lookup")
    rows = await _read_all(f"find_by_address_{len(addresses)}", (trigger_type, *addresses))
    return [_workflow_row(row) for row in rows]


async def find_by_address_prefix(trigger_type: str, prefix: str) -> list[dict[str, Any]]:
    """The workflows whose trigger ``trigger_type`` gave them an address starting with
    ``prefix`` (case-insensitively for ASCII on SQLite: callers check what they get). Reads
    the addresses of that trigger type: for saving, not for every call."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await _read_all("find_by_address_prefix", (trigger_type, pattern))
    return [_workflow_row(row) for row in rows]


def _find_by_address(dialect_name: str, count: int) -> str:
    marks = ["?"] * (count + 1) if dialect_name == "sqlite" else [f"${n}" for n in range(1, count + 2)]
    workflow, address = Workflow._meta.db_table, WorkflowAddress._meta.db_table
    return (
        f'SELECT DISTINCT w."id", w."key", w."enabled", w."current_version_id" FROM "{address}" a '
        f'JOIN "{workflow}" w ON w."id" = a."workflow_id" '
        f'WHERE a."trigger_type" = {marks[0]} AND a."address" IN ({", ".join(marks[1:])}) ORDER BY w."id"'
    )


def _workflow_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "key": row[1], "enabled": bool(row[2]), "current_version_id": row[3]}


async def read_version(version_id: int) -> tuple[int, str] | None:
    """The ``number`` of workflow version ``version_id`` and its definition as the stored JSON
    text (decoded by the caller, who also weighs it by its length), or ``None``."""
    found = await _read_one("read_version", (version_id,))
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
    _, rows = await connection.execute_query(_query(dialect(connection), "current_definitions"), [True, after, limit])
    return [
        (row[0], row[1], row[2], json.loads(row[3]) if isinstance(row[3], (str, bytes)) else row[3]) for row in rows
    ]


async def _read_all(name: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Every row of the read ``name``, as :func:`_read_one` reads its first."""
    connection = default_connection()
    found = _read_here(connection, _query("sqlite", name), params, every=True)
    if found is not False:
        return found  # type: ignore[return-value]
    _, rows = await connection.execute_query(_query(dialect(connection), name), list(params))
    return [tuple(row) for row in rows]


async def _read_one(name: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The first row of the read ``name``: on SQLite, from the
    read-only connection of this thread (:func:`_read_here`); elsewhere, or where that does not
    apply, through the ORM's connection."""
    connection = default_connection()
    found = _read_here(connection, _query("sqlite", name), params)
    if found is not False:
        return found
    _, rows = await connection.execute_query(_query(dialect(connection), name), list(params))
    return tuple(rows[0]) if rows else None


#: Read-only SQLite connections of this thread, by database file.
_readers = threading.local()


def _read_here(
    client: BaseDBAsyncClient, query: str, params: tuple[Any, ...], *, every: bool = False
) -> tuple[Any, ...] | list[tuple[Any, ...]] | None | bool:
    """On a SQLite file: ``query``'s first row read on a read-only connection of the calling
    thread, without a round trip to aiosqlite's thread nor a wait for its lock (held while a
    group commits). For indexed SELECTs: microseconds; in WAL mode a reader waits for no
    writer, and sees every commit made before it. ``False`` where it does not apply
    (PostgreSQL, an in-memory database) or fails: then the ORM's connection is used. With
    ``every``, all its rows."""
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
        cursor = reader.execute(query, params)
        if every:
            return [tuple(row) for row in cursor.fetchall()]
        row = cursor.fetchone()
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
