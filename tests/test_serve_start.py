"""What ``hookline serve`` checks and says when it starts, and the URLs Hookline prints: the
address a server listens on is checked before any work, and printed with the next step; a
workflow's endpoints are full URLs only where the address is known."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, sync_workflow
from hookline.testing import HooklineServer, HooklineTestApp


def serve(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HOOKLINE_")} | (extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "hookline", "serve", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.server
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_one_line_before_any_work(tmp_path: Path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--port", str(port), "--workers", workers, "--workflows", str(EXAMPLES), cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is already in use: stop what uses it or choose another with --port"
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing migrated, nothing applied


@pytest.mark.server
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_plugin_refusing_its_settings_is_one_line_before_serving(tmp_path: Path, workers: str) -> None:
    with socket.socket() as probe:  # a port free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = serve(
        "--port", str(port), "--workers", workers, cwd=tmp_path, extra_env={"HOOKLINE_CONSOLE_SESSION_HOURS": "0"}
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: HOOKLINE_CONSOLE_SESSION_HOURS must be a number of hours above 0, at most 720, not '0'"
    )
    assert "Hookline serving on" not in result.stderr


@pytest.mark.server
def test_an_address_not_of_this_machine_is_one_line(tmp_path: Path) -> None:
    result = serve("--host", "192.0.2.1", "--port", "8000", cwd=tmp_path)  # TEST-NET-1: nobody's address
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "Error: cannot listen on 192.0.2.1 port 8000: 192.0.2.1 is not an address of this machine; "
        "choose another with --host (127.0.0.1: this machine only, 0.0.0.0: every interface)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.server
def test_serve_says_where_it_listens_and_prints_real_webhook_urls(tmp_path: Path) -> None:
    db = tmp_path / "hookline.db"
    server = HooklineServer(f"sqlite://{db}", workflows=EXAMPLES, cwd=tmp_path).start(tmp_path / "server.log")
    try:
        log = server.log()
        time.sleep(2.5)  # a signal just after start-up is lost by Sanic (sanic#2997): stop later
    finally:
        assert server.stop() == 0
    assert f"Hookline serving on http://127.0.0.1:{server.port}, database sqlite://{db}\n" in log
    assert f"workflow order-paid v1: webhook http://127.0.0.1:{server.port}/api/webhooks/order-paid" in log
    assert "no workflows yet" not in log


@pytest.mark.server
def test_serve_without_workflows_says_what_to_do_next(tmp_path: Path) -> None:
    server = HooklineServer(
        "sqlite://hookline.db", cwd=tmp_path, env={"HOOKLINE_PUBLIC_URL": "https://hooks.example.com"}
    ).start(tmp_path / "server.log")
    try:
        log = server.log()
        time.sleep(2.5)  # a signal just after start-up is lost by Sanic (sanic#2997): stop later
    finally:
        assert server.stop() == 0
    assert (
        f"Hookline serving on http://127.0.0.1:{server.port}, public URL https://hooks.example.com, "
        f"database sqlite://hookline.db ({tmp_path / 'hookline.db'})\n"
    ) in log
    assert "no workflows yet: hookline workflows apply FILE, or POST /api/workflows" in log


async def test_the_api_gives_endpoints_on_the_address_it_was_called_at(hookline: HooklineTestApp) -> None:
    created = await hookline.api("POST", "/api/workflows", json=sync_workflow())
    assert created.json()["endpoints"]["webhook"] == "http://hookline.test/api/webhooks/pay"
    shown = await hookline.api("GET", "/api/workflows/pay")
    assert shown.json()["endpoints"]["webhook_nocobase"] == "http://hookline.test/api/webhook:trigger/pay"
