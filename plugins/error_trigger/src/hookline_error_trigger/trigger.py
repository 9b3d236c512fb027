"""The ``execution-failed`` trigger type: an error workflow, started when another one fails."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hookline import TriggerType

if TYPE_CHECKING:
    from hookline import ExecutionFailure, Host, WorkflowDefinition

NAME = "execution-failed"
#: The address of an error workflow that watches every workflow (keys never hold ``*``).
ALL = "*"
STATUSES = ("failed", "error", "timed_out")
MODES = ("sync", "async", "replay", "manual")
#: Manual runs are someone trying a workflow out, watching it: not announced unless asked for.
DEFAULT_MODES = ("sync", "async", "replay")
#: Most workflows one error workflow lists (each is an address, read with one indexed read).
MOST_WATCHED = 200
#: Runs an error workflow starts per minute and process unless its config says otherwise.
DEFAULT_MAX_RUNS_PER_MINUTE = 60


@dataclass(frozen=True)
class Watch:
    """What an error workflow's version watches (``TriggerType.prepare``)."""

    statuses: frozenset[str]
    modes: frozenset[str]
    max_runs_per_minute: int = DEFAULT_MAX_RUNS_PER_MINUTE

    def matches(self, failure: ExecutionFailure) -> bool:
        return failure.status in self.statuses and failure.mode in self.modes


class ExecutionFailedTrigger(TriggerType):
    name = NAME
    title = "Execution failed: runs when another workflow's execution fails"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "workflows": {
                "type": "array",
                "title": "Workflows",
                "description": "Keys of the workflows to watch. Left out: every workflow (except error workflows).",
                "items": {"type": "string", "minLength": 1, "maxLength": 128},
                "minItems": 1,
                "maxItems": MOST_WATCHED,
                "uniqueItems": True,
            },
            "statuses": {
                "type": "array",
                "title": "Statuses",
                "description": "Which endings start this workflow: failed (a node failed), error (a node crashed, the "
                "run was interrupted) or timed_out. Default: all three.",
                "items": {"enum": list(STATUSES)},
                "minItems": 1,
                "uniqueItems": True,
            },
            "max_runs_per_minute": {
                "type": "integer",
                "title": "Most runs per minute",
                "description": "Runs this error workflow starts in a minute, per server process; the failures past it "
                "start nothing (a warning says how many, once a minute): a storm of failures, or a loop, does not "
                f"become a storm of alerts. Default: {DEFAULT_MAX_RUNS_PER_MINUTE}.",
                "minimum": 1,
                "maximum": 100_000,
            },
            "modes": {
                "type": "array",
                "title": "Modes",
                "description": "Which executions count, by how they were started: sync, async, replay, manual. "
                "Default: sync, async and replay (a manual run is someone watching).",
                "items": {"enum": list(MODES)},
                "minItems": 1,
                "uniqueItems": True,
            },
        },
    }
    ui_hints: ClassVar[dict[str, dict[str, Any]]] = {
        "workflows": {"order": 1, "placeholder": '["order-paid", "order-events"]'},
        "statuses": {"order": 2},
        "modes": {"order": 3},
        "max_runs_per_minute": {"order": 4},
    }

    def check(self, workflow: WorkflowDefinition) -> Iterable[str]:
        if workflow.sync:
            yield "an error workflow runs in the background, nobody waits for its answer: remove 'sync: true'"
        watched = (workflow.trigger.config or {}).get("workflows") or []
        if workflow.key in watched:
            yield (
                f"an error workflow never runs for the failures of error workflows, its own included: "
                f"remove {workflow.key!r} from 'workflows'"
            )

    def prepare(self, workflow: WorkflowDefinition) -> Watch:
        config = workflow.trigger.config or {}
        return Watch(
            statuses=frozenset(config.get("statuses") or STATUSES),
            modes=frozenset(config.get("modes") or DEFAULT_MODES),
            max_runs_per_minute=config.get("max_runs_per_minute", DEFAULT_MAX_RUNS_PER_MINUTE),
        )

    def addresses(self, workflow: WorkflowDefinition) -> list[str]:
        # Found by the key of the workflow that failed, or by "*": one indexed read per failure,
        # however many workflows there are.
        return list((workflow.trigger.config or {}).get("workflows") or [ALL])

    def search_terms(self, workflow: WorkflowDefinition) -> list[str]:
        return list((workflow.trigger.config or {}).get("workflows") or [])

    async def manual_context(self, workflow: WorkflowDefinition, data: Any) -> dict[str, Any]:
        """A manual run takes a ``$context`` as this trigger makes it (to try the error
        workflow with a made-up failure): the file's content as it is."""
        return data if isinstance(data, dict) else {"data": data}


def failure_context(failure: ExecutionFailure) -> dict[str, Any]:
    """``$context`` of an error workflow's execution."""
    return {
        "workflow": failure.workflow,
        "execution": {
            "id": failure.id,
            "status": failure.status,
            "mode": failure.mode,
            "url": failure.url,
            "started_at": failure.started_at,
            "finished_at": failure.finished_at,
            "replay_of": failure.replay_of,
        },
        "node": failure.node,
        "message": failure.message,
        "error": failure.error,
        "trigger": {"type": failure.trigger_type, "context": failure.context},
    }


async def watchers(host: Host, failure: ExecutionFailure) -> list[Any]:
    """The enabled error workflows that a failure starts."""
    found = await host.workflows.find_by_address(NAME, [failure.workflow["key"], ALL])
    return [
        workflow
        for workflow in found
        if workflow.enabled
        and isinstance(workflow.compiled.trigger_state, Watch)
        and workflow.compiled.trigger_state.matches(failure)
    ]
