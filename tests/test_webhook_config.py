"""The webhook trigger's config is validated on save, with a precise location for each problem."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from hookline.keys import server_secret
from hookline.testing import HooklineTestApp


def definition(config: dict[str, Any], *, sync: bool = False) -> dict[str, Any]:
    return {"key": "w", "sync": sync, "trigger": {"type": "webhook", "config": config}}


@pytest.mark.parametrize(
    "config, sync, location, fragment",
    [
        ({"methods": ["FETCH"]}, False, "trigger.config.methods[0]", "'FETCH' is not one of"),
        ({"methods": []}, False, "trigger.config.methods", "should be non-empty"),
        ({"methods": ["GET", "GET"]}, False, "trigger.config.methods", "non-unique"),
        ({"auth": {"basic": {"username": "u"}}}, False, "trigger.config.auth.basic", "'password' is a required property"),
        ({"auth": {"basic": {"username": "u", "password": {"env": "1BAD"}}}}, False, "trigger.config.auth.basic.password.env", "does not match"),
        ({"auth": {"token": "x"}}, False, "trigger.config.auth", "'token' was unexpected"),
        ({"cors": {"origins": ["*"], "credentials": True}}, False, "trigger.config", "needs explicit origins"),
        ({"cors": {"origins": ["app.example"]}}, False, "trigger.config.cors.origins[0]", "does not match"),
        ({"content_types": ["json"]}, False, "trigger.config.content_types[0]", "does not match"),
        ({"max_body_size": 200 * 1024 * 1024}, False, "trigger.config.max_body_size", "greater than the maximum"),
        ({"query": [{"path": "a", "type": "date"}]}, False, "trigger.config.query[0].type", "'date' is not one of"),
        ({"query": [{"path": "a", "alias": "two words"}]}, False, "trigger.config.query[0].alias", "does not match"),
        ({"body": [{"alias": "x"}]}, False, "trigger.config.body[0]", "'path' is a required property"),
        ({"headers": [{"path": "a.b"}]}, False, "trigger.config", "a header parameter is a header name"),
        ({"response": {"status": 200}}, True, "trigger.config", "answers asynchronous workflows only"),
        ({"timeout": 3}, False, "trigger.config", "'timeout' applies to sync workflows only"),
        ({"timeout": 0}, True, "trigger.config.timeout", "less than or equal to the minimum"),
        ({"response": {"status": 700}}, False, "trigger.config.response.status", "greater than the maximum"),
        ({"response": {"headers": {"Content-Length": "1"}}}, False, "trigger.config", "set by the server"),
        ({"response": {"body": "{{ $nope }}"}}, False, "trigger.config", "unknown variable $nope"),
        ({"timeout_response": {"body": {"x": "{{ $execution.id"}}}, True, "trigger.config", "unclosed"),
        ({"keep_files": "yes"}, False, "trigger.config.keep_files", "is not of type 'boolean'"),
        ({"response": {"body": "{{ $workflow.key }}"}}, False, "trigger.config", "'$workflow.key' is not known when the trigger answers"),
        ({"colour": "blue"}, False, "trigger.config", "'colour' was unexpected"),
        ({"rate_limit": {"requests": 0, "per": 1}}, False, "trigger.config.rate_limit.requests", "less than the minimum"),
        ({"rate_limit": {"requests": 5}}, False, "trigger.config.rate_limit", "'per' is a required property"),
    ],
)
async def test_config_problems_are_located(
    hookline: HooklineTestApp, config: dict[str, Any], sync: bool, location: str, fragment: str
) -> None:
    response = await hookline.api("POST", "/api/workflows", json=definition(config, sync=sync))
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p["location"] == location and fragment in p["message"] for p in problems), problems


async def test_a_full_config_is_accepted(hookline: HooklineTestApp) -> None:
    config = {
        "methods": ["POST", "PUT"],
        "auth": {"basic": {"username": {"env": "HOOK_USER"}, "password": "secret"}},
        "cors": {"origins": ["https://app.example"], "headers": ["Content-Type"], "max_age": 60, "credentials": True},
        "content_types": ["application/json", "application/*+json"],
        "max_body_size": 65536,
        "keep_files": False,
        "headers": [{"path": "X-Signature", "required": True, "alias": "sig"}],
        "query": [{"path": "page", "type": "integer"}],
        "body": [{"path": "order.id", "required": True, "alias": "order_id", "type": "string", "description": "the order"}],
        "response": {"status": 202, "headers": {"X-Ack": "1"}, "body": {"execution": "{{ $execution.id }}"}},
    }
    response = await hookline.api("POST", "/api/workflows", json=definition(config))
    assert response.status_code == 201, response.text
    sync = {k: v for k, v in config.items() if k != "response"} | {"timeout": 2.5, "timeout_response": {"status": 202}}
    response = await hookline.api("PUT", "/api/workflows/w", json=definition(sync, sync=True))
    assert response.status_code == 200, response.text


async def test_a_manual_run_applies_the_declared_parameters(hookline: HooklineTestApp) -> None:
    config = {"body": [{"path": "n", "type": "integer", "required": True, "alias": "count"}]}
    await hookline.apply({"key": "m", "trigger": {"type": "webhook", "config": config}})
    missing = await hookline.api("POST", "/api/workflows/m/run", json={"body": {}})
    assert missing.status_code == 400 and missing.json()["message"] == "Missing required parameter(s)"
    wrong = await hookline.api("POST", "/api/workflows/m/run", json={"body": {"n": "2"}})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_parameters"
    ran = await hookline.api("POST", "/api/workflows/m/run", json={"body": {"n": 2}})
    assert ran.json()["context"]["params"] == {"count": 2}
    url = f"/api/webhooks/m/executions/{ran.json()['id']}"
    assert (await hookline.client.get(url)).status_code == 403  # no token
    token = await status_token("m", ran.json()["id"])
    status = await hookline.client.get(url, params={"token": token})
    assert status.status_code == 404  # a manual run is not the webhook's to show


async def status_token(key: str, execution_id: int) -> str:
    """The token of a status URL, as the webhook signs it."""
    digest = hmac.new(await server_secret("webhook-status"), f"{key}/{execution_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
