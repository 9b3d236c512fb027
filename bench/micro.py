"""CPU per webhook execution, in-process, without HTTP: what the host itself costs.

    .venv/bin/python bench/micro.py [--db URL] [--calls 1500] [--concurrency 16]

Runs the benchmark's sync workflow (bench/workflows/bench-sync.yaml) through the host as the
webhook does (find the workflow, record the execution, run it, store its outcome and jobs), and,
as the baseline in the same run, the engine alone on the same compiled workflow (no storage).
Prints CPU milliseconds per call (``time.process_time``: this process, database driver threads
included, not the database server) and calls per second, and the ratio of the two paths. CPU
per call is steadier than requests per second on a shared, noisy machine.

The default database is a fresh SQLite file in a temporary directory; ``--db postgres://...``
names an existing, empty PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import yaml

from hookline.engine import Outcome
from hookline.host import Host
from hookline.settings import Settings
from hookline.types import ReplySlot

WORKFLOW = Path(__file__).parent / "workflows" / "bench-sync.yaml"
BODY = {"id": "abc123", "amount": 150, "customer": {"email": "a@b.c"}}
CONTEXT = {"method": "POST", "headers": {}, "query": {}, "content_type": "application/json", "body": BODY, "raw_body": None, "params": {}}


async def measure(calls: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(CPU ms per call, calls per second) of ``calls`` calls, ``concurrency`` at a time."""
    for _ in range(min(200, calls)):  # warm-up: caches, connections
        await one()
    per_loop = calls // concurrency

    async def loop() -> None:
        for _ in range(per_loop):
            await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_loop * concurrency
    return 1000 * cpu / done, done / wall


async def main(db_url: str, calls: int, concurrency: int) -> None:
    host = Host(Settings(db_url=db_url, api_token="bench"))
    await host.migrate()
    await host.open_database()
    await host.start()
    try:
        definition = yaml.safe_load(WORKFLOW.read_text())
        await host.workflows.save(definition)
        key = definition["key"]

        async def through_the_host() -> None:
            workflow = await host.workflows.find(key)
            assert workflow is not None
            handle = await host.executions.start(workflow, CONTEXT, mode="sync")
            reply = await handle.reply()
            assert reply is not None and reply.status == 200

        workflow = await host.workflows.find(key)
        assert workflow is not None

        async def engine_only() -> Outcome:
            return await host.engine.run(workflow.compiled, CONTEXT, execution_id=0, mode="sync", reply=ReplySlot(waiting=True))

        base_cpu, base_rate = await measure(calls, concurrency, engine_only)
        full_cpu, full_rate = await measure(calls, concurrency, through_the_host)
    finally:
        await host.stop()
        await host.close_database()
    print(f"database: {db_url.split(':', 1)[0]}; {calls} calls, {concurrency} at a time")
    print("| path | CPU ms per call | calls/s |")
    print("|---|---:|---:|")
    print(f"| engine only (baseline) | {base_cpu:.3f} | {base_rate:.0f} |")
    print(f"| through the host (find, record, run, store) | {full_cpu:.3f} | {full_rate:.0f} |")
    print(f"host CPU per call = {full_cpu / base_cpu:.1f}x the engine's; storage adds {full_cpu - base_cpu:.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.db or f"sqlite://{tmp}/micro.db", args.calls, args.concurrency))
