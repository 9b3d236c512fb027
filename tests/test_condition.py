"""The condition node's operators and groups (issue 4 takes it to full depth)."""

from __future__ import annotations

from typing import Any

import pytest

from hookline_condition.operators import OPERATORS
from hookline.testing import HooklineTestApp


@pytest.mark.parametrize(
    "left, op, right, expected",
    [
        (1, "eq", 1.0, True),
        ("1", "eq", 1, False),
        (True, "eq", 1, False),
        ([1, {"a": [2]}], "eq", [1.0, {"a": [2]}], True),
        ([1], "eq", [True], False),
        ({"a": 1}, "ne", {"a": 1, "b": 2}, True),
        (None, "eq", None, True),
        (150, "gt", 100, True),
        (100, "gte", 100, True),
        ("apple", "lt", "banana", True),
        (2.5, "lte", 2, False),
        ("hello world", "contains", "world", True),
        ([1, 2, 3], "contains", 2.0, True),
        ([[1]], "contains", [True], False),
        ({"id": 1}, "contains", "id", True),
    ],
)
def test_operators(left: Any, op: str, right: Any, expected: bool) -> None:
    assert OPERATORS[op](left, right) is expected


@pytest.mark.parametrize(
    "left, op, right, message",
    [
        (None, "gt", 100, "null (null) and 100 (number) cannot be ordered"),
        ("150", "gt", 100, '"150" (string) and 100 (number) cannot be ordered'),
        (True, "lt", 2, "true (boolean) and 2 (number) cannot be ordered"),
        (5, "contains", 1, "5 (number) cannot contain anything"),
        ("abc", "contains", 1, "a string can only contain a string, not 1 (number)"),
    ],
)
def test_incomparable_values_are_a_clear_error(left: Any, op: str, right: Any, message: str) -> None:
    with pytest.raises(TypeError) as caught:
        OPERATORS[op](left, right)
    assert message in str(caught.value)


async def test_groups_short_circuit_and_record_each_comparison(hookline: HooklineTestApp) -> None:
    rules = {"or": [
        {"and": [{"left": "{{ $context.body.a }}", "op": "eq", "right": 1}, {"left": "{{ $context.body.b }}", "op": "gt", "right": 5}]},
        {"left": "{{ $context.body.c }}", "op": "contains", "right": "x"},
        {"left": "{{ $context.body.never }}", "op": "gt", "right": 1},
    ]}
    execution = await hookline.run_workflow(
        {"key": "c", "trigger": {"type": "webhook"}, "nodes": [{"key": "check", "type": "condition", "config": {"rules": rules}}]},
        {"body": {"a": 1, "b": 2, "c": "xyz"}},
    )
    result = execution["jobs"][0]["result"]
    assert result["result"] is True
    assert [(c["left"], c["op"], c["right"], c["result"]) for c in result["checks"]] == [
        (1, "eq", 1, True), (2, "gt", 5, False), ("xyz", "contains", "x", True)
    ]
    assert execution["jobs"][0]["branch"] == "true"


async def test_an_incomparable_value_fails_the_execution(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(
        {"key": "c", "trigger": {"type": "webhook"}, "nodes": [
            {"key": "check", "type": "condition", "config": {"rules": {"left": "{{ $context.body.n }}", "op": "gt", "right": 1}}}]},
        {"body": {"n": "many"}},
    )
    assert execution["status"] == "failed"
    assert execution["error"]["message"] == 'cannot evaluate gt: "many" (string) and 1 (number) cannot be ordered; compare two numbers or two strings'
