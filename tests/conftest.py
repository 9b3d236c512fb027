"""Shared fixtures. hookline.testing (the pytest plugin we ship) provides ``hookline`` and
friends; here its database is parametrised over SQLite and PostgreSQL.

PostgreSQL: ``HOOKLINE_TEST_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432/test``)
names a server and a database to connect to; each test gets a fresh database created there and
dropped afterwards. Without a reachable server the PostgreSQL variants are skipped, unless
``HOOKLINE_REQUIRE_POSTGRES=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import shutil
import signal
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "workflows"
POSTGRES_URL = os.environ.get("HOOKLINE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("HOOKLINE_REQUIRE_POSTGRES") == "1"

_postgres_problem: list[str | None] = []

#: A test (setup and teardown included) running longer than this is taken for hung: its asyncio
#: tasks and threads are printed and the run ends, rather than CI waiting out its time limit.
HANG_LIMIT = int(os.environ.get("HOOKLINE_TEST_HANG_LIMIT", "600"))


_capture: list[Any] = []


def _hung(signum: int, frame: Any) -> None:
    for manager in _capture:  # (output captured now would be lost with the process)
        manager.suspend_global_capture(in_=False)
    out = sys.stderr
    out.write(f"\n=== a test ran longer than {HANG_LIMIT} s (HOOKLINE_TEST_HANG_LIMIT): its asyncio tasks ===\n")
    loop = asyncio._get_running_loop()
    for task in asyncio.all_tasks(loop) if loop is not None else ():
        out.write(f"--- {task!r}\n")
        task.print_stack(limit=30, file=out)
    out.write("=== threads ===\n")
    out.flush()
    faulthandler.dump_traceback(all_threads=True)
    os._exit(3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):
        yield
        return
    manager = item.config.pluginmanager.getplugin("capturemanager")
    _capture[:] = [manager] if manager is not None else []
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(HANG_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None. Checked once per session."""
    if not _postgres_problem:
        try:
            import asyncpg  # noqa: F401
        except ImportError:
            _postgres_problem.append("asyncpg is not installed (pip install 'hookline[postgres]')")
        else:
            try:
                asyncio.run(_admin(lambda conn: conn.fetchval("select 1")))
                _postgres_problem.append(None)
            except Exception as exc:  # noqa: BLE001 - any failure means "not here"
                _postgres_problem.append(f"no PostgreSQL at {POSTGRES_URL} ({type(exc).__name__}: {exc})")
    return _postgres_problem[0]


async def _admin(work: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=3)
    try:
        return await work(conn)
    finally:
        await conn.close()


def _asyncpg_dsn(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def skip_or_fail(problem: str | None, *, required: bool, variable: str) -> None:
    """A service a test needs is missing here (``problem`` says why): skip the test, or fail it
    where the environment ``variable`` says the service is required (CI)."""
    if problem:
        if required:
            pytest.fail(f"{variable}=1 but {problem}")
        pytest.skip(problem)


def require_postgres() -> None:
    skip_or_fail(postgres_unavailable(), required=REQUIRE_POSTGRES, variable="HOOKLINE_REQUIRE_POSTGRES")


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per session (the host and the installed plugins' tables), copied
    for each test: copying is much faster than migrating every time."""
    require_postgres()
    from hookline.host import Host
    from hookline.settings import Settings

    name = f"hookline_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(lambda conn: conn.execute(f'CREATE DATABASE "{name}"')))
    try:
        asyncio.run(Host(Settings(db_url=_with_database(POSTGRES_URL, name))).migrate())
        yield name
    finally:
        asyncio.run(_admin(lambda conn: conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture
def postgres_db_url(postgres_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, with the host's and installed plugins' tables
    (a copy of the session's template; migrating it again applies nothing); dropped afterwards."""
    with new_postgres_database("hookline_test", template=postgres_template) as url:
        yield url


@contextmanager
def new_postgres_database(prefix: str, *, template: str | None = None) -> Iterator[str]:
    """The URL of a database created on the test server (empty, or a copy of ``template``) and
    dropped when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_admin(lambda conn: conn.execute(f'CREATE DATABASE "{name}"{copy}')))
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        asyncio.run(_admin(lambda conn: conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


REDIS_URL = os.environ.get("HOOKLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("HOOKLINE_REQUIRE_REDIS") == "1"


def redis_unavailable() -> str | None:
    """Why Redis tests cannot run here, or None."""
    try:
        import redis
    except ImportError:
        return "redis is not installed (pip install 'hookline[redis]')"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"no Redis at {REDIS_URL} ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A Redis stream (and consumer group) of this test's own, deleted afterwards. Skips without
    Redis, fails instead with ``HOOKLINE_REQUIRE_REDIS=1`` (CI)."""
    skip_or_fail(redis_unavailable(), required=REQUIRE_REDIS, variable="HOOKLINE_REQUIRE_REDIS")
    import redis

    name = f"hookline-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(name, *client.keys(f"autoclaim:{name}:*"))
    finally:
        client.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session (the host and the installed plugins' tables),
    copied for each test, as PostgreSQL's template is: migrating a new file takes ~0.15 s, a
    copy ~1 ms, and the suite makes hundreds."""
    from hookline.host import Host
    from hookline.settings import Settings

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(Host(Settings(db_url=f"sqlite://{path}")).migrate())
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hookline_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Overrides hookline.testing's fixture: every test using it runs on both databases, each on
    a migrated copy of the session's template."""
    if request.param == "sqlite":
        path = tmp_path / "hookline.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite://{path}"
    return request.getfixturevalue("postgres_db_url")


def sync_workflow(key: str = "pay", **extra: Any) -> dict[str, Any]:
    """The example's shape: condition on amount, a Response node per branch."""
    return {
        "key": key,
        "title": "Payment callback",
        "sync": True,
        "trigger": {"type": "webhook"},
        "nodes": [
            {
                "key": "check",
                "type": "condition",
                "config": {"rules": {"left": "{{ $context.body.amount }}", "op": "gt", "right": 100}},
                "branches": {
                    "true": [{"key": "high", "type": "response", "config": {"body": {"tier": "high", "id": "{{ $context.body.id }}"}}}],
                    "false": [{"key": "low", "type": "response", "config": {"status": 202, "body": {"tier": "low"}}}],
                },
            }
        ],
        **extra,
    }


def pip_install(package: Path, target: Path) -> Path:
    """Build ``package`` and pip-install it into ``target`` alone (no dependencies, no index):
    put ``target`` on PYTHONPATH of a subprocess to use it, as a stranger's installed package."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(package)],
        check=True,
        timeout=300,
    )
    return target


def install_package(root: Path, name: str, files: dict[str, str]) -> Path:
    """Write the package made of ``files`` (paths relative to its folder) under ``root`` and
    pip-install it into a directory of its own, returned (see :func:`pip_install`)."""
    package = root / name
    for relative, text in files.items():
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(text)
    return pip_install(package, root / f"{name}-site")
