"""Every webhook trigger option through a real ``hookline serve`` on 127.0.0.1: NocoBase's
behaviours, Mingdao's required parameters, and what callers need beyond them. One server for the
module (SQLite), with a test-only plugin adding a ``sleep`` node for the sync timeout."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from typing import Any, Iterator

import httpx
import pytest

from conftest import EXAMPLES, install_package
from hookline.testing import HooklineServer

pytestmark = pytest.mark.server

SLEEP_PLUGIN = {
    "pyproject.toml": """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
[project]
name = "hookline-testnodes"
version = "0.0.1"
[project.entry-points.hookline]
testnodes = "hookline_testnodes"
[tool.hatch.build.targets.wheel]
packages = ["hookline_testnodes"]
""",
    "hookline_testnodes/__init__.py": """\
import asyncio
from hookline import NodeResult, NodeType, hookimpl

class SleepNode(NodeType):
    name = "sleep"
    config_schema = {"type": "object", "properties": {"seconds": {"type": "number"}}}

    async def execute(self, run):
        await asyncio.sleep(run.config.get("seconds", 1))
        return NodeResult(result={"slept": run.config.get("seconds", 1)})

@hookimpl
def register_node_types(register):
    register(SleepNode)
""",
}

ECHO = [{"key": "echo", "type": "response", "config": {"body": {
    "method": "{{ $context.method }}", "query": "{{ $context.query }}", "body": "{{ $context.body }}",
    "params": "{{ $context.params }}", "files": "{{ $context.files }}", "content_type": "{{ $context.content_type }}",
}}}]


def wf(key: str, config: dict[str, Any] | None = None, *, sync: bool = False, nodes: list[Any] | None = None) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "webhook"}
    if config is not None:
        trigger["config"] = config
    return {"key": key, "sync": sync, "trigger": trigger, "nodes": nodes or []}


WORKFLOWS = [
    wf("nb-async"),
    wf("nb-basic", {"auth": {"basic": {"username": "hook", "password": "p:ss:word"}}}),
    wf("env-basic", {"auth": {"basic": {"username": {"env": "HOOK_TEST_USER"}, "password": {"env": "HOOK_TEST_PASSWORD"}}}}),
    wf("missing-env", {"auth": {"basic": {"username": "u", "password": {"env": "HOOK_TEST_NOT_SET"}}}}),
    wf("nb-quiet", sync=True, nodes=[{"key": "check", "type": "condition",
                                      "config": {"rules": {"left": "{{ $context.body.n }}", "op": "gt", "right": 1}}}]),
    wf("methods", {"methods": ["GET", "PUT", "DELETE"]}, sync=True, nodes=ECHO),
    wf("cors", {"cors": {"origins": ["https://app.example"], "headers": ["Content-Type", "X-Token"], "max_age": 120}}, sync=True, nodes=ECHO),
    wf("cors-any", {"cors": {"origins": ["*"]}}),
    wf("ctypes", {"content_types": ["application/json", "application/*+json"]}, sync=True, nodes=ECHO),
    wf("small", {"max_body_size": 64}),
    wf("params", {
        "query": [{"path": "page", "type": "integer", "required": True, "alias": "p"}, {"path": "tags", "type": "array"}],
        "headers": [{"path": "X-Signature", "required": True, "alias": "sig"}],
        "body": [{"path": "order.id", "required": True, "alias": "order_id"}, {"path": "order.total", "type": "number"},
                 {"path": "flags.urgent", "type": "boolean"}],
    }, sync=True, nodes=[{"key": "r", "type": "response", "config": {"body": {
        "page": "{{ $context.params.p }}", "query_page": "{{ $context.query.page }}", "order": "{{ $context.params.order_id }}",
        "total": "{{ $context.params['order.total'] }}", "urgent": "{{ $context.body.flags.urgent }}",
        "sig": "{{ $context.params.sig }}", "tags": "{{ $context.params.tags }}"}}}]),
    wf("echo", sync=True, nodes=ECHO),
    wf("echo-all", {"methods": ["GET", "POST"]}, sync=True, nodes=ECHO),
    wf("files-meta", {"keep_files": False}, sync=True, nodes=ECHO),
    wf("async-id", {"response": {"status": 202, "headers": {"X-Kind": "ack"}, "body": {"execution": "{{ $execution.id }}", "status_url": "{{ $execution.status_url }}"}}}),
    wf("async-empty", {"response": {"status": 204, "body": None}}),
    wf("async-json", {"response": {"body": {"received": True, "id": "{{ $context.body.id }}"}}}),
    wf("slow", {"timeout": 0.5}, sync=True, nodes=[
        {"key": "nap", "type": "sleep", "config": {"seconds": 1.5}},
        {"key": "late", "type": "response", "config": {"body": {"late": True}}},
    ]),
    wf("slow-custom", {"timeout": 0.3, "timeout_response": {"status": 200, "body": {"pending": "{{ $execution.id }}", "url": "{{ $execution.status_url }}"}},
                       "auth": {"basic": {"username": "u", "password": "p"}}}, sync=True, nodes=[
        {"key": "nap", "type": "sleep", "config": {"seconds": 1}},
    ]),
    {**wf("off"), "enabled": False},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    root = tmp_path_factory.mktemp("webhook-server")
    site = install_package(root, "hookline-testnodes", SLEEP_PLUGIN)
    folder = root / "workflows"
    folder.mkdir()
    for number, definition in enumerate(WORKFLOWS):
        (folder / f"{number:02d}-{definition['key']}.json").write_text(json.dumps(definition))
    for example in EXAMPLES.iterdir():
        (folder / example.name).write_text(example.read_text())
    env = {"PYTHONPATH": str(site), "HOOK_TEST_USER": "envuser", "HOOK_TEST_PASSWORD": "envpass"}
    process = HooklineServer(f"sqlite://{root / 'hooks.db'}", workflows=folder, cwd=root, env=env)
    process.start(root / "server.log")
    yield process
    process.stop()


@pytest.fixture
def client(server: HooklineServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=20) as http:
        yield http


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def execution(server: HooklineServer, execution_id: str | int, *, wait: bool = True) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        found = httpx.get(f"{server.base_url}/api/executions/{execution_id}", headers=server.auth).json()
        if not wait or found["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def count_executions(server: HooklineServer, key: str) -> int:
    return len(httpx.get(f"{server.base_url}/api/executions", params={"workflow": key, "limit": 500}, headers=server.auth).json()["items"])


# --- NocoBase's documented behaviour --------------------------------------------------------


def test_post_only_by_default_and_get_is_405(client: httpx.Client) -> None:
    response = client.get("/api/webhook:trigger/nb-async")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, HEAD, OPTIONS"
    assert response.json()["error"] == "method_not_allowed"
    assert "accepts POST, not GET" in response.json()["message"]


def test_async_default_answer_is_200_ok_after_storing(client: httpx.Client, server: HooklineServer) -> None:
    response = client.post("/api/webhook:trigger/nb-async", json={"event": "paid"})
    assert (response.status_code, response.text) == (200, "ok")
    stored = execution(server, response.headers["x-hookline-execution"])
    assert stored["status"] == "succeeded" and stored["mode"] == "async"
    assert stored["context"]["body"] == {"event": "paid"}


def test_basic_auth(client: httpx.Client, server: HooklineServer) -> None:
    before = count_executions(server, "nb-basic")
    missing = client.post("/api/webhooks/nb-basic", json={})
    wrong = client.post("/api/webhooks/nb-basic", json={}, headers=basic("hook", "p:ss:wor"))
    other_scheme = client.post("/api/webhooks/nb-basic", json={}, headers={"Authorization": "Bearer p:ss:word"})
    for response in (missing, wrong, other_scheme):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Basic realm="hookline", charset="UTF-8"'
        assert response.json()["error"] == "unauthorized"
    assert count_executions(server, "nb-basic") == before
    ok = client.post("/api/webhooks/nb-basic", json={}, headers=basic("hook", "p:ss:word"))
    lower = client.post("/api/webhooks/nb-basic", json={}, headers={"Authorization": basic("hook", "p:ss:word")["Authorization"].replace("Basic", "basic")})
    in_url = httpx.post(f"http://hook:p%3Ass%3Aword@127.0.0.1:{server.port}/api/webhooks/nb-basic", json={})
    assert [r.status_code for r in (ok, lower, in_url)] == [200, 200, 200]


def test_basic_auth_from_environment_variables(client: httpx.Client) -> None:
    assert client.post("/api/webhooks/env-basic", json={}, headers=basic("envuser", "envpass")).status_code == 200
    assert client.post("/api/webhooks/env-basic", json={}, headers=basic("envuser", "nope")).status_code == 401
    misconfigured = client.post("/api/webhooks/missing-env", json={}, headers=basic("u", "x"))
    assert misconfigured.status_code == 503
    assert misconfigured.json()["error"] == "misconfigured"
    assert "HOOK_TEST_NOT_SET" not in misconfigured.text  # the server log names it, not the caller


def test_sync_condition_chooses_between_two_responses(client: httpx.Client) -> None:
    high = client.post("/api/webhooks/order-paid", json={"id": "A-1", "amount": 150})
    low = client.post("/api/webhooks/order-paid", json={"id": "A-2", "amount": 5})
    assert (high.json()["tier"], low.json()["tier"]) == ("high", "low")


def test_sync_without_a_response_node_is_200_or_500(client: httpx.Client) -> None:
    ok = client.post("/api/webhooks/nb-quiet", json={"n": 5})
    failed = client.post("/api/webhooks/nb-quiet", json={"n": "five"})
    assert ok.status_code == 200 and ok.json()["status"] == "succeeded"
    assert failed.status_code == 500 and failed.json()["error"] == "workflow_failed"
    assert "Traceback" not in failed.text


def test_unknown_and_disabled_keys_are_404_with_a_hint(client: httpx.Client) -> None:
    unknown = client.post("/api/webhooks/nope", json={})
    disabled = client.post("/api/webhooks/off", json={})
    assert unknown.status_code == 404 and "no webhook workflow with key 'nope'" in unknown.json()["message"]
    assert disabled.status_code == 404 and disabled.json()["error"] == "workflow_disabled"


# --- methods, HEAD, OPTIONS, CORS ---------------------------------------------------------


def test_configured_methods(client: httpx.Client) -> None:
    assert client.get("/api/webhooks/methods?x=1").json()["query"] == {"x": "1"}
    assert client.put("/api/webhooks/methods", json={"a": 1}).json()["body"] == {"a": 1}
    assert client.delete("/api/webhooks/methods").json()["method"] == "DELETE"
    post = client.post("/api/webhooks/methods", json={})
    assert post.status_code == 405 and post.headers["allow"] == "GET, PUT, DELETE, HEAD, OPTIONS"


def test_head_probes_and_options_lists_methods_without_running(client: httpx.Client, server: HooklineServer) -> None:
    before = count_executions(server, "methods")
    head = client.head("/api/webhooks/methods")
    options = client.options("/api/webhooks/methods")
    assert (head.status_code, head.content, head.headers["allow"]) == (200, b"", "GET, PUT, DELETE, HEAD, OPTIONS")
    assert (options.status_code, options.headers["allow"]) == (204, "GET, PUT, DELETE, HEAD, OPTIONS")
    assert "content-type" not in head.headers
    assert client.head("/api/webhooks/nope").status_code == 404
    assert count_executions(server, "methods") == before


def test_cors_preflight_and_response_headers(client: httpx.Client) -> None:
    preflight = client.options("/api/webhooks/cors", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "Content-Type, X-Token"
    assert preflight.headers["access-control-max-age"] == "120"
    assert preflight.headers["vary"] == "Origin"

    denied = client.options("/api/webhooks/cors", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    wrong_method = client.options("/api/webhooks/cors", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert denied.status_code == 403 and "access-control-allow-origin" not in denied.headers
    assert wrong_method.status_code == 403

    actual = client.post("/api/webhooks/cors", json={}, headers={"Origin": "https://app.example"})
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    assert actual.headers["access-control-expose-headers"] == "X-Hookline-Execution"
    foreign = client.post("/api/webhooks/cors", json={}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers
    anyone = client.post("/api/webhooks/cors-any", json={}, headers={"Origin": "https://x.example"})
    assert anyone.headers["access-control-allow-origin"] == "*"


# --- bodies: content types, size, parsing --------------------------------------------------


def test_content_type_allow_list(client: httpx.Client) -> None:
    assert client.post("/api/webhooks/ctypes", json={"a": 1}).status_code == 200
    vnd = client.post("/api/webhooks/ctypes", content=b'{"a": 2}', headers={"Content-Type": "application/vnd.api+json"})
    assert vnd.json()["body"] == {"a": 2}
    refused = client.post("/api/webhooks/ctypes", content=b"a=1", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415
    assert refused.json()["error"] == "unsupported_media_type"
    assert refused.json()["accepted"] == ["application/json", "application/*+json"]
    assert client.post("/api/webhooks/ctypes").status_code == 200  # no body: nothing to refuse


def test_body_size_limit_is_the_triggers_own(client: httpx.Client, server: HooklineServer) -> None:
    assert client.post("/api/webhooks/small", content=b"x" * 64, headers={"Content-Type": "text/plain"}).status_code == 200
    too_big = client.post("/api/webhooks/small", content=b"x" * 65, headers={"Content-Type": "text/plain"})
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "payload_too_large" and too_big.json()["limit"] == 64

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 20

    chunked = httpx.post(f"{server.base_url}/api/webhooks/small", content=chunks(), headers={"Content-Type": "text/plain"})
    assert chunked.status_code == 413
    # a large body elsewhere is fine: the limit is per trigger (default 1 MiB)
    assert client.post("/api/webhooks/nb-async", content=b"z" * 500_000, headers={"Content-Type": "text/plain"}).status_code == 200
    over_default = client.post("/api/webhooks/nb-async", content=b"z" * (1024 * 1024 + 1), headers={"Content-Type": "text/plain"})
    assert over_default.status_code == 413


def test_body_larger_than_declared_is_refused_before_reading(server: HooklineServer) -> None:
    """Content-Length above the limit: 413 at once, without waiting for the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /api/webhooks/small HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n")
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413")


def test_nested_query_and_form(client: httpx.Client) -> None:
    answer = client.get("/api/webhooks/echo-all?query[0].a=1&query[1].a=2&user[name]=ada&tag=x&tag=y&flat=1").json()
    assert answer["query"] == {"query": [{"a": "1"}, {"a": "2"}], "user": {"name": "ada"}, "tag": ["x", "y"], "flat": "1"}
    form = client.post("/api/webhooks/echo", content=b"items[0][sku]=A&items[1][sku]=B&note=hi+there",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    assert form["body"] == {"items": [{"sku": "A"}, {"sku": "B"}], "note": "hi there"}
    contradiction = client.get("/api/webhooks/echo-all?a=1&a[b]=2")
    assert contradiction.status_code == 400 and "both as a value and as a container" in contradiction.json()["message"]


def test_multipart_fields_and_files(client: httpx.Client, server: HooklineServer) -> None:
    answer = client.post(
        "/api/webhooks/echo",
        data={"name": "report", "meta[pages]": "3"},
        files={"doc": ("r.pdf", b"%PDF-1.4 \x00\xff", "application/pdf"), "note": ("n.txt", b"hello", "text/plain")},
    ).json()
    assert answer["content_type"] == "multipart/form-data"
    assert answer["body"] == {"name": "report", "meta": {"pages": "3"}}
    by_field = {f["field"]: f for f in answer["files"]}
    assert by_field["doc"]["name"] == "r.pdf" and by_field["doc"]["type"] == "application/pdf"
    assert by_field["doc"]["size"] == 11
    assert base64.b64decode(by_field["doc"]["content_base64"]) == b"%PDF-1.4 \x00\xff"
    meta_only = client.post("/api/webhooks/files-meta", files={"doc": ("r.pdf", b"abc", "application/pdf")})
    assert meta_only.json()["files"] == [{"field": "doc", "name": "r.pdf", "type": "application/pdf", "size": 3}]
    stored = execution(server, meta_only.headers["x-hookline-execution"])["context"]
    assert stored["raw_body"] is None and "raw_body_base64" not in stored  # no copy of the file either
    broken = client.post("/api/webhooks/echo", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data"})
    assert broken.status_code == 400 and "boundary" in broken.json()["message"]


@pytest.mark.parametrize(
    "content, content_type, fragment",
    [
        (b'{"a": ', "application/json", "not valid JSON"),
        (b"\xff", "application/json", "not valid UTF-8"),
        (b'{"a": "\\u0000"}', "application/json", "cannot be stored"),
        (b"a=%ff", "application/x-www-form-urlencoded", "not valid UTF-8"),
        (b"a=%00", "application/x-www-form-urlencoded", "cannot be stored"),
    ],
)
def test_bodies_that_do_not_parse_are_400s(client: httpx.Client, content: bytes, content_type: str, fragment: str) -> None:
    response = client.post("/api/webhooks/echo", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_body" and fragment in response.json()["message"]


def test_raw_body_is_the_exact_text(client: httpx.Client, server: HooklineServer) -> None:
    text = '<order id="7">\n  <total>9.50</total>\n</order>'
    response = client.post("/api/webhooks/nb-async", content=text.encode(), headers={"Content-Type": "application/xml"})
    stored = execution(server, response.headers["x-hookline-execution"])
    assert stored["context"]["raw_body"] == text and stored["context"]["body"] == text


# --- declared parameters (Mingdao) ---------------------------------------------------------


def test_required_parameters_missing(client: httpx.Client, server: HooklineServer) -> None:
    before = count_executions(server, "params")
    response = client.post("/api/webhooks/params", json={"order": {}})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Missing required parameter(s)"
    assert body["missing"] == [
        {"in": "headers", "path": "X-Signature", "alias": "sig"},
        {"in": "query", "path": "page", "alias": "p"},
        {"in": "body", "path": "order.id", "alias": "order_id"},
    ]
    assert count_executions(server, "params") == before


def test_parameters_typed_coerced_and_aliased(client: httpx.Client) -> None:
    response = client.post(
        "/api/webhooks/params?page=2&tags=a",
        json={"order": {"id": "A-9", "total": 12.5}, "flags": {"urgent": True}},
        headers={"X-Signature": "s1"},
    )
    assert response.json() == {"page": 2, "query_page": 2, "order": "A-9", "total": 12.5, "urgent": True, "sig": "s1", "tags": ["a"]}


def test_invalid_parameter_types_are_listed(client: httpx.Client) -> None:
    response = client.post(
        "/api/webhooks/params?page=two",
        json={"order": {"id": "A-9", "total": "lots"}, "flags": {"urgent": "yes"}},
        headers={"X-Signature": "s1"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_parameters" and body["message"] == "Invalid parameter(s)"
    assert [(i["in"], i["path"], i["expected"]) for i in body["invalid"]] == [
        ("query", "page", "integer"), ("body", "order.total", "number"), ("body", "flags.urgent", "boolean")]


# --- answers -------------------------------------------------------------------------------


def test_async_answer_with_the_execution_id(client: httpx.Client, server: HooklineServer) -> None:
    response = client.post("/api/webhooks/async-id", json={})
    assert response.status_code == 202 and response.headers["x-kind"] == "ack"
    body = response.json()
    assert body["execution"] == int(response.headers["x-hookline-execution"])
    status = httpx.get(body["status_url"]).json()
    assert status["execution"] == body["execution"] and status["status"] in ("queued", "running", "succeeded")


def test_async_empty_and_templated_answers(client: httpx.Client) -> None:
    empty = client.post("/api/webhooks/async-empty", json={})
    assert (empty.status_code, empty.content) == (204, b"")
    templated = client.post("/api/webhooks/async-json", json={"id": "E-1"})
    assert templated.json() == {"received": True, "id": "E-1"}


def test_a_slow_sync_workflow_answers_202_then_finishes(client: httpx.Client, server: HooklineServer) -> None:
    started = time.monotonic()
    response = client.post("/api/webhooks/slow", json={})
    waited = time.monotonic() - started
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "running" and body["execution"] == int(response.headers["x-hookline-execution"])
    assert waited < 1.4  # answered at the trigger's timeout, not at the end of the workflow
    deadline = time.monotonic() + 10
    while (status := httpx.get(body["status_url"]).json())["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status["status"] == "succeeded"
    assert status["reply"]["body"] == {"late": True}


def test_custom_timeout_answer_and_a_status_url_behind_the_same_auth(client: httpx.Client, server: HooklineServer) -> None:
    response = client.post("/api/webhooks/slow-custom", json={}, headers=basic("u", "p"))
    assert response.status_code == 200
    execution_id, url = response.json()["pending"], response.json()["url"]
    assert url.startswith(f"{server.base_url}/api/webhooks/slow-custom/executions/{execution_id}?token=")
    assert client.get(url).status_code == 401
    assert client.get(url, headers=basic("u", "p")).status_code == 200
    # without the token, or with another's, nothing is shown, whether the execution exists or not
    for wrong in (f"/api/webhooks/slow-custom/executions/{execution_id}", url.replace("?token=", "?token=x"),
                  url.replace(f"/{execution_id}?", f"/{execution_id - 1}?")):
        refused = client.get(wrong, headers=basic("u", "p"))
        assert (refused.status_code, refused.json()["error"]) == (403, "invalid_token")
    # another workflow's execution is not reachable through this URL
    assert client.get(url.replace("slow-custom", "nb-async")).status_code == 403
    assert execution(server, execution_id)["status"] == "succeeded"


def test_finding_a_workflow_by_its_webhook_id(server: HooklineServer) -> None:
    found = httpx.get(f"{server.base_url}/api/workflows", params={"q": f"{server.base_url}/api/webhooks/params"},
                      headers=server.auth).json()["items"]
    assert [w["key"] for w in found] == ["params"]


def test_no_caller_input_gave_a_500(server: HooklineServer) -> None:
    """The server log has no unexpected error from anything these tests sent."""
    assert "unexpected error" not in server.log()
    assert "Traceback" not in server.log() or os.environ.get("HOOKLINE_ALLOW_TRACEBACKS")
