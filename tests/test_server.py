"""A real ``hookline serve`` process on 127.0.0.1, on SQLite and PostgreSQL: the quick start's
example, async runs, resuming queued work after a restart, the generated API token, workers."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import EXAMPLES
from hookline.host import Host
from hookline.settings import Settings
from hookline.testing import HooklineServer

pytestmark = pytest.mark.server


def poll_execution(server: HooklineServer, execution_id: int, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution = httpx.get(f"{server.base_url}/api/executions/{execution_id}", headers=server.auth).json()
        if execution["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


@pytest.fixture
def example_server(hookline_db_url: str, tmp_path: Path) -> Any:
    server = HooklineServer(hookline_db_url, workflows=EXAMPLES, cwd=tmp_path).start(tmp_path / "server.log")
    yield server
    assert server.stop() == 0, server.log()


def test_the_example_answers_by_amount(example_server: HooklineServer) -> None:
    url = f"{example_server.base_url}/api/webhooks/order-paid"
    high = httpx.post(url, json={"id": "A-1001", "amount": 150})
    low = httpx.post(f"{example_server.base_url}/api/webhook:trigger/order-paid", json={"id": "A-1002", "amount": 40})
    assert high.json() == {"ok": True, "tier": "high", "order": "A-1001", "message": "Order A-1001 ships express"}
    assert low.json()["tier"] == "low"
    history = httpx.get(f"{example_server.base_url}/api/executions?workflow=order-paid", headers=example_server.auth)
    assert [e["status"] for e in history.json()["items"]] == ["succeeded", "succeeded"]


def test_async_webhooks_are_acknowledged_then_run(example_server: HooklineServer) -> None:
    responses = [
        httpx.post(f"{example_server.base_url}/api/webhooks/order-events", json={"amount": n * 60}) for n in range(5)
    ]
    assert {(r.status_code, r.text) for r in responses} == {(200, "ok")}
    for response in responses:
        execution = poll_execution(example_server, int(response.headers["x-hookline-execution"]))
        assert execution["status"] == "succeeded"


def test_bad_requests_never_get_a_500_or_a_traceback(example_server: HooklineServer) -> None:
    base = example_server.base_url
    cases = [
        httpx.post(f"{base}/api/webhooks/order-paid", content=b"{", headers={"Content-Type": "application/json"}),
        httpx.get(f"{base}/api/webhooks/order-paid"),
        httpx.post(f"{base}/api/webhooks/missing", json={}),
        httpx.get(f"{base}/api/workflows"),
        httpx.get(f"{base}/nowhere"),
    ]
    assert [r.status_code for r in cases] == [400, 405, 404, 401, 404]
    for response in cases:
        assert response.headers["content-type"].startswith("application/json")
        assert set(response.json()) >= {"error", "message"}
        assert "Traceback" not in response.text


async def test_queued_executions_left_behind_run_at_start(hookline_db_url: str, tmp_path: Path) -> None:
    """A process stopped after acknowledging async calls leaves them queued; the next start runs them."""
    from hookline.storage.models import Execution, ExecutionStatus
    from hookline.workflow_files import read_workflow_files

    host = Host(Settings(db_url=hookline_db_url))
    await host.migrate()
    await host.open_database()
    try:
        await host.workflows.apply_all(read_workflow_files(EXAMPLES))
        workflow = await host.workflows.find("order-events")
        assert workflow is not None
        rows = [
            await Execution.create(
                workflow_id=workflow.id, version_id=workflow.compiled.version_id, status=ExecutionStatus.QUEUED,
                mode="async", trigger_type="webhook", context={"body": {"amount": 500}}, created_at=host_now(),
            )
            for _ in range(3)
        ]
    finally:
        await host.close_database()

    server = await asyncio.to_thread(HooklineServer(hookline_db_url, cwd=tmp_path).start, tmp_path / "server.log")
    try:
        for row in rows:
            execution = await asyncio.to_thread(poll_execution, server, row.id)
            assert execution["status"] == "succeeded", execution
        assert "3 queued taken over" in server.log()
    finally:
        server.stop()


def host_now() -> Any:
    from hookline.engine import utcnow

    return utcnow()


def test_first_serve_generates_a_token_once(tmp_path: Path) -> None:
    db = f"sqlite://{tmp_path / 'tok.db'}"
    env = {"HOOKLINE_API_TOKEN": ""}
    first = HooklineServer(db, cwd=tmp_path, env=env)
    first.env.pop("HOOKLINE_API_TOKEN")
    first.start(tmp_path / "first.log")
    try:
        match = re.search(r"HOOKLINE_API_TOKEN=(\S+)", first.log())
        assert match, first.log()
        token = match.group(1)
        ok = httpx.get(f"{first.base_url}/api/workflows", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert httpx.get(f"{first.base_url}/api/workflows", headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        first.stop()
    second = HooklineServer(db, cwd=tmp_path)
    second.env.pop("HOOKLINE_API_TOKEN")
    second.start(tmp_path / "second.log")
    try:
        assert "HOOKLINE_API_TOKEN=" not in second.log()
        assert httpx.get(f"{second.base_url}/api/workflows", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        second.stop()


@pytest.mark.skipif(os.cpu_count() == 1, reason="needs more than one core to be meaningful")
def test_two_worker_processes_share_the_database(tmp_path: Path) -> None:
    server = HooklineServer(f"sqlite://{tmp_path / 'w.db'}", workflows=EXAMPLES, cwd=tmp_path, args=["--workers", "2"])
    server.start(tmp_path / "server.log", timeout=60)
    try:
        time.sleep(2.5)  # Sanic's worker manager mishandles a signal during start-up (sanic#2997)
        with httpx.Client() as client:
            tiers = [
                client.post(f"{server.base_url}/api/webhooks/order-paid", json={"id": str(n), "amount": n * 50}).json()["tier"]
                for n in range(6)
            ]
        assert tiers == ["low", "low", "low", "high", "high", "high"]
        assert len(set(re.findall(r"Starting worker \[(\d+)\]", server.log()))) == 2
    finally:
        server.stop(timeout=30)
