"""The Condition and Switch nodes for Hookline: compare values, branch, or stop."""

from hookline_condition.node import ConditionNode
from hookline_condition.operators import BUILTIN_OPERATORS, Operator, OperatorTable, Options
from hookline_condition.registry import collect_operators
from hookline_condition.switch import SwitchNode
from hookline_condition.values import Incomparable

__all__ = [
    "BUILTIN_OPERATORS",
    "ConditionNode",
    "Incomparable",
    "Operator",
    "OperatorTable",
    "Options",
    "SwitchNode",
    "collect_operators",
]
