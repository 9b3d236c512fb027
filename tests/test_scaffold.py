"""``hookline plugin new``: the package it writes installs like a stranger's, its own tests pass, and a
workflow using its node runs through the real ``hookline`` command. Everything that uses the generated
package runs in subprocesses, with the package pip-installed into a directory of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomllib
import zipfile
from importlib.metadata import entry_points

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import pip_install
from click.testing import CliRunner

from hookline.cli.main import cli
from hookline.cli.scaffold import PluginNames, ScaffoldError, scaffold

HOST = Path(__file__).resolve().parent.parent / "host"

GREET_WORKFLOW = """\
key: greet
sync: true
trigger: {type: webhook}
nodes:
  - key: hi
    type: hi
    config: {name: "{{ $context.body.name }}", greeting: Hej}
  - key: reply
    type: response
    config: {body: "{{ $nodes.hi.greeting }}"}
"""


def run_hookline(
    site: Path, cwd: Path, *args: str, stdin: str | None = None, disable: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``hookline`` command with ``site`` on its path and a database in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(site), "HOOKLINE_DB_URL": f"sqlite://{cwd / 'h.db'}"}
    env.pop("HOOKLINE_DISABLE_PLUGINS", None)
    if disable is not None:
        env["HOOKLINE_DISABLE_PLUGINS"] = disable
    return subprocess.run(
        [sys.executable, "-m", "hookline", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


def run_package_tests(package: Path, site: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """pytest on a package's own tests, as its author runs them: from its folder, with its own
    pyproject.toml as configuration (never this repository's conftest.py), the installed copy on the path."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("HOOKLINE_DISABLE_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(package), *options],
        cwd=package, env=env, capture_output=True, text=True, timeout=300,
    )


def plugin_named(listing: subprocess.CompletedProcess[str], name: str) -> dict[str, object]:
    assert listing.returncode == 0, listing.stderr
    [plugin] = [p for p in json.loads(listing.stdout) if p["name"] == name]
    return plugin


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """``hookline plugin new hookline-greet --node-type hi`` run as a command, and the result installed."""
    root = tmp_path_factory.mktemp("scaffold")
    made = subprocess.run(
        [sys.executable, "-m", "hookline", "plugin", "new", "hookline-greet", "--node-type", "hi"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert made.returncode == 0, made.stderr
    package = root / "hookline-greet"
    return package, pip_install(package, root / "site"), made


def test_the_command_writes_a_package_and_says_what_to_do_next(generated: tuple[Path, Path, subprocess.CompletedProcess[str]]) -> None:
    package, _, made = generated
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/hookline_greet/__init__.py",
        "src/hookline_greet/nodes.py",
        "src/hookline_greet/plugin.py",
        "tests/test_hookline_greet.py",
    ]
    pyproject = (package / "pyproject.toml").read_text()
    assert '[project.entry-points.hookline]\ngreet = "hookline_greet.plugin"' in pyproject
    assert 'dependencies = ["hookline"]' in pyproject
    assert "created hookline-greet/pyproject.toml" in made.stdout
    assert 'pip install -e ".[test]"' in made.stdout and "pytest" in made.stdout and "hookline plugins" in made.stdout


def test_the_generated_tests_pass_against_the_installed_package(
    generated: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    package, site, _ = generated
    result = run_package_tests(package, site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    # pytest-asyncio's strict mode too: the generated module marks its tests
    strict = run_package_tests(package, site, "-o", "asyncio_mode=strict")
    assert strict.returncode == 0, strict.stdout + strict.stderr
    assert "4 passed" in strict.stdout


def test_the_installed_package_is_listed_and_its_node_runs_in_a_workflow(
    generated: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    _, site, _ = generated
    greet = plugin_named(run_hookline(site, tmp_path, "plugins"), "greet")
    assert greet["distribution"] == "hookline-greet"
    assert greet["hooks"] == ["register_node_types"]
    assert greet["node_types"] == ["hi"]
    assert greet["titles"] == {"hi": "Hi"}

    (tmp_path / "greet.yaml").write_text(GREET_WORKFLOW)
    assert run_hookline(site, tmp_path, "migrate").returncode == 0
    applied = run_hookline(site, tmp_path, "workflows", "apply", "greet.yaml")
    assert applied.returncode == 0, applied.stderr
    ran = run_hookline(site, tmp_path, "run", "greet", "--input", "-", stdin='{"body": {"name": "Ada"}}')
    assert ran.returncode == 0, ran.stderr
    execution = json.loads(ran.stdout)
    assert execution["jobs"][0]["result"] == {"greeting": "Hej, Ada!"}
    assert execution["reply"]["body"] == "Hej, Ada!"

    failed = run_hookline(site, tmp_path, "run", "greet", "--input", "-", stdin='{"body": {"name": 7}}')
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"]["message"] == "name must be a non-empty text, got 7"


def declared_distributions(package: Path) -> set[str]:
    """The distributions ``pip install -e ".[test]"`` installs for ``package``: its dependencies and test extra."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    return {canonicalize_name(Requirement(requirement).name) for requirement in requirements}


def test_the_package_says_what_it_is_and_declares_every_plugin_its_readme_uses(
    generated: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """Run as its author would after ``pip install -e ".[test]"``: the installed plugins its
    pyproject.toml does not name are disabled."""
    package, site, _ = generated
    summary = (site / "hookline_greet-0.1.0.dist-info" / "METADATA").read_text().split("\nSummary: ")[1].split("\n")[0]
    assert summary == "A Hookline plugin adding the node type hi"
    readme = (package / "README.md").read_text()
    assert readme.startswith("# hookline-greet\n\nA Hookline plugin adding the node type `hi`.")

    declared = declared_distributions(package)
    undeclared = sorted(
        entry_point.name
        for entry_point in entry_points(group="hookline")
        if entry_point.dist is not None and canonicalize_name(entry_point.dist.name) not in declared
    )
    assert "condition" in undeclared  # the check below runs without what is not declared
    [workflow] = [block.split("```", 1)[0] for block in readme.split("```yaml\n")[1:]]
    (tmp_path / "demo.yaml").write_text(workflow)
    assert run_hookline(site, tmp_path, "migrate").returncode == 0
    applied = run_hookline(site, tmp_path, "workflows", "apply", "demo.yaml", disable=",".join(undeclared))
    assert applied.returncode == 0, applied.stderr
    ran = run_hookline(site, tmp_path, "run", "hi-demo", "--input", "-", stdin='{"name": "Ada"}', disable=",".join(undeclared))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["reply"]["body"] == "Hello, Ada!"


@pytest.mark.parametrize(
    ("name", "node_type", "expected"),
    [
        ("greet", None, PluginNames("hookline-greet", "hookline_greet", "greet", "greet", "GreetNode")),
        ("hookline-greet", None, PluginNames("hookline-greet", "hookline_greet", "greet", "greet", "GreetNode")),
        ("hookline_order_tools", "sum-items", PluginNames(
            "hookline-order-tools", "hookline_order_tools", "order_tools", "sum-items", "SumItemsNode")),
    ],
)
def test_names_are_derived_from_the_name_given(name: str, node_type: str | None, expected: PluginNames) -> None:
    assert PluginNames.derive(name, node_type) == expected


@pytest.mark.parametrize("name", ["Greet", "hookline", "hookline-", "9lives", "greet me", "a--b", "../x"])
def test_an_invalid_name_is_refused_in_one_line_with_exit_code_2(name: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin", "new", name, "--directory", str(tmp_path / "out")])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: invalid plugin name")
    assert not (tmp_path / "out").exists()


def test_an_invalid_node_type_name_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin", "new", "greet", "--node-type", "Hi There", "-d", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: invalid node type name 'Hi There': use lower-case letters, digits and single '-' or '_' "
        "between words, starting with a letter (e.g. 'greet')"
    )


def test_a_folder_that_is_not_empty_is_refused_and_left_alone(tmp_path: Path) -> None:
    occupied = tmp_path / "hookline-greet"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["plugin", "new", "greet", "--directory", str(occupied)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {occupied} already exists and is not an empty directory; choose another --directory"
    )
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    with pytest.raises(ScaffoldError):
        scaffold("greet", occupied)


def test_an_empty_folder_is_used_and_the_default_folder_is_named_after_the_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    written = scaffold("greet", tmp_path / "empty")
    assert tmp_path / "empty" / "src" / "hookline_greet" / "nodes.py" in written
    monkeypatch.chdir(tmp_path)
    assert Path("hookline-set/pyproject.toml") in scaffold("set")


def test_the_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    """The command works from a regular (non-editable) install: the templates are package data."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(HOST)],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("hookline-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("hookline/scaffold/")}
    templates = {f"hookline/scaffold/{p.name}" for p in (HOST / "src" / "hookline" / "scaffold").iterdir()}
    assert shipped == templates and len(templates) == 6
