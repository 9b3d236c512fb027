"""The ``webhook`` trigger type: its config, endpoints and manual runs."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from hookline import TriggerType
from hookline.definitions import WorkflowDefinition
from hookline.web.headers import RESPONSE_HEADERS_SCHEMA, response_header_problems

#: Both paths reach the same workflow: NocoBase's form and a plain REST one.
PATHS = ("/api/webhook:trigger/{key}", "/api/webhooks/{key}")

_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "headers": RESPONSE_HEADERS_SCHEMA,
        "body": {},
    },
}


class WebhookTrigger(TriggerType):
    """Starts a workflow when its URL is called.

    With ``sync: true`` the caller waits and a Response node answers; otherwise the execution is
    stored as queued, the configured ``response`` (default ``200 ok``) goes out at once, and the
    workflow runs in the background.
    """

    name = "webhook"
    title = "Webhook: an HTTP call to the workflow's URL"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "response": {
                **_RESPONSE_SCHEMA,
                "description": "Answer of an asynchronous workflow (default: 200, body 'ok').",
            },
        },
    }

    def check(self, workflow: WorkflowDefinition) -> list[str]:
        response = (workflow.trigger.config or {}).get("response")
        if response is not None and workflow.sync:
            return ["'response' answers asynchronous workflows only; in a sync workflow a Response node answers"]
        return response_header_problems((response or {}).get("headers"))

    def endpoints(self, workflow: WorkflowDefinition) -> dict[str, str]:
        return {"webhook": PATHS[1].format(key=workflow.key), "webhook_nocobase": PATHS[0].format(key=workflow.key)}

    def search_terms(self, workflow: WorkflowDefinition) -> list[str]:
        return [path.format(key=workflow.key) for path in PATHS]

    async def manual_context(self, workflow: WorkflowDefinition, data: Any) -> dict[str, Any]:
        """A manual run takes ``{"body": ..., "query": ..., "headers": ...}`` (all optional);
        anything else is taken as the body."""
        parts = data if isinstance(data, dict) and set(data) <= {"body", "query", "headers", "method"} and data else {"body": data}
        body = parts.get("body")
        return {
            "method": parts.get("method", "POST"),
            "headers": {str(k).lower(): str(v) for k, v in (parts.get("headers") or {}).items()},
            "query": parts.get("query") or {},
            "body": body,
            "raw_body": None,
        }
