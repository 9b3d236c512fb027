"""The history of executions as the API, the CLI and the console read it: filtered lists, single
executions with their jobs, and each workflow's recent activity, in the JSON shapes of
``GET /api/executions[/<id>]`` and ``GET /api/workflows?include=activity``.

Arguments arrive as a person or a query string gave them (text, or lists for statuses and
modes); each is checked here, and a bad one is a :class:`BadRequest` naming it. The queries
themselves are :mod:`hookline.storage.history`'s."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from hookline.engine import utcnow
from hookline.errors import BadRequest, NotFound
from hookline.pagination import MAX_ID, MAX_LIMIT, Page, parse_cursor, parse_limit
from hookline.replay import parse_time
from hookline.status import ExecutionStatus
from hookline.storage import history as stored
from hookline.workflows import is_workflow_key

#: How an execution was started: a waiting caller, the background queue, by hand, a replay.
MODES = ("sync", "async", "manual", "replay")
#: The longest text ``q`` may be.
MAX_SEARCH = 200
#: How far back :func:`workflow_activity` counts when not told.
ACTIVITY_WINDOW = timedelta(hours=24)
#: The most workflows one :func:`workflow_activity` call describes.
MAX_ACTIVITY_KEYS = MAX_LIMIT


async def list_executions(
    *,
    workflow: str | None = None,
    status: str | Iterable[str] | None = None,
    mode: str | Iterable[str] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    q: str | None = None,
    after: int | str | None = None,
    replay_of: int | str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Executions, newest first, paginated (``cursor`` is a page's ``next_cursor``). Every
    filter given narrows the list:

    :param workflow: the key of a workflow (:class:`NotFound` if there is none).
    :param status: one status, several (a list, or text with commas: ``"failed,error"``).
    :param mode: ``sync``, ``async``, ``manual`` or ``replay``; one or several, as ``status``.
    :param since: created at or after this time (a ``datetime``, or ISO 8601 text; without a
        timezone, UTC).
    :param until: created before this time.
    :param q: text found, in any letter case, in what the trigger received: the ``body``,
        ``query`` or ``headers`` of the execution's ``context`` (keys and values).
    :param after: only executions with a higher id (newer) than this one: a page from the
        newest down to it, for a list that polls for new executions.
    :param replay_of: only the replays of this execution (by id).
    :raises BadRequest: an argument is invalid; the error names it.
    """
    where = stored.ExecutionFilter(
        workflow_id=await _workflow_id(workflow) if workflow else None,
        statuses=tuple(ExecutionStatus(name) for name in _choices(status, "status", [s.value for s in ExecutionStatus])),
        modes=tuple(_choices(mode, "mode", MODES)),
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        text=_search_text(q),
        after=_execution_id(after, "after"),
        replay_of=_execution_id(replay_of, "replay_of"),
        before=parse_cursor(cursor),
    )
    if where.since is not None and where.until is not None and where.until < where.since:
        raise BadRequest(
            f"until ({where.until.isoformat()}) is earlier than since ({where.since.isoformat()})",
            since=where.since.isoformat(),
            until=where.until.isoformat(),
        )
    limit = parse_limit(limit)
    rows = await stored.execution_page(where, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = str(rows[-1].id)
    return Page([_summary(row) for row in rows], next_cursor)


async def workflow_activity(
    keys: Iterable[str], *, since: datetime | str | None = None
) -> dict[str, dict[str, Any]]:
    """What each workflow of ``keys`` has been doing, by key: for a list of workflows.

    Each is ``{"since", "last_execution", "counts", "total"}``: its newest execution
    (``{"id", "status", "created_at"}``, or ``None`` if it has none), and how many executions
    were created at or after ``since`` (default: 24 hours ago), by status (statuses with none
    are left out) and in all. Keys of no workflow are left out of the answer. Three indexed
    queries, whatever the size of the history.

    :raises BadRequest: more than 500 keys, or ``since`` is not a time.
    """
    wanted = list(dict.fromkeys(keys if not isinstance(keys, str) else [keys]))
    if len(wanted) > MAX_ACTIVITY_KEYS:
        raise BadRequest(f"activity is given for at most {MAX_ACTIVITY_KEYS} workflows at once, not {len(wanted)}")
    start = _moment(since, "since") or utcnow() - ACTIVITY_WINDOW
    ids = await stored.workflow_ids([key for key in wanted if isinstance(key, str) and is_workflow_key(key)])
    last = await stored.last_executions(list(ids.values()))
    counts = await stored.counts_since(list(ids.values()), start)
    activity: dict[str, dict[str, Any]] = {}
    for key, workflow_id in ids.items():
        newest = last.get(workflow_id)
        by_status = counts.get(workflow_id, {})
        activity[key] = {
            "since": start.isoformat(),
            "last_execution": None
            if newest is None
            else {"id": newest.id, "status": newest.status.value, "created_at": newest.created_at.isoformat()},
            "counts": {s.value: by_status[s] for s in ExecutionStatus if by_status.get(s)},
            "total": sum(by_status.values()),
        }
    return {key: activity[key] for key in wanted if key in activity}


async def _workflow_id(key: str) -> int:
    found = await stored.workflow_ids([key]) if is_workflow_key(key) else {}
    if key not in found:
        raise NotFound(f"no workflow with key {key!r}", key=key)
    return found[key]


def _choices(value: str | Iterable[str] | None, name: str, known: Iterable[str]) -> list[str]:
    """``value`` as a list of known names: one, several (a list), or text with commas."""
    if value is None:
        return []
    parts = [value] if isinstance(value, str) else list(value)
    names: list[str] = []
    allowed = list(known)
    for part in parts:
        if not isinstance(part, str):
            raise BadRequest(f"{name} must be text, not {part!r}")
        for piece in part.split(","):
            piece = piece.strip()
            if not piece:
                continue
            if piece not in allowed:
                raise BadRequest(f"unknown {name} {piece!r} (known: {', '.join(allowed)})", **{name: piece})
            if piece not in names:
                names.append(piece)
    return names


def _moment(value: datetime | str | None, name: str) -> datetime | None:
    """A time as given (``datetime``, or ISO 8601 text), in UTC; one without a timezone is UTC."""
    if isinstance(value, datetime):
        moment: datetime | None = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif value is None or isinstance(value, str):
        moment = parse_time(value, name)
    else:
        raise BadRequest(f"{name} must be an ISO 8601 time such as 2026-11-22T13:00:00Z, not {value!r}")
    if moment is None:
        return None
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # 0001-01-01T00:00+01:00 is before the first UTC year
        raise BadRequest(f"{name} is out of range: {value!r}") from None


def _search_text(q: str | None) -> str | None:
    if q is None:
        return None
    if not isinstance(q, str):
        raise BadRequest(f"q must be text, not {q!r}")
    text = q.strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (undecodable bytes): no database takes it
        raise BadRequest("q must be text that can be written in UTF-8") from None
    if len(text) > MAX_SEARCH:
        raise BadRequest(f"q must be at most {MAX_SEARCH} characters long, not {len(text)}")
    return text or None


def _execution_id(value: int | str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value) if not isinstance(value, bool) else -1
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number <= MAX_ID:
        raise BadRequest(f"{name} must be an execution id (a whole number), not {value!r}", **{name: str(value)})
    return number


async def get_execution(execution_id: int | str) -> dict[str, Any]:
    """One execution: its summary, context, reply and jobs."""
    try:
        number = int(execution_id)
    except (TypeError, ValueError):
        raise NotFound(f"no execution with id {execution_id!r}") from None
    if not 0 < number < 2**63:  # ids are positive 64-bit integers; the database refuses more
        raise NotFound(f"no execution with id {number}", id=number)
    detail = await stored.execution_detail(number)
    if detail is None:
        raise NotFound(f"no execution with id {number}", id=number)
    return {
        **_summary(detail.summary, detail.version),
        "context": detail.context,
        "reply": detail.reply,
        "jobs": [
            {
                "node": job.node,
                "type": job.type,
                "status": job.status.value,
                "input": job.input,
                "result": job.result,
                "branch": job.branch,
                "error": job.error,
                "started_at": job.started_at.isoformat(),
                "finished_at": job.finished_at.isoformat(),
                "duration_ms": _ms(job.started_at, job.finished_at),
            }
            for job in detail.jobs
        ],
    }


def _summary(row: stored.ExecutionRow, version: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "workflow": row.workflow,
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


def _ms(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)
