"""Pages plugins add through ``register_console_pages``: in the navigation, or as tabs of a
workflow's page. The console has signed the operator in and checked the CSRF token already."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import html

from hookline import Host
from hookline.errors import NotFound
from hookline.ui import ConsolePage
from hookline_console.web import Console, guarded


@dataclass
class View:
    """The :class:`hookline.ui.ConsoleView` a page's ``render`` receives."""

    request: Request
    host: Host
    workflow: Mapping[str, Any] | None
    csrf_token: str
    form: Mapping[str, list[str]]
    path: str
    _console: Console = field(repr=False)
    _page: ConsolePage = field(repr=False)
    status: int = 200

    def render_template(self, name: str, **context: Any) -> str:
        env = self._console.page_envs.get(self._page.name, self._console.env)
        return env.get_template(name).render(**self._console.context(self.request), **context)


def register(bp: Blueprint, console: Console) -> None:
    host = console.host

    async def console_page(request: Request, name: str) -> HTTPResponse:
        page = console.page(name, "console")
        if page is None:
            raise NotFound(f"no console page {name!r}")
        view = _view(request, console, page, None)
        content = await page.render(view)
        return _wrap(request, console, page, content, workflow=None, status=view.status)

    async def workflow_page(request: Request, key: str, name: str) -> HTTPResponse:
        workflow = await host.workflows.get(key)
        page = console.page(name, "workflow")
        if page is None or page.trigger not in (None, workflow["trigger"]):
            raise NotFound(f"workflow {key!r} has no page {name!r}")
        view = _view(request, console, page, workflow)
        content = await page.render(view)
        return _wrap(request, console, page, content, workflow=workflow, status=view.status)

    bp.add_route(guarded(console, console_page), "/pages/<name>", methods=["GET", "POST"], name="console_page")
    bp.add_route(
        guarded(console, workflow_page), "/workflows/<key>/pages/<name>", methods=["GET", "POST"], name="workflow_page"
    )


def _view(request: Request, console: Console, page: ConsolePage, workflow: Mapping[str, Any] | None) -> View:
    form: Mapping[str, list[str]] = {}
    if request.method == "POST" and request.form is not None:
        form = {name: list(values) for name, values in request.form.items() if name != "csrf_token"}
    return View(
        request=request,
        host=console.host,
        workflow=workflow,
        csrf_token=request.ctx.console_session.csrf_token,
        form=form,
        path=request.path,
        _console=console,
        _page=page,
    )


def _wrap(
    request: Request, console: Console, page: ConsolePage, content: str, *, workflow: Any, status: int = 200
) -> HTTPResponse:
    if not (isinstance(status, int) and 200 <= status < 600):
        status = 200
    if request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        return html(content, status=status)
    tabs = console.workflow_tabs(workflow["trigger"]) if workflow else []
    return console.render(
        request, "extension.html", status=status, page=page, content=content, workflow=workflow, tabs=tabs
    )
