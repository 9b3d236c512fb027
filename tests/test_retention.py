"""Retention: purging finished executions by policy (per workflow and status, else the server's
default), by age, in batches, through the service, the API, the CLI and the server's periodic
purge, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hookline import NodeError, NodeResult, NodeRun, NodeType, hookimpl
from hookline.cli.main import build_cli
from hookline.engine import utcnow
from hookline.plugins import make_plugin_manager
from hookline.storage.models import Execution, ExecutionStatus, Job, Workflow
from hookline.testing import HooklineTestApp


class Outcome(NodeType):
    """Succeeds or fails as the input says."""

    name = "outcome"

    async def execute(self, run: NodeRun) -> NodeResult:
        if run.config.get("fail") is True:
            raise NodeError("asked to fail")
        return NodeResult(result={"ok": True})


class RetentionNodes:
    @hookimpl
    def register_node_types(self, register: Any) -> None:
        register(Outcome)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [RetentionNodes()]


def definition(key: str, **extra: Any) -> dict[str, Any]:
    node = {"key": "o", "type": "outcome", "config": {"fail": "{{ $context.body.fail }}"}}
    return {"key": key, "trigger": {"type": "webhook"}, "nodes": [node], **extra}


async def execution(hookline: HooklineTestApp, key: str, *, fail: bool = False, age: timedelta = timedelta(0)) -> int:
    """A finished execution of ``key`` (with a job), created ``age`` ago."""
    done = await hookline.host.executions.run_manual(key, {"body": {"fail": fail}})
    assert done["status"] == ("failed" if fail else "succeeded")
    await Execution.filter(id=done["id"]).update(created_at=utcnow() - age)
    return done["id"]


async def remaining(*ids: int) -> set[int]:
    return set(await Execution.filter(id__in=list(ids)).values_list("id", flat=True))


DAY = timedelta(days=1)


async def test_the_global_default_keeps_30_days_and_jobs_go_with_their_executions(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a"))
    old, young = await execution(hookline, "a", age=40 * DAY), await execution(hookline, "a", age=20 * DAY)
    assert await Job.filter(execution_id=old).count() == 1

    result = await hookline.host.retention.purge()
    assert result.to_dict() == {"deleted": 1, "dry_run": False, "protected": 0, "workflows": {"a": 1}, "statuses": {"succeeded": 1}}
    assert await remaining(old, young) == {young}
    assert await Job.filter(execution_id=old).count() == 0
    assert await Job.filter(execution_id=young).count() == 1

    hookline.host.settings = replace(hookline.host.settings, retention=None)  # HOOKLINE_RETENTION=forever
    await Execution.filter(id=young).update(created_at=utcnow() - 4000 * DAY)
    assert (await hookline.host.retention.purge()).deleted == 0


async def test_a_workflows_retention_by_status_beats_the_global_default(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a", retention={"default": "7d", "failed": "forever"}))
    await hookline.apply(definition("b"))
    await hookline.apply(definition("c", retention={"succeeded": "1d"}))  # others: the global 30 days
    a_ok = await execution(hookline, "a", age=10 * DAY)
    a_failed = await execution(hookline, "a", fail=True, age=400 * DAY)
    a_young = await execution(hookline, "a", age=2 * DAY)
    b_mid = await execution(hookline, "b", age=10 * DAY)
    b_old = await execution(hookline, "b", fail=True, age=40 * DAY)
    c_ok = await execution(hookline, "c", age=2 * DAY)
    c_failed = await execution(hookline, "c", fail=True, age=20 * DAY)
    c_old_failed = await execution(hookline, "c", fail=True, age=31 * DAY)
    everything = {a_ok, a_failed, a_young, b_mid, b_old, c_ok, c_failed, c_old_failed}

    dry = await hookline.host.retention.purge(dry_run=True)
    assert (dry.deleted, dry.dry_run, dict(dry.workflows)) == (4, True, {"a": 1, "b": 1, "c": 2})
    assert await remaining(*everything) == everything

    result = await hookline.host.retention.purge()
    assert result.deleted == 4
    assert await remaining(*everything) == {a_failed, a_young, b_mid, c_failed}

    # The policy is the current version's: a new definition changes what is kept.
    await hookline.apply(definition("a", retention={"failed": "30d"}))
    assert (await hookline.host.retention.purge(workflow="a")).deleted == 1
    assert await remaining(a_failed) == set()


async def test_explicit_age_status_and_workflow_narrow_a_purge(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a", retention={"default": "forever"}))
    await hookline.apply(definition("b"))
    a_failed = await execution(hookline, "a", fail=True, age=3 * DAY)
    a_ok = await execution(hookline, "a", age=3 * DAY)
    b_failed = await execution(hookline, "b", fail=True, age=3 * DAY)
    fresh = await execution(hookline, "a", fail=True)

    # An explicit age is the operator's rule: it applies whatever the workflow keeps.
    result = await hookline.host.retention.purge(workflow="a", statuses=["failed"], older_than=DAY)
    assert (result.deleted, dict(result.statuses)) == (1, {"failed": 1})
    assert await remaining(a_failed, a_ok, b_failed, fresh) == {a_ok, b_failed, fresh}

    assert (await hookline.host.retention.purge(everything=True, statuses=["failed"])).deleted == 2
    assert await remaining(a_ok, b_failed, fresh) == {a_ok}


async def test_unfinished_and_still_deduplicating_executions_are_kept(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a"))
    workflow = await Workflow.get(key="a")
    unfinished = []
    for status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
        row = await Execution.create(
            workflow_id=workflow.id, version_id=workflow.current_version_id, status=status, mode="async",
            trigger_type="webhook", context={}, created_at=utcnow() - 100 * DAY, owner=hookline.host.executions.process_id,
        )
        unfinished.append(row.id)
    holding, expired = await execution(hookline, "a", age=100 * DAY), await execution(hookline, "a", age=100 * DAY)
    now = utcnow()
    await Execution.filter(id=holding).update(dedup_key="a" * 64, dedup_until=now + DAY)
    await Execution.filter(id=expired).update(dedup_key="b" * 64, dedup_until=now - DAY)

    result = await hookline.host.retention.purge(everything=True)
    assert (result.deleted, result.protected) == (1, 1)
    assert await remaining(holding, expired, *unfinished) == {holding, *unfinished}


async def test_large_purges_go_in_batches(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a"))
    ids = [await execution(hookline, "a", fail=n % 3 == 0, age=40 * DAY) for n in range(23)]
    dry = await hookline.host.retention.purge(dry_run=True, batch=5)
    assert dry.deleted == 23 and await Execution.all().count() == 23
    result = await hookline.host.retention.purge(batch=5)
    assert (result.deleted, dict(result.statuses)) == (23, {"failed": 8, "succeeded": 15})
    assert await remaining(*ids) == set()
    assert await Job.all().count() == 0


async def test_the_server_purges_periodically(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a"))
    old = await execution(hookline, "a", age=40 * DAY)
    retention = hookline.host.retention
    await retention.stop()
    retention.first_delay = 0.01
    retention.start()
    for _ in range(200):
        if not await remaining(old):
            break
        await asyncio.sleep(0.02)
    assert await remaining(old) == set()


async def test_the_api_purges(hookline: HooklineTestApp) -> None:
    await hookline.apply(definition("a"))
    await hookline.apply(definition("b"))
    a_failed = await execution(hookline, "a", fail=True, age=10 * DAY)
    a_ok = await execution(hookline, "a", age=10 * DAY)
    b_failed = await execution(hookline, "b", fail=True, age=10 * DAY)

    # By policy (30 days): nothing is old enough.
    assert (await hookline.api("DELETE", "/api/executions")).json()["deleted"] == 0
    dry = await hookline.api("DELETE", "/api/executions?older_than=5d&status=failed&dry_run=true")
    assert dry.status_code == 200
    assert dry.json() == {"deleted": 2, "dry_run": True, "protected": 0, "workflows": {"a": 1, "b": 1}, "statuses": {"failed": 2}}
    answer = await hookline.api("DELETE", "/api/executions?older_than=5d&status=failed&workflow=a")
    assert answer.json()["deleted"] == 1
    assert await remaining(a_failed, a_ok, b_failed) == {a_ok, b_failed}
    both = await hookline.api("DELETE", "/api/executions?all=true&status=succeeded,failed&batch=1")
    assert both.json()["deleted"] == 2

    for query, fragment in [
        ("older_than=soon", "older_than"),
        ("older_than=0", "positive"),
        ("status=running&all=1", "running"),
        ("older_than=1d&all=true", "not both"),
        ("batch=0", "batch"),
        ("batch=x", "batch"),
    ]:
        bad = await hookline.api("DELETE", f"/api/executions?{query}")
        assert (bad.status_code, bad.json()["error"]) == (400, "bad_request"), query
        assert fragment in bad.json()["message"], (query, bad.json())
    missing = await hookline.api("DELETE", "/api/executions?workflow=ghost")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (await hookline.client.delete("/api/executions?all=true")).status_code == 401


def test_the_cli_purges(hookline_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pm = make_plugin_manager(extra_plugins=[RetentionNodes()])
    group = build_cli(pm)

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(group, [*args, "--db", hookline_db_url], obj={"pm": pm}, catch_exceptions=False)
        return result

    assert cli("migrate").exit_code == 0
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(definition("a")))
    assert cli("workflows", "apply", str(tmp_path / "a.yaml")).exit_code == 0
    for fail in (True, False, True):
        (tmp_path / "in.json").write_text(json.dumps({"body": {"fail": fail}}))
        cli("run", "a", "--input", str(tmp_path / "in.json"))

    dry = cli("executions", "purge", "--all", "--status", "failed", "--dry-run")
    assert json.loads(dry.stdout) == {"deleted": 2, "dry_run": True, "protected": 0, "workflows": {"a": 2}, "statuses": {"failed": 2}}
    assert json.loads(cli("executions", "purge", "--older-than", "1d").stdout)["deleted"] == 0
    done = cli("executions", "purge", "--workflow", "a", "--status", "failed", "--all", "--batch", "1")
    assert json.loads(done.stdout)["deleted"] == 2
    assert [e["status"] for e in json.loads(cli("executions", "list").stdout)["items"]] == ["succeeded"]

    bad = cli("executions", "purge", "--older-than", "soon")
    assert bad.exit_code == 1 and "older_than" in bad.stderr
