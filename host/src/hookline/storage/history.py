"""Storage of the execution history's reads: the verbs :mod:`hookline.history` asks for (a page
of executions under any mix of filters, one execution with its jobs, each workflow's recent
activity). Nothing outside storage sees their SQL.

Written by hand, once per dialect, because the ORM would say them in ways that scan:

* several statuses are one index range each (``(workflow_id, status, id)`` or ``(status, id)``,
  newest first), merged, rather than ``status IN (...)``, which SQLite reads whole and sorts;
* the text search is in what the trigger received: the ``body``, ``query`` and ``headers`` of
  ``context``, as JSON text (keys and values), in any letter case. SQLite first looks for the
  text in the stored JSON as a whole (``LIKE``, fast) and only then in those three parts
  (``json_extract``, which parses); PostgreSQL looks in :data:`POSTGRES_SEARCH_TEXT`, which
  migration 0006 indexes with pg_trgm where it is available;
* a workflow's last execution is one probe of ``(workflow_id, id)``, its counts by status since
  a time one range of ``(workflow_id, created_at, status)``, read alone: the cost grows with the
  executions of the workflows asked about in that window, never with the whole history.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple, Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from hookline.status import JobStatus
from hookline.storage.models import Execution, ExecutionStatus, Job, Workflow
from hookline.storage.connection import default_connection

_EXECUTION = Execution._meta.db_table
_WORKFLOW = Workflow._meta.db_table
_FIELDS = Execution._meta.fields_map

#: PostgreSQL: the text ``q`` is looked for in, of the column ``{context}``. Migration 0006
#: indexes this very expression (GIN, pg_trgm); if the two differ, the index is not used and
#: every search reads the table (a test checks the plan).
POSTGRES_SEARCH_TEXT = (
    "(coalesce(({context} -> 'body')::text, '') || ' ' || coalesce(({context} -> 'query')::text, '')"
    " || ' ' || coalesce(({context} -> 'headers')::text, ''))"
)
#: SQLite: the same parts, as one JSON array.
_SQLITE_SEARCH_TEXT = "json_extract(e.\"context\", '$.body', '$.query', '$.headers')"

_SUMMARY_COLUMNS = (
    'e."id", (SELECT w."key" FROM "{workflow}" w WHERE w."id" = e."workflow_id") AS "workflow", e."status", '
    'e."mode", e."trigger_type", e."error", e."created_at", e."started_at", e."finished_at", e."replay_of"'
).format(workflow=_WORKFLOW)


@dataclass(frozen=True)
class ExecutionFilter:
    """Which executions a page holds. Each field given narrows it; all hold together."""

    workflow_id: int | None = None
    #: Any of these statuses.
    statuses: tuple[ExecutionStatus, ...] = ()
    #: Any of these modes (``sync``, ``async``, ``manual``, ``replay``).
    modes: tuple[str, ...] = ()
    #: Created at or after (timezone-aware).
    since: datetime | None = None
    #: Created before (timezone-aware).
    until: datetime | None = None
    #: In the ``body``, ``query`` or ``headers`` of the context, as JSON text, in any letter case.
    text: str | None = None
    #: Replays of this execution.
    replay_of: int | None = None
    #: Ids above this one.
    after: int | None = None
    #: Ids below this one (a page's cursor).
    before: int | None = None


class ExecutionRow(NamedTuple):
    """What an execution's summary shows (the attributes of :class:`Execution` it reads)."""

    id: int
    workflow: str
    status: ExecutionStatus
    mode: str
    trigger_type: str
    error: Any
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    replay_of: int | None


class JobRow(NamedTuple):
    """One node run of an execution, as its detail shows it (``input`` and ``result`` decoded)."""

    node: str
    type: str
    status: JobStatus
    input: Any
    result: Any
    branch: str | None
    error: Any
    started_at: datetime
    finished_at: datetime


class ExecutionDetail(NamedTuple):
    """One execution in full: its summary, the number of the version it ran, what its trigger
    received, its reply and its jobs in the order they ran."""

    summary: ExecutionRow
    version: int
    context: Any
    reply: Any
    jobs: list[JobRow]


class LastExecution(NamedTuple):
    id: int
    status: ExecutionStatus
    created_at: datetime


class _Params:
    """Values of one statement and their placeholders (``?``, or ``$n`` on PostgreSQL)."""

    def __init__(self, dialect: str) -> None:
        self.numbered = dialect != "sqlite"
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.numbered else "?"

    def add_all(self, values: Sequence[Any]) -> str:
        return ", ".join(self.add(value) for value in values)

    def add_planned(self, value: str | datetime) -> str:
        """A value the plan depends on (a search pattern, a time). PostgreSQL gets it written
        into the statement: asyncpg prepares each statement once, and after five runs
        PostgreSQL may plan a prepared one for any value (a generic plan), guessing how many
        rows a pattern or a time range selects, when the right index depends on exactly that
        (the trigram index for a rare text, the primary key for a common one)."""
        if not self.numbered:
            return self.add(value)
        if isinstance(value, datetime):
            return f"'{value.isoformat()}'::timestamptz"
        tag = "$q$"
        while tag in value or value.endswith(tag[:-1]):
            tag = f"$q{len(tag)}$"
        return f"{tag}{value}{tag}"


def _dialect(connection: BaseDBAsyncClient) -> str:
    return "sqlite" if connection.capabilities.dialect == "sqlite" else "postgres"


def _moment(value: datetime) -> datetime:
    # Stored times are UTC; SQLite compares them as text, which holds only within one offset.
    return value.astimezone(timezone.utc)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(params: _Params, dialect: str, text: str) -> str:
    """The condition of :attr:`ExecutionFilter.text`: the text as it appears inside a JSON
    string (quotes and backslashes escaped), within the body, query or headers."""
    if dialect == "sqlite":
        # The host stores JSON with non-ASCII characters escaped (\u00e9); other writers may not.
        needles = dict.fromkeys([json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]])
        patterns = [params.add(_like_pattern(needle)) for needle in needles]
        anywhere = " OR ".join(f"e.\"context\" LIKE {mark} ESCAPE '\\'" for mark in patterns)
        patterns = [params.add(_like_pattern(needle)) for needle in needles]
        in_parts = " OR ".join(f"{_SQLITE_SEARCH_TEXT} LIKE {mark} ESCAPE '\\'" for mark in patterns)
        return f"({anywhere}) AND ({in_parts})"
    # jsonb's text keeps non-ASCII characters as they are; backslash is ILIKE's escape.
    needle = json.dumps(text, ensure_ascii=False)[1:-1]
    return f"{POSTGRES_SEARCH_TEXT.format(context='e.context')} ILIKE {params.add_planned(_like_pattern(needle))}"


def _conditions(params: _Params, dialect: str, where: ExecutionFilter, status: ExecutionStatus | None) -> str:
    found: list[str] = []
    if where.workflow_id is not None:
        found.append(f'e."workflow_id" = {params.add(where.workflow_id)}')
    if status is not None:
        found.append(f'e."status" = {params.add(status.value)}')
    if where.modes:
        found.append(f'e."mode" IN ({params.add_all(where.modes)})')
    if where.since is not None:
        found.append(f'e."created_at" >= {params.add_planned(_moment(where.since))}')
    if where.until is not None:
        found.append(f'e."created_at" < {params.add_planned(_moment(where.until))}')
    if where.replay_of is not None:
        # No index on replay_of (most executions are no replay); a replay is newer than what it
        # replays, so only the executions after it are read.
        found.append(f'e."replay_of" = {params.add(where.replay_of)} AND e."id" > {params.add(where.replay_of)}')
    if where.after is not None:
        found.append(f'e."id" > {params.add(where.after)}')
    if where.before is not None:
        found.append(f'e."id" < {params.add(where.before)}')
    if where.text:
        found.append(_search(params, dialect, where.text))
    return " AND ".join(found) if found else "1 = 1"


def _page_statement(params: _Params, dialect: str, where: ExecutionFilter, limit: int) -> str:
    def branch(status: ExecutionStatus | None) -> str:
        return (
            f'SELECT {_SUMMARY_COLUMNS} FROM "{_EXECUTION}" e WHERE {_conditions(params, dialect, where, status)} '
            f'ORDER BY e."id" DESC LIMIT {params.add(limit)}'
        )

    if len(where.statuses) <= 1:
        return branch(where.statuses[0] if where.statuses else None)
    branches = " UNION ALL ".join(
        f"SELECT * FROM ({branch(status)}) AS s{n}" for n, status in enumerate(where.statuses)
    )
    return f'{branches} ORDER BY "id" DESC LIMIT {params.add(limit)}'


async def execution_page(where: ExecutionFilter, limit: int) -> list[ExecutionRow]:
    """Up to ``limit`` executions matching ``where``, newest (highest id) first."""
    connection = default_connection()
    dialect = _dialect(connection)
    params = _Params(dialect)
    statement = _page_statement(params, dialect, where, limit)
    _, rows = await connection.execute_query(statement, params.values)
    return [_execution_row(row) for row in rows]


def _execution_row(row: Any) -> ExecutionRow:
    return ExecutionRow(
        id=row[0],
        workflow=row[1],
        status=ExecutionStatus(row[2]),
        mode=row[3],
        trigger_type=row[4],
        error=_FIELDS["error"].to_python_value(row[5]),
        created_at=_FIELDS["created_at"].to_python_value(row[6]),
        started_at=_FIELDS["started_at"].to_python_value(row[7]),
        finished_at=_FIELDS["finished_at"].to_python_value(row[8]),
        replay_of=row[9],
    )


async def execution_detail(execution_id: int) -> ExecutionDetail | None:
    """Execution ``execution_id`` in full, or ``None`` if there is no such execution."""
    row = await Execution.filter(id=execution_id).prefetch_related("workflow", "version").first()
    if row is None:
        return None
    jobs = await Job.filter(execution_id=execution_id).order_by("position")
    summary = ExecutionRow(
        id=row.id,
        workflow=row.workflow.key,
        status=row.status,
        mode=row.mode,
        trigger_type=row.trigger_type,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        replay_of=row.replay_of,
    )
    return ExecutionDetail(
        summary=summary,
        version=row.version.number,
        context=row.context,
        reply=row.reply,
        jobs=[
            JobRow(
                node=job.node,
                type=job.type,
                status=job.status,
                input=_decoded(job.input),
                result=_decoded(job.result),
                branch=job.branch,
                error=job.error,
                started_at=job.started_at,
                finished_at=job.finished_at,
            )
            for job in jobs
        ],
    )


def _decoded(text: str | None) -> Any:
    """A job's ``input`` or ``result``: JSON text, as :class:`~hookline.storage.executions.ExecutionStore` stores it."""
    return None if text is None else json.loads(text)


async def workflow_ids(keys: Sequence[str]) -> dict[str, int]:
    """The ids of the workflows of ``keys`` that exist, by key."""
    if not keys:
        return {}
    rows = await Workflow.filter(key__in=list(keys)).values_list("key", "id")
    return {key: workflow_id for key, workflow_id in rows}


async def last_executions(workflow_ids: Sequence[int]) -> dict[int, LastExecution]:
    """The newest execution of each of ``workflow_ids`` that has one, by workflow id."""
    if not workflow_ids:
        return {}
    connection = default_connection()
    params = _Params(_dialect(connection))
    newest = (
        f'SELECT (SELECT max(x."id") FROM "{_EXECUTION}" x WHERE x."workflow_id" = w."id") '
        f'FROM "{_WORKFLOW}" w WHERE w."id" IN ({params.add_all(workflow_ids)})'
    )
    statement = (
        f'SELECT e."workflow_id", e."id", e."status", e."created_at" FROM "{_EXECUTION}" e '
        f'WHERE e."id" IN ({newest})'
    )
    _, rows = await connection.execute_query(statement, params.values)
    return {
        row[0]: LastExecution(row[1], ExecutionStatus(row[2]), _FIELDS["created_at"].to_python_value(row[3]))
        for row in rows
    }


async def counts_since(workflow_ids: Sequence[int], since: datetime) -> dict[int, Counter[ExecutionStatus]]:
    """How many executions each of ``workflow_ids`` has had since ``since``, by status (only
    workflows with some)."""
    if not workflow_ids:
        return {}
    connection = default_connection()
    statement, values = _counts_statement(_dialect(connection), workflow_ids, since)
    _, rows = await connection.execute_query(statement, values)
    counts: dict[int, Counter[ExecutionStatus]] = {}
    for workflow_id, status, count in rows:
        counts.setdefault(workflow_id, Counter())[ExecutionStatus(status)] = count
    return counts


def _counts_statement(dialect: str, workflow_ids: Sequence[int], since: datetime) -> tuple[str, list[Any]]:
    params = _Params(dialect)
    # SQLite would read (workflow_id, status, id) for its order, which is the GROUP BY's, and
    # then every row of those workflows for created_at (seconds, on a million); a unary plus
    # makes that order useless to it, so it reads (workflow_id, created_at, status) alone.
    status = '+"status"' if dialect == "sqlite" else '"status"'
    statement = (
        f'SELECT "workflow_id", "status", count(*) FROM "{_EXECUTION}" '
        f'WHERE "workflow_id" IN ({params.add_all(workflow_ids)}) AND "created_at" >= {params.add_planned(_moment(since))} '
        f'GROUP BY "workflow_id", {status}'
    )
    return statement, params.values
