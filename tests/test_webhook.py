"""The webhook path in-process (ASGI), on SQLite and PostgreSQL: request -> workflow -> answer,
with the execution and its jobs stored."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Callable

import pytest

from conftest import sync_workflow
from hookline import NodeResult, NodeRun, NodeType, Reply, hookimpl
from hookline.storage.models import Execution, Job
from hookline.testing import HooklineTestApp


class SlowNode(NodeType):
    name = "slow"

    async def execute(self, run: NodeRun) -> NodeResult:
        await asyncio.sleep(run.config["seconds"])
        return NodeResult(result="done")


class SlowPlugin:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(SlowNode)


async def test_sync_webhook_answers_by_branch_and_stores_history(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())

    high = await hookline.webhook("pay", json={"id": "A-1", "amount": 150})
    low = await hookline.client.post("/api/webhook:trigger/pay", json={"id": "A-2", "amount": 50})

    assert (high.status_code, high.json()) == (200, {"tier": "high", "id": "A-1"})
    assert (low.status_code, low.json()) == (202, {"tier": "low"})
    executions = await Execution.all().order_by("id")
    assert [e.status.value for e in executions] == ["succeeded", "succeeded"]
    assert executions[0].context["body"] == {"id": "A-1", "amount": 150}
    assert executions[0].reply == {"status": 200, "headers": {}, "body": {"tier": "high", "id": "A-1"}}
    jobs = await Job.filter(execution_id=executions[1].id).order_by("position")
    assert [(j.node, j.status.value, j.branch) for j in jobs] == [("check", "succeeded", "false"), ("low", "succeeded", None)]


async def test_percent_encoded_nocobase_path_reaches_the_workflow(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    response = await hookline.client.post("/api/webhook%3Atrigger/pay", json={"amount": 1})
    assert response.json() == {"tier": "low"}


async def test_async_webhook_acks_after_storing_then_runs(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "ev", "trigger": {"type": "webhook"}, "nodes": [
        {"key": "check", "type": "condition", "config": {"rules": {"left": "{{ $context.body.n }}", "op": "eq", "right": 1}}}
    ]})
    response = await hookline.webhook("ev", json={"n": 1})
    assert (response.status_code, response.text) == (200, "ok")
    execution_id = int(response.headers["x-hookline-execution"])
    execution = await hookline.wait_for_execution(execution_id)
    assert execution["status"] == "succeeded"
    assert execution["mode"] == "async"
    assert execution["jobs"][0]["result"]["result"] is True


async def test_async_webhook_configured_response(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "ev", "trigger": {"type": "webhook", "config": {
        "response": {"status": 202, "headers": {"X-Team": "payments"}, "body": {"accepted": True}}}}})
    response = await hookline.webhook("ev", json={})
    assert response.status_code == 202
    assert response.headers["x-team"] == "payments"
    assert response.json() == {"accepted": True}


@pytest.mark.parametrize(
    ("body", "has_url"),
    [
        ({"id": "{{ $execution.id }}"}, False),
        ({"id": "{{ $execution.id }}", "url": "{{ $execution.status_url }}"}, True),
        ("see {{ $execution['status_url'] }}", True),
        ({"context": "{{ $context.body }}"}, False),
    ],
)
async def test_async_answer_gets_the_status_url_whenever_it_may_use_it(
    hookline: HooklineTestApp, body: object, has_url: bool
) -> None:
    """The status URL is signed only for answers that may use it; any way of reaching it works."""
    config = {"response": {"status": 202, "body": body}}
    await hookline.apply({"key": "ev", "trigger": {"type": "webhook", "config": config}})
    response = await hookline.webhook("ev", json={})
    execution_id = int(response.headers["x-hookline-execution"])
    text = response.text
    assert response.status_code == 202
    assert (f"/api/webhooks/ev/executions/{execution_id}?token=" in text) == has_url


async def test_context_has_method_headers_query_body_and_raw_body(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "echo", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "reply", "type": "response", "config": {"body": {
            "method": "{{ $context.method }}",
            "request_id": "{{ $context.headers['x-request-id'] }}",
            "tags": "{{ $context.query.tag }}",
            "one": "{{ $context.query.one }}",
            "raw": "{{ $context.raw_body }}",
            "text": "amount={{ $context.body.amount }}",
        }}}
    ]})
    response = await hookline.client.post(
        "/api/webhooks/echo?tag=a&tag=b&one=1",
        content=b'{"amount": 12.5}',
        headers={"Content-Type": "application/json", "X-Request-Id": "r-9"},
    )
    assert response.json() == {
        "method": "POST",
        "request_id": "r-9",
        "tags": ["a", "b"],
        "one": "1",
        "raw": '{"amount": 12.5}',
        "text": "amount=12.5",
    }


async def test_repeated_headers_are_joined_and_every_answer_names_its_execution(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "echo", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "reply", "type": "response", "config": {
            "headers": {"X-Seen": "{{ $context.headers['x-tag'] }}", "X-Missing": "{{ $context.headers.nope }}"},
            "body": {"ok": True}}}
    ]})
    response = await hookline.client.post("/api/webhooks/echo", json={}, headers=[("X-Tag", "a"), ("X-Tag", "b")])
    assert response.headers["x-seen"] == "a, b"
    assert response.headers["x-missing"] == ""
    execution = await hookline.host.executions.get(response.headers["x-hookline-execution"])
    assert execution["status"] == "succeeded"


async def test_binary_bodies_are_kept_exactly_as_base64(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "bin", "trigger": {"type": "webhook"}})
    for payload in (b"\x89PNG\r\n\x1a\n\xff", b"text with \x00 inside"):
        response = await hookline.client.post("/api/webhooks/bin", content=payload, headers={"Content-Type": "application/octet-stream"})
        execution = await hookline.wait_for_execution(int(response.headers["x-hookline-execution"]))
        assert execution["status"] == "succeeded"
        assert execution["context"]["raw_body"] is None and execution["context"]["body"] is None
        assert base64.b64decode(execution["context"]["raw_body_base64"]) == payload


async def test_form_and_text_bodies(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "echo", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "reply", "type": "response", "config": {"body": {"body": "{{ $context.body }}"}}}
    ]})
    form = await hookline.client.post("/api/webhooks/echo", data={"a": "1", "b": "x y"})
    text = await hookline.client.post("/api/webhooks/echo", content=b"<xml/>", headers={"Content-Type": "application/xml"})
    assert form.json() == {"body": {"a": "1", "b": "x y"}}
    assert text.json() == {"body": "<xml/>"}


@pytest.mark.parametrize(
    "body, content_type, fragment",
    [
        (b'{"amount": ', "application/json", "not valid JSON"),
        (b'{"amount": NaN}', "application/json", "NaN is not valid JSON"),
        (b"\xff\xfe", "application/vnd.api+json", "not valid UTF-8"),
        (b"a=\xff", "application/x-www-form-urlencoded", "form body is not valid UTF-8"),
        (b'{"id": "\\u0000"}', "application/json", "contains a \\u0000 (NUL) character"),
        (b'{"id": ["\\ud800"]}', "application/json", "unpaired UTF-16 surrogate"),
        (b"a=%00", "application/x-www-form-urlencoded", "NUL"),
    ],
)
async def test_malformed_json_is_a_400_naming_the_problem(
    hookline: HooklineTestApp, body: bytes, content_type: str, fragment: str
) -> None:
    await hookline.apply(sync_workflow())
    response = await hookline.client.post("/api/webhooks/pay", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"
    assert fragment in response.json()["message"]
    assert await Execution.all().count() == 0


async def test_wrong_method_is_405_with_allow(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    response = await hookline.client.get("/api/webhooks/pay")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, HEAD, OPTIONS"
    assert response.json()["error"] == "method_not_allowed"


async def test_unknown_and_disabled_workflows_are_404_with_a_hint(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow(enabled=False))
    unknown = await hookline.webhook("nope", json={})
    disabled = await hookline.webhook("pay", json={"amount": 500})
    assert unknown.status_code == 404 and "no webhook workflow" in unknown.json()["message"]
    assert disabled.status_code == 404 and disabled.json()["error"] == "workflow_disabled"
    assert await Execution.all().count() == 0


async def test_sync_failure_is_a_json_500_naming_the_node(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    response = await hookline.webhook("pay", json={"amount": "lots"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "workflow_failed"
    assert body["node"] == "check"
    assert "cannot be ordered" in body["message"]
    assert "Traceback" not in response.text
    stored = await hookline.host.executions.get(body["execution"])
    assert stored["status"] == "failed"
    assert stored["error"]["node"] == "check"
    assert response.headers["x-hookline-execution"] == str(body["execution"])


@pytest.mark.parametrize("hookline_plugins", [[SlowPlugin()]])
async def test_a_crash_answers_500_without_internal_details(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "bug", "sync": True, "trigger": {"type": "webhook"},
                          "nodes": [{"key": "wait", "type": "slow", "config": {"seconds": "soon"}}]})
    response = await hookline.webhook("bug", json={})
    assert response.status_code == 500
    assert response.json()["error"] == "workflow_error"
    assert response.json()["message"] == "workflow 'bug' ended error"
    assert "TypeError" not in response.text
    stored = await hookline.host.executions.get(response.json()["execution"])
    assert "TypeError" in stored["error"]["message"]


async def test_sync_without_response_node_gets_a_summary(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "quiet", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "check", "type": "condition", "config": {"rules": {"left": 1, "op": "eq", "right": 1}}}
    ]})
    response = await hookline.webhook("quiet", json={})
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert isinstance(response.json()["execution"], int)


async def test_new_version_takes_effect_for_the_next_call(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    assert (await hookline.webhook("pay", json={"amount": 150})).json()["tier"] == "high"
    changed = sync_workflow()
    changed["nodes"][0]["config"]["rules"]["right"] = 1000
    result = await hookline.apply(changed)
    assert result["version"] == 2
    assert (await hookline.webhook("pay", json={"amount": 150})).json()["tier"] == "low"



@pytest.mark.parametrize("sync", [True, False])
@pytest.mark.parametrize("hookline_plugins", [[SlowPlugin()]])
async def test_a_caller_that_goes_away_leaves_no_execution_unfinished(hookline: HooklineTestApp, sync: bool) -> None:
    await hookline.apply({"key": "slow", "sync": sync, "trigger": {"type": "webhook"},
                          "nodes": [{"key": "wait", "type": "slow", "config": {"seconds": 0.3}}]})
    for step in range(40):  # cancel at many points of the request, the insert's among them
        call = asyncio.create_task(hookline.webhook("slow", json={}))
        for _ in range(step):
            await asyncio.sleep(0)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
    await asyncio.sleep(0.1)
    for execution in await Execution.all():
        finished = await hookline.wait_for_execution(execution.id)
        assert finished["status"] == "succeeded", finished


async def test_an_unrecordable_call_is_a_503_to_retry_not_a_2xx(hookline: HooklineTestApp, hookline_db_url: str) -> None:
    """The database refuses the write (here: its table is gone): the sender is told to retry."""
    from tortoise import connections

    await hookline.apply({"key": "ev", "trigger": {"type": "webhook"}})
    await hookline.apply(sync_workflow())
    await hookline.webhook("ev", json={})  # warm the workflow cache: only the insert fails below
    await hookline.webhook("pay", json={"amount": 1})
    await connections.get("default").execute_script("DROP TABLE hookline_job; DROP TABLE hookline_execution")
    for key in ("ev", "pay"):
        response = await hookline.webhook(key, json={"amount": 1})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"] == "unavailable"
    # the workflow itself cannot be looked up: the same answer
    await connections.get("default").execute_script("DROP TABLE hookline_workflow_address; DROP TABLE hookline_workflow_version; DROP TABLE hookline_workflow")
    response = await hookline.webhook("ev", json={})
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")


async def test_an_empty_reply_has_no_content_type(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "empty", "sync": True, "trigger": {"type": "webhook"}, "nodes": [
        {"key": "reply", "type": "response", "config": {"status": 202, "headers": {"Location": "/x"}}}]})
    await hookline.apply({"key": "ack", "trigger": {"type": "webhook", "config": {"response": {"status": 202, "body": None}}}})
    for key in ("empty", "ack"):
        response = await hookline.webhook(key, json={})
        assert response.status_code == 202
        assert response.content == b""
        assert "content-type" not in response.headers, response.headers


async def test_a_nul_in_the_query_is_refused_even_without_a_body(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "ev", "trigger": {"type": "webhook"}})
    response = await hookline.client.post("/api/webhooks/ev?x=%00")
    assert response.status_code == 400
    assert "query string cannot be stored" in response.json()["message"]


class NulReplyNode(NodeType):
    name = "nul_reply"

    async def execute(self, run: NodeRun) -> NodeResult:
        run.reply(Reply(status=200, body={"text": "a\x00b"}))
        return NodeResult(end=True)


class NulReplyPlugin:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(NulReplyNode)


@pytest.mark.parametrize("hookline_plugins", [[NulReplyPlugin()]])
async def test_the_answer_matches_the_stored_history(hookline: HooklineTestApp) -> None:
    """A reply PostgreSQL cannot store (NUL in a JSON value) must not go out as a success while
    the history says otherwise; SQLite stores it, and the reply goes out."""
    await hookline.apply({"key": "nul", "sync": True, "trigger": {"type": "webhook"},
                          "nodes": [{"key": "reply", "type": "nul_reply"}]})
    response = await hookline.webhook("nul", json={})
    execution = await hookline.host.executions.get(response.headers["x-hookline-execution"])
    if "sqlite" in hookline.host.settings.db_url:
        assert execution["status"] == "succeeded"
        assert (response.status_code, response.json()) == (200, {"text": "a\x00b"})
    else:
        assert execution["status"] == "error"
        assert execution["error"]["error"] == "outcome_not_stored"
        assert (response.status_code, response.json()["error"]) == (500, "workflow_error")


async def test_credentials_and_signatures_never_reach_the_history(hookline: HooklineTestApp) -> None:
    import hashlib
    import hmac as hmac_module

    await hookline.apply({"key": "basic", "trigger": {"type": "webhook", "config": {
        "auth": {"basic": {"username": "hook", "password": "s3cret-pass"}}}}})
    await hookline.apply({"key": "signed", "trigger": {"type": "webhook", "config": {
        "signature": {"preset": "github", "secrets": ["gh-secret"]}}}})
    answer = await hookline.webhook("basic", json={"a": 1}, auth=("hook", "s3cret-pass"))
    body = b'{"b": 2}'
    signature = "sha256=" + hmac_module.new(b"gh-secret", body, hashlib.sha256).hexdigest()
    legacy = "sha1=" + hmac_module.new(b"gh-secret", body, hashlib.sha1).hexdigest()  # GitHub sends both
    signed = await hookline.client.post("/api/webhooks/signed", content=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": signature, "X-Hub-Signature": legacy,
        "Proxy-Authorization": "Basic eDp5"})
    for response in (answer, signed):
        assert response.status_code == 200, response.text
        stored = await hookline.wait_for_execution(int(response.headers["x-hookline-execution"]))
        assert "s3cret" not in str(stored) and signature not in str(stored) and "eDp5" not in str(stored)
    basic_headers = (await hookline.host.executions.get(answer.headers["x-hookline-execution"]))["context"]["headers"]
    assert basic_headers["authorization"] == "[redacted]"
    signed_headers = (await hookline.host.executions.get(signed.headers["x-hookline-execution"]))["context"]["headers"]
    assert signed_headers["x-hub-signature-256"] == signed_headers["x-hub-signature"] == "[redacted]"
    assert signed_headers["proxy-authorization"] == "[redacted]"


@pytest.mark.parametrize("depth", [65, 5000, 200_000])
async def test_deeply_nested_json_is_a_400_not_a_crash(hookline: HooklineTestApp, depth: int) -> None:
    await hookline.apply(sync_workflow())
    body = b"[" * depth + b"]" * depth
    response = await hookline.client.post("/api/webhooks/pay", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["message"]
    await hookline.apply({"key": "obj", "trigger": {"type": "webhook", "config": {"query": [{"path": "x", "type": "object"}]}}})
    query = await hookline.client.post("/api/webhooks/obj?x=" + "[" * 3000, json={})
    assert (query.status_code, query.json()["error"]) == (400, "invalid_parameters")
    api = await hookline.api("POST", "/api/workflows", content=body, headers={"Content-Type": "application/json"})
    assert api.status_code == 400 and api.json()["error"] == "invalid_body"


async def test_sixty_four_levels_are_fine(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "ev", "trigger": {"type": "webhook"}})
    body = b"[" * 64 + b"]" * 64
    response = await hookline.client.post("/api/webhooks/ev", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200


async def test_rate_limit_answers_429_with_retry_after(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "rl", "trigger": {"type": "webhook", "config": {"rate_limit": {"requests": 2, "per": 60}}}})
    answers = [await hookline.webhook("rl", json={}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"] == "rate_limited"
    assert answers[2].headers["retry-after"] == "30"
    assert len((await hookline.api("GET", "/api/executions?workflow=rl")).json()["items"]) == 2
    # another workflow has its own budget
    await hookline.apply({"key": "other", "trigger": {"type": "webhook", "config": {"rate_limit": {"requests": 1, "per": 1}}}})
    assert (await hookline.webhook("other", json={})).status_code == 200


def test_token_buckets_refill_at_the_configured_rate() -> None:
    from hookline_webhook.ratelimit import Buckets, RateLimit

    buckets, limit = Buckets(), RateLimit(requests=3, per=3.0)
    assert [buckets.take(("k", 1), limit, now=100.0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take(("k", 1), limit, now=100.0) == pytest.approx(1.0)
    assert buckets.take(("k", 1), limit, now=101.0) == 0  # one second gave one token back
    assert buckets.take(("k", 2), limit, now=101.0) == 0  # a new version starts full
