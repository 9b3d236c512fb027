"""Hook implementations: the entry point ``console = "hookline_console.plugin"``."""

from __future__ import annotations

import logging
from typing import Callable

from sanic import Blueprint

from hookline import Host, hookimpl
from hookline_console.settings import ConsoleSettings
from hookline_console.web import PREFIX, build_blueprint

log = logging.getLogger("hookline.console")


@hookimpl
def register_models(register: Callable[..., None]) -> None:
    register("hookline_console", models=["hookline_console.models"], migrations="hookline_console.migrations")


@hookimpl
def register_routes(register: Callable[[Blueprint], None], host: Host) -> None:
    register(build_blueprint(host, ConsoleSettings.from_env()))


@hookimpl
def startup(host: Host) -> None:
    how = "the API token" + (" or HOOKLINE_CONSOLE_PASSWORD" if ConsoleSettings.from_env().password else "")
    log.info("console at %s/ (sign in with %s)", (host.settings.public_url or "").rstrip("/") + PREFIX, how)
