"""Sample parsing and sample capture of the webhook trigger: the parse functions (NocoBase's
documented paths, key-value pairs, captured requests), the management API in-process on SQLite
and PostgreSQL, capture through a real ``hookline serve``, and the ``hookline webhooks`` CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping

import httpx
import pytest
from click.testing import CliRunner, Result

from hookline import TriggerType, hookimpl
from hookline.cli.main import build_cli
from hookline.plugins import make_plugin_manager
from hookline.testing import TEST_TOKEN, HooklineServer, HooklineTestApp
from hookline_webhook.paths import get_path, parse_path
from hookline_webhook.samples import (
    MAX_PARAMETERS,
    SampleError,
    parameters_from_context,
    parameters_from_json,
    parameters_from_pairs,
    parameters_from_url,
    parse_sample,
)


def paths(found: Mapping[str, list[dict[str, Any]]], part: str) -> list[str]:
    return [item["path"] for item in found[part]]


# --- parsing samples ------------------------------------------------------------------------


def test_nocobase_json_sample() -> None:
    assert parameters_from_json('{"a": 1, "b": {"c": 2}}') == {
        "body": [
            {"path": "a", "type": "integer", "required": False},
            {"path": "b", "type": "object", "required": False},
            {"path": "b.c", "type": "integer", "required": False},
        ]
    }


def test_nocobase_url_sample() -> None:
    found = parameters_from_url("http://localhost:13000/api/webhook:trigger/1hfmkioou0d?query=1")
    assert found == {"query": [{"path": "query", "type": "string", "required": False}]}


@pytest.mark.parametrize("sample", ["query[0].a=1", "?query[0].a=1", "/api/webhooks/x?query[0].a=1#top"])
def test_nocobase_nested_query_sample(sample: str) -> None:
    found = parameters_from_url(sample)
    assert paths(found, "query") == ["query", "query[0]", "query[0].a"]
    assert [item["type"] for item in found["query"]] == ["array", "object", "string"]


def test_every_node_in_document_order_with_types() -> None:
    sample = {"id": 7, "paid": True, "total": 9.5, "note": None, "items": [{"sku": "a"}, {"sku": "b", "tags": []}], "z": "x"}
    found = parameters_from_json(sample)["body"]
    assert [(item["path"], item["type"]) for item in found] == [
        ("id", "integer"), ("paid", "boolean"), ("total", "number"), ("note", "string"),
        ("items", "array"), ("items[0]", "object"), ("items[0].sku", "string"),
        ("items[1]", "object"), ("items[1].sku", "string"), ("items[1].tags", "array"), ("z", "string"),
    ]
    assert all(set(item) == {"path", "type", "required"} and item["required"] is False for item in found)


def test_generated_paths_read_back_the_values() -> None:
    sample = {"a.b": 1, "x y": {"0": "zero", "list": [[1, 2], {"k": None}]}, "": 3, "[odd]": 4, "ok]": 5}
    for item in parameters_from_json(sample)["body"]:
        # every generated path reaches a value of the sample (names paths cannot hold are left out)
        assert get_path(sample, parse_path(item["path"]), default=KeyError) is not KeyError, item
    listed = paths(parameters_from_json(sample), "body")
    assert "[a.b]" in listed and "x y.list[1].k" in listed
    assert not any("ok" in path or "odd" in path for path in listed)


def test_key_value_pairs_as_text_lines_dict_and_list() -> None:
    text = parameters_from_pairs("order.id = A-1\n\norder.items[0].sku=x\ntag[]=a\ntag[]=b\n")
    assert [(item["path"], item["type"]) for item in text["body"]] == [
        ("order", "object"), ("order.id", "string"), ("order.items", "array"), ("order.items[0]", "object"),
        ("order.items[0].sku", "string"), ("tag", "array"), ("tag[0]", "string"), ("tag[1]", "string"),
    ]
    typed = parameters_from_pairs({"amount": 12, "paid": False, "meta[source]": "web"})
    assert [(item["path"], item["type"]) for item in typed["body"]] == [
        ("amount", "integer"), ("paid", "boolean"), ("meta", "object"), ("meta.source", "string")
    ]
    assert parameters_from_pairs([["page", "2"], ["page", "3"]], into="query") == {
        "query": [
            {"path": "page", "type": "array", "required": False},
            {"path": "page[0]", "type": "string", "required": False},
            {"path": "page[1]", "type": "string", "required": False},
        ]
    }
    headers = parameters_from_pairs({"X-Request-Id": "r-1", "X-Retries": 3}, into="headers")
    assert headers == {"headers": [
        {"path": "x-request-id", "type": "string", "required": False},
        {"path": "x-retries", "type": "string", "required": False},
    ]}


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ({"json": ""}, "the JSON sample is empty"),
        ({"json": "   "}, "the JSON sample is empty"),
        ({"json": "{}"}, "has no parameters"),
        ({"json": "[]"}, "has no parameters"),
        ({"json": '{"a": '}, "not valid JSON"),
        ({"json": '{"a": NaN}'}, "NaN is not valid JSON"),
        ({"json": "42"}, "must be an object or an array, not a number"),
        ({"json": "[" * 100_000}, "nested too deeply"),
        ({"url": ""}, "the sample is empty"),
        ({"url": "https://example.com/hook"}, "has no query string"),
        ({"query": "?"}, "the sample is empty"),
        ({"query": "a=1&a[b]=2"}, "'a[b]' is used both as a value and as a container"),
        ({"query": "a[0]=1&a[x]=2"}, "mixes list and object syntax"),
        ({"pairs": "a=1\na.b=2"}, "'a.b' is used both as a value and as a container"),
        ({"pairs": "no equals sign"}, "line 1 ('no equals sign') is not key=value"),
        ({"pairs": ""}, "the sample is empty"),
        ({"pairs": {"": 1}}, "pair 1 has an empty key"),
        ({"pairs": [["a"]]}, "pair 1 must be [key, value]"),
        ({"pairs": {"Bad Name": "x"}, "into": "headers"}, "'bad name' is not a valid header name"),
        ({"pairs": {"a": 1}, "into": "cookies"}, "'into' must be one of headers, query, body"),
        ({"json": {"a": 1}, "into": "query"}, "'into' goes with pairs only"),
        ({}, "give exactly one sample"),
        ({"json": {"a": 1}, "pairs": {"a": 1}}, "give exactly one sample"),
        ({"jsn": {"a": 1}}, "unknown field 'jsn'"),
    ],
)
def test_bad_samples_are_refused_with_a_reason(request_: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SampleError) as refused:
        parse_sample(request_)
    assert refused.value.status == 400 and refused.value.code == "invalid_sample"
    assert fragment in refused.value.message


def test_huge_samples_are_refused_but_captures_are_cut() -> None:
    big = {"items": list(range(MAX_PARAMETERS + 5))}
    with pytest.raises(SampleError, match=f"more than {MAX_PARAMETERS} body parameters"):
        parse_sample({"json": big})
    captured = parameters_from_context({"headers": {}, "query": {}, "body": big})
    assert len(captured["body"]) == MAX_PARAMETERS


def test_parse_sample_gives_examples_beside_the_parameters() -> None:
    assert parse_sample({"json": {"a": 1, "b": {"c": 2}, "e": []}}) == {
        "parameters": {"body": [
            {"path": "a", "type": "integer", "required": False},
            {"path": "b", "type": "object", "required": False},
            {"path": "b.c", "type": "integer", "required": False},
            {"path": "e", "type": "array", "required": False},
        ]},
        "examples": {"body": {"a": 1, "b.c": 2, "e": []}},
    }


def test_parameters_of_a_captured_request() -> None:
    context = {
        "method": "POST",
        "headers": {"content-type": "application/json", "x-request-id": "r-1"},
        "query": {"id": "9", "page": "2"},
        "body": {"id": 9, "order": {"total": 12.5}},
        "raw_body": '{"id": 9, "order": {"total": 12.5}}',
    }
    found = parameters_from_context(context)
    assert found["headers"] == [
        {"path": "content-type", "type": "string", "required": False},
        {"path": "x-request-id", "type": "string", "required": False},
    ]
    # a name must be unique in the whole config: the body keeps 'id', the query's gets an alias
    assert found["query"] == [
        {"path": "id", "type": "string", "required": False, "alias": "query_id"},
        {"path": "page", "type": "string", "required": False},
    ]
    assert paths(found, "body") == ["id", "order", "order.total"]
    text = parameters_from_context({"headers": {}, "query": {}, "body": "hello", "raw_body": "hello"})
    assert text == {"headers": [], "query": [], "body": []}


# --- the management API (in-process, SQLite and PostgreSQL) ---------------------------------


class ScheduleTrigger(TriggerType):
    name = "schedule-test"
    config_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}


class ScheduleTriggers:
    @hookimpl
    def register_trigger_types(self, register: Callable[[type[TriggerType]], None]) -> None:
        register(ScheduleTrigger)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [ScheduleTriggers()]


def webhook_workflow(key: str, config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"key": key, "trigger": {"type": "webhook", **({"config": config} if config else {})}, "nodes": [], **extra}


async def test_parse_endpoint(hookline: HooklineTestApp) -> None:
    body = await hookline.api("POST", "/api/webhook-samples/parse", json={"json": {"a": 1, "b": {"c": 2}}})
    assert body.status_code == 200
    assert paths(body.json()["parameters"], "body") == ["a", "b", "b.c"]
    assert body.json()["examples"] == {"body": {"a": 1, "b.c": 2}}
    url = await hookline.api(
        "POST", "/api/webhook-samples/parse", json={"url": "http://localhost:13000/api/webhook:trigger/1hfmkioou0d?query=1"}
    )
    assert url.json()["parameters"] == {"query": [{"path": "query", "type": "string", "required": False}]}
    query = await hookline.api("POST", "/api/webhook-samples/parse", json={"query": "query[0].a=1"})
    assert paths(query.json()["parameters"], "query") == ["query", "query[0]", "query[0].a"]
    pairs = await hookline.api("POST", "/api/webhook-samples/parse", json={"pairs": "a=1\nb.c=2"})
    assert paths(pairs.json()["parameters"], "body") == ["a", "b", "b.c"]
    headers = await hookline.api("POST", "/api/webhook-samples/parse", json={"pairs": {"X-Token": "t"}, "into": "headers"})
    assert headers.json()["parameters"] == {"headers": [{"path": "x-token", "type": "string", "required": False}]}


@pytest.mark.parametrize(
    ("content", "code", "fragment"),
    [
        (b"", "bad_request", "send a JSON object"),
        (b"{", "invalid_body", "not valid JSON"),
        (b"[1]", "bad_request", "must be a JSON object"),
        (b'{"json": "{\\"a\\":"}', "invalid_sample", "not valid JSON"),
        (b'{"query": "a=1&a[b]=2"}', "invalid_sample", "used both as a value and as a container"),
        (b'{"json": {}}', "invalid_sample", "has no parameters"),
        (b'{"url": "x", "json": {"a": 1}}', "invalid_sample", "exactly one sample"),
    ],
)
async def test_parse_endpoint_refuses_bad_input(hookline: HooklineTestApp, content: bytes, code: str, fragment: str) -> None:
    response = await hookline.api(
        "POST", "/api/webhook-samples/parse", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == code and fragment in response.json()["message"]


async def test_parsed_parameters_can_be_saved_as_they_are(hookline: HooklineTestApp) -> None:
    query = (await hookline.api("POST", "/api/webhook-samples/parse", json={"query": "page=2&items[0].id=7"})).json()
    body = (await hookline.api("POST", "/api/webhook-samples/parse", json={"json": {"order": {"id": 1, "tags": ["a"]}}})).json()
    config = {**query["parameters"], **body["parameters"]}
    saved = await hookline.api("POST", "/api/workflows", json=webhook_workflow("saved", config))
    assert saved.status_code == 201, saved.json()


async def test_capture_endpoints_need_the_token(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook_workflow("hook"))
    for method, path in [("POST", "/api/webhook-samples/parse"), ("POST", "/api/workflows/hook/webhook-capture"),
                         ("GET", "/api/workflows/hook/webhook-capture"), ("DELETE", "/api/workflows/hook/webhook-capture")]:
        response = await hookline.client.request(method, path, json={"json": {"a": 1}})
        assert response.status_code == 401, (method, path)


async def test_arm_read_and_cancel_a_capture(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook_workflow("hook"))
    none_yet = await hookline.api("GET", "/api/workflows/hook/webhook-capture")
    assert none_yet.status_code == 404 and "POST /api/workflows/hook/webhook-capture" in none_yet.json()["message"]

    armed = await hookline.api("POST", "/api/workflows/hook/webhook-capture")
    assert armed.status_code == 201
    capture = armed.json()
    assert capture["status"] == "armed" and capture["workflow"] == "hook"
    assert capture["captured_at"] is None and capture["request"] is None and capture["parameters"] is None
    window = _seconds_between(capture["armed_at"], capture["expires_at"])
    assert window == 180
    assert (await hookline.api("GET", "/api/workflows/hook/webhook-capture")).json() == capture

    again = (await hookline.api("POST", "/api/workflows/hook/webhook-capture", json={"window": 30})).json()
    assert again["id"] != capture["id"] and _seconds_between(again["armed_at"], again["expires_at"]) == 30

    cancelled = await hookline.api("DELETE", "/api/workflows/hook/webhook-capture")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    nothing = await hookline.api("DELETE", "/api/workflows/hook/webhook-capture")
    assert nothing.status_code == 404 and "no armed capture" in nothing.json()["message"]
    # the URL runs the workflow again
    assert (await hookline.webhook("hook", json={"a": 1})).text == "ok"


@pytest.mark.parametrize("window", [0, 3601, "60", True, None])
async def test_a_bad_window_is_a_400(hookline: HooklineTestApp, window: Any) -> None:
    await hookline.apply(webhook_workflow("hook"))
    response = await hookline.api("POST", "/api/workflows/hook/webhook-capture", json={"window": window})
    assert response.status_code == 400 and "window must be a number of seconds from 1 to 3600" in response.json()["message"]


async def test_capture_of_unknown_other_and_disabled_workflows(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "nightly", "trigger": {"type": "schedule-test"}, "nodes": []})
    await hookline.apply(webhook_workflow("off", enabled=False))
    for method in ("POST", "GET", "DELETE"):
        unknown = await hookline.api(method, "/api/workflows/nope/webhook-capture")
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
        other = await hookline.api(method, "/api/workflows/nightly/webhook-capture")
        assert other.status_code == 409 and other.json()["error"] == "not_a_webhook_workflow"
        assert "triggered by 'schedule-test'" in other.json()["message"]
    not_a_webhook = await hookline.webhook("nightly", json={})
    assert not_a_webhook.status_code == 404
    assert "is triggered by 'schedule-test', not by a webhook" in not_a_webhook.json()["message"]
    # a workflow being set up can capture its sample before it is enabled; it still never runs
    disabled = await hookline.api("POST", "/api/workflows/off/webhook-capture")
    assert disabled.status_code == 201
    captured = await hookline.webhook("off", json={"x": 1})
    assert captured.json()["captured"] is True
    assert (await hookline.webhook("off", json={"x": 1})).status_code == 404
    assert (await hookline.api("GET", "/api/executions?workflow=off")).json()["items"] == []


async def test_a_captured_request_is_stored_not_run(hookline: HooklineTestApp) -> None:
    """In-process, on both databases: the capture's request and parameters are stored as JSON."""
    await hookline.apply(webhook_workflow("hook"))
    capture_id = (await hookline.api("POST", "/api/workflows/hook/webhook-capture")).json()["id"]
    answer = await hookline.webhook("hook", json={"order": {"id": "A-1", "total": 12.5}}, params={"src": "shop"})
    assert answer.status_code == 200
    assert answer.json() == {"captured": True, "capture": capture_id, "message": answer.json()["message"]}
    capture = (await hookline.api("GET", "/api/workflows/hook/webhook-capture")).json()
    assert capture["status"] == "captured" and capture["captured_at"] is not None
    assert capture["request"]["body"] == {"order": {"id": "A-1", "total": 12.5}}
    assert capture["request"]["query"] == {"src": "shop"}
    assert paths(capture["parameters"], "body") == ["order", "order.id", "order.total"]
    assert capture["parameters"]["query"] == [{"path": "src", "type": "string", "required": False}]
    assert (await hookline.api("GET", "/api/executions?workflow=hook")).json()["items"] == []
    # one request per capture: the next one runs
    assert (await hookline.webhook("hook", json={})).text == "ok"
    assert len((await hookline.api("GET", "/api/executions?workflow=hook")).json()["items"]) == 1


async def test_concurrent_requests_take_a_capture_once(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook_workflow("hook"))
    capture_id = (await hookline.api("POST", "/api/workflows/hook/webhook-capture")).json()["id"]
    answers = await asyncio.gather(*(hookline.webhook("hook", json={"n": n}) for n in range(6)))
    captured = [a.json() for a in answers if a.headers["content-type"].startswith("application/json")]
    assert [c["capture"] for c in captured] == [capture_id]
    assert sorted(a.text for a in answers if a.text == "ok") == ["ok"] * 5
    listed = (await hookline.api("GET", "/api/executions?workflow=hook")).json()["items"]
    ran = [(await hookline.wait_for_execution(e["id"]))["context"]["body"]["n"] for e in listed]
    stored = (await hookline.api("GET", "/api/workflows/hook/webhook-capture")).json()["request"]["body"]["n"]
    assert sorted([*ran, stored]) == list(range(6))


async def test_the_routes_are_in_the_openapi_document(hookline: HooklineTestApp) -> None:
    document = (await hookline.client.get("/openapi.json")).json()
    parse = document["paths"]["/api/webhook-samples/parse"]["post"]
    assert parse["summary"].startswith("Parse a sample")
    capture = document["paths"]["/api/workflows/{key}/webhook-capture"]
    assert set(capture) >= {"post", "get", "delete"}
    assert capture["post"]["summary"].startswith("Arm the workflow's URL")


def test_the_plugin_registers_its_tables() -> None:
    from hookline.host import Host
    from hookline.settings import Settings
    from hookline_webhook.tortoise_config import WEBHOOK_APP

    assert WEBHOOK_APP in Host(Settings()).model_apps


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


# --- capture through a real server (SQLite) -------------------------------------------------


@pytest.fixture(scope="module")
def capture_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    root = tmp_path_factory.mktemp("capture-server")
    server = HooklineServer(f"sqlite://{root / 'capture.db'}", cwd=root).start(root / "server.log")
    with httpx.Client(base_url=server.base_url, headers=server.auth) as api:
        for definition in [
            webhook_workflow("get-hook", {"methods": ["GET", "POST"]}),
            webhook_workflow("post-only"),
            webhook_workflow("post-hook", sync=True, nodes=[
                {"key": "reply", "type": "response", "config": {"body": {"got": "{{ $context.body }}"}}}
            ]),
            webhook_workflow("short-hook"),
            webhook_workflow("cli-hook", {"methods": ["GET", "POST"]}),
        ]:
            assert api.post("/api/workflows", json=definition).status_code == 201
    yield server
    assert server.stop() == 0, server.log()


def server_api(server: HooklineServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=server.auth, timeout=20)



@pytest.mark.server
def test_a_get_request_is_captured_with_its_parameters(capture_server: HooklineServer) -> None:
    with server_api(capture_server) as api:
        armed = api.post("/api/workflows/get-hook/webhook-capture", json={"window": 60})
        assert armed.status_code == 201
        answer = httpx.get(f"{capture_server.base_url}/api/webhook:trigger/get-hook?order[id]=A-7&tags=a&tags=b")
        assert answer.status_code == 200
        assert answer.json()["captured"] is True and answer.json()["capture"] == armed.json()["id"]
        assert "x-hookline-execution" not in answer.headers

        capture = api.get("/api/workflows/get-hook/webhook-capture").json()
        assert capture["status"] == "captured"
        assert capture["request"]["method"] == "GET"
        assert capture["request"]["query"] == {"order": {"id": "A-7"}, "tags": ["a", "b"]}
        assert capture["parameters"]["query"] == [
            {"path": "order", "type": "object", "required": False},
            {"path": "order.id", "type": "string", "required": False},
            {"path": "tags", "type": "array", "required": False},
            {"path": "tags[0]", "type": "string", "required": False},
            {"path": "tags[1]", "type": "string", "required": False},
        ]
        assert "user-agent" in paths(capture["parameters"], "headers")
        assert capture["parameters"]["body"] == []
        assert api.get("/api/executions", params={"workflow": "get-hook"}).json()["items"] == []

        second = httpx.get(f"{capture_server.base_url}/api/webhooks/get-hook?order[id]=A-8")
        assert (second.status_code, second.text) == (200, "ok")
        assert "x-hookline-execution" in second.headers
        assert len(api.get("/api/executions", params={"workflow": "get-hook"}).json()["items"]) == 1
        assert api.get("/api/workflows/get-hook/webhook-capture").json()["status"] == "captured"


@pytest.mark.server
def test_a_post_json_request_is_captured(capture_server: HooklineServer) -> None:
    with server_api(capture_server) as api:
        assert api.post("/api/workflows/post-hook/webhook-capture").status_code == 201
        answer = httpx.post(f"{capture_server.base_url}/api/webhooks/post-hook", json={"a": 1, "b": {"c": 2}})
        assert answer.status_code == 200 and answer.json()["captured"] is True
        capture = api.get("/api/workflows/post-hook/webhook-capture").json()
        assert capture["request"]["method"] == "POST" and capture["request"]["body"] == {"a": 1, "b": {"c": 2}}
        assert capture["parameters"]["body"] == [
            {"path": "a", "type": "integer", "required": False},
            {"path": "b", "type": "object", "required": False},
            {"path": "b.c", "type": "integer", "required": False},
        ]
        assert api.get("/api/executions", params={"workflow": "post-hook"}).json()["items"] == []
        ran = httpx.post(f"{capture_server.base_url}/api/webhooks/post-hook", json={"a": 2})
        assert ran.json() == {"got": {"a": 2}}


@pytest.mark.server
def test_an_armed_capture_expires_after_its_window(capture_server: HooklineServer) -> None:
    with server_api(capture_server) as api:
        armed = api.post("/api/workflows/short-hook/webhook-capture", json={"window": 1})
        assert armed.status_code == 201
        time.sleep(1.2)
        assert api.get("/api/workflows/short-hook/webhook-capture").json()["status"] == "expired"
        late = httpx.post(f"{capture_server.base_url}/api/webhooks/short-hook", json={"late": True})
        assert (late.status_code, late.text) == (200, "ok")
        assert "x-hookline-execution" in late.headers
        capture = api.get("/api/workflows/short-hook/webhook-capture").json()
        assert capture["status"] == "expired" and capture["request"] is None
        cancel = api.delete("/api/workflows/short-hook/webhook-capture")
        assert cancel.status_code == 404


@pytest.mark.server
def test_the_cli_arms_another_process_and_waits_for_the_request(capture_server: HooklineServer, tmp_path: Path) -> None:
    """``hookline webhooks capture`` arms from a process of its own: the server sees it within a
    second, and the command prints the capture once the request came."""
    command = [sys.executable, "-m", "hookline", "webhooks", "capture", "cli-hook", "--window", "30", "--timeout", "20",
               "--db", capture_server.db_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                          env={**capture_server.env}) as waiting:
        assert waiting.stderr is not None
        line = waiting.stderr.readline()
        assert "waiting for a GET or POST request to" in line and "/api/webhooks/cli-hook" in line
        time.sleep(1.1)  # the server reads armed captures at most once a second
        answer = httpx.get(f"{capture_server.base_url}/api/webhooks/cli-hook?x=1")
        assert answer.json()["captured"] is True
        stdout, stderr = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, stderr
    printed = json.loads(stdout)
    assert printed["status"] == "captured" and printed["request"]["query"] == {"x": "1"}
    assert printed["parameters"]["query"] == [{"path": "x", "type": "string", "required": False}]


# --- the CLI (in-process) -------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOOKLINE_API_TOKEN", TEST_TOKEN)
    monkeypatch.setenv("HOOKLINE_DB_URL", f"sqlite://{tmp_path / 'cli.db'}")
    pm = make_plugin_manager()
    group = build_cli(pm)

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(group, list(args), obj={"pm": pm}, input=input, catch_exceptions=False)

    assert invoke("migrate").exit_code == 0
    return invoke


def printed(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_parse_sample(cli: Callable[..., Result], tmp_path: Path) -> None:
    from_json = printed(cli("webhooks", "parse-sample", "--json", '{"a": 1, "b": {"c": 2}}'))
    assert paths(from_json["parameters"], "body") == ["a", "b", "b.c"]
    (tmp_path / "sample.json").write_text('{"order": {"id": 1}}')
    from_file = printed(cli("webhooks", "parse-sample", "--json", "@sample.json"))
    assert paths(from_file["parameters"], "body") == ["order", "order.id"]
    from_stdin = printed(cli("webhooks", "parse-sample", "--json", "@-", input="[1]"))
    assert paths(from_stdin["parameters"], "body") == ["[0]"]
    from_url = printed(cli("webhooks", "parse-sample", "--url", "http://localhost:13000/api/webhook:trigger/1hfmkioou0d?query=1"))
    assert from_url["parameters"] == {"query": [{"path": "query", "type": "string", "required": False}]}
    from_query = printed(cli("webhooks", "parse-sample", "--query", "query[0].a=1"))
    assert paths(from_query["parameters"], "query") == ["query", "query[0]", "query[0].a"]
    from_pairs = printed(cli("webhooks", "parse-sample", "--pair", "a=1", "--pair", "b.c=x=y", "--into", "query"))
    assert paths(from_pairs["parameters"], "query") == ["a", "b", "b.c"]
    assert from_pairs["examples"] == {"query": {"a": "1", "b.c": "x=y"}}
    with_path = printed(cli("webhooks", "parse-sample", "--url", "https://h.example/api/webhooks/orders/42?x=1", "--path", "orders/:id"))
    assert with_path["examples"] == {"path_params": {"id": "42"}, "query": {"x": "1"}}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--json", "{"], "not valid JSON"),
        (["--json", "@missing.json"], "cannot read 'missing.json'"),
        (["--pair", "a=1", "--pair", "a.b=2"], "used both as a value and as a container"),
        (["--pair", "novalue"], "'novalue' is not KEY=VALUE"),
        ([], "give exactly one sample"),
        (["--json", "{}", "--url", "http://x/?a=1"], "give exactly one sample"),
        (["--url", "http://x/api/webhooks/a/1", "--path", "b/:id"], "does not match the workflow's path"),
    ],
)
def test_cli_parse_sample_errors_are_one_line(cli: Callable[..., Result], args: list[str], fragment: str) -> None:
    result = cli("webhooks", "parse-sample", *args)
    assert result.exit_code != 0
    assert fragment in result.stderr and "Traceback" not in result.output


def test_cli_capture_without_waiting_show_and_cancel(cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "hook.json").write_text(json.dumps(webhook_workflow("hook")))
    printed(cli("workflows", "apply", str(tmp_path / "hook.json")))
    missing = cli("webhooks", "show-capture", "hook")
    assert missing.exit_code == 1 and "has no capture" in missing.stderr
    armed = printed(cli("webhooks", "capture", "hook", "--no-wait", "--window", "90"))
    assert armed["status"] == "armed" and _seconds_between(armed["armed_at"], armed["expires_at"]) == 90
    assert printed(cli("webhooks", "show-capture", "hook")) == armed
    assert printed(cli("webhooks", "cancel-capture", "hook"))["status"] == "cancelled"
    again = cli("webhooks", "cancel-capture", "hook")
    assert again.exit_code == 1 and "no armed capture" in again.stderr


def test_cli_capture_exits_1_when_nothing_came(cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "hook.json").write_text(json.dumps(webhook_workflow("hook")))
    printed(cli("workflows", "apply", str(tmp_path / "hook.json")))
    expired = cli("webhooks", "capture", "hook", "--window", "1")
    assert expired.exit_code == 1 and "no request was captured: the capture is expired" in expired.stderr
    assert json.loads(expired.stdout)["status"] == "expired"
    waited = cli("webhooks", "capture", "hook", "--timeout", "0.2")
    assert waited.exit_code == 1 and "the capture is armed (it stays armed until its window ends)" in waited.stderr
    unknown = cli("webhooks", "capture", "nope", "--no-wait")
    assert unknown.exit_code == 1 and "no workflow with key 'nope'" in unknown.stderr


@pytest.mark.server
def test_a_get_sample_is_captured_even_on_a_post_only_webhook(capture_server: HooklineServer) -> None:
    """Mingdao: 'a GET or POST request' within the window, whatever methods the workflow runs on."""
    with server_api(capture_server) as api:
        assert api.post("/api/workflows/post-only/webhook-capture", json={"window": 60}).status_code == 201
        answer = httpx.get(f"{capture_server.base_url}/api/webhooks/post-only?a=1")
        assert answer.status_code == 200 and answer.json()["captured"] is True
        assert api.get("/api/workflows/post-only/webhook-capture").json()["request"]["query"] == {"a": "1"}
        # once captured, the workflow's own methods apply again
        assert httpx.get(f"{capture_server.base_url}/api/webhooks/post-only").status_code == 405
