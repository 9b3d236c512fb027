"""The history of executions as the API and the CLI read it: lists and single executions with
their jobs, in the JSON shapes of ``GET /api/executions[/<id>]``."""

from __future__ import annotations

import json
from typing import Any

from hookline.errors import BadRequest, NotFound
from hookline.pagination import Page, page_of
from hookline.storage.models import Execution, ExecutionStatus, Job, Workflow
from hookline.workflows import is_workflow_key


async def list_executions(
    *,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Executions, newest first, paginated; of workflow ``workflow`` or with ``status`` only."""
    query = Execution.all()
    if workflow:
        workflow_id = await Workflow.filter(key=workflow).values_list("id", flat=True) if is_workflow_key(workflow) else []
        if not workflow_id:
            raise NotFound(f"no workflow with key {workflow!r}", key=workflow)
        query = query.filter(workflow_id=workflow_id[0])
    if status:
        try:
            query = query.filter(status=ExecutionStatus(status))
        except ValueError:
            known = ", ".join(s.value for s in ExecutionStatus)
            raise BadRequest(f"unknown status {status!r} (known: {known})", status=status) from None
    rows, next_cursor = await page_of(query.prefetch_related("workflow"), limit=limit, cursor=cursor)
    return Page([_summary(row, row.workflow.key) for row in rows], next_cursor)


async def get_execution(execution_id: int | str) -> dict[str, Any]:
    """One execution: its summary, context, reply and jobs."""
    try:
        number = int(execution_id)
    except (TypeError, ValueError):
        raise NotFound(f"no execution with id {execution_id!r}") from None
    if not 0 < number < 2**63:  # ids are positive 64-bit integers; the database refuses more
        raise NotFound(f"no execution with id {number}", id=number)
    row = await Execution.filter(id=number).prefetch_related("workflow", "version").first()
    if row is None:
        raise NotFound(f"no execution with id {number}", id=number)
    jobs = await Job.filter(execution_id=number).order_by("position")
    return {
        **_summary(row, row.workflow.key, row.version.number),
        "context": row.context,
        "reply": row.reply,
        "jobs": [
            {
                "node": job.node,
                "type": job.type,
                "status": job.status.value,
                "input": _decode(job.input),
                "result": _decode(job.result),
                "branch": job.branch,
                "error": job.error,
                "started_at": job.started_at.isoformat(),
                "finished_at": job.finished_at.isoformat(),
                "duration_ms": _ms(job.started_at, job.finished_at),
            }
            for job in jobs
        ],
    }


def _summary(row: Execution, workflow_key: str, version: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "workflow": workflow_key,
        "status": row.status.value,
        "mode": row.mode,
        "trigger": row.trigger_type,
        "error": row.error,
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "duration_ms": _ms(row.started_at, row.finished_at),
        "replay_of": row.replay_of,
    }
    if version is not None:
        data["version"] = version
    return data


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _ms(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)
