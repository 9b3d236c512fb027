"""The management API: a default plugin of the host, registered like any other plugin.

Every route but ``/openapi.json`` and ``/api/health`` needs ``Authorization: Bearer <token>``.
Handlers only translate HTTP to the services the CLI uses too (``host.workflows``,
``host.executions``).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import yaml
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty
from sanic.response import json as json_response

from hookline.errors import BadRequest, InvalidBody
from hookline.hookspecs import hookimpl
from hookline.host import Host
from hookline.pagination import parse_limit
from hookline.web.auth import require_token
from hookline.web.limits import MAX_DEPTH, nesting_depth
from hookline.web.openapi import openapi_document

PUBLIC_PATHS = frozenset({"/openapi.json", "/api/health"})


@hookimpl
def register_routes(register: Callable[[Blueprint], None], host: Host) -> None:
    register(build_blueprint(host))


def build_blueprint(host: Host) -> Blueprint:
    bp = Blueprint("hookline_api")
    require_token(bp, host, public=PUBLIC_PATHS)

    @bp.get("/api/health")
    async def health(request: Request) -> HTTPResponse:
        """Liveness: 200 while the server runs."""
        return json_response({"status": "ok"})

    @bp.get("/openapi.json")
    async def openapi(request: Request) -> HTTPResponse:
        """This document."""
        return json_response(openapi_document(request.app))

    @bp.post("/api/workflows")
    async def create_workflow(request: Request) -> HTTPResponse:
        """Create a workflow from a definition (JSON or YAML)."""
        result = await host.workflows.create(_definition_body(request))
        return json_response(result.to_dict(), status=201)

    @bp.get("/api/workflows")
    async def list_workflows(request: Request) -> HTTPResponse:
        """List workflows, newest first; ``q`` matches key, title or trigger id."""
        page = await host.workflows.list(
            q=request.args.get("q"), limit=parse_limit(request.args.get("limit")), cursor=request.args.get("cursor")
        )
        return json_response(page.to_dict())

    @bp.get("/api/workflows/<key>")
    async def get_workflow(request: Request, key: str) -> HTTPResponse:
        """The current definition, endpoints and versions of a workflow."""
        return json_response(await host.workflows.get(key))

    @bp.put("/api/workflows/<key>")
    async def replace_workflow(request: Request, key: str) -> HTTPResponse:
        """Replace the definition; a changed definition becomes a new version."""
        result = await host.workflows.replace(key, _definition_body(request))
        return json_response(result.to_dict())

    @bp.delete("/api/workflows/<key>")
    async def delete_workflow(request: Request, key: str) -> HTTPResponse:
        """Delete a workflow with its versions and executions."""
        await host.workflows.delete(key)
        return empty()

    @bp.post("/api/workflows/<key>/run")
    async def run_workflow(request: Request, key: str) -> HTTPResponse:
        """Run a workflow by hand with the body as input; answers with the finished execution."""
        data = _json_body(request) if request.body else {}
        return json_response(await host.executions.run_manual(key, data))

    @bp.get("/api/executions")
    async def list_executions(request: Request) -> HTTPResponse:
        """Executions, newest first, filtered by ``workflow`` and ``status``."""
        page = await host.executions.list(
            workflow=request.args.get("workflow"),
            status=request.args.get("status"),
            limit=parse_limit(request.args.get("limit")),
            cursor=request.args.get("cursor"),
        )
        return json_response(page.to_dict())

    @bp.get("/api/executions/<execution_id>")
    async def get_execution(request: Request, execution_id: str) -> HTTPResponse:
        """One execution with its context, reply and jobs."""
        return json_response(await host.executions.get(execution_id))

    @bp.get("/api/plugins")
    async def list_plugins(request: Request) -> HTTPResponse:
        """Installed plugins and the trigger and node types each contributes."""
        include_default = request.args.get("all") in ("1", "true", "yes")
        return json_response({"plugins": host.describe_plugins(include_default=include_default)})

    return bp


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body)
    except RecursionError:
        raise InvalidBody("the request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBody(f"the request body is not valid JSON: {exc}") from None


def _definition_body(request: Request) -> Any:
    if not request.body:
        raise BadRequest("send the workflow definition as the request body (JSON or YAML)")
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
        try:
            data = yaml.safe_load(request.body)
        except RecursionError:
            raise InvalidBody("the request body is nested too deeply") from None
        except yaml.YAMLError as exc:
            raise InvalidBody(f"the request body is not valid YAML: {exc}") from None
    else:
        data = _json_body(request)
    if nesting_depth(data) > MAX_DEPTH:
        raise InvalidBody(f"the definition is nested deeper than {MAX_DEPTH} levels")
    return data
