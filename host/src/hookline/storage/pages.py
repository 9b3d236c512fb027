"""Pages of rows, newest first, by id: stable under inserts and cheap on millions of rows (each
page is one range of the primary key, or of an index ending with it)."""

from __future__ import annotations

from typing import Any

from tortoise.models import Model
from tortoise.queryset import QuerySet


async def newest_first(query: QuerySet[Any], *, limit: int, before: int | None) -> tuple[list[Any], int | None]:
    """Up to ``limit`` rows of ``query`` with ids below ``before`` (``None``: from the newest),
    newest first; and the id the next page starts below (``None``: this is the last page)."""
    if before is not None:
        query = query.filter(id__lt=before)
    rows: list[Model] = await query.order_by("-id").limit(limit + 1)
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].id
    return rows, None
