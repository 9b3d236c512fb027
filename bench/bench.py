"""Hookline vs bare Sanic: webhook throughput and latency on 127.0.0.1 (run it with bench/run).

Per round, one server at a time on a free port: bare Sanic (bench/baseline.py), Hookline on
SQLite, and Hookline on PostgreSQL when BENCH_POSTGRES_URL is set. For each: wait until it
answers, check the answers, warm up, then wrk the sync and the async workflow; for Hookline also
count the async executions in the database until the backlog has drained. Prints markdown
tables and appends one JSON line per measurement to bench/results/<run id>.jsonl.

Settings (environment): DURATION=10s CONNS=32 ROUNDS=1 WARMUP=3s THREADS=1 DRAIN_MAX=60
STOP_TIMEOUT=20 TARGETS="baseline sqlite postgres" BENCH_POSTGRES_URL=postgres://user@host:port/db
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
PAYLOAD = {"id": "abc123", "amount": 150, "customer": {"email": "a@b.c"}}
FINISHED = {"succeeded", "failed", "error", "cancelled", "timed_out"}
BACKLOG = {"queued", "running"}

DURATION = os.environ.get("DURATION", "10s")
WARMUP = os.environ.get("WARMUP", "3s")
CONNS = int(os.environ.get("CONNS", "32"))
ROUNDS = int(os.environ.get("ROUNDS", "1"))
THREADS = int(os.environ.get("THREADS", "1"))
DRAIN_MAX = float(os.environ.get("DRAIN_MAX", "60"))
STALL_S = 5.0
STOP_TIMEOUT = float(os.environ.get("STOP_TIMEOUT", "20"))
START_TIMEOUT = 60.0
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "")
TARGETS = os.environ.get("TARGETS", "baseline sqlite postgres").split()
if not POSTGRES_URL and "postgres" in TARGETS:
    TARGETS.remove("postgres")


class BenchError(Exception):
    pass


def seconds(duration: str) -> float:
    """wrk-style duration ('10s', '2m', '1h', '30') in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", duration.strip())
    if not match:
        raise SystemExit(f"bad duration {duration!r} (use e.g. 10s, 2m)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- servers -----------------------------------------------------------------------------


class Server:
    """A server process in a session of its own, stopped by PID (SIGINT, then SIGKILL)."""

    running: list[Server] = []

    def __init__(self, name: str, argv: list[str], *, log: Path, cwd: Path | None = None, env: dict | None = None):
        self.name, self.argv, self.log_path, self.cwd, self.env = name, argv, log, cwd, env
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.stop_s: float | None = None

    def start(self) -> None:
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        Server.running.append(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.stop_s is not None:
            return
        t0 = time.monotonic()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"  {self.name}: no exit {STOP_TIMEOUT:.0f}s after SIGINT; SIGKILL", file=sys.stderr)
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: pgid == pid
                self.proc.wait(10)
        self.stop_s = round(time.monotonic() - t0, 2)
        self.exit_code = self.proc.returncode
        self.log_file.close()
        if self in Server.running:
            Server.running.remove(self)

    def memory_mib(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak) of the server process, in MiB."""
        values = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(rest.split()[0]) / 1024, 1)
        return values

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def log_tail(self, lines: int = 40) -> str:
        self.log_file.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> dict[str, int]:
        """Error lines of the log, timestamps stripped, each with the last line of the traceback or
        exception text under it, counted."""
        stamp = re.compile(r"^(Main\s+)?\d{4}-\d\d-\d\d[ T][\d:,.]+( \+\d{4})? ")
        lines = self.log_path.read_text(errors="replace").splitlines()
        problems: dict[str, int] = {}
        for i, line in enumerate(lines):
            if not (stamp.match(line) and re.search(r"\b(ERROR|CRITICAL)\b", line)):
                continue
            detail = ""
            for following in lines[i + 1:]:
                if stamp.match(following):
                    break
                detail = following.strip() or detail
            text = stamp.sub("", line) + (f" -> {detail}" if detail else "")
            problems[text] = problems.get(text, 0) + 1
        return problems


def wait_ready(server: Server, probe) -> None:
    """Call probe() until it does not raise a connection error (bounded by START_TIMEOUT)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if not server.alive():
            raise BenchError(f"{server.name} exited ({server.proc.returncode}) while starting:\n{server.log_tail()}")
        try:
            probe()
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} did not answer within {START_TIMEOUT:.0f}s:\n{server.log_tail()}")
            time.sleep(0.2)


# --- databases ---------------------------------------------------------------------------


def execution_counts(db_url: str) -> dict[str, dict[str, int]]:
    """{workflow key: {status: executions}} read straight from Hookline's tables."""
    sql = (
        "SELECT w.key, e.status, COUNT(*) FROM hookline_execution e "
        "JOIN hookline_workflow w ON w.id = e.workflow_id GROUP BY w.key, e.status"
    )
    if db_url.startswith("sqlite://"):
        con = sqlite3.connect(db_url.removeprefix("sqlite://"), timeout=10)
        try:
            rows = con.execute(sql).fetchall()
        finally:
            con.close()
    else:
        rows = asyncio.run(_pg(db_url, sql))
    counts: dict[str, dict[str, int]] = {}
    for key, status, n in rows:
        counts.setdefault(key, {})[status] = n
    return counts


async def _pg(url: str, sql: str) -> list:
    import asyncpg

    con = await asyncpg.connect(url, timeout=10)
    try:
        return [tuple(row) for row in await con.fetch(sql)]
    finally:
        await con.close()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


# --- load --------------------------------------------------------------------------------


def wrk(url: str, duration: str, label: str) -> dict:
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNS}", f"-d{duration}", "--timeout", "10s", "--latency",
           "-s", str(BENCH / "post.lua"), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds(duration) + 60,
                         env={**os.environ, "WRK_LABEL": label})
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
            result["errors"] = sum(result[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
            return result
    raise BenchError(f"wrk printed no RESULT line (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")


def check(client: httpx.Client, sync_url: str, async_url: str) -> None:
    """One request per answer shape; raises BenchError when an answer is wrong."""
    for amount, tier in ((150, "high"), (50, "low")):
        r = client.post(sync_url, json={**PAYLOAD, "amount": amount})
        expected = {"ok": True, "tier": tier, "id": "abc123"}
        if r.status_code != 200 or r.headers.get("content-type", "").split(";")[0] != "application/json" \
                or r.json() != expected:
            raise BenchError(f"sync amount={amount}: HTTP {r.status_code} {r.text!r}, expected 200 {expected}")
    r = client.post(async_url, json=PAYLOAD)
    if r.status_code != 200 or r.text != "ok":
        raise BenchError(f"async: HTTP {r.status_code} {r.text!r}, expected 200 'ok'")


def drain(db_url: str, key: str, before: dict[str, int]) -> tuple[float, dict[str, int], str]:
    """Poll until none of KEY's executions started since BEFORE is queued or running. Gives up when
    the counts have not moved for STALL_S seconds (stuck executions) or after DRAIN_MAX seconds.
    Returns (seconds until the last change, final counts, "drained" | "stalled" | "timeout")."""
    t0 = last_change = time.monotonic()
    previous = None
    while True:
        counts = execution_counts(db_url).get(key, {})
        now = time.monotonic()
        if counts != previous:
            previous, last_change = counts, now
        if sum(diff(counts, before).get(s, 0) for s in BACKLOG) <= 0:
            return round(now - t0, 2), counts, "drained"
        if now - last_change > STALL_S:
            return round(last_change - t0, 2), counts, "stalled"
        if now - t0 > DRAIN_MAX:
            return round(now - t0, 2), counts, "timeout"
        time.sleep(0.25)


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {s: after.get(s, 0) - before.get(s, 0) for s in sorted(set(after) | set(before)) if after.get(s, 0) != before.get(s, 0)}


def bench_target(target: str, round_no: int, run_dir: Path, emit) -> None:
    port = free_port()
    log = run_dir / f"{target}-r{round_no}.log"
    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    pg_admin, pg_db, server = None, None, None
    try:
        if target == "baseline":
            server = Server(target, [sys.executable, str(BENCH / "baseline.py"), str(port)], log=log)
            base = f"http://127.0.0.1:{port}"
            urls = {"sync": f"{base}/bench-sync", "async": f"{base}/bench-async"}
            db_url = None
        else:
            if target == "sqlite":
                db_url = f"sqlite://{tmp}/bench.db"
            else:
                pg_admin, pg_db = POSTGRES_URL, f"hookline_bench_{os.getpid()}_{round_no}"
                asyncio.run(_pg(pg_admin, f'CREATE DATABASE "{pg_db}"'))
                db_url = with_database(POSTGRES_URL, pg_db)
            env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
            env["HOOKLINE_API_TOKEN"] = secrets.token_urlsafe(24)
            argv = [str(VENV_BIN / "hookline"), "serve", "--port", str(port), "--db", db_url,
                    "--workflows", str(BENCH / "workflows")]
            server = Server(target, argv, log=log, cwd=tmp, env=env)
            base = f"http://127.0.0.1:{port}"
            urls = {w: f"{base}/api/webhooks/bench-{w}" for w in ("sync", "async")}

        print(f"\n== {target} (round {round_no}) on port {port}; log: {log.relative_to(ROOT)}", file=sys.stderr)
        server.start()
        with httpx.Client(timeout=10, trust_env=False) as client:  # no proxies: loopback only
            if db_url:
                wait_ready(server, lambda: client.get(f"{base}/api/health").raise_for_status())
            else:
                wait_ready(server, lambda: client.post(urls["sync"], json=PAYLOAD))
            check(client, urls["sync"], urls["async"])
            for workflow in ("sync", "async"):
                wrk(urls[workflow], WARMUP, f"warmup/{target}/{workflow}")
            if db_url:
                drain(db_url, "bench-async", {})
            for workflow in ("sync", "async"):
                key = f"bench-{workflow}"
                before = execution_counts(db_url).get(key, {}) if db_url else {}
                cpu0, t0 = server.cpu_s(), time.monotonic()
                result = wrk(urls[workflow], DURATION, f"{target}/{workflow}/c{CONNS}")
                t1 = time.monotonic()
                cpu1 = server.cpu_s()
                if not server.alive():
                    raise BenchError(f"{target} died during the {workflow} run:\n{server.log_tail()}")
                mem = server.memory_mib()
                record = {**result, "target": target, "workflow": workflow, "conns": CONNS, "threads": THREADS,
                          "duration": DURATION, "round": round_no, "rss_mib": mem["VmRSS"], "hwm_mib": mem["VmHWM"],
                          "server_cores_used": round((cpu1 - cpu0) / (t1 - t0), 2)}
                if db_url:
                    at_end = diff(execution_counts(db_url).get(key, {}), before)
                    record["backlog_at_end"] = sum(at_end.get(s, 0) for s in BACKLOG)
                    record["completed_during_load"] = sum(at_end.get(s, 0) for s in FINISHED)
                    drain_s, final, record["drain"] = drain(db_url, key, before)
                    new = record["executions_by_status"] = diff(final, before)  # executions of this run
                    record["drain_s"] = drain_s
                    record["backlog_after_drain"] = sum(new.get(s, 0) for s in BACKLOG)
                    record["executions_created"] = sum(new.values())
                    record["completed"] = sum(new.get(s, 0) for s in FINISHED)
                    record["completed_per_s"] = round(record["completed"] / (t1 - t0 + drain_s), 1)
                    record["rss_after_drain_mib"] = server.memory_mib()["VmRSS"]
                emit(record)
                print(f"  {workflow}: {result['rps']:.0f} req/s, p99 {result['lat_p99_ms']:.1f} ms, "
                      f"errors {result['errors']}" + (f", executions {record['executions_by_status']}, backlog at "
                      f"end {record['backlog_at_end']}, {record['drain']} after {record['drain_s']} s" if db_url else ""),
                      file=sys.stderr)
            check(client, urls["sync"], urls["async"])  # still answering correctly after the load
    except BenchError as exc:
        print(f"  {target}: FAILED: {exc}", file=sys.stderr)
        emit({"target": target, "round": round_no, "failed": str(exc)[:2000]})
    finally:
        if server and server.proc:
            server.stop()
            problems = server.log_problems()
            emit({"target": target, "round": round_no, "server_exit_code": server.exit_code,
                  "server_stop_s": server.stop_s, "server_log_errors": problems})
        if pg_db:
            asyncio.run(_pg(pg_admin, f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)


# --- report ------------------------------------------------------------------------------


def report(records: list[dict]) -> str:
    runs = [r for r in records if "rps" in r]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["target"], r["workflow"]), []).append(r)
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    baseline = {w: med(rs, "rps") for (t, w), rs in groups.items() if t == "baseline"}
    label = {"baseline": "bare Sanic", "sqlite": "Hookline (SQLite)", "postgres": "Hookline (PostgreSQL)"}
    lines = [
        "| target | workflow | conns | req/s | p50 ms | p99 ms | errors | RSS MiB | vs bare Sanic |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (target, workflow), rs in groups.items():
        ratio = f"{med(rs, 'rps') / baseline[workflow]:.2f}x" if workflow in baseline and target != "baseline" else ""
        lines.append(f"| {label.get(target, target)} | {workflow} | {rs[0]['conns']} | {med(rs, 'rps'):.0f} | "
                     f"{med(rs, 'lat_p50_ms'):.2f} | {med(rs, 'lat_p99_ms'):.2f} | {sum(r['errors'] for r in rs)} | "
                     f"{med(rs, 'rss_mib'):.0f} | {ratio} |")
    hookline_runs = [r for r in runs if "drain_s" in r]
    if hookline_runs:
        lines += [
            "",
            "| target | workflow | accepted (2xx) | executions created | finished during load | backlog at end "
            "| drain s | left queued/running | finished/s | not succeeded | RSS after drain MiB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in hookline_runs:
            not_ok = {s: n for s, n in r["executions_by_status"].items() if s != "succeeded"}
            drained = r["drain_s"] if r["drain"] == "drained" else f"{r['drain_s']} ({r['drain']})"
            lines.append(f"| {label.get(r['target'], r['target'])} | {r['workflow']} | {r['requests'] - r['err_status']} | "
                         f"{r['executions_created']} | {r['completed_during_load']} | {r['backlog_at_end']} | "
                         f"{drained} | {r['backlog_after_drain']} | {r['completed_per_s']} | "
                         f"{json.dumps(not_ok) if not_ok else 0} | {r['rss_after_drain_mib']:.0f} |")
    notes = []
    for r in records:
        if "server_exit_code" in r and (r["server_exit_code"] != 0 or r["server_log_errors"]):
            notes.append(f"- {label.get(r['target'], r['target'])}, round {r['round']}: exit code "
                         f"{r['server_exit_code']}, stopped in {r['server_stop_s']} s; server log:")
            notes += [f"  - {n}x `{text[:300]}`" for text, n in r["server_log_errors"].items()]
        if "failed" in r:
            notes.append(f"- {label.get(r['target'], r['target'])}, round {r['round']}: FAILED: "
                         f"{r['failed'].splitlines()[0]}")
    if notes:
        lines += ["", "Server notes:", *notes]
    if len({r["round"] for r in runs}) > 1:
        lines.append(f"\nMedians over {len({r['round'] for r in runs})} rounds (errors: total).")
    return "\n".join(lines)


def environment() -> dict:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
        except Exception:
            return ""

    from importlib.metadata import version

    return {"git": cmd("git", "rev-parse", "--short", "HEAD") + ("+dirty" if cmd("git", "status", "--porcelain") else ""),
            "python": platform.python_version(), "sanic": version("sanic"), "tortoise": version("tortoise-orm"),
            "hookline": version("hookline"), "wrk": cmd("wrk", "-v").split("\n")[0].split(" Copyright")[0],
            "cpus": os.cpu_count(), "loadavg": Path("/proc/loadavg").read_text().split()[0]}


def main() -> int:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if THREADS > CONNS:
        raise SystemExit("THREADS must not exceed CONNS")

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)  # runs the finally blocks: servers stopped, databases dropped

    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (`cmd &` in a script);
    # that also keeps the servers from inheriting an ignored SIGINT, which stops them.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    run_id = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    out_path = results_dir / f"{run_id}.jsonl"
    env = environment()
    records: list[dict] = []

    def emit(record: dict) -> None:
        record = {"run": run_id, "ts": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
        records.append(record)
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    emit({"environment": env, "settings": {"duration": DURATION, "warmup": WARMUP, "conns": CONNS, "threads": THREADS,
                                            "rounds": ROUNDS, "targets": TARGETS, "drain_max": DRAIN_MAX}})
    print(f"run {run_id}: targets {' '.join(TARGETS)}, {ROUNDS} round(s) of {DURATION} per workflow at c={CONNS}",
          file=sys.stderr)
    interrupted = None
    try:
        for round_no in range(1, ROUNDS + 1):
            for target in TARGETS:
                bench_target(target, round_no, run_dir, emit)
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = exc
    finally:
        for server in list(Server.running):
            server.stop()
    print(f"\nHookline {env['hookline']} @ {env['git']}, Python {env['python']}, Sanic {env['sanic']}, "
          f"tortoise {env['tortoise']}, {env['wrk']}, {env['cpus']} CPUs (wrk and server share them), "
          f"load average at start {env['loadavg']}, wrk -t{THREADS} -c{CONNS} -d{DURATION}, warm-up {WARMUP}\n")
    print(report(records))
    print(f"\nraw results: {out_path.relative_to(ROOT)}; server logs: {run_dir.relative_to(ROOT)}/")
    if interrupted is not None:
        print(f"\ninterrupted ({type(interrupted).__name__}); the results above are partial")
        return 130
    return 1 if any("failed" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
