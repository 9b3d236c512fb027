"""Storage of refused calls (table ``hookline_refusal``): the verbs :mod:`hookline.refused`
asks for. Nothing outside storage sees the queries."""

from __future__ import annotations

from typing import Any, Iterable

from tortoise.expressions import F

from hookline.storage.models import Refusal
from hookline.storage.pages import newest_first

#: Columns a caller gives to :func:`insert_refusals` (the id is the database's).
REFUSAL_COLUMNS = (
    "workflow",
    "status",
    "cause",
    "message",
    "method",
    "path",
    "address",
    "headers",
    "body",
    "body_base64",
    "body_size",
    "similar_dropped",
    "created_at",
)


def _of_workflow(workflow: str | None) -> Any:
    return Refusal.filter(workflow=workflow) if workflow is not None else Refusal.filter(workflow__isnull=True)


async def insert_refusals(rows: list[dict[str, Any]]) -> None:
    """Store ``rows`` (dicts of :data:`REFUSAL_COLUMNS`), in their order, in one statement."""
    if rows:
        await Refusal.bulk_create([Refusal(**{name: row[name] for name in REFUSAL_COLUMNS}) for row in rows])


async def add_dropped(workflow: str | None, count: int) -> bool:
    """Add ``count`` to ``similar_dropped`` of the newest refusal of ``workflow`` (``None``: of
    calls to no known workflow). ``False`` when there is none to add it to."""
    newest = await _of_workflow(workflow).order_by("-id").limit(1).values_list("id", flat=True)
    if not newest:
        return False
    await Refusal.filter(id=newest[0]).update(similar_dropped=F("similar_dropped") + count)
    return True


async def prune_refusals(workflows: Iterable[str | None], *, per_workflow: int, total: int) -> int:
    """Keep the newest ``per_workflow`` refusals of each of ``workflows`` and the newest
    ``total`` of all; returns how many were deleted. Each bound is found through an index
    (``(workflow, id)``, the primary key): the cost grows with the bound, not the table."""
    deleted = 0
    for workflow in workflows:
        query = _of_workflow(workflow)
        oldest_dropped = await query.order_by("-id").offset(per_workflow).limit(1).values_list("id", flat=True)
        if oldest_dropped:
            deleted += await _of_workflow(workflow).filter(id__lte=oldest_dropped[0]).delete()
    oldest_dropped = await Refusal.all().order_by("-id").offset(total).limit(1).values_list("id", flat=True)
    if oldest_dropped:
        deleted += await Refusal.filter(id__lte=oldest_dropped[0]).delete()
    return deleted


async def refusal_page(
    *, workflow: str | None, status: int | None, cause: str | None, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit`` refusals with ids below ``before``, newest first, filtered, as dicts; and
    the id the next page starts below (``None``: this is the last page)."""
    query = Refusal.all()
    if workflow is not None:
        query = query.filter(workflow=workflow)
    if status is not None:
        query = query.filter(status=status)
    if cause is not None:
        query = query.filter(cause=cause)
    rows, next_before = await newest_first(query, limit=limit, before=before)
    return [_as_dict(row) for row in rows], next_before


async def get_refusal(refusal_id: int) -> dict[str, Any] | None:
    row = await Refusal.filter(id=refusal_id).first()
    return None if row is None else _as_dict(row)


async def count_refusals(workflow: str | None = None, *, every: bool = True) -> int:
    """How many refusals are stored: all of them, or (``every=False``) those of ``workflow``."""
    return await (Refusal.all() if every else _of_workflow(workflow)).count()


def _as_dict(row: Refusal) -> dict[str, Any]:
    return {"id": row.id, **{name: getattr(row, name) for name in REFUSAL_COLUMNS}}
