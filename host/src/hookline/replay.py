"""Replays: run a finished execution again from what its trigger received.

A replay is a new execution (mode ``replay``, ``replay_of`` naming the one replayed) of the stored
``context``, queued like a background run through :meth:`ExecutionService.enqueue`, into the
version the original ran (``original``, the default) or the workflow's current one (``current``).
A replay never carries the original's idempotency key: replaying is asking for the event to be
handled again. The one implementation behind the API and the CLI (``host.replays``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from hookline.engine import CompiledWorkflow
from hookline.errors import BadRequest, Conflict, DefinitionError, HooklineError, NotFound, Overloaded, problems_text
from hookline.status import ExecutionStatus
from hookline.storage import replays as stored
from hookline.storage import workflows as stored_workflows
from hookline.storage.errors import ConstraintViolation
from hookline.storage.workflows import WorkflowRow
from hookline.workflows import ActiveWorkflow, is_workflow_key

if TYPE_CHECKING:
    from hookline.host import Host

log = logging.getLogger("hookline.replay")

VERSIONS = ("original", "current")
#: What a bulk replay picks when no status is given: the executions that did not succeed.
DEFAULT_STATUSES = ("failed", "error", "timed_out")
DEFAULT_BULK_LIMIT = 1000
MAX_BULK_LIMIT = 10_000
#: How long ``wait`` waits for a replay to finish, by default and at most (seconds).
DEFAULT_WAIT = 30.0
MAX_WAIT = 300.0

_FINISHED = [s.value for s in ExecutionStatus if s.finished]

#: The body of ``POST /api/executions/<id>/replay`` (also in /openapi.json).
REPLAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "version": {"enum": list(VERSIONS), "default": "original", "description": "the version to run"},
        "wait": {"type": "boolean", "default": False, "description": "answer once the replay has finished"},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_WAIT,
            "default": DEFAULT_WAIT,
            "description": "with wait: seconds to wait at most",
        },
    },
}

#: The body of ``POST /api/workflows/<key>/replay`` (also in /openapi.json).
BULK_REPLAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {
            "type": "array",
            "items": {"enum": _FINISHED},
            "minItems": 1,
            "uniqueItems": True,
            "default": list(DEFAULT_STATUSES),
            "description": "statuses of the executions to replay",
        },
        "since": {"type": "string", "format": "date-time", "description": "created at or after (ISO 8601)"},
        "until": {"type": "string", "format": "date-time", "description": "created before (ISO 8601)"},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_BULK_LIMIT, "default": DEFAULT_BULK_LIMIT},
        "version": {"enum": list(VERSIONS), "default": "original"},
        "skip_replayed": {
            "type": "boolean",
            "default": True,
            "description": "leave out executions that were already replayed (their replays are candidates themselves)",
        },
    },
}


@dataclass(frozen=True)
class Replay:
    """A queued replay: the new execution, the one it replays, and the version it runs."""

    execution: int
    replay_of: int
    workflow: str
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution": self.execution,
            "replay_of": self.replay_of,
            "workflow": self.workflow,
            "version": self.version,
            "status": "queued",
        }


class PartialReplay(Overloaded):
    """The backlog filled up during a bulk replay: ``done`` were queued, the rest were not."""

    def __init__(self, message: str, done: list[Replay], remaining: int) -> None:
        super().__init__(
            f"{message}; {len(done)} replay(s) were queued before that, {remaining} were not: "
            "call again later (executions already replayed are skipped)",
            replays=[r.to_dict() for r in done],
            count=len(done),
            remaining=remaining,
        )
        self.done = done


class VersionUnavailable(HooklineError):
    """The version to replay into cannot run on this server (a node or trigger type it uses is
    not installed, or cannot be prepared). Same code as a webhook of such a workflow."""

    code = "workflow_unavailable"
    status = 503


class ReplayService:
    def __init__(self, host: Host) -> None:
        self.host = host

    async def replay(self, execution_id: int | str, *, version: str = "original") -> Replay:
        """Queue a replay of one finished execution; it runs in this process's background.

        :raises NotFound: no such execution (a deleted workflow's executions are deleted with it).
        :raises Conflict: the execution is still ``queued`` or ``running``.
        :raises VersionUnavailable: the version cannot run here.
        :raises Overloaded: the backlog is full.
        """
        _check_version(version)
        number = _execution_number(execution_id)
        row = await stored.original(number)
        if row is None:
            raise NotFound(f"no execution with id {number}", id=number)
        if not row.status.finished:
            raise Conflict(
                f"execution {number} is still {row.status.value}; only a finished execution can be replayed",
                id=number,
                status=row.status.value,
            )
        workflow = await self._workflow(row.workflow_id)
        target = await self._target(workflow, row.version_id, version, {})
        return await self._enqueue(target, row.id, row.context)

    async def replay_many(
        self,
        key: str,
        *,
        statuses: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_BULK_LIMIT,
        version: str = "original",
        skip_replayed: bool = True,
    ) -> list[Replay]:
        """Queue replays of a workflow's finished executions, oldest first (by id), each once.

        Replays are queued in that order and start in that order (up to the process's
        concurrency). With ``skip_replayed``, an execution that some execution already replays is
        left out (its replay, if it failed too, is picked instead), so that calling again after a
        partial failure retries only what still fails. Every version needed is checked before
        anything is queued.

        :raises PartialReplay: the backlog filled up; ``done`` were queued.
        """
        _check_version(version)
        wanted = _statuses(statuses)
        if not 1 <= limit <= MAX_BULK_LIMIT:
            raise BadRequest(f"limit must be from 1 to {MAX_BULK_LIMIT}, not {limit}", limit=limit)
        if since is not None and until is not None and since >= until:
            raise BadRequest("since must be before until")
        row = await stored_workflows.by_key(key) if is_workflow_key(key) else None
        if row is None:
            raise NotFound(f"no workflow with key {key!r}", key=key)
        # A snapshot: the replays queued below are not candidates of this call.
        candidates = await stored.candidates(
            row.id, wanted, since=since, until=until, skip_replayed=skip_replayed, limit=limit
        )
        targets: dict[int, ActiveWorkflow] = {}
        for candidate in candidates:
            if candidate.version_id not in targets:
                targets[candidate.version_id] = await self._target(row, candidate.version_id, version, targets)
        done: list[Replay] = []
        for position, candidate in enumerate(candidates):
            try:
                done.append(await self._enqueue(targets[candidate.version_id], candidate.id, candidate.context))
            except Overloaded as exc:
                raise PartialReplay(exc.message, done, len(candidates) - position) from None
        return done

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    async def _workflow(workflow_id: int) -> WorkflowRow:
        row = await stored_workflows.by_id(workflow_id)
        if row is None:  # deleted meanwhile (its executions go with it)
            raise NotFound("the execution's workflow was deleted")
        return row

    async def _target(
        self, workflow: WorkflowRow, version_id: int, version: str, known: dict[int, ActiveWorkflow]
    ) -> ActiveWorkflow:
        """The workflow as it must run: its original version, or the current one."""
        if version == "current":
            if workflow.current_version_id is None:
                raise NotFound(f"workflow {workflow.key!r} has no current version", key=workflow.key)
            version_id = workflow.current_version_id
        for target in known.values():  # with "current", every candidate shares one target
            if target.compiled.version_id == version_id:
                return target
        compiled = await self._compiled(workflow.key, version_id, version)
        return ActiveWorkflow(id=workflow.id, key=workflow.key, enabled=workflow.enabled, compiled=compiled)

    async def _compiled(self, key: str, version_id: int, version: str) -> CompiledWorkflow:
        try:
            return await self.host.workflows.compiled_version(version_id)
        except DefinitionError as exc:
            hint = "; replay into the current version instead (version: current)" if version == "original" else ""
            raise VersionUnavailable(
                f"workflow {key!r}: the {version} version cannot run on this server: "
                f"{problems_text(exc.problems)}{hint}",
                key=key,
                problems=[p.to_dict() for p in exc.problems],
            ) from None

    async def _enqueue(self, target: ActiveWorkflow, replay_of: int, context: Any) -> Replay:
        try:
            new_id = await self.host.executions.enqueue(target, context, compiled=target.compiled, replay_of=replay_of)
        except ConstraintViolation:  # the workflow or its version was deleted meanwhile
            raise NotFound(f"workflow {target.key!r} was deleted", key=target.key) from None
        return Replay(execution=new_id, replay_of=replay_of, workflow=target.key, version=target.compiled.number)


# --- parsing requests (the API's bodies, the CLI's options) ------------------------------


def check_body(data: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """``data`` validated against ``schema``, or :class:`BadRequest` saying what is wrong."""
    if data is None:
        return {}
    error = best_match(Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise BadRequest(f"{where + ': ' if where else ''}{error.message}")
    return data


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time; one without a timezone is UTC."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time such as 2026-11-22T13:00:00Z, not {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise BadRequest(f"version must be 'original' or 'current', not {version!r}", version=version)


def _statuses(statuses: Iterable[str] | None) -> list[ExecutionStatus]:
    names = list(statuses) if statuses else list(DEFAULT_STATUSES)
    wanted = []
    for name in names:
        if name not in _FINISHED:
            raise BadRequest(
                f"status {name!r} cannot be replayed (finished statuses: {', '.join(_FINISHED)})", status=name
            )
        wanted.append(ExecutionStatus(name))
    return wanted


def _execution_number(execution_id: int | str) -> int:
    try:
        number = int(execution_id)
    except (TypeError, ValueError):
        raise NotFound(f"no execution with id {execution_id!r}") from None
    if not 1 <= number < 2**63:  # beyond the id column: no such row (and no driver error)
        raise NotFound(f"no execution with id {number}", id=number)
    return number
