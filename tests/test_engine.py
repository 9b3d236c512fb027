"""The engine through manual runs (``hookline run``'s path): order, branches, end, failures,
timeouts, and the jobs recorded for each, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from hookline import NodeError, NodeResult, NodeRun, NodeType, hookimpl
from hookline.testing import HooklineTestApp


class Record(NodeType):
    name = "record"

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result={"value": run.config.get("value")})


class Pick(NodeType):
    name = "pick"
    branches = ("a", "b")

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result={"picked": run.config["branch"]}, branch=run.config["branch"])


class Stop(NodeType):
    name = "stop"

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result="stopped", end=True)


class Fail(NodeType):
    name = "fail"

    async def execute(self, run: NodeRun) -> NodeResult:
        raise NodeError("the card was declined", code="card_declined")


class Crash(NodeType):
    name = "crash"

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result=1 / 0)


class Sleep(NodeType):
    name = "sleep"

    async def execute(self, run: NodeRun) -> NodeResult:
        await asyncio.sleep(run.config["seconds"])
        return NodeResult()


class Unserialisable(NodeType):
    name = "unserialisable"

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result={"when": object()})


class WrongBranch(NodeType):
    name = "wrong_branch"
    branches = ("yes",)

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(branch="maybe")


class TestNodes:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        for node_type in (Record, Pick, Stop, Fail, Crash, Sleep, Unserialisable, WrongBranch):
            register(node_type)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [TestNodes()]


def workflow(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": "wf", "trigger": {"type": "webhook"}, "nodes": list(nodes), **extra}


def node(key: str, type_: str = "record", **config: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "config": config}


def jobs_of(execution: dict[str, Any]) -> list[tuple[str, str]]:
    return [(job["node"], job["status"]) for job in execution["jobs"]]


async def test_nodes_run_in_order_and_see_earlier_results(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        workflow(node("first", value="{{ $context.body.x }}"), node("second", value="{{ $nodes.first.value }}!")),
        {"body": {"x": "hi"}},
    )
    assert execution["status"] == "succeeded"
    assert jobs_of(execution) == [("first", "succeeded"), ("second", "succeeded")]
    assert execution["jobs"][1]["result"] == {"value": "hi!"}
    assert execution["jobs"][1]["input"] == {"value": "hi!"}
    assert execution["mode"] == "manual"


async def test_the_chosen_branch_runs_then_the_nodes_after(hookline: HooklineTestApp) -> None:
    picker = {
        "key": "pick",
        "type": "pick",
        "config": {"branch": "{{ $context.body.way }}"},
        "branches": {
            "a": [node("in-a"), {"key": "nested", "type": "pick", "config": {"branch": "b"}, "branches": {"b": [node("in-a-b")]}}],
            "b": [node("in-b")],
        },
    }
    execution = await hookline.run_workflow(workflow(picker, node("after")), {"body": {"way": "a"}})
    assert [n for n, _ in jobs_of(execution)] == ["pick", "in-a", "nested", "in-a-b", "after"]
    assert execution["jobs"][0]["branch"] == "a"

    execution = await hookline.run_workflow(workflow(picker, node("after")), {"body": {"way": "b"}})
    assert [n for n, _ in jobs_of(execution)] == ["pick", "in-b", "after"]


async def test_a_branch_without_nodes_just_continues(hookline: HooklineTestApp) -> None:
    picker = {"key": "pick", "type": "pick", "config": {"branch": "b"}, "branches": {"a": [node("in-a")]}}
    execution = await hookline.run_workflow(workflow(picker, node("after")))
    assert [n for n, _ in jobs_of(execution)] == ["pick", "after"]


async def test_a_node_can_end_the_workflow_even_inside_a_branch(hookline: HooklineTestApp) -> None:
    picker = {"key": "pick", "type": "pick", "config": {"branch": "a"}, "branches": {"a": [node("stop", "stop"), node("never")]}}
    execution = await hookline.run_workflow(workflow(picker, node("after")))
    assert execution["status"] == "succeeded"
    assert [n for n, _ in jobs_of(execution)] == ["pick", "stop"]


async def test_a_node_error_fails_the_execution_naming_the_node(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(workflow(node("one"), node("charge", "fail"), node("never")))
    assert execution["status"] == "failed"
    assert execution["error"] == {"node": "charge", "error": "node_error", "message": "the card was declined", "code": "card_declined"}
    assert jobs_of(execution) == [("one", "succeeded"), ("charge", "failed")]
    assert execution["jobs"][1]["error"]["message"] == "the card was declined"


@pytest.mark.parametrize(
    "type_, fragment",
    [
        ("crash", "ZeroDivisionError: division by zero"),
        ("unserialisable", "not JSON-serialisable"),
        ("wrong_branch", "chose branch 'maybe', which it does not declare"),
    ],
)
async def test_a_crashing_node_type_ends_in_error_without_a_traceback(
    hookline: HooklineTestApp, type_: str, fragment: str
) -> None:
    execution = await hookline.run_workflow(workflow(node("bad", type_)))
    assert execution["status"] == "error"
    assert execution["error"]["node"] == "bad"
    assert fragment in execution["error"]["message"]
    assert "Traceback" not in str(execution)
    assert jobs_of(execution) == [("bad", "error")]


async def test_the_workflow_timeout_ends_it_timed_out(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(workflow(node("one"), node("slow", "sleep", seconds=5), timeout=0.2))
    assert execution["status"] == "timed_out"
    assert execution["error"]["node"] == "slow"
    assert "0.2 s" in execution["error"]["message"]
    assert jobs_of(execution) == [("one", "succeeded"), ("slow", "timed_out")]
    assert execution["duration_ms"] < 4000


async def test_a_template_on_a_missing_value_gives_null(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(workflow(node("one", value="{{ $context.body.nothing }}")))
    assert execution["jobs"][0]["result"] == {"value": None}


async def test_execution_and_workflow_variables(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        workflow(node("one", value={"id": "{{ $execution.id }}", "wf": "{{ $workflow.key }}", "v": "{{ $workflow.version }}"}))
    )
    assert execution["jobs"][0]["result"]["value"] == {"id": execution["id"], "wf": "wf", "v": 1}


class OwnTimeout(NodeType):
    name = "own_timeout"

    async def execute(self, run: NodeRun) -> NodeResult:
        raise TimeoutError("the payment service did not answer")


class Detailed(NodeType):
    name = "detailed"

    async def execute(self, run: NodeRun) -> NodeResult:
        raise NodeError("refused", when=object())


@pytest.mark.parametrize("hookline_plugins", [[TestNodes(), type("More", (), {
    "register_node_types": hookimpl(lambda self, register: [register(OwnTimeout), register(Detailed)])})()]])
async def test_a_nodes_own_timeout_is_its_error_not_the_workflows(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(workflow(node("call", "own_timeout")))
    assert execution["status"] == "error"
    assert "TimeoutError: the payment service did not answer" in execution["error"]["message"]
    assert jobs_of(execution) == [("call", "error")]

    detailed = await hookline.run_workflow(workflow(node("d", "detailed")))
    assert detailed["status"] == "failed"
    assert detailed["error"]["when"].startswith("<object object at")


class BrokenInit(NodeType):
    name = "broken_init"

    def __init__(self, config: Any) -> None:
        raise RuntimeError("cannot prepare")


@pytest.mark.parametrize("hookline_plugins", [[type("BrokenPlugin", (), {
    "register_node_types": hookimpl(lambda self, register: register(BrokenInit))})()]])
async def test_a_node_type_that_cannot_be_prepared_makes_the_workflow_unavailable(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "wf", "sync": True, "trigger": {"type": "webhook"}, "nodes": [node("b", "broken_init")]})
    answer = await hookline.webhook("wf", json={})
    assert (answer.status_code, answer.json()["error"]) == (503, "workflow_unavailable")
    # The caller is not told about the server's node types; the operator is (log, API).
    assert "broken_init" not in answer.text
    shown = (await hookline.api("GET", "/api/workflows/wf")).json()
    assert shown["runnable"] is False
    assert shown["problem"] == "nodes[0]: node type 'broken_init' could not be prepared: RuntimeError: cannot prepare"
    run = await hookline.api("POST", "/api/workflows/wf/run", json={})
    assert run.status_code == 422
    assert "node type 'broken_init' could not be prepared" in run.json()["message"]
