"""The ``hookline`` command: a thin layer over the services the HTTP API uses.

Commands that read or change data print JSON on stdout (the same shapes as the API), and errors as one line on
stderr with a non-zero exit code. Plugins add commands with the ``register_commands`` hook.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import pluggy

from hookline.cli.common import db_option, emit, make_host, run_with_database
from hookline.cli.scaffold import plugin
from hookline.cli.serve import serve
from hookline.errors import HooklineError
from hookline.host import Host
from hookline.plugins import PluginHooks, disabled_from_env, make_plugin_manager

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hookline")
def cli() -> None:
    """Hookline: webhook-triggered workflows."""


@cli.command()
@db_option
@click.pass_context
def migrate(ctx: click.Context, db_url: str | None) -> None:
    """Create or upgrade the database tables of the host and every plugin."""
    host = make_host(ctx, db_url=db_url)
    try:
        applied = asyncio.run(host.migrate())
    except Exception as exc:
        raise click.ClickException(f"migration failed: {exc}") from None
    emit({"applied": applied})


@cli.command()
@click.option("--all", "include_default", is_flag=True, help="Include the host's default plugins.")
@click.pass_context
def plugins(ctx: click.Context, include_default: bool) -> None:
    """List installed plugins, their versions, hooks and types, as JSON."""
    host = make_host(ctx)
    emit(host.describe_plugins(include_default=include_default))


@cli.group()
def workflows() -> None:
    """Create, list and inspect workflows."""


@workflows.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=True))
@db_option
@click.pass_context
def workflows_apply(ctx: click.Context, path: str, db_url: str | None) -> None:
    """Create or update workflows from a YAML/JSON file or a directory of them.

    Every file is validated first; nothing is saved unless all are valid.
    """
    host = make_host(ctx, db_url=db_url)
    emit(run_with_database(host, lambda h: _apply(h, path)))


async def _apply(host: Host, path: str) -> list[dict[str, Any]]:
    from hookline.workflow_files import read_workflow_files

    return await host.workflows.apply_all(read_workflow_files(path))


@workflows.command("list")
@click.option("-q", "--query", "q", help="Match key, title or webhook id.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="next_cursor of the previous page.")
@db_option
@click.pass_context
def workflows_list(ctx: click.Context, q: str | None, limit: int, cursor: str | None, db_url: str | None) -> None:
    """List workflows, newest first."""
    host = make_host(ctx, db_url=db_url)
    page = run_with_database(host, lambda h: h.workflows.list(q=q, limit=limit, cursor=cursor))
    emit(page.to_dict())


@workflows.command("show")
@click.argument("key")
@db_option
@click.pass_context
def workflows_show(ctx: click.Context, key: str, db_url: str | None) -> None:
    """Show a workflow's current definition and its versions."""
    host = make_host(ctx, db_url=db_url)
    emit(run_with_database(host, lambda h: h.workflows.get(key)))


@workflows.command("delete")
@click.argument("key")
@db_option
@click.pass_context
def workflows_delete(ctx: click.Context, key: str, db_url: str | None) -> None:
    """Delete a workflow with its versions and executions."""
    host = make_host(ctx, db_url=db_url)
    run_with_database(host, lambda h: h.workflows.delete(key))
    emit({"deleted": key})


@cli.group()
def executions() -> None:
    """Inspect executions."""


@executions.command("list")
@click.option("--workflow", help="Only this workflow's executions.")
@click.option("--status", help="Only executions with this status.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="next_cursor of the previous page.")
@db_option
@click.pass_context
def executions_list(
    ctx: click.Context, workflow: str | None, status: str | None, limit: int, cursor: str | None, db_url: str | None
) -> None:
    """List executions, newest first."""
    host = make_host(ctx, db_url=db_url)
    page = run_with_database(
        host, lambda h: h.executions.list(workflow=workflow, status=status, limit=limit, cursor=cursor)
    )
    emit(page.to_dict())


@executions.command("show")
@click.argument("execution_id")
@db_option
@click.pass_context
def executions_show(ctx: click.Context, execution_id: str, db_url: str | None) -> None:
    """Show one execution with its context, reply and jobs."""
    host = make_host(ctx, db_url=db_url)
    emit(run_with_database(host, lambda h: h.executions.get(execution_id)))


@cli.command()
@click.argument("key")
@click.option("--input", "input_file", type=click.File("r"), help="JSON or YAML file with the input ('-' for stdin).")
@db_option
@click.pass_context
def run(ctx: click.Context, key: str, input_file: Any, db_url: str | None) -> None:
    """Run a workflow by hand through the same engine as its trigger, and show the execution.

    Exits 1 when the execution does not succeed.
    """
    import yaml

    data: Any = {}
    if input_file is not None:
        try:
            data = yaml.safe_load(input_file.read())  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise click.ClickException(f"{input_file.name}: not valid JSON or YAML: {exc}") from None
    host = make_host(ctx, db_url=db_url)
    execution = run_with_database(host, lambda h: h.executions.run_manual(key, data))
    emit(execution)
    if execution["status"] != "succeeded":
        sys.exit(1)


@cli.group()
def token() -> None:
    """Manage the management API's bearer token."""


@token.command("rotate")
@db_option
@click.pass_context
def token_rotate(ctx: click.Context, db_url: str | None) -> None:
    """Replace the stored API token with a new one and print it (once)."""
    from hookline.web.auth import rotate_api_token

    host = make_host(ctx, db_url=db_url)
    if host.settings.api_token:
        raise click.ClickException("HOOKLINE_API_TOKEN is set: the stored token is not used; change the variable")
    emit({"token": run_with_database(host, lambda h: rotate_api_token())})


cli.add_command(serve)
cli.add_command(plugin)


def build_cli(pm: pluggy.PluginManager) -> click.Group:
    """A new group with the host's commands plus every plugin's (``cli`` itself is not changed,
    so two plugin sets can be used in one process)."""
    group = click.Group(
        name="hookline",
        commands=dict(cli.commands),
        params=list(cli.params),
        help=cli.help,
        context_settings=cli.context_settings,
    )
    for command in PluginHooks(pm).commands(taken=list(cli.commands)):
        group.add_command(command)
    return group


def main(argv: list[str] | None = None) -> None:
    try:
        pm = make_plugin_manager(disabled=disabled_from_env())
        group = build_cli(pm)
    except HooklineError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    group.main(args=argv, obj={"pm": pm}, prog_name="hookline")
