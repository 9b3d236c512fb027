"""tortoise's connection as storage's hand-written SQL uses it: the ``default`` client, looked
up cheaply, its dialect, and whether it is a SQLite client the group commit can drive."""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from typing import Any

import aiosqlite
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient


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
    if sqlite_client(client) is not None and client._connection is not None:
        _DEFAULTS[loop] = client
    else:
        _DEFAULTS.pop(loop, None)
    return client


#: See :func:`default_connection`.
_DEFAULTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def dialect(connection: BaseDBAsyncClient) -> str:
    return "sqlite" if connection.capabilities.dialect == "sqlite" else "postgres"


def sqlite_client(client: BaseDBAsyncClient) -> Any:
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


#: Clients already checked by :func:`sqlite_client` (its answer, apart from the connection,
#: does not change for a client: checked once, not on every write).
_CHECKED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
