"""Executions: the list across workflows (filters, text search, new ones appearing live), and
one execution: the request as stored, the reply, the jobs as a timeline, replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import redirect

from hookline.errors import BadRequest
from hookline.web import parse_limit
from hookline_console.web import PREFIX, Console, filters_query, form_value, guarded, list_filters

#: The filters of the executions list, as query arguments (the API's names).
FILTERS = ("workflow", "status", "mode", "since", "until", "q", "replay_of")
STATUSES = ("queued", "running", "succeeded", "failed", "error", "cancelled", "timed_out")
MODES = ("sync", "async", "manual", "replay")


def register(bp: Blueprint, console: Console) -> None:
    host = console.host

    async def executions(request: Request) -> HTTPResponse:
        filters = list_filters(request, FILTERS)
        page = await host.executions.list(
            **{name: value or None for name, value in filters.items()},
            limit=parse_limit(request.args.get("limit")),
            cursor=request.args.get("cursor"),
        )
        return console.render(
            request,
            "executions.html",
            items=page.items,
            next_cursor=page.next_cursor,
            filters=filters,
            statuses=STATUSES,
            modes=MODES,
            live=not request.args.get("cursor"),
            request_path_with_query=request.path + (f"?{request.query_string}" if request.query_string else ""),
            query_without_cursor=filters_query(filters),
        )

    async def execution(request: Request, execution_id: str) -> HTTPResponse:
        found = await host.executions.get(execution_id)
        rendered = {
            index: Markup(html)
            for index, job in enumerate(found["jobs"])
            if (html := host.hooks.render_job_result(job, host)) is not None
        }
        timeline = _timeline(found)
        return console.render(
            request,
            "execution.html",
            execution=found,
            rendered=rendered,
            timeline=timeline,
            request_shown=_request_parts(found.get("context")),
            live=found["status"] in ("queued", "running"),
        )

    async def replay(request: Request, execution_id: str) -> HTTPResponse:
        version = form_value(request.form, "version", "original")
        if version not in ("original", "current"):
            raise BadRequest(f"version must be 'original' or 'current', not {version!r}")
        queued = await host.replays.replay(execution_id, version=version)
        return redirect(f"{PREFIX}/executions/{queued.execution}", status=303)

    bp.add_route(guarded(console, executions), "/executions", methods=["GET"], name="executions")
    bp.add_route(guarded(console, execution), "/executions/<execution_id>", methods=["GET"], name="execution")
    bp.add_route(guarded(console, replay), "/executions/<execution_id>/replay", methods=["POST"], name="replay")


def _request_parts(context: Any) -> dict[str, Any]:
    """What the request page shows of ``$context``: the parts a webhook stores, and whatever
    else another trigger put there."""
    if not isinstance(context, dict):
        return {"other": context}
    known = ("method", "headers", "query", "content_type", "body", "raw_body", "raw_body_base64", "files")
    return {
        **{name: context.get(name) for name in known},
        "other": {name: value for name, value in context.items() if name not in known} or None,
    }


def _timeline(execution: dict[str, Any]) -> list[dict[str, Any]]:
    """Each job's start and length as percentages of the execution's span, for the bars."""
    jobs = execution["jobs"]
    if not jobs:
        return []
    starts = [datetime.fromisoformat(job["started_at"]) for job in jobs]
    ends = [datetime.fromisoformat(job["finished_at"]) for job in jobs]
    origin = min(starts)
    span = max((max(ends) - origin).total_seconds(), 1e-6)
    return [
        {
            "offset": round((start - origin).total_seconds() / span * 100, 2),
            "width": max(round((end - start).total_seconds() / span * 100, 2), 0.5),
        }
        for start, end in zip(starts, ends)
    ]
