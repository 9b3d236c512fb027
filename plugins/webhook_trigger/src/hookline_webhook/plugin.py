"""Hook implementations: the entry point ``webhook = "hookline_webhook.plugin"``."""

from __future__ import annotations

from typing import Callable
from weakref import WeakKeyDictionary

import click
from sanic import Blueprint

from hookline import Host, TriggerType, hookimpl
from hookline.ui import ConsolePage
from hookline_webhook.admin import build_admin_blueprint
from hookline_webhook.capture import CaptureService
from hookline_webhook.cli import webhooks
from hookline_webhook.routes import build_blueprint
from hookline_webhook.samples_page import samples_page
from hookline_webhook.trigger import WebhookTrigger


@hookimpl
def register_trigger_types(register: Callable[[type[TriggerType]], None]) -> None:
    register(WebhookTrigger)


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    register("hookline_webhook", models=["hookline_webhook.models"], migrations="hookline_webhook.migrations")


#: One capture service per host, shared by the webhook routes and the console's Samples tab: a
#: capture armed from the console then takes effect at once in this process (another service
#: would see it only at its next read, up to a second later). Weakly keyed by the host, so that
#: two hosts in one process (tests) never share one, and none outlives its host.
_captures: WeakKeyDictionary[Host, CaptureService] = WeakKeyDictionary()


def captures_of(host: Host) -> CaptureService:
    if host not in _captures:
        _captures[host] = CaptureService(host)
    return _captures[host]


@hookimpl
def register_routes(register: Callable[[Blueprint], None], host: Host) -> None:
    captures = captures_of(host)
    register(build_blueprint(host, captures))
    register(build_admin_blueprint(host, captures))


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    register(webhooks)


@hookimpl
def register_console_pages(register: Callable[[ConsolePage], None]) -> None:
    # A "Samples" tab on each webhook workflow's page: paste a sample or capture a request, then
    # save the parameters found into the trigger config.
    register(samples_page(captures_of))
