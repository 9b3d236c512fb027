"""The management API: auth, workflows and versions, executions, pagination, plugins, OpenAPI."""

from __future__ import annotations

import pytest
import yaml

from conftest import sync_workflow
from hookline.testing import HooklineTestApp
from hookline.web.openapi import openapi_path


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic aG9va2xpbmU6", "Bearer", "bearer  "])
async def test_management_api_needs_the_token(hookline: HooklineTestApp, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = await hookline.client.get("/api/workflows", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_health_and_openapi_are_public(hookline: HooklineTestApp) -> None:
    assert (await hookline.client.get("/api/health")).json() == {"status": "ok"}
    assert (await hookline.client.get("/openapi.json")).status_code == 200


async def test_create_returns_key_version_and_endpoints(hookline: HooklineTestApp) -> None:
    response = await hookline.api("POST", "/api/workflows", json=sync_workflow())
    assert response.status_code == 201
    body = response.json()
    assert body["key"] == "pay" and body["version"] == 1 and body["enabled"] is True and body["created"] is True
    assert body["endpoints"]["webhook"].endswith("/api/webhooks/pay")
    assert body["endpoints"]["webhook_nocobase"].endswith("/api/webhook:trigger/pay")

    again = await hookline.api("POST", "/api/workflows", json=sync_workflow())
    assert again.status_code == 409
    assert "PUT /api/workflows/pay" in again.json()["message"]


async def test_a_workflow_without_key_gets_an_unguessable_one(hookline: HooklineTestApp) -> None:
    definition = sync_workflow()
    del definition["key"]
    keys = {(await hookline.api("POST", "/api/workflows", json=definition)).json()["key"] for _ in range(2)}
    assert len(keys) == 2
    assert all(len(key) >= 22 for key in keys)  # 16 random bytes, URL-safe base64


async def test_yaml_definitions_are_accepted(hookline: HooklineTestApp) -> None:
    response = await hookline.api(
        "POST", "/api/workflows", content=yaml.safe_dump(sync_workflow()), headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 201


async def test_an_invalid_definition_lists_every_problem_with_its_location(hookline: HooklineTestApp) -> None:
    definition = sync_workflow()
    definition["nodes"][0]["branches"]["true"][0]["config"]["status"] = 700
    definition["nodes"][0]["branches"]["false"][0]["type"] = "respnse"
    definition["nodes"].append({"key": "check", "type": "condition", "config": {"rules": {"left": 1, "op": "almost", "right": 2}}})
    definition["nodes"].append({"key": "loose", "type": "response", "config": {"body": "{{ $nope }}"}, "branches": {"x": []}})
    definition["colour"] = "blue"
    response = await hookline.api("POST", "/api/workflows", json=definition)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_definition"
    problems = {p["location"]: p["message"] for p in body["problems"]}
    assert "colour" in problems[""]
    assert "allowed: " in problems[""]
    assert "700 is greater than the maximum of 599" in problems["nodes[0].branches.true[0].config.status"]
    assert problems["nodes[0].branches.false[0].type"] == (
        "unknown node type 'respnse' (installed node types: condition, http-request, response, switch)"
    )
    assert "duplicate node key 'check'" in problems["nodes[1].key"]
    assert problems["nodes[1].config.rules.op"].startswith("'almost' is not one of ['contains', 'eq',")
    assert "unknown variable $nope" in problems["nodes[2].config.body"]
    assert "has no branch 'x'" in problems["nodes[2].branches.x"]
    assert "nodes[0].branches.true[0].config.status" in body["message"]
    assert body["message"].startswith("workflow 'pay' is invalid: ")


async def test_a_malformed_node_tree_is_reported_without_type_noise(hookline: HooklineTestApp) -> None:
    definition = sync_workflow()
    definition["nodes"][0]["branches"]["true"][0]["kind"] = "response"
    definition["nodes"].append({"key": "x", "type": "respnse"})
    body = (await hookline.api("POST", "/api/workflows", json=definition)).json()
    assert [p["location"] for p in body["problems"]] == ["nodes[0].branches.true[0]"]
    assert "'kind' was unexpected" in body["problems"][0]["message"]


async def test_a_response_node_needs_a_sync_workflow(hookline: HooklineTestApp) -> None:
    response = await hookline.api("POST", "/api/workflows", json=sync_workflow(sync=False))
    problems = {p["location"]: p["message"] for p in response.json()["problems"]}
    assert "not synchronous" in problems["nodes[0].branches.true[0].config"]


async def test_bad_bodies_are_400s(hookline: HooklineTestApp) -> None:
    empty = await hookline.api("POST", "/api/workflows")
    broken = await hookline.api("POST", "/api/workflows", content=b"{nope", headers={"Content-Type": "application/json"})
    not_object = await hookline.api("POST", "/api/workflows", json=[1, 2])
    assert empty.status_code == 400
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_body")
    assert not_object.status_code == 422
    for broken_definition in ({"key": "x"}, {"key": "x", "trigger": {"type": "webhook"}, "timeout": None},
                              {"trigger": "webhook", "colour": 1}, {"key": "x", "title": 5, "trigger": {"type": "webhook"}}):
        response = await hookline.api("POST", "/api/workflows", json=broken_definition)
        assert response.status_code == 422, (broken_definition, response.text)


async def test_versions_are_immutable_and_identical_saves_change_nothing(hookline: HooklineTestApp) -> None:
    await hookline.api("POST", "/api/workflows", json=sync_workflow())
    await hookline.webhook("pay", json={"amount": 150})

    same = await hookline.api("PUT", "/api/workflows/pay", json=sync_workflow())
    assert (same.json()["version"], same.json()["changed"]) == (1, False)

    changed = sync_workflow(title="Renamed")
    response = await hookline.api("PUT", "/api/workflows/pay", json=changed)
    assert (response.status_code, response.json()["version"], response.json()["changed"]) == (200, 2, True)

    detail = (await hookline.api("GET", "/api/workflows/pay")).json()
    assert detail["title"] == "Renamed" and detail["version"] == 2
    assert [(v["version"], v["current"]) for v in detail["versions"]] == [(2, True), (1, False)]
    assert detail["definition"]["title"] == "Renamed"
    # the old execution still points at version 1
    [execution] = (await hookline.api("GET", "/api/executions?workflow=pay")).json()["items"]
    assert (await hookline.api("GET", f"/api/executions/{execution['id']}")).json()["version"] == 1


async def test_put_refuses_another_key_and_unknown_workflows(hookline: HooklineTestApp) -> None:
    await hookline.api("POST", "/api/workflows", json=sync_workflow())
    other = await hookline.api("PUT", "/api/workflows/pay", json=sync_workflow(key="other"))
    missing = await hookline.api("PUT", "/api/workflows/missing", json=sync_workflow(key="missing"))
    assert other.status_code == 422 and other.json()["problems"][0]["location"] == "key"
    assert missing.status_code == 404


async def test_delete_removes_the_workflow_and_its_history(hookline: HooklineTestApp) -> None:
    await hookline.api("POST", "/api/workflows", json=sync_workflow())
    await hookline.webhook("pay", json={"amount": 1})
    assert (await hookline.api("DELETE", "/api/workflows/pay")).status_code == 204
    assert (await hookline.api("GET", "/api/workflows/pay")).status_code == 404
    assert (await hookline.api("GET", "/api/executions")).json()["items"] == []
    assert (await hookline.webhook("pay", json={})).status_code == 404


async def test_list_filters_by_key_title_and_webhook_url(hookline: HooklineTestApp) -> None:
    await hookline.api("POST", "/api/workflows", json=sync_workflow(key="stripe-paid", title="Stripe payments"))
    await hookline.api("POST", "/api/workflows", json=sync_workflow(key="gh-push", title="GitHub pushes"))

    async def keys(q: str) -> list[str]:
        response = await hookline.api("GET", "/api/workflows", params={"q": q})
        return [w["key"] for w in response.json()["items"]]

    assert await keys("") == ["gh-push", "stripe-paid"]
    assert await keys("STRIPE") == ["stripe-paid"]
    assert await keys("github") == ["gh-push"]
    assert await keys("http://127.0.0.1:8000/api/webhooks/gh-push") == ["gh-push"]
    assert await keys("/api/webhook:trigger/stripe-paid?x=1") == ["stripe-paid"]
    assert await keys("nothing") == []


async def test_pagination_walks_every_row_once(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    for amount in range(7):
        await hookline.webhook("pay", json={"amount": amount})
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await hookline.api("GET", "/api/executions", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    "query, fragment",
    [("limit=0", "limit must be from 1"), ("limit=abc", "whole number"), ("cursor=zz", "cursor"), ("status=done", "unknown status")],
)
async def test_bad_list_parameters_are_400s(hookline: HooklineTestApp, query: str, fragment: str) -> None:
    response = await hookline.api("GET", f"/api/executions?{query}")
    assert response.status_code == 400
    assert fragment in response.json()["message"]


async def test_executions_filter_by_workflow_and_status(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    await hookline.apply(sync_workflow(key="other"))
    await hookline.webhook("pay", json={"amount": 5})
    await hookline.webhook("pay", json={"amount": "x"})
    await hookline.webhook("other", json={"amount": 5})

    async def statuses(query: str) -> list[tuple[str, str]]:
        items = (await hookline.api("GET", f"/api/executions?{query}")).json()["items"]
        return [(e["workflow"], e["status"]) for e in items]

    assert await statuses("workflow=pay") == [("pay", "failed"), ("pay", "succeeded")]
    assert await statuses("status=succeeded") == [("other", "succeeded"), ("pay", "succeeded")]
    assert await statuses("workflow=pay&status=failed") == [("pay", "failed")]
    assert (await hookline.api("GET", "/api/executions?workflow=nope")).status_code == 404


async def test_an_execution_shows_context_reply_jobs_and_timings(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    await hookline.webhook("pay", json={"id": "A-9", "amount": 150}, headers={"X-Request-Id": "r-1"})
    [summary] = (await hookline.api("GET", "/api/executions")).json()["items"]
    execution = (await hookline.api("GET", f"/api/executions/{summary['id']}")).json()
    assert execution["status"] == "succeeded" and execution["mode"] == "sync" and execution["trigger"] == "webhook"
    assert execution["context"]["headers"]["x-request-id"] == "r-1"
    assert execution["reply"]["body"] == {"tier": "high", "id": "A-9"}
    assert [(j["node"], j["type"], j["status"]) for j in execution["jobs"]] == [
        ("check", "condition", "succeeded"),
        ("high", "response", "succeeded"),
    ]
    assert execution["jobs"][0]["result"] == {"result": True, "checks": [{"left": 150, "op": "gt", "right": 100, "result": True}]}
    assert execution["duration_ms"] >= execution["jobs"][0]["duration_ms"] >= 0
    assert (await hookline.api("GET", "/api/executions/999999")).status_code == 404
    assert (await hookline.api("GET", "/api/executions/abc")).status_code == 404


async def test_run_endpoint_runs_by_hand(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow(enabled=False))
    response = await hookline.api("POST", "/api/workflows/pay/run", json={"body": {"amount": 500, "id": "M-1"}})
    assert response.status_code == 200
    assert response.json()["mode"] == "manual"
    assert response.json()["reply"]["body"] == {"tier": "high", "id": "M-1"}


async def test_plugins_endpoint(hookline: HooklineTestApp) -> None:
    plugins = (await hookline.api("GET", "/api/plugins")).json()["plugins"]
    assert {p["name"]: p["node_types"] + p["trigger_types"] for p in plugins} == {
        "condition": ["condition", "switch"],
        "console": [],
        "error_trigger": ["execution-failed"],
        "http": ["http-request"],
        "response": ["response"],
        "webhook": ["webhook"],
    }
    everything = (await hookline.api("GET", "/api/plugins?all=1")).json()["plugins"]
    assert "hookline.web.api" in {p["name"] for p in everything}


async def test_unknown_routes_and_methods_answer_json(hookline: HooklineTestApp) -> None:
    missing = await hookline.api("GET", "/api/nothing")
    wrong = await hookline.api("PATCH", "/api/workflows")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_openapi_documents_every_route(hookline: HooklineTestApp) -> None:
    document = (await hookline.client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in document["paths"].items() for method in item if method != "parameters"}
    pages = 0
    for route in hookline.app.router.routes:
        path = openapi_path(route.path)
        if path.startswith("/console"):  # pages for people, not API: left out on purpose
            pages += 1
            assert not any(p.startswith("/console") for p, _ in documented)
            continue
        for method in route.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {path} is not in /openapi.json"
    assert pages > 0, "the console is installed in the test environment: its pages should have been seen"
    from openapi_spec_validator import validate

    validate(document)


@pytest.mark.parametrize(
    "trigger_config, nodes, location, fragment",
    [
        ({"response": {"headers": {"Content-Length": "5"}}}, [], "trigger.config", "'Content-Length' is set by the server"),
        ({"response": {"headers": {"X-Evil": "a\r\nSet-Cookie: x=1"}}}, [], "trigger.config.response.headers.X-Evil", "does not match"),
        ({"response": {"headers": {"Bad Name": "x"}}}, [], "trigger.config.response.headers", "does not match"),
        ({"response": {"headers": {"X-Ctl": "a\x01b"}}}, [], "trigger.config.response.headers.X-Ctl", "does not match"),
    ],
)
async def test_configured_response_headers_are_checked(
    hookline: HooklineTestApp, trigger_config: dict, nodes: list, location: str, fragment: str
) -> None:
    definition = {"key": "h", "trigger": {"type": "webhook", "config": trigger_config}, "nodes": nodes}
    body = (await hookline.api("POST", "/api/workflows", json=definition)).json()
    problems = {p["location"]: p["message"] for p in body["problems"]}
    assert fragment in problems[location]


async def test_response_node_headers_are_checked_too(hookline: HooklineTestApp) -> None:
    definition = sync_workflow()
    definition["nodes"][0]["branches"]["true"][0]["config"]["headers"] = {"transfer-encoding": "chunked"}
    body = (await hookline.api("POST", "/api/workflows", json=definition)).json()
    assert "'transfer-encoding' is set by the server" in body["problems"][0]["message"]


async def test_a_rotated_token_stops_working(hookline_db_url: str, tmp_path) -> None:
    """With the token stored in the database, 'hookline token rotate' (any process) revokes the
    old token within a second."""
    import asyncio

    from hookline.settings import Settings
    from hookline.web.auth import ensure_api_token, rotate_api_token
    from hookline.web.app import create_app
    from hookline.host import Host
    from hookline.testing import serve_in_process

    host = Host(Settings(db_url=hookline_db_url))
    await host.migrate()
    app = create_app(host=host)
    app.config.TOUCHUP = False
    async with serve_in_process(app) as client:
        old = await ensure_api_token(None)
        assert (await client.get("/api/workflows", headers={"Authorization": f"Bearer {old}"})).status_code == 200
        new = await rotate_api_token()
        await asyncio.sleep(1.1)
        assert (await client.get("/api/workflows", headers={"Authorization": f"Bearer {old}"})).status_code == 401
        assert (await client.get("/api/workflows", headers={"Authorization": f"Bearer {new}"})).status_code == 200


async def test_every_answer_is_nosniff_and_no_store(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    answers = [
        await hookline.client.get("/api/health"),
        await hookline.client.get("/api/workflows"),  # 401
        await hookline.client.get("/nowhere"),  # 404 from the router
        await hookline.webhook("pay", json={"amount": 500}),
        await hookline.client.post("/api/webhooks/pay", content=b"{", headers={"Content-Type": "application/json"}),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["cache-control"] == "no-store", answer.request.url


@pytest.mark.parametrize(
    ("content_type", "body", "fragment"),
    [
        ("application/json", b'{"trigger": {"type": "webhook"}, "title": NaN}', "NaN is not valid JSON"),
        ("application/json", b'{"trigger": {"type": "webhook"}, "x": 1e999}', "out of range"),
        ("application/yaml", b"trigger: {type: webhook}\ndescription: .nan\n", ".nan or .inf"),
        ("application/yaml", b"trigger: {type: webhook}\nnodes: [{key: a, type: response, config: {body: 2026-11-22}}]\n", "JSON cannot store"),
        ("application/json", b"[" + b"0," * 100_001 + b"0]", "too many values"),
    ],
)
async def test_definitions_json_cannot_hold_are_a_400(
    hookline: HooklineTestApp, content_type: str, body: bytes, fragment: str
) -> None:
    answer = await hookline.api("POST", "/api/workflows", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 400 and fragment in answer.json()["message"], answer.text
    run = await hookline.api("POST", "/api/workflows/x/run", content=b'{"a": NaN}')
    assert run.status_code == 400 and run.json()["error"] == "invalid_body"
