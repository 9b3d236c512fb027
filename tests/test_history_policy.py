"""What the history keeps, and when a sync run is written, on SQLite and PostgreSQL.

- ``history: failures`` (a workflow's, or the server's HOOKLINE_HISTORY) keeps only the
  executions that did not succeed; async work is durable until it has run; replays and rows
  holding an idempotency key are kept.
- A sync run is written once, when it ends (with its id reserved from its start); earlier, as
  ``running``, only when it answers and goes on, or when its caller's wait runs out.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from conftest import sync_workflow
from hookline import NodeResult, NodeRun, NodeType, hookimpl
from hookline.errors import ConfigurationError
from hookline.settings import Settings
from hookline.storage.models import Execution, Job
from hookline.testing import TEST_TOKEN, HooklineTestApp


class Gate(NodeType):
    """Waits until the test opens its gate (``GATES[name]``)."""

    name = "gate"

    async def execute(self, run: NodeRun) -> NodeResult:
        await GATES.setdefault(run.config["name"], asyncio.Event()).wait()
        return NodeResult(result="through")


GATES: dict[str, asyncio.Event] = {}


class GatePlugin:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(Gate)


def ack_workflow(key: str, **extra: Any) -> dict[str, Any]:
    """Async: checks ``amount > 100``; a string amount fails the check."""
    return {
        "key": key,
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "check", "type": "condition", "config": {"rules": {"left": "{{ $context.body.amount }}", "op": "gt", "right": 100}}}],
        **extra,
    }


async def settled(hookline: HooklineTestApp, count: int) -> None:
    """Wait until the background runs queued so far have ended (run, stored or deleted)."""
    for _ in range(500):
        if not await Execution.filter(status__in=["queued", "running"]).exists():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("background executions still pending")


async def test_failures_only_keeps_no_successful_sync_run_and_every_failed_one(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow(history="failures"))
    ok = await hookline.webhook("pay", json={"id": "A-1", "amount": 150})
    assert (ok.status_code, ok.json()) == (200, {"tier": "high", "id": "A-1"})
    assert int(ok.headers["x-hookline-execution"]) > 0  # its id, though nothing is stored
    failed = await hookline.webhook("pay", json={"amount": "lots"})
    assert failed.status_code == 500
    stored = await Execution.all()
    assert [(e.id, e.status.value) for e in stored] == [(failed.json()["execution"], "failed")]
    assert await Job.filter(execution_id=stored[0].id).count() == 1
    assert (await hookline.api("GET", "/api/workflows/pay")).json()["definition"]["history"] == "failures"


async def test_failures_only_deletes_an_async_run_once_it_has_run(hookline: HooklineTestApp) -> None:
    await hookline.apply(ack_workflow("ev", history="failures"))
    for amount in (150, "lots", 50):
        assert (await hookline.webhook("ev", json={"amount": amount})).status_code == 200
    await settled(hookline, 3)
    assert [e.status.value for e in await Execution.all()] == ["failed"]


def test_the_server_default_is_read_and_checked(hookline_db_url: str) -> None:
    assert Settings.from_env({}, db_url=hookline_db_url).history == "all"
    assert Settings.from_env({"HOOKLINE_HISTORY": "failures"}, db_url=hookline_db_url).history == "failures"
    with pytest.raises(ConfigurationError, match="HOOKLINE_HISTORY must be one of all, failures, not 'some'"):
        Settings.from_env({"HOOKLINE_HISTORY": "some"}, db_url=hookline_db_url)


@pytest.fixture
def server_history() -> str:
    """The server's HOOKLINE_HISTORY (a test parametrises it)."""
    return "all"


@pytest.fixture
def hookline_settings(hookline_db_url: str, server_history: str) -> Settings:
    return Settings(db_url=hookline_db_url, api_token=TEST_TOKEN, shutdown_grace=5.0, history=server_history)


@pytest.mark.parametrize("server_history", ["failures"])
async def test_a_server_keeping_failures_only_still_keeps_a_workflow_that_says_all(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow("quiet"))
    await hookline.apply(sync_workflow("kept", history="all"))
    for key in ("quiet", "kept"):
        assert (await hookline.webhook(key, json={"amount": 150})).status_code == 200
    rows = await Execution.all().prefetch_related("workflow")
    assert [(row.workflow.key, row.status.value) for row in rows] == [("kept", "succeeded")]


async def test_failures_only_keeps_what_holds_an_idempotency_key_and_replays(hookline: HooklineTestApp) -> None:
    idempotency = {"header": "X-Delivery"}
    await hookline.apply(ack_workflow("ev", history="failures", trigger={"type": "webhook", "config": {"idempotency": idempotency}}))
    first = await hookline.webhook("ev", json={"amount": 150}, headers={"X-Delivery": "evt-1"})
    assert first.status_code == 200
    await settled(hookline, 1)
    again = await hookline.webhook("ev", json={"amount": 150}, headers={"X-Delivery": "evt-1"})
    assert again.headers.get("x-hookline-duplicate"), again.headers  # the key still holds: the row was kept
    (kept,) = await Execution.all()
    assert kept.status.value == "succeeded"
    replay = await hookline.api("POST", f"/api/executions/{kept.id}/replay", json={})
    assert replay.status_code in (200, 201, 202), replay.text
    await settled(hookline, 2)
    assert sorted(e.mode for e in await Execution.all()) == ["async", "replay"]


async def test_a_definition_with_an_unknown_history_policy_is_refused(hookline: HooklineTestApp) -> None:
    response = await hookline.api("POST", "/api/workflows", json={"key": "x", "trigger": {"type": "webhook"}, "history": "some"})
    assert response.status_code == 422
    problems = {p["location"]: p["message"] for p in response.json()["problems"]}
    assert "'all', 'failures'" in problems["history"], problems


# --- when a sync run is written ---------------------------------------------------------------


@pytest.mark.parametrize("hookline_plugins", [[GatePlugin()]])
async def test_a_sync_run_is_written_when_it_ends_with_the_id_it_had_from_its_start(hookline: HooklineTestApp) -> None:
    GATES["end"] = asyncio.Event()
    await hookline.apply({"key": "late", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "wait", "type": "gate", "config": {"name": "end"}},
        {"key": "reply", "type": "response", "config": {"body": {"id": "{{ $execution.id }}"}}},
    ]})
    call = asyncio.create_task(hookline.webhook("late", json={}))
    await asyncio.sleep(0.2)
    assert await Execution.all().count() == 0  # running, not written yet
    GATES["end"].set()
    response = await call
    execution_id = int(response.headers["x-hookline-execution"])
    assert response.json() == {"id": execution_id}
    (row,) = await Execution.all()
    assert (row.id, row.status.value, row.reply["body"]) == (execution_id, "succeeded", {"id": execution_id})
    assert [j.node for j in await Job.filter(execution_id=row.id).order_by("position")] == ["wait", "reply"]


@pytest.mark.parametrize("hookline_plugins", [[GatePlugin()]])
async def test_a_sync_run_that_answers_and_goes_on_is_written_before_its_answer(hookline: HooklineTestApp) -> None:
    GATES["after"] = asyncio.Event()
    await hookline.apply({"key": "early", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "reply", "type": "response", "config": {"end": False, "body": {"ok": True}}},
        {"key": "wait", "type": "gate", "config": {"name": "after"}},
    ]})
    response = await hookline.webhook("early", json={})
    assert response.json() == {"ok": True}
    (row,) = await Execution.all()  # written before the answer went out
    assert (row.id, row.status.value, row.reply["body"]) == (int(response.headers["x-hookline-execution"]), "running", {"ok": True})
    GATES["after"].set()
    for _ in range(200):
        await row.refresh_from_db()
        if row.status.value != "running":
            break
        await asyncio.sleep(0.01)
    assert row.status.value == "succeeded"
    assert await Job.filter(execution_id=row.id).count() == 2


@pytest.mark.parametrize("hookline_plugins", [[GatePlugin()]])
async def test_a_sync_run_that_outlasts_its_caller_s_wait_is_written_before_the_202(hookline: HooklineTestApp) -> None:
    GATES["long"] = asyncio.Event()
    await hookline.apply({"key": "long", "sync": True, "trigger": {"type": "webhook", "config": {"timeout": 0.2}}, "nodes": [
        {"key": "wait", "type": "gate", "config": {"name": "long"}},
    ]})
    response = await hookline.webhook("long", json={})
    assert response.status_code == 202
    (row,) = await Execution.all()
    assert (row.id, row.status.value) == (int(response.headers["x-hookline-execution"]), "running")
    GATES["long"].set()
    for _ in range(200):
        await row.refresh_from_db()
        if row.status.value != "running":
            break
        await asyncio.sleep(0.01)
    assert row.status.value == "succeeded"


async def test_ids_are_unique_and_increase_within_a_process_whatever_writes_first(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    await hookline.apply(ack_workflow("ev"))
    ids = []
    for n in range(30):
        response = await hookline.webhook("pay" if n % 2 else "ev", json={"amount": n})
        ids.append(int(response.headers["x-hookline-execution"]))
    await settled(hookline, 30)
    assert ids == sorted(set(ids))
    assert sorted(e.id for e in await Execution.all()) == ids


async def test_calls_at_once_get_distinct_ids(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    answers = await asyncio.gather(*(hookline.webhook("pay", json={"amount": n}) for n in range(50)))
    ids = [int(a.headers["x-hookline-execution"]) for a in answers]
    assert len(set(ids)) == 50
    assert sorted(e.id for e in await Execution.all()) == sorted(ids)


async def test_reserved_ids_are_never_taken_by_an_insert_without_one(hookline: HooklineTestApp) -> None:
    """Another process (or any insert that lets the database choose) never gets an id this
    process reserved, on SQLite (the AUTOINCREMENT counter) as on PostgreSQL (the sequence)."""
    run = await hookline.run_workflow({"key": "m", "trigger": {"type": "webhook"}})  # an ORM-chosen id
    store = hookline.host.executions.store
    reserved = [await store.next_id() for _ in range(5)]
    template = await Execution.get(id=run["id"])
    chosen = await Execution.create(
        workflow_id=template.workflow_id, version_id=template.version_id, status="succeeded", mode="manual",
        trigger_type="webhook", context={}, created_at=template.created_at,
    )
    assert run["id"] < min(reserved) and chosen.id not in reserved and chosen.id > max(reserved)
    assert reserved == sorted(set(reserved))
