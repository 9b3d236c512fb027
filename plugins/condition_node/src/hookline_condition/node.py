"""The ``condition`` node type: nested ``and``/``or``/``not`` groups of comparisons, in
``branch`` or ``continue`` mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from hookline import NodeResult, NodeRun, NodeType
from hookline_condition.operators import BUILTIN_OPERATORS, Operator
from hookline_condition.rules import Evaluation, rule_problems, rule_schema

if TYPE_CHECKING:
    from hookline import NodeDefinition, WorkflowDefinition

MODES = ("branch", "continue")


class OperatorsMixin:
    """Node types whose rules use an operator table. ``using(table)`` makes a subclass bound to
    one host's table (built-ins plus plugin operators), so no table is shared between hosts."""

    operators: ClassVar[Mapping[str, Operator]] = BUILTIN_OPERATORS

    @classmethod
    def using(cls, operators: Mapping[str, Operator]) -> type[Any]:
        attributes = {
            "operators": operators,
            "config_schema": cls.schema_for(operators),
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        }
        return type(cls.__name__, (cls,), attributes)

    @classmethod
    def schema_for(cls, operators: Mapping[str, Operator]) -> dict[str, Any]:
        raise NotImplementedError


class ConditionNode(OperatorsMixin, NodeType):
    """Evaluates ``rules``. In ``branch`` mode (the default) runs the ``true`` or the ``false``
    branch, then the nodes after it. In ``continue`` mode goes on when true and otherwise ends
    the execution (``succeeded``, the job result saying why).

    A rule is a comparison ``{left, op, right, case_sensitive?, loose?}`` or a group
    ``{and: [rules]}``, ``{or: [rules]}``, ``{not: rule}``, nested as deep as needed. The result
    is ``{"result": bool, "checks": [...]}``: each comparison made, with its resolved values.
    """

    name = "condition"
    title = "Condition: branch on comparisons, or stop when false"
    branches = ("true", "false")
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "rules": {
            "label": "Rules",
            "help": "A comparison {left, op, right} or a group {and: [...]}, {or: [...]}, {not: rule}; "
            "values may be templates such as {{ $context.body.amount }}.",
            "widget": "json",
            "order": 1,
            "placeholder": '{"left": "{{ $context.body.amount }}", "op": "gt", "right": 100}',
        },
        "mode": {
            "label": "When false",
            "help": "branch (the default): run the 'true' or the 'false' branch. continue: go on when true, "
            "end the execution when false.",
            "widget": "select",
            "order": 2,
        },
    }

    @classmethod
    def schema_for(cls, operators: Mapping[str, Operator]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["rules"],
            "additionalProperties": False,
            "properties": {"rules": {"$ref": "#/$defs/rule"}, "mode": {"enum": list(MODES)}},
            "$defs": {"rule": rule_schema(operators)},
        }

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        yield from rule_problems(node.config["rules"], "rules", cls.operators)
        if node.config.get("mode") == "continue" and node.branches:
            yield "mode 'continue' runs no branches (it goes on when true, ends the execution when false); remove 'branches' or use mode 'branch'"

    async def execute(self, run: NodeRun) -> NodeResult:
        evaluation = Evaluation(type(self).operators)
        outcome = evaluation.rule(run.config["rules"], "rules")
        result: dict[str, Any] = {"result": outcome, "checks": evaluation.checks}
        if run.config.get("mode") != "continue":
            return NodeResult(result=result, branch="true" if outcome else "false")
        if outcome:
            return NodeResult(result=result)
        result.update(
            stopped=True,
            reason=f"condition {run.node.key!r} was false in mode 'continue'; the execution ended here",
        )
        return NodeResult(result=result, end=True)


ConditionNode.config_schema = ConditionNode.schema_for(BUILTIN_OPERATORS)
