"""``hookline webhooks ...``: sample parsing and sample capture from the command line, over the
same functions as the management API (:mod:`hookline_webhook.samples`,
:class:`hookline_webhook.capture.CaptureService`)."""

from __future__ import annotations

from typing import Any

import click

from hookline import Host, HooklineError
from hookline.cli import db_option, emit, make_host, run_with_database
from hookline_webhook.capture import CAPTURE_METHODS, DEFAULT_WINDOW, MAX_WINDOW, CaptureService
from hookline_webhook.samples import PARTS, parse_sample


@click.group("webhooks")
def webhooks() -> None:
    """Webhook trigger tools: parse samples into parameters, capture sample requests."""


@webhooks.command("parse-sample")
@click.option("--url", help="A sample URL; its query string is parsed into query parameters.")
@click.option("--query", help="A sample query string, such as 'a=1&items[0].id=2'.")
@click.option(
    "--json", "json_sample", metavar="TEXT|@FILE", help="A JSON sample (body parameters); @FILE reads a file, @- stdin."
)
@click.option(
    "--pair", "pairs", multiple=True, metavar="KEY=VALUE",
    help="A key-value pair (repeat it); keys may be nested: a.b, a[0].c.",
)
@click.option("--into", type=click.Choice(PARTS), help="Where --pair parameters go (default: body).")
@click.option("--path", "path", help="With --url: the workflow's custom path (orders/:id), to read its parameters from the URL.")
def parse_sample_command(
    url: str | None, query: str | None, json_sample: str | None, pairs: tuple[str, ...], into: str | None, path: str | None
) -> None:
    """Print the trigger parameters generated from a sample, as JSON.

    Give exactly one sample: --url, --query, --json or --pair (repeated). The "parameters"
    lists can be pasted into the trigger config as they are; "examples" shows the values seen.
    """
    request: dict[str, Any] = {}
    if url is not None:
        request["url"] = url
    if query is not None:
        request["query"] = query
    if json_sample is not None:
        request["json"] = _text_or_file(json_sample)
    if pairs:
        request["pairs"] = [_pair(text) for text in pairs]
    if into is not None:
        request["into"] = into
    if path is not None:
        request["path"] = path
    try:
        emit(parse_sample(request))
    except HooklineError as exc:
        raise click.ClickException(exc.message) from None


@webhooks.command("capture")
@click.argument("key")
@click.option(
    "--window", type=click.IntRange(1, MAX_WINDOW), default=DEFAULT_WINDOW, show_default=True,
    help="Seconds the URL waits for a request.",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True,
    help="Wait for the request and print the capture, or print the armed capture at once.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0), help="Stop waiting after this many seconds (default: the window)."
)
@db_option
@click.pass_context
def capture(ctx: click.Context, key: str, window: int, wait: bool, timeout: float | None, db_url: str | None) -> None:
    """Arm workflow KEY's URL to capture its next request (GET or POST) as a sample.

    The request is stored with the parameters generated from it, and the workflow does not run.
    Exits with status 1 when no request came while waiting.
    """
    host = make_host(ctx, db_url=db_url)

    async def arm_and_wait(host: Host) -> dict[str, Any]:
        captures = CaptureService(host)
        armed = await captures.arm(key, window)
        if not wait:
            return armed
        workflow = await host.workflows.get(key)
        url = workflow["endpoints"].get("webhook", key)
        # A capture takes a GET or a POST, whatever methods the workflow runs on.
        click.echo(f"waiting for a {' or '.join(CAPTURE_METHODS)} request to {url} (until {armed['expires_at']})", err=True)
        return await captures.wait(armed["id"], timeout if timeout is not None else window + 1)

    result = run_with_database(host, arm_and_wait)
    emit(result)
    if wait and result["status"] != "captured":
        still = " (it stays armed until its window ends)" if result["status"] == "armed" else ""
        raise click.ClickException(f"no request was captured: the capture is {result['status']}{still}")


@webhooks.command("show-capture")
@click.argument("key")
@db_option
@click.pass_context
def show_capture(ctx: click.Context, key: str, db_url: str | None) -> None:
    """Print workflow KEY's latest capture: status, the request captured, its parameters."""
    host = make_host(ctx, db_url=db_url)
    result = run_with_database(host, lambda h: CaptureService(h).latest(key))
    if result is None:
        raise click.ClickException(f"workflow {key!r} has no capture; arm one with 'hookline webhooks capture {key}'")
    emit(result)


@webhooks.command("cancel-capture")
@click.argument("key")
@db_option
@click.pass_context
def cancel_capture(ctx: click.Context, key: str, db_url: str | None) -> None:
    """Cancel workflow KEY's armed capture; its URL runs the workflow again."""
    host = make_host(ctx, db_url=db_url)
    emit(run_with_database(host, lambda h: CaptureService(h).cancel(key)))


def _text_or_file(value: str) -> str:
    if not value.startswith("@"):
        return value
    try:
        with click.open_file(value[1:], encoding="utf-8") as file:
            return str(file.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {value[1:]!r}: {exc}") from None


def _pair(text: str) -> list[str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--pair")
    return [key, value]
