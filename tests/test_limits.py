"""Bounds on what one request may make the server do or store: the number of query parameters,
form fields, multipart parts and JSON values (in-process), and Sanic's own limits and timers
through a real server on 127.0.0.1 (a stalled client is cut off, an oversized management body
is a 413 in JSON, the global body limit does not undercut a webhook's own)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from hookline.storage.models import Execution
from hookline.testing import HooklineServer, HooklineTestApp
from hookline.web.app import SERVER_LIMITS, create_app
from hookline.web.limits import MAX_DEPTH, MAX_PARAMETERS, MAX_VALUES, json_shape, nesting_depth
from hookline_webhook.trigger import CONFIG_SCHEMA, LARGEST_MAX_BODY

ECHO_COUNTS = [{"key": "echo", "type": "response", "config": {"body": {"ok": True}}}]


def echo(key: str, config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "webhook", **({"config": config} if config else {})}
    return {"key": key, "sync": True, "trigger": trigger, "nodes": ECHO_COUNTS, **extra}


def multipart(fields: int, files: int = 0, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n' for i in range(fields)]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="up"; filename="u{i}.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nx\r\n"
        for i in range(files)
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def assert_too_many(response: httpx.Response, limit: int, what: str) -> None:
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["error"] == "too_many_parameters"
    assert f"more than {limit}" in answer["message"] and what in answer["message"]
    assert answer["limit"] == limit


# --- the counting walk ----------------------------------------------------------------------


def test_json_shape_counts_every_value_and_stops_at_a_limit() -> None:
    assert json_shape(1) == json_shape("x") == json_shape(None)
    assert (json_shape(1).depth, json_shape(1).values) == (0, 1)
    assert (json_shape([]).depth, json_shape([]).values) == (1, 1)
    value = {"a": [1, 2, {"b": None}], "c": "d"}
    assert (json_shape(value).depth, json_shape(value).values) == (3, 7)  # 3 containers, 4 scalars
    assert json_shape([0] * 10_000_000, max_values=10).values > 10  # stopped at once, not walked
    deep: Any = []
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    assert nesting_depth(deep) == MAX_DEPTH + 1  # the walk stops one level past the limit
    assert nesting_depth({"a": {"b": [1]}}) == 3 and nesting_depth("x") == 0


# --- counts through the webhook (in-process) ------------------------------------------------


async def test_query_parameters_are_limited(hookline: HooklineTestApp) -> None:
    await hookline.apply(echo("q"))
    at_limit = "&".join(f"k{i}=v" for i in range(MAX_PARAMETERS))
    assert (await hookline.client.post(f"/api/webhooks/q?{at_limit}", json={})).status_code == 200
    over = await hookline.client.post(f"/api/webhooks/q?{at_limit}&one=more", json={})
    assert_too_many(over, MAX_PARAMETERS, "query string")
    assert await Execution.filter(workflow__key="q").count() == 1


async def test_form_fields_are_limited(hookline: HooklineTestApp) -> None:
    await hookline.apply(echo("form"))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    at_limit = "&".join(f"k{i}=v" for i in range(MAX_PARAMETERS))
    assert (await hookline.client.post("/api/webhooks/form", content=at_limit, headers=form)).status_code == 200
    over = await hookline.client.post("/api/webhooks/form", content=at_limit + "&x=1", headers=form)
    assert_too_many(over, MAX_PARAMETERS, "form body")


async def test_multipart_parts_are_limited_fields_and_files_together(hookline: HooklineTestApp) -> None:
    await hookline.apply(echo("multi"))
    body, headers = multipart(MAX_PARAMETERS - 10, files=10)
    assert (await hookline.client.post("/api/webhooks/multi", content=body, headers=headers)).status_code == 200
    for fields, files in ((MAX_PARAMETERS + 1, 0), (MAX_PARAMETERS - 10, 11), (0, MAX_PARAMETERS + 1)):
        body, headers = multipart(fields, files=files)
        over = await hookline.client.post("/api/webhooks/multi", content=body, headers=headers)
        assert_too_many(over, MAX_PARAMETERS, "multipart body")
    # A flood of empty parts is counted before anything is parsed.
    flood = b"--b\r\n\r\n\r\n" * 50_000 + b"--b--\r\n"
    refused = await hookline.client.post(
        "/api/webhooks/multi", content=flood, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert_too_many(refused, MAX_PARAMETERS, "multipart body")


async def test_json_values_are_limited(hookline: HooklineTestApp) -> None:
    await hookline.apply(echo("json"))
    at_limit = [0] * (MAX_VALUES - 1)  # the array itself is a value too
    assert (await hookline.webhook("json", json=at_limit)).status_code == 200
    over = await hookline.webhook("json", json=[0] * MAX_VALUES)
    assert_too_many(over, MAX_VALUES, "JSON body")
    nested = await hookline.webhook("json", json={"a": [{"b": i} for i in range(MAX_VALUES // 2)]})
    assert_too_many(nested, MAX_VALUES, "JSON body")
    assert await Execution.filter(workflow__key="json").count() == 1


async def test_a_typed_object_parameter_is_limited_too(hookline: HooklineTestApp) -> None:
    await hookline.apply(echo("typed", {"body": [{"path": "doc", "type": "object"}]}))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    small = await hookline.client.post("/api/webhooks/typed", content="doc=" + json.dumps({"a": [1, 2]}), headers=form)
    assert small.status_code == 200, small.text
    huge = json.dumps({"a": [0] * MAX_VALUES})
    refused = await hookline.client.post("/api/webhooks/typed", content="doc=" + huge, headers=form)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_parameters"
    assert f"at most {MAX_VALUES} values" in refused.json()["invalid"][0]["message"]


# --- Sanic's limits, as configured ----------------------------------------------------------


def test_server_limits_leave_room_for_every_webhook_option(monkeypatch: pytest.MonkeyPatch) -> None:
    config = create_app().config
    for name, value in SERVER_LIMITS.items():
        assert config[name] == value
    # A sync webhook may wait up to its trigger's largest timeout: Sanic must not answer 503 first.
    assert config.RESPONSE_TIMEOUT > CONFIG_SCHEMA["properties"]["timeout"]["maximum"] + 10
    # Webhook routes are streamed, so REQUEST_MAX_SIZE never applies to them (tested below); it
    # caps the management API far below the largest max_body_size a webhook may have.
    assert config.REQUEST_MAX_SIZE < LARGEST_MAX_BODY
    monkeypatch.setenv("SANIC_REQUEST_TIMEOUT", "3")
    assert create_app().config.REQUEST_TIMEOUT == 3  # the environment wins over our defaults


# --- through a real server ------------------------------------------------------------------

#: Small values so that the real-server tests are fast.
TIMEOUT = 1
MAX_SIZE = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    root = tmp_path_factory.mktemp("limits-server")
    folder = root / "workflows"
    folder.mkdir()
    for definition in (echo("hook"), echo("big", {"max_body_size": 4 * MAX_SIZE}), echo("small", {"max_body_size": 100})):
        (folder / f"{definition['key']}.json").write_text(json.dumps(definition))
    env = {"SANIC_REQUEST_TIMEOUT": str(TIMEOUT), "SANIC_REQUEST_MAX_SIZE": str(MAX_SIZE)}
    process = HooklineServer(f"sqlite://{root / 'limits.db'}", workflows=folder, cwd=root, env=env)
    process.start(root / "server.log")
    yield process
    process.stop()


def raw_exchange(server: HooklineServer, data: bytes, *, wait: float = 10) -> tuple[bytes, float]:
    """Send ``data``, then say nothing; everything the server sends until it closes, and when."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(data)
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started


@pytest.mark.server
def test_a_client_stalling_mid_headers_is_cut_off(server: HooklineServer) -> None:
    answer, after = raw_exchange(server, b"POST /api/webhooks/hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert after < TIMEOUT + 2  # the timer is checked every TIMEOUT/2 s
    assert httpx.get(f"{server.base_url}/api/health").status_code == 200


@pytest.mark.server
def test_a_client_stalling_mid_body_is_cut_off_and_nothing_runs(server: HooklineServer) -> None:
    before = _executions(server, "hook")
    head = b"POST /api/webhooks/hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    answer, after = raw_exchange(server, head + b'{"a": 1, ')
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
    assert after < TIMEOUT + 2
    assert _executions(server, "hook") == before


@pytest.mark.server
def test_an_oversized_management_body_is_a_json_413(server: HooklineServer) -> None:
    definition = {**echo("padded"), "description": "x" * MAX_SIZE}
    for body in (json.dumps(definition).encode(), iter([json.dumps(definition).encode()])):  # Content-Length, chunked
        response = httpx.post(f"{server.base_url}/api/workflows", content=body, headers={**server.auth, "Content-Type": "application/json"})
        assert response.status_code == 413, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"] == "payload_too_large"
    assert httpx.get(f"{server.base_url}/api/workflows/padded", headers=server.auth).status_code == 404


@pytest.mark.server
def test_the_global_body_limit_does_not_undercut_a_webhooks_own(server: HooklineServer) -> None:
    body = json.dumps({"pad": "x" * (2 * MAX_SIZE)})
    accepted = httpx.post(f"{server.base_url}/api/webhooks/big", content=body, headers={"Content-Type": "application/json"})
    assert accepted.status_code == 200, accepted.text
    refused = httpx.post(f"{server.base_url}/api/webhooks/hook", content="x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert refused.status_code == 413 and refused.json()["error"] == "payload_too_large"


@pytest.mark.server
def test_a_body_over_the_webhook_limit_is_refused_unread_and_the_connection_closed(server: HooklineServer) -> None:
    head = b"POST /api/webhooks/small HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000000\r\n\r\n"
    answer, after = raw_exchange(server, head + b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "payload_too_large"
    assert after < TIMEOUT  # closed at once: the server does not wait for (or read) 50 MB


def _executions(server: HooklineServer, key: str) -> int:
    page = httpx.get(f"{server.base_url}/api/executions", params={"workflow": key, "limit": 500}, headers=server.auth)
    return len(page.json()["items"])


def test_docs_name_the_limits() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "webhook.md").read_text()
    for figure in (f"{MAX_PARAMETERS}", f"{MAX_VALUES:,}", "too_many_parameters"):
        assert figure in text
