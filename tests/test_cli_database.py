"""Which database a CLI command uses, and what it says when that database is not there.

Only ``migrate`` and ``serve`` create a database. Every other command needs one that exists and
is migrated; otherwise it says which database it tried and how to point at another, in one line,
and creates nothing (a command run in the wrong folder must not leave an empty database there).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

from conftest import EXAMPLES, _asyncpg_dsn, new_postgres_database, require_postgres
from hookline.cli.main import build_cli
from hookline.plugins import make_plugin_manager
from hookline.testing import free_port


@pytest.fixture
def hookline_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``hookline ARGS`` in process, in an empty folder, with no database settings."""
    monkeypatch.chdir(tmp_path)
    for variable in ("HOOKLINE_DB_URL", "HOOKLINE_API_TOKEN", "HOOKLINE_PUBLIC_URL"):
        monkeypatch.delenv(variable, raising=False)
    pm = make_plugin_manager()
    group = build_cli(pm)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(group, list(args), obj={"pm": pm}, catch_exceptions=False)

    return invoke


def one_line_error(result: Result) -> str:
    """The command failed with one line on stderr (and no traceback); that line."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return sorted(row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


DATA_COMMANDS = [
    ["executions", "list"],
    ["executions", "show", "1"],
    ["executions", "replay", "1"],
    ["executions", "purge", "--all"],
    ["workflows", "list"],
    ["workflows", "show", "order-paid"],
    ["workflows", "delete", "order-paid"],
    ["workflows", "apply", str(EXAMPLES)],
    ["run", "order-paid"],
    ["token", "rotate"],
]


@pytest.mark.parametrize("command", DATA_COMMANDS, ids=" ".join)
def test_a_command_in_a_folder_without_a_database_creates_none(
    hookline_cli: Any, tmp_path: Path, command: list[str]
) -> None:
    line = one_line_error(hookline_cli(*command))
    assert line == (
        f"Error: no Hookline database at sqlite://hookline.db ({tmp_path / 'hookline.db'}): run 'hookline migrate' "
        "(or 'hookline serve') there to create one, or point at another with --db URL or HOOKLINE_DB_URL"
    )
    assert list(tmp_path.iterdir()) == []


def test_listing_plugins_needs_no_database(hookline_cli: Any, tmp_path: Path) -> None:
    assert "webhook" in [p["name"] for p in json.loads(hookline_cli("plugins").stdout)]
    assert list(tmp_path.iterdir()) == []


def test_migrate_creates_the_database_the_others_then_use(hookline_cli: Any, tmp_path: Path) -> None:
    assert hookline_cli("migrate").exit_code == 0
    assert json.loads(hookline_cli("executions", "list").stdout)["items"] == []


def test_a_file_without_hookline_tables_is_named_and_left_alone(hookline_cli: Any, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    line = one_line_error(hookline_cli("workflows", "list", "--db", f"sqlite://{other}"))
    assert line == (
        f"Error: the database at sqlite://{other} holds no Hookline tables: run 'hookline migrate' on it to create "
        "them, or point at another with --db URL or HOOKLINE_DB_URL"
    )
    assert tables(other) == ["notes"]


def test_a_database_missing_a_migration_names_it(hookline_cli: Any, tmp_path: Path) -> None:
    assert hookline_cli("migrate").exit_code == 0
    with sqlite3.connect(tmp_path / "hookline.db") as connection:  # as if made by an older Hookline
        connection.execute(
            "DELETE FROM tortoise_migrations WHERE app = 'hookline' AND name >= '0005'"
        )
    line = one_line_error(hookline_cli("executions", "list"))
    assert line == (
        f"Error: the database at sqlite://hookline.db ({tmp_path / 'hookline.db'}) is not up to date "
        "(pending: hookline.0005_refused_calls, hookline.0006_history_queries, hookline.0007_workflow_addresses, "
        "hookline.0008_failure_notices): "
        "run 'hookline migrate' first"
    )


@pytest.fixture
def empty_postgres_db() -> Iterator[str]:
    """A PostgreSQL database with no tables at all; dropped afterwards."""
    require_postgres()
    with new_postgres_database("hookline_empty") as url:
        yield url


@pytest.mark.postgres
def test_a_postgres_database_without_hookline_tables_is_named_and_left_alone(
    hookline_cli: Any, empty_postgres_db: str
) -> None:
    line = one_line_error(hookline_cli("executions", "list", "--db", empty_postgres_db))
    assert line.startswith(f"Error: the database at {empty_postgres_db} holds no Hookline tables: run 'hookline migrate")
    count = asyncio.run(
        _admin_on(empty_postgres_db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
    )
    assert count == 0


async def _admin_on(url: str, query: str) -> Any:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=3)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("db_url", "expected"),
    [
        ("", "Error: the database URL is empty: give --db URL or HOOKLINE_DB_URL"),
        ("mongodb://x/y", "Error: database URL 'mongodb://x/y' is not supported: use sqlite://PATH or postgres://"),
    ],
)
def test_a_database_url_that_cannot_work_is_one_line(hookline_cli: Any, db_url: str, expected: str) -> None:
    assert one_line_error(hookline_cli("executions", "list", "--db", db_url)).startswith(expected)


def test_an_unreachable_postgres_is_one_line_without_its_password(hookline_cli: Any) -> None:
    port = free_port()  # nothing listens there
    url = f"postgres://hookline:s3cret@127.0.0.1:{port}/hookline"
    line = one_line_error(hookline_cli("executions", "list", "--db", url))
    assert line.startswith(f"Error: cannot reach the database at postgres://hookline:***@127.0.0.1:{port}/hookline: ")
    assert "s3cret" not in line and "--db URL or HOOKLINE_DB_URL" in line
    migrate = one_line_error(hookline_cli("migrate", "--db", url))
    assert migrate.startswith("Error: cannot reach the database at postgres://hookline:***@") and "s3cret" not in migrate


def hookline_process(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m hookline ARGS`` in a process of its own (an environment variable is read at
    import as well as by the command)."""
    return subprocess.run(
        [sys.executable, "-m", "hookline", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["executions", "list"], ["migrate"], ["serve", "--port", "1"]], ids=" ".join)
def test_an_empty_HOOKLINE_DB_URL_is_one_line_before_any_work(tmp_path: Path, command: list[str]) -> None:
    result = hookline_process(*command, env={"HOOKLINE_DB_URL": ""}, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "Error: HOOKLINE_DB_URL is set but empty: set it to a database URL (sqlite://PATH or "
        "postgres://user:pass@host:port/db), or unset it to use sqlite://hookline.db"
    )
    assert list(tmp_path.iterdir()) == []


def test_workflows_apply_prints_paths_unless_a_public_url_is_set(
    hookline_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hookline_cli("migrate")
    applied = hookline_cli("workflows", "apply", str(EXAMPLES / "order-paid.yaml"))
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)[0]["endpoints"] == {
        "webhook": "/api/webhooks/order-paid",
        "webhook_nocobase": "/api/webhook:trigger/order-paid",
    }
    assert applied.stderr.strip() == (
        "endpoints are paths on the server's address (http://HOST:PORT of 'hookline serve'); "
        "set HOOKLINE_PUBLIC_URL to print full URLs"
    )

    monkeypatch.setenv("HOOKLINE_PUBLIC_URL", "https://hooks.example.com/")
    again = hookline_cli("workflows", "apply", str(EXAMPLES / "order-paid.yaml"))
    assert json.loads(again.stdout)[0]["endpoints"]["webhook"] == "https://hooks.example.com/api/webhooks/order-paid"
    assert again.stderr == ""
