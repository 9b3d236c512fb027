"""Stored workflows that cannot run here (a plugin uninstalled or disabled since they were saved):
the operator is told at start, in ``workflows list``/``show`` and the API, and on each refused call
(rate-limited); the webhook caller gets a short 503 without internals. A disabled plugin is named
as disabled, by what, wherever a type it may provide is missing."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pluggy
import pytest
from click.testing import CliRunner

import hookline_response.plugin
import hookline_webhook.plugin
from conftest import sync_workflow
from hookline import WorkflowUnavailable
from hookline.cli.main import build_cli
from hookline.host import Host
from hookline.plugins import make_plugin_manager
from hookline.settings import Settings
from hookline.testing import TEST_TOKEN, HooklineServer, serve_in_process
from hookline.web.app import create_app
from hookline.workflows import RefusalLog

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
#: What the webhook's caller is told: the workflow, and nothing of the server's plugins or types.
CALLER_MESSAGE = "workflow 'pay' cannot run on this server now; its operator has been told"
#: Why ``pay`` cannot run where the condition plugin is not installed.
NOT_INSTALLED = (
    "nodes[0].type: node type 'condition' is not installed here (installed node types: response); "
    "pip install the package that provides it"
)
#: Why ``pay`` cannot run where the condition plugin is disabled.
DISABLED = (
    "nodes[0].type: node type 'condition' is not available here: plugin 'condition' (hookline-condition 0.1.0), "
    "which may provide it, is installed but disabled by HOOKLINE_DISABLE_PLUGINS (available node types: http-request, response)"
)


def without_condition() -> pluggy.PluginManager:
    """The plugins of a server where ``pip uninstall hookline-condition`` was run."""
    return make_plugin_manager(entry_points=False, extra_plugins=[hookline_webhook.plugin, hookline_response.plugin])


@pytest.fixture
def hookline_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Hookline's log records from INFO, also when a ``serve`` run in this process has made its
    logger stop propagating to the root."""
    logger = logging.getLogger("hookline")
    caplog.set_level(logging.INFO, logger="hookline")
    isolated = not logger.propagate
    if isolated:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        if isolated:
            logger.removeHandler(caplog.handler)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Hookline's warnings, but the database's own settings' (a test PostgreSQL may run without
    autovacuum: test_storage_sql checks that warning)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("hookline") and "autovacuum is off" not in r.getMessage()
    ]


async def save_with_every_plugin(db_url: str, *definitions: dict[str, Any]) -> None:
    host = Host(Settings(db_url=db_url))
    await host.migrate()
    await host.open_database()
    try:
        for definition in definitions:
            await host.workflows.save(definition)
    finally:
        await host.close_database()


@asynccontextmanager
async def server(settings: Settings, pm: pluggy.PluginManager | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app of a server started with ``settings`` and ``pm``, as the ``hookline`` fixture does."""
    app = create_app(host=Host(settings, pm=pm))
    app.config.TOUCHUP = False
    app.config.MOTD = False
    async with serve_in_process(app) as client:
        yield client


def settings(db_url: str, **more: Any) -> Settings:
    return Settings(db_url=db_url, api_token=TEST_TOKEN, shutdown_grace=5.0, **more)


async def test_a_workflow_whose_plugin_was_uninstalled_is_named_at_start_listed_and_refused_without_internals(
    hookline_db_url: str, hookline_log: pytest.LogCaptureFixture
) -> None:
    runs = {"key": "ok", "sync": True, "trigger": {"type": "webhook"}, "nodes": [{"key": "r", "type": "response"}]}
    await save_with_every_plugin(hookline_db_url, sync_workflow(), runs)

    async with server(settings(hookline_db_url), pm=without_condition()) as client:
        assert warnings(hookline_log) == [f"workflow 'pay' cannot run on this server: {NOT_INSTALLED}"]
        hookline_log.clear()

        listed = {w["key"]: w for w in (await client.get("/api/workflows", headers=AUTH)).json()["items"]}
        assert (listed["pay"]["runnable"], listed["pay"]["problem"]) == (False, NOT_INSTALLED)
        assert (listed["ok"]["runnable"], listed["ok"]["problem"]) == (True, None)
        shown = (await client.get("/api/workflows/pay", headers=AUTH)).json()
        assert (shown["enabled"], shown["runnable"], shown["problem"]) == (True, False, NOT_INSTALLED)

        answers = [await client.post("/api/webhooks/pay", json={"amount": 5}) for _ in range(3)]
        assert {(a.status_code, a.text) for a in answers} == {
            (503, json.dumps({"error": "workflow_unavailable", "message": CALLER_MESSAGE}, separators=(",", ":")))
        }
        # The operator is told why, once for the three calls (at most once a minute per workflow).
        [refused] = warnings(hookline_log)
        assert refused.startswith(f"workflow 'pay' cannot run on this server: {NOT_INSTALLED}; its calls are refused")
        assert (await client.post("/api/webhooks/ok", json={})).status_code == 200


async def test_a_disabled_plugin_is_named_with_what_disabled_it(
    hookline_db_url: str, hookline_log: pytest.LogCaptureFixture
) -> None:
    await save_with_every_plugin(hookline_db_url, sync_workflow())

    async with server(settings(hookline_db_url, disable_plugins=("condition",))) as client:
        boot = [r.getMessage() for r in hookline_log.records]
        assert "plugins disabled by HOOKLINE_DISABLE_PLUGINS: 'condition' (hookline-condition 0.1.0)" in boot
        assert warnings(hookline_log) == [f"workflow 'pay' cannot run on this server: {DISABLED}"]

        # Saving a definition that uses it says the same, not "unknown node type".
        refused = await client.post("/api/workflows", json=sync_workflow("again"), headers=AUTH)
        assert refused.status_code == 422
        assert refused.json()["problems"] == [{"location": "nodes[0].type", "message": DISABLED.split(": ", 1)[1]}]

        shown = (await client.get("/api/workflows/pay", headers=AUTH)).json()
        assert (shown["runnable"], shown["problem"]) == (False, DISABLED)
        hookline_log.clear()
        answer = await client.post("/api/webhooks/pay", json={"amount": 5})
        assert answer.json() == {"error": "workflow_unavailable", "message": CALLER_MESSAGE}
        assert warnings(hookline_log)[0].startswith(f"workflow 'pay' cannot run on this server: {DISABLED}; ")

        plugins = (await client.get("/api/plugins?all=1", headers=AUTH)).json()["plugins"]
        [condition] = [p for p in plugins if p["name"] == "condition"]
        assert condition == {
            "name": "condition", "distribution": "hookline-condition", "version": "0.1.0", "default": False,
            "disabled": True, "disabled_by": "HOOKLINE_DISABLE_PLUGINS",
            "hooks": [], "trigger_types": [], "node_types": [], "titles": {},
        }
        active = (await client.get("/api/plugins", headers=AUTH)).json()["plugins"]
        assert "condition" not in [p["name"] for p in active]


async def test_a_typo_is_called_a_typo_even_while_a_plugin_is_disabled(hookline_db_url: str) -> None:
    await save_with_every_plugin(hookline_db_url)  # (migrates)
    async with server(settings(hookline_db_url, disable_plugins=("condition",))) as client:
        typo = {"key": "t", "sync": True, "trigger": {"type": "webhook"}, "nodes": [{"key": "r", "type": "respnse"}]}
        refused = await client.post("/api/workflows", json=typo, headers=AUTH)
        assert refused.status_code == 422
        assert refused.json()["problems"] == [
            {"location": "nodes[0].type", "message": "unknown node type 'respnse' (installed node types: http-request, response)"}
        ]


async def test_a_server_whose_every_plugin_is_disabled_says_they_are_disabled_not_missing(
    hookline_db_url: str, hookline_log: pytest.LogCaptureFixture
) -> None:
    await save_with_every_plugin(hookline_db_url)
    async with server(settings(hookline_db_url, disable_plugins=("condition", "response", "webhook", "http", "error_trigger"))):
        assert "no trigger type enabled: no workflow can be triggered (see the disabled plugins below)" in warnings(hookline_log)
        boot = [r.getMessage() for r in hookline_log.records]
        assert any(line.startswith("plugins disabled by HOOKLINE_DISABLE_PLUGINS: ") for line in boot)


async def test_many_workflows_that_cannot_run_are_logged_up_to_a_cap_then_counted(
    hookline_db_url: str, hookline_log: pytest.LogCaptureFixture
) -> None:
    await save_with_every_plugin(hookline_db_url, *[sync_workflow(f"pay-{n:02}") for n in range(23)])
    hookline_log.clear()
    host = Host(settings(hookline_db_url), pm=without_condition())
    await host.open_database()
    try:
        assert await host.workflows.log_unrunnable() == 23
    finally:
        await host.close_database()
    logged = warnings(hookline_log)
    assert logged[:20] == [f"workflow 'pay-{n:02}' cannot run on this server: {NOT_INSTALLED}" for n in range(20)]
    assert logged[20:] == [
        "3 more enabled workflows cannot run on this server (23 in all); 'hookline workflows list' and "
        "GET /api/workflows show each one with \"runnable\": false and its problem"
    ]


def test_refusals_are_logged_at_most_once_per_interval_per_workflow_with_the_count(
    hookline_log: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = RefusalLog(interval=60.0, clock=lambda: now[0])
    pay, other = (WorkflowUnavailable(key, []) for key in ("pay", "other"))
    for second in (0, 1, 2, 30, 59):
        now[0] = second
        refusals.refused(pay)
    refusals.refused(other)
    now[0] = 61
    refusals.refused(pay)
    assert [m.split("; ", 1)[1] for m in warnings(hookline_log)] == [
        "its calls are refused (503 workflow_unavailable; logged at most every 60 s)",
        "its calls are refused (503 workflow_unavailable; logged at most every 60 s)",
        "5 calls refused since the last report",
    ]
    subjects = [m.split(" cannot", 1)[0] for m in warnings(hookline_log)]
    assert subjects == ["workflow 'pay'", "workflow 'other'", "workflow 'pay'"]


def test_cli_lists_and_shows_what_cannot_run_and_plugins_all_lists_disabled_plugins(tmp_path: Path) -> None:
    db = f"sqlite://{tmp_path / 'cli.db'}"
    asyncio.run(save_with_every_plugin(db, sync_workflow()))

    def cli(pm: pluggy.PluginManager, *args: str) -> Any:
        return CliRunner().invoke(build_cli(pm), list(args), obj={"pm": pm}, catch_exceptions=False)

    gone = without_condition()
    listed = cli(gone, "workflows", "list", "--db", db)
    assert listed.exit_code == 0, listed.output
    [item] = json.loads(listed.stdout)["items"]
    assert (item["runnable"], item["problem"]) == (False, NOT_INSTALLED)
    assert listed.stderr == (
        "warning: 1 of these workflows cannot run with the plugins here ('pay'): see their \"problem\"\n"
    )
    shown = cli(gone, "workflows", "show", "pay", "--db", db)
    assert (json.loads(shown.stdout)["runnable"], json.loads(shown.stdout)["problem"]) == (False, NOT_INSTALLED)
    assert shown.stderr == f"warning: workflow 'pay' cannot run with the plugins here: {NOT_INSTALLED}\n"
    everything = cli(make_plugin_manager(), "workflows", "list", "--db", db)
    assert json.loads(everything.stdout)["items"][0]["runnable"] is True and everything.stderr == ""

    disabled = make_plugin_manager(disabled=["condition"])
    plugins = {p["name"]: p for p in json.loads(cli(disabled, "plugins", "--all").stdout)}
    assert (plugins["condition"]["disabled"], plugins["condition"]["disabled_by"]) == (True, "HOOKLINE_DISABLE_PLUGINS")
    assert "disabled" not in plugins["webhook"]
    assert "condition" not in [p["name"] for p in json.loads(cli(disabled, "plugins").stdout)]
    stuck = cli(disabled, "run", "pay", "--db", db)
    assert stuck.exit_code == 1
    assert stuck.stderr.splitlines() == [f"error: {DISABLED}"]  # the operator: in full


@pytest.mark.server
def test_hookline_serve_says_at_start_what_is_disabled_and_what_cannot_run(tmp_path: Path) -> None:
    """The real server's log (its own logging set-up, not a test's)."""
    db = f"sqlite://{tmp_path / 'serve.db'}"
    asyncio.run(save_with_every_plugin(db, sync_workflow()))
    serving = HooklineServer(db, env={"HOOKLINE_DISABLE_PLUGINS": "condition"}, cwd=tmp_path)
    serving.start(tmp_path / "serve.log")
    try:
        answer = httpx.post(f"{serving.base_url}/api/webhooks/pay", json={"amount": 5}, timeout=10)
        assert answer.status_code == 503
        assert answer.json() == {"error": "workflow_unavailable", "message": CALLER_MESSAGE}
    finally:
        serving.stop()
    log = serving.log()
    assert "INFO hookline: plugins disabled by HOOKLINE_DISABLE_PLUGINS: 'condition' (hookline-condition 0.1.0)" in log
    assert f"WARNING hookline.workflows: workflow 'pay' cannot run on this server: {DISABLED}\n" in log
    refused = f"WARNING hookline.workflows: workflow 'pay' cannot run on this server: {DISABLED}; its calls are refused"
    assert refused in log
    assert "Traceback" not in log
