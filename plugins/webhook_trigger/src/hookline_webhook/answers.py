"""The webhook routes' answers that are not a workflow's reply: refusals (with the caller's
credentials redacted from what is stored of them), CORS, a run's end without a reply, the
"retry later" of a call that could not be recorded, and a reply as an HTTP response."""

from __future__ import annotations

import logging
from typing import Any, Iterator

from sanic import HTTPResponse, Request
from sanic.response import json as json_response
from sanic.response import raw

from hookline import ActiveWorkflow, ExecutionStatus, Reply
from hookline.errors import UnsupportedMediaType
from hookline.web import error_response, header_value
from hookline_webhook.trigger import WebhookConfig

log = logging.getLogger("hookline.webhook")

#: Seconds a sender is asked to wait before retrying when the call could not be recorded.
RETRY_AFTER = 5
#: Every answer names the execution it started, for support and for the API.
EXECUTION_HEADER = "X-Hookline-Execution"


def ended(key: str, execution_id: int, status: ExecutionStatus, error: dict[str, Any] | None) -> HTTPResponse:
    """The answer of a sync execution that ended without a reply."""
    headers = {EXECUTION_HEADER: str(execution_id)}
    if status is ExecutionStatus.SUCCEEDED:
        return json_response({"execution": execution_id, "status": "succeeded"}, headers=headers)
    error = error or {}
    # A NodeError's message is meant for people; anything else is an internal detail that
    # stays in the execution history.
    detail = f": {error['message']}" if status is ExecutionStatus.FAILED and "message" in error else ""
    return error_response(
        500,
        "workflow_" + status.value,
        f"workflow {key!r} ended {status.value}{detail}",
        headers=headers,
        execution=execution_id,
        node=error.get("node"),
    )


def refusal(request: Request, workflow: ActiveWorkflow, config: WebhookConfig) -> HTTPResponse | None:
    """The answer for a request that runs nothing: disabled workflow, HEAD, OPTIONS, a method
    the workflow does not accept. ``None`` when the request may go on."""
    method = request.method
    allow = ", ".join([*config.methods, "HEAD", "OPTIONS"])
    if not workflow.enabled:
        return refuse(request, 404, "workflow_disabled", f"workflow {workflow.key!r} is disabled; enable it to accept calls")
    if method == "OPTIONS":
        return options(request, config, allow)
    if method == "HEAD":  # a probe: the URL exists and is enabled; nothing runs
        return _Empty(status=200, headers={"Allow": allow})
    if method not in config.methods:
        return refuse(
            request,
            405,
            "method_not_allowed",
            f"workflow {workflow.key!r} accepts {', '.join(config.methods)}, not {method}",
            headers={"Allow": allow},
        )
    return None


#: Headers that carry credentials: stored (and shown to nodes) as this, never as sent.
REDACTED = "[redacted]"
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization")


def redact(headers: dict[str, str], config: WebhookConfig | None) -> None:
    """Credentials and signatures never reach the execution history (or a captured sample, or
    the refused calls): they were checked already, and a stored copy would outlive their
    rotation. Without ``config`` (no workflow), the credential headers only."""
    names = list(_CREDENTIAL_HEADERS)
    if config is not None and config.auth is not None:
        names += config.auth.secret_headers()
    if config is not None and config.signature is not None:
        names += [name.lower() for name in config.signature.signature_headers()]
        if config.signature.preset == "github":  # GitHub also sends the legacy SHA-1 signature
            names.append("x-hub-signature")
    for name in names:
        if name in headers:
            headers[name] = REDACTED


def refuse(
    request: Request, status: int, code: str, message: str, *, note: str | None = None, **details: Any
) -> HTTPResponse:
    """The error answer to a call refused at the door, noted on the request so that it is
    reported to the refused calls. ``note``: what the operator reads there, when it says more
    than the caller is told (the precise signature problem, the peer address)."""
    request.ctx.refusal = (status, code, note or message)
    return error_response(status, code, message, **details)


#: Headers that carry no secret in any scheme: a refused call to no known workflow keeps only
#: these (which header holds a signature or a token is the workflow's to say, and there is none).
_PLAIN_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "connection", "content-encoding", "content-length",
    "content-type", "expect", "host", "origin", "referer", "traceparent", "transfer-encoding", "user-agent",
    "via", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "x-request-id",
})


def redact_all_but_plain(headers: dict[str, str]) -> None:
    for name in headers:
        if name not in _PLAIN_HEADERS:
            headers[name] = REDACTED


def slack_challenge(config: WebhookConfig, context: dict[str, Any]) -> HTTPResponse | None:
    """Slack's ``url_verification`` handshake (signed like any event) is answered, not run."""
    if config.signature is None or config.signature.preset != "slack":
        return None
    body = context.get("body")
    if isinstance(body, dict) and body.get("type") == "url_verification" and isinstance(body.get("challenge"), str):
        return json_response({"challenge": body["challenge"]})
    return None


def check_content_type(config: WebhookConfig, body: bytes, content_type: str) -> None:
    if body and not config.accepts(content_type):
        raise UnsupportedMediaType(
            f"this webhook does not accept {content_type or 'a body without Content-Type'}"
            f" (accepted: {', '.join(config.content_types or ())})",
            accepted=list(config.content_types or ()),
        )


def reply_of(rendered: dict[str, Any], *, default_status: int, default_body: Any = None) -> Reply:
    headers = {}
    for name, value in (rendered.get("headers") or {}).items():
        try:
            headers[name] = header_value(name, value)
        except ValueError:
            log.warning("webhook answer: header %r dropped: its rendered value has control characters", name)
    body = rendered["body"] if "body" in rendered else default_body
    return Reply(status=rendered.get("status", default_status), headers=headers, body=body)


def options(request: Request, config: WebhookConfig, allow: str) -> HTTPResponse:
    origin = request.headers.get("origin")
    requested = (request.headers.get("access-control-request-method") or "").upper()
    if not (config.cors and origin and requested):
        return _Empty(status=204, headers={"Allow": allow})
    if not config.cors.allows(origin) or requested not in config.methods:
        return refuse(
            request,
            403,
            "cors_denied", f"origin {origin!r} may not call this webhook with {requested}", headers={"Vary": "Origin"}
        )
    headers = {
        "Access-Control-Allow-Methods": ", ".join(config.methods),
        "Access-Control-Allow-Headers": ", ".join(config.cors.headers or ("Content-Type", "Authorization")),
        "Access-Control-Max-Age": str(config.cors.max_age),
        "Allow": allow,
    }
    response = _Empty(status=204, headers=headers)
    add_cors(request, config, response)
    return response


def add_cors(request: Request, config: WebhookConfig, response: HTTPResponse) -> None:
    cors = config.cors
    origin = request.headers.get("origin")
    if cors is None or not cors.allows(origin):
        return
    wildcard = "*" in cors.origins and not cors.credentials
    response.headers["Access-Control-Allow-Origin"] = "*" if wildcard else str(origin)
    if not wildcard:
        response.headers["Vary"] = "Origin"
    if cors.credentials:
        response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Expose-Headers"] = EXECUTION_HEADER


def not_recorded(key: str) -> HTTPResponse:
    """The execution could not be stored (database down or refusing): the sender should retry,
    and must not take a 2xx for an event nobody will run."""
    log.exception("webhook %r: the call could not be recorded", key)
    return error_response(
        503, "unavailable", "the call could not be recorded; retry later", headers={"Retry-After": str(RETRY_AFTER)}
    )


def unavailable(key: str) -> HTTPResponse:
    log.warning("webhook %r: the database could not be read", key, exc_info=True)
    return error_response(503, "unavailable", "the status could not be read; retry later", headers={"Retry-After": str(RETRY_AFTER)})


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


def _pop_header(headers: dict[str, str], name: str) -> str | None:
    for key in list(headers):
        if key.lower() == name:
            return headers.pop(key)
    return None
