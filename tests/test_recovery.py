"""Recovery of executions left ``running`` by processes that stopped, in-process, on SQLite and
PostgreSQL: several :class:`Host` objects on one database stand for several processes (each has
its own process id and heartbeat), and rows are crafted where a crash would have left them.

What a dead process left is re-queued and run (``recovery: requeue``) or ended ``error``
``interrupted`` (``recovery: interrupt``); what a live process runs, a manual run included, is
left alone; two processes recovering at once recover each execution once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, AsyncIterator, Callable

import pytest
import pytest_asyncio

from hookline import NodeResult, NodeRun, NodeType, hookimpl
from hookline.engine import utcnow
from hookline.host import Host
from hookline.plugins import make_plugin_manager
from hookline.settings import Settings
from hookline.storage.models import Execution, ExecutionStatus, Job, Process

#: Heartbeat of the hosts under test: a process silent for 0.3 s is taken for dead.
INTERVAL = 0.1


class Naps:
    """A ``nap`` node type that records the execution of every run it starts (a plugin object per
    test, shared by the hosts of that test)."""

    def __init__(self) -> None:
        self.runs: list[int | None] = []

    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        runs = self.runs

        class Nap(NodeType):
            name = "nap"
            config_schema = {"type": "object", "properties": {"seconds": {"type": "number"}}}

            async def execute(self, run: NodeRun) -> NodeResult:
                runs.append(run.execution_id)
                await asyncio.sleep(run.config.get("seconds", 0.05))
                return NodeResult(result="rested")

        register(Nap)


def napping(key: str, *, sync: bool, seconds: float = 0.05, **extra: Any) -> dict[str, Any]:
    return {"key": key, "sync": sync, "trigger": {"type": "webhook"},
            "nodes": [{"key": "nap", "type": "nap", "config": {"seconds": seconds}}], **extra}


@pytest.fixture
def naps() -> Naps:
    return Naps()


@pytest_asyncio.fixture
async def processes(hookline_db_url: str, naps: Naps) -> AsyncIterator[Callable[..., Host]]:
    """Makes hosts on one migrated, open database: each one a process of its own."""
    made: list[Host] = []

    def make(heartbeat_interval: float = INTERVAL, **more: Any) -> Host:
        settings = Settings(db_url=hookline_db_url, heartbeat_interval=heartbeat_interval, shutdown_grace=2, **more)
        host = Host(settings, pm=make_plugin_manager(extra_plugins=[naps]))
        made.append(host)
        return host

    first = make()
    await first.migrate()
    await first.open_database()
    try:
        yield make
    finally:
        for host in made:
            await host.executions.drain(2)
            await host.executions.close()
        await first.close_database()


async def left_running(host: Host, key: str, owner: str | None, *, silent_for: float | None, mode: str = "async") -> int:
    """An execution of ``key`` left ``running`` by process ``owner``, whose last heartbeat was
    ``silent_for`` seconds ago (``None``: it has no process row at all)."""
    workflow = await host.workflows.find(key)
    assert workflow is not None
    now = utcnow()
    if owner is not None and silent_for is not None:
        beat = now - timedelta(seconds=silent_for)
        await Process.update_or_create(
            id=owner, defaults={"hostname": "elsewhere", "machine": "elsewhere", "pid": 4242, "started_at": beat, "heartbeat_at": beat,
                                "expires_at": beat + timedelta(seconds=3 * INTERVAL)}
        )
    row = await Execution.create(
        workflow_id=workflow.id, version_id=workflow.compiled.version_id, status=ExecutionStatus.RUNNING, mode=mode,
        trigger_type="webhook", context={"body": {"left_by": owner}}, created_at=now, started_at=now, owner=owner,
    )
    return row.id


async def run_started(naps: Naps, host: Host, key: str = "events") -> int:
    """An execution of ``key`` enqueued in ``host``, once its nap has started."""
    workflow = await host.workflows.find(key)
    assert workflow is not None
    execution_id = await host.executions.enqueue(workflow, {"body": {}})
    while naps.runs != [execution_id]:
        await asyncio.sleep(0.01)
    return execution_id


async def finished(execution_id: int, timeout: float = 5.0) -> Execution:
    """The row once it is neither queued nor running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = await Execution.get(id=execution_id)
        if row.status.finished:
            return row
        if loop.time() > deadline:
            raise AssertionError(f"execution {execution_id} still {row.status.value} after {timeout} s")
        await asyncio.sleep(0.02)


async def die(host: Host) -> None:
    """What a SIGKILL does to a process: its heartbeat, recovery and runs stop, and nothing is
    written."""
    service = host.executions
    running = await Execution.filter(status=ExecutionStatus.RUNNING, owner=service.process_id).values_list("id", flat=True)
    tasks = [task for task in (service.lease._heartbeat, service.recovery._periodic, *service.runner._tasks) if task is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # cancelling wrote what a graceful stop writes: put the rows back as a kill leaves them
    await Execution.filter(id__in=list(running)).update(status=ExecutionStatus.RUNNING, owner=service.process_id)


async def test_a_dead_process_s_executions_are_requeued_or_interrupted_a_live_one_s_are_not(
    processes: Callable[..., Host], naps: Naps
) -> None:
    host = processes()
    await host.workflows.save(napping("events", sync=False))
    await host.workflows.save(napping("orders", sync=True))
    requeue = await left_running(host, "events", "dead-process", silent_for=5)
    interrupt = await left_running(host, "orders", "dead-process", silent_for=5, mode="sync")
    unregistered = await left_running(host, "events", None, silent_for=None)  # a row older than heartbeats
    live = await left_running(host, "events", "live-process", silent_for=0)
    live_sync = await left_running(host, "orders", "live-process", silent_for=0, mode="sync")

    assert await host.executions.recover() == (2, 1)

    for execution_id in (requeue, unregistered):
        row = await finished(execution_id)
        assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, host.executions.process_id)
        assert [job.node for job in await Job.filter(execution_id=execution_id)] == ["nap"]
    row = await Execution.get(id=interrupt)
    assert row.status == ExecutionStatus.ERROR and row.error["error"] == "interrupted" and row.finished_at is not None
    assert await Job.filter(execution_id=interrupt).count() == 0
    assert sorted(naps.runs) == sorted([requeue, unregistered])  # the interrupted one never ran again
    for execution_id in (live, live_sync):
        row = await Execution.get(id=execution_id)
        assert (row.status, row.owner) == (ExecutionStatus.RUNNING, "live-process")


async def test_a_process_that_stops_beating_is_recovered_by_the_heartbeat_of_another(
    processes: Callable[..., Host], naps: Naps
) -> None:
    """No call to recover() by hand: the live process's heartbeat loop finds the dead one's work
    once it has been silent for three intervals."""
    alive, dying = processes(), processes()
    await alive.workflows.save(napping("events", sync=False, seconds=0.4))
    await alive.executions.open()
    await dying.executions.open()
    workflow = await dying.workflows.find("events")
    assert workflow is not None
    execution_id = await dying.executions.enqueue(workflow, {"body": {"n": 1}})
    while naps.runs != [execution_id]:  # running in the dying process
        await asyncio.sleep(0.01)
    await die(dying)
    assert (await Execution.get(id=execution_id)).status == ExecutionStatus.RUNNING
    row = await finished(execution_id, timeout=5)
    assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, alive.executions.process_id)
    assert naps.runs == [execution_id, execution_id]  # at least once: the cut-short run, then the recovered one


async def test_a_dead_process_s_queued_backlog_is_run_by_a_live_one(processes: Callable[..., Host], naps: Naps) -> None:
    alive, dying = processes(), processes(max_concurrent_runs=1)
    await alive.workflows.save(napping("events", sync=False, seconds=0.3))
    await alive.executions.open()
    await dying.executions.open()
    workflow = await dying.workflows.find("events")
    assert workflow is not None
    backlog = [await dying.executions.enqueue(workflow, {"body": {"n": n}}) for n in range(3)]
    while not naps.runs:
        await asyncio.sleep(0.01)
    await die(dying)
    for execution_id in backlog:
        assert (await finished(execution_id, timeout=3)).status == ExecutionStatus.SUCCEEDED


async def test_a_manual_run_in_progress_is_not_taken_for_dead(processes: Callable[..., Host], naps: Naps) -> None:
    """``hookline run`` registers its process for the time of the run: a server recovering
    meanwhile leaves the run alone, however long it takes."""
    server, cli = processes(), processes()
    await server.workflows.save(napping("slow", sync=False, seconds=0.8))
    await server.executions.open(recover=False)  # registered, with a heartbeat, as a server is
    run = asyncio.create_task(cli.executions.run_manual("slow", {}))
    recovered = []
    while not run.done():
        recovered.append(await server.executions.recover())
        await asyncio.sleep(INTERVAL)
    execution = run.result()
    assert execution["status"] == "succeeded" and execution["mode"] == "manual"
    assert len(recovered) >= 5 and set(recovered) == {(0, 0)}
    assert len(naps.runs) == 1
    assert await Process.filter(id=cli.executions.process_id).count() == 0  # unregistered after the run


async def test_a_manual_run_with_a_longer_heartbeat_than_the_server_s_is_not_taken_for_dead(
    processes: Callable[..., Host], naps: Naps
) -> None:
    server, cli = processes(heartbeat_interval=INTERVAL), processes(heartbeat_interval=10)
    await server.workflows.save(napping("slow", sync=False, seconds=0.8))
    await server.executions.open(recover=False)
    run = asyncio.create_task(cli.executions.run_manual("slow", {}))
    recovered = []
    while not run.done():
        recovered.append(await server.executions.recover())
        await asyncio.sleep(INTERVAL)
    await run
    await asyncio.sleep(1)  # a stolen run would finish meanwhile
    assert set(recovered) == {(0, 0)}
    assert len(naps.runs) == 1


async def test_two_processes_recovering_at_once_recover_each_execution_once(
    processes: Callable[..., Host], naps: Naps
) -> None:
    # Heartbeats long enough that no stall of a loaded machine holds their recovery back.
    first, second = processes(heartbeat_interval=2), processes(heartbeat_interval=2)
    for host in (first, second):  # registered, as servers are before they recover anything
        await host.executions.open(recover=False)
    await first.workflows.save(napping("events", sync=False))
    await first.workflows.save(napping("orders", sync=True))
    requeue = [await left_running(first, "events", f"dead-{n}", silent_for=5) for n in range(5)]
    interrupt = [await left_running(first, "orders", f"dead-sync-{n}", silent_for=5, mode="sync") for n in range(5)]

    results = await asyncio.gather(first.executions.recover(), second.executions.recover())

    assert tuple(map(sum, zip(*results))) == (5, 5), results
    for execution_id in requeue:
        assert (await finished(execution_id)).status == ExecutionStatus.SUCCEEDED
        assert await Job.filter(execution_id=execution_id).count() == 1
    await asyncio.sleep(0.2)  # a second run would have started by now
    assert sorted(naps.runs) == sorted(requeue)
    for execution_id in interrupt:
        row = await Execution.get(id=execution_id)
        assert row.status == ExecutionStatus.ERROR and row.error["error"] == "interrupted"


async def test_a_process_taken_for_dead_that_comes_back_does_not_write_over_the_recovered_run(
    processes: Callable[..., Host], naps: Naps
) -> None:
    paused, other = processes(heartbeat_interval=10), processes()
    await other.workflows.save(napping("events", sync=False, seconds=0.5))
    await paused.executions.open(recover=False)
    execution_id = await run_started(naps, paused)
    # The paused process's heartbeat is late (a stalled event loop, a slow database): it is
    # taken for dead and its execution re-queued, while its run goes on.
    await Process.filter(id=paused.executions.process_id).update(expires_at=utcnow() - timedelta(seconds=5))
    assert await other.executions.recover() == (1, 0)
    await finished(execution_id)
    await asyncio.sleep(0.8)  # both runs are over
    assert naps.runs == [execution_id, execution_id]  # at least once: expected
    jobs = await Job.filter(execution_id=execution_id)
    assert len(jobs) == 1, f"{len(jobs)} jobs stored for one execution: {[(j.node, j.id) for j in jobs]}"


async def test_a_process_recovers_its_own_rows_that_nothing_runs(processes: Callable[..., Host], naps: Naps) -> None:
    """A run whose final writes all failed leaves its row 'running' under a live owner: the
    owner's own recovery finds it (after a lease) and re-queues it."""
    host = processes(heartbeat_interval=2)
    await host.workflows.save(napping("events", sync=False))
    await host.executions.open(recover=False)
    try:
        execution_id = await left_running(host, "events", host.executions.process_id, silent_for=None)
        assert await host.executions.recover() == (0, 0)  # too recent to tell
        await Execution.filter(id=execution_id).update(started_at=utcnow() - timedelta(seconds=7))
        assert await host.executions.recover() == (1, 0)
        await finished(execution_id)
        assert naps.runs == [execution_id]
    finally:
        await host.executions.close()


async def test_processes_stalled_together_do_not_take_each_other_s_runs(processes: Callable[..., Host], naps: Naps) -> None:
    """A stall of the whole machine (CPU starvation, a long collection, a paused VM) outlasts
    the processes' leases. The first process to wake must not take the others, stalled with it
    and alive, for dead: their runs would be re-queued and run twice."""
    running, waking = processes(heartbeat_interval=10), processes()
    await running.workflows.save(napping("events", sync=False, seconds=0.6))
    await running.executions.open()
    await waking.executions.open()
    execution_id = await run_started(naps, running)
    time.sleep(10 * INTERVAL)  # waking's event loop stalls, and the machine with it
    # ... so the running process's lease ran out before it could renew it:
    lease = Process.filter(id=running.executions.process_id)
    await lease.update(expires_at=utcnow() - timedelta(seconds=0.1))
    assert await waking.executions.recover() == (0, 0)  # its recovery came before its heartbeat
    await lease.update(expires_at=utcnow() + timedelta(seconds=30))  # renewed once it runs again
    row = await finished(execution_id)
    assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, running.executions.process_id)
    await asyncio.sleep(6 * INTERVAL)  # heartbeats and recoveries have run meanwhile
    assert naps.runs == [execution_id]


async def test_a_process_stalled_with_a_dead_one_recovers_it_once_the_extra_time_is_over(
    processes: Callable[..., Host], naps: Naps
) -> None:
    """The extra time a stalled process gives the others delays recovery; it does not stop it."""
    alive, dying = processes(), processes()
    await alive.workflows.save(napping("events", sync=False, seconds=0.3))
    await alive.executions.open()
    await dying.executions.open()
    execution_id = await run_started(naps, dying)
    await die(dying)
    time.sleep(5 * INTERVAL)
    assert await alive.executions.recover() == (0, 0)  # stalled itself: it cannot tell yet
    row = await finished(execution_id, timeout=5)
    assert (row.status, row.owner) == (ExecutionStatus.SUCCEEDED, alive.executions.process_id)
    assert naps.runs == [execution_id, execution_id]


async def test_a_stall_gives_the_others_leases_as_much_more_time_for_a_lease(processes: Callable[..., Host]) -> None:
    host = processes(heartbeat_interval=0.2)
    await host.executions.open(recover=False)
    lease = host.executions.lease
    time.sleep(1.0)  # stalled: its heartbeat is 0.8 s overdue
    assert lease.slack() >= 0.75
    renewed = lease._renewed_at
    while lease._renewed_at == renewed:  # the heartbeat has run, 0.8 s late: that counts for a lease
        await asyncio.sleep(0.01)
    assert lease.slack() >= 0.75
    await asyncio.sleep(0.6 + 0.3)  # a lease (0.6 s) after that renewal, and some
    assert lease.slack() < 0.75


async def test_an_execution_delivered_again_while_it_runs_here_is_not_taken_for_abandoned(
    processes: Callable[..., Host], naps: Naps
) -> None:
    """A queue may deliver an id again while this process runs it (a Redis message claimed back
    after redeliver_after, a resend crossing the claim): the second claim fails, and the run goes
    on, still known to be running here."""
    host = processes(heartbeat_interval=2)
    await host.workflows.save(napping("events", sync=False, seconds=1.0))
    await host.executions.open(recover=False)
    execution_id = await run_started(naps, host)
    await host.executions.run_delivered(execution_id)  # delivered again: nothing to claim
    # Long running (older than a lease): only being run here keeps its own recovery off it.
    await Execution.filter(id=execution_id).update(started_at=utcnow() - timedelta(seconds=60))
    assert await host.executions.recover() == (0, 0)
    assert (await finished(execution_id)).status == ExecutionStatus.SUCCEEDED
    assert naps.runs == [execution_id]
