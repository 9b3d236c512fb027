"""Durability through real ``hookline serve`` processes on 127.0.0.1, on SQLite and PostgreSQL:
an answer means the execution is committed and will end. A server SIGKILLed under load loses
nothing it acknowledged (async runs are re-queued and run at least once; sync runs caught midway
end ``interrupted`` if their row was written, having answered early, and leave no trace if it
was to be written when they ended); a write the database refuses is a 503 to retry, never the configured 2xx; a
SIGTERM lets the request in flight finish and leaves the queue for the next start.

The slow node comes from a test-only distribution written on a directory put on the servers'
PYTHONPATH (an entry point in a hand-written ``.dist-info``: no build, no pip). Each run of it
appends the execution's ``mark`` to the file named by ``HOOKLINE_TEST_RUN_LOG``, so that a test can
count how many times a workflow really ran, including runs whose outcome a kill never let store.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import _asyncpg_dsn
from hookline.testing import TEST_TOKEN, HooklineServer

pytestmark = pytest.mark.server

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}

NODES_MODULE = '''\
import asyncio
import os

from hookline import NodeResult, NodeType, hookimpl


class SleepNode(NodeType):
    name = "sleep"
    config_schema = {"type": "object", "properties": {"seconds": {"type": "number"}, "mark": {}}}

    async def execute(self, run):
        await asyncio.sleep(run.config.get("seconds", 0.1))
        log = os.environ.get("HOOKLINE_TEST_RUN_LOG")
        if log and run.config.get("mark") is not None:
            with open(log, "a") as file:  # one short line per write: appends do not interleave
                file.write(f"{run.config['mark']}\\n")
        return NodeResult(result={"slept": run.config.get("seconds", 0.1)})


@hookimpl
def register_node_types(register):
    register(SleepNode)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the ``hookline_durable`` plugin as an installed distribution."""
    root = tmp_path_factory.mktemp("durable-site")
    (root / "hookline_durable.py").write_text(NODES_MODULE)
    dist = root / "hookline_durable-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hookline-durable\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text("[hookline]\ndurable = hookline_durable\n")
    return root


def workflow(key: str, *, sync: bool, seconds: float, reply_first: bool = False, **extra: Any) -> dict[str, Any]:
    """Naps ``seconds``; a sync one replies ``{"id": ...}`` after its nap, or before it with
    ``reply_first`` (then its row is written when it replies, before it ends)."""
    nodes: list[dict[str, Any]] = [
        {"key": "nap", "type": "sleep", "config": {"seconds": seconds, "mark": "{{ $context.body.id }}"}},
    ]
    if sync:
        reply = {"key": "reply", "type": "response", "config": {"body": {"id": "{{ $context.body.id }}"}}}
        if reply_first:
            reply["config"]["end"] = False
        nodes.insert(0 if reply_first else 1, reply)
    return {"key": key, "sync": sync, "trigger": {"type": "webhook"}, "nodes": nodes, **extra}


class Servers:
    """Starts ``hookline serve`` processes on one database, one after the other, and kills them."""

    def __init__(self, db_url: str, site: Path, root: Path) -> None:
        self.db_url = db_url
        self.site = site
        self.root = root
        self.run_log = root / "runs.log"
        self.folder = root / "workflows"
        self.folder.mkdir()
        self.started: list[HooklineServer] = []

    def define(self, *definitions: dict[str, Any]) -> Servers:
        """The workflows every server started from now on applies at start."""
        for definition in definitions:
            (self.folder / f"{definition['key']}.json").write_text(json.dumps(definition))
        return self

    def start(self, **env: str) -> HooklineServer:
        environment = {"PYTHONPATH": str(self.site), "HOOKLINE_TEST_RUN_LOG": str(self.run_log), **env}
        server = HooklineServer(self.db_url, workflows=self.folder, cwd=self.root, env=environment)
        self.started.append(server)
        return server.start(self.root / f"server-{len(self.started)}.log")

    def runs(self) -> dict[str, int]:
        """How many times the slow node finished, per mark."""
        counts: dict[str, int] = {}
        if self.run_log.exists():
            for line in self.run_log.read_text().split():
                counts[line] = counts.get(line, 0) + 1
        return counts

    def logs(self) -> str:
        return "\n".join(f"--- {s.command}\n{s.log()}" for s in self.started)

    def stop_all(self) -> None:
        for server in self.started:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait(5)


@pytest.fixture
def servers(hookline_db_url: str, site: Path, tmp_path: Path) -> Iterator[Servers]:
    group = Servers(hookline_db_url, site, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def api(server: HooklineServer) -> httpx.Client:
    """A client of the server's management API (one connection for many calls)."""
    return httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10)


def executions(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every execution matching ``params`` (all pages)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/executions", params=query).json()
        found += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def wait_until_settled(client: httpx.Client, timeout: float) -> float:
    """Wait until no execution is queued or running; returns the seconds it took."""
    started = time.monotonic()
    while True:
        pending = executions(client, status="queued") + executions(client, status="running")
        if not pending:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{len(pending)} executions still pending after {timeout} s: {pending[:3]}")
        time.sleep(0.05)


# --- a SIGKILL under load ----------------------------------------------------------------------

async def test_a_sigkill_under_load_loses_nothing_acknowledged(servers: Servers) -> None:
    """300 calls, 16 at a time, one in three to a sync workflow; the server is SIGKILLed once 120
    have been answered. After a restart on the same database every acknowledged async call ran
    (once, or twice if its run was cut short) and every acknowledged sync call is stored with
    its answer. No sync execution is left running: those the kill caught midway end
    ``interrupted`` if they had answered early ("orders"), and left no trace if their row was
    to be written when they ended ("quotes": their callers got no answer either)."""
    servers.define(
        workflow("events", sync=False, seconds=0.05),
        workflow("orders", sync=True, seconds=0.2, reply_first=True),
        workflow("quotes", sync=True, seconds=0.2),
    )
    env = {"HOOKLINE_HEARTBEAT_INTERVAL": "0.2", "HOOKLINE_MAX_CONCURRENT_RUNS": "4"}
    first = await asyncio.to_thread(servers.start, **env)
    total, parallel, kill_after = 300, 16, 120
    answers: dict[str, httpx.Response | Exception] = {}
    killed_at: list[float] = []
    slots = asyncio.Semaphore(parallel)

    async def call(client: httpx.AsyncClient, number: int) -> None:
        key = "events" if number % 3 else ("orders" if number % 6 == 0 else "quotes")
        body_id = f"{key}-{number}"
        async with slots:
            try:
                answers[body_id] = await client.post(f"/api/webhooks/{key}", json={"id": body_id})
            except httpx.HTTPError as exc:
                answers[body_id] = exc
        answered = sum(isinstance(a, httpx.Response) for a in answers.values())
        if answered >= kill_after and not killed_at:
            first.process.kill()  # type: ignore[union-attr]
            killed_at.append(time.monotonic())

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as client:
        await asyncio.wait_for(asyncio.gather(*(call(client, n) for n in range(total))), 60)
    assert killed_at, "the load ended before the kill"
    await asyncio.to_thread(first.process.wait, 5)  # type: ignore[union-attr]

    acknowledged = {i: a for i, a in answers.items() if isinstance(a, httpx.Response) and 200 <= a.status_code < 300}
    unexpected = {i: (a.status_code, a.text) for i, a in answers.items() if isinstance(a, httpx.Response) and i not in acknowledged}
    assert not unexpected, unexpected
    assert len(acknowledged) >= kill_after

    second = await asyncio.to_thread(servers.start, **env)
    with api(second) as client:
        settled = wait_until_settled(client, 30)
        stored = {e["id"]: e for e in executions(client)}
        details = {i: client.get(f"/api/executions/{i}").json() for i in stored}
    runs = servers.runs()

    for body_id, answer in acknowledged.items():
        execution_id = int(answer.headers["x-hookline-execution"])
        assert execution_id in stored, f"{body_id} was acknowledged as {execution_id}, which is not stored"
        found = details[execution_id]
        assert found["context"]["body"] == {"id": body_id}
        if body_id.startswith("orders"):  # answered before its nap: the kill may have cut the nap
            assert found["status"] == "succeeded" or found["error"]["error"] == "interrupted", found
            assert runs.get(body_id, 0) <= 1, (body_id, runs.get(body_id))
        else:
            assert found["status"] == "succeeded", found
            assert 1 <= runs.get(body_id, 0) <= 2, (body_id, runs.get(body_id))
        if not body_id.startswith("events"):
            assert answer.json() == {"id": body_id}
            assert found["reply"]["body"] == {"id": body_id}

    by_workflow: dict[str, list[dict[str, Any]]] = {"events": [], "orders": [], "quotes": []}
    for found in stored.values():
        by_workflow[found["workflow"]].append(found)
    assert all(e["status"] == "succeeded" for e in by_workflow["events"]), [e for e in by_workflow["events"] if e["status"] != "succeeded"]
    # written when they end: a run the kill caught left nothing, neither running nor interrupted
    assert all(e["status"] == "succeeded" for e in by_workflow["quotes"]), [e for e in by_workflow["quotes"] if e["status"] != "succeeded"]
    caught = [i for i in answers if i.startswith("quotes") and i not in acknowledged and runs.get(i)]
    interrupted = [e for e in by_workflow["orders"] if e["status"] != "succeeded"]
    assert interrupted, "the kill caught no sync execution midway: the test proved nothing about 'interrupt'"
    for found in interrupted:
        assert found["status"] == "error" and found["error"]["error"] == "interrupted", found
    recovered = [tuple(map(int, m)) for m in re.findall(r"(\d+) re-queued, (\d+) interrupted", second.log())]
    requeued = sum(r for r, _ in recovered)
    assert requeued >= 1, "the kill caught no async execution running: the test proved nothing about 'requeue'"
    assert sum(i for _, i in recovered) == len(interrupted)
    ran_twice = [i for i, n in runs.items() if n > 1]
    assert not [i for i in ran_twice if not i.startswith("events")], "a sync execution ran again after the kill"
    print(
        f"\nload: {len(acknowledged)} acknowledged of {total} in {killed_at[0] - started:.2f} s before the kill;"
        f" {len(stored)} stored; settled {settled:.2f} s after the restart;"
        f" {requeued} async re-queued, {len(interrupted)} sync interrupted, {len(caught)} sync caught unwritten;"
        f" {len(ran_twice)} async ran twice"
    )


# --- a graceful stop ---------------------------------------------------------------------------


async def test_sigterm_finishes_the_request_in_flight_and_leaves_the_queue_for_the_next_start(servers: Servers) -> None:
    """One run slot: of four acknowledged async calls one runs, three wait. A SIGTERM while a
    sync call is in flight: that caller gets its answer, the running one finishes, the waiting
    ones stay queued (not run, not lost) and run, once, at the next start."""
    from hookline.host import Host
    from hookline.settings import Settings
    from hookline.storage.models import Execution

    servers.define(workflow("reply-slowly", sync=True, seconds=1.0), workflow("backlog", sync=False, seconds=0.5))
    first = await asyncio.to_thread(servers.start, HOOKLINE_MAX_CONCURRENT_RUNS="1")
    async with httpx.AsyncClient(base_url=first.base_url, timeout=20) as client:
        acknowledged = [await client.post("/api/webhooks/backlog", json={"id": f"b{n}"}) for n in range(4)]
        assert {a.status_code for a in acknowledged} == {200}
        in_flight = asyncio.create_task(client.post("/api/webhooks/reply-slowly", json={"id": "s1"}))
        await asyncio.sleep(0.3)
        first.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        stopping = time.monotonic()
        answer = await in_flight
    assert (answer.status_code, answer.json()) == (200, {"id": "s1"})
    assert await asyncio.to_thread(first.process.wait, 20) == 0, first.log()  # type: ignore[union-attr]
    stopped_in = time.monotonic() - stopping

    host = Host(Settings(db_url=servers.db_url))
    await host.open_database()
    try:
        left = {row.context["body"]["id"]: row.status.value for row in await Execution.all()}
    finally:
        await host.close_database()
    assert left["s1"] == "succeeded"
    backlog = {i: s for i, s in left.items() if i.startswith("b")}
    assert set(backlog.values()) <= {"succeeded", "queued"} and "queued" in backlog.values(), backlog
    assert servers.runs() == {"s1": 1, **{i: 1 for i, s in backlog.items() if s == "succeeded"}}

    second = await asyncio.to_thread(servers.start)
    with api(second) as client:
        await asyncio.to_thread(wait_until_settled, client, 10)
        assert {e["status"] for e in executions(client)} == {"succeeded"}
    assert servers.runs() == {"s1": 1, "b0": 1, "b1": 1, "b2": 1, "b3": 1}
    assert f"{list(backlog.values()).count('queued')} queued taken over" in second.log(), second.log()
    print(f"\nSIGTERM: stopped {stopped_in:.2f} s after the signal; left queued: {sorted(i for i, s in backlog.items() if s == 'queued')}")


# --- a client that goes away -----------------------------------------------------------------


async def test_a_caller_that_hangs_up_on_a_sync_call_leaves_no_execution_running(servers: Servers) -> None:
    """The socket closes (the client's own timeout) while the workflow runs: Sanic cancels the
    handler, the execution still ends and is stored (when it ends: its row is written then)."""
    servers.define(workflow("reply-slowly", sync=True, seconds=0.6))
    server = await asyncio.to_thread(servers.start)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=0.2) as client:
        for n in range(3):
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/api/webhooks/reply-slowly", json={"id": f"gone-{n}"})
    with api(server) as client:
        deadline = time.monotonic() + 10
        while len(stored := executions(client)) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert sorted(e["status"] for e in stored) == ["succeeded"] * 3
    assert servers.runs() == {"gone-0": 1, "gone-1": 1, "gone-2": 1}


# --- the database refuses the write ------------------------------------------------------------


async def call_both(server: HooklineServer, timeout: float) -> dict[str, tuple[httpx.Response | Exception, float]]:
    """One call to the sync and one to the async workflow, at once: answer (or error) and seconds."""

    async def call(client: httpx.AsyncClient, key: str) -> tuple[httpx.Response | Exception, float]:
        started = time.monotonic()
        try:
            answer: httpx.Response | Exception = await client.post(f"/api/webhooks/{key}", json={"id": f"{key}-refused"})
        except httpx.HTTPError as exc:
            answer = exc
        return answer, time.monotonic() - started

    async with httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as client:
        sync, background = await asyncio.gather(call(client, "orders"), call(client, "events"))
    return {"orders": sync, "events": background}


def assert_told_to_retry(answers: dict[str, tuple[httpx.Response | Exception, float]]) -> None:
    for key, (answer, seconds) in answers.items():
        assert isinstance(answer, httpx.Response), f"{key}: no answer within {seconds:.1f} s ({answer!r})"
        assert answer.status_code == 503, (key, answer.status_code, answer.text)
        assert answer.headers["retry-after"] == "5" and answer.json()["error"] == "unavailable"


def start_with_one_call_each(servers: Servers) -> HooklineServer:
    """Start a server and have each of the pair's workflows (sync ``orders``, async ``events``)
    run once, so that the failures that follow are measured against a working server."""
    server = servers.start()
    with api(server) as client:
        for key in ("orders", "events"):
            assert client.post(f"/api/webhooks/{key}", json={"id": f"{key}-before"}).status_code == 200
        wait_until_settled(client, 5)
    return server


def assert_nothing_stored_then_accepted(server: HooklineServer, before: int) -> None:
    with api(server) as client:
        assert len(executions(client)) == before  # the refused calls left nothing behind
        for key in ("orders", "events"):
            answer = client.post(f"/api/webhooks/{key}", json={"id": f"{key}-after"})
            assert answer.status_code == 200, answer.text
        wait_until_settled(client, 5)
        assert [e["status"] for e in executions(client)][: 2] == ["succeeded", "succeeded"]


def durable_pair(seconds: float = 0.01) -> tuple[dict[str, Any], dict[str, Any]]:
    return workflow("orders", sync=True, seconds=seconds), workflow("events", sync=False, seconds=seconds)


async def test_sqlite_locked_by_another_connection_is_a_503_to_retry(site: Path, tmp_path: Path) -> None:
    """Another program holds the database's write lock (BEGIN EXCLUSIVE): the insert waits out
    SQLite's busy timeout, fails, and the caller is told to retry."""
    servers = Servers(f"sqlite://{tmp_path / 'locked.db'}", site, tmp_path).define(*durable_pair())
    try:
        server = await asyncio.to_thread(servers.start)
        with api(server) as client:  # the workflows are warm in the server's cache
            for key in ("orders", "events"):
                assert client.post(f"/api/webhooks/{key}", json={"id": f"{key}-before"}).status_code == 200
            wait_until_settled(client, 5)
        locker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None, timeout=5)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            answers = await call_both(server, timeout=15)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert_told_to_retry(answers)
        assert_nothing_stored_then_accepted(server, before=2)
        print(f"\nSQLite locked: 503 after {answers['orders'][1]:.2f} s (sync), {answers['events'][1]:.2f} s (async)")
    finally:
        servers.stop_all()


@pytest.mark.postgres
async def test_postgres_refusing_inserts_is_a_503_to_retry(postgres_db_url: str, site: Path, tmp_path: Path) -> None:
    """A trigger makes PostgreSQL refuse every insert into the execution table, as a full disk
    or a read-only replica would."""
    import asyncpg

    servers = Servers(postgres_db_url, site, tmp_path).define(*durable_pair())
    try:
        server = await asyncio.to_thread(start_with_one_call_each, servers)
        admin = await asyncpg.connect(_asyncpg_dsn(postgres_db_url))
        try:
            await admin.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$;"
                "CREATE TRIGGER refuse BEFORE INSERT ON hookline_execution FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
            answers = await call_both(server, timeout=10)
            await admin.execute("DROP TRIGGER refuse ON hookline_execution")
        finally:
            await admin.close()
        assert_told_to_retry(answers)
        assert_nothing_stored_then_accepted(server, before=2)
    finally:
        servers.stop_all()


@pytest.mark.postgres
async def test_postgres_table_locked_by_another_transaction_is_a_503_in_bounded_time(
    postgres_db_url: str, site: Path, tmp_path: Path
) -> None:
    import asyncpg

    servers = Servers(postgres_db_url, site, tmp_path).define(*durable_pair())
    try:
        server = await asyncio.to_thread(start_with_one_call_each, servers)
        admin = await asyncpg.connect(_asyncpg_dsn(postgres_db_url))
        try:
            locked = admin.transaction()
            await locked.start()
            await admin.execute("LOCK TABLE hookline_execution IN ACCESS EXCLUSIVE MODE")
            answers = await call_both(server, timeout=6)  # HOOKLINE_DB_LOCK_TIMEOUT (3 s) answers well within it
            await locked.rollback()
        finally:
            await admin.close()
        with api(server) as client:
            wait_until_settled(client, 5)
            stored = [e for e in executions(client) if e["id"] > 2]
        print(f"\nPostgreSQL locked: answers {[(type(a).__name__, round(s, 2)) for a, s in answers.values()]};"
              f" stored after the lock was released: {[(e['workflow'], e['status']) for e in stored]}")
        assert_told_to_retry(answers)
        assert stored == []
    finally:
        servers.stop_all()
