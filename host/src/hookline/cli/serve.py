"""``hookline serve``: migrate, make sure an API token exists, apply workflow files, serve."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import click

from hookline.cli.common import db_option, make_host, run_with_database
from hookline.host import Host


@click.command()
@click.option("--host", "bind_host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port to listen on.  [default: 8000]")
@db_option
@click.option(
    "--workflows",
    "workflows_path",
    type=click.Path(exists=True),
    help="Apply this workflow file, or directory of files, before serving.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Server processes.  [default: 1]")
@click.option("--public-url", default=None, help="Base URL shown in endpoints ($HOOKLINE_PUBLIC_URL).")
@click.pass_context
def serve(
    ctx: click.Context,
    bind_host: str | None,
    port: int | None,
    db_url: str | None,
    workflows_path: str | None,
    workers: int | None,
    public_url: str | None,
) -> None:
    """Run the server (migrates the database first)."""
    _configure_logging()
    host = make_host(ctx, db_url=db_url, host=bind_host, port=port, workers=workers, public_url=public_url)
    try:
        applied = asyncio.run(host.migrate())
    except Exception as exc:
        raise click.ClickException(f"could not migrate {host.settings.db_url}: {exc}") from None
    if applied:
        click.echo(f"migrated: {', '.join(applied)}", err=True)
    new_token, saved = run_with_database(host, partial(_prepare, workflows_path=workflows_path))
    if new_token:
        click.echo(
            "A management API token was generated. It is shown only this once; keep it:\n"
            f"  HOOKLINE_API_TOKEN={new_token}\n"
            "(or run 'hookline token rotate' for a new one)",
            err=True,
        )
    for result in saved:
        for name, url in result["endpoints"].items():
            click.echo(f"workflow {result['key']} v{result['version']}: {name} {url}", err=True)
    _run_server(host)


def _configure_logging() -> None:
    """Hookline's own loggers at INFO on stderr; Sanic configures its own."""
    logger = logging.getLogger("hookline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


async def _prepare(host: Host, *, workflows_path: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    from hookline.web.auth import ensure_api_token
    from hookline.workflow_files import read_workflow_files

    # Workflows first: if a file is invalid, serve stops before a token is made that it could
    # not print.
    saved = await host.workflows.apply_all(read_workflow_files(workflows_path)) if workflows_path else []
    new_token = await ensure_api_token(host.settings.api_token)
    return new_token, saved


def _run_server(host: Host) -> None:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from hookline.web.app import create_app

    settings = host.settings
    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "access_log": False, "motd": False}
    if settings.workers == 1:
        app = create_app(settings, pm=host.pm, name="hookline")
        app.run(single_process=True, **options)
        return
    # Each worker process builds its own app (and plugin manager) from the same settings.
    loader = AppLoader(factory=partial(create_app, settings, name="hookline"))
    app = loader.load()
    app.prepare(workers=settings.workers, **options)
    Sanic.serve(primary=app, app_loader=loader)
