"""Error workflows: the host's ``execution_failed`` hook and the ``execution-failed`` trigger.

A workflow whose execution ends failed, error or timed_out is announced to plugins at least
once (hookline.failures); the error trigger plugin starts the error workflows watching it, each
once per failure, never for an error workflow's own failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import install_package
from hookline import ExecutionFailure, NodeError, NodeResult, NodeRun, NodeType, hookimpl
from hookline.engine import utcnow
from hookline.failures import LEASE
from hookline.storage.models import Execution
from hookline.testing import HooklineServer, HooklineTestApp
from hookline_webhook import plugin as webhook_plugin


class FailNode(NodeType):
    """Fails as told: ``fail`` (a NodeError), ``crash`` (a bug), ``hang`` (till the timeout)."""

    name = "fail-test"
    config_schema = {"type": "object", "properties": {"how": {"enum": ["fail", "crash", "hang", "pass"]}}}

    async def execute(self, run: NodeRun) -> NodeResult:
        how = run.config.get("how", "fail")
        if how == "fail":
            raise NodeError("card declined", code="card_declined")
        if how == "crash":
            raise RuntimeError("boom")
        if how == "hang":
            await asyncio.sleep(3600)
        return NodeResult({"ok": True})


class FailPlugin:
    @staticmethod
    @hookimpl
    def register_node_types(register: Any) -> None:
        register(FailNode)


class Listener:
    """A plugin implementing the hook: records each failure; raises while ``raising`` > 0."""

    def __init__(self) -> None:
        self.failures: list[ExecutionFailure] = []
        self.raising = 0

    @hookimpl
    async def execution_failed(self, failure: ExecutionFailure, host: Any) -> None:
        self.failures.append(failure)
        if self.raising:
            self.raising -= 1
            raise RuntimeError("the alerting service is down")


@pytest.fixture
def listener() -> Listener:
    return Listener()


@pytest.fixture
def hookline_plugins(listener: Listener) -> list[object]:
    return [FailPlugin, listener]


def failing(key: str = "orders", how: str = "fail", **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "title": f"{key} title",
        "sync": True,
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "charge", "type": "fail-test", "config": {"how": how}}],
        **extra,
    }


def error_workflow(key: str = "on-error", **config: Any) -> dict[str, Any]:
    return {
        "key": key,
        "trigger": {"type": "execution-failed", "config": config},
        "nodes": [{"key": "note", "type": "fail-test", "config": {"how": "pass"}}],
    }


async def runs_of(hookline: HooklineTestApp, key: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The finished executions of workflow ``key`` once there are ``count`` of them, oldest first."""
    deadline = time.monotonic() + timeout
    while True:
        page = await hookline.host.executions.list(workflow=key, limit=100)
        items = page.to_dict()["items"]
        if len(items) >= count and all(item["status"] not in ("queued", "running") for item in items):
            return [await hookline.host.executions.get(item["id"]) for item in reversed(items)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(items)} executions of {key!r}, not {count}, after {timeout} s")
        await asyncio.sleep(0.02)


async def announced(hookline: HooklineTestApp, execution_id: int, timeout: float = 30.0) -> None:
    """Wait until a failure's announcement is over (its ``notify_at`` cleared)."""
    deadline = time.monotonic() + timeout
    while await Execution.filter(id=execution_id, notify_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_id} still to be announced after {timeout} s")
        await asyncio.sleep(0.02)


async def test_an_error_workflow_gets_the_failure_summary(hookline: HooklineTestApp) -> None:
    await hookline.apply(failing())
    await hookline.apply(error_workflow())
    answer = await hookline.webhook("orders", json={"order": "A-1"}, headers={"X-Shop": "north"})
    assert answer.status_code == 500
    failed_id = int(answer.headers["x-hookline-execution"])

    [run] = await runs_of(hookline, "on-error", 1)
    assert run["status"] == "succeeded" and run["mode"] == "async"
    context = run["context"]
    assert context["workflow"] == {"key": "orders", "title": "orders title", "version": 1}
    execution = context["execution"]
    assert execution["id"] == failed_id and execution["status"] == "failed" and execution["mode"] == "sync"
    assert execution["url"].endswith(f"/api/executions/{failed_id}")
    assert execution["started_at"] and execution["finished_at"] and execution["replay_of"] is None
    assert context["node"] == "charge" and context["message"] == "card declined"
    assert context["error"]["code"] == "card_declined"
    assert context["trigger"]["type"] == "webhook"
    assert context["trigger"]["context"]["body"] == {"order": "A-1"}
    assert context["trigger"]["context"]["headers"]["x-shop"] == "north"


async def test_statuses_modes_and_watched_workflows(hookline: HooklineTestApp) -> None:
    await hookline.apply(failing("orders"))
    await hookline.apply(failing("crashes", how="crash"))
    await hookline.apply(failing("slow", how="hang", timeout=0.2))
    await hookline.apply(error_workflow("orders-only", workflows=["orders"]))
    await hookline.apply(error_workflow("timeouts", statuses=["timed_out"]))
    await hookline.apply(error_workflow("manual-too", workflows=["orders"], modes=["manual"]))
    await hookline.apply(error_workflow("crashes-watch", workflows=["crashes"], statuses=["error"]))

    for key in ("orders", "crashes", "slow"):
        await hookline.webhook(key, json={})
    manual = await hookline.host.executions.run_manual("orders", {"body": {}})
    assert manual["status"] == "failed"

    # Each failure is announced once it is over: then the counts are final.
    page = await hookline.host.executions.list(status=["failed", "error", "timed_out"], limit=100)
    for item in page.to_dict()["items"]:
        await announced(hookline, item["id"])
    orders_only = await runs_of(hookline, "orders-only", 1)
    assert [r["context"]["execution"]["mode"] for r in orders_only] == ["sync"]  # not the manual run
    [timed_out] = await runs_of(hookline, "timeouts", 1)
    assert timed_out["context"]["workflow"]["key"] == "slow"
    assert timed_out["context"]["execution"]["status"] == "timed_out"
    [manual_run] = await runs_of(hookline, "manual-too", 1)
    assert manual_run["context"]["execution"]["id"] == manual["id"]
    [crash] = await runs_of(hookline, "crashes-watch", 1)
    assert crash["context"]["execution"]["status"] == "error"
    assert crash["context"]["error"]["error"] == "node_crashed"


async def test_an_error_workflow_never_runs_for_error_workflows(hookline: HooklineTestApp, listener: Listener) -> None:
    broken = error_workflow("broken-alert")
    broken["nodes"][0]["config"]["how"] = "fail"
    await hookline.apply(broken)
    await hookline.apply(error_workflow("watch-all"))
    await hookline.apply(failing())

    await hookline.webhook("orders", json={})
    [alert] = await runs_of(hookline, "broken-alert", 1)
    assert alert["status"] == "failed"
    await announced(hookline, alert["id"])
    # The host announced the error workflow's failure (plugins hear of every failure)...
    assert alert["id"] in [failure.id for failure in listener.failures]
    # ...and the error trigger started nothing for it: one run of each, for the orders failure.
    for key in ("watch-all", "broken-alert"):
        assert len((await hookline.host.executions.list(workflow=key)).to_dict()["items"]) == 1


async def test_disabled_error_workflows_do_not_run(hookline: HooklineTestApp) -> None:
    await hookline.apply({**error_workflow("off"), "enabled": False})
    await hookline.apply(error_workflow("on"))
    await hookline.apply(failing())
    answer = await hookline.webhook("orders", json={})
    await announced(hookline, int(answer.headers["x-hookline-execution"]))
    assert len(await runs_of(hookline, "on", 1)) == 1
    assert (await hookline.host.executions.list(workflow="off")).to_dict()["items"] == []


# hookspec: execution_failed
async def test_a_failure_is_announced_again_until_every_plugin_took_it(
    hookline: HooklineTestApp, listener: Listener
) -> None:
    await hookline.apply(failing())
    await hookline.apply(error_workflow())
    listener.raising = 1
    answer = await hookline.webhook("orders", json={})
    failed_id = int(answer.headers["x-hookline-execution"])
    deadline = time.monotonic() + 30
    while not listener.failures:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    # The listener raised: the failure stays due, a lease ahead (not announced again at once).
    await asyncio.sleep(0.1)
    row = await Execution.get(id=failed_id)
    assert row.notify_at is not None and row.notify_at > utcnow()
    assert [f.id for f in listener.failures] == [failed_id]

    # Once the lease is over it is announced again, to every plugin: the error trigger finds
    # its failure's key taken and starts nothing more.
    failures = hookline.host.executions.failures
    assert await failures.announce_due(now=utcnow() + LEASE + timedelta(seconds=1)) == 1
    assert [f.id for f in listener.failures] == [failed_id, failed_id]
    assert (await Execution.get(id=failed_id)).notify_at is None
    assert await failures.announce_due(now=utcnow() + 2 * LEASE) == 0
    assert len(await runs_of(hookline, "on-error", 1)) == 1
    failure = listener.failures[0]
    assert failure.to_dict() == {
        "id": failed_id,
        "status": "failed",
        "mode": "sync",
        "workflow": {"key": "orders", "title": "orders title", "version": 1},
        "trigger_type": "webhook",
        "node": "charge",
        "message": "card declined",
        "error": {"node": "charge", "error": "node_error", "message": "card declined", "code": "card_declined"},
        "context": failure.context,
        "started_at": failure.started_at,
        "finished_at": failure.finished_at,
        "replay_of": None,
        "url": f"{hookline.host.settings.base_url}/api/executions/{failed_id}",
    }


async def test_two_processes_announcing_at_once_announce_each_failure_once(
    hookline: HooklineTestApp, listener: Listener
) -> None:
    await hookline.apply(failing())
    await hookline.host.executions.failures.stop()  # this test announces by hand
    ids = [int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"]) for _ in range(5)]
    failures = hookline.host.executions.failures
    later = utcnow() + timedelta(seconds=1)
    await asyncio.gather(*(failures.announce_due(now=later) for _ in range(4)))
    assert sorted(f.id for f in listener.failures) == ids


@pytest.mark.parametrize("hookline_entry_points", [False])
@pytest.mark.parametrize("hookline_plugins", [[FailPlugin, webhook_plugin]])
async def test_nothing_is_marked_when_no_plugin_listens(hookline: HooklineTestApp) -> None:
    assert not hookline.host.executions.failures.enabled
    await hookline.apply(failing())
    answer = await hookline.webhook("orders", json={})
    row = await Execution.get(id=int(answer.headers["x-hookline-execution"]))
    assert row.status == "failed" and row.notify_at is None


def test_config_refusals(tmp_path: Path) -> None:
    from hookline import DefinitionError
    from hookline.definitions import parse_definition
    from hookline.host import Host
    from hookline.plugins import make_plugin_manager
    from hookline.settings import Settings

    host = Host(Settings(db_url=f"sqlite://{tmp_path / 'x.db'}"), pm=make_plugin_manager(extra_plugins=[FailPlugin]))
    trigger = host.registry.triggers["execution-failed"]

    def parse_workflow(definition: dict[str, Any], registry: Any) -> Any:
        return parse_definition(definition, registry)

    def problems(definition: dict[str, Any]) -> list[str]:
        try:
            parse_workflow(definition, host.registry)
        except DefinitionError as exc:
            return [str(p) for p in exc.problems]
        return []

    assert problems(error_workflow()) == []
    assert trigger.addresses(parse_workflow(error_workflow(), host.registry)) == ["*"]
    assert trigger.addresses(parse_workflow(error_workflow(workflows=["a", "b"]), host.registry)) == ["a", "b"]
    assert any("remove 'sync: true'" in p for p in problems({**error_workflow(), "sync": True}))
    assert any("its own included" in p for p in problems(error_workflow("x", workflows=["x"])))
    assert problems(error_workflow(statuses=["cancelled"]))
    assert problems(error_workflow(modes=[]))
    assert problems(error_workflow(workflows=[]))
    assert problems(error_workflow(other=1))


# --- at least once across a crash -------------------------------------------------------------

HANG_PLUGIN_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "hookline-hang-on-failure"
version = "0.1.0"

[project.entry-points.hookline]
hang_on_failure = "hookline_hang_on_failure"

[tool.hatch.build.targets.wheel]
packages = ["hookline_hang_on_failure"]
"""

HANG_PLUGIN = """\
import asyncio
import os

from hookline import NodeError, NodeType, hookimpl


class AlwaysFails(NodeType):
    name = "always-fails"

    async def execute(self, run):
        raise NodeError("the warehouse is closed")


@hookimpl
def register_node_types(register):
    register(AlwaysFails)


@hookimpl
async def execution_failed(failure, host):
    # Says it has the failure, then never returns: the test kills the server here.
    with open(os.environ["HANG_MARKER"], "a") as marker:
        marker.write(f"{failure.id}\\n")
    await asyncio.sleep(3600)
"""


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_a_failure_is_announced_after_the_server_announcing_it_was_killed(
    hookline_db_url: str, tmp_path: Path
) -> None:
    site = install_package(
        tmp_path,
        "hookline-hang-on-failure",
        {"pyproject.toml": HANG_PLUGIN_PYPROJECT, "hookline_hang_on_failure/__init__.py": HANG_PLUGIN},
    )
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "orders.json").write_text(json.dumps({**failing(), "nodes": [{"key": "c", "type": "always-fails"}]}))
    (folder / "on-error.json").write_text(json.dumps({**error_workflow(), "nodes": []}))
    marker = tmp_path / "marker"
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "HANG_MARKER": str(marker)}
    server = HooklineServer(hookline_db_url, workflows=folder, env=env, cwd=tmp_path).start(tmp_path / "server.log")
    try:
        answer = httpx.post(f"{server.base_url}/api/webhooks/orders", json={}, timeout=30)
        assert answer.status_code == 500, answer.text
        failed_id = int(answer.headers["x-hookline-execution"])
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text().strip()):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    finally:
        server.stop()
    assert marker.read_text().split() == [str(failed_id)]

    # The server died holding it: no error workflow ran. The next process to look, once the dead
    # one's lease is over, announces it again (here this test's, without the hanging plugin).
    from hookline.host import Host
    from hookline.settings import Settings

    host = Host(Settings(db_url=hookline_db_url, api_token="t"))
    await host.open_migrated_database()
    try:
        await host.executions.open(recover=False)
        # (Whether the error trigger had queued the error workflow before the hanging plugin was
        # called depends on the plugins' order: either way it runs once, as the end shows.)
        assert await host.executions.failures.announce_due(now=utcnow() + LEASE + timedelta(seconds=1)) == 1
        deadline = time.monotonic() + 30
        while not await Execution.filter(workflow__key="on-error", status="succeeded").exists():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        [run] = await Execution.filter(workflow__key="on-error")  # once: the second announcement found its key
        assert run.context["execution"]["id"] == failed_id
        assert (await Execution.get(id=failed_id)).notify_at is None
        await host.executions.drain(5)
        await host.executions.close()
    finally:
        await host.close_database()


# --- the example of examples/workflows ----------------------------------------------------------


def test_the_example_error_workflow_posts_the_example_failure_to_the_inbox(tmp_path: Path) -> None:
    """examples/workflows as ./dev serve runs them (HOOKLINE_HTTP_ALLOW=127.0.0.1), on a free port
    instead of 8000: ship-order's partner is down, failure-alerts posts the failure to failure-inbox."""
    examples = Path(__file__).resolve().parent.parent / "examples" / "workflows"
    server = HooklineServer(
        f"sqlite://{tmp_path / 'examples.db'}", env={"HOOKLINE_HTTP_ALLOW": "127.0.0.1"}, cwd=tmp_path
    )
    folder = tmp_path / "workflows"
    folder.mkdir()
    for path in examples.glob("*.yaml"):
        (folder / path.name).write_text(path.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{server.port}"))
    server.command += ["--workflows", str(folder)]
    server.start(tmp_path / "server.log")
    try:
        answer = httpx.post(
            f"{server.base_url}/api/webhooks/ship-order", json={"id": "A-1001", "address": "1 Main St"}, timeout=60
        )
        assert answer.status_code == 500 and answer.json()["node"] == "partner", answer.text
        failed_id = answer.json()["execution"]
        deadline = time.monotonic() + 60
        while True:
            inbox = httpx.get(
                f"{server.base_url}/api/executions?workflow=failure-inbox", headers=server.auth, timeout=10
            )
            if inbox.json()["items"] and inbox.json()["items"][0]["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        [alert] = inbox.json()["items"]
        assert alert["status"] == "succeeded"
        body = httpx.get(f"{server.base_url}/api/executions/{alert['id']}", headers=server.auth, timeout=10).json()
        body = body["context"]["body"]
        assert body["workflow"] == "ship-order" and body["status"] == "failed"
        assert body["text"].startswith("ship-order failed at partner: could not connect to 127.0.0.1:8009")
        assert body["execution"] == f"{server.base_url}/api/executions/{failed_id}"
        # The partner was tried twice (retry.attempts: 2), each attempt recorded on the failed job.
        failed = httpx.get(f"{server.base_url}/api/executions/{failed_id}", headers=server.auth, timeout=10).json()
        assert len(failed["error"]["attempts"]) == 2
    finally:
        server.stop()
    assert "Traceback" not in server.log()


# --- bounds: throttling, hook timeouts, giving up, leases, purges --------------------------------


async def test_max_runs_per_minute_stops_a_storm_of_alerts(
    hookline: HooklineTestApp, caplog: pytest.LogCaptureFixture
) -> None:
    await hookline.apply(failing())
    await hookline.apply(error_workflow("few", max_runs_per_minute=2))
    ids = [int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"]) for _ in range(4)]
    for failed_id in ids:
        await announced(hookline, failed_id)
    runs = await runs_of(hookline, "few", 2)
    assert sorted(run["context"]["execution"]["id"] for run in runs) == ids[:2]
    # The two others started nothing (taken, not announced again), and a warning said so once.
    warnings = [r.getMessage() for r in caplog.records if "max_runs_per_minute" in r.getMessage()]
    assert len(warnings) == 1 and "error workflow 'few' started 2 runs in the last minute" in warnings[0]


async def test_a_plugin_that_hangs_is_given_up_on_for_this_time(
    hookline: HooklineTestApp, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hookline.failures as failures_module

    await hookline.apply(failing())
    await hookline.host.executions.failures.stop()  # announced by hand here
    monkeypatch.setattr(failures_module, "HOOK_TIMEOUT", 0.05)

    async def hang(failure: ExecutionFailure, host: Any) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(listener, "execution_failed", hookimpl(hang))
    hookline.host.pm.unregister(listener)
    hookline.host.pm.register(listener)
    failed_id = int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"])
    assert await hookline.host.executions.failures.announce_due() == 1
    row = await Execution.get(id=failed_id)
    assert row.notify_at is not None and row.notify_at > utcnow()  # announced again after the lease


async def test_a_failure_no_plugin_can_take_for_a_day_is_given_up(
    hookline: HooklineTestApp, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    await hookline.apply(failing())
    await hookline.host.executions.failures.stop()
    failed_id = int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"])
    listener.raising = 1
    two_days_ago = utcnow() - timedelta(days=2)
    await Execution.filter(id=failed_id).update(finished_at=two_days_ago, notify_at=two_days_ago)
    assert await hookline.host.executions.failures.announce_due() == 1
    assert (await Execution.get(id=failed_id)).notify_at is None
    assert any("gave up announcing the failure of execution" in r.getMessage() for r in caplog.records)


async def test_each_claim_holds_its_lease_from_when_it_was_made(
    hookline: HooklineTestApp, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Announcing a batch may take longer than a lease: each row's lease runs from its own claim,
    not from when the batch was read (else a row claimed late would be due again at once)."""
    import hookline.failures as failures_module

    await hookline.apply(failing())
    await hookline.host.executions.failures.stop()
    ids = [int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"]) for _ in range(3)]
    listener.raising = 3  # all stay due
    start = utcnow() + timedelta(seconds=1)
    ticks = iter(start + n * 2 * LEASE for n in range(100))
    monkeypatch.setattr(failures_module, "utcnow", lambda: next(ticks))
    assert await hookline.host.executions.failures.announce_due() == 3
    leases = [(await Execution.get(id=i)).notify_at for i in ids]
    claims = [lease - LEASE for lease in leases]
    assert claims == sorted(claims) and len(set(claims)) == 3 and claims[0] > start


async def test_a_purge_by_policy_keeps_failures_still_to_announce(hookline: HooklineTestApp, listener: Listener) -> None:
    await hookline.apply(failing())
    await hookline.host.executions.failures.stop()
    ids = [int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"]) for _ in range(2)]
    # Older than the retention (30 days by default), and not announced yet (no announcer runs).
    await Execution.filter(id__in=ids).update(created_at=utcnow() - timedelta(days=60))
    result = await hookline.host.retention.purge()
    assert result.to_dict()["protected"] == 2 and result.to_dict()["deleted"] == 0
    assert await Execution.filter(id__in=ids).count() == 2
    # Once announced, the policy deletes them.
    assert await hookline.host.executions.failures.announce_due(now=utcnow() + timedelta(seconds=1)) == 2
    assert (await hookline.host.retention.purge()).to_dict()["deleted"] == 2


async def test_a_purge_an_operator_asks_for_deletes_failures_still_to_announce(hookline: HooklineTestApp) -> None:
    await hookline.apply(failing())
    await hookline.host.executions.failures.stop()
    pending = int((await hookline.webhook("orders", json={})).headers["x-hookline-execution"])
    assert (await hookline.host.retention.purge(everything=True)).to_dict()["deleted"] == 1
    assert not await Execution.filter(id=pending).exists()


LOOP = {
    # An error workflow watching every workflow, posting to an inbox it also watches, which fails:
    # each pass is a new failure. max_runs_per_minute stops it.
    "loop-alerts.json": {
        "key": "loop-alerts",
        "trigger": {"type": "execution-failed", "config": {"max_runs_per_minute": 5}},
        "nodes": [
            {
                "key": "post",
                "type": "http-request",
                "config": {
                    "method": "POST",
                    "url": "http://127.0.0.1:PORT/api/webhooks/inbox",
                    "body": {"json": {"text": "{{ $context.message }}"}},
                },
            }
        ],
    },
    "inbox.json": {
        "key": "inbox",
        "sync": True,
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "relay", "type": "http-request", "config": {"url": "http://127.0.0.1:9/chat-is-down"}}],
    },
}


def test_an_error_workflow_calling_a_workflow_it_watches_is_stopped_by_its_limit(tmp_path: Path) -> None:
    server = HooklineServer(f"sqlite://{tmp_path / 'loop.db'}", env={"HOOKLINE_HTTP_ALLOW": "127.0.0.1"}, cwd=tmp_path)
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name, definition in LOOP.items():
        (folder / name).write_text(json.dumps(definition).replace("PORT", str(server.port)))
    server.command += ["--workflows", str(folder)]
    server.start(tmp_path / "server.log")
    try:
        assert httpx.post(f"{server.base_url}/api/webhooks/inbox", json={}, timeout=30).status_code == 500
        deadline = time.monotonic() + 60
        while "max_runs_per_minute" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        runs = httpx.get(f"{server.base_url}/api/executions?workflow=loop-alerts&limit=100", headers=server.auth).json()
    finally:
        server.stop()
    # 5 runs in the minute, then the loop stopped: the 6th failure of the inbox started nothing.
    # (Runs are milliseconds apart: the minute is far from over when the limit is reached.)
    assert len(runs["items"]) == 5
    assert "error workflow 'loop-alerts' started 5 runs in the last minute" in server.log()
