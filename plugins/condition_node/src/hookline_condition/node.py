"""The ``condition`` node type: nested ``and``/``or`` groups of comparisons."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from hookline import NodeError, NodeResult, NodeRun, NodeType
from hookline_condition.operators import OPERATORS


def _rule_schema() -> dict[str, Any]:
    """A group (``and`` / ``or``) or a comparison. if/then/else rather than oneOf, so that an
    error names what is wrong with the kind of rule written, not every kind it is not."""
    group = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/rule"}}
    comparison = {
        "type": "object",
        "required": ["left", "op", "right"],
        "additionalProperties": False,
        "properties": {"left": {}, "op": {"enum": sorted(OPERATORS)}, "right": {}},
    }
    return {
        "type": "object",
        "if": {"required": ["and"]},
        "then": {"additionalProperties": False, "properties": {"and": group}},
        "else": {
            "if": {"required": ["or"]},
            "then": {"additionalProperties": False, "properties": {"or": group}},
            "else": comparison,
        },
    }


class ConditionNode(NodeType):
    """Evaluates ``rules`` and runs the ``true`` or the ``false`` branch, then the nodes after it.

    A rule is a comparison ``{left, op, right}`` (each side a literal or a ``{{ }}`` template)
    or a group ``{and: [rules]}`` / ``{or: [rules]}``, nested as deep as needed. Groups stop at
    the first rule that decides them. The result, ``$nodes.<key>.result``, is true or false;
    ``checks`` lists each comparison made with its resolved values.
    """

    name = "condition"
    title = "Condition: branch on comparisons"
    branches = ("true", "false")
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["rules"],
        "additionalProperties": False,
        "properties": {"rules": {"$ref": "#/$defs/rule"}},
        "$defs": {"rule": _rule_schema()},
    }

    async def execute(self, run: NodeRun) -> NodeResult:
        checks: list[dict[str, Any]] = []
        outcome = _evaluate(run.config["rules"], checks)
        return NodeResult(result={"result": outcome, "checks": checks}, branch="true" if outcome else "false")


def _evaluate(rule: Mapping[str, Any], checks: list[dict[str, Any]]) -> bool:
    if "and" in rule:
        return all(_evaluate(r, checks) for r in rule["and"])
    if "or" in rule:
        return any(_evaluate(r, checks) for r in rule["or"])
    left, op, right = rule["left"], rule["op"], rule["right"]
    try:
        outcome = OPERATORS[op](left, right)
    except TypeError as exc:
        raise NodeError(f"cannot evaluate {op}: {exc}", left=left, op=op, right=right) from None
    checks.append({"left": left, "op": op, "right": right, "result": outcome})
    return outcome
