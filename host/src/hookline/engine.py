"""The execution engine: runs a workflow version's nodes. It knows nothing about HTTP or storage.

Nodes run in order. A branching node names a branch; its nodes run, then the nodes after the
branching node. A node may end the workflow. Every node run becomes a :class:`JobRecord`; the
caller (``hookline.executions``) stores them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hookline import jsontext
from hookline.definitions import NodeDefinition, WorkflowDefinition
from hookline.errors import DefinitionError, NodeError, Problem
from hookline.registry import TypeRegistry
from hookline.status import ExecutionStatus, JobStatus
from hookline.types import NodeResult, NodeRun, NodeType, Reply, ReplySlot

log = logging.getLogger("hookline.engine")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CompiledNode:
    definition: NodeDefinition
    instance: NodeType
    branches: dict[str, list[CompiledNode]]


@dataclass(frozen=True)
class CompiledWorkflow:
    """A workflow version ready to run: node types instantiated, templates compiled."""

    version_id: int
    number: int
    definition: WorkflowDefinition
    nodes: list[CompiledNode]
    #: What the workflow's trigger type prepared for this version (``TriggerType.prepare``).
    trigger_state: Any = None

    @property
    def info(self) -> dict[str, Any]:
        """``$workflow``."""
        return {"key": self.definition.key, "title": self.definition.title, "version": self.number}


def compile_workflow(
    definition: WorkflowDefinition, registry: TypeRegistry, *, version_id: int = 0, number: int = 0
) -> CompiledWorkflow:
    """Instantiate every node's type with its config, and let the trigger type prepare what it
    needs for this version. The definition must be valid."""
    nodes = [_build(n, definition, registry) for n in definition.nodes]
    trigger = registry.triggers.get(definition.trigger.type)
    try:
        state = trigger.prepare(definition) if trigger is not None else None
    except Exception as exc:  # a bug in the trigger type: the workflow cannot run here
        log.exception("trigger type %r could not be prepared for workflow %r", definition.trigger.type, definition.key)
        problem = Problem(
            "trigger", f"trigger type {definition.trigger.type!r} could not be prepared: {type(exc).__name__}: {exc}"
        )
        raise DefinitionError([problem], subject=f"workflow {definition.key!r}") from None
    return CompiledWorkflow(version_id, number, definition, nodes, state)


def _build(node: NodeDefinition, definition: WorkflowDefinition, registry: TypeRegistry) -> CompiledNode:
    # (Not a closure calling itself: that would be a reference cycle holding the definition,
    # freed only by the garbage collector once the compiled version is dropped from the cache.)
    try:
        instance = registry.nodes[node.type](node.config)
    except Exception as exc:  # a bug in the node type: the workflow cannot run here
        log.exception("node type %r could not be prepared for node %r", node.type, node.key)
        problem = Problem(node.location, f"node type {node.type!r} could not be prepared: {type(exc).__name__}: {exc}")
        raise DefinitionError([problem], subject=f"workflow {definition.key!r}") from None
    return CompiledNode(
        definition=node,
        instance=instance,
        branches={name: [_build(n, definition, registry) for n in nodes] for name, nodes in node.branches.items()},
    )


@dataclass
class JobRecord:
    position: int
    node: str
    type: str
    status: JobStatus
    input: Any
    started_at: datetime
    finished_at: datetime
    result: Any = None
    branch: str | None = None
    error: dict[str, Any] | None = None
    #: ``result`` as JSON text, as it was when the node returned it (encoded once, by the check
    #: that it is JSON); ``None`` when not encoded yet.
    result_json: str | None = field(default=None, repr=False, compare=False)


@dataclass
class Outcome:
    status: ExecutionStatus
    jobs: list[JobRecord]
    started_at: datetime
    finished_at: datetime
    error: dict[str, Any] | None = None
    reply: Reply | None = None


class _Stop(Exception):
    """Ends the run early with a final status (a failed node)."""

    def __init__(self, status: ExecutionStatus, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error


@dataclass
class _RunState:
    workflow: CompiledWorkflow
    context: Any
    execution: dict[str, Any]
    slot: ReplySlot
    results: dict[str, Any] = field(default_factory=dict)
    jobs: list[JobRecord] = field(default_factory=list)
    current: tuple[CompiledNode, datetime, Any] | None = None


class Engine:
    """Runs compiled workflows. One engine serves a host; it holds no per-run state."""

    async def run(
        self,
        workflow: CompiledWorkflow,
        context: Any,
        *,
        execution_id: int | None = None,
        mode: str = "manual",
        reply: ReplySlot | None = None,
    ) -> Outcome:
        """Run ``workflow`` with ``$context`` = ``context`` until it ends, fails or times out.

        Node failures, bugs in node types and the workflow timeout all end in an
        :class:`Outcome`; only cancellation propagates.
        """
        state = _RunState(
            workflow=workflow,
            context=context,
            execution={"id": execution_id, "mode": mode},
            slot=reply or ReplySlot(waiting=False),
        )
        started = utcnow()
        status, error = ExecutionStatus.SUCCEEDED, None
        try:
            async with asyncio.timeout(workflow.definition.timeout):
                await self._run_nodes(workflow.nodes, state)
        except _Stop as stop:
            status, error = stop.status, stop.error
        except TimeoutError:
            status = ExecutionStatus.TIMED_OUT
            error = {"message": f"workflow did not finish within its timeout of {workflow.definition.timeout:g} s"}
            if state.current is not None:
                node, node_started, node_input = state.current
                error["node"] = node.definition.key
                state.jobs.append(
                    JobRecord(
                        position=len(state.jobs),
                        node=node.definition.key,
                        type=node.definition.type,
                        status=JobStatus.TIMED_OUT,
                        input=node_input,
                        started_at=node_started,
                        finished_at=utcnow(),
                        error={"message": "stopped by the workflow timeout"},
                    )
                )
        return Outcome(
            status=status,
            jobs=state.jobs,
            started_at=started,
            finished_at=utcnow(),
            error=error,
            reply=state.slot.reply,
        )

    async def _run_nodes(self, nodes: list[CompiledNode], state: _RunState) -> bool:
        """Run ``nodes`` and the branches they choose; True when the workflow ended."""
        for node in nodes:
            result = await self._run_node(node, state)
            if result.end:
                return True
            if result.branch is not None and await self._run_nodes(node.branches.get(result.branch, []), state):
                return True
        return False

    async def _run_node(self, node: CompiledNode, state: _RunState) -> NodeResult:
        definition, instance = node.definition, node.instance
        # Work goes on after a node that replied: its reply need not wait for the end.
        state.slot.release()
        started = utcnow()
        scope = {
            "context": state.context,
            "nodes": state.results,
            "execution": state.execution,
            "workflow": state.workflow.info,
            "system": {"now": started.isoformat()},
        }
        node_input: Any = None
        try:
            template = instance.config_template
            node_input = template.render(scope) if template is not None else definition.config
            state.current = (node, started, node_input)
            run = NodeRun(
                config=node_input,
                node=definition,
                execution_id=state.execution["id"],
                workflow=state.workflow.info,
                scope=scope,
                reply=state.slot,
            )
            result = await instance.execute(run)
            result_json = _check_result(result, instance)
        except NodeError as exc:
            error = _jsonable(exc.to_dict())
            self._record(state, node, started, node_input, JobStatus.FAILED, error=error)
            raise _Stop(ExecutionStatus.FAILED, {"node": definition.key, **error}) from None
        except asyncio.CancelledError:
            # The workflow's own timeout arrives here as a cancellation; a TimeoutError raised
            # by the node itself (an HTTP call that timed out) is the node's failure, below.
            raise
        except Exception as exc:
            log.exception("node %r (type %r) raised an unexpected error", definition.key, definition.type)
            message = f"node type {definition.type!r} crashed: {type(exc).__name__}: {exc}"
            error = {"error": "node_crashed", "message": message}
            self._record(state, node, started, node_input, JobStatus.ERROR, error=error)
            raise _Stop(ExecutionStatus.ERROR, {"node": definition.key, **error}) from None
        self._record(
            state,
            node,
            started,
            node_input,
            JobStatus.SUCCEEDED,
            result=result.result,
            result_json=result_json,
            branch=result.branch,
        )
        state.results[definition.key] = result.result
        return result

    @staticmethod
    def _record(
        state: _RunState,
        node: CompiledNode,
        started: datetime,
        node_input: Any,
        status: JobStatus,
        *,
        result: Any = None,
        result_json: str | None = None,
        branch: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        state.current = None
        state.jobs.append(
            JobRecord(
                position=len(state.jobs),
                node=node.definition.key,
                type=node.definition.type,
                status=status,
                input=node_input,
                started_at=started,
                finished_at=utcnow(),
                result=result,
                branch=branch,
                error=error,
                result_json=result_json,
            )
        )


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """An error's details as JSON (a node may attach any object; it is stored as its repr)."""
    return json.loads(json.dumps(value, default=repr, allow_nan=False))


def _check_result(result: Any, instance: NodeType) -> str:
    """A node type's broken promise is its bug, reported as such rather than as a storage error.
    Returns the result as JSON text."""
    name = type(instance).name
    if not isinstance(result, NodeResult):
        raise TypeError(f"execute() returned {type(result).__name__}, not hookline.NodeResult")
    if result.branch is not None and result.branch not in type(instance).branches:
        raise ValueError(f"node type {name!r} chose branch {result.branch!r}, which it does not declare")
    try:
        return jsontext.encode_strict(result.result)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"result is not JSON-serialisable: {exc}") from None
