"""Hookline: a minimal pluggy-based host for webhook-triggered workflows.

What a plugin imports::

    from hookline import hookimpl, NodeType, NodeResult, NodeError
"""

from __future__ import annotations

from hookline.errors import DefinitionError, HooklineError, NodeError, PluginError, Problem, WorkflowUnavailable
from hookline.hookspecs import hookimpl, hookspec
from hookline.types import NodeResult, NodeRun, NodeType, Reply, TriggerType

def __getattr__(name: str) -> object:
    # Imported on first use: the host pulls in the storage layer, which a plugin module that
    # only needs ``hookimpl`` should not pay for at import time.
    if name == "Host":
        from hookline.host import Host

        return Host
    if name == "WorkflowDefinition":
        from hookline.definitions import WorkflowDefinition

        return WorkflowDefinition
    if name == "ExecutionStatus":
        from hookline.storage.models import ExecutionStatus

        return ExecutionStatus
    raise AttributeError(f"module 'hookline' has no attribute {name!r}")


__all__ = [
    "DefinitionError",
    "ExecutionStatus",
    "Host",
    "HooklineError",
    "NodeError",
    "NodeResult",
    "NodeRun",
    "NodeType",
    "PluginError",
    "Problem",
    "Reply",
    "TriggerType",
    "WorkflowDefinition",
    "WorkflowUnavailable",
    "hookimpl",
    "hookspec",
]
