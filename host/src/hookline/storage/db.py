"""Opening, closing and migrating the database (tortoise-orm).

One connection named ``default``; one tortoise app per package that owns tables (``hookline``
for the host, one per plugin that registers models), each with its own migrations package.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Iterable

from tortoise import Tortoise
from tortoise.backends.base import executor
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import ConfigurationError as TortoiseConfigurationError
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate as tortoise_migrate
from tortoise.migrations.executor import MigrationExecutor

from hookline.errors import ConfigurationError
from hookline.queue import redact
from hookline.registry import ModelApp

HOST_APP = ModelApp("hookline", ("hookline.storage.models",), "hookline.storage.migrations")


SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg", "psycopg")
#: The end of every message about a database that is not the one wanted.
ELSEWHERE = "point at another with --db URL or HOOKLINE_DB_URL"


class DatabaseNotReady(ConfigurationError):
    """The database a command needs is missing, unreachable or not migrated. Only ``hookline
    migrate`` and ``hookline serve`` create or migrate one; the others refuse, creating nothing,
    with a message naming the database and what to do."""

    code = "database_not_ready"


def check_db_url_form(db_url: str) -> None:
    """Refuse a URL that cannot work as written, with a sentence saying why (before tortoise fails
    deep inside a driver thread). Looks at the text only: no file, no network."""
    if not db_url.strip():
        raise ConfigurationError(
            "the database URL is empty: give --db URL or HOOKLINE_DB_URL "
            "(sqlite://PATH or postgres://user:pass@host:port/db)"
        )
    scheme, sep, _ = db_url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ConfigurationError(
            f"database URL {redact(db_url)!r} is not supported: use sqlite://PATH or postgres://user:pass@host:port/db"
        )
    try:
        expand_db_url(db_url)
    except (TortoiseConfigurationError, ValueError) as exc:  # "Port is not an integer", "No path ..."
        raise ConfigurationError(f"database URL {redact(db_url)!r}: {exc}") from None


def check_db_url(db_url: str) -> None:
    """:func:`check_db_url_form`, and for SQLite, that the file's directory exists."""
    check_db_url_form(db_url)
    path = sqlite_path(db_url)
    if path is not None and not path.parent.is_dir():
        raise ConfigurationError(f"database URL {db_url!r}: directory {str(path.parent)!r} does not exist")


def sqlite_path(db_url: str) -> Path | None:
    """The file a SQLite URL names, as written (relative to the working directory or not);
    ``None`` for another database, or SQLite in memory."""
    scheme, _, rest = db_url.partition("://")
    path = rest.split("?", 1)[0]
    if scheme != "sqlite" or path in ("", ":memory:"):
        return None
    return Path(path)


def describe_db_url(db_url: str) -> str:
    """The URL for people to read: without its password, and for a relative SQLite path, the
    file it means here (``sqlite://hookline.db (/srv/app/hookline.db)``): the same URL names
    another file in another folder."""
    path = sqlite_path(db_url)
    if path is not None and not path.is_absolute():
        return f"{db_url} ({path.absolute()})"
    return redact(db_url)


def tortoise_config(
    db_url: str, apps: Iterable[ModelApp] = (HOST_APP,), *, lock_timeout: float | None = None
) -> dict[str, Any]:
    """The tortoise config for ``db_url`` and the given model apps.

    :param lock_timeout: seconds a statement waits for a lock held by another connection before
        it fails (PostgreSQL ``lock_timeout``, SQLite ``busy_timeout``). A webhook whose execution
        cannot be written in time answers 503 to retry, rather than keeping its caller waiting
        for as long as someone holds the lock.
    """
    connection = expand_db_url(db_url)
    credentials = connection["credentials"]
    if connection["engine"] == "tortoise.backends.asyncpg":
        credentials.setdefault("reset", _release_as_is)
    if lock_timeout is not None:
        milliseconds = max(1, int(lock_timeout * 1000))
        if connection["engine"] == "tortoise.backends.sqlite":
            credentials.setdefault("busy_timeout", milliseconds)  # a PRAGMA, set on connecting
        elif connection["engine"] == "tortoise.backends.asyncpg":  # psycopg takes no server settings
            settings = dict(credentials.get("server_settings") or {})
            settings.setdefault("lock_timeout", str(milliseconds))
            credentials["server_settings"] = settings
    return {
        "connections": {"default": connection},
        "apps": {
            app.label: {
                "models": list(app.models),
                "migrations": app.migrations,
                "default_connection": "default",
            }
            for app in apps
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def _release_as_is(connection: Any) -> None:
    """What asyncpg's pool does to a connection given back, after rolling back a transaction
    left open (which it always does): nothing more. Its default sends ``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` first, a round trip on every
    release (three per webhook call). Hookline leaves no session state to undo: its settings are
    the connection's startup parameters, and it takes no session lock, cursor or LISTEN. (A
    plugin changing a setting on a pooled connection uses ``SET LOCAL``, inside a transaction.)"""


async def open_database(config: dict[str, Any]) -> None:
    """Open the ORM for this process. ``_enable_global_fallback`` makes the context visible to
    every task (Sanic runs listeners and handlers in different tasks)."""
    # tortoise caches generated SQL per connection *name* for the whole process; a process that
    # opens SQLite and then PostgreSQL under the same name (tests do) would reuse SQLite's SQL.
    executor.EXECUTOR_CACHE.clear()
    await Tortoise.init(config=config, _enable_global_fallback=True)


async def close_database() -> None:
    """Close every connection; mandatory, or aiosqlite's threads keep the process alive."""
    from hookline.storage.readers import close_readers

    close_readers()
    await Tortoise.close_connections()


async def open_migrated_database(config: dict[str, Any], db_url: str) -> None:
    """Open a database that exists and holds every migration of ``config``'s apps, or raise
    :class:`DatabaseNotReady` having created nothing. What every command but ``migrate`` and
    ``serve`` opens: run in the wrong folder, a command must not leave an empty SQLite file
    there (connecting creates one, so the file is looked for first), and must say which
    database it tried rather than fail on a missing table."""
    check_db_url(db_url)
    path = sqlite_path(db_url)
    if path is not None and not path.is_file():
        raise DatabaseNotReady(
            f"no Hookline database at {describe_db_url(db_url)}: run 'hookline migrate' (or 'hookline serve') "
            f"there to create one, or {ELSEWHERE}"
        )
    await open_database(config)
    try:
        try:
            await Tortoise.get_connection("default").execute_query("SELECT 1")
        except Exception as exc:  # refused, unknown host, bad password, no such database...
            raise DatabaseNotReady(_unreachable(db_url, exc)) from None
        applied, pending = await _migration_state(config)
    except BaseException:
        await close_database()
        raise
    if not pending:
        return
    await close_database()
    if not applied:  # another application's database, or an empty one
        raise DatabaseNotReady(
            f"the database at {describe_db_url(db_url)} holds no Hookline tables: run 'hookline migrate' on it to "
            f"create them, or {ELSEWHERE}"
        )
    raise DatabaseNotReady(  # made by an older Hookline, or a plugin with tables was installed since
        f"the database at {describe_db_url(db_url)} is not up to date (pending: {', '.join(pending)}): "
        "run 'hookline migrate' first"
    )


async def _migration_state(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(applied, pending)``: the migrations of ``config``'s apps recorded in the open
    database, and those it still needs (reads only)."""
    migrations = MigrationExecutor(Tortoise.get_connection("default"), config["apps"])
    plan = await migrations.plan()
    recorded = await migrations.recorder.applied_migrations()
    applied = [f"{key.app_label}.{key.name}" for key in recorded if key.app_label in config["apps"]]
    return applied, [f"{step.migration.app_label}.{step.migration.name}" for step in plan if not step.backward]


def _unreachable(db_url: str, exc: BaseException) -> str:
    reason = str(exc) or type(exc).__name__
    if exc.__cause__ is not None and str(exc.__cause__) not in reason:  # tortoise's wrapper hides the driver's words
        reason += f" ({exc.__cause__})"
    return (
        f"cannot reach the database at {describe_db_url(db_url)}: {reason}; check the URL and that the database "
        f"server is running, or {ELSEWHERE}"
    )


async def maintenance_problem() -> str | None:
    """What, in the open database's settings, will slow Hookline down as its tables grow, or
    ``None``. PostgreSQL with ``autovacuum = off``: nothing analyzes the execution tables, and
    each connection keeps the plans of its foreign-key checks made while they were small
    (sequential scans), so that every insert reads the whole execution table; measured, sync
    calls on one process fell from ~1,900/s to ~400/s within 30 s of a fresh start."""
    from hookline.storage.connection import default_connection, dialect

    connection = default_connection()
    if dialect(connection) != "postgres":
        return None
    _, rows = await connection.execute_query("SHOW autovacuum")
    if rows and str(rows[0][0]).lower() == "off":
        return (
            "PostgreSQL's autovacuum is off: nothing analyzes or vacuums the execution tables, and inserts "
            "slow down as they grow (each reads the whole table through plans made when it was empty); turn "
            "autovacuum on, or run ANALYZE (and VACUUM) on this database regularly"
        )
    return None


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database or its driver (unreachable, a table missing, a
    statement refused), rather than from Hookline's own code."""
    return type(exc).__module__.startswith(("tortoise", "asyncpg", "sqlite3", "aiosqlite"))


def _is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be connected to (rather than a statement failed)."""
    if isinstance(exc, (OSError, DBConnectionError)):  # refused, timed out, unknown host; no such database
        return True
    try:
        from asyncpg.exceptions import InvalidAuthorizationSpecificationError  # bad user or password
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        return False
    return isinstance(exc, InvalidAuthorizationSpecificationError)


async def migrate_database(config: dict[str, Any], db_url: str | None = None) -> list[str]:
    """Apply every pending migration of every app; returns ``["app.name", ...]`` applied.
    With ``db_url``, a database that cannot be connected to raises :class:`DatabaseNotReady`
    naming it.

    Runs in a task of its own so that the ORM context it opens (and closes) does not leak into
    the caller's, which may open the database for serving right after.
    """
    return await asyncio.create_task(_migrate(config, db_url))


async def _migrate(config: dict[str, Any], db_url: str | None) -> list[str]:
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")

    try:
        await tortoise_migrate(config=config, progress=progress)
    except Exception as exc:
        if db_url is not None and _is_connection_failure(exc):
            raise DatabaseNotReady(_unreachable(db_url, exc)) from None
        raise
    finally:
        await Tortoise.close_connections()
    return applied


def __getattr__(name: str) -> Any:
    """``TORTOISE_ORM``, for tortoise's own CLI (``tortoise -c hookline.storage.db.TORTOISE_ORM
    makemigrations``), used by developers of the host to generate migrations. Built when asked
    for, not on import: every ``hookline`` command imports this module, and a bad
    ``HOOKLINE_DB_URL`` must get the command's one-line error, not a traceback at import."""
    if name == "TORTOISE_ORM":
        return tortoise_config(os.environ.get("HOOKLINE_DB_URL") or "sqlite://hookline.db")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
