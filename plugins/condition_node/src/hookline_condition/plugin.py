"""Hook implementations: the entry point ``condition = "hookline_condition.plugin"``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from hookline import NodeType, hookimpl
from hookline_condition import hookspecs
from hookline_condition.node import ConditionNode
from hookline_condition.registry import collect_operators, each_plugin
from hookline_condition.results import RENDERED_TYPES, render_checks
from hookline_condition.switch import SwitchNode

if TYPE_CHECKING:
    from hookline import Host


@hookimpl
def register_hookspecs(register: Callable[[object], None]) -> None:
    # Other plugins add operators by implementing register_condition_operators.
    register(hookspecs)


@hookimpl
def register_node_types(register: Callable[[type[NodeType]], None], host: Host) -> None:
    # One operator table per host: built-ins plus every plugin's, bound into the node type.
    operators = collect_operators(each_plugin(host.pm))
    register(ConditionNode.using(operators))
    register(SwitchNode.using(operators))


@hookimpl
def render_job_result(job: Mapping[str, Any], host: Host) -> str | None:
    # The comparisons as a table on the console's execution page; other types' jobs are left alone.
    if job.get("type") not in RENDERED_TYPES:
        return None
    node_type = host.registry.nodes.get(job["type"])
    operators = getattr(node_type, "operators", {})
    return render_checks(job, unary=[name for name, operator in operators.items() if operator.unary])
