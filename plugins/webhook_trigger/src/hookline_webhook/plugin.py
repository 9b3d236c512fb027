"""Hook implementations: the entry point ``webhook = "hookline_webhook.plugin"``."""

from __future__ import annotations

from typing import Callable

import click
from sanic import Blueprint

from hookline import Host, TriggerType, hookimpl
from hookline_webhook.admin import build_admin_blueprint
from hookline_webhook.capture import CaptureService
from hookline_webhook.cli import webhooks
from hookline_webhook.routes import build_blueprint
from hookline_webhook.trigger import WebhookTrigger


@hookimpl
def register_trigger_types(register: Callable[[type[TriggerType]], None]) -> None:
    register(WebhookTrigger)


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    register("hookline_webhook", models=["hookline_webhook.models"], migrations="hookline_webhook.migrations")


@hookimpl
def register_routes(register: Callable[[Blueprint], None], host: Host) -> None:
    captures = CaptureService(host)
    register(build_blueprint(host, captures))
    register(build_admin_blueprint(host, captures))


@hookimpl
def register_commands(register: Callable[[click.Command], None]) -> None:
    register(webhooks)
