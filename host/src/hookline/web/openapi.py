"""The OpenAPI 3.1 document of the management API, plus every route plugins contribute.

The management API is described here in full. Plugin routes are added from the app's router
with their methods and their handler's docstring, so the document never omits a route.
"""

from __future__ import annotations

import re
from typing import Any

from sanic import Sanic

from hookline.definitions import WORKFLOW_SCHEMA
from hookline.plugins import host_version
from hookline.replay import BULK_REPLAY_SCHEMA, REPLAY_SCHEMA

_ERROR = {"$ref": "#/components/responses/Error"}
_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next_cursor` of the previous page"},
]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


#: 503 with ``Retry-After``: too much work waits in the server process.
_OVERLOADED = {
    **_json({"$ref": "#/components/schemas/Error"}, "Overloaded: retry after Retry-After seconds"),
    "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
}
_EXECUTION_ID = {"name": "execution_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_FLAG = {"type": "string", "enum": ["1", "true", "yes", "0", "false", "no"]}
#: A time in a query string: ISO 8601, with or without an offset (UTC without), or a date.
_TIME = {"type": "string", "description": "ISO 8601"}

_DEFINITION_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/WorkflowDefinition"}},
        "application/yaml": {"schema": {"$ref": "#/components/schemas/WorkflowDefinition"}},
    },
}

MANAGEMENT_PATHS: dict[str, Any] = {
    "/api/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": _json({"type": "object"})}}},
    "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": _json({"type": "object"})}}},
    "/api/workflows": {
        "post": {
            "summary": "Create a workflow",
            "requestBody": _DEFINITION_BODY,
            "responses": {"201": _json({"$ref": "#/components/schemas/SaveResult"}, "Created"), "400": _ERROR, "401": _ERROR, "409": _ERROR, "422": _ERROR},
        },
        "get": {
            "summary": "List workflows, newest first",
            "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "matches key, title or webhook id"},
                {
                    "name": "include",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string", "enum": ["activity"]}},
                    "style": "form",
                    "explode": False,
                    "description": "`activity`: each workflow's last execution and its executions' counts by status since `activity_since`",
                },
                {"name": "activity_since", "in": "query", "schema": _TIME, "description": "with include=activity: count executions created at or after this time (default: 24 hours ago)"},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _json(_page("WorkflowSummary")), "400": _ERROR, "401": _ERROR},
        },
    },
    "/api/workflows/{key}": {
        "parameters": [_KEY],
        "get": {"summary": "A workflow's current definition and versions", "responses": {"200": _json({"$ref": "#/components/schemas/WorkflowDetail"}), "401": _ERROR, "404": _ERROR}},
        "put": {
            "summary": "Replace the definition (a changed one becomes a new version)",
            "requestBody": _DEFINITION_BODY,
            "responses": {"200": _json({"$ref": "#/components/schemas/SaveResult"}), "400": _ERROR, "401": _ERROR, "404": _ERROR, "422": _ERROR},
        },
        "delete": {"summary": "Delete a workflow, its versions and executions", "responses": {"204": {"description": "Deleted"}, "401": _ERROR, "404": _ERROR}},
    },
    "/api/workflows/{key}/versions/{number}": {
        "parameters": [_KEY, {"name": "number", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
        "get": {
            "summary": "One version of a workflow as saved: its definition, current or not",
            "responses": {"200": _json({"type": "object"}), "401": _ERROR, "404": _ERROR},
        },
    },
    "/api/workflows/{key}/run": {
        "parameters": [_KEY],
        "post": {
            "summary": "Run a workflow by hand; the body is the input",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {}}}},
            "responses": {"200": _json({"$ref": "#/components/schemas/Execution"}), "400": _ERROR, "401": _ERROR, "404": _ERROR},
        },
    },
    "/api/workflows/{key}/replay": {
        "parameters": [_KEY],
        "post": {
            "summary": "Replay a workflow's finished executions (by default the failed ones), oldest first",
            "requestBody": {"required": False, "content": {"application/json": {"schema": BULK_REPLAY_SCHEMA}}},
            "responses": {
                "202": _json({"$ref": "#/components/schemas/BulkReplay"}, "Queued"),
                "400": _ERROR, "401": _ERROR, "404": _ERROR, "503": _OVERLOADED,
            },
        },
    },
    "/api/executions": {
        "get": {
            "summary": "List executions, newest first",
            "description": (
                "Every filter given narrows the list. `after` gives the executions newer than an id, newest first: "
                "poll with the newest id seen to get what arrived since (follow `next_cursor`, with the same `after`, "
                "when more arrived than `limit`)."
            ),
            "parameters": [
                {"name": "workflow", "in": "query", "schema": {"type": "string"}, "description": "a workflow's key"},
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/ExecutionStatus"}},
                    "style": "form",
                    "explode": True,
                    "description": "any of these statuses (repeat, or comma-separated)",
                },
                {
                    "name": "mode",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string", "enum": ["sync", "async", "manual", "replay"]}},
                    "style": "form",
                    "explode": True,
                    "description": "any of these modes (repeat, or comma-separated)",
                },
                {"name": "since", "in": "query", "schema": _TIME, "description": "created at or after (ISO 8601; UTC when no offset is given)"},
                {"name": "until", "in": "query", "schema": _TIME, "description": "created before (ISO 8601)"},
                {
                    "name": "q",
                    "in": "query",
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "text in the request: the body, query or headers the trigger received, in any letter case",
                },
                {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "only executions newer than this id"},
                {"name": "replay_of", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "only the replays of this execution"},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _json(_page("ExecutionSummary")), "400": _ERROR, "401": _ERROR, "404": _ERROR},
        },
        "delete": {
            "summary": "Delete finished executions: by retention policy, older than an age, or all",
            "description": (
                "Without `older_than` or `all`, applies the retention policies (each workflow's `retention`, "
                "else the server's default), as the server does every hour. Queued and running executions, and "
                "executions whose idempotency key still holds, are never deleted."
            ),
            "parameters": [
                {"name": "older_than", "in": "query", "schema": {"type": "string"}, "description": "a duration ('30d', '12h', seconds): created longer ago, whatever the policies"},
                {"name": "all", "in": "query", "schema": _FLAG, "description": "every finished execution, of any age"},
                {"name": "workflow", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True, "description": "finished statuses (repeat, or comma-separated)"},
                {"name": "dry_run", "in": "query", "schema": _FLAG, "description": "count, delete nothing"},
                {"name": "batch", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}, "description": "executions deleted per transaction"},
            ],
            "responses": {"200": _json({"$ref": "#/components/schemas/PurgeResult"}), "400": _ERROR, "401": _ERROR, "404": _ERROR},
        },
    },
    "/api/executions/{execution_id}": {
        "parameters": [_EXECUTION_ID],
        "get": {"summary": "One execution with its jobs", "responses": {"200": _json({"$ref": "#/components/schemas/Execution"}), "401": _ERROR, "404": _ERROR}},
    },
    "/api/executions/{execution_id}/replay": {
        "parameters": [_EXECUTION_ID],
        "post": {
            "summary": "Replay a finished execution from its stored context",
            "description": (
                "Queues a new execution (mode `replay`, `replay_of` this one) of the original version or the current one. "
                "With `wait` (body, or `?wait=true`), answers once it has finished (200), or as it stands after `timeout` (202)."
            ),
            "parameters": [{"name": "wait", "in": "query", "schema": _FLAG}],
            "requestBody": {"required": False, "content": {"application/json": {"schema": REPLAY_SCHEMA}}},
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Execution"}, "The finished replay (with wait)"),
                "202": _json({"oneOf": [{"$ref": "#/components/schemas/Replay"}, {"$ref": "#/components/schemas/Execution"}]}, "Queued (or, with wait, not finished yet)"),
                "400": _ERROR, "401": _ERROR, "404": _ERROR, "409": _ERROR, "503": _OVERLOADED,
            },
        },
    },
    "/api/refusals": {
        "get": {
            "summary": "Calls a trigger refused, newest first",
            "description": (
                "What the webhook door turned away (unknown key, disabled workflow, bad signature, wrong method, "
                "too large, rate limited, missing parameters, ...), with the cause. Sampled under a flood: "
                "`similar_dropped` counts the refusals of the same workflow that followed and were not kept."
            ),
            "parameters": [
                {"name": "workflow", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {"type": "integer", "minimum": 100, "maximum": 599}},
                {"name": "cause", "in": "query", "schema": {"type": "string"}, "description": "the `error` code answered (invalid_signature, ...)"},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _json(_page("RefusalSummary")), "400": _ERROR, "401": _ERROR},
        },
    },
    "/api/refusals/{refusal_id}": {
        "parameters": [{"name": "refusal_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "get": {"summary": "One refused call with its headers and the start of its body", "responses": {"200": _json({"$ref": "#/components/schemas/Refusal"}), "401": _ERROR, "404": _ERROR}},
    },
    "/api/plugins": {
        "get": {
            "summary": "Installed plugins and what each contributes",
            "parameters": [{"name": "all", "in": "query", "schema": {"type": "boolean"}, "description": "include the host's default plugins, and the disabled ones"}],
            "responses": {"200": _json({"type": "object", "properties": {"plugins": {"type": "array", "items": {"$ref": "#/components/schemas/Plugin"}}}}), "401": _ERROR},
        },
    },
}

def _rebased(schema: Any) -> Any:
    """The workflow schema's ``#/$defs/node`` references, pointed at this document's components."""
    if isinstance(schema, dict):
        return {k: ("#/components/schemas/WorkflowNode" if k == "$ref" and v == "#/$defs/node" else _rebased(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebased(item) for item in schema]
    return schema


_TIMESTAMP = {"type": "string", "format": "date-time"}
_MAYBE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        "additionalProperties": True,
    },
    "WorkflowDefinition": _rebased({k: v for k, v in WORKFLOW_SCHEMA.items() if k not in ("$schema", "$defs")}),
    "WorkflowNode": _rebased(WORKFLOW_SCHEMA["$defs"]["node"]),
    "SaveResult": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "version": {"type": "integer"},
            "enabled": {"type": "boolean"},
            "created": {"type": "boolean"},
            "changed": {"type": "boolean"},
            "endpoints": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "WorkflowSummary": {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "title": {"type": "string"},
            "enabled": {"type": "boolean"},
            "trigger": {"type": "string"},
            "version": {"type": ["integer", "null"]},
            "runnable": {
                "type": "boolean",
                "description": "false when the current version cannot run on this server: a type it uses is missing "
                "(its plugin is not installed, or disabled), or it failed to load here",
            },
            "problem": {"type": ["string", "null"], "description": "why it cannot run here (null when runnable)"},
            "sync": {"type": ["boolean", "null"], "description": "whether a caller waits for the workflow's answer"},
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "activity": {"$ref": "#/components/schemas/WorkflowActivity"},
        },
    },
    "WorkflowActivity": {
        "type": ["object", "null"],
        "description": "with include=activity: the workflow's last execution and its executions since `since`",
        "required": ["since", "last_execution", "counts", "total"],
        "properties": {
            "since": _TIMESTAMP,
            "last_execution": {
                "type": ["object", "null"],
                "description": "its newest execution (null: none)",
                "properties": {"id": {"type": "integer"}, "status": {"$ref": "#/components/schemas/ExecutionStatus"}, "created_at": _TIMESTAMP},
            },
            "counts": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "executions created since `since`, by status (statuses with none are left out)",
            },
            "total": {"type": "integer", "description": "executions created since `since`"},
        },
    },
    "WorkflowDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/WorkflowSummary"},
            {
                "type": "object",
                "properties": {
                    "definition": {"$ref": "#/components/schemas/WorkflowDefinition"},
                    "endpoints": {"type": "object", "additionalProperties": {"type": "string"}},
                    "versions": {"type": "array", "items": {"type": "object"}},
                },
            },
        ]
    },
    "ExecutionStatus": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "error", "cancelled", "timed_out"]},
    "ExecutionSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "workflow": {"type": "string"},
            "status": {"$ref": "#/components/schemas/ExecutionStatus"},
            "mode": {"type": "string", "enum": ["sync", "async", "manual", "replay"]},
            "trigger": {"type": "string"},
            "error": {"type": ["object", "null"]},
            "created_at": _TIMESTAMP,
            "started_at": _MAYBE_TIMESTAMP,
            "finished_at": _MAYBE_TIMESTAMP,
            "duration_ms": {"type": ["number", "null"]},
            "replay_of": {"type": ["integer", "null"], "description": "the execution this one replays"},
        },
    },
    "Replay": {
        "type": "object",
        "required": ["execution", "replay_of", "workflow", "version", "status"],
        "properties": {
            "execution": {"type": "integer", "description": "the new execution"},
            "replay_of": {"type": "integer"},
            "workflow": {"type": "string"},
            "version": {"type": "integer", "description": "the version it runs"},
            "status": {"type": "string", "enum": ["queued"]},
        },
    },
    "BulkReplay": {
        "type": "object",
        "required": ["workflow", "count", "replays"],
        "properties": {
            "workflow": {"type": "string"},
            "count": {"type": "integer"},
            "replays": {"type": "array", "items": {"$ref": "#/components/schemas/Replay"}},
        },
    },
    "PurgeResult": {
        "type": "object",
        "required": ["deleted", "dry_run", "protected", "workflows", "statuses"],
        "properties": {
            "deleted": {"type": "integer", "description": "executions deleted (with dry_run: that would be)"},
            "dry_run": {"type": "boolean"},
            "protected": {"type": "integer", "description": "matching executions kept because their idempotency key still holds"},
            "workflows": {"type": "object", "additionalProperties": {"type": "integer"}},
            "statuses": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "Execution": {
        "allOf": [
            {"$ref": "#/components/schemas/ExecutionSummary"},
            {
                "type": "object",
                "properties": {
                    "version": {"type": "integer"},
                    "context": {},
                    "reply": {"type": ["object", "null"]},
                    "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                },
            },
        ]
    },
    "Job": {
        "type": "object",
        "properties": {
            "node": {"type": "string"},
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["succeeded", "failed", "error", "timed_out"]},
            "input": {},
            "result": {},
            "branch": {"type": ["string", "null"]},
            "error": {"type": ["object", "null"]},
            "started_at": _TIMESTAMP,
            "finished_at": _TIMESTAMP,
            "duration_ms": {"type": "number"},
        },
    },
    "RefusalSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "workflow": {"type": ["string", "null"], "description": "null: no workflow has the key called (see path)"},
            "status": {"type": "integer"},
            "cause": {"type": "string"},
            "message": {"type": "string"},
            "method": {"type": "string"},
            "path": {"type": "string"},
            "address": {"type": ["string", "null"]},
            "body_size": {"type": ["integer", "null"], "description": "the whole body's bytes; null if it was not read"},
            "body_truncated": {"type": "boolean"},
            "similar_dropped": {"type": "integer", "description": "refusals of the same workflow after this one, not kept"},
            "created_at": _TIMESTAMP,
        },
    },
    "Refusal": {
        "allOf": [
            {"$ref": "#/components/schemas/RefusalSummary"},
            {
                "type": "object",
                "properties": {
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "body": {"type": ["string", "null"]},
                    "body_encoding": {"type": ["string", "null"], "enum": ["text", "base64", None]},
                },
            },
        ]
    },
    "Plugin": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "distribution": {"type": ["string", "null"]},
            "version": {"type": ["string", "null"]},
            "default": {"type": "boolean"},
            "hooks": {"type": "array", "items": {"type": "string"}},
            "trigger_types": {"type": "array", "items": {"type": "string"}},
            "node_types": {"type": "array", "items": {"type": "string"}},
            "titles": {"type": "object", "additionalProperties": {"type": "string"}},
            "disabled": {"type": "boolean", "description": "present (true) on an installed plugin not loaded (with all)"},
            "disabled_by": {"type": "string", "description": "what disabled it: HOOKLINE_DISABLE_PLUGINS"},
        },
    },
}


def openapi_path(route_path: str) -> str:
    """Sanic's ``api/workflows/<key:str>`` -> OpenAPI's ``/api/workflows/{key}``."""
    parts = ("{" + part[1:-1].split(":")[0] + "}" if part.startswith("<") else part for part in route_path.split("/"))
    return "/" + "/".join(parts).lstrip("/")


def openapi_document(app: Sanic) -> dict[str, Any]:
    paths = dict(MANAGEMENT_PATHS)
    for route in app.router.routes:
        if route.name.split(".")[1] == "hookline_api":
            continue
        path = openapi_path(route.path)
        doc = (route.handler.__doc__ or route.name).strip()
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{([^}]+)\}", path)
        ]
        blueprint = app.blueprints.get(route.name.split(".")[1])
        if blueprint is not None and getattr(blueprint.ctx, "hookline_openapi", True) is False:
            continue  # pages for people (the console), not an API
        guarded = blueprint is not None and getattr(blueprint.ctx, "hookline_token_required", False)
        public = guarded and "/" + route.path.lstrip("/") in blueprint.ctx.hookline_public_paths
        for method in sorted(route.methods):
            if method in ("HEAD", "OPTIONS"):
                continue
            operation: dict[str, Any] = {
                "summary": doc.splitlines()[0],
                "description": doc,
                "parameters": parameters,
                "responses": {"default": {"description": "see the plugin's documentation"}},
            }
            if not guarded or public:  # routes of require_token() take the document's bearer
                operation["security"] = []
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hookline", "version": host_version()},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {"Error": _json({"$ref": "#/components/schemas/Error"}, "Error")},
        },
    }
