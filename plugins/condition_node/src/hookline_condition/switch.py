"""The ``switch`` node type: ordered cases, the first whose rules are true wins, else
``otherwise``. Branch names are fixed (``case1`` ... ``case20``, ``otherwise``) because a node
type declares its branches once for every workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from hookline import NodeResult, NodeRun, NodeType
from hookline_condition.node import OperatorsMixin
from hookline_condition.operators import BUILTIN_OPERATORS, Operator
from hookline_condition.rules import Evaluation, rule_problems, rule_schema

if TYPE_CHECKING:
    from hookline import NodeDefinition, WorkflowDefinition

MAX_CASES = 20
OTHERWISE = "otherwise"


class SwitchNode(OperatorsMixin, NodeType):
    """Evaluates ``cases`` in order and runs the branch of the first true one (``case1`` for the
    first case), or ``otherwise``; then the nodes after it. Each case has ``rules`` (as in the
    condition node) and an optional ``label`` shown in the result."""

    name = "switch"
    title = "Switch: run the branch of the first matching case"
    branches = tuple(f"case{n}" for n in range(1, MAX_CASES + 1)) + (OTHERWISE,)
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "cases": {
            "label": "Cases",
            "help": f"Up to {MAX_CASES} cases, tried in order: each has rules (as a condition's) and an optional "
            "label. The first true case runs its branch (case1, case2, ...); none: the 'otherwise' branch.",
            "widget": "json",
            "order": 1,
            "placeholder": '[{"label": "big", "rules": {"left": "{{ $context.body.amount }}", "op": "gt", "right": 100}}]',
        },
    }

    @classmethod
    def schema_for(cls, operators: Mapping[str, Operator]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["cases"],
            "additionalProperties": False,
            "properties": {
                "cases": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_CASES,
                    "items": {
                        "type": "object",
                        "required": ["rules"],
                        "additionalProperties": False,
                        "properties": {"rules": {"$ref": "#/$defs/rule"}, "label": {"type": "string"}},
                    },
                }
            },
            "$defs": {"rule": rule_schema(operators)},
        }

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        cases = node.config["cases"]
        for index, case in enumerate(cases):
            yield from rule_problems(case["rules"], f"cases[{index}].rules", cls.operators)
        for name in node.branches:
            if name != OTHERWISE and int(name[len("case"):]) > len(cases):
                yield f"branch {name!r} has no case: this switch has {len(cases)} case(s), case1 to case{len(cases)}"

    async def execute(self, run: NodeRun) -> NodeResult:
        evaluation = Evaluation(type(self).operators)
        for index, case in enumerate(run.config["cases"]):
            evaluation.extra = {"case": index + 1}
            if evaluation.rule(case["rules"], f"cases[{index}].rules"):
                branch = f"case{index + 1}"
                result = {"result": branch, "case": index + 1, "label": case.get("label"), "checks": evaluation.checks}
                return NodeResult(result=result, branch=branch)
        result = {"result": OTHERWISE, "case": None, "label": None, "checks": evaluation.checks}
        return NodeResult(result=result, branch=OTHERWISE)


SwitchNode.config_schema = SwitchNode.schema_for(BUILTIN_OPERATORS)
