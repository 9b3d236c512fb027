"""Management routes of the webhook trigger (management API token required): sample parsing and
sample capture. Handlers translate HTTP to :mod:`hookline_webhook.samples` and
:class:`hookline_webhook.capture.CaptureService`, which the CLI uses too."""

from __future__ import annotations

from typing import Any

from hookline import Host
from hookline.errors import BadRequest, InvalidBody, NotFound
from hookline.web import json_loads, require_token
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json as json_response

from hookline_webhook.capture import DEFAULT_WINDOW, CaptureService
from hookline_webhook.samples import parse_sample


def build_admin_blueprint(host: Host, captures: CaptureService) -> Blueprint:
    bp = Blueprint("hookline_webhook_admin")
    require_token(bp, host)

    @bp.post("/api/webhook-samples/parse")
    async def parse_webhook_sample(request: Request) -> HTTPResponse:
        """Parse a sample (URL or query string, JSON, key-value pairs) into trigger parameters."""
        return json_response(parse_sample(_json_object(request, required=True)))

    @bp.post("/api/workflows/<key>/webhook-capture")
    async def arm_webhook_capture(request: Request, key: str) -> HTTPResponse:
        """Arm the workflow's URL to capture its next request as a sample (not run)."""
        options = _json_object(request, required=False)
        unknown = sorted(set(options) - {"window"})
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}; the only option is 'window' (seconds, 1 to 3600)")
        return json_response(await captures.arm(key, options.get("window", DEFAULT_WINDOW)), status=201)

    @bp.get("/api/workflows/<key>/webhook-capture")
    async def get_webhook_capture(request: Request, key: str) -> HTTPResponse:
        """The workflow's latest capture: status, the request captured, its parameters."""
        capture = await captures.latest(key)
        if capture is None:
            raise NotFound(
                f"workflow {key!r} has no capture; arm one with POST /api/workflows/{key}/webhook-capture", key=key
            )
        return json_response(capture)

    @bp.delete("/api/workflows/<key>/webhook-capture")
    async def cancel_webhook_capture(request: Request, key: str) -> HTTPResponse:
        """Cancel the workflow's armed capture; its URL runs the workflow again."""
        return json_response(await captures.cancel(key))

    return bp


def _json_object(request: Request, *, required: bool) -> dict[str, Any]:
    if not request.body:
        if required:
            raise BadRequest('send a JSON object such as {"json": {"a": 1}} as the request body')
        return {}
    try:
        value = json_loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidBody(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object")
    return value
