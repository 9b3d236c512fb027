"""PostgreSQL's group commit (hookline.storage.pg_batch): the rows of concurrent writes go in
one statement per kind (new executions, outcomes, runs not kept), each write's own result comes
back (an outcome or a deletion fenced by its owner), a row the database refuses fails alone, and
when the database cannot write at all the writes queued behind the failed one fail with it
instead of waiting as long again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hookline import jsontext
from hookline.engine import utcnow
from hookline.status import ExecutionStatus, JobStatus
from hookline.storage import sql
from hookline.storage.connection import default_connection
from hookline.storage.errors import ConstraintViolation, unavailable
from hookline.storage.models import Execution, Job
from hookline.storage.pg_batch import PostgresBatches
from hookline.testing import HooklineTestApp

from conftest import _asyncpg_dsn

pytestmark = pytest.mark.parametrize(
    "hookline_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


class Counting:
    """The ORM's connection, counting the statements sent through it."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.statements = 0

    async def execute_query(self, query: str, values: list[Any]) -> Any:
        self.statements += 1
        return await self.connection.execute_query(query, values)

    async def execute_query_dict(self, query: str, values: list[Any]) -> Any:
        self.statements += 1
        return await self.connection.execute_query_dict(query, values)


async def a_workflow(hookline: HooklineTestApp) -> tuple[int, int]:
    definition = {"key": "batched", "trigger": {"type": "webhook"}, "nodes": []}
    first = await hookline.run_workflow(definition, {})
    row = await Execution.get(id=first["id"])
    return row.workflow_id, row.version_id


def row_of(execution_id: int, workflow_id: int, version_id: int, n: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": execution_id, "workflow_id": workflow_id, "version_id": version_id,
        "status": ExecutionStatus.SUCCEEDED, "mode": "sync", "trigger_type": "webhook", "context": {"n": n},
        "created_at": now, "started_at": now, "owner": None, "reply": {"status": 200, "headers": {}, "body": n},
        "error": None, "finished_at": now,
    }


def jobs_of(execution_id: int, count: int) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {"execution_id": execution_id, "position": i, "node": f"n{i}", "type": "echo",
         "status": JobStatus.SUCCEEDED, "input": jsontext.encode({"i": i}), "result": jsontext.encode({"i": i}), "error": None, "branch": None,
         "started_at": now, "finished_at": now}
        for i in range(count)
    ]


async def test_concurrent_writes_share_statements_and_all_land_with_their_jobs(hookline: HooklineTestApp) -> None:
    workflow_id, version_id = await a_workflow(hookline)
    connection = Counting(default_connection())
    batches = PostgresBatches()
    ids = await sql.reserve_ids(default_connection(), 40)
    await asyncio.gather(*(
        batches.insert(connection, row_of(i, workflow_id, version_id, n), jobs_of(i, n % 3))
        for n, i in enumerate(ids)
    ))
    assert connection.statements < len(ids)  # the first alone, the others together
    stored = {row.id: row for row in await Execution.filter(id__in=ids)}
    assert sorted(stored) == ids
    for n, i in enumerate(ids):
        assert stored[i].context == {"n": n} and stored[i].reply == {"status": 200, "headers": {}, "body": n}
        jobs = await Job.filter(execution_id=i).order_by("position")
        assert [jsontext.decode(job.result) for job in jobs] == [{"i": k} for k in range(n % 3)]


async def test_a_row_refused_by_the_database_fails_alone(hookline: HooklineTestApp) -> None:
    """A batch is all or nothing: when one row breaks a constraint (its workflow is gone), the
    rows are written again one by one and only that one fails."""
    workflow_id, version_id = await a_workflow(hookline)
    batches = PostgresBatches()
    connection = default_connection()
    ids = await sql.reserve_ids(connection, 6)
    rows = [row_of(i, workflow_id, version_id, n) for n, i in enumerate(ids)]
    rows[3]["workflow_id"] = workflow_id + 1000  # no such workflow
    results = await asyncio.gather(
        *(batches.insert(connection, row, jobs_of(row["id"], 2)) for row in rows), return_exceptions=True
    )
    assert [type(result) for result in results] == [type(None)] * 3 + [ConstraintViolation] + [type(None)] * 2
    assert sorted(row.id for row in await Execution.filter(id__in=ids)) == [i for i in ids if i != ids[3]]
    assert await Job.filter(execution_id=ids[3]).count() == 0


async def test_when_the_database_cannot_write_the_queued_writes_fail_with_the_batch(
    hookline: HooklineTestApp,
) -> None:
    """The table is locked by another transaction: the batch in flight waits out lock_timeout
    and fails; the writes that queued behind it fail with it (one statement sent in all), each
    caller told the database cannot write now, nothing written."""
    import asyncpg

    workflow_id, version_id = await a_workflow(hookline)
    connection = Counting(default_connection())
    batches = PostgresBatches()
    ids = await sql.reserve_ids(default_connection(), 5)
    admin = await asyncpg.connect(_asyncpg_dsn(hookline.host.settings.db_url))
    try:
        async with admin.transaction():
            await admin.execute(f'LOCK TABLE "{Execution._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
            first = asyncio.ensure_future(batches.insert(connection, row_of(ids[0], workflow_id, version_id, 0), []))
            while connection.statements == 0:  # the first batch is in flight, waiting for the lock
                await asyncio.sleep(0.01)
            queued = [
                asyncio.ensure_future(batches.insert(connection, row_of(i, workflow_id, version_id, n), jobs_of(i, 1)))
                for n, i in enumerate(ids[1:], 1)
            ]
            results = await asyncio.gather(first, *queued, return_exceptions=True)
    finally:
        await admin.close()
    assert all(isinstance(result, Exception) and unavailable(result) for result in results), results
    assert connection.statements == 1
    assert await Execution.filter(id__in=ids).count() == 0
    # The database writes again: so does the writer.
    await batches.insert(connection, row_of(ids[0], workflow_id, version_id, 0), [])
    assert await Execution.filter(id__in=ids).count() == 1


def running_row(execution_id: int, workflow_id: int, version_id: int, owner: str, key: str | None = None) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": execution_id, "workflow_id": workflow_id, "version_id": version_id, "status": ExecutionStatus.RUNNING,
        "mode": "async", "trigger_type": "webhook", "context": {}, "created_at": now, "started_at": now,
        "owner": owner, "dedup_key": key,
    }


async def test_concurrent_outcomes_share_a_statement_and_each_is_fenced_by_its_owner(hookline: HooklineTestApp) -> None:
    """Outcomes of runs of this process's, of another's and of one already finished, in one
    batch: each says whether it was written, and only those written get their jobs."""
    workflow_id, version_id = await a_workflow(hookline)
    connection = Counting(default_connection())
    batches = PostgresBatches()
    ids = await sql.reserve_ids(default_connection(), 30)
    owners = ["me" if n % 3 else "someone-else" for n in range(len(ids))]
    for i, owner in zip(ids, owners):
        await sql.insert_known(default_connection(), running_row(i, workflow_id, version_id, owner))
    now = utcnow()

    def outcome(n: int) -> dict[str, Any]:
        return {"status": ExecutionStatus.SUCCEEDED, "error": None, "reply": {"status": 200, "headers": {}, "body": n},
                "finished_at": now}

    written = await asyncio.gather(*(
        batches.finish(connection, i, "me", outcome(n), jobs_of(i, 2)) for n, i in enumerate(ids)
    ))
    assert written == [owner == "me" for owner in owners]
    assert connection.statements < len(ids)
    for n, (i, owner) in enumerate(zip(ids, owners)):
        row = await Execution.get(id=i)
        jobs = await Job.filter(execution_id=i).count()
        if owner == "me":
            assert row.status == ExecutionStatus.SUCCEEDED and row.reply["body"] == n and row.finished_at == now
            assert jobs == 2
        else:
            assert row.status == ExecutionStatus.RUNNING and row.reply is None and jobs == 0
    # Finished: no longer running, so nothing is written twice.
    assert await batches.finish(connection, ids[1], "me", outcome(0), jobs_of(ids[1], 2)) is False
    assert await Job.filter(execution_id=ids[1]).count() == 2


async def test_runs_not_kept_are_deleted_together_unless_another_holds_them_or_they_hold_a_key(
    hookline: HooklineTestApp,
) -> None:
    workflow_id, version_id = await a_workflow(hookline)
    batches = PostgresBatches()
    connection = default_connection()
    ids = await sql.reserve_ids(connection, 9)
    kinds = ["mine", "another's", "keyed"] * 3
    for i, kind in zip(ids, kinds):
        owner = "someone-else" if kind == "another's" else "me"
        key = f"{i:064d}" if kind == "keyed" else None
        await sql.insert_known(connection, running_row(i, workflow_id, version_id, owner, key))
    deleted = await asyncio.gather(*(batches.discard(connection, i, "me") for i in ids))
    assert deleted == [kind == "mine" for kind in kinds]
    left = sorted(row.id for row in await Execution.filter(id__in=ids))
    assert left == [i for i, kind in zip(ids, kinds) if kind != "mine"]

