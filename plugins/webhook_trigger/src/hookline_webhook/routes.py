"""The webhook endpoints: parse the request into ``$context``, start the workflow, answer."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json as json_response, raw

from hookline import ExecutionStatus, HooklineError, Reply
from hookline.errors import DefinitionError
from hookline.web.errors import error_response
from hookline_webhook.trigger import WebhookTrigger

ALLOWED_METHODS = ("POST",)
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


#: Sanic percent-encodes static path segments, so ``webhook:trigger`` would only match a request
#: that encodes the colon; a regex segment matches it written either way.
ROUTES = (r"/api/<_action:webhook(?::|%3[Aa])trigger>/<key>", "/api/webhooks/<key>")


def build_blueprint() -> Blueprint:
    bp = Blueprint("hookline_webhook")
    for number, path in enumerate(ROUTES):
        bp.add_route(handle_webhook, path, methods=_ALL_METHODS, name=f"webhook_{number}")
    return bp


async def handle_webhook(request: Request, key: str, _action: str = "") -> HTTPResponse:
    """Start the workflow KEY with the request as $context (POST)."""
    host = request.app.ctx.hookline
    if request.method not in ALLOWED_METHODS:
        return error_response(405, "method_not_allowed", f"webhooks accept {', '.join(ALLOWED_METHODS)}, not {request.method}",
                      headers={"Allow": ", ".join(ALLOWED_METHODS)})
    try:
        workflow = await host.workflows.find(key)
    except DefinitionError as exc:
        return error_response(503, "workflow_unavailable", f"workflow {key!r} cannot run on this server: {exc.message}")
    if workflow is None or workflow.definition.trigger.type != WebhookTrigger.name:
        return error_response(404, "not_found", f"no webhook workflow with key {key!r}; check the URL (keys are case-sensitive)")
    if not workflow.enabled:
        return error_response(404, "workflow_disabled", f"workflow {key!r} is disabled; enable it to accept calls")
    try:
        context = parse_request(request)
    except HooklineError as exc:
        return json_response(exc.to_dict(), status=exc.status)

    if workflow.definition.sync:
        handle = await host.executions.start(workflow, context, mode="sync")
        reply = await handle.reply()
        if reply is not None:
            return reply_response(reply)
        outcome = await handle.outcome()
        if outcome.status is ExecutionStatus.SUCCEEDED:
            return json_response({"execution": handle.execution_id, "status": "succeeded"})
        return error_response(
            500,
            "workflow_" + outcome.status.value,
            f"workflow {key!r} ended {outcome.status.value}" + (f": {outcome.error['message']}" if outcome.error else ""),
            execution=handle.execution_id,
            node=(outcome.error or {}).get("node"),
        )

    execution_id = await host.executions.enqueue(workflow, context)
    configured = workflow.definition.trigger.config.get("response", {})
    return reply_response(
        Reply(status=configured.get("status", 200), headers=configured.get("headers", {}), body=configured.get("body", "ok")),
        execution_id=execution_id,
    )


def parse_request(request: Request) -> dict[str, Any]:
    """``$context`` of a webhook call: method, headers (lower-cased), query, body, raw_body."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    raw_bytes = request.body or b""
    try:
        raw_text: str | None = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raw_text = None
    context: dict[str, Any] = {
        "method": request.method,
        "headers": {name.lower(): value for name, value in request.headers.items()},
        "query": _flatten(parse_qs(request.query_string, keep_blank_values=True)),
        "body": None,
        "raw_body": raw_text,
    }
    if raw_text is None:
        context["raw_body_base64"] = base64.b64encode(raw_bytes).decode()
    if not raw_bytes:
        return context
    if content_type == "application/json" or (content_type.startswith("application/") and content_type.endswith("+json")):
        if raw_text is None:
            raise _BadBody("the JSON body is not valid UTF-8")
        try:
            context["body"] = json.loads(raw_text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise _BadBody(f"the body is not valid JSON: {exc}") from None
    elif content_type == "application/x-www-form-urlencoded":
        context["body"] = _flatten(parse_qs(raw_text or "", keep_blank_values=True))
    else:
        context["body"] = raw_text
    return context


def reply_response(reply: Reply, execution_id: int | None = None) -> HTTPResponse:
    headers = dict(reply.headers)
    if execution_id is not None:
        headers.setdefault("X-Hookline-Execution", str(execution_id))
    body = reply.body
    if body is None:
        return empty(status=reply.status, headers=headers)
    if isinstance(body, str):
        content_type = _pop_header(headers, "content-type") or "text/plain; charset=utf-8"
        return raw(body.encode(), status=reply.status, headers=headers, content_type=content_type)
    content_type = _pop_header(headers, "content-type") or "application/json"
    return json_response(body, status=reply.status, headers=headers, content_type=content_type)


class _BadBody(HooklineError):
    code = "invalid_body"
    status = 400


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _flatten(values: dict[str, list[str]]) -> dict[str, Any]:
    return {key: items[0] if len(items) == 1 else items for key, items in values.items()}


def _pop_header(headers: dict[str, str], name: str) -> str | None:
    for key in list(headers):
        if key.lower() == name:
            return headers.pop(key)
    return None
