"""The management API fuzzed from its own OpenAPI document (schemathesis), against a real
``hookline serve`` on SQLite with a few workflows and executions, so that the paths with a key or an
id reach real data. Every operation of ``/openapi.json`` gets generated requests with the API
token; no answer may be a server error, and the answers must match what the document declares."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import sync_workflow
from hookline.testing import TEST_TOKEN, HooklineServer

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
#: Examples per operation and check set; ~25 operations.
EXAMPLES = 40

SEEDS: list[dict[str, Any]] = [
    sync_workflow("pay"),
    {"key": "events", "trigger": {"type": "webhook"}},
    {"key": "dormant", "enabled": False, "trigger": {"type": "webhook", "config": {"methods": ["GET", "POST"]}}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    directory = tmp_path_factory.mktemp("fuzz-api")
    server = HooklineServer(f"sqlite://{directory / 'hookline.db'}", cwd=directory).start(directory / "server.log")
    try:
        with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as client:
            for definition in SEEDS:
                assert client.post("/api/workflows", json=definition).status_code == 201
            for amount in (50, 150):
                assert client.post("/api/webhooks/pay", json={"id": "A", "amount": amount}).status_code < 300
            assert client.post("/api/workflows/events/run", json={"body": {}}).status_code == 200
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def schema(server: HooklineServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")


def fuzz(schema: schemathesis.BaseSchema, base_url: str, checks: list[Callable[..., Any]]) -> dict[str, str]:
    """Run every operation with ``checks``; the failures by operation (empty when none)."""
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=AUTH, checks=checks, timeout=10)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported all together below
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    return failures


def report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"== {label}\n{text[:3000]}" for label, text in failures.items())


@pytest.mark.server
def test_no_operation_answers_with_a_server_error(schema: schemathesis.BaseSchema, server: HooklineServer) -> None:
    failures = fuzz(schema, server.base_url, [not_a_server_error])
    assert not failures, report(failures)


@pytest.mark.server
def test_answers_match_the_openapi_document(schema: schemathesis.BaseSchema, server: HooklineServer) -> None:
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance,
              response_headers_conformance]
    failures = fuzz(schema, server.base_url, checks)
    assert not failures, report(failures)


# --- What the fuzzing found, fixed: regression tests -------------------------------------------


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/workflows/" + "a" * 200, 404),
    ("DELETE", "/api/workflows/" + "a" * 200, 404),
    ("POST", "/api/workflows/" + "a" * 200 + "/run", 404),
    ("GET", "/api/workflows/" + "a" * 200 + "/webhook-capture", 404),
    ("POST", "/api/webhooks/" + "a" * 200, 404),
    ("GET", "/api/workflows?q=%00", 400),
    ("GET", "/api/workflows?cursor=99999999999999999999999", 400),
    ("GET", "/api/executions?cursor=99999999999999999999999", 400),
    ("GET", "/api/executions?cursor=-5", 400),
])
async def test_lookups_the_database_cannot_hold_are_refused(hookline: Any, method: str, path: str, status: int) -> None:
    response = await hookline.api(method, path, json={} if method == "POST" else None)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("value", ["7d x", "1e20", 1e20, "99999999999999w", 1e-7, 1e13])
async def test_a_retention_that_is_not_a_usable_duration_is_a_definition_problem(hookline: Any, value: Any) -> None:
    definition = {"key": "kept", "trigger": {"type": "webhook"}, "retention": {"default": value}}
    response = await hookline.api("POST", "/api/workflows", json=definition)
    assert response.status_code == 422, response.text
    assert [p["location"] for p in response.json()["problems"]] == ["retention.default"]


@pytest.mark.parametrize("value", [1e-5, 3e9, "1.5s", "5200w", "forever"])
async def test_a_retention_round_trips_through_its_stored_form(hookline: Any, value: Any) -> None:
    definition = {"key": "kept", "trigger": {"type": "webhook"}, "retention": {"default": value}}
    assert (await hookline.api("POST", "/api/workflows", json=definition)).status_code == 201
    assert (await hookline.webhook("kept", json={})).status_code == 200


# --- What the fuzzing found: regressions (in-process, on both databases) ---------------------


@pytest.mark.parametrize("path", ["/api/executions/99999999999999999999999", "/api/webhooks/pay/executions/99999999999999999999999"])
async def test_an_execution_id_beyond_64_bits_is_not_found(hookline: Any, path: str) -> None:
    await hookline.apply(sync_workflow("pay"))
    response = await hookline.api("GET", path)
    assert response.status_code == (403 if "webhooks" in path else 404), response.text  # status URLs need a token


async def test_a_workflow_filter_longer_than_any_key_is_not_a_server_error(hookline: Any) -> None:
    response = await hookline.api("GET", "/api/executions", params={"workflow": "a" * 200})
    assert response.status_code == 404 and response.json()["error"] == "not_found", response.text
