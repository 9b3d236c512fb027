"""Hook implementations: the entry point ``set = "hookline_set.plugin"``."""

from __future__ import annotations

from typing import Callable

from hookline import NodeType, hookimpl
from hookline_set.nodes import DelayNode, SetNode


@hookimpl
def register_node_types(register: Callable[[type[NodeType]], None]) -> None:
    register(SetNode)
    register(DelayNode)
