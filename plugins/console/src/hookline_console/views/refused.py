"""Refused calls: what the webhook door turned away (unknown key, bad signature, 401, 403, 405,
413, 415, 429, missing parameters), with the cause: the first page to open when "my webhook
does not trigger"."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from hookline.web import parse_limit
from hookline_console.web import Console, filters_query, guarded, list_filters

FILTERS = ("workflow", "status", "cause")


def register(bp: Blueprint, console: Console) -> None:
    host = console.host

    async def refused(request: Request) -> HTTPResponse:
        filters = list_filters(request, FILTERS)
        page = await host.refused_calls.list(
            **{name: value or None for name, value in filters.items()},
            limit=parse_limit(request.args.get("limit")),
            cursor=request.args.get("cursor"),
        )
        return console.render(
            request,
            "refused.html",
            items=page.items,
            next_cursor=page.next_cursor,
            filters=filters,
            query_without_cursor=filters_query(filters),
        )

    async def refusal(request: Request, refusal_id: str) -> HTTPResponse:
        return console.render(request, "refusal.html", refusal=await host.refused_calls.get(refusal_id))

    bp.add_route(guarded(console, refused), "/refused", methods=["GET"], name="refused")
    bp.add_route(guarded(console, refusal), "/refused/<refusal_id>", methods=["GET"], name="refusal")
