"""The ``hookline`` command: a thin layer over the services the HTTP API uses.

Commands that read or change data print JSON on stdout (the same shapes as the API), and errors as one line on
stderr with a non-zero exit code. Plugins add commands with the ``register_commands`` hook.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import pluggy

from hookline.cli.common import RowId, apply_migrations, db_option, emit, make_host, run_with_database
from hookline.cli.refusals import refusals
from hookline.cli.scaffold import plugin
from hookline.cli.serve import serve, worker
from hookline.errors import HooklineError
from hookline.host import Host
from hookline.pagination import MAX_ID
from hookline.plugins import PluginHooks, disabled_from_env, make_plugin_manager
from hookline.status import ExecutionStatus


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hookline")
def cli() -> None:
    """Hookline: webhook-triggered workflows."""


@cli.command()
@db_option
@click.pass_context
def migrate(ctx: click.Context, db_url: str | None) -> None:
    """Create or upgrade the database tables of the host and every plugin."""
    emit({"applied": apply_migrations(make_host(ctx, db_url=db_url))})


@cli.command()
@click.option(
    "--all",
    "include_default",
    is_flag=True,
    help="Include the host's default plugins, and disabled plugins (\"disabled\": true).",
)
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
    results = run_with_database(host, lambda h: _apply(h, path))
    emit(results)
    if any(url.startswith("/") for result in results for url in result["endpoints"].values()):
        # This process is not the server: it does not know the address the server listens on.
        click.echo(
            "endpoints are paths on the server's address (http://HOST:PORT of 'hookline serve'); "
            "set HOOKLINE_PUBLIC_URL to print full URLs",
            err=True,
        )


async def _apply(host: Host, path: str) -> list[dict[str, Any]]:
    from hookline.workflow_files import read_workflow_files

    return await host.workflows.apply_all(read_workflow_files(path))


@workflows.command("list")
@click.option("-q", "--query", "q", help="Match key, title or webhook id.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="next_cursor of the previous page.")
@click.option(
    "--activity",
    is_flag=True,
    help="With each workflow's last execution and its executions' counts by status (the last 24 hours).",
)
@click.option("--activity-since", metavar="T", help="With --activity: count from this ISO 8601 time instead.")
@db_option
@click.pass_context
def workflows_list(
    ctx: click.Context,
    q: str | None,
    limit: int,
    cursor: str | None,
    activity: bool,
    activity_since: str | None,
    db_url: str | None,
) -> None:
    """List workflows, newest first. Those that cannot run with the plugins of this
    environment have "runnable": false and a "problem"; stderr counts them."""
    if activity_since is not None and not activity:
        raise click.UsageError("--activity-since needs --activity")
    host = make_host(ctx, db_url=db_url)

    async def listed(h: Host) -> Any:
        page = await h.workflows.list(q=q, limit=limit, cursor=cursor)
        if activity:
            found = await h.executions.activity([item["key"] for item in page.items], since=activity_since)
            for item in page.items:
                item["activity"] = found.get(item["key"])
        return page

    page = run_with_database(host, listed)
    emit(page.to_dict())
    unrunnable = [item["key"] for item in page.items if not item["runnable"]]
    if unrunnable:
        click.echo(
            f"warning: {len(unrunnable)} of these workflows cannot run with the plugins here "
            f"({', '.join(repr(key) for key in unrunnable[:5])}{', ...' if len(unrunnable) > 5 else ''}): "
            "see their \"problem\"",
            err=True,
        )


@workflows.command("show")
@click.argument("key")
@db_option
@click.pass_context
def workflows_show(ctx: click.Context, key: str, db_url: str | None) -> None:
    """Show a workflow's current definition and its versions, and whether it can run here."""
    host = make_host(ctx, db_url=db_url)
    shown = run_with_database(host, lambda h: h.workflows.get(key))
    emit(shown)
    if not shown["runnable"]:
        click.echo(f"warning: workflow {key!r} cannot run with the plugins here: {shown['problem']}", err=True)


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
    """Inspect, replay and purge executions."""


@executions.command("list")
@click.option("--workflow", metavar="KEY", help="Only this workflow's executions.")
@click.option(
    "--status", "statuses", metavar="S", multiple=True, help="Only executions with this status (repeatable, or S1,S2)."
)
@click.option(
    "--mode", "modes", metavar="M", multiple=True, help="Only executions started so: sync, async, manual or replay (repeatable)."
)
@click.option("--since", metavar="T", help="Only executions created at or after this ISO 8601 time (UTC without an offset).")
@click.option("--until", metavar="T", help="Only executions created before this ISO 8601 time.")
@click.option("-q", "--query", "q", metavar="TEXT", help="Only executions whose request (body, query, headers) holds TEXT, in any case.")
@click.option("--after", metavar="ID", type=click.IntRange(0, MAX_ID), help="Only executions newer than execution ID.")
@click.option("--replay-of", metavar="ID", type=click.IntRange(0, MAX_ID), help="Only the replays of execution ID.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="next_cursor of the previous page.")
@db_option
@click.pass_context
def executions_list(
    ctx: click.Context,
    workflow: str | None,
    statuses: tuple[str, ...],
    modes: tuple[str, ...],
    since: str | None,
    until: str | None,
    q: str | None,
    after: int | None,
    replay_of: int | None,
    limit: int,
    cursor: str | None,
    db_url: str | None,
) -> None:
    """List executions, newest first; every option given narrows the list."""
    host = make_host(ctx, db_url=db_url)
    page = run_with_database(
        host,
        lambda h: h.executions.list(
            workflow=workflow,
            status=statuses,
            mode=modes,
            since=since,
            until=until,
            q=q,
            after=after,
            replay_of=replay_of,
            limit=limit,
            cursor=cursor,
        ),
    )
    emit(page.to_dict())


@executions.command("show")
@click.argument("execution_id", metavar="ID", type=RowId("execution", "hookline executions list"))
@db_option
@click.pass_context
def executions_show(ctx: click.Context, execution_id: int, db_url: str | None) -> None:
    """Show one execution with its context, reply and jobs."""
    host = make_host(ctx, db_url=db_url)
    emit(run_with_database(host, lambda h: h.executions.get(execution_id)))


#: Statuses an execution can end with: what replay and purge take.
FINISHED_STATUSES = [status.value for status in ExecutionStatus if status.finished]


@executions.command("replay")
@click.argument("execution_id", metavar="[ID]", type=RowId("execution", "hookline executions list"), required=False)
@click.option("--current", is_flag=True, help="Run the workflow's current version, not the one the execution ran.")
@click.option("--wait", is_flag=True, help="Print the finished replay(s) in full, not only their ids and statuses.")
@click.option("--workflow", "workflow_key", metavar="KEY", help="Replay this workflow's finished executions instead of one.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(FINISHED_STATUSES),
    help="With --workflow: statuses to replay (repeatable).  [default: failed, error, timed_out]",
)
@click.option("--since", help="With --workflow: created at or after this ISO 8601 time.")
@click.option("--until", help="With --workflow: created before this ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True, help="With --workflow: at most this many.")
@click.option("--include-replayed", is_flag=True, help="With --workflow: also executions that were already replayed.")
@db_option
@click.pass_context
def executions_replay(
    ctx: click.Context,
    execution_id: int | None,
    current: bool,
    wait: bool,
    workflow_key: str | None,
    statuses: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    include_replayed: bool,
    db_url: str | None,
) -> None:
    """Replay execution ID from its stored context, or (with --workflow) a workflow's failed
    executions oldest first; the replays run in this process before the command returns.

    Exits 1 when a replay does not succeed.
    """
    if (execution_id is None) == (workflow_key is None):
        raise click.UsageError("give an execution ID or --workflow KEY (not both)")
    if execution_id is not None and (statuses or since or until or include_replayed):
        raise click.UsageError("--status, --since, --until and --include-replayed go with --workflow")
    from hookline.replay import PartialReplay, parse_time

    version = "current" if current else "original"

    async def replay(host: Host) -> Any:
        # With the memory queue this process runs what it queues (another process would only
        # find them at its next start); with a Redis queue the workers run them, and this waits.
        # Registered (heartbeat) meanwhile, so that if it is killed, a server recovers what it
        # left running.
        await host.executions.open(recover=False)
        try:
            partial: PartialReplay | None = None
            if execution_id is not None:
                replays = [await host.replays.replay(execution_id, version=version)]
            else:
                try:
                    replays = await host.replays.replay_many(
                        workflow_key or "",
                        statuses=statuses or None,
                        since=parse_time(since, "--since"),
                        until=parse_time(until, "--until"),
                        limit=limit,
                        version=version,
                        skip_replayed=not include_replayed,
                    )
                except PartialReplay as exc:  # HOOKLINE_MAX_BACKLOG below --limit: run what was queued
                    replays, partial = exc.done, exc
            results = []
            for replay in replays:
                await host.executions.wait_finished(replay.execution, timeout=float("inf"))
                execution = await host.executions.get(replay.execution)
                results.append(execution if wait else {**replay.to_dict(), "status": execution["status"]})
            return results, partial
        finally:
            await host.executions.close()

    host = make_host(ctx, db_url=db_url)
    results, partial = run_with_database(host, replay)
    emit(results[0] if execution_id is not None else {"workflow": workflow_key, "count": len(results), "replays": results})
    if partial is not None:
        click.echo(f"Error: {partial.message}", err=True)
    if partial is not None or any(r["status"] != "succeeded" for r in results):
        sys.exit(1)


@executions.command("purge")
@click.option("--workflow", help="Only this workflow's executions.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(FINISHED_STATUSES),
    help="Only executions with this status (repeatable).",
)
@click.option("--older-than", metavar="DURATION", help="Created longer ago than this ('30d', '12h', seconds), whatever the policies.")
@click.option("--all", "everything", is_flag=True, help="Every finished execution, of any age.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=1000, show_default=True, help="Executions deleted per transaction.")
@db_option
@click.pass_context
def executions_purge(
    ctx: click.Context,
    workflow: str | None,
    statuses: tuple[str, ...],
    older_than: str | None,
    everything: bool,
    dry_run: bool,
    batch: int,
    db_url: str | None,
) -> None:
    """Delete finished executions with their jobs: by the retention policies (each workflow's
    'retention', else HOOKLINE_RETENTION), or older than --older-than, or --all.

    Queued and running executions, and those whose idempotency key still holds, are kept.
    """
    from hookline.retention import parse_age

    host = make_host(ctx, db_url=db_url)
    result = run_with_database(
        host,
        lambda h: h.retention.purge(
            workflow=workflow,
            statuses=statuses or None,
            older_than=parse_age(older_than) if older_than else None,
            everything=everything,
            dry_run=dry_run,
            batch=batch,
        ),
    )
    emit(result.to_dict())


@cli.command()
@click.argument("key")
@click.option("--input", "input_file", type=click.File("r"), help="JSON or YAML file with the input ('-' for stdin).")
@db_option
@click.pass_context
def run(ctx: click.Context, key: str, input_file: Any, db_url: str | None) -> None:
    """Run workflow KEY by hand through the same engine as its trigger, and show the execution.

    The input (--input: a JSON or YAML file, '-' for stdin) is turned into the run's $context by
    the workflow's trigger type. For a webhook workflow it stands for the request, not only its
    body: an object whose keys are all among body, query, headers and method is taken as those
    parts ({"body": {"amount": 150}, "query": {"page": "1"}}); anything else is the body itself
    ({"amount": 150} is the same as {"body": {"amount": 150}}). Without --input the body is {}.
    The trigger's declared parameters are checked as for a call.

    Exits 1 when the execution does not succeed or the input is refused.
    """
    import yaml

    data: Any = {}
    if input_file is not None:
        text = input_file.read()
        if not text.strip():  # (YAML reads nothing as null: a body nobody meant)
            raise click.ClickException(
                f"{input_file.name}: empty; give a JSON or YAML document, or leave out --input for the body {{}}"
            )
        try:
            data = yaml.safe_load(text)  # YAML is a superset of JSON
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
cli.add_command(worker)
cli.add_command(plugin)
cli.add_command(refusals)


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
