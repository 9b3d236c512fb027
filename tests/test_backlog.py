"""A flood of async calls is refused with 503 and Retry-After once too many executions wait in
this process (max_backlog), instead of piling up in memory; everything acknowledged still runs."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from hookline import NodeResult, NodeRun, NodeType, hookimpl
from hookline.settings import Settings
from hookline.storage.models import Execution, ExecutionStatus
from hookline.testing import TEST_TOKEN, HooklineTestApp


class Slow(NodeType):
    name = "slow"

    async def execute(self, run: NodeRun) -> NodeResult:
        await asyncio.sleep(0.2)
        return NodeResult()


class Gated(NodeType):
    """Waits until the test opens the gate."""

    name = "gated"
    gate: asyncio.Event | None = None

    async def execute(self, run: NodeRun) -> NodeResult:
        assert Gated.gate is not None
        await Gated.gate.wait()
        return NodeResult()


class SlowNodes:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(Slow)
        register(Gated)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [SlowNodes()]


@pytest.fixture
def hookline_settings(hookline_db_url: str) -> Settings:
    return Settings(db_url=hookline_db_url, api_token=TEST_TOKEN, max_concurrent_runs=1, max_backlog=3)


async def test_a_full_backlog_is_a_503_and_acknowledged_calls_all_run(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "busy", "trigger": {"type": "webhook"}, "nodes": [{"key": "s", "type": "slow"}]})
    answers = [await hookline.webhook("busy", json={"n": n}) for n in range(8)]
    refused = [a for a in answers if a.status_code == 503]
    accepted = [a for a in answers if a.status_code == 200]
    assert refused and accepted and len(refused) + len(accepted) == 8
    for answer in refused:
        assert answer.json()["error"] == "overloaded" and answer.headers["retry-after"] == "5"
    for answer in accepted:
        execution = await hookline.wait_for_execution(int(answer.headers["x-hookline-execution"]), timeout=20)
        assert execution["status"] == "succeeded"
    # once drained, calls are accepted again
    assert (await hookline.webhook("busy", json={})).status_code == 200
    stored = (await hookline.api("GET", "/api/executions?workflow=busy&limit=500")).json()["items"]
    assert len(stored) == len(accepted) + 1  # a refused call left nothing behind


async def test_an_async_call_with_a_run_slot_free_starts_at_once_the_next_waits_queued(
    hookline: HooklineTestApp,
) -> None:
    """With the memory queue, a call that finds a run slot free is stored ``running`` (owned by
    this process) before its answer and runs without the queue; while the slot is taken, the
    next is stored ``queued`` and runs after it."""
    Gated.gate = asyncio.Event()
    await hookline.apply({"key": "gated", "trigger": {"type": "webhook"}, "nodes": [{"key": "g", "type": "gated"}]})
    queue = hookline.host.queue
    sent: list[int] = []
    send = queue.send

    async def counting_send(execution_id: int) -> None:
        sent.append(execution_id)
        await send(execution_id)

    queue.send = counting_send  # type: ignore[method-assign]
    first = await hookline.webhook("gated", json={"n": 1})
    second = await hookline.webhook("gated", json={"n": 2})
    assert first.status_code == second.status_code == 200
    ids = [int(answer.headers["x-hookline-execution"]) for answer in (first, second)]
    assert sent == [ids[1]]  # the first never went through the queue
    rows = {row.id: row for row in await Execution.filter(id__in=ids)}
    assert rows[ids[0]].status == ExecutionStatus.RUNNING and rows[ids[0]].queued_at is None
    assert rows[ids[0]].owner == hookline.host.executions.process_id and rows[ids[0]].started_at is not None
    assert rows[ids[1]].status == ExecutionStatus.QUEUED and rows[ids[1]].started_at is None
    Gated.gate.set()
    done = [await hookline.wait_for_execution(execution_id, timeout=20) for execution_id in ids]
    assert [execution["status"] for execution in done] == ["succeeded", "succeeded"]
    assert done[1]["started_at"] >= done[0]["finished_at"]  # one run slot: one after the other
    assert [execution["mode"] for execution in done] == ["async", "async"]


def test_limits_come_from_the_environment() -> None:
    settings = Settings.from_env({"HOOKLINE_MAX_BACKLOG": "50", "HOOKLINE_MAX_CONCURRENT_RUNS": "4"})
    assert (settings.max_backlog, settings.max_concurrent_runs) == (50, 4)
    from hookline.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="HOOKLINE_MAX_BACKLOG must be a whole number"):
        Settings.from_env({"HOOKLINE_MAX_BACKLOG": "lots"})


def test_durations_come_from_the_environment() -> None:
    from datetime import timedelta

    from hookline.errors import ConfigurationError

    settings = Settings.from_env({
        "HOOKLINE_RETENTION": "90d", "HOOKLINE_HEARTBEAT_INTERVAL": "2.5",
        "HOOKLINE_DB_LOCK_TIMEOUT": "1.5s", "HOOKLINE_SHUTDOWN_GRACE": "1m",
    })
    assert settings.retention == timedelta(days=90)
    assert (settings.heartbeat_interval, settings.db_lock_timeout, settings.shutdown_grace) == (2.5, 1.5, 60.0)
    assert Settings.from_env({"HOOKLINE_RETENTION": "forever"}).retention is None
    for variable, value in (("HOOKLINE_RETENTION", "soon"), ("HOOKLINE_HEARTBEAT_INTERVAL", "0"), ("HOOKLINE_DB_LOCK_TIMEOUT", "-1")):
        with pytest.raises(ConfigurationError, match=variable):
            Settings.from_env({variable: value})
