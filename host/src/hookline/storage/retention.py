"""The purge's reads and deletes (tables ``hookline_execution`` and ``hookline_job``): the verbs
:mod:`hookline.retention` asks for. What to purge (the policies) is the retention service's;
how rows are found and deleted, in batches of short transactions, is this module's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, NamedTuple

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from hookline.status import ExecutionStatus
from hookline.storage.models import Execution, Job


@dataclass(frozen=True)
class Scope:
    """Executions of ``statuses`` created before ``cutoff`` (``None``: any age), of one workflow,
    or of every workflow but ``exclude``."""

    statuses: list[ExecutionStatus]
    cutoff: datetime | None
    workflow_id: int | None = None
    exclude: tuple[int, ...] = ()
    #: Keep failures still to be announced to plugins (``notify_at``): a purge by policy does; one
    #: an operator asks for (``--all``, ``--older-than``) deletes what it is asked to.
    keep_unannounced: bool = False


class Purgeable(NamedTuple):
    """An execution a purge may delete."""

    id: int
    workflow_id: int
    status: ExecutionStatus


def _of(scope: Scope) -> Any:
    query = Execution.filter(status__in=scope.statuses)
    if scope.cutoff is not None:
        query = query.filter(created_at__lt=scope.cutoff)
    if scope.workflow_id is not None:
        query = query.filter(workflow_id=scope.workflow_id)
    elif scope.exclude:
        query = query.exclude(workflow_id__in=list(scope.exclude))
    return query


async def key_holders(scope: Scope, now: datetime) -> int:
    """How many executions of ``scope`` a purge keeps at ``now``: they hold an idempotency key, or
    (``keep_unannounced``) their failure is still to be announced (``notify_at``, hookline.failures)."""
    holding = Q(dedup_key__not_isnull=True, dedup_until__gt=now)
    if scope.keep_unannounced:
        holding |= Q(notify_at__not_isnull=True)
    return await _of(scope).filter(holding).count()


async def deletable(scope: Scope, now: datetime, *, after: int, limit: int) -> list[Purgeable]:
    """Up to ``limit`` executions of ``scope`` holding no idempotency key at ``now`` (and, with
    ``keep_unannounced``, with no failure still to announce), with ids above ``after``, by id."""
    free = Q(dedup_key__isnull=True) | Q(dedup_until__isnull=True) | Q(dedup_until__lte=now)
    if scope.keep_unannounced:
        free &= Q(notify_at__isnull=True)
    rows = (
        await _of(scope)
        .filter(free, id__gt=after)
        .order_by("id")
        .limit(limit)
        .values_list("id", "workflow_id", "status")
    )
    return [Purgeable(row[0], row[1], ExecutionStatus(row[2])) for row in rows]


async def delete_executions(ids: Collection[int]) -> None:
    """Delete the executions of ``ids`` with their jobs, in one transaction."""
    async with in_transaction():
        # The foreign key cascades (and tortoise turns SQLite's foreign keys on), but deleting
        # the jobs first leaves no orphans on a database where they are off.
        await Job.filter(execution_id__in=list(ids)).delete()
        await Execution.filter(id__in=list(ids)).delete()
