"""The hot path's hand-written SQL (hookline.storage.sql, readers, columns) stores what the ORM would, on SQLite
and PostgreSQL: every value type, and more jobs than one INSERT takes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any, Callable

import pytest
from hookline import NodeResult, NodeRun, NodeType, hookimpl
from hookline.storage import readers, sql
from hookline.storage.columns import JOBS_PER_STATEMENT
from hookline.storage.connection import default_connection, dialect
from hookline.storage.pg_batch import PostgresBatches
from hookline.storage.group_commit import GroupCommit
from hookline.storage.models import Execution, Job, Setting
from hookline.testing import HooklineTestApp
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction


#: Configs the Echo type's check was called with.
CHECKED: list[Any] = []


class Echo(NodeType):
    name = "echo"
    config_schema = {}  # any JSON value

    @classmethod
    def check(cls, node: Any, workflow: Any) -> list[str]:
        CHECKED.append(node.config)
        return []

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result=run.config)


class EchoPlugin:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(Echo)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [EchoPlugin()]


async def insert_execution(values: dict[str, Any]) -> int:
    """A new execution row, with an id reserved as the execution store reserves them; its id."""
    async with in_transaction() as transaction:  # several statements on SQLite
        [execution_id] = await sql.reserve_ids(transaction, 1)
    await sql.insert_known(default_connection(), {**values, "id": execution_id})
    return execution_id


async def test_many_jobs_are_stored_in_order(hookline: HooklineTestApp) -> None:
    count = JOBS_PER_STATEMENT * 2 + 7
    nodes = [{"key": f"n{i}", "type": "echo", "config": {"i": i}} for i in range(count)]
    execution = await hookline.run_workflow({"key": "long", "trigger": {"type": "webhook"}, "nodes": nodes}, {"a": 1})
    assert execution["status"] == "succeeded"
    assert [job["result"] for job in execution["jobs"]] == [{"i": i} for i in range(count)]
    assert await Job.filter(execution_id=execution["id"]).count() == count


@pytest.mark.parametrize("jobs", [0, 2, JOBS_PER_STATEMENT + 1])
async def test_an_outcome_is_stored_only_by_the_owner_jobs_and_all(hookline: HooklineTestApp, jobs: int) -> None:
    """Finishing an execution (a batch's one statement on PostgreSQL, a transaction elsewhere)
    writes nothing, jobs included, when the row is no longer the writer's."""
    from hookline.engine import utcnow
    from hookline.storage.models import ExecutionStatus, JobStatus

    definition = {"key": "fence", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo"}]}
    first = await hookline.run_workflow(definition, {})
    template = await Execution.get(id=first["id"])
    now = utcnow()
    rows = {}
    for owner in ("me", "someone-else"):
        rows[owner] = await insert_execution({
            "workflow_id": template.workflow_id, "version_id": template.version_id,
            "status": ExecutionStatus.RUNNING, "mode": "sync", "trigger_type": "webhook", "context": {"n": 1},
            "created_at": now, "started_at": now, "owner": owner,
        })
    reply = {"status": 200, "headers": {}, "body": "ok"}
    outcome = {"status": ExecutionStatus.SUCCEEDED, "error": None, "reply": reply, "finished_at": now}

    def job_rows(execution_id: int) -> list[dict[str, Any]]:
        return [
            {
                "execution_id": execution_id, "position": i, "node": f"n{i}", "type": "echo",
                "status": JobStatus.SUCCEEDED, "input": '{"i":%d}' % i, "result": "null", "branch": None,
                "error": None, "started_at": now, "finished_at": now,
            }
            for i in range(jobs)
        ]

    async def store(execution_id: int, owner: str) -> bool:
        connection = default_connection()
        if dialect(connection) == "postgres":  # as the store writes it there: in a batch's statement
            return await PostgresBatches().finish(connection, execution_id, owner, outcome, job_rows(execution_id))
        async with in_transaction() as transaction:
            return await sql.store_outcome(transaction, execution_id, owner, outcome, job_rows(execution_id))

    assert await store(rows["someone-else"], "me") is False
    other = await Execution.get(id=rows["someone-else"])
    assert other.status == ExecutionStatus.RUNNING and other.reply is None
    assert await Job.filter(execution_id=rows["someone-else"]).count() == 0
    assert await store(rows["me"], "me") is True
    mine = await Execution.get(id=rows["me"])
    assert mine.status == ExecutionStatus.SUCCEEDED and mine.reply == outcome["reply"] and mine.finished_at == now
    stored = await Job.filter(execution_id=rows["me"]).order_by("position").values_list("node", flat=True)
    assert stored == [f"n{i}" for i in range(jobs)]
    assert await store(rows["me"], "me") is False  # finished: no longer running, nothing written twice
    assert await Job.filter(execution_id=rows["me"]).count() == jobs


async def test_the_idempotency_key_is_unique_per_workflow_through_a_partial_index(hookline: HooklineTestApp) -> None:
    """The unique index on (workflow, idempotency key) holds only executions that have a key
    (migration 0004): a key is still unique per workflow, executions without one are not in it."""
    from hookline.engine import utcnow
    from hookline.storage.models import ExecutionStatus

    connection = default_connection()
    if connection.capabilities.dialect == "sqlite":
        _, rows = await connection.execute_query(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'hookline_execution' AND sql IS NOT NULL"
        )
    else:
        _, rows = await connection.execute_query("SELECT indexdef FROM pg_indexes WHERE tablename = 'hookline_execution'")
    dedup = [row[0] for row in rows if "dedup_key" in row[0]]
    assert len(dedup) == 1 and "UNIQUE" in dedup[0].upper(), dedup
    assert "dedup_key" in dedup[0].split("WHERE", 1)[1] and "IS NOT NULL" in dedup[0].upper(), dedup

    definition = {"key": "keyed", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo"}]}
    template = await Execution.get(id=(await hookline.run_workflow(definition, {}))["id"])
    now = utcnow()

    def execution(key: str | None) -> dict[str, Any]:
        return {
            "workflow_id": template.workflow_id, "version_id": template.version_id, "status": ExecutionStatus.QUEUED,
            "mode": "async", "trigger_type": "webhook", "context": {}, "created_at": now, "dedup_key": key,
        }

    await insert_execution(execution("a" * 64))
    with pytest.raises(IntegrityError):
        await insert_execution(execution("a" * 64))
    await insert_execution(execution("b" * 64))
    await insert_execution(execution(None))
    await insert_execution(execution(None))
    assert await Execution.filter(workflow_id=template.workflow_id, dedup_key="a" * 64).count() == 1


async def test_a_queued_execution_is_claimed_and_read_once(hookline: HooklineTestApp) -> None:
    """The claim of a delivered execution returns what running it needs (one statement); a
    second claim, by anyone, gets nothing."""
    from hookline.engine import utcnow
    from hookline.storage.models import ExecutionStatus

    definition = {"key": "claimed", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo"}]}
    template = await Execution.get(id=(await hookline.run_workflow(definition, {}))["id"])
    context = {"body": {"text": "café 🙂", "n": 2**70, "list": [1.5, None, True]}, "headers": {"x-a": "1"}}
    now = utcnow()
    execution_id = await insert_execution({
        "workflow_id": template.workflow_id, "version_id": template.version_id, "status": ExecutionStatus.QUEUED,
        "mode": "webhook", "trigger_type": "webhook", "context": context, "created_at": now, "queued_at": now,
    })
    service = hookline.host.executions
    claimed = await service.store.claim_and_load(execution_id, service.process_id, now)
    assert claimed == sql.Claimed(template.version_id, context, "webhook")
    row = await Execution.get(id=execution_id)
    assert row.status == ExecutionStatus.RUNNING and row.owner == service.process_id and row.started_at == now
    assert await service.store.claim_and_load(execution_id, service.process_id, now) is None
    assert await sql.claim_and_load(default_connection(), execution_id, "another", now) is None
    assert (await Execution.get(id=execution_id)).owner == service.process_id


async def test_a_stored_version_is_read_as_stored_and_still_checked_against_the_plugins(
    hookline: HooklineTestApp,
) -> None:
    """A version is read back as its stored JSON text (straight SQL, weighed by its length) and
    not validated against the workflow schema again; what the installed plugins decide still
    applies: a template that no longer compiles makes the workflow unavailable, naming it."""
    from hookline.errors import DefinitionError
    from hookline.storage.models import Workflow, WorkflowVersion

    config = {"note": "café 🙂", "n": "{{ $context.body.n }}"}
    definition = {"key": "stored", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo", "config": config}]}
    await hookline.host.workflows.save(definition)
    row = await Workflow.get(key="stored")
    number, text = await readers.read_version(row.current_version_id)
    assert number == 1 and __import__("json").loads(text)["nodes"][0]["config"] == config
    workflows = hookline.host.workflows
    found = await workflows.find("stored")
    assert found is not None and found.compiled.nodes[0].definition.config == config
    assert workflows._cached_chars == len(text)
    assert await readers.read_version(row.current_version_id + 1000) is None

    broken = {**definition, "nodes": [{"key": "e", "type": "echo", "config": {"n": "{{ $context.body. }}"}}]}
    await WorkflowVersion.filter(id=row.current_version_id).update(definition=broken)
    workflows._compiled.clear()
    with pytest.raises(DefinitionError, match="could not be prepared"):
        await workflows.find("stored")


async def test_a_version_compiled_again_after_eviction_is_not_checked_again(hookline: HooklineTestApp) -> None:
    """The installed plugins check a stored version once per process: evicted from the cache
    and compiled again, it runs as before without their checks; a new version is checked."""
    workflows = hookline.host.workflows
    definition = {"key": "evicted", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo", "config": {"v": 1}}]}
    await workflows.save(definition)  # (checked when saved, as every definition)
    CHECKED.clear()
    first = await workflows.find("evicted")
    assert first is not None and CHECKED == [{"v": 1}]  # loaded: the plugins' check runs
    workflows._compiled.clear()
    workflows._cached_chars = 0
    again = await workflows.find("evicted")
    assert again is not None and again is not first and CHECKED == [{"v": 1}]  # not again
    assert again.compiled.nodes[0].definition.config == {"v": 1}
    execution = await hookline.run_workflow(definition, {"body": {}})
    assert execution["status"] == "succeeded"
    CHECKED.clear()
    await workflows.save({**definition, "nodes": [{"key": "e", "type": "echo", "config": {"v": 2}}]})
    assert CHECKED == [{"v": 2}]  # saving checks
    CHECKED.clear()
    assert (await workflows.find("evicted")).compiled.nodes[0].definition.config == {"v": 2}  # type: ignore[union-attr]
    assert CHECKED == [{"v": 2}]  # a new version: checked when first loaded


async def test_the_compiled_versions_kept_are_bounded_by_the_cache_setting(hookline: HooklineTestApp) -> None:
    """HOOKLINE_WORKFLOW_CACHE_MB bounds the compiled versions a process keeps (weighed by
    their stored definitions' length), least recently used out first."""
    from dataclasses import replace
    from types import SimpleNamespace

    from hookline.errors import ConfigurationError
    from hookline.settings import Settings
    from hookline.workflows import BYTES_PER_DEFINITION_CHAR, WorkflowService

    assert Settings.from_env({"HOOKLINE_WORKFLOW_CACHE_MB": "2"}).workflow_cache_mb == 2
    for wrong in ("0", "-1", "lots", "1.5"):
        with pytest.raises(ConfigurationError, match="HOOKLINE_WORKFLOW_CACHE_MB must be a whole number"):
            Settings.from_env({"HOOKLINE_WORKFLOW_CACHE_MB": wrong})
    settings = replace(hookline.host.settings, workflow_cache_mb=1)
    service = WorkflowService(SimpleNamespace(settings=settings, registry=hookline.host.registry))  # type: ignore[arg-type]
    limit = 2**20 // BYTES_PER_DEFINITION_CHAR
    note = "x" * (limit // 3)  # three such definitions do not fit, two do
    versions = []
    for n in range(3):
        await hookline.host.workflows.save(
            {"key": f"big-{n}", "trigger": {"type": "webhook"}, "nodes": [{"key": "e", "type": "echo", "config": {"note": note}}]}
        )
        versions.append((await readers.find_workflow(f"big-{n}"))["current_version_id"])  # type: ignore[index]
    for version in versions:
        await service.compiled_version(version)
    assert list(service._compiled) == versions[1:] and service._cached_chars <= limit
    await service.compiled_version(versions[1])  # used: the most recent now
    await service.compiled_version(versions[0])
    assert list(service._compiled) == [versions[1], versions[0]]


async def test_values_round_trip_through_the_orm(hookline: HooklineTestApp) -> None:
    odd = {"text": "café 🙂 'quoted' \"double\"", "list": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
    nodes = [{"key": "e", "type": "echo", "config": odd}, {"key": "s", "type": "echo", "config": "just text"}]
    execution = await hookline.run_workflow({"key": "types", "trigger": {"type": "webhook"}, "nodes": nodes}, odd)
    row = await Execution.get(id=execution["id"])
    assert row.context["body"] == odd and row.status.value == "succeeded" and row.mode == "manual"
    assert row.created_at.tzinfo is not None and row.finished_at >= row.started_at >= row.created_at
    assert [job["result"] for job in execution["jobs"]] == [odd, "just text"]
    found = await hookline.host.workflows.find("types")
    assert found is not None and found.enabled is True and found.key == "types"
    assert await hookline.host.workflows.find("nope") is None


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_grouped_writes_fail_alone_and_whole(hookline: HooklineTestApp) -> None:
    """On SQLite the hot path's writes are committed in groups: a write that fails leaves
    nothing behind (its earlier statements included), and the others of its group are kept."""
    group = GroupCommit()
    assert group.applies()

    def insert(*keys: str) -> Callable[[Any], Any]:
        def write(connection: Any) -> str:
            for key in keys:
                connection.execute('INSERT INTO "hookline_setting" ("key", "value") VALUES (?, ?)', [key, "v"])
            return "+".join(keys)

        return write

    results = await asyncio.gather(
        group.run(insert("a")), group.run(insert("b", "a")), group.run(insert("c")), return_exceptions=True
    )
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], IntegrityError)
    assert sorted(await Setting.filter(key__in=["a", "b", "c"]).values_list("key", flat=True)) == ["a", "c"]


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_a_group_with_a_failing_write_is_written_again_and_each_write_lands_once(hookline: HooklineTestApp) -> None:
    """A group is first written without a savepoint per write; when one fails, the whole
    transaction is rolled back and the group written again, each write alone: what the others
    did in the first attempt is not kept twice, and a group without failure runs each once."""
    group = GroupCommit()
    runs: list[str] = []

    def insert_new(prefix: str) -> Callable[[Any], Any]:
        def write(connection: Any) -> None:
            runs.append(prefix)
            key = f"{prefix}-{len(runs)}"  # another row each time it runs
            connection.execute('INSERT INTO "hookline_setting" ("key", "value") VALUES (?, ?)', [key, "v"])

        return write

    def fail(connection: Any) -> None:
        raise sqlite3.IntegrityError("refused")

    await asyncio.gather(group.run(insert_new("alone")), group.run(insert_new("alone")))
    assert runs == ["alone", "alone"]
    runs.clear()
    results = await asyncio.gather(
        group.run(insert_new("before")), group.run(fail), group.run(insert_new("after")), return_exceptions=True
    )
    assert results[0] is None and results[2] is None and isinstance(results[1], IntegrityError)
    assert runs == ["before", "before", "after"]  # rolled back at the failure, then each alone
    for prefix in ("alone", "before", "after"):
        expected = 2 if prefix == "alone" else 1
        assert await Setting.filter(key__startswith=f"{prefix}-").count() == expected


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_a_writer_cancelled_while_its_group_is_written_tells_the_truth(hookline: HooklineTestApp) -> None:
    """A shutdown cancelling the writer while the group is in the database thread: the group
    commits all the same, so its callers get their results (not "the writer stopped"), and the
    writes queued after it fail, unwritten."""
    group = GroupCommit()

    def slow_insert(connection: Any) -> str:
        time.sleep(0.3)
        connection.execute('INSERT INTO "hookline_setting" ("key", "value") VALUES (?, ?)', ["slow", "v"])
        return "slow"

    first = asyncio.ensure_future(group.run(slow_insert))
    await asyncio.sleep(0.1)  # the group is in the thread
    later = asyncio.ensure_future(group.run(lambda connection: "later"))
    await asyncio.sleep(0)
    group._writer.cancel()  # type: ignore[union-attr]
    assert await first == "slow"
    with pytest.raises(RuntimeError, match="the writer stopped"):
        await later
    assert await Setting.filter(key="slow").count() == 1


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_writes_queued_while_a_group_is_written_are_taken_by_the_same_call(hookline: HooklineTestApp) -> None:
    """The thread goes on with the writes queued while it wrote a group: one call to it, two
    groups, every caller answered with its own result."""
    group = GroupCommit()
    calls = 0
    drain = group._drain

    def counted(*args: Any) -> None:
        nonlocal calls
        calls += 1
        drain(*args)

    group._drain = counted  # type: ignore[method-assign]

    def slow_insert(connection: Any) -> str:
        time.sleep(0.2)
        connection.execute('INSERT INTO "hookline_setting" ("key", "value") VALUES (?, ?)', ["first", "v"])
        return "first"

    def insert(key: str) -> Callable[[Any], str]:
        return lambda connection: connection.execute(
            'INSERT INTO "hookline_setting" ("key", "value") VALUES (?, ?)', [key, "v"]
        ) and key

    first = asyncio.ensure_future(group.run(slow_insert))
    await asyncio.sleep(0.05)  # the first group is in the thread
    later = [asyncio.ensure_future(group.run(insert(f"k{i}"))) for i in range(5)]
    assert await asyncio.gather(first, *later) == ["first", "k0", "k1", "k2", "k3", "k4"]
    assert calls == 1
    assert await Setting.filter(key__in=["first", "k0", "k1", "k2", "k3", "k4"]).count() == 6


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_a_steady_stream_of_writes_lets_other_queries_through(hookline: HooklineTestApp) -> None:
    """Under writes that never stop, the thread hands the connection back after a few groups:
    a query through the ORM waits for those, not for the stream to end."""
    group = GroupCommit()
    group.GROUPS_PER_TURN = 2
    done: list[str] = []

    def slow(connection: Any) -> None:
        time.sleep(0.01)

    async def stream() -> None:
        writes = []
        for _ in range(100):  # a write every 5 ms for about half a second, each taking 10 ms
            writes.append(asyncio.ensure_future(group.run(slow)))
            await asyncio.sleep(0.005)
        await asyncio.gather(*writes)
        done.append("stream")

    async def query() -> None:
        await asyncio.sleep(0.05)  # the stream is under way
        await Setting.all().count()
        done.append("query")

    await asyncio.wait_for(asyncio.gather(stream(), query()), timeout=30)
    assert done == ["query", "stream"]


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_one_writer_at_a_time_however_the_writes_come(hookline: HooklineTestApp) -> None:
    """Writes that come in bursts, the queue emptying and filling again while the writer ends:
    never two writers (each would hold the connection in turn, and a query through the ORM
    would wait for all of them)."""
    group = GroupCommit()
    alive = most = 0
    write_groups = group._write

    async def counted() -> None:
        nonlocal alive, most
        alive += 1
        most = max(most, alive)
        try:
            await write_groups()
        finally:
            alive -= 1

    group._write = counted  # type: ignore[method-assign]
    def write(connection: Any) -> None:
        time.sleep(0.001)

    random = __import__("random").Random(7)
    writes = []
    for _ in range(100):
        for _ in range(random.randint(1, 4)):
            writes.append(asyncio.ensure_future(group.run(write)))
            time.sleep(0.001)  # the loop is busy (with calls) while the thread writes and finds none left
        await asyncio.sleep(random.choice([0, 0.001, 0.003]))
    await asyncio.gather(*writes)
    assert most == 1


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_a_writer_that_waited_for_another_process_pauses_between_its_groups(hookline: HooklineTestApp) -> None:
    """Alone on the file, the thread writes group after group; once a transaction had to wait
    for another writer (another process: here a connection of another thread), it leaves the
    lock free a moment between groups, so that the other one gets its turn."""
    group = GroupCommit()
    await group.run(lambda connection: None)
    assert group._shared_until == 0.0  # alone: no pause

    other = sqlite3.connect(default_connection().filename, isolation_level=None, check_same_thread=False)
    locked = threading.Event()

    def hold_the_lock() -> None:
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(0.05)
        other.execute("COMMIT")

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    locked.wait(5)
    assert await group.run(lambda connection: "written after the other") == "written after the other"
    holder.join()
    other.close()
    assert group._shared_until > time.monotonic() + group.SHARED_FOR / 2


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_a_group_waits_for_another_writer_up_to_the_busy_timeout(hookline: HooklineTestApp) -> None:
    """Another process's write transaction: the group tries again until it ends, or fails as
    SQLite would ("database is locked") once the connection's busy_timeout has passed; the
    connection keeps its busy_timeout for the ORM's own queries either way."""
    from tortoise.exceptions import OperationalError

    group = GroupCommit()
    orm = default_connection()

    async def busy_timeout() -> int:  # as the ORM's own queries see it
        _, rows = await orm.execute_query("PRAGMA busy_timeout")
        return rows[0][0]

    configured = await busy_timeout()
    assert configured == int(hookline.host.settings.db_lock_timeout * 1000)
    await orm.execute_query("PRAGMA busy_timeout=300")
    # Within a group, the connection waits for no lock itself (the group's own loop does).
    assert await group.run(lambda connection: connection.execute("PRAGMA busy_timeout").fetchone()[0]) == 0
    other = sqlite3.connect(default_connection().filename, isolation_level=None, check_same_thread=False)

    async def write_while_locked_for(seconds: float) -> tuple[float, Any]:
        locked = threading.Event()

        def hold_the_lock() -> None:
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(seconds)
            other.execute("COMMIT")

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        locked.wait(5)
        started = time.monotonic()
        try:
            outcome = await group.run(lambda connection: "written")
        except OperationalError as exc:
            outcome = exc
        elapsed = time.monotonic() - started
        await asyncio.to_thread(holder.join)
        return elapsed, outcome

    try:
        elapsed, outcome = await write_while_locked_for(0.1)
        assert outcome == "written" and elapsed > 0.05  # it waited for the other's commit
        elapsed, outcome = await write_while_locked_for(2.0)
        assert isinstance(outcome, OperationalError) and "locked" in str(outcome)
        assert 0.25 < elapsed < 1.8  # the timeout (0.3 s), not the other's commit
        assert await busy_timeout() == 300
    finally:
        other.close()
        await orm.execute_query(f"PRAGMA busy_timeout={configured}")


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_the_sqlite_lookup_reads_without_the_orm_and_sees_every_change_at_once(hookline: HooklineTestApp) -> None:
    """The webhook lookup on SQLite uses a read-only connection of the loop's thread; it sees a
    change committed through the ORM (another process's, as well) on the next call."""
    from hookline.storage.models import Workflow

    await hookline.host.workflows.save({"key": "looked-up", "trigger": {"type": "webhook"}, "nodes": []})
    found = await readers.find_workflow("looked-up")
    assert found is not None and found["enabled"] is True
    assert readers._readers.by_path, "the read-only connection was not used"
    await Workflow.filter(key="looked-up").update(enabled=False)
    assert (await readers.find_workflow("looked-up"))["enabled"] is False  # type: ignore[index]
    await Workflow.filter(key="looked-up").delete()
    assert await readers.find_workflow("looked-up") is None


@pytest.mark.parametrize("hookline_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_pooled_postgres_connections_skip_the_reset_query_and_still_roll_back(
    hookline: HooklineTestApp,
) -> None:
    """Hookline gives asyncpg's pool a reset that sends nothing (its default sends RESET ALL and
    more on every release); a transaction left open is still rolled back by the pool."""
    connection = default_connection()
    from hookline.storage.db import _release_as_is

    pool = connection._pool
    assert pool._reset is _release_as_is
    raw = await pool.acquire()
    try:
        await raw.execute("BEGIN")
        await raw.execute(f"INSERT INTO \"{Setting._meta.db_table}\" (key, value) VALUES ('left-open', 'x')")
    finally:
        await pool.release(raw)
    again = await pool.acquire()
    try:
        assert not again.is_in_transaction()
        assert await again.fetchval(f"SELECT count(*) FROM \"{Setting._meta.db_table}\" WHERE key = 'left-open'") == 0
    finally:
        await pool.release(again)


async def test_a_database_without_maintenance_is_reported_with_what_to_do(hookline: HooklineTestApp) -> None:
    """The server warns at start when nothing will analyze its tables (the inserts' plans then
    stay those made on empty tables); it says nothing when autovacuum runs."""
    from hookline.storage.db import maintenance_problem

    problem = await maintenance_problem()
    if dialect(default_connection()) == "sqlite":
        assert problem is None
        return
    _, rows = await default_connection().execute_query("SHOW autovacuum")
    if rows[0][0] == "off":
        assert problem is not None and "autovacuum is off" in problem and "ANALYZE" in problem
    else:
        assert problem is None
