"""The plugin system: discovery, blocking, validation of what plugins register, and one test per
hookspec (each test names the hook it covers: ``hookspec: <name>``; test_meta.py checks it)."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click
import pytest
from click.testing import CliRunner
from sanic import Blueprint
from sanic.response import json

from hookline import NodeResult, NodeRun, NodeType, PluginError, TriggerType, hookimpl, hookspec
from hookline.cli.main import build_cli
from hookline.definitions import WorkflowDefinition
from hookline.errors import DefinitionError
from hookline.host import Host
from hookline.plugins import make_plugin_manager
from hookline.settings import Settings
from hookline.testing import HooklineTestApp, serve_in_process


class EchoNode(NodeType):
    name = "echo"
    title = "Echo its config"
    config_schema = {"type": "object", "properties": {"value": {}}, "required": ["value"]}

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result={"value": run.config["value"]})


class EchoPlugin:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(EchoNode)


def host_with(*plugins: object, entry_points: bool = False, **settings: Any) -> Host:
    pm = make_plugin_manager(entry_points=entry_points, extra_plugins=plugins)
    return Host(Settings(**settings), pm=pm)


# --- discovery ---------------------------------------------------------------------------


def test_our_plugins_are_found_through_entry_points() -> None:
    described = {p["name"]: p for p in Host(Settings()).describe_plugins()}
    assert described["webhook"]["distribution"] == "hookline-webhook"
    assert described["webhook"]["trigger_types"] == ["webhook"]
    assert described["webhook"]["hooks"] == [
        "register_commands", "register_console_pages", "register_models", "register_routes", "register_trigger_types"
    ]
    assert described["response"]["node_types"] == ["response"]
    assert described["condition"]["node_types"] == ["condition", "switch"]
    assert described["http"]["node_types"] == ["http-request"]
    assert described["http"]["distribution"] == "hookline-http"
    assert described["error_trigger"]["trigger_types"] == ["execution-failed"]
    assert described["error_trigger"]["hooks"] == ["execution_failed", "register_trigger_types"]
    assert all(p["version"] == "0.1.0" and not p["default"] for p in described.values())


def test_default_plugins_show_only_with_all() -> None:
    host = Host(Settings())
    assert "hookline.web.api" not in {p["name"] for p in host.describe_plugins()}
    [api] = [p for p in host.describe_plugins(include_default=True) if p["name"] == "hookline.web.api"]
    assert api["default"] is True and api["distribution"] == "hookline"


def test_disable_plugins_blocks_by_entry_point_name() -> None:
    host = Host(Settings(disable_plugins=("condition", "response", "console", "http", "error_trigger")))
    assert [p["name"] for p in host.describe_plugins()] == ["webhook"]
    assert set(host.registry.nodes) == set()


def test_disable_plugins_warns_about_names_that_match_nothing(caplog: pytest.LogCaptureFixture) -> None:
    make_plugin_manager(disabled=["webhok"])
    assert "webhok" in caplog.text


def test_a_misspelt_hook_fails_at_start_up() -> None:
    class Typo:
        @hookimpl
        def register_node_type(self, register: Any) -> None:  # missing "s"
            pass

    with pytest.raises(PluginError, match="register_node_type"):
        make_plugin_manager(entry_points=False, extra_plugins=[Typo()])


def test_hook_tracing_writes_hook_calls(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOOKLINE_TRACE_HOOKS", "1")
    host_with(EchoPlugin())
    assert "register_node_types" in capsys.readouterr().err


# --- register_trigger_types / register_node_types ----------------------------------------


class FakeTrigger(TriggerType):
    name = "fake"
    config_schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}


def test_register_trigger_types() -> None:  # hookspec: register_trigger_types
    class Plugin:
        @hookimpl
        def register_trigger_types(self, register: Callable[[type[TriggerType]], None]) -> None:
            register(FakeTrigger)

    host = host_with(Plugin())
    assert isinstance(host.registry.triggers["fake"], FakeTrigger)
    assert host.registry.owners()[next(iter(host.registry.owners()))]["trigger_types"] == ["fake"]


class PreparingTrigger(TriggerType):
    """Prepares each version once: its config's ``n``, doubled (or fails to, for ``n`` 13)."""

    name = "preparing"
    config_schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}

    def __init__(self) -> None:
        self.prepared: list[int] = []

    def prepare(self, workflow: WorkflowDefinition) -> dict[str, int]:
        n = workflow.trigger.config["n"]
        self.prepared.append(n)
        if n == 13:
            raise ValueError("unlucky")
        return {"doubled": 2 * n}


async def test_a_trigger_type_prepares_each_version_once_while_it_is_cached(hookline_settings: Settings) -> None:
    """``TriggerType.prepare`` runs when a process loads a version; what it returns comes back
    with the workflow (``trigger_state``) on every call while the version stays cached, and is
    made again after the version left the cache. A failing ``prepare`` makes the workflow
    unavailable here, naming the trigger type."""

    class Plugin:
        @hookimpl
        def register_trigger_types(self, register: Callable[[type[TriggerType]], None]) -> None:
            register(PreparingTrigger)

    host = Host(hookline_settings, pm=make_plugin_manager(extra_plugins=[Plugin()]))
    await host.migrate()
    await host.open_database()
    try:
        trigger = host.registry.triggers["preparing"]
        assert isinstance(trigger, PreparingTrigger)
        await host.workflows.save({"key": "prepared", "trigger": {"type": "preparing", "config": {"n": 4}}, "nodes": []})
        assert trigger.prepared == []  # saving checks; it does not prepare
        for _ in range(3):
            found = await host.workflows.find("prepared")
            assert found is not None and found.trigger_state == {"doubled": 8}
        assert trigger.prepared == [4]
        host.workflows._compiled.clear()
        assert (await host.workflows.find("prepared")).trigger_state == {"doubled": 8}  # type: ignore[union-attr]
        assert trigger.prepared == [4, 4]
        await host.workflows.save({"key": "prepared", "trigger": {"type": "preparing", "config": {"n": 13}}, "nodes": []})
        with pytest.raises(DefinitionError, match="trigger type 'preparing' could not be prepared: ValueError: unlucky"):
            await host.workflows.find("prepared")
    finally:
        await host.close_database()


def test_register_node_types() -> None:  # hookspec: register_node_types
    host = host_with(EchoPlugin())
    assert host.registry.nodes["echo"] is EchoNode


def test_duplicate_type_names_fail_naming_both_plugins() -> None:
    class Again:
        @hookimpl
        def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
            register(EchoNode)

    pm = make_plugin_manager(entry_points=False)
    pm.register(EchoPlugin(), name="first-plugin")
    pm.register(Again(), name="second-plugin")
    with pytest.raises(PluginError) as caught:
        Host(Settings(), pm=pm)
    message = caught.value.message
    assert "node type 'echo'" in message
    assert "'first-plugin'" in message and "'second-plugin'" in message


def test_duplicate_of_an_installed_type_names_the_installed_plugin() -> None:
    class Impostor(NodeType):
        name = "response"

        async def execute(self, run: NodeRun) -> NodeResult:
            return NodeResult()

    class Plugin:
        @hookimpl
        def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
            register(Impostor)

    pm = make_plugin_manager(entry_points=True)
    pm.register(Plugin(), name="impostor")
    with pytest.raises(PluginError, match="'response'.*'impostor'|'impostor'.*'response'"):
        Host(Settings(), pm=pm)


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (object, "pass a subclass of hookline.NodeType"),
        (type("Nameless", (NodeType,), {}), "has no 'name'"),
        (type("SyncNode", (NodeType,), {"name": "sync", "execute": lambda self, run: None}), "must be 'async def'"),
        (type("BadSchema", (NodeType,), {"name": "bad", "config_schema": {"type": "nonsense"}}), "invalid config_schema"),
    ],
)
def test_registered_node_types_are_validated(bad: Any, fragment: str) -> None:
    class Plugin:
        @hookimpl
        def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
            register(bad)

    with pytest.raises(PluginError, match=fragment):
        host_with(Plugin())


# --- register_models ---------------------------------------------------------------------


class NotesPlugin:
    @hookimpl
    def register_models(self, register: Callable[..., None]) -> None:
        register("notes", models=["plugin_notes.models"], migrations="plugin_notes.migrations")


@pytest.fixture
def notes_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A plugin's model module and migration, as a package would ship them."""
    package = tmp_path / "plugin_notes"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "from tortoise import fields\nfrom tortoise.models import Model\n\n"
        "class Note(Model):\n"
        "    id = fields.IntField(primary_key=True)\n"
        "    execution = fields.ForeignKeyField('hookline.Execution', related_name='notes', null=True)\n"
        "    text = fields.TextField()\n\n"
        "    class Meta:\n        table = 'plugin_note'\n"
    )
    (package / "migrations" / "__init__.py").write_text("")
    (package / "migrations" / "0001_initial.py").write_text(
        "from tortoise import fields, migrations\nfrom tortoise.fields.base import OnDelete\n"
        "from tortoise.migrations import operations as ops\n\n"
        "class Migration(migrations.Migration):\n"
        "    initial = True\n"
        "    dependencies = [('hookline', '0001_initial')]\n"
        "    operations = [ops.CreateModel(name='Note', fields=[\n"
        "        ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),\n"
        "        ('execution', fields.ForeignKeyField('hookline.Execution', source_field='execution_id',"
        " db_constraint=True, to_field='id', related_name='notes', null=True, on_delete=OnDelete.CASCADE)),\n"
        "        ('text', fields.TextField()),\n"
        "    ], options={'table': 'plugin_note', 'app': 'notes', 'pk_attr': 'id'}, bases=['Model'])]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("plugin_notes")]:
        del sys.modules[name]


async def test_register_models(notes_package: None, tmp_path: Any) -> None:  # hookspec: register_models
    host = host_with(NotesPlugin(), db_url=f"sqlite://{tmp_path / 'h.db'}")
    assert [app.label for app in host.model_apps] == ["hookline", "notes"]
    applied = await host.migrate()
    assert applied == [
        "hookline.0001_initial",
        "hookline.0002_dedup_recovery_replay",
        "hookline.0003_queued_at",
        "hookline.0004_partial_dedup_index",
        "hookline.0005_refused_calls",
        "hookline.0006_history_queries",
        "hookline.0007_workflow_addresses",
        "hookline.0008_failure_notices",
        "notes.0001_initial",
    ]
    await host.open_database()
    try:
        from plugin_notes.models import Note  # type: ignore[import-not-found]

        await Note.create(text="hello")
        assert await Note.filter(text="hello").count() == 1
    finally:
        await host.close_database()
    assert await host.migrate() == []  # nothing pending the second time


def test_model_app_labels_are_unique() -> None:
    class Clash:
        @hookimpl
        def register_models(self, register: Callable[..., None]) -> None:
            register("hookline", models=["x.models"], migrations="x.migrations")

    with pytest.raises(PluginError, match="model app label 'hookline'"):
        host_with(Clash())


# --- register_routes, startup, shutdown ---------------------------------------------------


class LifecyclePlugin:
    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def register_routes(self, register: Callable[[Blueprint], None], host: Host) -> None:
        bp = Blueprint("lifecycle_test", url_prefix="/api/lifecycle")

        @bp.get("/events")
        async def events(request: Any) -> Any:
            """The events seen so far."""
            assert request.app.ctx.hookline is host
            return json(self.events)

        register(bp)

    @hookimpl
    async def startup(self, host: Host) -> None:
        self.events.append(f"startup {len(host.registry.nodes)}")

    @hookimpl
    def shutdown(self, host: Host) -> None:
        self.events.append("shutdown")


@pytest.fixture
def lifecycle() -> LifecyclePlugin:
    return LifecyclePlugin()


@pytest.fixture
def hookline_plugins(lifecycle: LifecyclePlugin) -> list[object]:
    return [lifecycle]


async def test_register_routes(hookline: HooklineTestApp) -> None:  # hookspec: register_routes
    response = await hookline.client.get("/api/lifecycle/events")
    assert response.status_code == 200
    openapi = (await hookline.client.get("/openapi.json")).json()
    assert openapi["paths"]["/api/lifecycle/events"]["get"]["summary"] == "The events seen so far."


async def test_startup_and_shutdown(hookline_settings: Settings, lifecycle: LifecyclePlugin) -> None:
    # hookspec: startup  hookspec: shutdown
    from hookline.web.app import create_app

    host = Host(hookline_settings, pm=make_plugin_manager(extra_plugins=[lifecycle]))
    await host.migrate()
    app = create_app(host=host)
    app.config.TOUCHUP = False
    async with serve_in_process(app) as client:
        assert (await client.get("/api/lifecycle/events")).json() == ["startup 4"]
    assert lifecycle.events == ["startup 4", "shutdown"]


async def test_a_failing_startup_stops_the_server_naming_the_plugin(hookline_settings: Settings) -> None:
    from hookline.web.app import create_app

    class Broken:
        @hookimpl
        async def startup(self, host: Host) -> None:
            raise ConnectionError("cannot reach the widget service")

    pm = make_plugin_manager(entry_points=False)
    pm.register(Broken(), name="broken-plugin")
    host = Host(hookline_settings, pm=pm)
    await host.migrate()
    app = create_app(host=host)
    app.config.TOUCHUP = False
    with pytest.raises(RuntimeError, match="broken-plugin.*widget service"):
        async with serve_in_process(app):
            pass


def test_duplicate_blueprint_names_are_refused() -> None:
    class Twice:
        @hookimpl
        def register_routes(self, register: Callable[[Blueprint], None]) -> None:
            register(Blueprint("same"))
            register(Blueprint("same"))

    host = host_with(Twice())
    with pytest.raises(PluginError, match="blueprint 'same'"):
        host.hooks.blueprints(host)


# --- register_commands --------------------------------------------------------------------


class CommandsPlugin:
    @hookimpl
    def register_commands(self, register: Callable[[click.Command], None]) -> None:
        @click.command()
        @click.argument("name")
        def hello(name: str) -> None:
            """Say hello."""
            click.echo(f"hello {name}")

        register(hello)


def test_register_commands() -> None:  # hookspec: register_commands
    pm = make_plugin_manager(extra_plugins=[CommandsPlugin()])
    result = CliRunner().invoke(build_cli(pm), ["hello", "world"], obj={"pm": pm})
    assert result.exit_code == 0, result.output
    assert result.output == "hello world\n"
    # the plain CLI (another plugin set in the same process) does not get it
    plain = make_plugin_manager()
    assert "hello" not in build_cli(plain).commands


def test_a_command_may_not_replace_a_host_command() -> None:
    class Hijack:
        @hookimpl
        def register_commands(self, register: Callable[[click.Command], None]) -> None:
            register(click.Command("serve"))

    with pytest.raises(PluginError, match="CLI command 'serve'.*'hookline'"):
        build_cli(make_plugin_manager(extra_plugins=[Hijack()]))


def test_registering_a_loaded_plugin_again_is_a_plugin_error() -> None:
    import hookline_condition.plugin as condition_plugin

    with pytest.raises(PluginError, match="cannot be registered"):
        make_plugin_manager(extra_plugins=[condition_plugin])


# --- register_hookspecs: a plugin extending a plugin ---------------------------------------


class ColourSpecs:
    """Hookspecs a 'paint' plugin declares for others."""

    @hookspec
    def register_colours(self, register: Callable[[str, str], None]) -> None:
        """Add colours: register(name, hex)."""


class PaintPlugin:
    @hookimpl
    def register_hookspecs(self, register: Callable[[object], None]) -> None:
        register(ColourSpecs)

    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None], host: Host) -> None:
        colours: dict[str, str] = {}
        host.pm.hook.register_colours(register=colours.__setitem__)

        class PaintNode(NodeType):
            name = "paint"
            config_schema = {"type": "object", "properties": {"colour": {"enum": sorted(colours)}}}

            async def execute(self, run: NodeRun) -> NodeResult:
                return NodeResult(result={"hex": colours[run.config["colour"]]})

        register(PaintNode)


class MoreColours:
    @hookimpl
    def register_colours(self, register: Callable[[str, str], None]) -> None:
        register("teal", "#008080")


def test_register_hookspecs() -> None:  # hookspec: register_hookspecs
    host = host_with(PaintPlugin(), MoreColours())
    node = host.registry.nodes["paint"]
    assert node.config_schema["properties"]["colour"]["enum"] == ["teal"]
    # the node types of two hosts do not share what their plugins registered
    assert host_with(PaintPlugin()).registry.nodes["paint"].config_schema["properties"]["colour"]["enum"] == []


def test_an_implementation_of_an_undeclared_hook_still_fails() -> None:
    with pytest.raises(PluginError, match="register_colours"):
        host_with(MoreColours())


def test_invalid_hookspecs_are_a_plugin_error() -> None:
    class Bad:
        @hookimpl
        def register_hookspecs(self, register: Callable[[object], None]) -> None:
            register(object())

    with pytest.raises(PluginError, match="declared invalid hookspecs"):
        host_with(Bad())
