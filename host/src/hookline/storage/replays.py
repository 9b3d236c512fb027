"""The executions as replays read them (table ``hookline_execution``): the one to replay, and a
workflow's candidates for a bulk replay. A replay itself is a new execution, written through
the execution service (:class:`hookline.storage.executions.ExecutionStore`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, NamedTuple

from tortoise.expressions import Subquery

from hookline.status import ExecutionStatus
from hookline.storage.models import Execution


class Original(NamedTuple):
    """An execution as a replay starts from it."""

    id: int
    workflow_id: int
    version_id: int
    status: ExecutionStatus
    #: What its trigger received.
    context: Any


class Candidate(NamedTuple):
    """An execution a bulk replay may replay."""

    id: int
    version_id: int
    context: Any


async def original(execution_id: int) -> Original | None:
    """Execution ``execution_id`` as a replay of it needs it, or ``None``."""
    row = await Execution.filter(id=execution_id).only("id", "workflow_id", "version_id", "status", "context").first()
    return None if row is None else Original(row.id, row.workflow_id, row.version_id, row.status, row.context)


async def candidates(
    workflow_id: int,
    statuses: Collection[ExecutionStatus],
    *,
    since: datetime | None,
    until: datetime | None,
    skip_replayed: bool,
    limit: int,
) -> list[Candidate]:
    """Up to ``limit`` executions of the workflow with one of ``statuses``, created at or after
    ``since`` and before ``until`` (each if given), oldest (lowest id) first. With
    ``skip_replayed``, those that some execution replays are left out."""
    query = Execution.filter(workflow_id=workflow_id, status__in=list(statuses))
    if since is not None:
        query = query.filter(created_at__gte=since)
    if until is not None:
        query = query.filter(created_at__lt=until)
    if skip_replayed:
        replayed = Execution.filter(workflow_id=workflow_id, replay_of__not_isnull=True).values("replay_of")
        query = query.exclude(id__in=Subquery(replayed))
    rows = await query.order_by("id").limit(limit).values("id", "version_id", "context")
    return [Candidate(row["id"], row["version_id"], row["context"]) for row in rows]
