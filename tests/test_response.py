"""The Response node: status, headers, body formats, redirects, empty answers, answering early,
only the first answer counts, and what is refused when a workflow is saved."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.testing import HooklineTestApp


def responder(*nodes: dict[str, Any], key: str = "r") -> dict[str, Any]:
    return {"key": key, "sync": True, "trigger": {"type": "webhook"}, "nodes": list(nodes)}


def response(key: str = "reply", **config: Any) -> dict[str, Any]:
    return {"key": key, "type": "response", "config": config}


async def test_status_headers_and_json_body(hookline: HooklineTestApp) -> None:
    await hookline.apply(responder(response(status="{{ $context.body.code }}", headers={"X-Order": "{{ $context.body.id }}"},
                                            body={"id": "{{ $context.body.id }}", "n": "{{ $context.body.n }}"})))
    answer = await hookline.webhook("r", json={"code": 201, "id": "A-1", "n": 3})
    assert answer.status_code == 201
    assert answer.headers["x-order"] == "A-1"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"id": "A-1", "n": 3}


@pytest.mark.parametrize(
    "config, content_type, content",
    [
        ({"body": "plain words"}, "text/plain; charset=utf-8", b"plain words"),
        ({"body": "<ok/>", "headers": {"Content-Type": "application/xml"}}, "application/xml", b"<ok/>"),
        ({"body": "a string", "format": "json"}, "application/json", b'"a string"'),
        ({"body": {"a": [1, 2]}, "format": "text"}, "text/plain; charset=utf-8", b'{"a":[1,2]}'),
        ({"body": 42}, "application/json", b"42"),
    ],
)
async def test_body_formats(hookline: HooklineTestApp, config: dict[str, Any], content_type: str, content: bytes) -> None:
    await hookline.apply(responder(response(**config)))
    answer = await hookline.webhook("r", json={})
    assert answer.headers["content-type"] == content_type
    assert answer.content == content


async def test_empty_answers(hookline: HooklineTestApp) -> None:
    await hookline.apply(responder(response(status=204)))
    answer = await hookline.webhook("r", json={})
    assert (answer.status_code, answer.content) == (204, b"")


async def test_redirects(hookline: HooklineTestApp) -> None:
    await hookline.apply(responder(response(redirect="https://shop.example/thanks?order={{ $context.body.id }}")))
    answer = await hookline.webhook("r", json={"id": "A-7"})
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://shop.example/thanks?order=A-7"
    assert answer.content == b"" and "content-type" not in answer.headers
    await hookline.apply(responder(response(redirect="/done", status=303), key="r2"))
    assert (await hookline.webhook("r2", json={})).status_code == 303


async def test_a_bad_status_or_header_at_run_time_fails_the_node(hookline: HooklineTestApp) -> None:
    await hookline.apply(responder(response(status="{{ $context.body.code }}")))
    answer = await hookline.webhook("r", json={"code": 999})
    assert answer.status_code == 500
    assert "status must be a number from 100 to 599, got 999" in answer.json()["message"]
    await hookline.apply(responder(response(headers={"X-Echo": "{{ $context.body.v }}"}), key="h"))
    injected = await hookline.webhook("h", json={"v": "a\r\nSet-Cookie: x=1"})
    assert injected.status_code == 500 and "control characters" in injected.json()["message"]
    assert "set-cookie" not in injected.headers


async def test_end_false_answers_and_the_workflow_goes_on(hookline: HooklineTestApp) -> None:
    await hookline.apply(responder(
        response("ack", status=202, body={"accepted": True}, end=False),
        {"key": "check", "type": "condition", "config": {"rules": {"left": "{{ $context.body.n }}", "op": "gt", "right": 1}}},
        response("late", body={"late": True}),
    ))
    answer = await hookline.webhook("r", json={"n": 5})
    assert (answer.status_code, answer.json()) == (202, {"accepted": True})
    execution = await hookline.wait_for_execution(int(answer.headers["x-hookline-execution"]))
    assert [job["node"] for job in execution["jobs"]] == ["ack", "check", "late"]
    late = execution["jobs"][2]["result"]
    assert late["sent"] is False and late["reason"] == "an earlier node already answered"
    assert execution["reply"]["body"] == {"accepted": True}


async def test_a_manual_run_of_a_sync_workflow_keeps_the_answer(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(responder(response(body="hi")), {"body": {}})
    assert execution["reply"]["body"] == "hi"
    assert execution["jobs"][0]["result"]["sent"] is True


@pytest.mark.parametrize(
    "config, sync, fragment",
    [
        ({"body": "x"}, False, "not synchronous (set 'sync: true')"),
        ({"status": 99}, True, "less than the minimum of 100"),
        ({"status": "two hundred"}, True, "does not match"),
        ({"headers": {"Content-Length": "3"}}, True, "'Content-Length' is set by the server"),
        ({"headers": {"X-A": "line\nbreak"}}, True, "does not match"),
        ({"redirect": "/x", "body": "no"}, True, "a redirect has no body"),
        ({"redirect": "/x", "status": 200}, True, "a redirect's status is one of 301, 302, 303, 307, 308"),
        ({"redirect": "/x", "headers": {"Location": "/y"}}, True, "sets the Location header"),
        ({"format": "xml"}, True, "'xml' is not one of"),
        ({"end": "yes"}, True, "is not of type 'boolean'"),
        ({"colour": 1}, True, "'colour' was unexpected"),
    ],
)
async def test_refused_when_saved(hookline: HooklineTestApp, config: dict[str, Any], sync: bool, fragment: str) -> None:
    definition = {**responder(response(**config)), "sync": sync}
    answer = await hookline.api("POST", "/api/workflows", json=definition)
    assert answer.status_code == 422
    assert any(fragment in p["message"] for p in answer.json()["problems"]), answer.json()["problems"]
