"""``./dev``, the quick start's script: ``./dev hookline ARGS...`` runs the checkout's ``hookline`` command.

The script runs from a copy in a temporary folder whose ``.venv`` is already set up (its stamp newer than
every ``pyproject.toml``, the real interpreter and command linked in), so these tests never install anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

HOOKLINE = Path(sys.executable).parent / "hookline"


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    """A copy of ./dev beside a .venv that needs no setup."""
    shutil.copy2(REPO / "dev", tmp_path / "dev")
    for pyproject in ["pyproject.toml", "host/pyproject.toml", "plugins/webhook_trigger/pyproject.toml"]:
        (tmp_path / pyproject).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / pyproject).write_text("")
        os.utime(tmp_path / pyproject, (1_000_000_000, 1_000_000_000))  # older than the stamp
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "hookline").symlink_to(HOOKLINE)
    (tmp_path / ".venv" / ".hookline-installed").touch()
    return tmp_path / "dev"


def run_dev(dev: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "HOOKLINE_DISABLE_PLUGINS"}
    return subprocess.run([str(dev), *args], cwd=dev.parent, env=env, capture_output=True, text=True, timeout=120)


def test_dev_hookline_runs_the_venvs_command_with_the_arguments_given(dev: Path) -> None:
    helped = run_dev(dev, "hookline", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: hookline [OPTIONS] COMMAND [ARGS]...")
    assert "Installing" not in helped.stderr  # the fresh .venv was used as it is

    listed = run_dev(dev, "hookline", "plugins")
    assert listed.returncode == 0, listed.stderr
    assert {"condition", "response", "webhook"} <= {plugin["name"] for plugin in json.loads(listed.stdout)}


def test_an_unknown_command_shows_the_usage_with_hookline(dev: Path) -> None:
    result = run_dev(dev, "hooklin")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "usage: ./dev serve [options] | ./dev test [pytest options] | ./dev hookline [ARGS...]"
    )
