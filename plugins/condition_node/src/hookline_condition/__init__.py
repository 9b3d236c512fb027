"""The Condition node for Hookline: compares values and runs the ``true`` or ``false`` branch."""

from hookline_condition.node import ConditionNode

__all__ = ["ConditionNode"]
