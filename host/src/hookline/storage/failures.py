"""Failed executions to announce (``notify_at``): the verbs of :mod:`hookline.failures`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hookline.storage.models import Execution


async def due(now: datetime, limit: int) -> list[int]:
    """Ids of up to ``limit`` executions whose failure is due to be announced, the oldest first
    (read from the partial index: only rows with ``notify_at`` are in it)."""
    return await Execution.filter(notify_at__lte=now).order_by("notify_at").limit(limit).values_list("id", flat=True)


async def claim(execution_id: int, now: datetime, until: datetime) -> bool:
    """Take a due failure to announce it, until ``until``; ``False`` if another process took it
    first (its ``notify_at`` moved past ``now``) or it is no longer to be announced."""
    return bool(await Execution.filter(id=execution_id, notify_at__lte=now).update(notify_at=until))


async def announced(execution_id: int) -> None:
    """Every plugin took the failure: it is no longer to be announced."""
    await Execution.filter(id=execution_id).update(notify_at=None)


async def failure_row(execution_id: int) -> dict[str, Any] | None:
    """What the announcement of execution ``execution_id`` says, with its workflow's key and title
    and its version's number; ``None`` if it is gone."""
    rows = await Execution.filter(id=execution_id).values(
        "id",
        "status",
        "mode",
        "error",
        "context",
        "trigger_type",
        "started_at",
        "finished_at",
        "replay_of",
        workflow_key="workflow__key",
        workflow_title="workflow__title",
        version_number="version__number",
    )
    return rows[0] if rows else None
