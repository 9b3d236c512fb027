"""Test fixtures for Hookline and for authors of Hookline plugins.

Active in every pytest run of an environment with ``pip install 'hookline[test]'``: the entry
point ``pytest11`` names :mod:`hookline.pytest_plugin`, which brings these fixtures in when the
extra's httpx and pytest-asyncio are installed (without them, ``hookline`` and ``hookline_server``
fail saying what to install). What a node type's test needs::

    async def test_my_node(hookline):
        execution = await hookline.run_workflow({"trigger": {"type": "webhook"}, "nodes": [...]}, {"body": {}})
        assert execution["status"] == "succeeded"

Fixtures (override any of the first four in your ``conftest.py``):

* ``hookline_plugins`` — extra plugin objects to register (default: none).
* ``hookline_entry_points`` — load installed plugins (default: True).
* ``hookline_db_url`` — the database (default: a SQLite file in ``tmp_path``).
* ``hookline_settings`` — :class:`hookline.settings.Settings` for the app.
* ``hookline`` — a :class:`HooklineTestApp`: migrated database, running app, HTTP client.
* ``hookline_server`` — a real ``hookline serve`` process on 127.0.0.1 (:class:`HooklineServer`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Iterator

import httpx
import pytest
import pytest_asyncio

from hookline.settings import Settings

if TYPE_CHECKING:
    from hookline.host import Host

#: The management API token of test apps and servers.
TEST_TOKEN = "hookline-test-token"


class HooklineTestApp:
    """A running app on a migrated database, with an in-process HTTP client."""

    def __init__(self, host: Host, app: Any, client: httpx.AsyncClient) -> None:
        self.host = host
        self.app = app
        #: An ``httpx.AsyncClient`` that calls the app in-process (ASGI, no socket).
        self.client = client

    @property
    def auth(self) -> dict[str, str]:
        """Headers that pass the management API's token check."""
        return {"Authorization": f"Bearer {TEST_TOKEN}"}

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the management API with the test token."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def apply(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create or update a workflow; raises :class:`hookline.DefinitionError` if invalid."""
        return (await self.host.workflows.save(definition)).to_dict()

    async def run_workflow(self, definition: dict[str, Any], data: Any = None) -> dict[str, Any]:
        """Save ``definition`` and run it by hand with ``data`` as input; returns the stored
        execution (``status``, ``jobs``, ``reply``, ...)."""
        result = await self.apply(definition)
        return await self.host.executions.run_manual(result["key"], data if data is not None else {})

    async def webhook(self, key: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        """POST to the workflow's webhook URL."""
        return await self.client.post(f"/api/webhooks/{key}", json=json, **kwargs)

    async def wait_for_execution(self, execution_id: int, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until a (background) execution has finished; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            execution = await self.host.executions.get(execution_id)
            if execution["status"] not in ("queued", "running"):
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} still {execution['status']} after {timeout} s")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def serve_in_process(app: Any, base_url: str = "http://hookline.test") -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app`` through the ASGI lifespan protocol (its start-up listeners run once), yield
    an HTTP client bound to it, and shut it down afterwards."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        lifespan.cancel()
        raise RuntimeError(f"the app failed to start: {started.get('message')}")
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await lifespan


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def hookline_plugins() -> list[object]:
    """Extra plugin objects (classes or modules with ``@hookimpl`` functions) to register."""
    return []


@pytest.fixture
def hookline_entry_points() -> bool:
    """Whether installed plugins (entry points) are loaded."""
    return True


@pytest.fixture
def hookline_db_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'hookline.db'}"


@pytest.fixture
def hookline_settings(hookline_db_url: str) -> Settings:
    return Settings(db_url=hookline_db_url, api_token=TEST_TOKEN, shutdown_grace=5.0)


@pytest_asyncio.fixture
async def hookline(
    hookline_settings: Settings, hookline_plugins: list[object], hookline_entry_points: bool
) -> AsyncIterator[HooklineTestApp]:
    # Imported here, not at the top: every pytest run of an environment with hookline[test]
    # imports this module, and a project that never asks for this fixture should not pay for
    # loading Sanic and tortoise at its start.
    from hookline.host import Host
    from hookline.plugins import make_plugin_manager
    from hookline.web.app import create_app

    pm = make_plugin_manager(
        disabled=hookline_settings.disable_plugins, entry_points=hookline_entry_points, extra_plugins=hookline_plugins
    )
    host = Host(hookline_settings, pm=pm)
    await host.migrate()
    app = create_app(host=host)
    # Sanic's TouchUp rewrites shared classes on an app's first start; a second app in the same
    # process then fails to start. It is only an optimisation.
    app.config.TOUCHUP = False
    app.config.MOTD = False
    async with serve_in_process(app) as client:
        yield HooklineTestApp(host, app, client)


class HooklineServer:
    """A ``hookline serve`` subprocess on 127.0.0.1 and a free port; stopped by PID."""

    def __init__(
        self,
        db_url: str,
        *,
        workflows: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        args: Iterable[str] = (),
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        command = [sys.executable, "-m", "hookline", "serve", "--port", str(self.port), "--db", db_url, *args]
        if workflows is not None:
            command += ["--workflows", str(workflows)]
        self.command = command
        self.env = {**os.environ, "HOOKLINE_API_TOKEN": TEST_TOKEN, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def start(self, log_path: Path, timeout: float = 30.0) -> HooklineServer:
        self.log_path = log_path
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hookline serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hookline serve did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT to the server's PID (a graceful stop), SIGKILL if it has not exited in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TEST_TOKEN}"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hookline_server(hookline_db_url: str, tmp_path: Path) -> Iterator[HooklineServer]:
    """A real server on the test database (no workflows: apply them through ``server.base_url``)."""
    server = HooklineServer(hookline_db_url, cwd=tmp_path).start(tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


__all__ = [
    "TEST_TOKEN",
    "HooklineServer",
    "HooklineTestApp",
    "free_port",
    "hookline",
    "hookline_db_url",
    "hookline_entry_points",
    "hookline_plugins",
    "hookline_server",
    "hookline_settings",
    "serve_in_process",
]
