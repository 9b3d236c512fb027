"""The ``response`` node type."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Iterable, Mapping

from hookline import NodeError, NodeResult, NodeRun, NodeType, Reply, WorkflowDefinition
from hookline.definitions import NodeDefinition
from hookline.web.headers import RESPONSE_HEADERS_SCHEMA, header_value, response_header_problems

#: A ``{{ }}`` template in place of a value, checked again once rendered.
_TEMPLATE = r"^\s*\{\{.*\}\}\s*$"


class ResponseNode(NodeType):
    """Answers the waiting caller with ``status``, ``headers`` and ``body`` (templated).

    A JSON value as ``body`` is sent as ``application/json``; a string as text; no body (or
    ``null``) sends an empty one. With ``end: true`` (default) the workflow stops after
    answering; with ``end: false`` it answers and goes on. Only the first Response node that
    runs answers; a later one is recorded with ``sent: false``.
    """

    name = "response"
    title = "Response: answer the webhook caller"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            # A number, or a template whose value is checked when the node runs.
            "status": {"type": ["integer", "string"], "minimum": 100, "maximum": 599, "pattern": _TEMPLATE, "default": 200},
            "headers": RESPONSE_HEADERS_SCHEMA,
            "body": {},
            "end": {"type": "boolean", "default": True},
        },
    }

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        if not workflow.sync:
            yield "a Response node answers a waiting caller, but this workflow is not synchronous (set 'sync: true')"
        yield from response_header_problems((node.config or {}).get("headers"))

    async def execute(self, run: NodeRun) -> NodeResult:
        config = run.config
        status = config.get("status", 200)
        if isinstance(status, str) and status.strip().isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise NodeError(f"status must be a number from 100 to 599, got {json.dumps(status, default=str)}")
        try:
            headers = {name: header_value(name, value) for name, value in (config.get("headers") or {}).items()}
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        reply = Reply(status=status, headers=headers, body=config.get("body"))
        sent = run.reply(reply)
        result: dict[str, Any] = {**reply.to_dict(), "sent": sent}
        if not sent:
            result["reason"] = "an earlier node already answered" if run.replied else "nobody waits for an answer"
        return NodeResult(result=result, end=config.get("end", True))
