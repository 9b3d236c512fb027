"""Installed plugins: versions, what each contributes, and the disabled ones."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from hookline_console.web import Console, guarded


def register(bp: Blueprint, console: Console) -> None:
    host = console.host

    async def plugins(request: Request) -> HTTPResponse:
        rows = host.describe_plugins(include_default=True)
        return console.render(
            request,
            "plugins.html",
            plugins=[row for row in rows if not row.get("disabled")],
            disabled=[row for row in rows if row.get("disabled")],
            pages={page.name: page.title for page in console.pages},
        )

    bp.add_route(guarded(console, plugins), "/plugins", methods=["GET"], name="plugins")
