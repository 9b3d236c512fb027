"""The hookline wheel as a stranger installs it: without extras, beside an unrelated project.

Installing ``hookline`` registers its pytest plugin (entry point ``pytest11``) whether or not the
``test`` extra is installed, so the plugin must load in any environment: an unrelated project's
pytest run goes on as before, and a plugin author who forgot the extra is told what to install.

The wheel is built from host/ (offline: hatchling is in the development environment) and
installed with pytest into one fresh virtualenv for the session; that install needs the package
index for Hookline's base dependencies. Without the index these tests are skipped, unless
``HOOKLINE_REQUIRE_INDEX=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parent.parent / "host"
REQUIRE_INDEX = os.environ.get("HOOKLINE_REQUIRE_INDEX") == "1"


def index_unreachable() -> str | None:
    """Why pip cannot reach the package index from here, or None. A quick look, not an install."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/"
    context = ssl.create_default_context(cafile=os.environ.get("PIP_CERT"))
    try:
        with urllib.request.urlopen(f"{index}pytest/", timeout=5, context=context):
            return None
    except (OSError, ValueError) as exc:
        return f"the package index {index} cannot be reached ({exc}); installing the hookline wheel needs it"


def clean_env() -> dict[str, str]:
    """This environment without what would let the outer test run leak into the fresh one."""
    leaking = ("PYTHON", "PYTEST", "VIRTUAL_ENV")
    return {name: value for name, value in os.environ.items() if not name.startswith(leaking)}


def run(command: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} did not finish within {timeout} s", pytrace=False)


def run_ok(command: list[str], *, timeout: float) -> None:
    done = run(command, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}", pytrace=False
        )


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh virtualenv holding the hookline wheel and pytest, no extras."""
    problem = index_unreachable()
    if problem is not None:
        if REQUIRE_INDEX:
            pytest.fail(f"{problem} (HOOKLINE_REQUIRE_INDEX=1 makes this a failure)", pytrace=False)
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("bare-install")
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels)]
    run_ok([*build, str(HOST)], timeout=120)
    (wheel,) = wheels.glob("hookline-*.whl")
    # A venv of the base interpreter: nothing of the development environment is visible in it.
    # It needs no pip of its own (ensurepip costs seconds on every run): this pip installs into it.
    run_ok([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], timeout=120)
    python = root / "venv" / "bin" / "python"
    # --no-compile: nothing here runs twice, and compiling every dependency is much of an install's time.
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
    run_ok([*install, str(wheel), "pytest"], timeout=600)
    return python


def run_pytest(python: Path, project: Path) -> subprocess.CompletedProcess[str]:
    (project / "pytest.ini").write_text("[pytest]\n")  # the project's own root: no configuration above it applies
    return run([str(python), "-m", "pytest", "-p", "no:cacheprovider"], cwd=project, timeout=120)


def test_an_unrelated_project_runs_its_tests_beside_hookline_without_extras(bare_python: Path, tmp_path: Path) -> None:
    (tmp_path / "test_arithmetic.py").write_text(
        "import sys\n\n\n"
        "def test_sum():\n"
        "    assert 1 + 1 == 2\n\n\n"
        "def test_hookline_plugin_loads_no_server_modules():\n"
        "    # What a stranger's test run pays for having hookline installed: not Sanic nor tortoise.\n"
        "    assert [name for name in ('sanic', 'tortoise') if name in sys.modules] == []\n"
    )
    done = run_pytest(bare_python, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "2 passed" in output
    assert "Error while loading plugin" not in output
    # The hookline plugin was loaded (so this run did test it), and did nothing to the run.
    assert re.search(r"^plugins: .*\bhookline-", done.stdout, re.MULTILINE), output


def test_the_hookline_fixture_without_the_test_extra_says_what_to_install(bare_python: Path, tmp_path: Path) -> None:
    (tmp_path / "test_my_node.py").write_text(
        "async def test_my_node(hookline):\n"
        "    await hookline.run_workflow({'trigger': {'type': 'webhook'}})\n"
    )
    done = run_pytest(bare_python, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 error" in output
    assert (
        "the 'hookline' fixture needs httpx, which is not installed in this environment: "
        "Hookline's test fixtures come with its test extra, pip install 'hookline[test]'"
    ) in output
    assert "Traceback" not in output
