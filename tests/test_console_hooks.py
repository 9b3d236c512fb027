"""The console's plugin hooks, through the in-process client: pages a plugin adds
(register_console_pages), how a job's result is shown (render_job_result), and the ui_hints a
type gives its config form. The plugins are small classes registered on a fresh manager."""

from __future__ import annotations

import logging
import re
from html import escape
from typing import Any, Callable, Mapping

import pytest

from console_support import csrf_of, sign_in
from hookline import Host, NodeResult, NodeRun, NodeType, PluginError, TriggerType, hookimpl
from hookline.plugins import make_plugin_manager
from hookline.settings import Settings
from hookline.testing import HooklineTestApp
from hookline.ui import ConsolePage, ConsoleView

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


class EchoNode(NodeType):
    """Its result is its config; ``render`` says how the plugin below renders it."""

    name = "echo"
    title = "Echo: its config as its result"

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result=run.config)


async def hello_page(view: ConsoleView) -> str:
    said = view.form.get("said", [""])[0]
    return (
        f'<p id="hello">Hello from a plugin, {escape(view.request.method)}</p>'
        f'<p id="said">{escape(said)}</p>'
        f'<form method="post" action="{escape(view.path)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(view.csrf_token)}">'
        '<label for="said-input">Say</label><input id="said-input" name="said"><button type="submit">Send</button></form>'
    )


async def notes_tab(view: ConsoleView) -> str:
    assert view.workflow is not None
    if view.form.get("fail"):
        view.status = 400
        return '<p class="problem" role="alert">nothing to note</p>'
    return f'<p id="notes">Notes of {escape(view.workflow["key"])}, version {view.workflow["version"]}</p>'


class ConsoleExtras:
    """A plugin with a console page, a workflow tab, and its own node type's results."""

    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(EchoNode)

    @hookimpl
    def register_console_pages(self, register: Callable[[ConsolePage], None]) -> None:
        register(ConsolePage(name="hello", title="Hello page", render=hello_page))
        register(ConsolePage(name="notes", title="Notes", scope="workflow", trigger="webhook", render=notes_tab))

    @hookimpl
    def render_job_result(self, job: Mapping[str, Any]) -> str | None:
        if job["type"] != "echo":
            return None
        how = (job["result"] or {}).get("render")
        if how == "raise":
            raise RuntimeError("the echo renderer broke")
        if how == "html":
            return f'<p class="echo-rendered">echo said {escape(str(job["result"].get("text")))}</p>'
        return None


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [ConsoleExtras()]


@pytest.fixture
async def console(hookline: HooklineTestApp) -> HooklineTestApp:
    assert (await sign_in(hookline.client)).status_code == 303
    return hookline


WEBHOOK = {"key": "hooked", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo", "config": {"a": 1}}]}


# --- register_console_pages ----------------------------------------------------------------


# hookspec: register_console_pages
async def test_a_plugin_page_is_served_in_the_layout_and_listed_in_the_navigation(console: HooklineTestApp) -> None:
    home = await console.client.get("/console/plugins")
    assert '<a href="/console/pages/hello"' in home.text and ">Hello page</a>" in home.text
    page = await console.client.get("/console/pages/hello")
    assert page.status_code == 200
    assert '<p id="hello">Hello from a plugin, GET</p>' in page.text
    assert "<h1>Hello page</h1>" in page.text and 'aria-current="page">Hello page' in page.text  # in the layout
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    fragment = await console.client.get("/console/pages/hello", headers={"HX-Request": "true"})
    assert fragment.text.startswith('<p id="hello">') and "<html" not in fragment.text
    assert (await console.client.get("/console/pages/nope")).status_code == 404
    console.client.cookies.clear()
    assert (await console.client.get("/console/pages/hello")).status_code == 302


async def test_a_plugin_page_post_needs_the_csrf_token(console: HooklineTestApp) -> None:
    page = await console.client.get("/console/pages/hello")
    refused = await console.client.post("/console/pages/hello", data={"said": "hi"})
    assert refused.status_code == 403 and "security token" in refused.text
    posted = await console.client.post("/console/pages/hello", data={"said": HOSTILE, "csrf_token": csrf_of(page)})
    assert posted.status_code == 200
    assert "Hello from a plugin, POST" in posted.text
    assert escape(HOSTILE) in posted.text and "<img src=x" not in posted.text


async def test_a_workflow_tab_shows_on_workflows_of_its_trigger(console: HooklineTestApp) -> None:
    await console.apply(WEBHOOK)
    overview = await console.client.get("/console/workflows/hooked")
    tabs = re.search(r'<nav class="tabs".*?</nav>', overview.text, re.S).group(0)
    assert 'href="/console/workflows/hooked/pages/notes">Notes</a>' in tabs
    assert 'href="/console/workflows/hooked/pages/samples">Samples</a>' in tabs  # the webhook plugin's own
    tab = await console.client.get("/console/workflows/hooked/pages/notes")
    assert tab.status_code == 200 and '<p id="notes">Notes of hooked, version 1</p>' in tab.text
    assert 'href="/console/workflows/hooked">hooked</a>' in tab.text  # the way back
    problem = await console.client.post(
        "/console/workflows/hooked/pages/notes", data={"fail": "1", "csrf_token": csrf_of(overview)}
    )
    assert problem.status_code == 400 and "nothing to note" in problem.text  # the page chose its status
    assert (await console.client.get("/console/workflows/nope/pages/notes")).status_code == 404
    assert (await console.client.get("/console/workflows/hooked/pages/hello")).status_code == 404  # a console page


class Manual(TriggerType):
    name = "by-hand"


class ByHand:
    @hookimpl
    def register_trigger_types(self, register: Callable[[type[TriggerType]], None]) -> None:
        register(Manual)


@pytest.mark.parametrize("hookline_plugins", [[ConsoleExtras(), ByHand()]])
async def test_a_workflow_tab_is_not_on_workflows_of_other_triggers(console: HooklineTestApp) -> None:
    await console.apply({**WEBHOOK, "key": "manual", "trigger": {"type": "by-hand"}})
    overview = await console.client.get("/console/workflows/manual")
    assert overview.status_code == 200
    assert "/pages/notes" not in overview.text and "/pages/samples" not in overview.text
    assert (await console.client.get("/console/workflows/manual/pages/notes")).status_code == 404


def pages_of(*plugins: tuple[str, object]) -> list[ConsolePage]:
    pm = make_plugin_manager(entry_points=False)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    host = Host(Settings(), pm=pm)
    return host.hooks.console_pages(host)


def page_plugin(*pages: Any) -> object:
    class Pages:
        @hookimpl
        def register_console_pages(self, register: Callable[[ConsolePage], None]) -> None:
            for page in pages:
                register(page)

    return Pages()


def test_a_page_name_taken_by_another_plugin_is_refused_naming_both() -> None:
    first = page_plugin(ConsolePage(name="report", title="Report", render=hello_page))
    second = page_plugin(ConsolePage(name="report", title="Other report", scope="workflow", render=notes_tab))
    assert [p.title for p in pages_of(("first-plugin", first))] == ["Report"]
    with pytest.raises(PluginError) as caught:
        pages_of(("first-plugin", first), ("second-plugin", second))
    message = caught.value.message
    assert "console page 'report'" in message
    assert "'first-plugin'" in message and "'second-plugin'" in message


@pytest.mark.parametrize(
    ("page", "fragment"),
    [
        ("not a page", "not a hookline.ui.ConsolePage"),
        (ConsolePage(name="Bad Name", title="x", render=hello_page), "page name 'Bad Name' must be lower-case"),
        (ConsolePage(name="untitled", title=" ", render=hello_page), "page 'untitled' needs a title"),
        (ConsolePage(name="norender", title="x", render="html"), "render must be an async function"),  # type: ignore[arg-type]
        (ConsolePage(name="where", title="x", render=hello_page, scope="sidebar"), "scope must be one of console, workflow"),  # type: ignore[arg-type]
        (ConsolePage(name="trig", title="x", render=hello_page, trigger="webhook"), "'trigger' only applies to scope 'workflow'"),
        (ConsolePage(name="tpl", title="x", render=hello_page, templates="folder"), "templates must be 'package:folder'"),
    ],
)
def test_a_malformed_page_is_refused(page: Any, fragment: str) -> None:
    with pytest.raises(PluginError, match=re.escape(fragment)) as caught:
        pages_of(("pages", page_plugin(page)))
    assert "plugin 'pages'" in caught.value.message


# --- render_job_result ---------------------------------------------------------------------

ORDER = {
    "key": "order",
    "trigger": {"type": "webhook"},
    "nodes": [
        {
            "key": "check",
            "type": "condition",
            "config": {
                "rules": {
                    "and": [
                        {"left": "{{ $context.body.amount }}", "op": "gt", "right": 100},
                        {"left": "{{ $context.body.note }}", "op": "contains", "right": "<b>", "case_sensitive": False},
                    ]
                }
            },
            "branches": {"true": [{"key": "big", "type": "echo", "config": {"render": "html", "text": "{{ $context.body.note }}"}}]},
        },
        {"key": "plain", "type": "echo", "config": {"render": "none", "text": "as JSON"}},
        {"key": "broken", "type": "echo", "config": {"render": "raise", "text": "broken renderer"}},
    ],
}


async def execution_page(console: HooklineTestApp, body: dict[str, Any]) -> str:
    await console.apply(ORDER)
    execution = await console.host.executions.run_manual("order", {"body": body})
    page = await console.client.get(f"/console/executions/{execution['id']}")
    assert page.status_code == 200
    return page.text


def job_section(page: str, node: str) -> str:
    return re.search(rf'<li class="job[^"]*" id="job-{node}">.*?</li>', page, re.S).group(0)


# hookspec: render_job_result
async def test_the_condition_node_shows_why_its_branch_was_taken(console: HooklineTestApp) -> None:
    page = await execution_page(console, {"amount": 150, "note": f"a <B> {HOSTILE}"})
    check = job_section(page, "check")
    table = re.search(r'<table class="checks">.*?</table>', check, re.S).group(0)
    assert "<caption>" in table and '<th scope="col">Left</th>' in table and '<th scope="col">Operator</th>' in table
    assert "<td><code>150</code></td><td><code>gt</code> (&gt;)</td><td><code>100</code></td><td class=\"true\">true</td>" in table
    assert "case-insensitive" in table and table.count('<td class="true">true</td>') == 2
    assert "Result: <strong class=\"true\">true</strong> → branch <strong>true</strong>" in check
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in table
    # the echo plugin renders its own job; the full result stays available as JSON, closed
    big = job_section(page, "big")
    assert '<p class="echo-rendered">echo said a &lt;B&gt;' in big
    assert "<details><summary>Result</summary>" in big


async def test_a_false_condition_shows_the_false_comparison(console: HooklineTestApp) -> None:
    page = await execution_page(console, {"amount": 50, "note": "x"})
    check = job_section(page, "check")
    assert '<td class="false">false</td>' in check and "→ branch <strong>false</strong>" in check
    assert check.count("<tr>") == 2  # the header and the one comparison made: "and" stopped at it


async def test_a_plugin_returning_none_leaves_the_result_as_json(console: HooklineTestApp) -> None:
    page = await execution_page(console, {"amount": 50, "note": "x"})
    plain = job_section(page, "plain")
    assert 'class="rendered"' not in plain
    assert "<details open><summary>Result</summary>" in plain and "&#34;as JSON&#34;" in plain


async def test_a_plugin_failing_to_render_is_logged_and_the_result_shown_as_json(
    console: HooklineTestApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hookline"):
        page = await execution_page(console, {"amount": 50, "note": "x"})
    broken = job_section(page, "broken")
    assert 'class="rendered"' not in broken and "&#34;broken renderer&#34;" in broken
    assert any("failed to render the result of job 'broken'" in r.getMessage() for r in caplog.records)
    assert "the echo renderer broke" in caplog.text


# --- ui_hints ------------------------------------------------------------------------------


def hinted(hints: Any, base: type = NodeType) -> object:
    attributes: dict[str, Any] = {"name": "hinted", "ui_hints": hints}
    if base is NodeType:
        attributes["execute"] = EchoNode.execute
    cls = type("Hinted", (base,), attributes)

    class Plugin:
        if base is NodeType:

            @hookimpl
            def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
                register(cls)

        else:

            @hookimpl
            def register_trigger_types(self, register: Callable[[type[TriggerType]], None]) -> None:
                register(cls)

    return Plugin()


@pytest.mark.parametrize("base", [NodeType, TriggerType])
@pytest.mark.parametrize(
    ("hints", "fragment"),
    [
        ({"text": {"widget": "slider"}}, "widget 'slider' is not one of"),
        ({"text": {"colour": "red"}}, "has unknown key 'colour'"),
        ({"text": {"order": "first"}}, "order must be a number"),
        ({"text": "a label"}, "ui_hints['text'] must be a mapping"),
        (["text"], "ui_hints must be a mapping"),
    ],
)
def test_bad_ui_hints_are_refused_when_the_type_is_registered(hints: Any, fragment: str, base: type) -> None:
    pm = make_plugin_manager(entry_points=False)
    pm.register(hinted(hints, base), name="hints")
    with pytest.raises(PluginError, match=re.escape(fragment)) as caught:
        Host(Settings(), pm=pm)
    assert "'hinted' from plugin 'hints'" in caught.value.message


def test_our_types_give_hints_for_their_config_properties() -> None:
    from hookline.ui import UI_HINT_KEYS, WIDGETS

    host = Host(Settings())
    types: dict[str, type] = {**host.registry.triggers, **host.registry.nodes}
    for name in ("webhook", "condition", "switch", "response"):
        cls = types[name]
        properties = set(cls.config_schema["properties"])
        assert cls.ui_hints, name
        assert set(cls.ui_hints) <= properties, name  # hints name real properties
        for prop, hint in cls.ui_hints.items():
            assert set(hint) <= UI_HINT_KEYS and hint.get("widget", "text") in WIDGETS, (name, prop)
            assert hint.get("label") and hint.get("help"), (name, prop)
    assert set(types["webhook"].ui_hints) == set(types["webhook"].config_schema["properties"])
    assert types["condition"].ui_hints["mode"]["widget"] == "select"
