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
from tortoise.migrations.api import migrate as tortoise_migrate

from hookline.errors import ConfigurationError
from hookline.registry import ModelApp

HOST_APP = ModelApp("hookline", ("hookline.storage.models",), "hookline.storage.migrations")


SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg", "psycopg")


def check_db_url(db_url: str) -> None:
    """Refuse a URL that cannot work, with a sentence saying why (before tortoise fails deep
    inside a driver thread)."""
    scheme, sep, rest = db_url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ConfigurationError(
            f"database URL {db_url!r} is not supported: use sqlite://PATH or postgres://user:pass@host:port/db"
        )
    if scheme == "sqlite":
        path = rest.split("?", 1)[0]
        if path != ":memory:" and not Path(path).parent.is_dir():
            raise ConfigurationError(f"database URL {db_url!r}: directory {str(Path(path).parent)!r} does not exist")


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
    from hookline.storage.sql import close_readers

    close_readers()
    await Tortoise.close_connections()


async def migrate_database(config: dict[str, Any]) -> list[str]:
    """Apply every pending migration of every app; returns ``["app.name", ...]`` applied.

    Runs in a task of its own so that the ORM context it opens (and closes) does not leak into
    the caller's, which may open the database for serving right after.
    """
    return await asyncio.create_task(_migrate(config))


async def _migrate(config: dict[str, Any]) -> list[str]:
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")

    try:
        await tortoise_migrate(config=config, progress=progress)
    finally:
        await Tortoise.close_connections()
    return applied


#: For tortoise's own CLI (``tortoise -c hookline.storage.db.TORTOISE_ORM makemigrations``),
#: used by developers of the host to generate migrations.
TORTOISE_ORM = tortoise_config(os.environ.get("HOOKLINE_DB_URL", "sqlite://hookline.db"))
