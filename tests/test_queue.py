"""The queue (``hookline.queue``): queued executions' ids through taskiq, in-process (``memory``) or
through a Redis stream shared by ingress and worker processes (several hosts in one interpreter
here, each a process of its own: see test_recovery). The database stays the source of truth: an id
delivered twice runs once, a message lost (Redis down, Redis emptied) is sent again, a worker that
stops gives its runs back to the others.

The Redis tests need Redis at ``HOOKLINE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``);
the one that stops and restarts Redis starts a ``redis-server`` of its own on a free port.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from click.testing import CliRunner

from conftest import REDIS_URL
from hookline.errors import ConfigurationError
from hookline.host import Host
from hookline.plugins import make_plugin_manager
from hookline.settings import Settings
from hookline.storage.models import Execution, ExecutionStatus
from hookline.testing import free_port
from test_recovery import Naps, finished, left_running, napping

INTERVAL = 0.2


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"HOOKLINE_ROLE": "ingress"}, "role 'ingress' needs a queue shared between processes"),
        ({"HOOKLINE_ROLE": "worker"}, "role 'worker' needs a queue shared between processes"),
        ({"HOOKLINE_ROLE": "boss", "HOOKLINE_QUEUE_URL": "redis://127.0.0.1:6379/0"}, "unknown role 'boss'"),
        ({"HOOKLINE_QUEUE_URL": "amqp://guest:secret@127.0.0.1/"}, "unsupported queue URL 'amqp://guest:***@127.0.0.1/'"),
        ({"HOOKLINE_QUEUE_URL": "redis://"}, "names no host"),
        ({"HOOKLINE_QUEUE_NAME": "a b"}, "queue name 'a b'"),
        ({"HOOKLINE_REDELIVER_AFTER": "soon"}, "HOOKLINE_REDELIVER_AFTER"),
    ],
)
def test_bad_queue_settings_are_refused_naming_the_problem(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("*", r"\*").replace("(", r"\(")):
        Settings.from_env(values)


def test_flags_and_environment_combine_before_the_check() -> None:
    settings = Settings.from_env({"HOOKLINE_ROLE": "worker"}, queue_url="redis://127.0.0.1:6379/0")
    assert (settings.role, settings.queue_url, settings.redeliver_after) == ("worker", "redis://127.0.0.1:6379/0", 60.0)


def test_cli_refuses_a_role_without_a_shared_queue(tmp_path: Path) -> None:
    from hookline.cli.main import build_cli

    runner = CliRunner()
    pm = make_plugin_manager()
    db = f"sqlite://{tmp_path / 'x.db'}"
    for args in (["serve", "--role", "ingress", "--db", db], ["worker", "--db", db]):
        result = runner.invoke(build_cli(pm), args, obj={"pm": pm}, env={"HOOKLINE_QUEUE_URL": ""})
        assert result.exit_code != 0
        assert "needs a queue shared between processes" in result.output, result.output
    result = runner.invoke(build_cli(pm), ["serve", "--role", "worker", "--queue", "redis://127.0.0.1:6379/0",
                                           "--workflows", str(tmp_path), "--db", db], obj={"pm": pm})
    assert result.exit_code == 2 and "--workflows: a worker answers no HTTP" in result.output


async def test_an_unreachable_redis_is_a_clear_error_at_start(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    host = Host(Settings(db_url=f"sqlite://{tmp_path / 'x.db'}", queue_url=f"redis://127.0.0.1:{port}/0"))
    with pytest.raises(ConfigurationError, match=f"could not reach the queue at redis://127.0.0.1:{port}/0"):
        await host.queue.start()


# --- the memory queue ----------------------------------------------------------------------------


async def test_the_memory_queue_runs_what_this_process_queues_through_taskiq(hookline_db_url: str) -> None:
    naps = Naps()
    host = Host(Settings(db_url=hookline_db_url, heartbeat_interval=INTERVAL), pm=make_plugin_manager(extra_plugins=[naps]))
    await host.migrate()
    await host.open_database()
    try:
        await host.start()
        workflow = await host.workflows.save(napping("events", sync=False)) and await host.workflows.find("events")
        assert workflow is not None
        ids = [await host.executions.enqueue(workflow, {"body": {"n": n}}) for n in range(5)]
        rows = [await finished(i) for i in ids]
        assert {(r.status, r.owner) for r in rows} == {(ExecutionStatus.SUCCEEDED, host.executions.process_id)}
        assert sorted(naps.runs) == ids
        assert not host.queue.shared and host.queue.receiving
        from taskiq import InMemoryBroker

        assert isinstance(host.queue._broker, InMemoryBroker)
    finally:
        await host.stop()
        await host.close_database()


# --- Redis ---------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def cluster(hookline_db_url: str, queue_name: str) -> AsyncIterator[Callable[..., Any]]:
    """Makes hosts on one database and one Redis stream: ``make(role)`` returns a started host."""
    naps = Naps()
    made: list[Host] = []
    first: Host | None = None

    async def make(role: str = "all", queue_url: str = REDIS_URL, with_naps: bool = True, **more: Any) -> Host:
        nonlocal first
        values = {"heartbeat_interval": INTERVAL, "shutdown_grace": 2, "redeliver_after": 1.0, **more}
        settings = Settings(db_url=hookline_db_url, queue_url=queue_url, queue_name=queue_name, role=role, **values)
        host = Host(settings, pm=make_plugin_manager(extra_plugins=[naps] if with_naps else []))
        if first is None:
            first = host
            await host.migrate()
            await host.open_database()
        made.append(host)
        await host.start()
        return host

    make.naps = naps  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for host in made:
            await host.stop()
        if first is not None:
            await first.close_database()


async def test_an_ingress_queues_and_a_worker_runs(cluster: Callable[..., Any]) -> None:
    ingress = await cluster("ingress")
    worker = await cluster("worker")
    assert ingress.queue.shared and not ingress.queue.receiving and worker.queue.receiving
    await ingress.workflows.save(napping("events", sync=False))
    workflow = await ingress.workflows.find("events")
    ids = [await ingress.executions.enqueue(workflow, {"body": {"n": n}}) for n in range(10)]
    rows = [await finished(i) for i in ids]
    assert {(r.status, r.owner) for r in rows} == {(ExecutionStatus.SUCCEEDED, worker.executions.process_id)}
    assert sorted(cluster.naps.runs) == ids  # type: ignore[attr-defined]
    assert all(r.queued_at is not None for r in rows)


async def test_an_id_delivered_twice_runs_once(cluster: Callable[..., Any]) -> None:
    ingress = await cluster("ingress")
    await cluster("worker")
    await cluster("worker")
    await ingress.workflows.save(napping("events", sync=False, seconds=0.2))
    workflow = await ingress.workflows.find("events")
    execution_id = await ingress.executions.enqueue(workflow, {"body": {}})
    for _ in range(3):  # at-least-once delivery: the same message again, to both workers
        await ingress.queue.send(execution_id)
    await finished(execution_id)
    await asyncio.sleep(0.3)
    assert cluster.naps.runs == [execution_id]  # type: ignore[attr-defined]


async def test_a_message_lost_with_redis_is_sent_again_from_the_database(cluster: Callable[..., Any]) -> None:
    """A queued row whose message never reached the stream (Redis emptied, or a send that failed):
    after redeliver_after, recovery sends it again; a worker runs it, once."""
    ingress = await cluster("ingress")
    await ingress.workflows.save(napping("events", sync=False))
    workflow = await ingress.workflows.find("events")
    from hookline.engine import utcnow

    lost = await Execution.create(
        workflow_id=workflow.id, version_id=workflow.compiled.version_id, status=ExecutionStatus.QUEUED, mode="async",
        trigger_type="webhook", context={"body": {"lost": True}}, created_at=utcnow(), queued_at=utcnow(),
    )
    worker = await cluster("worker")
    await asyncio.sleep(0.3)
    assert (await Execution.get(id=lost.id)).status == ExecutionStatus.QUEUED  # not before redeliver_after
    row = await finished(lost.id, timeout=10)  # the periodic recovery (every 3 heartbeats) sends it
    assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, worker.executions.process_id)
    assert cluster.naps.runs == [lost.id]  # type: ignore[attr-defined]


async def test_a_worker_that_stops_gives_its_runs_back_to_the_others(cluster: Callable[..., Any]) -> None:
    """A graceful stop shorter than the run: the run is cancelled, the row goes back to queued and
    is sent again at once; the other worker runs it."""
    ingress = await cluster("ingress")
    leaving = await cluster("worker", shutdown_grace=0.1)
    await ingress.workflows.save(napping("slow", sync=False, seconds=1.0))
    workflow = await ingress.workflows.find("slow")
    execution_id = await ingress.executions.enqueue(workflow, {"body": {}})
    deadline = time.monotonic() + 5
    while (await Execution.get(id=execution_id)).status != ExecutionStatus.RUNNING:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    staying = await cluster("worker")
    await leaving.stop()
    row = await finished(execution_id, timeout=10)
    assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, staying.executions.process_id)
    # The worker that left is no longer listed in the consumer group; the one staying is.
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        consumers = {c["name"] for c in await client.xinfo_consumers(ingress.settings.queue_name, ingress.settings.queue_name)}
    finally:
        await client.aclose()
    assert staying.executions.process_id in consumers and leaving.executions.process_id not in consumers


@pytest.fixture
def own_redis(tmp_path: Path, queue_name: str) -> Iterator[Callable[[], str]]:
    """A redis-server of this test's own on a free port; calling the fixture's value (re)starts it
    (on the same port) and returns its URL; ``own_redis.stop()`` stops it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.5).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def stop() -> None:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)

    start.stop = stop  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        stop()


async def test_redis_going_away_loses_nothing(cluster: Callable[..., Any], own_redis: Callable[[], str]) -> None:
    """Redis stops (and comes back empty: it keeps nothing on disk): the calls made meanwhile are
    stored and acknowledged; their messages are sent again once Redis is back, and run."""
    url = own_redis()
    ingress = await cluster("ingress", queue_url=url)
    worker = await cluster("worker", queue_url=url)
    await ingress.workflows.save(napping("events", sync=False))
    workflow = await ingress.workflows.find("events")
    before = await ingress.executions.enqueue(workflow, {"body": {"n": 0}})
    await finished(before)

    own_redis.stop()  # type: ignore[attr-defined]
    during = [await ingress.executions.enqueue(workflow, {"body": {"n": n}}) for n in (1, 2)]
    assert {(await Execution.get(id=i)).status for i in during} == {ExecutionStatus.QUEUED}

    own_redis()  # empty: the stream, its group and its messages are gone
    rows = [await finished(i, timeout=20) for i in during]
    assert {(r.status, r.owner) for r in rows} == {(ExecutionStatus.SUCCEEDED, worker.executions.process_id)}
    assert sorted(cluster.naps.runs) == [before, *during]  # type: ignore[attr-defined]


async def test_an_ingress_without_the_node_type_re_queues_a_dead_worker_s_run_for_the_others(
    cluster: Callable[..., Any],
) -> None:
    """Ingresses need not have every node type installed: recovering a dead worker's execution
    whose nodes it cannot compile, an ingress re-queues it (the workflow says ``requeue``) rather
    than ending it; a worker that has the type runs it."""
    # A heartbeat long enough that no stall of a loaded machine makes it hold back its recovery.
    ingress = await cluster("ingress", with_naps=False, heartbeat_interval=2)
    assert "nap" not in ingress.registry.nodes
    with_nap = Host(ingress.settings, pm=make_plugin_manager(extra_plugins=[cluster.naps]))  # type: ignore[attr-defined]
    await with_nap.workflows.save(napping("slow", sync=False))  # saved where the type is known
    execution_id = await left_running(with_nap, "slow", "dead-worker", silent_for=5)
    assert await ingress.executions.recover() == (1, 0)
    assert (await Execution.get(id=execution_id)).status == ExecutionStatus.QUEUED
    survivor = await cluster("worker")
    row = await finished(execution_id, timeout=10)
    assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, survivor.executions.process_id)


async def test_rows_waiting_behind_an_unread_stream_are_not_sent_again(cluster: Callable[..., Any]) -> None:
    """While the workers have not read everything sent (the group's lag), a row queued longer than
    redeliver_after is waiting its turn: recovery does not send it again (each resend would be one
    more message for busy workers). Once the stream is read, a row still queued is sent again."""
    ingress = await cluster("ingress", heartbeat_interval=2)
    await ingress.workflows.save(napping("events", sync=False))
    workflow = await ingress.workflows.find("events")
    waiting = [await ingress.executions.enqueue(workflow, {"body": {"n": n}}) for n in range(3)]
    assert await ingress.queue.behind()
    await asyncio.sleep(1.2)  # longer than redeliver_after
    before = {row.id: row.queued_at for row in await Execution.filter(id__in=waiting)}
    await ingress.executions.recover()
    assert {row.id: row.queued_at for row in await Execution.filter(id__in=waiting)} == before  # not sent again
    await cluster("worker")
    rows = [await finished(i, timeout=10) for i in waiting]
    assert {r.status for r in rows} == {ExecutionStatus.SUCCEEDED}
    assert not await ingress.queue.behind()
    assert sorted(cluster.naps.runs) == waiting  # type: ignore[attr-defined]
