"""Hook implementations: the entry point ``condition = "hookline_condition.plugin"``."""

from __future__ import annotations

from typing import Callable

from hookline import NodeType, hookimpl
from hookline_condition.node import ConditionNode


@hookimpl
def register_node_types(register: Callable[[type[NodeType]], None]) -> None:
    register(ConditionNode)
