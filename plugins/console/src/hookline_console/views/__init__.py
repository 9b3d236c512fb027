"""The console's pages, one module per area; each ``register(bp, console)`` adds its routes."""

from __future__ import annotations

from sanic import Blueprint

from hookline_console.views import account, executions, extensions, forms, plugins, refused, workflows


def register(bp: Blueprint, console: object) -> None:
    for area in (account, workflows, forms, executions, refused, plugins, extensions):
        area.register(bp, console)  # type: ignore[arg-type]
