"""What the HTTP Request node gives a job is stored on both databases: an upstream can answer
anything, and PostgreSQL refuses what SQLite takes (the NUL character, unpaired surrogates)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hookline.settings import Settings
from hookline.testing import TEST_TOKEN, HooklineTestApp
from test_http_upstream import Received, Upstream, send


@pytest.fixture
def hookline_settings(hookline_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HOOKLINE_HTTP_ALLOW", "127.0.0.1")
    return Settings(db_url=hookline_db_url, api_token=TEST_TOKEN, shutdown_grace=5.0)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.close()


async def run(hookline: HooklineTestApp, url: str, **config: Any) -> dict[str, Any]:
    definition = {
        "key": "call",
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "call", "type": "http-request", "config": {"url": url, **config}}],
    }
    execution = await hookline.run_workflow(definition, {"body": {}})
    stored = await hookline.host.executions.get(execution["id"])
    assert stored["status"] in ("succeeded", "failed"), stored["error"]  # not "error": outcome_not_stored
    return stored


async def test_a_body_holding_nul_is_stored_as_base64(hookline: HooklineTestApp, upstream: Upstream) -> None:
    stored = await run(hookline, upstream.url("/body?type=text/plain&hex=610062"))
    assert stored["jobs"][0]["result"]["body"] == "YQBi" and stored["jobs"][0]["result"]["body_encoding"] == "base64"


@pytest.mark.parametrize("text", ['{"a": "nul \\u0000"}', '{"a": "half \\ud800"}'])
async def test_json_that_cannot_be_stored_is_given_as_its_text(
    hookline: HooklineTestApp, upstream: Upstream, text: str
) -> None:
    stored = await run(hookline, upstream.url(f"/body?type=application/json&hex={text.encode().hex()}"))
    assert stored["jobs"][0]["result"]["body"] == text
    failed = await run(
        hookline, upstream.url(f"/body?type=application/json&hex={text.encode().hex()}"), response_format="json"
    )
    assert failed["status"] == "failed" and failed["error"]["error"] == "bad_response"


async def test_a_failure_with_its_details_is_stored(hookline: HooklineTestApp, upstream: Upstream) -> None:
    async def odd(request: Received, writer: Any) -> None:
        await send(writer, 500, "caf\u00e9 \U0001f600", {"X-Odd": "caf\u00e9".encode().decode("latin-1")})

    upstream.routes["/odd"] = odd
    stored = await run(hookline, upstream.url("/odd"), retry={"attempts": 2, "backoff": 0.001})
    assert stored["status"] == "failed"
    error = stored["error"]
    assert error["node"] == "call" and error["error"] == "upstream_status" and error["status"] == 500
    assert error["body"] == "caf\u00e9 \U0001f600" and [a["status"] for a in error["attempts"]] == [500, 500]
    assert json.loads(json.dumps(stored["jobs"][0]["error"])) == {k: v for k, v in error.items() if k != "node"}


async def test_a_result_with_the_headers_an_upstream_sent_is_stored(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    async def headers(request: Received, writer: Any) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Bytes: \xe9\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()

    upstream.routes["/headers"] = headers
    stored = await run(hookline, upstream.url("/headers"))
    result = stored["jobs"][0]["result"]
    assert result["headers"]["set-cookie"] == "a=1, b=2" and result["headers"]["x-bytes"] == "\u00e9"
    assert result["body"] == ""
