"""A real ``hookline serve`` keeps answering while HTTP Request nodes wait on upstreams that never
answer, answer endlessly or dribble: the node awaits without blocking the server, and
``HOOKLINE_HTTP_MAX_PER_HOST`` bounds how many runs one slow upstream can hold.

Shown by order, never by time: the other workflow answers while the slow calls' connections to
their upstream are still open (the upstream counts them). Timeouts are safety nets only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hookline.testing import HooklineServer
from test_http_upstream import Upstream

pytestmark = pytest.mark.server

#: Requests one upstream may have in flight in the server (HOOKLINE_HTTP_MAX_PER_HOST).
PER_HOST = 3


def sync_workflow(key: str, node: dict[str, Any] | None, reply: Any) -> dict[str, Any]:
    nodes = [{"key": "call", "type": "http-request", "config": node}] if node else []
    return {
        "key": key,
        "sync": True,
        "timeout": 300,
        "trigger": {"type": "webhook", "config": {"timeout": 200}},
        "nodes": [*nodes, {"key": "reply", "type": "response", "config": {"body": reply}}],
    }


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[Upstream, Upstream]]:
    """One upstream that hangs, and another one (another origin) for the big and slow bodies."""
    hanging, other = await Upstream().start(), await Upstream().start()
    yield hanging, other
    await hanging.close()
    await other.close()


@pytest.fixture
async def server(tmp_path: Path, upstreams: tuple[Upstream, Upstream]) -> AsyncIterator[HooklineServer]:
    hanging, other = upstreams
    folder = tmp_path / "workflows"
    folder.mkdir()
    definitions = [
        sync_workflow(
            "slow", {"url": hanging.url("/hang"), "timeout": {"connect": 1, "total": 250}}, "{{ $nodes.call.status }}"
        ),
        sync_workflow("huge", {"url": other.url("/endless")}, "{{ $nodes.call.status }}"),
        sync_workflow("dribble", {"url": other.url("/dribble"), "timeout": {"total": 1}}, "{{ $nodes.call.status }}"),
        sync_workflow("fast", None, {"ok": True}),
    ]
    for definition in definitions:
        (folder / f"{definition['key']}.json").write_text(json.dumps(definition))
    env = {"HOOKLINE_HTTP_ALLOW": "127.0.0.1", "HOOKLINE_HTTP_MAX_PER_HOST": str(PER_HOST)}
    process = HooklineServer(f"sqlite://{tmp_path / 'server.db'}", workflows=folder, env=env, cwd=tmp_path)
    await asyncio.to_thread(process.start, tmp_path / "server.log")
    yield process
    await asyncio.to_thread(process.stop)


async def test_the_server_answers_while_upstreams_hang(
    server: HooklineServer, upstreams: tuple[Upstream, Upstream]
) -> None:
    hanging, other = upstreams
    async with httpx.AsyncClient(base_url=server.base_url, timeout=240) as client:

        async def webhook(key: str) -> httpx.Response:
            return await client.post(f"/api/webhooks/{key}", json={})

        slow = [asyncio.ensure_future(webhook("slow")) for _ in range(PER_HOST + 2)]
        try:
            # PER_HOST of them reach the upstream and hang there; the other two may not wait for
            # a slot longer than their connect timeout and fail, while the first ones still hang.
            await hanging.wait_for_requests(PER_HOST)
            busy: list[httpx.Response] = []
            for _ in range(2):  # two calls end: at most two waits (each a safety net)
                done, _ = await asyncio.wait(
                    [t for t in slow if not t.done()], timeout=120, return_when=asyncio.FIRST_COMPLETED
                )
                busy += [task.result() for task in done]
                if len(busy) >= 2:
                    break
            assert [response.status_code for response in busy] == [500, 500]
            expected = f"{PER_HOST} requests to {hanging.base} are already in flight (HOOKLINE_HTTP_MAX_PER_HOST)"
            assert all(expected in response.json()["message"] for response in busy), [r.json() for r in busy]
            assert hanging.open_connections == PER_HOST and len(hanging.requests) == PER_HOST

            # Meanwhile the server answers another workflow...
            fast = await webhook("fast")
            assert fast.status_code == 200 and fast.json() == {"ok": True}
            # ...a body that never ends is cut at the size limit...
            huge = await webhook("huge")
            assert huge.status_code == 500 and "response larger than 1048576 bytes" in huge.json()["message"]
            # ...and one that dribbles in is cut at the total timeout,
            dribble = await webhook("dribble")
            assert dribble.status_code == 500 and "no answer within 1 s" in dribble.json()["message"]
            assert (await webhook("fast")).status_code == 200
            # all while the slow calls still hang.
            assert hanging.open_connections == PER_HOST
            assert sum(task.done() for task in slow) == 2

            # Their upstream going away ends them, each with its own failure.
            await hanging.drop_connections()
            finished = await asyncio.wait_for(asyncio.gather(*slow), 120)
        finally:
            for task in slow:
                task.cancel()
    failed = [
        response.json()["message"] for response in finished if "already in flight" not in response.json()["message"]
    ]
    assert len(failed) == PER_HOST
    assert all(f"the exchange with {hanging.base} failed" in message for message in failed), failed
    assert other.connections == 2
