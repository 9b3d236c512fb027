"""The ``set`` and ``delay`` node types."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar, Iterable, Mapping

from hookline import NodeDefinition, NodeError, NodeResult, NodeRun, NodeType, WorkflowDefinition

#: A string that is one {{ }} template, checked again once rendered.
TEMPLATE = {"type": "string", "pattern": r"^\s*\{\{.*\}\}\s*$"}


class SetNode(NodeType):
    """Computes values for later nodes: the result is ``values`` with every ``{{ }}`` resolved.

    A later node reads them as ``$nodes.<key>.<name>``.
    """

    name = "set"
    title = "Set: compute values for later nodes"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["values"],
        "additionalProperties": False,
        "properties": {
            "values": {
                "type": "object",
                "minProperties": 1,
                # Names that read well in templates: $nodes.order.total
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            },
        },
    }
    # How a console's generated config form shows each property (see hookline.ui).
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "values": {
            "label": "Values",
            "help": "Names and values, each value templated; later nodes read $nodes.<key>.<name>.",
            "widget": "json",
            "placeholder": '{"total": "{{ $context.body.amount }}"}',
        },
    }

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result=run.config["values"])


class DelayNode(NodeType):
    """Waits ``seconds`` (a number, or a template giving one) before the next node runs."""

    name = "delay"
    title = "Delay: wait before the next node"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["seconds"],
        "additionalProperties": False,
        "properties": {"seconds": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, TEMPLATE]}},
    }
    # A text field, not a number field: a template such as {{ $context.body.wait }} is allowed too.
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "seconds": {"label": "Seconds", "help": "How long to wait: a number, or a template giving one.", "widget": "text", "placeholder": "0.5"},
    }

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        seconds = node.config["seconds"]
        if isinstance(seconds, (int, float)) and seconds >= workflow.timeout:
            yield (
                f"waits {seconds:g} s but the workflow's timeout is {workflow.timeout:g} s; "
                "wait less or raise the workflow's 'timeout'"
            )

    async def execute(self, run: NodeRun) -> NodeResult:
        seconds = run.config["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise NodeError(f"seconds must be a positive number, got {json.dumps(seconds)}", seconds=seconds)
        await asyncio.sleep(seconds)
        return NodeResult(result={"waited": seconds})
