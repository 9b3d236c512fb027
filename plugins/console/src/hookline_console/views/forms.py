"""Creating and editing a workflow through forms generated from its types' config schemas,
beside the YAML editor. Saving goes through ``host.workflows.create`` / ``replace``: the same
validation as the API, its problems shown at their fields."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import redirect

from hookline.errors import Conflict, DefinitionError, Problem
from hookline_console.web import PREFIX, Console, form_value, guarded
from hookline_console.workflow_form import WorkflowForm, edit_form, new_form


def register(bp: Blueprint, console: Console) -> None:
    host = console.host

    def render(
        request: Request, form: WorkflowForm, *, workflow: dict[str, Any] | None, status: int = 200
    ) -> HTTPResponse:
        return console.render(
            request,
            "workflow_form.html",
            status=status,
            form=form,
            workflow=workflow,
            trigger_types=_choices(host.registry.triggers),
            node_types=_choices(host.registry.nodes),
        )

    async def edit_page(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        return render(request, edit_form(found, host.registry), workflow=found)

    async def edit(request: Request, key: str) -> HTTPResponse:
        found = await host.workflows.get(key)
        form = edit_form(found, host.registry)
        if not form.read(request.form or {}):
            return render(request, form, workflow=found, status=422)
        sent = form_value(request.form, "version")
        if sent != str(found["version"]):
            # Another save happened since this form was loaded: saving now would quietly
            # undo it. The values typed are shown over the new version, to check and save.
            form.problem(
                f"Version {found['version']} of this workflow was saved after you opened this form "
                f"(from version {sent or '?'}): nothing was saved. Your values are shown over version "
                f"{found['version']}; check them and save again, or reload the page to start from it."
            )
            return render(request, form, workflow=found, status=409)
        try:
            result = await host.workflows.replace(key, form.definition)
        except DefinitionError as exc:
            form.place(exc.problems)
            return render(request, form, workflow=found, status=422)
        return redirect(f"{PREFIX}/workflows/{result.key}?saved={result.version}", status=303)

    async def create_page(request: Request) -> HTTPResponse:
        trigger = _pick(request.args.get("trigger"), host.registry.triggers, "webhook")
        node = _pick(request.args.get("node"), host.registry.nodes, "condition")
        # htmx sends the node key typed so far along when a type changes (hx-include).
        node_key = request.args.get("node.key", "").strip() or node
        return render(request, new_form(host.registry, trigger, node, node_key=node_key), workflow=None)

    async def create(request: Request) -> HTTPResponse:
        values = request.form or {}
        form = new_form(host.registry, form_value(values, "trigger.type"), form_value(values, "node.type"))
        if not form.read(values):
            return render(request, form, workflow=None, status=422)
        try:
            result = await host.workflows.create(form.definition)
        except DefinitionError as exc:
            form.place(exc.problems)
            return render(request, form, workflow=None, status=422)
        except Conflict as exc:
            form.place([Problem("key", exc.message)])
            return render(request, form, workflow=None, status=409)
        return redirect(f"{PREFIX}/workflows/{result.key}?saved={result.version}", status=303)

    for handler, path, methods in (
        (create_page, "/workflows/new/form", ["GET"]),
        (create, "/workflows/new/form", ["POST"]),
        (edit_page, "/workflows/<key>/form", ["GET"]),
        (edit, "/workflows/<key>/form", ["POST"]),
    ):
        name = f"form_{handler.__name__}_{methods[0].lower()}"
        bp.add_route(guarded(console, handler), path, methods=methods, name=name)


def _choices(types: Any) -> list[tuple[str, str]]:
    """Installed types as (name, title), by name."""
    return [(name, getattr(types[name], "title", "") or "") for name in sorted(types)]


def _pick(asked: str | None, types: Any, usual: str) -> str:
    """The type asked for if it is installed, else ``usual`` (what most workflows start with) if
    it is, else the first installed one (by name)."""
    if asked in types:
        return str(asked)
    if usual in types:
        return usual
    return min(types, default="")
