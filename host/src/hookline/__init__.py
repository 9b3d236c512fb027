"""Hookline: a minimal pluggy-based host for webhook-triggered workflows.

This module is the public API for plugins, together with a few public modules, each with its
``__all__``: :mod:`hookline.errors`, :mod:`hookline.templates`, :mod:`hookline.ui`,
:mod:`hookline.web`, :mod:`hookline.cli`, :mod:`hookline.database` and :mod:`hookline.testing`
(docs/plugin-guide.md, "The public API"). Every other module is the implementation: importable,
but not a promise. What a plugin imports::

    from hookline import hookimpl, NodeType, NodeResult, NodeError
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from hookline.durations import DURATION_SCHEMA, parse_duration
from hookline.errors import DefinitionError, HooklineError, NodeError, PluginError, Problem, WorkflowUnavailable
from hookline.hookspecs import hookimpl, hookspec
from hookline.status import ExecutionStatus, JobStatus
from hookline.types import NodeResult, NodeRun, NodeType, Reply, TriggerType

if TYPE_CHECKING:
    from hookline.definitions import NodeDefinition, WorkflowDefinition
    from hookline.executions import DEFAULT_DEDUP_WINDOW, Dedup, Duplicate, ExecutionRecord, NotRecorded, RunHandle
    from hookline.failures import ExecutionFailure
    from hookline.host import Host
    from hookline.keys import server_secret
    from hookline.plugins import each_implementation
    from hookline.settings import Settings
    from hookline.workflows import ActiveWorkflow

#: Names imported on first use, with the module each comes from. They pull in the storage layer
#: and the execution core, which a plugin module that only needs ``hookimpl`` should not pay for
#: at import time.
_LAZY = {
    "ActiveWorkflow": "hookline.workflows",
    "DEFAULT_DEDUP_WINDOW": "hookline.executions",
    "Dedup": "hookline.executions",
    "Duplicate": "hookline.executions",
    "ExecutionFailure": "hookline.failures",
    "ExecutionRecord": "hookline.executions",
    "Host": "hookline.host",
    "NodeDefinition": "hookline.definitions",
    "NotRecorded": "hookline.executions",
    "RunHandle": "hookline.executions",
    "Settings": "hookline.settings",
    "WorkflowDefinition": "hookline.definitions",
    "each_implementation": "hookline.plugins",
    "server_secret": "hookline.keys",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookline' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


__all__ = [
    "DEFAULT_DEDUP_WINDOW",
    "DURATION_SCHEMA",
    "ActiveWorkflow",
    "Dedup",
    "DefinitionError",
    "Duplicate",
    "ExecutionFailure",
    "ExecutionRecord",
    "ExecutionStatus",
    "Host",
    "HooklineError",
    "JobStatus",
    "NodeDefinition",
    "NodeError",
    "NodeResult",
    "NodeRun",
    "NotRecorded",
    "NodeType",
    "PluginError",
    "Problem",
    "Reply",
    "RunHandle",
    "Settings",
    "TriggerType",
    "WorkflowDefinition",
    "WorkflowUnavailable",
    "each_implementation",
    "hookimpl",
    "hookspec",
    "parse_duration",
    "server_secret",
]
