"""What a plugin shows in a web console: pages of its own, and how its jobs' results look.

The contracts only. The console that calls them is a plugin too (``hookline-console``); the
host serves no HTML. A plugin contributes through two hooks (see :mod:`hookline.hookspecs`):

* ``register_console_pages(register, host)``: ``register(ConsolePage(...))`` adds a page with
  a navigation entry, or a tab on the page of each workflow (``scope="workflow"``).
* ``render_job_result(job, host)``: HTML for a job's result on an execution's page (the
  condition node shows its comparisons as a table this way).

And a trigger or node type may give hints for the config form the console generates from its
``config_schema``: the ``ui_hints`` class attribute of :class:`hookline.NodeType` and
:class:`hookline.TriggerType` (:data:`UI_HINT_KEYS`, :data:`WIDGETS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Mapping, Protocol

if TYPE_CHECKING:
    from sanic import Request

    from hookline.host import Host

#: What a hint of ``ui_hints`` may say about one config property.
UI_HINT_KEYS = frozenset({"label", "help", "widget", "order", "placeholder"})
#: Widgets a hint may ask for. Without one, the console picks from the property's schema:
#: ``checkbox`` for a boolean, ``number`` for a number, ``select`` for an ``enum``, ``text``
#: for a string, ``json`` for anything else (an object, an array, a union of types).
WIDGETS = frozenset({"text", "textarea", "password", "number", "checkbox", "select", "json"})
#: A page's name: its URL segment.
PAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
PAGE_SCOPES = ("console", "workflow")


class ConsoleView(Protocol):
    """What a page's ``render`` receives: the request, already signed in (and, for a ``POST``,
    with its CSRF token checked), and what the console knows around it."""

    #: The Sanic request (``view.request.method`` is ``GET`` or ``POST``).
    request: Request
    host: Host
    #: A workflow page's workflow, as ``host.workflows.get(key)`` gives it; ``None`` elsewhere.
    workflow: Mapping[str, Any] | None
    #: Put it in every form that posts: ``<input type="hidden" name="csrf_token" value="...">``.
    csrf_token: str
    #: A ``POST``'s form fields (each a list of values); empty for a ``GET``.
    form: Mapping[str, list[str]]
    #: The page's own path (where its forms post).
    path: str
    #: The HTTP status the page is answered with: set it before returning (``view.status = 400``
    #: for a form sent back with its problems). 200 unless set.
    status: int

    def render_template(self, name: str, **context: Any) -> str:
        """Render template ``name`` from the page's ``templates`` folder with the console's
        Jinja environment (every value escaped; ``{{ csrf_field() }}`` writes the hidden CSRF
        input) and return the HTML."""
        ...


#: An async function of a :class:`ConsoleView` returning the page's HTML (the console wraps it
#: in its layout, or sends it alone to an htmx request).
PageRenderer = Callable[[ConsoleView], Awaitable[str]]


@dataclass(frozen=True)
class ConsolePage:
    """A page a plugin adds to the console.

    :param name: its URL segment, unique among the plugins' pages: lower-case letters, digits
        and ``-``, starting with a letter. Served at ``/console/pages/<name>``, or for a workflow
        tab at ``/console/workflows/<key>/pages/<name>``.
    :param title: the navigation entry (or the tab's label).
    :param render: ``async def render(view) -> str``; the HTML it returns must escape every
        value it did not write itself (``render_template`` does).
    :param scope: ``"console"`` for a page in the navigation, ``"workflow"`` for a tab on each
        workflow's page.
    :param trigger: for a workflow tab, only workflows with this trigger type show it.
    :param templates: where ``view.render_template`` finds templates: ``"package:folder"``
        (``"hookline_webhook:console"``), a folder inside an importable package.
    """

    name: str
    title: str
    render: PageRenderer
    scope: Literal["console", "workflow"] = "console"
    trigger: str | None = None
    templates: str | None = None

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.name, str) or not PAGE_NAME.match(self.name):
            found.append(f"page name {self.name!r} must be lower-case letters, digits and '-', starting with a letter")
        if not isinstance(self.title, str) or not self.title.strip():
            found.append(f"page {self.name!r} needs a title")
        if not callable(self.render):
            found.append(f"page {self.name!r}: render must be an async function of the view")
        if self.scope not in PAGE_SCOPES:
            found.append(f"page {self.name!r}: scope must be one of {', '.join(PAGE_SCOPES)}, not {self.scope!r}")
        if self.trigger is not None and self.scope != "workflow":
            found.append(f"page {self.name!r}: 'trigger' only applies to scope 'workflow'")
        if self.templates is not None and (not isinstance(self.templates, str) or ":" not in self.templates):
            found.append(f"page {self.name!r}: templates must be 'package:folder', not {self.templates!r}")
        return found


def ui_hint_problems(owner: str, hints: Any) -> list[str]:
    """What is wrong with a type's ``ui_hints`` (checked when the type is registered)."""
    if not isinstance(hints, Mapping):
        return [f"{owner}: ui_hints must be a mapping of config property to hints, not {type(hints).__name__}"]
    found = []
    for prop, hint in hints.items():
        if not isinstance(hint, Mapping):
            found.append(f"{owner}: ui_hints[{prop!r}] must be a mapping")
            continue
        unknown = sorted(set(hint) - UI_HINT_KEYS)
        if unknown:
            found.append(f"{owner}: ui_hints[{prop!r}] has unknown key {unknown[0]!r} (known: {', '.join(sorted(UI_HINT_KEYS))})")
        widget = hint.get("widget")
        if widget is not None and widget not in WIDGETS:
            found.append(f"{owner}: ui_hints[{prop!r}] widget {widget!r} is not one of {', '.join(sorted(WIDGETS))}")
        order = hint.get("order")
        if order is not None and (not isinstance(order, (int, float)) or isinstance(order, bool)):
            found.append(f"{owner}: ui_hints[{prop!r}] order must be a number")
    return found


__all__ = ["UI_HINT_KEYS", "WIDGETS", "ConsolePage", "ConsoleView", "PageRenderer"]
