"""The management API: a default plugin of the host, registered like any other plugin.

Every route but ``/openapi.json`` and ``/api/health`` needs ``Authorization: Bearer <token>``.
Handlers only translate HTTP to the services the CLI uses too (``host.workflows``,
``host.executions``, ``host.replays``, ``host.retention``, ``host.refused_calls``).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import yaml
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty
from sanic.response import json as json_response

from hookline.errors import BadRequest, InvalidBody, Overloaded
from hookline.hookspecs import hookimpl
from hookline.host import Host
from hookline.pagination import parse_limit
from hookline.replay import BULK_REPLAY_SCHEMA, DEFAULT_WAIT, REPLAY_SCHEMA, check_body, parse_time
from hookline.retention import DEFAULT_BATCH, parse_age
from hookline.web import limits
from hookline.web.auth import require_token
from hookline.web.errors import error_response
from hookline.web.limits import check_json
from hookline.web.openapi import openapi_document
from hookline.workflows import endpoints_at

PUBLIC_PATHS = frozenset({"/openapi.json", "/api/health"})
#: Seconds an overloaded caller is asked to wait before trying again.
RETRY_AFTER = 5
_TRUE = ("1", "true", "yes")


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
        return json_response(_at_this_address(request, result.to_dict()), status=201)

    @bp.get("/api/workflows")
    async def list_workflows(request: Request) -> HTTPResponse:
        """List workflows, newest first; ``q`` matches key, title or trigger id. With
        ``include=activity``, each has its last execution and its executions' counts by status
        since ``activity_since`` (default: the last 24 hours)."""
        included = _list_arg(request, "include")
        for name in included:
            if name != "activity":
                raise BadRequest(f"include may only name 'activity', not {name!r}", include=name)
        activity_since = request.args.get("activity_since")
        if activity_since is not None and not included:
            raise BadRequest("activity_since needs include=activity")
        page = await host.workflows.list(
            q=request.args.get("q"), limit=parse_limit(request.args.get("limit")), cursor=request.args.get("cursor")
        )
        if included:
            activity = await host.executions.activity([item["key"] for item in page.items], since=activity_since)
            for item in page.items:
                item["activity"] = activity.get(item["key"])
        return json_response(page.to_dict())

    @bp.get("/api/workflows/<key>")
    async def get_workflow(request: Request, key: str) -> HTTPResponse:
        """The current definition, endpoints and versions of a workflow."""
        return json_response(_at_this_address(request, await host.workflows.get(key)))

    @bp.get("/api/workflows/<key>/versions/<number:int>")
    async def get_workflow_version(request: Request, key: str, number: int) -> HTTPResponse:
        """One version of a workflow as it was saved (its definition), current or not."""
        return json_response(await host.workflows.version(key, number))

    @bp.put("/api/workflows/<key>")
    async def replace_workflow(request: Request, key: str) -> HTTPResponse:
        """Replace the definition; a changed definition becomes a new version."""
        result = await host.workflows.replace(key, _definition_body(request))
        return json_response(_at_this_address(request, result.to_dict()))

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
        """Executions, newest first, filtered by ``workflow``, ``status``, ``mode``, ``since``,
        ``until``, ``q`` (text in the request), ``after`` (newer than an id) and ``replay_of``."""
        page = await host.executions.list(
            workflow=request.args.get("workflow"),
            status=_list_arg(request, "status"),
            mode=_list_arg(request, "mode"),
            since=request.args.get("since"),
            until=request.args.get("until"),
            q=request.args.get("q"),
            after=request.args.get("after"),
            replay_of=request.args.get("replay_of"),
            limit=parse_limit(request.args.get("limit")),
            cursor=request.args.get("cursor"),
        )
        return json_response(page.to_dict())

    @bp.delete("/api/executions")
    async def purge_executions(request: Request) -> HTTPResponse:
        """Delete finished executions: by retention policy, or older than ``older_than``, or
        ``all``; narrowed by ``workflow`` and ``status``. ``dry_run`` only counts."""
        older_than = request.args.get("older_than")
        batch = request.args.get("batch")
        result = await host.retention.purge(
            workflow=request.args.get("workflow"),
            statuses=_list_arg(request, "status"),
            older_than=parse_age(older_than) if older_than not in (None, "") else None,
            everything=_flag(request, "all"),
            dry_run=_flag(request, "dry_run"),
            batch=_int_arg("batch", batch) if batch not in (None, "") else DEFAULT_BATCH,
        )
        return json_response(result.to_dict())

    @bp.get("/api/executions/<execution_id>")
    async def get_execution(request: Request, execution_id: str) -> HTTPResponse:
        """One execution with its context, reply and jobs."""
        return json_response(await host.executions.get(execution_id))

    @bp.post("/api/executions/<execution_id>/replay")
    async def replay_execution(request: Request, execution_id: str) -> HTTPResponse:
        """Queue a replay of a finished execution from its stored context; with ``wait``,
        answer with the replay once it has finished."""
        options = check_body(_json_body(request) if request.body else {}, REPLAY_SCHEMA)
        try:
            replay = await host.replays.replay(execution_id, version=options.get("version", "original"))
        except Overloaded as exc:
            return _overloaded(exc)
        if not (options.get("wait") or _flag(request, "wait")):
            return json_response(replay.to_dict(), status=202)
        record = await host.executions.wait_finished(replay.execution, options.get("timeout", DEFAULT_WAIT))
        execution = await host.executions.get(replay.execution)
        return json_response(execution, status=200 if record is not None and record.finished else 202)

    @bp.post("/api/workflows/<key>/replay")
    async def replay_executions(request: Request, key: str) -> HTTPResponse:
        """Queue replays of a workflow's finished executions (by default those that failed),
        oldest first."""
        options = check_body(_json_body(request) if request.body else {}, BULK_REPLAY_SCHEMA)
        try:
            replays = await host.replays.replay_many(
                key,
                statuses=options.get("status"),
                since=parse_time(options.get("since"), "since"),
                until=parse_time(options.get("until"), "until"),
                limit=options.get("limit", 1000),
                version=options.get("version", "original"),
                skip_replayed=options.get("skip_replayed", True),
            )
        except Overloaded as exc:
            return _overloaded(exc)
        return json_response({"workflow": key, "count": len(replays), "replays": [r.to_dict() for r in replays]}, status=202)

    @bp.get("/api/refusals")
    async def list_refusals(request: Request) -> HTTPResponse:
        """Calls a trigger refused (bad signature, unknown key, ...), newest first, filtered by
        ``workflow``, ``status`` and ``cause``."""
        page = await host.refused_calls.list(
            workflow=request.args.get("workflow"),
            status=request.args.get("status"),
            cause=request.args.get("cause"),
            limit=parse_limit(request.args.get("limit")),
            cursor=request.args.get("cursor"),
        )
        return json_response(page.to_dict())

    @bp.get("/api/refusals/<refusal_id>")
    async def get_refusal(request: Request, refusal_id: str) -> HTTPResponse:
        """One refused call with its (redacted) headers and the start of its body."""
        return json_response(await host.refused_calls.get(refusal_id))

    @bp.get("/api/plugins")
    async def list_plugins(request: Request) -> HTTPResponse:
        """Installed plugins and the trigger and node types each contributes; with ``all``,
        the host's default plugins and the disabled plugins too."""
        include_default = request.args.get("all") in ("1", "true", "yes")
        return json_response({"plugins": host.describe_plugins(include_default=include_default)})

    return bp


def _flag(request: Request, name: str) -> bool:
    return (request.args.get(name) or "").lower() in _TRUE


def _list_arg(request: Request, name: str) -> list[str]:
    """``?status=a&status=b`` or ``?status=a,b``."""
    return [part.strip() for value in request.args.getlist(name, []) for part in value.split(",") if part.strip()]


def _int_arg(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}") from None


def _overloaded(exc: Overloaded) -> HTTPResponse:
    return error_response(503, exc.code, exc.message, headers={"Retry-After": str(RETRY_AFTER)}, **exc.details)


def _json_body(request: Request) -> Any:
    try:
        data = limits.loads(request.body)
    except RecursionError:
        raise InvalidBody("the request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBody(f"the request body is not valid JSON: {exc}") from None
    check_json(data, "the request body")
    return data


def _at_this_address(request: Request, workflow: dict[str, Any]) -> dict[str, Any]:
    """``workflow`` with its endpoints given as paths (no ``HOOKLINE_PUBLIC_URL``) made full URLs
    on the address the caller reached this server at: the one address known to work for it."""
    return {**workflow, "endpoints": endpoints_at(workflow["endpoints"], f"{request.scheme}://{request.host}")}


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
        check_json(data, "the definition")
        try:  # YAML has .nan and .inf, which JSON (and so storage) has not
            json.dumps(data, allow_nan=False)
        except ValueError:
            raise InvalidBody("the definition holds .nan or .inf, which JSON cannot store") from None
        except TypeError as exc:  # dates, binary and other YAML-only types
            raise InvalidBody(f"the definition holds a value JSON cannot store: {exc}") from None
    else:
        data = _json_body(request)
    return data
