"""The ``response`` node type."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Iterable, Mapping

from hookline import NodeDefinition, NodeError, NodeResult, NodeRun, NodeType, Reply, WorkflowDefinition
from hookline.templates import as_text
from hookline.web import RESPONSE_HEADERS_SCHEMA, header_value, response_header_problems

#: A ``{{ }}`` template in place of a value, checked again once rendered.
_TEMPLATE = r"^\s*\{\{.*\}\}\s*$"


REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class ResponseNode(NodeType):
    """Answers the waiting caller with ``status``, ``headers`` and ``body`` (all templated).

    ``format: auto`` (default) sends a string ``body`` as text and any other JSON value as
    ``application/json``; ``json`` sends even a string as JSON; ``text`` sends the body's text
    form. No body (or ``null``) sends an empty one. ``redirect: URL`` answers a redirect (302 by
    default) with ``Location`` and no body. With ``end: true`` (default) the workflow stops after
    answering; with ``end: false`` it answers and goes on. Only the first Response node that runs
    answers; a later one is recorded with ``sent: false`` and the reason.
    """

    name = "response"
    title = "Response: answer the webhook caller"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # A number, or a template whose value is checked when the node runs.
            "status": {"type": ["integer", "string"], "minimum": 100, "maximum": 599, "pattern": _TEMPLATE},
            "headers": RESPONSE_HEADERS_SCHEMA,
            "body": {},
            "format": {"enum": ["auto", "json", "text"]},
            "redirect": {"type": "string", "minLength": 1, "maxLength": 8192},
            "end": {"type": "boolean"},
        },
    }
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "status": {
            "label": "Status",
            "help": "The HTTP status, 100 to 599 (default 200, or 302 with a redirect), or a template giving one.",
            # text, not number: a template such as {{ $nodes.check.status }} is allowed too.
            "widget": "text",
            "order": 1,
            "placeholder": "200",
        },
        "body": {
            "label": "Body",
            "help": "Any JSON value, templated: a string is sent as text, anything else as JSON (see 'format').",
            "widget": "json",
            "order": 2,
            "placeholder": '{"received": "{{ $context.body.id }}"}',
        },
        "headers": {
            "label": "Headers",
            "help": "Response headers by name, values templated.",
            "widget": "json",
            "order": 3,
            "placeholder": '{"X-Order": "{{ $context.body.id }}"}',
        },
        "format": {
            "label": "Format",
            "help": "auto (default): a string body as text, other values as JSON; json: even a string as JSON; "
            "text: the body's text form.",
            "widget": "select",
            "order": 4,
        },
        "redirect": {
            "label": "Redirect to",
            "help": "Answer a redirect to this URL (templated) instead of a body.",
            "widget": "text",
            "order": 5,
            "placeholder": "https://example.com/thanks",
        },
        "end": {
            "label": "End the workflow after answering",
            "help": "On (default): the workflow stops here. Off: it answers and goes on.",
            "widget": "checkbox",
            "order": 6,
        },
    }

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        config = node.config or {}
        if not workflow.sync:
            yield "a Response node answers a waiting caller, but this workflow is not synchronous (set 'sync: true')"
        yield from response_header_problems(config.get("headers"))
        if "redirect" in config:
            if "body" in config or "format" in config:
                yield "a redirect has no body: remove 'body' and 'format', or 'redirect'"
            status = config.get("status")
            if isinstance(status, int) and status not in REDIRECT_STATUSES:
                yield f"a redirect's status is one of {', '.join(map(str, REDIRECT_STATUSES))}, not {status}"
            if any(name.lower() == "location" for name in config.get("headers") or {}):
                yield "'redirect' sets the Location header; do not set it in 'headers' too"

    async def execute(self, run: NodeRun) -> NodeResult:
        config = run.config
        redirect = config.get("redirect")
        status = _status(config.get("status", 302 if redirect is not None else 200))
        try:
            headers = {name: header_value(name, value) for name, value in (config.get("headers") or {}).items()}
            if redirect is not None:
                if status not in REDIRECT_STATUSES:
                    raise ValueError(f"a redirect's status is one of {', '.join(map(str, REDIRECT_STATUSES))}, not {status}")
                headers["Location"] = header_value("Location", redirect)
                if not headers["Location"]:
                    raise ValueError("the redirect URL is empty once rendered")
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        body = None if redirect is not None else config.get("body")
        if body is not None and config.get("format") == "json" and isinstance(body, str):
            # A JSON string: sent encoded, as JSON (a str body alone would go out as text).
            body = json.dumps(body, ensure_ascii=False)
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        elif body is not None and config.get("format") == "text" and not isinstance(body, str):
            body = as_text(body)
        reply = Reply(status=status, headers=headers, body=body)
        sent = run.reply(reply)
        result: dict[str, Any] = {**reply.to_dict(), "sent": sent}
        if not sent:
            result["reason"] = "an earlier node already answered" if run.replied else "nobody waits for an answer"
        return NodeResult(result=result, end=config.get("end", True))


def _status(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise NodeError(f"status must be a number from 100 to 599, got {json.dumps(value, default=str)}")
    return value
