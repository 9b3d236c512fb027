"""Workflows: the list, a workflow's page, editing, versions and their diff, enable/disable,
running by hand, deleting."""

from __future__ import annotations

import difflib
import json
from typing import Any

import yaml
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import redirect

from hookline.errors import BadRequest, DefinitionError, NotFound
from hookline.web import endpoints_at, parse_limit
from hookline_console.editor import EditorProblem, load_document, locate_problems, restore_hidden
from hookline_console.masking import mask_definition
from hookline_console.web import PREFIX, Console, form_value, guarded

#: Executions shown on a workflow's page.
RECENT = 10


def register(bp: Blueprint, console: Console) -> None:
    host = console.host

    async def workflows(request: Request) -> HTTPResponse:
        q = request.args.get("q", "").strip()
        page = await host.workflows.list(q=q or None, limit=parse_limit(request.args.get("limit")), cursor=request.args.get("cursor"))
        summaries = await host.executions.activity([w["key"] for w in page.items])
        return console.render(
            request,
            "workflows.html",
            items=page.items,
            summaries=summaries,
            next_cursor=page.next_cursor,
            q=q,
            deleted=request.args.get("deleted"),
        )

    async def workflow(request: Request, key: str) -> HTTPResponse:
        return await _workflow_page(request, key, run_input=request.args.get("input", ""))

    async def _workflow_page(
        request: Request, key: str, *, status: int = 200, run_input: str = "", problem: str | None = None
    ) -> HTTPResponse:
        """A workflow's page; with ``problem``, as sent back after a run by hand it refused."""
        found = await host.workflows.get(key)
        recent = await host.executions.list(workflow=key, limit=RECENT)
        trigger_type = host.registry.triggers.get(found["trigger"])
        return console.render(
            request,
            "workflow.html",
            status=status,
            workflow=found,
            shown=mask_definition(found["definition"], host.registry),
            endpoints=endpoints_at(found["endpoints"], f"{request.scheme}://{request.host}"),
            trigger_title=trigger_type.title if trigger_type else found["trigger"],
            executions=recent.items,
            tabs=console.workflow_tabs(found["trigger"]),
            run_input=run_input,
            problem=problem,
        )

    async def set_enabled(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        enabled = form_value(request.form, "enabled") == "1"
        if found["definition"].get("enabled", True) != enabled:
            await host.workflows.replace(key, {**found["definition"], "enabled": enabled})
        return redirect(f"{PREFIX}/workflows/{key}", status=303)

    async def run(request: Request, key: str) -> HTTPResponse:
        text = form_value(request.form, "input").strip()
        try:
            data = json.loads(text) if text else {}
        except ValueError as exc:
            return await _workflow_page(request, key, status=400, run_input=text, problem=f"The input is not valid JSON: {exc}")
        execution = await host.executions.run_manual(key, data)
        return redirect(f"{PREFIX}/executions/{execution['id']}", status=303)

    async def confirm_delete(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        return console.render(request, "workflow_delete.html", workflow=found, problem=None)

    async def delete(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        if form_value(request.form, "confirm_key") != key:
            return console.render(
                request,
                "workflow_delete.html",
                status=400,
                workflow=found,
                problem="Type the workflow's key exactly to confirm.",
            )
        await host.workflows.delete(key)
        return redirect(f"{PREFIX}/workflows?deleted={key}", status=303)

    async def version(request: Request, key: str, number: int) -> HTTPResponse:
        found = await host.workflows.get(key)
        definition = await host.workflows.version(key, number)
        return console.render(
            request,
            "workflow_version.html",
            workflow=found,
            number=number,
            text=_yaml(mask_definition(definition["definition"], host.registry)),
        )

    async def diff(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        numbers = [v["version"] for v in found["versions"]]
        a = _version_arg(request, "a", numbers[1] if len(numbers) > 1 else numbers[0])
        b = _version_arg(request, "b", numbers[0])
        old = await host.workflows.version(key, a)
        new = await host.workflows.version(key, b)
        lines = list(
            difflib.unified_diff(
                _yaml(mask_definition(old["definition"], host.registry)).splitlines(),
                _yaml(mask_definition(new["definition"], host.registry)).splitlines(),
                fromfile=f"version {a}",
                tofile=f"version {b}",
                lineterm="",
            )
        )
        return console.render(request, "workflow_diff.html", workflow=found, a=a, b=b, numbers=numbers, lines=lines)

    async def edit_form(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        text = _yaml(mask_definition(found["definition"], host.registry))
        return console.render(request, "workflow_edit.html", workflow=found, text=text, problems=[], creating=False)

    async def edit(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        text = form_value(request.form, "definition")
        return await _save(request, text, stored=found)

    async def new_form(request: Request) -> HTTPResponse:
        return console.render(request, "workflow_edit.html", workflow=None, text=NEW_WORKFLOW, problems=[], creating=True)

    async def create(request: Request) -> HTTPResponse:
        return await _save(request, form_value(request.form, "definition"), stored=None)

    async def _save(request: Request, text: str, *, stored: dict[str, Any] | None) -> HTTPResponse:
        problems: list[EditorProblem]
        try:
            data = load_document(text)
            if stored is not None:
                if isinstance(data, dict) and data.get("key", stored["key"]) != stored["key"]:
                    raise BadRequest(f"the key cannot change here (it is {stored['key']!r}); create a new workflow instead")
                data = restore_hidden(data, stored["definition"])
                result = await host.workflows.replace(stored["key"], data)
            else:
                result = await host.workflows.create(data)
        except DefinitionError as exc:
            problems = locate_problems(text, exc.problems)
        except BadRequest as exc:
            problems = [EditorProblem(None, None, "", exc.message)]
        else:
            return redirect(f"{PREFIX}/workflows/{result.key}?saved={result.version}", status=303)
        return console.render(
            request,
            "workflow_edit.html",
            status=422,
            workflow=stored,
            text=text,
            problems=problems,
            creating=stored is None,
        )

    for handler, path, methods in (
        (workflows, "/workflows", ["GET"]),
        (new_form, "/workflows/new", ["GET"]),
        (create, "/workflows/new", ["POST"]),
        (workflow, "/workflows/<key>", ["GET"]),
        (set_enabled, "/workflows/<key>/enabled", ["POST"]),
        (run, "/workflows/<key>/run", ["POST"]),
        (confirm_delete, "/workflows/<key>/delete", ["GET"]),
        (delete, "/workflows/<key>/delete", ["POST"]),
        (version, "/workflows/<key>/versions/<number:int>", ["GET"]),
        (diff, "/workflows/<key>/diff", ["GET"]),
        (edit_form, "/workflows/<key>/edit", ["GET"]),
        (edit, "/workflows/<key>/edit", ["POST"]),
    ):
        bp.add_route(guarded(console, handler), path, methods=methods, name=f"{handler.__name__}_{methods[0].lower()}")


NEW_WORKFLOW = """\
key: my-workflow
title: My workflow
sync: true
trigger:
  type: webhook
  config: {}
nodes:
  - key: reply
    type: response
    config:
      status: 200
      body:
        received: "{{ $context.body }}"
"""


def _yaml(definition: Any) -> str:
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def _version_arg(request: Request, name: str, default: int) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a version number, not {value!r}") from None
