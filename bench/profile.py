"""Where the server's CPU goes per webhook call: py-spy samples of ``hookline serve --workers 1``
under wrk, sorted into the steps a call goes through, in CPU milliseconds per call.

    .venv/bin/python bench/profile.py [--db sqlite|postgres] [--load sync|async] [--duration 10]
        [--rate 1000] [--py-spy PATH] [--keep DIR]

Starts one server on a fresh database (a SQLite file; or, with ``--db postgres``, a database
created on ``BENCH_POSTGRES_URL``, dropped afterwards), warms it up, then runs wrk (CONNS
connections, as bench.py) for ``--duration`` seconds while py-spy samples the server
(``--nonblocking``: the server is not paused). The server's CPU time over the run divided by the
requests answered is the CPU per call; each step's share of the samples (every thread: the
event loop's and aiosqlite's) gives its part of it. Without ``--native`` py-spy sees Python
frames only: time in C (uvloop, httptools, sqlite3, json's C encoder) counts for the Python
function that called it.

py-spy is not a dependency: install it apart (``python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip
install py-spy``) and pass ``--py-spy /tmp/pyspy/bin/py-spy`` (or have it on PATH). Attaching needs
ptrace rights (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # the bench's servers, databases and wrk

#: Steps of a call on the event loop's thread, most specific first: a sample counts for the
#: first step one of whose patterns matches a frame of its stack (py-spy writes a frame as
#: ``Class.function (file:line)``; Sanic recompiles some of its methods, which then show as
#: ``send (send)``, ``http1_request_header (http1_request_header)``...). Order matters: a JSON
#: encode under the outcome store counts as the store's.
LOOP_STEPS: list[tuple[str, list[str]]] = [
    # A leaf in the loop itself: uvloop's C (epoll, socket reads and writes, task steps, callbacks).
    ("event loop in C (uvloop: epoll, socket I/O, task steps)", [r"LEAF:_run_server_forever \(", r"LEAF:run_forever \("]),
    ("storage: asyncpg (driver, protocol)", [r"\(asyncpg/"]),
    ("storage: insert the execution", [r"_insert_running \(", r"(ExecutionService|Runner)\._insert \(", r"ExecutionStore\.insert",
                                       r"insert_execution"]),
    ("storage: outcome + jobs", [r"ExecutionService\._store \(", r"ExecutionStore\.finish \(", r"store_outcome"]),
    ("storage: claim (async)", [r"claim_queued", r"_claim_and_load", r"ExecutionStore\.claim"]),
    ("workflow lookup (find: read the workflow's row, cached version)", [r"WorkflowService\."]),
    ("storage: group commit, tortoise, aiosqlite (loop side)",
     [r"group_commit\.py", r"\(tortoise/", r"\(aiosqlite/", r"\(hookline/storage/", r"\(pypika"]),
    ("engine: templates", [r"\(hookline/templates\.py"]),
    ("engine: node types (condition, response)", [r"\(hookline_condition/", r"\(hookline_response/"]),
    ("engine: run, jobs, result JSON check", [r"\(hookline/engine\.py"]),
    ("execution service (tasks, slots, reply wait)",
     [r"\(hookline/(executions|runner|delivery|recovery|queue)\.py", r"\(hookline/storage/executions\.py", r"\(taskiq/"]),
    ("webhook: read body", [r"read_body \(", r"_arrived \("]),
    ("webhook: parse request ($context: headers, JSON, limits)", [r"parse_request \(", r"headers_of \("]),
    ("webhook: parameters, checks, capture", [r"apply_parameters", r"refusal \(", r"_check_", r"check_content_type", r"_authenticate", r"armed \("]),
    ("webhook: answer (render, reply_response)", [r"reply_response", r"_run_async \(", r"_scope \(", r"reply_of \(", r"ended \(", r"add_cors \("]),
    ("webhook: route (rest: status key, CORS, dispatch)", [r"\(hookline_webhook/"]),
    ("sanic: response (headers, write)", [r"\(sanic/response/", r"^send \(send\)", r"http1_response_header", r"format_http1_response",
                                          r"Request\.respond", r"_no_sniffing", r"\(sanic/cookies"]),
    ("sanic: request parsing (request line, headers, Request)", [r"http1_request_header", r"\(sanic/request/", r"\(sanic/headers\.py"]),
    ("sanic: routing, handler dispatch, signals, connection loop", [r"\(sanic/", r"^handle_request \(", r"^read \(read\)",
                                                                   r"^connection_task \("]),
    ("asyncio / uvloop (loop, tasks, futures)", [r"\(asyncio/", r"uvloop", r"\(<frozen", r"contextvars"]),
]

#: Steps in aiosqlite's thread (the SQLite statements, in C, count for the Python function
#: that ran them).
DB_STEPS: list[tuple[str, list[str]]] = [
    ("sqlite thread: hand-over (aiosqlite's queue, call_soon_threadsafe, the GIL back)",
     [r"LEAF:_connection_worker_thread \("]),
    ("sqlite thread: outcome + jobs statements", [r"store_outcome_sqlite"]),
    ("sqlite thread: insert statements (a run's row; a sync run's with its jobs)",
     [r"insert_execution_sqlite", r"insert_known_sqlite", r"insert_finished_sqlite"]),
    ("sqlite thread: id reservations and deletions of runs not kept", [r"_reserve_sqlite_ids", r"discard_sqlite"]),
    ("sqlite thread: claim statements", [r"claim"]),
    ("sqlite thread: BEGIN / COMMIT (fsync) of each group", [r"_run_group \(", r"_begin \("]),
    ("sqlite thread: group commit plumbing (busy_timeout, hand-over)", [r"group_commit\.py"]),
    ("sqlite thread: other queries (tortoise, aiosqlite)", [r"."]),
]


def classify(stack: list[str], steps: list[tuple[str, list[str]]]) -> str:
    """``stack``: frames leaf first."""
    for name, patterns in steps:
        for pattern in patterns:
            if pattern.startswith("LEAF:"):  # the innermost frame only
                if stack and re.search(pattern[5:], stack[0]):
                    return name
            elif any(re.search(pattern, frame) for frame in stack):
                return name
    return "other: " + (stack[0] if stack else "?")


def read_samples(path: Path, main_tid: int) -> dict[str, collections.Counter[str]]:
    """py-spy's raw (collapsed) output with ``--threads``: ``thread (TID): NAME;...;leaf COUNT``
    per line; the samples by thread (``loop`` for the main one, ``db`` for the others) and step."""
    counts: dict[str, collections.Counter[str]] = {"loop": collections.Counter(), "db": collections.Counter()}
    for line in path.read_text(errors="replace").splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        frames = [f.strip() for f in stack_text.split(";")]
        thread = re.match(r"thread \((\d+)\)", frames[0])
        which = "loop" if thread is None or int(thread.group(1)) == main_tid else "db"
        frames = [re.sub(r"\(/[^ ]*?/(site-packages|src|lib/python3\.\d+)/", "(", f) for f in frames[1:]]
        steps = LOOP_STEPS if which == "loop" else DB_STEPS
        counts[which][classify(frames[::-1], steps)] += int(count)
    return counts


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) of each thread of ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--load", choices=("sync", "async"), default="sync")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "/tmp/pyspy-venv/bin/py-spy")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw output here")
    parser.add_argument("--no-spy", action="store_true", help="CPU per call only, without sampling (A/B comparisons)")
    args = parser.parse_args()
    if args.db == "postgres" and not bench.POSTGRES_URL:
        parser.error("--db postgres needs BENCH_POSTGRES_URL")
    tmp = Path(tempfile.mkdtemp(prefix="hookline-profile-"))
    database = bench.FreshDatabase(args.db, tmp)
    target = bench.HooklineServe(args.db, 1)
    deployment = target.deploy(database.url, bench.BENCH / "workflows", tmp, tmp, "profile")
    server = deployment.servers[0]
    key = f"bench-{args.load}"
    try:
        server.start()
        import httpx

        def probe() -> None:
            if httpx.get(server.health, timeout=2).status_code != 200:
                raise bench.NotReady()

        bench.wait_ready(server, probe)
        url = deployment.url(key)
        bench.wrk(url, bench.WARMUP, "warmup")
        time.sleep(2)  # the warm-up's async backlog
        raw = tmp / "pyspy.txt"
        spy_cmd = [args.py_spy, "record", "--pid", str(server.proc.pid), "--duration", str(args.duration),
                   "--rate", str(args.rate), "--format", "raw", "--nonblocking", "--threads", "--output", str(raw)]
        if args.native:
            spy_cmd.append("--native")
        pid = server.proc.pid
        cpu0, threads0 = server.cpu_s(), thread_cpu_s(pid)
        spy = None if args.no_spy else subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        result = bench.wrk(url, f"{args.duration}s", "profile")
        cpu, threads1 = server.cpu_s() - cpu0, thread_cpu_s(pid)
        loop_cpu = threads1.get(pid, 0.0) - threads0.get(pid, 0.0)
        db_cpu = sum(threads1[t] - threads0.get(t, 0.0) for t in threads1 if t != pid)
        if spy is None:
            print(f"{args.db} {args.load}: {result['rps']:.0f} req/s; {1000 * cpu / result['requests']:.3f} CPU ms per call "
                  f"(event loop thread {1000 * loop_cpu / result['requests']:.3f})")
            return 0
        _, spy_err = spy.communicate(timeout=60)
        if spy.returncode != 0 or not raw.exists():
            print(f"py-spy failed ({spy.returncode}): {spy_err}", file=sys.stderr)
            return 1
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.keep / f"pyspy-{args.db}-{args.load}.txt")
        counts = read_samples(raw, pid)  # before tmp (which holds it) is removed
    finally:
        server.stop()
        database.drop()
        shutil.rmtree(tmp, ignore_errors=True) if not args.keep else None
    requests = result["requests"]
    per_call = 1000 * cpu / requests
    print(f"{args.db} {args.load}: {result['rps']:.0f} req/s; server CPU {cpu:.2f} s for {requests} calls = "
          f"{per_call:.3f} ms per call: event loop thread {1000 * loop_cpu / requests:.3f}, other threads "
          f"(aiosqlite) {1000 * db_cpu / requests:.3f}")
    for which, thread_cpu in (("loop", loop_cpu), ("db", db_cpu)):
        print(f"  {which}: {sum(counts[which].values()) / args.rate:.2f} s sampled (active), {thread_cpu:.2f} s CPU")
    print("| thread | step | share of the thread's samples | CPU ms per call |")
    print("|---|---|---:|---:|")
    for which, thread_cpu in (("loop", loop_cpu), ("db", db_cpu)):
        total = sum(counts[which].values())
        for name, count in counts[which].most_common():
            share = count / total
            if share >= 0.002:
                print(f"| {which} | {name} | {100 * share:.1f}% | {1000 * thread_cpu / requests * share:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
