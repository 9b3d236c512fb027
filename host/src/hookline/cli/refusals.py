"""``hookline refusals``: the calls triggers refused (bad signature, unknown key, ...), read
through ``host.refused_calls`` as ``GET /api/refusals`` reads them."""

from __future__ import annotations

import click

from hookline.cli.common import RowId, db_option, emit, make_host, run_with_database


@click.group()
def refusals() -> None:
    """Calls the triggers refused, with the cause: why a webhook did not run."""


@refusals.command("list")
@click.option("--workflow", metavar="KEY", help="Only calls to this workflow.")
@click.option("--status", type=click.IntRange(100, 599), help="Only calls answered with this HTTP status (401, ...).")
@click.option("--cause", help="Only calls refused for this cause (invalid_signature, not_found, ...).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="next_cursor of the previous page.")
@db_option
@click.pass_context
def refusals_list(
    ctx: click.Context,
    workflow: str | None,
    status: int | None,
    cause: str | None,
    limit: int,
    cursor: str | None,
    db_url: str | None,
) -> None:
    """List refused calls, newest first."""
    host = make_host(ctx, db_url=db_url)
    page = run_with_database(
        host, lambda h: h.refused_calls.list(workflow=workflow, status=status, cause=cause, limit=limit, cursor=cursor)
    )
    emit(page.to_dict())


@refusals.command("show")
@click.argument("refusal_id", metavar="ID", type=RowId("refusal", "hookline refusals list"))
@db_option
@click.pass_context
def refusals_show(ctx: click.Context, refusal_id: int, db_url: str | None) -> None:
    """Show one refused call with its (redacted) headers and the start of its body."""
    host = make_host(ctx, db_url=db_url)
    emit(run_with_database(host, lambda h: h.refused_calls.get(refusal_id)))
