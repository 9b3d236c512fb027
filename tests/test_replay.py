"""Replays: one execution or a workflow's failed ones, into the original or the current version,
through the API and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from hookline import NodeError, NodeResult, NodeRun, NodeType, hookimpl
from hookline.cli.main import build_cli
from hookline.engine import utcnow
from hookline.plugins import make_plugin_manager
from hookline.storage.models import Execution, ExecutionStatus, Workflow, WorkflowVersion
from hookline.testing import HooklineTestApp


class Check(NodeType):
    """Fails unless ``ok`` is true; else returns its ``label``."""

    name = "check"

    async def execute(self, run: NodeRun) -> NodeResult:
        await asyncio.sleep(run.config.get("sleep", 0))
        if run.config.get("ok") is not True:
            raise NodeError("not ok", label=run.config.get("label"))
        return NodeResult(result={"label": run.config.get("label"), "seen": run.config.get("seen")})


class ReplayNodes:
    @hookimpl
    def register_node_types(self, register: Any) -> None:
        register(Check)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [ReplayNodes()]


def definition(label: str = "v1", ok: Any = "{{ $context.body.ok }}", **config: Any) -> dict[str, Any]:
    return {
        "key": "wf",
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "c", "type": "check", "config": {"ok": ok, "label": label, "seen": "{{ $context.body.n }}", **config}}],
    }


async def run(hookline: HooklineTestApp, ok: bool, n: int = 0) -> dict[str, Any]:
    return await hookline.host.executions.run_manual("wf", {"body": {"ok": ok, "n": n}})


async def replay(hookline: HooklineTestApp, execution_id: int | str, **body: Any) -> Any:
    return await hookline.api("POST", f"/api/executions/{execution_id}/replay", json=body)


async def test_replay_into_the_original_or_the_current_version(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("v1"))
    failed = await run(hookline, ok=False, n=7)
    assert failed["status"] == "failed" and failed["version"] == 1
    # The bug is fixed: version 2 no longer depends on the input.
    await hookline.apply(definition("v2", ok=True))

    again = await replay(hookline, failed["id"])
    assert again.status_code == 202
    body = again.json()
    assert body == {"execution": body["execution"], "replay_of": failed["id"], "workflow": "wf", "version": 1, "status": "queued"}
    original = await hookline.wait_for_execution(body["execution"])
    assert (original["status"], original["mode"], original["version"], original["replay_of"]) == ("failed", "replay", 1, failed["id"])
    assert original["error"]["label"] == "v1"
    assert original["context"] == failed["context"]

    current = await replay(hookline, failed["id"], version="current", wait=True)
    assert current.status_code == 200
    execution = current.json()
    assert (execution["status"], execution["version"], execution["replay_of"]) == ("succeeded", 2, failed["id"])
    assert execution["jobs"][0]["result"] == {"label": "v2", "seen": 7}  # the stored context, rendered again

    listed = (await hookline.api("GET", "/api/executions?workflow=wf")).json()["items"]
    assert [(e["mode"], e["replay_of"]) for e in listed] == [
        ("replay", failed["id"]), ("replay", failed["id"]), ("manual", None)
    ]


async def test_wait_as_a_query_parameter_and_a_replay_of_a_replay(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition(ok=True))
    first = await run(hookline, ok=True)
    replayed = (await hookline.api("POST", f"/api/executions/{first['id']}/replay?wait=true")).json()
    assert (replayed["status"], replayed["replay_of"]) == ("succeeded", first["id"])
    twice = (await replay(hookline, replayed["id"], wait=True)).json()
    assert twice["replay_of"] == replayed["id"]


async def test_a_replay_that_outlasts_its_wait_is_answered_202(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition(ok=True, sleep=0.5))
    first = await run(hookline, ok=True)
    answer = await replay(hookline, first["id"], wait=True, timeout=0.05)
    assert answer.status_code == 202
    assert answer.json()["status"] in ("queued", "running")
    assert (await hookline.wait_for_execution(answer.json()["id"]))["status"] == "succeeded"


async def test_replays_never_carry_the_idempotency_key(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition(ok=True))
    first = await run(hookline, ok=True)
    await Execution.filter(id=first["id"]).update(dedup_key="k" * 64, dedup_until=utcnow().replace(year=2100))
    body = (await replay(hookline, first["id"])).json()
    await hookline.wait_for_execution(body["execution"])
    row = await Execution.get(id=body["execution"])
    assert (row.dedup_key, row.dedup_until) == (None, None)


async def test_unknown_unfinished_and_deleted(hookline: HooklineTestApp) -> None:
    for missing in (999, "abc", "99999999999999999999"):
        answer = await replay(hookline, missing)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found")

    await hookline.apply(definition(ok=True))
    workflow = await Workflow.get(key="wf")
    for status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
        row = await Execution.create(
            workflow_id=workflow.id, version_id=workflow.current_version_id, status=status, mode="async",
            trigger_type="webhook", context={}, created_at=utcnow(), owner=hookline.host.executions.process_id,
        )
        answer = await replay(hookline, row.id)
        assert (answer.status_code, answer.json()["error"]) == (409, "conflict")
        assert f"still {status.value}" in answer.json()["message"]

    done = await run(hookline, ok=True)
    await hookline.api("DELETE", "/api/workflows/wf")
    answer = await replay(hookline, done["id"])
    assert answer.status_code == 404  # a deleted workflow's executions go with it

    bad = await hookline.api("POST", "/api/executions/1/replay", json={"version": "newest"})
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_request")
    assert "version" in bad.json()["message"]
    wrong = await hookline.api("POST", "/api/executions/1/replay", content=b"{nope")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_body")


async def test_an_original_version_that_cannot_run_here_is_refused_with_the_reason(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition(ok=True))
    workflow = await Workflow.get(key="wf")
    # A version saved while a plugin now uninstalled provided its node type.
    gone = {**definition(), "nodes": [{"key": "x", "type": "gone", "config": {}}]}
    old = await WorkflowVersion.create(workflow=workflow, number=99, definition=gone, digest="0" * 64)
    row = await Execution.create(
        workflow_id=workflow.id, version_id=old.id, status=ExecutionStatus.FAILED, mode="async",
        trigger_type="webhook", context={"body": {"ok": True, "n": 3}}, created_at=utcnow(), finished_at=utcnow(),
    )
    answer = await replay(hookline, row.id)
    assert (answer.status_code, answer.json()["error"]) == (503, "workflow_unavailable")
    message = answer.json()["message"]
    assert "node type 'gone' is not installed here" in message and "version: current" in message
    assert await Execution.filter(replay_of=row.id).count() == 0

    current = (await replay(hookline, row.id, version="current", wait=True)).json()
    assert (current["status"], current["jobs"][0]["result"]["seen"]) == ("succeeded", 3)


async def test_bulk_replay_of_failed_executions_in_arrival_order(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("v1"))
    runs = [await run(hookline, ok=n % 2 == 0, n=n) for n in range(6)]
    failed = [r["id"] for r in runs if r["status"] == "failed"]
    assert len(failed) == 3
    await hookline.apply(definition("v2", ok=True))

    answer = await hookline.api("POST", "/api/workflows/wf/replay", json={})
    assert answer.status_code == 202
    body = answer.json()
    assert body["count"] == 3
    assert [r["replay_of"] for r in body["replays"]] == failed  # oldest first
    new_ids = [r["execution"] for r in body["replays"]]
    assert new_ids == sorted(new_ids)
    outcomes = [await hookline.wait_for_execution(i) for i in new_ids]
    assert {o["status"] for o in outcomes} == {"failed"}  # into their original version: still failing
    assert [o["context"] for o in outcomes] == [r["context"] for r in runs if r["status"] == "failed"]
    assert [o["error"]["label"] for o in outcomes] == ["v1"] * 3

    # Again, into the current version: the originals were replayed, so their failed replays are picked.
    second = (await hookline.api("POST", "/api/workflows/wf/replay", json={"version": "current"})).json()
    assert [r["replay_of"] for r in second["replays"]] == new_ids
    assert {(await hookline.wait_for_execution(r["execution"]))["status"] for r in second["replays"]} == {"succeeded"}
    third = (await hookline.api("POST", "/api/workflows/wf/replay", json={"version": "current"})).json()
    assert third == {"workflow": "wf", "count": 0, "replays": []}

    everything = (await hookline.api("POST", "/api/workflows/wf/replay", json={
        "status": ["failed"], "skip_replayed": False, "limit": 2, "version": "current"})).json()
    assert [r["replay_of"] for r in everything["replays"]] == failed[:2]


async def test_bulk_replay_filters_by_time_and_checks_its_input(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition())
    old, new = await run(hookline, ok=False), await run(hookline, ok=False)
    await Execution.filter(id=old["id"]).update(created_at=utcnow().replace(year=2020))

    since = (await hookline.api("POST", "/api/workflows/wf/replay", json={"since": "2025-01-01T00:00:00Z"})).json()
    assert [r["replay_of"] for r in since["replays"]] == [new["id"]]
    until = (await hookline.api("POST", "/api/workflows/wf/replay", json={"until": "2021-01-01T00:00:00"})).json()
    assert [r["replay_of"] for r in until["replays"]] == [old["id"]]

    for body, fragment in [
        ({"status": ["running"]}, "running"),
        ({"status": []}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 10001}, "limit"),
        ({"since": "yesterday"}, "ISO 8601"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "before"),
        ({"version": "latest"}, "version"),
        ({"colour": "red"}, "colour"),
        ([], "object"),
    ]:
        answer = await hookline.api("POST", "/api/workflows/wf/replay", json=body)
        assert answer.status_code == 400, body
        assert fragment in answer.json()["message"], (body, answer.json())
    missing = await hookline.api("POST", "/api/workflows/ghost/replay", json={})
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


async def test_bulk_replay_past_the_backlog_is_a_503_with_what_was_queued(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition(ok=False, sleep=0.3))
    runs = [await run(hookline, ok=False) for _ in range(5)]
    hookline.host.settings = replace(hookline.host.settings, max_backlog=2, max_concurrent_runs=1)
    answer = await hookline.api("POST", "/api/workflows/wf/replay", json={})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    body = answer.json()
    assert body["error"] == "overloaded"
    assert 1 <= body["count"] < 5 and body["count"] + body["remaining"] == 5
    assert [r["replay_of"] for r in body["replays"]] == [r["id"] for r in runs][: body["count"]]
    for r in body["replays"]:
        await hookline.wait_for_execution(r["execution"])
    # Calling again queues the rest only.
    rest = (await hookline.api("POST", "/api/workflows/wf/replay", json={})).json()
    assert [r["replay_of"] for r in rest["replays"]][: body["remaining"]] == [r["id"] for r in runs][body["count"]:]


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli(hookline_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    pm = make_plugin_manager(extra_plugins=[ReplayNodes()])
    group = build_cli(pm)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(group, [*args, "--db", hookline_db_url], obj={"pm": pm}, catch_exceptions=False)

    assert invoke("migrate").exit_code == 0
    return invoke


def apply(cli: Any, tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli("workflows", "apply", str(path)).exit_code == 0


def test_cli_replays_run_before_the_command_returns(cli: Any, tmp_path: Path) -> None:
    apply(cli, tmp_path, definition("v1"))
    (tmp_path / "in.json").write_text(json.dumps({"body": {"ok": False, "n": 1}}))
    ran = cli("run", "wf", "--input", str(tmp_path / "in.json"))
    assert ran.exit_code == 1
    failed = json.loads(ran.stdout)["id"]
    apply(cli, tmp_path, definition("v2", ok=True))

    original = cli("executions", "replay", str(failed))
    assert original.exit_code == 1
    first = json.loads(original.stdout)
    assert (first["replay_of"], first["status"], first["version"]) == (failed, "failed", 1)

    current = cli("executions", "replay", str(failed), "--current", "--wait")
    assert current.exit_code == 0, current.output
    second = json.loads(current.stdout)
    assert (second["status"], second["version"], second["replay_of"], second["jobs"][0]["result"]["seen"]) == (
        "succeeded", 2, failed, 1
    )

    # Bulk: the original was replayed already; its failed replay is what is left to retry.
    bulk = cli("executions", "replay", "--workflow", "wf", "--current")
    assert bulk.exit_code == 0, bulk.output
    assert [(r["replay_of"], r["status"]) for r in json.loads(bulk.stdout)["replays"]] == [(first["execution"], "succeeded")]
    nothing = json.loads(cli("executions", "replay", "--workflow", "wf").stdout)
    assert nothing == {"workflow": "wf", "count": 0, "replays": []}

    assert cli("executions", "replay").exit_code == 2
    assert cli("executions", "replay", "1", "--workflow", "wf").exit_code == 2
    missing = cli("executions", "replay", "999")
    assert missing.exit_code == 1 and "no execution with id 999" in missing.stderr
