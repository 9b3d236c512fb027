"""The webhook endpoints: parse the request into ``$context``, start the workflow, answer."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Iterator
from urllib.parse import parse_qs

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json as json_response, raw

from hookline import ExecutionStatus, HooklineError, Reply
from hookline.errors import DefinitionError
from hookline.web.errors import error_response
from hookline_webhook.trigger import WebhookTrigger

log = logging.getLogger("hookline.webhook")

ALLOWED_METHODS = ("POST",)
#: Seconds a sender is asked to wait before retrying when the call could not be recorded.
RETRY_AFTER = 5
#: Every answer names the execution it started, for support and for the API.
EXECUTION_HEADER = "X-Hookline-Execution"
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
        try:
            handle = await host.executions.start(workflow, context, mode="sync")
        except Exception:
            return _not_recorded(key)
        reply = await handle.reply()
        if reply is not None:
            return reply_response(reply, execution_id=handle.execution_id)
        outcome = await handle.outcome()
        headers = {EXECUTION_HEADER: str(handle.execution_id)}
        if outcome.status is ExecutionStatus.SUCCEEDED:
            return json_response({"execution": handle.execution_id, "status": "succeeded"}, headers=headers)
        error = outcome.error or {}
        # A NodeError's message is meant for people; anything else is an internal detail that
        # stays in the execution history.
        detail = f": {error['message']}" if outcome.status is ExecutionStatus.FAILED and "message" in error else ""
        return error_response(
            500,
            "workflow_" + outcome.status.value,
            f"workflow {key!r} ended {outcome.status.value}{detail}",
            headers=headers,
            execution=handle.execution_id,
            node=error.get("node"),
        )

    try:
        execution_id = await host.executions.enqueue(workflow, context)
    except Exception:
        return _not_recorded(key)
    configured = workflow.definition.trigger.config.get("response", {})
    return reply_response(
        Reply(status=configured.get("status", 200), headers=configured.get("headers", {}), body=configured.get("body", "ok")),
        execution_id=execution_id,
    )


def _not_recorded(key: str) -> HTTPResponse:
    """The execution could not be stored (database down or refusing): the sender should retry,
    and must not take a 2xx for an event nobody will run."""
    log.exception("webhook %r: the call could not be recorded", key)
    return error_response(
        503, "unavailable", "the call could not be recorded; retry later", headers={"Retry-After": str(RETRY_AFTER)}
    )


def parse_request(request: Request) -> dict[str, Any]:
    """``$context`` of a webhook call: method, headers (lower-cased), query, body, raw_body."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    raw_bytes = request.body or b""
    try:
        text: str | None = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    # Text a database cannot hold as such (not UTF-8, or with NUL) is kept exactly, as base64.
    storable = text if text is not None and "\x00" not in text else None
    context: dict[str, Any] = {
        "method": request.method,
        "headers": _headers(request),
        "query": _flatten(parse_qs(request.query_string, keep_blank_values=True)),
        "body": None,
        "raw_body": storable,
    }
    if storable is None:
        context["raw_body_base64"] = base64.b64encode(raw_bytes).decode()
    problem = _unstorable(context["query"])
    if problem:
        raise _BadBody(f"the query string cannot be stored: it contains {problem}")
    if not raw_bytes:
        return context
    if content_type == "application/json" or (content_type.startswith("application/") and content_type.endswith("+json")):
        if text is None:
            raise _BadBody("the JSON body is not valid UTF-8")
        try:
            context["body"] = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise _BadBody(f"the body is not valid JSON: {exc}") from None
    elif content_type == "application/x-www-form-urlencoded":
        if text is None:
            raise _BadBody("the form body is not valid UTF-8")
        context["body"] = _flatten(parse_qs(text, keep_blank_values=True))
    else:
        context["body"] = storable
    problem = _unstorable(context["body"])
    if problem:
        raise _BadBody(f"the body cannot be stored: it contains {problem}")
    return context


def reply_response(reply: Reply, execution_id: int | None = None) -> HTTPResponse:
    headers = dict(reply.headers)
    if execution_id is not None:
        headers.setdefault(EXECUTION_HEADER, str(execution_id))
    body = reply.body
    if body is None:
        return _Empty(status=reply.status, headers=headers)
    if isinstance(body, str):
        content_type = _pop_header(headers, "content-type") or "text/plain; charset=utf-8"
        return raw(body.encode(), status=reply.status, headers=headers, content_type=content_type)
    content_type = _pop_header(headers, "content-type") or "application/json"
    return json_response(body, status=reply.status, headers=headers, content_type=content_type)


class _Empty(HTTPResponse):
    """An answer without a body, and so without a Content-Type (Sanic would send the text
    "None" for a status that allows a body). Header names and values were validated when the
    workflow was saved or the node ran."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(body=b"", status=status, headers=headers)

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        return ((name.encode("ascii"), str(value).encode()) for name, value in self.headers.items())


class _BadBody(HooklineError):
    code = "invalid_body"
    status = 400


def _headers(request: Request) -> dict[str, str]:
    """Names lower-cased; a header sent several times becomes one comma-separated value
    (RFC 9110 section 5.3)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _unstorable(value: Any) -> str | None:
    """Strings PostgreSQL's jsonb (and UTF-8 storage) refuse: NUL and unpaired surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            return "a \\u0000 (NUL) character"
        if any("\ud800" <= char <= "\udfff" for char in value):
            return "an unpaired UTF-16 surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, dict):
        return next((p for item in value.items() for p in map(_unstorable, item) if p), None)
    if isinstance(value, list):
        return next((p for p in map(_unstorable, value) if p), None)
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _flatten(values: dict[str, list[str]]) -> dict[str, Any]:
    return {key: items[0] if len(items) == 1 else items for key, items in values.items()}


def _pop_header(headers: dict[str, str], name: str) -> str | None:
    for key in list(headers):
        if key.lower() == name:
            return headers.pop(key)
    return None
