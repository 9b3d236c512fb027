"""A stranger's package: one pyproject.toml with an entry point and one module adding a node
type. After ``pip install`` it is listed, usable in a workflow, and removed from use by
HOOKLINE_DISABLE_PLUGINS. Everything runs as the real ``hookline`` command in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import install_package

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "hookline-shout"
version = "1.2.3"
dependencies = ["hookline"]

[project.entry-points.hookline]
shout = "hookline_shout"

[tool.hatch.build.targets.wheel]
packages = ["hookline_shout"]
"""

MODULE = '''\
from hookline import NodeResult, NodeType, hookimpl


class ShoutNode(NodeType):
    name = "shout"
    title = "Upper-case a text"
    config_schema = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string"}},
        "additionalProperties": False,
    }

    async def execute(self, run):
        return NodeResult(result={"text": run.config["text"].upper() + "!"})


@hookimpl
def register_node_types(register):
    register(ShoutNode)
'''

WORKFLOW = """\
key: greet
sync: true
trigger: {type: webhook}
nodes:
  - key: loud
    type: shout
    config: {text: "hello {{ $context.body.name }}"}
  - key: reply
    type: response
    config: {body: "{{ $nodes.loud.text }}"}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built and pip-installed into a directory of its own, kept off this test
    process's path so that it reaches only the subprocesses given it."""
    return install_package(
        tmp_path_factory.mktemp("shout"), "hookline-shout",
        {"pyproject.toml": PYPROJECT, "hookline_shout/__init__.py": MODULE},
    )


def hookline(site: Path, cwd: Path, *args: str, disable: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "HOOKLINE_DB_URL": f"sqlite://{cwd / 'h.db'}"}
    env.pop("HOOKLINE_DISABLE_PLUGINS", None)
    if disable is not None:
        env["HOOKLINE_DISABLE_PLUGINS"] = disable
    return subprocess.run(
        [sys.executable, "-m", "hookline", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_installed_package_is_listed_usable_and_can_be_disabled(site: Path, tmp_path: Path) -> None:
    listed = hookline(site, tmp_path, "plugins")
    assert listed.returncode == 0, listed.stderr
    [shout] = [p for p in json.loads(listed.stdout) if p["name"] == "shout"]
    assert shout == {
        "name": "shout",
        "distribution": "hookline-shout",
        "version": "1.2.3",
        "default": False,
        "hooks": ["register_node_types"],
        "trigger_types": [],
        "node_types": ["shout"],
        "titles": {"shout": "Upper-case a text"},
    }

    (tmp_path / "greet.yaml").write_text(WORKFLOW)
    (tmp_path / "input.json").write_text(json.dumps({"body": {"name": "ada"}}))
    assert hookline(site, tmp_path, "migrate").returncode == 0
    applied = hookline(site, tmp_path, "workflows", "apply", "greet.yaml")
    assert applied.returncode == 0, applied.stderr
    ran = hookline(site, tmp_path, "run", "greet", "--input", "input.json")
    assert ran.returncode == 0, ran.stderr
    execution = json.loads(ran.stdout)
    assert execution["jobs"][0]["result"] == {"text": "HELLO ADA!"}
    assert execution["reply"]["body"] == "HELLO ADA!"

    disabled = hookline(site, tmp_path, "plugins", disable="shout")
    assert "shout" not in [p["name"] for p in json.loads(disabled.stdout)]
    everything = json.loads(hookline(site, tmp_path, "plugins", "--all", disable="shout").stdout)
    [off] = [p for p in everything if p["name"] == "shout"]
    assert (off["distribution"], off["version"], off["disabled"]) == ("hookline-shout", "1.2.3", True)
    # Installed but disabled: said so, and by what, not "unknown node type".
    why = (
        "node type 'shout' is not available here: plugin 'shout' (hookline-shout 1.2.3), which may provide it, "
        "is installed but disabled by HOOKLINE_DISABLE_PLUGINS (available node types: condition, http-request, response, switch)"
    )
    refused = hookline(site, tmp_path, "workflows", "apply", "greet.yaml", disable="shout")
    assert refused.returncode == 1
    assert why in refused.stderr and "unknown node type" not in refused.stderr
    # the stored workflow cannot run while its node type is missing: a clear error, no traceback
    stuck = hookline(site, tmp_path, "run", "greet", "--input", "input.json", disable="shout")
    assert stuck.returncode == 1
    assert why in stuck.stderr and "Traceback" not in stuck.stderr
    listed = json.loads(hookline(site, tmp_path, "workflows", "list", disable="shout").stdout)["items"]
    assert [(w["key"], w["runnable"], w["problem"]) for w in listed] == [("greet", False, f"nodes[0].type: {why}")]


def test_a_plugin_that_fails_to_import_is_named_in_one_line(tmp_path: Path) -> None:
    pyproject = PYPROJECT.replace("hookline-shout", "hookline-broken").replace("hookline_shout", "hookline_broken")
    pyproject = pyproject.replace('shout = "hookline_broken"', 'broken = "hookline_broken"')
    site = install_package(
        tmp_path, "hookline-broken", {"pyproject.toml": pyproject, "hookline_broken/__init__.py": "import no_such_module\n"}
    )
    result = hookline(site, tmp_path, "plugins")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: plugin 'broken' (hookline_broken, from hookline-broken) could not be loaded: "
        "ModuleNotFoundError: No module named 'no_such_module'"
    ]
    assert hookline(site, tmp_path, "plugins", disable="broken").returncode == 0


def test_two_distributions_claiming_one_plugin_name_are_refused(site: Path, tmp_path: Path) -> None:
    pyproject = PYPROJECT.replace("hookline-shout", "hookline-shout-fork").replace(
        'packages = ["hookline_shout"]', 'packages = ["hookline_shout_fork"]'
    ).replace('shout = "hookline_shout"', 'shout = "hookline_shout_fork"')
    fork = install_package(tmp_path, "fork", {"pyproject.toml": pyproject, "hookline_shout_fork/__init__.py": MODULE})
    env_path = f"{site}{os.pathsep}{fork}"
    result = hookline(Path(env_path), tmp_path, "plugins")
    assert result.returncode == 2
    assert "two installed distributions declare the hookline plugin 'shout'" in result.stderr
    assert "hookline-shout" in result.stderr and "hookline-shout-fork" in result.stderr
