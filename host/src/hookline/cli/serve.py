"""``hookline serve``: migrate, make sure an API token exists, apply workflow files, serve.
``hookline worker`` (or ``serve --role worker``): run queued executions, no HTTP."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import signal
import socket
from functools import partial
from typing import Any, Callable, Coroutine

import click

from hookline.cli.common import apply_migrations, db_option, make_host, queue_option, run_with_database
from hookline.errors import HooklineError
from hookline.host import Host
from hookline.settings import ROLES
from hookline.storage.db import describe_db_url
from hookline.workflows import endpoints_at


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
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="all: answer HTTP and run queued executions; ingress: answer HTTP only; worker: run queued "
    "executions only, no HTTP (as 'hookline worker'). ingress and worker need a shared --queue.  "
    "[default: $HOOKLINE_ROLE or all]",
)
@queue_option
@click.pass_context
def serve(
    ctx: click.Context,
    bind_host: str | None,
    port: int | None,
    db_url: str | None,
    workflows_path: str | None,
    workers: int | None,
    public_url: str | None,
    role: str | None,
    queue_url: str | None,
) -> None:
    """Run the server (migrates the database first)."""
    _configure_logging()
    host = make_host(
        ctx, db_url=db_url, host=bind_host, port=port, workers=workers, public_url=public_url, role=role, queue_url=queue_url
    )
    if host.settings.role == "worker":
        given = [flag for flag, value in (("--workflows", workflows_path), ("--host", bind_host), ("--port", port),
                                          ("--workers", workers), ("--public-url", public_url)) if value]
        if given:
            raise click.UsageError(f"{', '.join(given)}: a worker answers no HTTP and applies nothing (role 'worker')")
        _run_worker(host)
        return
    settings = host.settings
    # The address first: a busy port is one line before any work, not a traceback after the
    # migration and the apply. The server then serves on this very socket.
    listener = _listen(settings.host, settings.port)
    try:
        applied = apply_migrations(host)
        if applied:
            click.echo(f"migrated: {', '.join(applied)}", err=True)
        new_token, saved, any_workflow = run_with_database(host, partial(_prepare, workflows_path=workflows_path))
    except BaseException:
        listener.close()
        raise
    if new_token:
        click.echo(
            "A management API token was generated. It is shown only this once; keep it:\n"
            f"  HOOKLINE_API_TOKEN={new_token}\n"
            "(or run 'hookline token rotate' for a new one)",
            err=True,
        )
    for result in saved:
        for name, url in endpoints_at(result["endpoints"], settings.base_url).items():
            click.echo(f"workflow {result['key']} v{result['version']}: {name} {url}", err=True)
    app, loader = _build_app(host, listener)
    public = f", public URL {settings.public_url.rstrip('/')}" if settings.public_url else ""
    click.echo(
        f"Hookline serving on {settings.listen_url}{public}, database {describe_db_url(settings.db_url)}", err=True
    )
    if not any_workflow:
        click.echo("no workflows yet: hookline workflows apply FILE, or POST /api/workflows", err=True)
    _run_server(host, listener, app, loader)


@click.command()
@db_option
@queue_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Executions run at once.  [default: $HOOKLINE_MAX_CONCURRENT_RUNS or 64]",
)
@click.pass_context
def worker(ctx: click.Context, db_url: str | None, queue_url: str | None, concurrency: int | None) -> None:
    """Run queued executions from a shared queue (Redis), without answering HTTP.

    Start as many as needed, on any machine that reaches the database and the queue. The
    database must be migrated already (by 'hookline migrate' or an ingress's 'hookline serve').
    Stops on SIGTERM or Ctrl-C, letting running executions finish for $HOOKLINE_SHUTDOWN_GRACE.
    """
    _configure_logging()
    host = make_host(ctx, db_url=db_url, queue_url=queue_url, role="worker", max_concurrent_runs=concurrency)
    _run_worker(host)


def _run_worker(host: Host) -> None:
    from hookline.queue import redact
    from hookline.runtime import settle_heap

    settings = host.settings

    async def main() -> None:
        await host.open_migrated_database()  # a worker creates and migrates no database
        try:
            await host.start()
        except BaseException:
            await host.close_database()
            raise
        settle_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("hookline").info(
            "worker %s: running executions from %s (queue %s), %d at a time",
            host.executions.process_id,
            redact(settings.queue_url),
            settings.queue_name,
            settings.max_concurrent_runs,
        )
        try:
            await stop.wait()
        finally:
            logging.getLogger("hookline").info("worker %s stopping", host.executions.process_id)
            try:
                await host.stop()
            finally:
                await host.close_database()

    try:
        _event_loop_runner()(main())
    except HooklineError as exc:
        raise click.ClickException(exc.message) from None


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop's ``run`` where it is installed (Sanic's dependency on Linux and macOS, and what
    the server runs on), else asyncio's. A worker spends much of its time in the drivers'
    socket I/O: with asyncio's own loop, one Redis worker ran about 310 executions/s where it
    runs 510 with uvloop (PostgreSQL, one ingress beside it on 2 cores)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - depends on the platform
        return asyncio.run
    return uvloop.run


def _configure_logging() -> None:
    """Hookline's own loggers at INFO on stderr; Sanic configures its own."""
    logger = logging.getLogger("hookline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


async def _prepare(host: Host, *, workflows_path: str | None) -> tuple[str | None, list[dict[str, Any]], bool]:
    """Apply the workflow files, make sure an API token exists: ``(new token or None, the
    workflows saved, whether any workflow is stored)``."""
    from hookline.web.auth import ensure_api_token
    from hookline.workflow_files import read_workflow_files

    # Workflows first: if a file is invalid, serve stops before a token is made that it could
    # not print.
    saved = await host.workflows.apply_all(read_workflow_files(workflows_path)) if workflows_path else []
    new_token = await ensure_api_token(host.settings.api_token)
    any_workflow = bool(saved) or bool((await host.workflows.list(limit=1)).items)
    return new_token, saved, any_workflow


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` as Sanic's ``bind_socket`` makes it, but not listening yet
    (the server listens once it is ready: until then, a caller or a health check is refused
    rather than left waiting); or a one-line error saying what is wrong with the address and
    which flag changes it."""
    try:
        try:  # an IP address: its family must be given (IPv6)
            family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        except ValueError:  # a host name
            family = socket.AF_INET
        listener = socket.socket(family)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
        except BaseException:
            listener.close()
            raise
        listener.set_inheritable(True)
        return listener
    except socket.gaierror as exc:
        raise click.ClickException(
            f"cannot listen on {host}: no such host name ({exc.strerror}); choose another with --host"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = f"port {port} on {host} is already in use: stop what uses it or choose another with --port"
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = (
                f"cannot listen on {host} port {port}: {host} is not an address of this machine; choose another "
                "with --host (127.0.0.1: this machine only, 0.0.0.0: every interface)"
            )
        elif exc.errno == errno.EACCES:
            message = (
                f"cannot listen on {host} port {port}: permission denied (ports below 1024 need privileges); "
                "choose another with --port"
            )
        else:
            message = f"cannot listen on {host} port {port}: {exc.strerror or exc}"
        raise click.ClickException(message) from None


def _build_app(host: Host, listener: socket.socket) -> tuple[Any, Any]:
    """The app (and, for several workers, the loader each worker builds its own with), built
    before the server says it serves: a plugin refusing its settings is one line, no traceback."""
    from sanic.worker.loader import AppLoader

    from hookline.web.app import create_app

    settings = host.settings
    try:
        if settings.workers == 1:
            return create_app(settings, pm=host.pm, name="hookline", tune_gc=True), None
        # Each worker process builds its own app (and plugin manager) from the same settings.
        loader = AppLoader(factory=partial(create_app, settings, name="hookline", tune_gc=True))
        return loader.load(), loader
    except HooklineError as exc:
        listener.close()
        raise click.ClickException(exc.message) from None


def _run_server(host: Host, listener: socket.socket, app: Any, loader: Any) -> None:
    from sanic import Sanic

    from hookline.web.framing import HooklineProtocol

    # Strict HTTP/1.1 framing: what Sanic's own parser lets through is refused (web/framing.py).
    options: dict[str, Any] = {"sock": listener, "access_log": False, "motd": False, "protocol": HooklineProtocol}
    if loader is None:
        app.run(single_process=True, **options)
        return
    app.prepare(workers=host.settings.workers, **options)
    Sanic.serve(primary=app, app_loader=loader)
