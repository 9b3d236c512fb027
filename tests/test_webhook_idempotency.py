"""Never twice: a delivery's idempotency key (header, query, body path or a provider preset)
makes its duplicates, sequential or concurrent, run nothing, on SQLite and PostgreSQL. An async
duplicate gets the configured answer; a sync one gets the stored answer of the first."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable

import pytest

from hookline import DefinitionError, NodeError, NodeResult, NodeRun, NodeType, hookimpl
from hookline.storage.models import Execution
from hookline.testing import HooklineTestApp
from hookline_webhook.idempotency import PRESETS, compile_idempotency


class Slow(NodeType):
    name = "slow"

    async def execute(self, run: NodeRun) -> NodeResult:
        await asyncio.sleep(run.config.get("seconds", 0.3))
        return NodeResult(result="slept")


class FailOnce(NodeType):
    """Fails the first time it sees a body id, succeeds after: a transient failure."""

    name = "fail_once"
    seen: set[str] = set()

    async def execute(self, run: NodeRun) -> NodeResult:
        ident = str(run.config["id"])
        if ident not in FailOnce.seen:
            FailOnce.seen.add(ident)
            raise NodeError("transient failure")
        return NodeResult(result="ok")


class TestNodes:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(Slow)
        register(FailOnce)


@pytest.fixture
def hookline_plugins(hookline_plugins: list[object]) -> list[object]:
    return [*hookline_plugins, TestNodes()]


def async_workflow(key: str, idempotency: dict[str, Any], **trigger: Any) -> dict[str, Any]:
    return {
        "key": key,
        "trigger": {
            "type": "webhook",
            "config": {
                "idempotency": idempotency,
                "response": {"status": 202, "body": {"accepted": "{{ $execution.id }}"}},
                **trigger,
            },
        },
        "nodes": [{"key": "s", "type": "slow", "config": {"seconds": 0.01}}],
    }


def sync_workflow(key: str, idempotency: dict[str, Any], seconds: float = 0.01) -> dict[str, Any]:
    return {
        "key": key,
        "sync": True,
        "trigger": {"type": "webhook", "config": {"idempotency": idempotency, "timeout": 5}},
        "nodes": [
            {"key": "s", "type": "slow", "config": {"seconds": seconds}},
            # The answer depends on the execution: a replayed answer is recognisable.
            {"key": "r", "type": "response", "config": {"status": 201, "body": {"run": "{{ $execution.id }}"}}},
        ],
    }


async def executions(key: str) -> list[Execution]:
    return await Execution.filter(workflow__key=key).order_by("id")


async def test_an_async_duplicate_gets_the_same_answer_and_runs_nothing(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("orders", {"header": "X-Delivery"}))
    first = await hookline.webhook("orders", json={"n": 1}, headers={"X-Delivery": "d-1"})
    again = await hookline.webhook("orders", json={"n": 1}, headers={"X-Delivery": "d-1"})
    other = await hookline.webhook("orders", json={"n": 2}, headers={"X-Delivery": "d-2"})

    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == first.json()
    assert again.headers["x-hookline-execution"] == first.headers["x-hookline-execution"]
    assert again.headers["x-hookline-duplicate"] == "true" and "x-hookline-duplicate" not in first.headers
    rows = await executions("orders")
    assert len(rows) == 2 and {r.context["body"]["n"] for r in rows} == {1, 2}


async def test_requests_without_a_key_run_each_time_unless_the_key_is_required(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("loose", {"header": "X-Delivery"}))
    await hookline.apply(async_workflow("strict", {"header": "X-Delivery", "required": True}))
    for _ in range(2):
        assert (await hookline.webhook("loose", json={})).status_code == 202
    refused = await hookline.webhook("strict", json={})
    assert refused.status_code == 400
    assert refused.json()["error"] == "missing_idempotency_key"
    assert "X-Delivery" in refused.json()["message"]
    assert len(await executions("loose")) == 2 and await executions("strict") == []


async def test_key_from_query_or_body_path(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("q", {"query": "event"}))
    await hookline.apply(async_workflow("b", {"body": "$.data.object.id"}))
    for _ in range(3):
        assert (await hookline.client.post("/api/webhooks/q?event=e1", json={})).status_code == 202
        assert (await hookline.webhook("b", json={"data": {"object": {"id": 42}}})).status_code == 202
    assert (await hookline.webhook("b", json={"data": {"object": {"id": 43}}})).status_code == 202
    assert len(await executions("q")) == 1
    assert len(await executions("b")) == 2


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_presets_take_the_providers_delivery_id(hookline: HooklineTestApp, preset: str) -> None:
    await hookline.apply(async_workflow("p", {"preset": preset}))
    location = PRESETS[preset]

    def delivery(ident: str) -> dict[str, Any]:
        if "header" in location:
            return {"json": {"same": "body"}, "headers": {location["header"]: ident}}
        field = location["body"].removeprefix("$.")
        return {"json": {field: ident, "type": "event"}}

    for ident in ("evt_1", "evt_1", "evt_2", "evt_1"):
        assert (await hookline.webhook("p", **delivery(ident))).status_code == 202
    assert len(await executions("p")) == 2


def test_the_signature_preset_implies_where_the_key_is() -> None:
    assert compile_idempotency({}, signature_preset="github").header == "X-GitHub-Delivery"
    assert str(compile_idempotency({}, signature_preset="stripe").body) == "$.id"
    assert compile_idempotency({"header": "X-Id"}, signature_preset="github").header == "X-Id"


async def test_a_sync_duplicate_gets_the_stored_answer_of_the_first(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow("pay", {"header": "Idempotency-Key"}))
    first = await hookline.webhook("pay", json={}, headers={"Idempotency-Key": "k1"})
    again = await hookline.webhook("pay", json={}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"run": int(first.headers["x-hookline-execution"])}
    assert again.headers["x-hookline-duplicate"] == "true"
    assert len(await executions("pay")) == 1


async def test_a_sync_delivery_that_failed_without_an_answer_runs_again(hookline: HooklineTestApp) -> None:
    """The first caller was told 500 (retry); the retry runs rather than replaying the 500."""
    definition = {
        "key": "flaky",
        "sync": True,
        "trigger": {"type": "webhook", "config": {"idempotency": {"header": "X-Id"}}},
        "nodes": [
            {"key": "f", "type": "fail_once", "config": {"id": "{{ $context.headers['x-id'] }}"}},
            {"key": "r", "type": "response", "config": {"body": "done"}},
        ],
    }
    await hookline.apply(definition)
    ident = uuid.uuid4().hex
    first = await hookline.webhook("flaky", json={}, headers={"X-Id": ident})
    retry = await hookline.webhook("flaky", json={}, headers={"X-Id": ident})
    again = await hookline.webhook("flaky", json={}, headers={"X-Id": ident})
    assert first.status_code == 500 and first.json()["error"] == "workflow_failed"
    assert (retry.status_code, retry.text) == (200, "done")
    assert (again.status_code, again.text, again.headers["x-hookline-duplicate"]) == (200, "done", "true")
    assert [r.status.value for r in await executions("flaky")] == ["failed", "succeeded"]


async def test_the_key_expires_after_its_window(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("w", {"header": "X-Id", "window": 0.5}))
    assert (await hookline.webhook("w", json={}, headers={"X-Id": "a"})).status_code == 202
    assert (await hookline.webhook("w", json={}, headers={"X-Id": "a"})).headers["x-hookline-duplicate"] == "true"
    await asyncio.sleep(0.6)
    later = await hookline.webhook("w", json={}, headers={"X-Id": "a"})
    assert "x-hookline-duplicate" not in later.headers
    assert len(await executions("w")) == 2


async def test_twenty_concurrent_async_duplicates_run_once(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("burst", {"header": "webhook-id"}))
    answers = await asyncio.gather(
        *(hookline.webhook("burst", json={"n": n}, headers={"webhook-id": "msg_1"}) for n in range(20))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.headers["x-hookline-execution"] for a in answers}) == 1
    assert sum("x-hookline-duplicate" in a.headers for a in answers) == 19
    rows = await executions("burst")
    assert len(rows) == 1
    await hookline.wait_for_execution(rows[0].id)


async def test_twenty_concurrent_sync_duplicates_run_once_and_all_get_its_answer(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow("sbursts", {"header": "X-Id"}, seconds=0.3))
    answers = await asyncio.gather(*(hookline.webhook("sbursts", json={}, headers={"X-Id": "one"}) for _ in range(20)))
    rows = await executions("sbursts")
    assert len(rows) == 1
    assert [(a.status_code, a.json()) for a in answers] == [(201, {"run": rows[0].id})] * 20


async def test_a_duplicate_while_the_first_runs_can_be_refused(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow("busy", {"header": "X-Id", "while_running": "reject"}, seconds=0.5))
    first = asyncio.create_task(hookline.webhook("busy", json={}, headers={"X-Id": "x"}))
    await asyncio.sleep(0.2)
    second = await hookline.webhook("busy", json={}, headers={"X-Id": "x"})
    assert second.status_code == 409 and second.json()["error"] == "duplicate_in_progress"
    assert second.headers["retry-after"] == "1"
    assert (await first).status_code == 201
    third = await hookline.webhook("busy", json={}, headers={"X-Id": "x"})
    assert third.json() == (await first).json()


async def test_a_duplicate_still_running_at_the_timeout_gets_the_timeout_answer(hookline: HooklineTestApp) -> None:
    # 3 s of work against 0.2 s of waiting: the duplicate must come while the first still runs,
    # even on a machine so loaded that a call takes a second (seen: 1 s was not enough).
    definition = sync_workflow("long", {"header": "X-Id"}, seconds=3.0)
    definition["trigger"]["config"]["timeout"] = 0.2
    await hookline.apply(definition)
    first = await hookline.webhook("long", json={}, headers={"X-Id": "x"})
    second = await hookline.webhook("long", json={}, headers={"X-Id": "x"})
    assert first.status_code == second.status_code == 202
    assert second.json()["execution"] == first.json()["execution"]
    assert second.headers["x-hookline-duplicate"] == "true"
    await hookline.wait_for_execution(first.json()["execution"])


async def test_keys_are_per_workflow_and_of_any_shape(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("one", {"header": "X-Id"}))
    await hookline.apply(async_workflow("two", {"header": "X-Id"}))
    odd = ("é🙂" * 100).encode()  # long, not ASCII: stored as a digest
    for key in ("one", "two", "one"):
        assert (await hookline.webhook(key, json={}, headers={"X-Id": odd})).status_code == 202
    assert len(await executions("one")) == 1 and len(await executions("two")) == 1
    too_long = await hookline.webhook("one", json={}, headers={"X-Id": "k" * 2000})
    assert too_long.status_code == 400 and too_long.json()["error"] == "invalid_idempotency_key"


async def test_idempotency_config_is_checked_on_save(hookline: HooklineTestApp) -> None:
    with pytest.raises(DefinitionError, match=r"idempotency\.window: 'soon' is not a duration"):
        await hookline.apply(async_workflow("bad", {"header": "X-Id", "window": "soon"}))
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(async_workflow("bad", {"body": "$[", "while_running": "wait"}))
    message = str(refused.value)
    assert "idempotency.body: '$[' is not a JSONPath" in message
    assert "while_running applies to sync workflows only" in message
    with pytest.raises(DefinitionError, match="say where the key is"):
        await hookline.apply(async_workflow("none", {}))


async def test_a_duplicate_gets_the_reply_of_a_first_that_goes_on_after_answering(hookline: HooklineTestApp) -> None:
    """The first answered early and keeps working: its reply is recorded at once, so a duplicate
    gets it without waiting for the end (and it would survive the process dying)."""
    await hookline.apply({
        "key": "early",
        "sync": True,
        "trigger": {"type": "webhook", "config": {"idempotency": {"header": "X-Id"}, "timeout": 0.5}},
        "nodes": [
            {"key": "r", "type": "response", "config": {"status": 201, "body": {"run": "{{ $execution.id }}"}, "end": False}},
            {"key": "s", "type": "slow", "config": {"seconds": 1.5}},
        ],
    })
    first = await hookline.webhook("early", json={}, headers={"X-Id": "e"})
    assert first.status_code == 201
    again = await hookline.webhook("early", json={}, headers={"X-Id": "e"})
    assert (again.status_code, again.json()) == (201, first.json())
    rows = await executions("early")
    assert len(rows) == 1 and rows[0].status.value == "running" and rows[0].reply["status"] == 201
    await hookline.wait_for_execution(rows[0].id)


async def test_hostile_windows_and_paths_are_refused_on_save_or_ignored(hookline: HooklineTestApp) -> None:
    for window in (1e20, "600000w", "400d"):
        with pytest.raises(DefinitionError, match=r"idempotency\.window"):
            await hookline.apply(async_workflow("w", {"header": "X-Id", "window": window}))
    # An extended JSONPath that fails on the body at hand finds no key (no 500).
    await hookline.apply(async_workflow("sorted", {"body": "$.items[/n].id"}))
    answer = await hookline.webhook("sorted", json={"items": [{"n": 1, "id": "a"}, {"n": "x", "id": "b"}]})
    assert answer.status_code == 202
    await hookline.apply(async_workflow("filtered", {"body": "$.items[?n > 1].id"}))
    for body in ({"items": [{"n": 2, "id": "k"}]}, {"items": [{"n": 2, "id": "k"}]}, {"items": [{"n": "x", "id": "k"}]}):
        assert (await hookline.webhook("filtered", json=body)).status_code == 202
    assert len(await executions("filtered")) == 2  # the second was a duplicate; the third had no key


async def test_a_stopping_server_starts_nothing_new(hookline: HooklineTestApp) -> None:
    await hookline.apply(async_workflow("late", {"header": "X-Id"}))
    await hookline.host.executions.drain(0)
    answer = await hookline.webhook("late", json={}, headers={"X-Id": "1"})
    assert answer.status_code == 503 and answer.json()["error"] == "shutting_down"
    assert answer.headers["retry-after"] == "5"
    assert await executions("late") == []


async def test_a_sync_caller_whose_run_is_cancelled_by_a_shutdown_still_gets_an_answer(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow("cut", {"header": "X-Id"}, seconds=2))
    waiting = asyncio.create_task(hookline.webhook("cut", json={}, headers={"X-Id": "c"}))
    await asyncio.sleep(0.3)
    await hookline.host.executions.drain(0)
    answer = await waiting
    assert answer.status_code == 500 and answer.json()["error"] == "workflow_cancelled", answer.text
    assert [r.status.value for r in await executions("cut")] == ["cancelled"]
