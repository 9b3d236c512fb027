"""The execution history's queries on 1,000,000 stored executions: server-side time, in-process.

    .venv/bin/python bench/history_queries.py [--sqlite PATH] [--postgres URL] [--executions 1000000]
        [--repeat 7] [--reseed] [--json]

Measures, on SQLite and on PostgreSQL, what the console, the API and the CLI ask of the history,
through the host's services (``host.executions.list``, ``host.executions.activity``) in this
process: the time a server spends answering, without HTTP. Each query runs ``--repeat`` times in
a row (the database's pages cached after the first); the table gives the fastest and the median
run against the target.

The databases are seeded by ``seed.py history`` (the history scenario's executions: 40%
bench-sync, 20% bench-async, 40% bench-history-orders, 2% failed, created over 25 days) plus 47
workflows without executions (``bench-wf-00001`` ...), so that the activity page asks about 50
workflows. A database already seeded with at least ``--executions`` executions is used as it is
(``--reseed`` seeds it again): seeding takes about a minute per database on a 2-CPU machine.

* ``--sqlite PATH``: the SQLite file (default ``$TMPDIR/hookline-history-queries.db``, ~1.9 GB).
* ``--postgres URL``: a PostgreSQL server and a database to connect to (as ``BENCH_POSTGRES_URL``);
  the benchmark's database, ``hookline_history_queries``, is created there and kept for the next
  run (``--reseed`` drops it first). Without it, PostgreSQL is left out (``BENCH_POSTGRES_URL`` is
  read when set).

The time windows (``since``, the activity's last 24 hours) are counted back from the newest
seeded execution, so that a database seeded days ago is measured as if it were fresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import seed  # noqa: E402  (bench/seed.py)

from hookline.host import Host  # noqa: E402
from hookline.settings import Settings  # noqa: E402

PG_DATABASE = "hookline_history_queries"
ACTIVITY_WORKFLOWS = 50
HISTORY_KEYS = ["bench-history-orders", "bench-sync", "bench-async"]


class Query:
    """One measured call: a label, its target (ms) and the service call."""

    def __init__(self, label: str, target_ms: float, call: Callable[[Host], Awaitable[Any]]) -> None:
        self.label, self.target_ms, self.call = label, target_ms, call


def queries(newest: datetime, newest_id: int, activity_keys: list[str]) -> list[Query]:
    day_before = newest - timedelta(hours=24)
    orders = "bench-history-orders"
    return [
        Query("page: workflow + status=failed", 100, lambda h: h.executions.list(workflow=orders, status="failed")),
        Query("page: workflow + status=succeeded", 100, lambda h: h.executions.list(workflow=orders, status="succeeded")),
        Query("page: workflow + status=failed,error", 100, lambda h: h.executions.list(workflow=orders, status=["failed", "error"])),
        Query("page: workflow + status=error,timed_out (none)", 100, lambda h: h.executions.list(workflow=orders, status="error,timed_out")),
        Query("page: since 24 h before the newest", 100, lambda h: h.executions.list(since=day_before)),
        Query("page: after (newest id - 20), polling", 100, lambda h: h.executions.list(after=newest_id - 20)),
        Query("q, every row: 'example.com'", 1000, lambda h: h.executions.list(q="example.com")),
        Query("q, 1 row in 5,000: 'customer4242@example.com'", 1000, lambda h: h.executions.list(q="customer4242@example.com")),
        Query("q, no row: 'no-such-text-5f3a9'", 1000, lambda h: h.executions.list(q="no-such-text-5f3a9")),
        Query("q + workflow + status: 'customer53@', failed", 1000, lambda h: h.executions.list(workflow=orders, status="failed", q="customer53@")),
        Query(f"activity: {len(activity_keys)} workflows, 24 h", 100, lambda h: h.executions.activity(activity_keys, since=day_before)),
    ]


def rows_of(result: Any) -> int:
    if isinstance(result, dict):  # activity: the executions counted
        return sum(activity["total"] for activity in result.values())
    return len(result.items)


async def measure(host: Host, query: Query, repeat: int) -> dict[str, Any]:
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = await query.call(host)
        times.append((time.perf_counter() - start) * 1000)
    best, median = min(times), statistics.median(times)
    return {
        "query": query.label,
        "target_ms": query.target_ms,
        "min_ms": round(best, 2),
        "median_ms": round(median, 2),
        "first_ms": round(times[0], 2),
        "rows": rows_of(result),
        "met": median < query.target_ms,
    }


# --- the databases ------------------------------------------------------------------------


async def executions_in(db_url: str) -> int:
    host = Host(Settings(db_url=db_url, api_token="bench"))
    await host.migrate()
    await host.open_database()
    try:
        from hookline.storage.models import Execution

        return await Execution.all().count()
    finally:
        await host.close_database()


async def prepare(db_url: str, executions: int, reseed: bool) -> dict[str, Any]:
    """Seed ``db_url`` unless it already holds the executions; returns what was done."""
    if not reseed and await executions_in(db_url) >= executions:
        return {"seeded": False}
    start = time.monotonic()
    history = await seed.seed_history(db_url, executions)
    extra = await seed.seed_workflows(db_url, ACTIVITY_WORKFLOWS - len(HISTORY_KEYS))
    return {"seeded": True, "seed_s": round(time.monotonic() - start, 1), "seed": history, **extra}


def sqlite_url(path: Path, reseed: bool) -> str:
    if reseed and path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.touch()
    return f"sqlite://{path}"


async def postgres_url(admin_url: str, reseed: bool) -> str:
    import asyncpg

    parts = urlsplit(admin_url)
    conn = await asyncpg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, "")), timeout=10)
    try:
        if reseed:
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE):
            await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await conn.close()
    return urlunsplit((parts.scheme, parts.netloc, f"/{PG_DATABASE}", parts.query, ""))


async def run(name: str, db_url: str, executions: int, repeat: int, reseed: bool) -> dict[str, Any]:
    prepared = await prepare(db_url, executions, reseed)
    host = Host(Settings(db_url=db_url, api_token="bench"))
    await host.open_database()
    try:
        from hookline.storage.models import Execution, Workflow

        newest = await Execution.all().order_by("-id").first()
        assert newest is not None, "no executions"
        keys = HISTORY_KEYS + [
            key for key in await Workflow.filter(key__startswith="bench-wf-").order_by("key").values_list("key", flat=True)
        ][: ACTIVITY_WORKFLOWS - len(HISTORY_KEYS)]
        results = [await measure(host, query, repeat) for query in queries(newest.created_at, newest.id, keys)]
        count = await Execution.all().count()
    finally:
        await host.close_database()
    return {"database": name, "executions": count, "repeat": repeat, **prepared, "results": results}


def print_table(report: dict[str, Any]) -> None:
    seeded = f", seeded in {report['seed_s']} s" if report.get("seeded") else " (seeded before)"
    print(f"\n### {report['database']}: {report['executions']:,} executions{seeded}, {report['repeat']} runs each\n")
    print("| query | target | min ms | median ms | first ms | rows | |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in report["results"]:
        verdict = "ok" if r["met"] else f"MISSED by {r['median_ms'] - r['target_ms']:.0f} ms"
        print(f"| {r['query']} | < {r['target_ms']:.0f} ms | {r['min_ms']:.1f} | {r['median_ms']:.1f} | "
              f"{r['first_ms']:.1f} | {r['rows']:,} | {verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", type=Path, default=Path(tempfile.gettempdir()) / "hookline-history-queries.db")
    parser.add_argument("--no-sqlite", action="store_true", help="leave SQLite out")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON line per database instead of the tables")
    args = parser.parse_args()
    targets: list[tuple[str, Callable[[], Awaitable[str]]]] = []
    if not args.no_sqlite:
        targets.append(("SQLite", lambda: asyncio.sleep(0, sqlite_url(args.sqlite, args.reseed))))
    if args.postgres:
        targets.append(("PostgreSQL", lambda: postgres_url(args.postgres, args.reseed)))
    else:
        print("PostgreSQL left out: give --postgres URL (or set BENCH_POSTGRES_URL)", file=sys.stderr)
    import sqlite3

    import tortoise

    from hookline.plugins import host_version

    print(f"hookline {host_version()}, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
          f"tortoise {tortoise.__version__}; {os.cpu_count()} CPUs")
    for name, url_of in targets:
        db_url = asyncio.run(url_of())
        report = asyncio.run(run(name, db_url, args.executions, args.repeat, args.reseed))
        if args.json:
            print(json.dumps(report))
        else:
            print_table(report)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
