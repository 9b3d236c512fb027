"""Seed a Hookline database for the benchmark's scenarios (bench.py runs it before a server
starts; it also works by hand). The database must exist; its tables are created first
(migrations), then:

    .venv/bin/python bench/seed.py history --db URL [--executions 1000000]
    .venv/bin/python bench/seed.py workflows --db URL [--count 10000]
    .venv/bin/python bench/seed.py apply --db URL PATH...

* ``history``: applies bench/workflows and bench/scenarios/history/ (through the host), then
  inserts EXECUTIONS finished executions with their jobs straight into the tables, in bulk SQL
  (one ``INSERT ... SELECT`` over a generated series per table, one transaction): 40% of
  ``bench-sync`` (sync, 2 jobs, with their reply), 20% of ``bench-async`` (1 job), 40% of
  ``bench-history-orders`` (5 jobs), so 3 jobs per execution; 2% failed (the last job failed,
  with an error); a quarter with an idempotency key (expired a day after); each with its own
  body (id, amount, e-mail), created over the last 25 days (inside the default 30-day
  retention, so that the server's hourly purge deletes nothing), in id order. Columns and their
  formats are those the host writes (JSON text, SQLite timestamps as ``YYYY-MM-DD
  HH:MM:SS.ffffff+00:00``). Foreign keys are not checked during the insert (SQLite's are off
  on a plain connection; PostgreSQL's via ``session_replication_role = replica``); the rows are
  consistent by construction. PostgreSQL tables are then ``VACUUM ANALYZE``d, as autovacuum
  would do on a database that grew over weeks; SQLite gets no ``ANALYZE`` (Hookline runs none).
* ``workflows``: COUNT webhook workflows of bench-sync's shape and answers, keys
  ``bench-wf-00001`` ..., saved through the host (``host.workflows.apply_all``: validated,
  versioned, one transaction each), as ``hookline workflows apply`` would.
* ``apply``: applies workflow files or directories through the host.

Prints one JSON line: what it did and how long it took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hookline.host import Host
from hookline.settings import Settings
from hookline.workflow_files import read_workflow_files

BENCH = Path(__file__).resolve().parent
HISTORY_WORKFLOWS = [BENCH / "workflows", BENCH / "scenarios" / "history"]
SPAN_S = 25 * 86400  # the history's executions were created over the last 25 days
OWNER = "5eed0000000000000000000000000001"  # the process that ran them (long gone)


# --- through the host --------------------------------------------------------------------


async def _with_host(db_url: str, work) -> Any:
    host = Host(Settings(db_url=db_url, api_token="bench-seed"))
    await host.migrate()
    await host.open_database()
    try:
        return await work(host)
    finally:
        await host.close_database()


async def apply_paths(db_url: str, paths: list[Path]) -> dict[str, Any]:
    async def work(host: Host) -> list[dict[str, Any]]:
        documents = [doc for path in paths for doc in read_workflow_files(path)]
        return await host.workflows.apply_all(documents)

    saved = await _with_host(db_url, work)
    return {"applied": sorted(r["key"] for r in saved)}


async def seed_workflows(db_url: str, count: int, paths: bool = False) -> dict[str, Any]:
    """``count`` workflows ``bench-wf-00001`` ... of bench-sync's shape; with ``paths``, each with
    the custom path ``tenants/t00001/orders/:id`` ... (one address each)."""
    template = yaml.safe_load((BENCH / "workflows" / "bench-sync.yaml").read_text())

    def document(n: int) -> dict[str, Any]:
        trigger = template["trigger"]
        if paths:
            trigger = {**trigger, "config": {**(trigger.get("config") or {}), "path": f"tenants/t{n:05d}/orders/:id"}}
        return {**template, "key": f"bench-wf-{n:05d}", "title": f"Benchmark workflow {n} (sync)", "trigger": trigger}

    documents = [(f"seed #{n}", document(n)) for n in range(1, count + 1)]

    async def work(host: Host) -> int:
        return len(await host.workflows.apply_all(documents))

    return {"workflows_saved": await _with_host(db_url, work)}


# --- the history, in bulk SQL ------------------------------------------------------------

# Per row i of the series: kind 0 = bench-sync (i % 5 in 0, 1), 1 = bench-async (2),
# 2 = bench-history-orders (3, 4); failed when i % 50 == 3 (an orders execution).
# Jobs: (kind, position, node, type, op, right, last); a Response node's key is high or low.
JOB_TEMPLATES = [
    (0, 0, "check", "condition", "gt", 100, 0),
    (0, 1, "respond", "response", "", 0, 1),
    (1, 0, "big-order", "condition", "gt", 100, 1),
    (2, 0, "valid-amount", "condition", "gte", 0, 0),
    (2, 1, "big-order", "condition", "gt", 100, 0),
    (2, 2, "huge-order", "condition", "gt", 250, 0),
    (2, 3, "small-order", "condition", "lt", 20, 0),
    (2, 4, "round-amount", "condition", "ne", 0, 1),
]
FAIL_MESSAGE = "cannot evaluate ne: the check service answered 503 (seeded failure)"


class Dialect:
    """The few fragments in which SQLite's and PostgreSQL's SQL differ."""

    def __init__(self, name: str) -> None:
        self.name = name

    def series(self, n: int) -> str:
        if self.name == "sqlite":
            return f"s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)})"
        return f"s(i) AS (SELECT generate_series(1, {int(n)})::bigint)"

    def ts(self, epoch: str) -> str:
        """A timestamp column's value from Unix seconds (as tortoise stores it)."""
        if self.name == "sqlite":
            # strftime's %f has milliseconds; tortoise writes microseconds and the offset
            return f"(strftime('%Y-%m-%d %H:%M:%f', {epoch}, 'unixepoch') || '000+00:00')"
        return f"to_timestamp({epoch})"

    def pad7(self, expr: str) -> str:
        return f"printf('%07d', {expr})" if self.name == "sqlite" else f"lpad(CAST({expr} AS TEXT), 7, '0')"

    def quote(self, expr: str) -> str:
        """A JSON string of the text expr."""
        return f"json_quote({expr})" if self.name == "sqlite" else f"to_json({expr})::text"

    def hex64(self, expr: str) -> str:
        """64 hex digits, unique per row, in scattered order (like the sha256 of a delivery id)."""
        if self.name == "sqlite":
            return f"printf('%08x%056x', (({expr}) * 2654435761) % 4294967296, {expr})"
        return f"md5(CAST({expr} AS TEXT)) || md5(CAST(({expr}) * 7 AS TEXT))"

    def json(self, expr: str) -> str:
        return expr if self.name == "sqlite" else f"({expr})::jsonb"


def _rows_cte(d: Dialect, n: int, t0: float) -> str:
    """Per execution: i, kind, amount, order id, e-mail, created_at in Unix seconds."""
    step = SPAN_S / n
    return f"""{d.series(n)},
r AS (
  SELECT i,
         CASE WHEN i % 5 < 2 THEN 0 WHEN i % 5 = 2 THEN 1 ELSE 2 END AS kind,
         (i * 37) % 300 AS amount,
         'ord-' || {d.pad7('i')} AS oid,
         'customer' || CAST(i % 5000 AS TEXT) || '@example.com' AS email,
         {t0!r} + i * {step!r} AS t,
         CASE WHEN i % 50 = 3 THEN 1 ELSE 0 END AS failed
  FROM s
),
b AS (
  SELECT r.*, '{{"id":"' || oid || '","amount":' || CAST(amount AS TEXT) || ',"customer":{{"email":"' || email
              || '"}}}}' AS body,
         CASE WHEN amount > 100 THEN 'high' ELSE 'low' END AS tier
  FROM r
)"""


def history_sql(d: Dialect, n: int, base: int, t0: float, ids: dict[str, tuple[int, int]]) -> tuple[str, str]:
    """(INSERT executions, INSERT jobs) for N executions with ids base+1 .. base+N."""
    (ws, vs), (wa, va), (wo, vo) = ids["bench-sync"], ids["bench-async"], ids["bench-history-orders"]
    context = (
        "'{\"method\":\"POST\",\"headers\":{\"host\":\"hooks.example.com\",\"user-agent\":\"shop-backend/2.3\","
        "\"accept\":\"*/*\",\"content-type\":\"application/json\",\"content-length\":\"' || CAST(length(body) AS TEXT) "
        "|| '\",\"x-request-id\":\"' || oid || '\"},\"query\":{},\"content_type\":\"application/json\",\"body\":' "
        f"|| body || ',\"raw_body\":' || {d.quote('body')} || ',\"params\":{{}}}}'"
    )
    answer = "'{\"ok\":true,\"tier\":\"' || tier || '\",\"id\":\"' || oid || '\"}'"
    reply = f"CASE WHEN kind = 0 THEN '{{\"status\":200,\"headers\":{{}},\"body\":' || {answer} || '}}' END"
    error = ("CASE WHEN failed = 1 THEN '{\"node\":\"round-amount\",\"error\":\"node_error\","
             f"\"message\":\"{FAIL_MESSAGE}\",\"left\":' || CAST(amount AS TEXT) || "
             "',\"op\":\"ne\",\"right\":0,\"at\":\"rules\"}' END")
    executions = f"""WITH RECURSIVE {_rows_cte(d, n, t0)}
INSERT INTO hookline_execution (id, workflow_id, version_id, status, mode, trigger_type, context, reply, error,
                                created_at, started_at, finished_at, dedup_key, dedup_until, owner)
SELECT {base} + i,
       CASE kind WHEN 0 THEN {ws} WHEN 1 THEN {wa} ELSE {wo} END,
       CASE kind WHEN 0 THEN {vs} WHEN 1 THEN {va} ELSE {vo} END,
       CASE WHEN failed = 1 THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN kind = 0 THEN 'sync' ELSE 'async' END,
       'webhook',
       {d.json(context)},
       {d.json(reply)},
       {d.json(error)},
       {d.ts('t')},
       {d.ts('t + CASE WHEN kind = 0 THEN 0 ELSE 0.004 END')},
       {d.ts('t + CASE WHEN kind = 0 THEN 0.0015 ELSE 0.006 END')},
       CASE WHEN i % 4 = 1 THEN {d.hex64('i')} END,
       CASE WHEN i % 4 = 1 THEN {d.ts('t + 86400')} END,
       '{OWNER}'
FROM b"""
    templates = ", ".join(
        f"({k}, {p}, '{node}', '{typ}', '{op}', {right}, {last})" for k, p, node, typ, op, right, last in JOB_TEMPLATES
    )
    outcome = ("CASE tpl.op WHEN 'gt' THEN amount > tpl.rv WHEN 'gte' THEN amount >= tpl.rv "
               "WHEN 'lt' THEN amount < tpl.rv ELSE amount <> tpl.rv END")
    truth = f"CASE WHEN {outcome} THEN 'true' ELSE 'false' END"
    comparison = ("'{\"left\":' || CAST(amount AS TEXT) || ',\"op\":\"' || tpl.op || '\",\"right\":' "
                  "|| CAST(tpl.rv AS TEXT)")
    condition_input = f"'{{\"rules\":' || {comparison} || '}}}}'"
    condition_result = f"'{{\"result\":' || {truth} || ',\"checks\":[' || {comparison} || ',\"result\":' || {truth} || '}}]}}'"
    response_input = "'{\"status\":200,\"body\":' || " + answer + " || '}'"
    response_result = "'{\"status\":200,\"headers\":{},\"body\":' || " + answer + " || ',\"sent\":true}'"
    job_failed = "failed = 1 AND tpl.last = 1"
    job_error_json = json.dumps({"node": "round-amount", "error": "node_error", "message": FAIL_MESSAGE}, separators=(",", ":"))
    job_error = f"CASE WHEN {job_failed} THEN '{job_error_json}' END"
    start = "t + 0.0005 + 0.0003 * tpl.pos"
    jobs = f"""WITH RECURSIVE {_rows_cte(d, n, t0)},
tpl(kind, pos, node, type, op, rv, last) AS (VALUES {templates})
INSERT INTO hookline_job (execution_id, position, node, type, status, input, result, branch, error, started_at, finished_at)
SELECT {base} + i, tpl.pos,
       CASE WHEN tpl.type = 'response' THEN tier ELSE tpl.node END,
       tpl.type,
       CASE WHEN {job_failed} THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN tpl.type = 'response' THEN {response_input} ELSE {condition_input} END,
       CASE WHEN {job_failed} THEN NULL WHEN tpl.type = 'response' THEN {response_result} ELSE {condition_result} END,
       CASE WHEN tpl.type = 'condition' AND NOT ({job_failed}) THEN {truth} END,
       {d.json(job_error)},
       {d.ts(start)},
       {d.ts(start + ' + 0.0002')}
FROM b CROSS JOIN tpl
WHERE tpl.kind = b.kind
{"" if d.name == "sqlite" else "ORDER BY i, tpl.pos"}"""
    # SQLite: CROSS JOIN keeps b the outer loop, so jobs come out in execution order unsorted.
    return executions, jobs


async def seed_history(db_url: str, executions: int) -> dict[str, Any]:
    t_start = time.monotonic()
    await apply_paths(db_url, HISTORY_WORKFLOWS)
    t0 = time.time() - SPAN_S - 3600  # the newest an hour ago
    timings: dict[str, float] = {"apply_s": round(time.monotonic() - t_start, 2)}
    workflows_sql = ("SELECT key, id, current_version_id FROM hookline_workflow "
                     "WHERE key IN ('bench-sync', 'bench-async', 'bench-history-orders')")
    if db_url.startswith("sqlite://"):
        d = Dialect("sqlite")
        con = sqlite3.connect(db_url.removeprefix("sqlite://"), isolation_level=None)
        try:
            con.execute("PRAGMA synchronous = OFF")  # the seed only: the server sets its own
            ids = {key: (wid, vid) for key, wid, vid in con.execute(workflows_sql)}
            base = con.execute("SELECT COALESCE(MAX(id), 0) FROM hookline_execution").fetchone()[0]
            execution_sql, jobs_sql = history_sql(d, executions, base, t0, ids)
            con.execute("BEGIN")
            t = time.monotonic()
            con.execute(execution_sql)
            counts = {"hookline_execution": con.execute("SELECT changes()").fetchone()[0]}
            timings["executions_s"] = round(time.monotonic() - t, 2)
            t = time.monotonic()
            con.execute(jobs_sql)
            counts["hookline_job"] = con.execute("SELECT changes()").fetchone()[0]
            timings["jobs_s"] = round(time.monotonic() - t, 2)
            con.execute("COMMIT")
            t = time.monotonic()
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL into the file, as a server would
        finally:
            con.close()
        os.sync()  # no writeback of the seed left for the server's run to compete with
        timings["checkpoint_sync_s"] = round(time.monotonic() - t, 2)
    else:
        import asyncpg

        d = Dialect("postgres")
        con = await asyncpg.connect(db_url, timeout=10)
        try:
            ids = {r["key"]: (r["id"], r["current_version_id"]) for r in await con.fetch(workflows_sql)}
            base = await con.fetchval("SELECT COALESCE(MAX(id), 0) FROM hookline_execution")
            execution_sql, jobs_sql = history_sql(d, executions, base, t0, ids)
            async with con.transaction():
                try:  # skip the foreign-key triggers (superuser only): the rows are consistent
                    await con.execute("SET LOCAL session_replication_role = replica")
                except asyncpg.PostgresError:
                    pass
                t = time.monotonic()
                counts = {"hookline_execution": int((await con.execute(execution_sql)).split()[-1])}
                timings["executions_s"] = round(time.monotonic() - t, 2)
                t = time.monotonic()
                counts["hookline_job"] = int((await con.execute(jobs_sql)).split()[-1])
                timings["jobs_s"] = round(time.monotonic() - t, 2)
            for table in ("hookline_execution", "hookline_job"):  # ids go on after the seeded ones
                await con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
            t = time.monotonic()
            await con.execute("VACUUM ANALYZE hookline_execution")
            await con.execute("VACUUM ANALYZE hookline_job")
            timings["vacuum_analyze_s"] = round(time.monotonic() - t, 2)
            t = time.monotonic()
            await con.execute("CHECKPOINT")  # dirty buffers written now, not during the server's run
        finally:
            await con.close()
        os.sync()
        timings["checkpoint_sync_s"] = round(time.monotonic() - t, 2)
    return {"rows_inserted": counts, **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    history = sub.add_parser("history", help="finished executions with their jobs, in bulk SQL")
    history.add_argument("--db", required=True)
    history.add_argument("--executions", type=int, default=1_000_000)
    workflows = sub.add_parser("workflows", help="webhook workflows of bench-sync's shape, through the host")
    workflows.add_argument("--db", required=True)
    workflows.add_argument("--count", type=int, default=10_000)
    workflows.add_argument("--paths", action="store_true", help="give each a custom path, tenants/t00001/orders/:id ...")
    apply = sub.add_parser("apply", help="apply workflow files or directories through the host")
    apply.add_argument("--db", required=True)
    apply.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    t = time.monotonic()
    if args.command == "history":
        result = asyncio.run(seed_history(args.db, args.executions))
    elif args.command == "workflows":
        result = asyncio.run(seed_workflows(args.db, args.count, args.paths))
    else:
        result = asyncio.run(apply_paths(args.db, args.paths))
    print(json.dumps({"command": args.command, **result, "seconds": round(time.monotonic() - t, 2)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
