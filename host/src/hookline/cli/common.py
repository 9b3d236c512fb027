"""Helpers shared by the CLI's commands."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import click

from hookline.errors import DefinitionError, HooklineError
from hookline.host import Host
from hookline.settings import Settings
from hookline.storage.db import describe_db_url, is_database_error

db_option = click.option(
    "--db", "db_url", metavar="URL", help="Database URL (default: $HOOKLINE_DB_URL or sqlite://hookline.db)."
)

queue_option = click.option(
    "--queue",
    "queue_url",
    metavar="URL",
    help="Where queued executions go: memory, or redis://HOST:PORT/DB shared by ingress and worker "
    "processes (default: $HOOKLINE_QUEUE_URL or memory).",
)


def emit(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout, as the host's commands print their results."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def make_host(ctx: click.Context, **overrides: Any) -> Host:
    """A host with the CLI's plugins and the settings from the environment and ``overrides``
    (the flags given). Plugin commands use it too: ``make_host(click.get_current_context())``."""
    try:
        return Host(Settings.from_env(**overrides), pm=ctx.obj["pm"])
    except HooklineError as exc:
        raise click.ClickException(exc.message) from None


def apply_migrations(host: Host) -> list[str]:
    """Create or upgrade the database's tables (``migrate`` and ``serve``, the two commands that
    may create a database); returns the migrations applied, or stops with one line."""
    try:
        return asyncio.run(host.migrate())
    except HooklineError as exc:  # the database cannot be reached: the message says which and why
        raise click.ClickException(exc.message) from None
    except Exception as exc:
        raise click.ClickException(f"could not migrate {describe_db_url(host.settings.db_url)}: {exc}") from None


def run_with_database(host: Host, work: Callable[[Host], Awaitable[Any]]) -> Any:
    """Open the database, run ``work``, close it: one event loop per command (the ORM's context
    lives in one loop).

    The database must exist and be migrated: a command creates none (only ``migrate`` and
    ``serve`` do), and one naming a missing or unmigrated database stops with one line saying
    which database it tried and how to point at another."""

    async def main() -> Any:
        await host.open_migrated_database()
        try:
            return await work(host)
        finally:
            await host.close_database()

    try:
        return asyncio.run(main())
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(1) from None
    except HooklineError as exc:
        # Lists in the details say what is wrong, item by item (a webhook's missing or mistyped
        # parameters); the other details repeat what the message says.
        lists = {name: value for name, value in exc.details.items() if isinstance(value, list)}
        details = f" {json.dumps(lists, ensure_ascii=False, default=str)}" if lists else ""
        raise click.ClickException(exc.message + details) from None
    except Exception as exc:  # database unreachable, tables missing, ...
        if is_database_error(exc):
            raise click.ClickException(
                f"database error: {exc} (is the database reachable, and migrated? run 'hookline migrate')"
            ) from None
        raise


class _BadId(click.ClickException):
    """One line on stderr and exit code 2, as click gives for other bad arguments."""

    exit_code = 2


class RowId(click.ParamType):
    """A stored row's id as a list command shows it (``RowId("execution", "hookline executions
    list")``): a whole number, else one line naming the command that lists them."""

    def __init__(self, noun: str, listed_by: str) -> None:
        self.name = f"{noun} id"
        self._listed_by = listed_by

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()):
            raise _BadId(f"{self.name} must be a number (see '{self._listed_by}'), not {value!r}")
        return int(text)
