from __future__ import annotations

from typing import Any

import pytest

from hookline import DefinitionError
from hookline.testing import HooklineTestApp


def workflow(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": "test", "trigger": {"type": "webhook"}, "nodes": list(nodes), **extra}


async def test_set_resolves_its_values(hookline: HooklineTestApp) -> None:
    values = {"id": "{{ $context.body.id }}", "label": "Order {{ $context.body.id }}", "fixed": [1, 2]}
    execution = await hookline.run_workflow(
        workflow({"key": "order", "type": "set", "config": {"values": values}}), {"body": {"id": 7}}
    )
    assert execution["status"] == "succeeded"
    assert execution["jobs"][0]["result"] == {"id": 7, "label": "Order 7", "fixed": [1, 2]}


async def test_a_console_shows_the_values_as_a_table(hookline: HooklineTestApp) -> None:
    hostile = "<script>alert(1)</script>"
    execution = await hookline.run_workflow(
        workflow({"key": "order", "type": "set", "config": {"values": {"note": "{{ $context.body.note }}"}}}),
        {"body": {"note": hostile}},
    )
    # What a console calls for each job of an execution's page (the render_job_result hook).
    html = hookline.host.hooks.render_job_result(execution["jobs"][0], hookline.host)
    assert html is not None and "<caption>Values set</caption>" in html
    assert "&lt;script&gt;" in html and "<script>" not in html


async def test_later_nodes_read_the_values(hookline: HooklineTestApp) -> None:
    await hookline.apply(
        workflow(
            {"key": "order", "type": "set", "config": {"values": {"label": "Order {{ $context.body.id }}"}}},
            {"key": "reply", "type": "response", "config": {"body": {"label": "{{ $nodes.order.label }}"}}},
            key="label",
            sync=True,
        )
    )
    response = await hookline.webhook("label", json={"id": 7})
    assert response.json() == {"label": "Order 7"}


async def test_set_refuses_names_that_templates_cannot_read_simply(hookline: HooklineTestApp) -> None:
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(workflow({"key": "order", "type": "set", "config": {"values": {"a-b": 1}}}))
    assert [p.location for p in refused.value.problems] == ["nodes[0].config.values"]


async def test_delay_waits(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(workflow({"key": "wait", "type": "delay", "config": {"seconds": 0.05}}))
    assert execution["status"] == "succeeded"
    assert execution["jobs"][0]["result"] == {"waited": 0.05}


async def test_delay_as_long_as_the_timeout_is_refused(hookline: HooklineTestApp) -> None:
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(workflow({"key": "wait", "type": "delay", "config": {"seconds": 60}}, timeout=5))
    [problem] = refused.value.problems
    assert problem.location == "nodes[0].config"
    assert problem.message.startswith("waits 60 s but the workflow's timeout is 5 s")


async def test_delay_fails_on_a_value_that_is_not_a_number(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        workflow({"key": "wait", "type": "delay", "config": {"seconds": "{{ $context.body.wait }}"}}), {"body": {}}
    )
    assert execution["status"] == "failed"
    assert execution["error"] == {
        "node": "wait",
        "error": "node_error",
        "message": "seconds must be a positive number, got null",
        "seconds": None,
    }
    assert execution["jobs"][0]["status"] == "failed"


async def test_a_workflow_that_outlives_its_timeout_is_timed_out(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        workflow({"key": "wait", "type": "delay", "config": {"seconds": "{{ $context.body.wait }}"}}, timeout=0.1),
        {"body": {"wait": 5}},
    )
    assert execution["status"] == "timed_out"
    assert execution["jobs"][0]["status"] == "timed_out"
