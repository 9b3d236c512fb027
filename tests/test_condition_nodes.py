"""The condition and switch nodes in workflows: groups, modes, cases, the execution history,
save-time refusals, and operators added by another plugin."""

from __future__ import annotations

from typing import Any, Callable

import pluggy
import pytest

from hookline import DefinitionError, NodeType, PluginError, hookimpl
from hookline.testing import HooklineTestApp
from hookline_condition import ConditionNode, Incomparable, SwitchNode, collect_operators, hookspecs
from hookline_condition.registry import each_plugin


def workflow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"key": "c", "trigger": {"type": "webhook"}, "nodes": list(nodes)}


def condition(config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": "check", "type": "condition", "config": config, **extra}


def leaf(path: str, op: str, right: Any = None, **options: Any) -> dict[str, Any]:
    rule = {"left": "{{ $context.body.%s }}" % path, "op": op, **options}
    if right is not None:
        rule["right"] = right
    return rule


async def test_groups_short_circuit_and_record_each_comparison(hookline: HooklineTestApp) -> None:
    rules = {"or": [
        {"and": [leaf("a", "eq", 1), leaf("b", "gt", 5)]},
        leaf("c", "contains", "X", case_sensitive=False),
        leaf("never", "gt", 1),
    ]}
    execution = await hookline.run_workflow(workflow(condition({"rules": rules})), {"body": {"a": 1, "b": 2, "c": "xyz"}})
    job = execution["jobs"][0]
    assert job["result"]["result"] is True
    assert job["result"]["checks"] == [
        {"left": 1, "op": "eq", "right": 1, "result": True},
        {"left": 2, "op": "gt", "right": 5, "result": False},
        {"left": "xyz", "op": "contains", "right": "X", "result": True, "case_sensitive": False},
    ]
    assert job["branch"] == "true"


async def test_not_and_deep_nesting(hookline: HooklineTestApp) -> None:
    rule: dict[str, Any] = leaf("n", "eq", "5", loose=True)
    for _ in range(10):
        rule = {"not": {"not": rule}}
    rules = {"and": [rule, {"not": leaf("n", "lt", 0)}]}
    execution = await hookline.run_workflow(workflow(condition({"rules": rules})), {"body": {"n": 5}})
    result = execution["jobs"][0]["result"]
    assert result["result"] is True
    assert result["checks"][0]["loose"] is True


async def test_branch_mode_runs_the_branch_then_the_nodes_after(hookline: HooklineTestApp) -> None:
    node = condition(
        {"rules": leaf("amount", "gt", 100)},
        branches={"true": [{"key": "high", "type": "response", "config": {"body": "high"}}],
                  "false": [{"key": "low", "type": "condition", "config": {"rules": {"left": 1, "op": "eq", "right": 1}}}]},
    )
    after = {"key": "after", "type": "condition", "config": {"rules": {"left": "{{ $nodes.check.result }}", "op": "is_false"}}}
    definition = {**workflow(node, after), "sync": True}
    execution = await hookline.run_workflow(definition, {"body": {"amount": 5}})
    assert [job["node"] for job in execution["jobs"]] == ["check", "low", "after"]
    assert execution["jobs"][2]["result"]["result"] is True


async def test_continue_mode_goes_on_when_true(hookline: HooklineTestApp) -> None:
    after = {"key": "after", "type": "condition", "config": {"rules": {"left": 1, "op": "eq", "right": 1}}}
    execution = await hookline.run_workflow(
        workflow(condition({"mode": "continue", "rules": leaf("ok", "is_true")}), after), {"body": {"ok": True}}
    )
    assert execution["status"] == "succeeded"
    assert [job["node"] for job in execution["jobs"]] == ["check", "after"]
    assert execution["jobs"][0]["branch"] is None
    assert "stopped" not in execution["jobs"][0]["result"]


async def test_continue_mode_ends_the_execution_when_false_and_says_why(hookline: HooklineTestApp) -> None:
    after = {"key": "after", "type": "condition", "config": {"rules": {"left": 1, "op": "eq", "right": 1}}}
    execution = await hookline.run_workflow(
        workflow(condition({"mode": "continue", "rules": leaf("ok", "is_true")}), after), {"body": {"ok": "yes"}}
    )
    assert execution["status"] == "succeeded"
    assert [job["node"] for job in execution["jobs"]] == ["check"]
    result = execution["jobs"][0]["result"]
    assert result["result"] is False and result["stopped"] is True
    assert result["reason"] == "condition 'check' was false in mode 'continue'; the execution ended here"
    assert result["checks"] == [{"left": "yes", "op": "is_true", "right": None, "result": False}]


async def test_an_incomparable_value_fails_the_execution(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(workflow(condition({"rules": leaf("n", "gt", 1)})), {"body": {"n": "many"}})
    assert execution["status"] == "failed"
    assert execution["jobs"][0]["status"] == "failed"
    assert execution["error"]["message"] == (
        'cannot evaluate gt: "many" (string) and 1 (number) cannot be ordered; compare two numbers or two strings'
    )
    assert execution["error"]["at"] == "rules"


async def test_a_hostile_regex_fails_the_job_not_the_server(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        workflow(condition({"rules": {"left": "{{ $context.body.s }}", "op": "regex", "right": "{{ $context.body.p }}"}})),
        {"body": {"s": "a" * 5000 + "!", "p": "(a|aa)+$"}},
    )
    assert execution["status"] == "failed"
    assert "was stopped" in execution["error"]["message"]


# --- switch ---------------------------------------------------------------------------------


def switch(**extra: Any) -> dict[str, Any]:
    cases = [
        {"label": "big", "rules": leaf("amount", "gte", 1000)},
        {"label": "medium", "rules": leaf("amount", "between", [100, 999])},
    ]
    return {"key": "route", "type": "switch", "config": {"cases": cases}, **extra}


@pytest.mark.parametrize(
    "amount, branch, ran, checked",
    [(5000, "case1", "big", 1), (500, "case2", "medium", 2), (5, "otherwise", "small", 2)],
)
async def test_switch_runs_the_first_matching_case(
    hookline: HooklineTestApp, amount: int, branch: str, ran: str, checked: int
) -> None:
    def step(key: str) -> list[dict[str, Any]]:
        return [{"key": key, "type": "condition", "config": {"rules": {"left": 1, "op": "eq", "right": 1}}}]

    node = switch(branches={"case1": step("big"), "case2": step("medium"), "otherwise": step("small")})
    execution = await hookline.run_workflow(workflow(node), {"body": {"amount": amount}})
    route = execution["jobs"][0]
    assert route["branch"] == branch and route["result"]["result"] == branch
    assert route["result"]["label"] == {"case1": "big", "case2": "medium"}.get(branch)
    assert [check["case"] for check in route["result"]["checks"]] == list(range(1, checked + 1))
    assert execution["jobs"][1]["node"] == ran


# --- refused when saved ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "node, problem",
    [
        (condition({"rules": {"left": 1, "op": "bigger", "right": 2}}),
         "nodes[0].config.rules.op: 'bigger' is not one of ['contains', 'eq', 'gt', 'gte', 'lt', 'lte', 'ne', 'between',"),
        (condition({"rules": {"and": [{"left": 1, "op": "exists", "right": 2}]}}),
         "nodes[0].config: rules.and[0].right: operator 'exists' takes no 'right'; remove it"),
        (condition({"rules": {"not": {"left": 1, "op": "gt"}}}),
         "nodes[0].config: rules.not: operator 'gt' needs a 'right' value"),
        (condition({"rules": {"left": "x", "op": "regex", "right": "(unclosed"}}),
         "nodes[0].config: rules.right: invalid regular expression \"(unclosed\" (string): missing )"),
        (condition({"rules": {"left": "x", "op": "regex", "right": "a" * 501}}),
         "nodes[0].config: rules.right: the regular expression is 501 characters long; the limit is 500"),
        (condition({"rules": {"left": 1, "op": "between", "right": [1]}}),
         "nodes[0].config: rules.right: between needs right to be [low, high], not [1] (array)"),
        (condition({"rules": {"left": 1, "op": "is_type", "right": "int"}}),
         "nodes[0].config: rules.right: is_type needs right to be one of string, number, integer, boolean, array, object, null"),
        (condition({"rules": {"left": 1, "op": "eq", "right": 1, "loose": "yes"}}),
         "nodes[0].config.rules.loose: 'yes' is not of type 'boolean'"),
        (condition({"mode": "stop", "rules": {"left": 1, "op": "eq", "right": 1}}),
         "nodes[0].config.mode: 'stop' is not one of ['branch', 'continue']"),
        (condition({"mode": "continue", "rules": {"left": 1, "op": "eq", "right": 1}}, branches={"true": []}),
         "nodes[0].config: mode 'continue' runs no branches"),
        ({"key": "route", "type": "switch", "config": {"cases": [{"rules": {"left": 1, "op": "nope", "right": 1}}]}},
         "nodes[0].config.cases[0].rules.op: 'nope' is not one of ['contains',"),
        (switch(branches={"case3": []}),
         "nodes[0].config: branch 'case3' has no case: this switch has 2 case(s), case1 to case2"),
        (switch(branches={"case21": []}),
         "nodes[0].branches.case21: node type 'switch' has no branch 'case21'"),
    ],
)
async def test_mistakes_are_refused_when_saved(hookline: HooklineTestApp, node: dict[str, Any], problem: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        await hookline.apply(workflow(node))
    assert any(str(p).startswith(problem) for p in caught.value.problems), caught.value.problems


async def test_templated_regex_is_checked_when_run_not_saved(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        workflow(condition({"rules": {"left": "x", "op": "regex", "right": "{{ $context.body.p }}"}})), {"body": {"p": "("}}
    )
    assert execution["status"] == "failed"
    assert "invalid regular expression" in execution["error"]["message"]


# --- operators from other plugins -----------------------------------------------------------


class EvenOperators:
    """A third-party plugin adding operators to the condition node."""

    @hookimpl
    def register_condition_operators(self, register: Callable[..., None]) -> None:
        def is_even(left: Any, right: Any, options: Any) -> bool:
            if not isinstance(left, int):
                raise Incomparable(f"{left!r} is not a whole number")
            return left % 2 == 0

        register("is_even", is_even, unary=True, description="an even whole number")


plugin_each = each_plugin


@pytest.fixture
def operator_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("hookline")
    pm.add_hookspecs(hookspecs)
    return pm


def test_a_plugin_adds_an_operator(operator_pm: pluggy.PluginManager) -> None:
    # hookspec: register_condition_operators
    operator_pm.register(EvenOperators(), name="even")
    table = collect_operators(plugin_each(operator_pm))
    assert table["is_even"].unary and table.owner("is_even") == "even"
    assert table["is_even"].function(4, None, None) is True
    assert "eq" in table and table.owner("eq") == "condition"


def test_a_duplicate_operator_names_both_plugins(operator_pm: pluggy.PluginManager) -> None:
    class Clash:
        @hookimpl
        def register_condition_operators(self, register: Callable[..., None]) -> None:
            register("is_even", lambda left, right, options: True)

    operator_pm.register(EvenOperators(), name="even")
    operator_pm.register(Clash(), name="clash")
    with pytest.raises(PluginError, match="condition operator 'is_even' from plugin '(clash|even)' is already registered by plugin '(even|clash)'"):
        collect_operators(plugin_each(operator_pm))


def test_a_builtin_name_cannot_be_taken(operator_pm: pluggy.PluginManager) -> None:
    class Taker:
        @hookimpl
        def register_condition_operators(self, register: Callable[..., None]) -> None:
            register("eq", lambda left, right, options: True)

    operator_pm.register(Taker(), name="taker")
    with pytest.raises(PluginError, match="'eq' from plugin 'taker' is already registered by plugin 'condition'"):
        collect_operators(plugin_each(operator_pm))


class ExtendedNodes:
    """Stands in for the condition plugin once the host hands it hook calls: node types bound to
    a table with a plugin's operator, registered under other names to sit beside the built-ins."""

    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        pm = pluggy.PluginManager("hookline")
        pm.add_hookspecs(hookspecs)
        pm.register(EvenOperators(), name="even")
        table = collect_operators(plugin_each(pm))
        register(type("ExtCondition", (ConditionNode.using(table),), {"name": "condition_ext"}))
        register(type("ExtSwitch", (SwitchNode.using(table),), {"name": "switch_ext"}))


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [ExtendedNodes(), EvenOperators()]


async def test_the_installed_condition_node_uses_operators_from_plugins(hookline: HooklineTestApp) -> None:
    # hookspec: register_condition_operators (through the host: register_hookspecs)
    node = {"key": "check", "type": "condition", "config": {"rules": leaf("n", "is_even")}}
    execution = await hookline.run_workflow(workflow(node), {"body": {"n": 4}})
    assert execution["jobs"][0]["result"]["checks"] == [{"left": 4, "op": "is_even", "right": None, "result": True}]
    with pytest.raises(DefinitionError) as caught:
        await hookline.apply(workflow({**node, "config": {"rules": leaf("n", "is_odd")}}))
    assert "'is_odd' is not one of [" in str(caught.value.problems[0]) and "'is_even'" in str(caught.value.problems[0])


async def test_a_plugin_operator_works_in_workflows_and_unknown_ones_list_it(hookline: HooklineTestApp) -> None:
    node = {"key": "check", "type": "condition_ext", "config": {"rules": leaf("n", "is_even")}}
    execution = await hookline.run_workflow(workflow(node), {"body": {"n": 4}})
    assert execution["jobs"][0]["result"]["checks"][0]["result"] is True
    failed = await hookline.run_workflow(workflow(node), {"body": {"n": "x"}})
    assert failed["error"]["message"] == "cannot evaluate is_even: 'x' is not a whole number"
    with pytest.raises(DefinitionError) as caught:
        await hookline.apply(workflow({**node, "config": {"rules": leaf("n", "is_odd")}}))
    assert "is_even" in str(caught.value.problems[0])
    switch_node = {"key": "route", "type": "switch_ext", "config": {"cases": [{"rules": leaf("n", "is_even")}]}}
    routed = await hookline.run_workflow(workflow(switch_node), {"body": {"n": 2}})
    assert routed["jobs"][0]["branch"] == "case1"
