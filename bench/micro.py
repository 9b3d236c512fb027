"""CPU per webhook execution, in-process, without HTTP: what the host itself costs.

    .venv/bin/python bench/micro.py [--db URL] [--calls 1500] [--concurrency 16]
        [--workflow FILE ...] [--json]

Runs the benchmark's sync workflow (bench/workflows/bench-sync.yaml; or each ``--workflow``
file, a sync workflow answering like it) through the host as the webhook does (find the
workflow, record the execution, run it, store its outcome and jobs), and, as the baseline in the
same run, the engine alone on the same compiled workflow (no storage). Prints CPU milliseconds
per call (``time.process_time``: this process, database driver threads included, not the
database server) and calls per second, and the ratio of the two paths. CPU per call is steadier
than requests per second on a shared, noisy machine.

With several ``--workflow`` files (e.g. bench-sync and bench/scenarios/nodes/bench-nodes-100.yaml)
it also prints CPU per node run (per call / jobs per call) and the marginal cost of a node
against the first file: (CPU per call - first's) / (nodes run - first's). ``--json`` prints one
JSON object per workflow instead of the tables (bench.py's ``nodes`` scenario reads them).

The default database is a fresh SQLite file in a temporary directory; ``--db postgres://...``
names an existing, empty PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
CONTEXT = {"method": "POST", "headers": {}, "query": {}, "content_type": "application/json", "body": BODY,
           "raw_body": None, "params": {}}


async def measure(calls: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(CPU ms per call, calls per second) of ``calls`` calls, ``concurrency`` at a time."""
    for _ in range(min(200, calls)):  # warm-up: caches, connections
        await one()
    per_loop = max(1, calls // concurrency)

    async def loop() -> None:
        for _ in range(per_loop):
            await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_loop * concurrency
    return 1000 * cpu / done, done / wall


def count_nodes(nodes: list[dict]) -> int:
    """Nodes of a definition, those in branches included."""
    return sum(1 + sum(count_nodes(branch) for branch in (node.get("branches") or {}).values()) for node in nodes)


async def measure_workflow(host: Host, path: Path, calls: int, concurrency: int) -> dict[str, Any]:
    definition = yaml.safe_load(path.read_text())
    await host.workflows.save(definition)
    key = definition["key"]

    async def through_the_host() -> None:
        workflow = await host.workflows.find(key)
        assert workflow is not None
        handle = await host.executions.start(workflow, CONTEXT, mode="sync")
        reply = await handle.reply()
        assert reply is not None and reply.status == 200, reply

    workflow = await host.workflows.find(key)
    assert workflow is not None

    async def engine_only() -> Outcome:
        return await host.engine.run(workflow.compiled, CONTEXT, execution_id=0, mode="sync", reply=ReplySlot(waiting=True))

    probe = await engine_only()
    assert probe.status.value == "succeeded" and probe.reply is not None and probe.reply.status == 200, probe
    base_cpu, base_rate = await measure(calls, concurrency, engine_only)
    full_cpu, full_rate = await measure(calls, concurrency, through_the_host)
    return {"workflow": key, "file": str(path), "nodes": count_nodes(definition["nodes"]), "nodes_run": len(probe.jobs),
            "engine_cpu_ms": round(base_cpu, 4), "engine_calls_per_s": round(base_rate, 1),
            "host_cpu_ms": round(full_cpu, 4), "host_calls_per_s": round(full_rate, 1)}


async def main(db_url: str, calls: int, concurrency: int, workflows: list[Path]) -> list[dict[str, Any]]:
    host = Host(Settings(db_url=db_url, api_token="bench"))
    await host.migrate()
    await host.open_database()
    await host.start()
    try:
        return [await measure_workflow(host, path, calls, concurrency) for path in workflows]
    finally:
        await host.stop()
        await host.close_database()


def print_tables(results: list[dict[str, Any]], db_url: str, calls: int, concurrency: int) -> None:
    print(f"database: {db_url.split(':', 1)[0]}; {calls} calls, {concurrency} at a time")
    for r in results:
        if len(results) > 1:
            print(f"\n{r['workflow']} ({r['nodes']} nodes, {r['nodes_run']} run per call)")
        print("| path | CPU ms per call | calls/s |")
        print("|---|---:|---:|")
        print(f"| engine only (baseline) | {r['engine_cpu_ms']:.3f} | {r['engine_calls_per_s']:.0f} |")
        print(f"| through the host (find, record, run, store) | {r['host_cpu_ms']:.3f} | {r['host_calls_per_s']:.0f} |")
        print(f"host CPU per call = {r['host_cpu_ms'] / r['engine_cpu_ms']:.1f}x the engine's; storage adds "
              f"{r['host_cpu_ms'] - r['engine_cpu_ms']:.3f} ms")
    if len(results) > 1:
        first = results[0]
        print(f"\nPer node run (marginal: the extra CPU per extra node against {first['workflow']}):")
        print("| workflow | nodes | run | host ms/call | host ms/node | engine ms/node | marginal host ms/node "
              "| marginal engine ms/node |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in results:
            extra = r["nodes_run"] - first["nodes_run"]
            marginal = (f"{(r['host_cpu_ms'] - first['host_cpu_ms']) / extra:.4f} | "
                        f"{(r['engine_cpu_ms'] - first['engine_cpu_ms']) / extra:.4f}") if extra > 0 else " | "
            print(f"| {r['workflow']} | {r['nodes']} | {r['nodes_run']} | {r['host_cpu_ms']:.3f} | "
                  f"{r['host_cpu_ms'] / r['nodes_run']:.4f} | {r['engine_cpu_ms'] / r['nodes_run']:.4f} | {marginal} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workflow", type=Path, action="append",
                        help=f"a sync workflow file answering like bench-sync (repeatable; default {WORKFLOW})")
    parser.add_argument("--json", action="store_true", help="one JSON object per workflow, no tables")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite://{tmp}/micro.db"
        results = asyncio.run(main(db, args.calls, args.concurrency, args.workflow or [WORKFLOW]))
    if args.json:
        for r in results:
            print(json.dumps({"db": db.split(":", 1)[0], "calls": args.calls, "concurrency": args.concurrency, **r}))
    else:
        print_tables(results, db, args.calls, args.concurrency)
