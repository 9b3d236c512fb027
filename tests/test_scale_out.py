"""Scale-out on real infrastructure: two ingress processes (``hookline serve --role ingress``) and
two workers (``hookline worker``) on one PostgreSQL database and one Redis stream, a bounded load
of async webhooks sent to both ingresses, and one worker SIGKILLed midway. Every acknowledged
request must be stored and end ``succeeded``: once per idempotency key where the workflow has
one, once per request where it has none; none lost.

Needs PostgreSQL and Redis (``HOOKLINE_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``);
skipped without them, a failure in CI (``HOOKLINE_REQUIRE_REDIS=1``, set by ``.ci/run``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from conftest import REDIS_URL, _asyncpg_dsn
from hookline.testing import HooklineServer
from test_durability import Servers, api, executions, site, wait_until_settled, workflow  # noqa: F401 - site: a fixture

pytestmark = [pytest.mark.server, pytest.mark.postgres]

class Cluster(Servers):
    """Ingress servers (``Servers``, with a role and the queue) plus ``hookline worker`` processes."""

    def __init__(self, db_url: str, site: Path, root: Path, queue_name: str) -> None:
        super().__init__(db_url, site, root)
        self.env = {
            "PYTHONPATH": str(site),
            "HOOKLINE_TEST_RUN_LOG": str(self.run_log),
            "HOOKLINE_QUEUE_URL": REDIS_URL,
            "HOOKLINE_QUEUE_NAME": queue_name,
            # Short, so that a dead worker's executions are found within the test.
            "HOOKLINE_HEARTBEAT_INTERVAL": "0.3",
            "HOOKLINE_REDELIVER_AFTER": "2s",
            "HOOKLINE_MAX_CONCURRENT_RUNS": "8",
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self.worker_logs: list[Path] = []

    def ingress(self) -> HooklineServer:
        server = HooklineServer(
            self.db_url, workflows=self.folder, cwd=self.root, env=self.env, args=["--role", "ingress"]
        )
        self.started.append(server)
        return server.start(self.root / f"ingress-{len(self.started)}.log")

    def worker(self) -> subprocess.Popen[bytes]:
        log_path = self.root / f"worker-{len(self.workers) + 1}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hookline", "worker", "--db", self.db_url],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.root,
            )
        self.workers.append(process)
        self.worker_logs.append(log_path)
        deadline = time.monotonic() + 30
        while "running executions from" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.1)
        return process

    def logs(self) -> str:
        workers = "\n".join(f"--- worker {n + 1}\n{p.read_text(errors='replace')}" for n, p in enumerate(self.worker_logs))
        return f"{super().logs()}\n{workers}"

    def stop_all(self) -> None:
        super().stop_all()
        for process in self.workers:
            if process.poll() is None:
                process.kill()
                process.wait(5)


@pytest.fixture
def cluster(postgres_db_url: str, site: Path, tmp_path: Path, queue_name: str) -> Iterator[Cluster]:  # noqa: F811
    group = Cluster(postgres_db_url, site, tmp_path, queue_name)
    try:
        yield group
    finally:
        group.stop_all()


def changes_made_through_one_ingress_apply_at_the_other(ingresses: list[HooklineServer]) -> None:
    """No restart, no stale registration: created, changed, disabled and deleted through ingress 1,
    at once as such at ingress 2."""
    definition = {"key": "late", "sync": True, "trigger": {"type": "webhook"},
                  "nodes": [{"key": "r", "type": "response", "config": {"body": {"v": 1}}}]}
    with api(ingresses[0]) as first, httpx.Client(base_url=ingresses[1].base_url, timeout=10) as second:
        assert second.post("/api/webhooks/late", json={}).status_code == 404
        assert first.post("/api/workflows", json=definition).status_code == 201
        assert second.post("/api/webhooks/late", json={}).json() == {"v": 1}
        definition["nodes"][0]["config"]["body"] = {"v": 2}
        assert first.put("/api/workflows/late", json=definition).json()["version"] == 2
        assert second.post("/api/webhooks/late", json={}).json() == {"v": 2}
        assert first.put("/api/workflows/late", json={**definition, "enabled": False}).status_code == 200
        assert second.post("/api/webhooks/late", json={}).status_code == 404
        assert first.delete("/api/workflows/late").status_code in (200, 204)
        assert second.post("/api/webhooks/late", json={}).status_code == 404


async def test_two_ingresses_two_workers_a_worker_sigkilled_midway_lose_nothing(cluster: Cluster) -> None:
    """600 async calls, 24 at a time, alternating between two ingresses; half of them to a
    workflow with an idempotency key, each key sent twice (a sender's retry), half to one without.
    Worker 1 is SIGKILLed once a third of the calls are answered and it is seen running executions. Then every acknowledged call's
    execution is stored with its body and ends ``succeeded``, within seconds: one execution per
    key, one per call without a key; each ran once, or twice if the kill cut its first run short
    (the node's side effect is at-least-once; the stored execution is one)."""
    cluster.define(
        workflow("events", sync=False, seconds=0.15),
        workflow("payments", sync=False, seconds=0.15, trigger={"type": "webhook", "config": {"idempotency": {"header": "X-Delivery"}}}),
    )
    ingresses = [await asyncio.to_thread(cluster.ingress) for _ in range(2)]
    workers = [await asyncio.to_thread(cluster.worker) for _ in range(2)]
    await asyncio.to_thread(changes_made_through_one_ingress_apply_at_the_other, ingresses)
    total, parallel = 600, 24
    kill_after = total // 3
    answers: dict[int, tuple[str, str, httpx.Response | Exception]] = {}
    killed_at: list[float] = []
    slots = asyncio.Semaphore(parallel)

    async def call(clients: list[httpx.AsyncClient], number: int) -> None:
        if number % 2:
            mark, key, headers = f"e{number}", "events", {}
        else:  # keys k0, k0, k1, k1, ... : every delivery of a payment twice
            delivery = f"k{number // 4}"
            mark, key, headers = delivery, "payments", {"X-Delivery": delivery}
        async with slots:
            try:
                answer: httpx.Response | Exception = await clients[number % 2].post(
                    f"/api/webhooks/{key}", json={"id": mark}, headers=headers
                )
            except httpx.HTTPError as exc:
                answer = exc
        answers[number] = (mark, key, answer)

    async def kill_the_first_worker_while_it_runs() -> None:
        """Once a third of the calls are answered, and worker 1 is seen running executions
        (on a saturated machine it may not have taken any yet): SIGKILL."""
        found = re.search(r"worker ([0-9a-f]{32}): running executions", cluster.worker_logs[0].read_text())
        assert found, cluster.logs()
        while len(answers) < kill_after:
            await asyncio.sleep(0.01)
        import asyncpg

        connection = await asyncpg.connect(_asyncpg_dsn(cluster.db_url))
        try:
            # Stopped (SIGSTOP) while the rows are counted, so that the runs seen are still
            # running when it is killed: on a loaded machine, a worker left going between the
            # count and the kill could finish them meanwhile, and the kill would prove nothing.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                workers[0].send_signal(signal.SIGSTOP)
                if await connection.fetchval(
                    "SELECT count(*) FROM hookline_execution WHERE status = 'running' AND owner = $1", found[1]
                ):
                    break
                workers[0].send_signal(signal.SIGCONT)
                await asyncio.sleep(0.01)
        finally:
            await connection.close()
        workers[0].send_signal(signal.SIGKILL)
        killed_at.append(time.monotonic())

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=ingresses[0].base_url, timeout=15) as first, httpx.AsyncClient(
        base_url=ingresses[1].base_url, timeout=15
    ) as second:
        kill = asyncio.ensure_future(kill_the_first_worker_while_it_runs())
        await asyncio.wait_for(asyncio.gather(*(call([first, second], n) for n in range(total))), 120)
    load_time = time.monotonic() - started
    await asyncio.wait_for(kill, 30)
    assert killed_at
    assert await asyncio.to_thread(workers[0].wait, 5) == -signal.SIGKILL

    refused = {n: (a.status_code, a.text) if isinstance(a, httpx.Response) else repr(a)
               for n, (_, _, a) in answers.items() if not (isinstance(a, httpx.Response) and a.status_code == 200)}
    assert not refused, refused  # the ingresses never depended on the killed worker

    with api(ingresses[1]) as client:
        settled = await asyncio.to_thread(wait_until_settled, client, 60)
        stored = {e["id"]: e for e in executions(client)}
        details = {i: client.get(f"/api/executions/{i}").json() for i in stored}
    runs = cluster.runs()

    by_mark: dict[str, set[int]] = {}
    for mark, _, answer in answers.values():
        assert isinstance(answer, httpx.Response)
        execution_id = int(answer.headers["x-hookline-execution"])
        assert execution_id in stored, f"{mark}: acknowledged as execution {execution_id}, which is not stored"
        found = details[execution_id]
        assert found["context"]["body"] == {"id": mark}
        assert found["status"] == "succeeded", found
        by_mark.setdefault(mark, set()).add(execution_id)

    payments = {m: ids for m, ids in by_mark.items() if m.startswith("k")}
    events = {m: ids for m, ids in by_mark.items() if m.startswith("e")}
    assert len(payments) == total // 4 and len(events) == total // 2
    assert all(len(ids) == 1 for ids in payments.values()), {m: ids for m, ids in payments.items() if len(ids) != 1}
    assert len(stored) == len(payments) + len(events), "an execution nobody asked for"
    duplicates = sum(1 for _, key, a in answers.values() if key == "payments" and isinstance(a, httpx.Response)
                     and a.headers.get("x-hookline-duplicate") == "true")
    assert duplicates == total // 4

    # Ran: every execution at least once; twice only if the kill cut its first run short.
    assert set(runs) == set(by_mark), set(by_mark) ^ set(runs)
    ran_twice = sorted(m for m, n in runs.items() if n > 1)
    assert all(n <= 2 for n in runs.values()), {m: n for m, n in runs.items() if n > 2}
    logs = cluster.logs()
    recovered = [tuple(map(int, m)) for m in re.findall(r"(\d+) re-queued, \d+ interrupted, (\d+) queued taken over", logs)]
    requeued = sum(r for r, _ in recovered)
    assert len(ran_twice) <= requeued
    # The killed worker was running executions: the test proved something about recovery.
    assert requeued >= 1, logs[-3000:]
    print(
        f"\nscale-out: {total} calls to 2 ingresses in {load_time:.2f} s ({total / load_time:.0f}/s), worker 1 killed"
        f" after {kill_after} answers; {len(stored)} executions, all succeeded {settled:.2f} s after the load;"
        f" {requeued} re-queued from the dead worker, {len(ran_twice)} ran twice"
    )
