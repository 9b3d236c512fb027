"""Hook implementations: the entry point ``response = "hookline_response.plugin"``."""

from __future__ import annotations

from typing import Callable

from hookline import NodeType, hookimpl
from hookline_response.node import ResponseNode


@hookimpl
def register_node_types(register: Callable[[type[NodeType]], None]) -> None:
    register(ResponseNode)
