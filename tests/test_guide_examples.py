"""The plugin-author guide's examples are run, so that they cannot rot.

docs/plugin-guide.md marks each file of an example package with its path on the block's first line
(``# hookline-hello/src/hookline_hello/plugin.py``). Here those blocks are put back together into packages,
pip-installed like a stranger's package into a directory of their own, and their tests and workflows run
in subprocesses. Blocks without a path run in this process; every Python block at least compiles. The
complete example, ``hookline-set``, must be exactly the files of ``examples/plugins/hookline-set``, whose
own tests and demo workflow run too.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hookline import NodeError
from conftest import pip_install
from test_scaffold import plugin_named, run_hookline, run_package_tests

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugin-guide.md"
EXAMPLE_SET = REPO / "examples" / "plugins" / "hookline-set"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_PATH_COMMENT = re.compile(r"^# ([\w./-]+\.(?:py|toml|yaml))$")
#: Files the guide says are empty instead of showing them.
EMPTY_FILES = {
    "hookline-hello": ["src/hookline_hello/__init__.py"],
    "hookline-examples": [
        "src/hookline_examples/__init__.py",
        "src/hookline_examples/greetings/__init__.py",
        "src/hookline_examples/notes/__init__.py",
        "src/hookline_examples/notes/migrations/__init__.py",
    ],
}


@dataclass(frozen=True)
class Block:
    language: str
    text: str  # without the path comment
    path: str | None  # the path comment of the first line, if any
    line: int  # in the guide, for messages

    @property
    def package(self) -> str | None:
        """The example package a path-marked block belongs to (``hookline-hello``), if any."""
        if self.path and self.path.startswith("hookline-") and "/" in self.path:
            return self.path.split("/", 1)[0]
        return None


def guide_blocks() -> list[Block]:
    guide = GUIDE.read_text()
    blocks = []
    for match in _BLOCK.finditer(guide):
        language, text = match.groups()
        first, _, rest = text.partition("\n")
        marked = _PATH_COMMENT.match(first)
        blocks.append(
            Block(language, rest if marked else text, marked.group(1) if marked else None, guide.count("\n", 0, match.start()) + 1)
        )
    return blocks


BLOCKS = guide_blocks()


def files_of(package: str) -> dict[str, str]:
    files = {b.path.split("/", 1)[1]: b.text for b in BLOCKS if b.package == package}
    assert files, f"the guide shows no file of {package}"
    return files


def assemble(root: Path, package: str) -> Path:
    folder = root / package
    files = {**{path: "" for path in EMPTY_FILES.get(package, [])}, **files_of(package)}
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def workflow_file(name: str) -> str:
    [block] = [b for b in BLOCKS if b.path == name]
    return block.text


# --- every block ----------------------------------------------------------------------------


def test_the_guide_has_the_example_packages() -> None:
    assert {b.package for b in BLOCKS} >= {"hookline-hello", "hookline-examples", "hookline-set"}
    for package, empty in EMPTY_FILES.items():
        for path in empty:
            assert path.rsplit("/", 2)[-2] in GUIDE.read_text(), f"the guide does not say {package}/{path} is empty"


def test_the_guide_starts_by_setting_up_an_environment_with_the_host_and_every_plugin() -> None:
    """Before its contents: the clone's .venv made by ./dev, or one pip command installing the clone's
    host and each of its plugin folders (Hookline is not on the package index)."""
    contents = GUIDE.read_text().split("\nContents:\n", 1)[0].count("\n") + 1
    setup = [b.text for b in BLOCKS if b.language == "sh" and b.line < contents]
    assert len(setup) == 2, "the guide's environment set-up: two sh blocks before its contents"
    assert "./dev hookline" in setup[0] and "source .venv/bin/activate" in setup[0]
    [pip] = [line for line in setup[1].splitlines() if line.startswith("pip install ")]
    arguments = pip.split()[2:]
    assert arguments[::2] == ["-e"] * (len(arguments) // 2)
    installed = {re.sub(r"^hookline/|\[.*\]$", "", path.strip('"')) for path in arguments[1::2]}
    plugins = {str(folder.parent.relative_to(REPO)) for folder in (REPO / "plugins").glob("*/pyproject.toml")}
    assert installed == {"host"} | plugins
    assert '"hookline/host[test]"' in pip  # the `hookline` fixture the guide's tests use


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "python"], ids=lambda b: f"line{b.line}")
def test_every_python_block_compiles(block: Block) -> None:
    compile(block.text, f"{GUIDE.name}:{block.line}", "exec")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language in ("toml", "yaml")], ids=lambda b: f"line{b.line}")
def test_every_toml_and_yaml_block_parses(block: Block) -> None:
    if block.language == "toml":
        tomllib.loads(block.text)
    else:
        assert yaml.safe_load(block.text) is not None


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "python" and b.path is None], ids=lambda b: f"line{b.line}")
def test_every_standalone_python_block_runs(block: Block) -> None:
    namespace: dict[str, object] = {}
    exec(compile(block.text, f"{GUIDE.name}:{block.line}", "exec"), namespace)
    if "within" in namespace:  # the timeout helper of the node contract: a slow call fails the node
        with pytest.raises(NodeError, match="did not answer within 0.01 s"):
            asyncio.run(namespace["within"](0.01, asyncio.sleep(1)))  # type: ignore[operator]


def test_the_testing_section_runs_in_strict_mode(tmp_path: Path) -> None:
    """``tests/test_strict.py`` with the ``conftest.py`` that picks plugins, in pytest-asyncio's strict mode."""
    for path in ("tests/test_strict.py", "conftest.py"):
        [block] = [b for b in BLOCKS if b.path == path]
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(block.text)
    result = run_package_tests(tmp_path, tmp_path, "-o", "asyncio_mode=strict", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


# --- the quick start: hookline-hello --------------------------------------------------------


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("guide-hello")
    package = assemble(root, "hookline-hello")
    return package, pip_install(package, root / "site")


def test_quick_start_tests_pass(hello: tuple[Path, Path]) -> None:
    package, site = hello
    result = run_package_tests(package, site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_quick_start_plugin_is_listed_and_its_workflow_runs(hello: tuple[Path, Path], tmp_path: Path) -> None:
    _, site = hello
    assert plugin_named(run_hookline(site, tmp_path, "plugins"), "hello") == {
        "name": "hello",
        "distribution": "hookline-hello",
        "version": "0.1.0",
        "default": False,
        "hooks": ["register_node_types"],
        "trigger_types": [],
        "node_types": ["hello"],
        "titles": {"hello": "Hello: greet someone"},
    }
    (tmp_path / "hello.yaml").write_text(workflow_file("hello.yaml"))
    assert run_hookline(site, tmp_path, "migrate").returncode == 0
    assert run_hookline(site, tmp_path, "workflows", "apply", "hello.yaml").returncode == 0
    ran = run_hookline(site, tmp_path, "run", "hello", "--input", "-", stdin='{"body": {"name": "Ada"}}')
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["reply"]["body"] == {"greeting": "Hello, Ada!"}

    (tmp_path / "bad.yaml").write_text(workflow_file("hello.yaml").replace('config: {name: "{{ $context.body.name }}"}', "config: {}"))
    refused = run_hookline(site, tmp_path, "workflows", "apply", "bad.yaml")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: bad.yaml: nodes[0].config: 'name' is a required property"


# --- the hooks section: hookline-examples ---------------------------------------------------


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guide-examples")
    return pip_install(assemble(root, "hookline-examples"), root / "site")


def test_every_hook_example_loads_with_the_hooks_and_types_the_guide_names(examples: Path, tmp_path: Path) -> None:
    listing = run_hookline(examples, tmp_path, "plugins")
    contributed = {
        name: (plugin_named(listing, name)["hooks"], plugin_named(listing, name)["trigger_types"],
               plugin_named(listing, name)["node_types"])
        for name in ("manual", "log", "greetings", "french", "notes", "status", "heartbeat", "last_failure",
                     "failure_file", "token_webhook", "redirect", "console_pages", "log_results")
    }
    assert contributed == {
        "greetings": (["register_greetings", "register_hookspecs", "register_node_types"], [], ["greet-in"]),
        "french": (["register_greetings"], [], []),
        "manual": (["register_trigger_types"], ["manual"], []),
        "log": (["register_node_types"], [], ["log"]),
        "notes": (["register_models", "register_node_types"], [], ["note"]),
        "status": (["register_routes"], [], []),
        "heartbeat": (["shutdown", "startup"], [], []),
        "last_failure": (["register_commands"], [], []),
        "failure_file": (["execution_failed"], [], []),
        "token_webhook": (["register_routes", "register_trigger_types"], ["token-webhook"], []),
        "redirect": (["register_node_types"], [], ["redirect"]),
        "console_pages": (["register_console_pages"], [], []),
        "log_results": (["render_job_result"], [], []),
    }


def test_hook_example_workflows_apply_and_run(examples: Path, tmp_path: Path) -> None:
    for name in ("nightly-report.yaml", "greet-in.yaml", "token-demo.yaml", "go.yaml"):
        (tmp_path / name).write_text(workflow_file(name))
    assert run_hookline(examples, tmp_path, "migrate").returncode == 0
    applied = run_hookline(examples, tmp_path, "workflows", "apply", ".")
    assert applied.returncode == 0, applied.stderr

    report = run_hookline(examples, tmp_path, "run", "nightly-report", "--input", "-", stdin='{"total": 1200}')
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["context"] == {"input": {"total": 1200}}

    # a hook declared by one plugin (register_hookspecs) and implemented by another
    greeted = run_hookline(examples, tmp_path, "run", "greet-in", "--input", "-", stdin='{"name": "Ada"}')
    assert greeted.returncode == 0, greeted.stderr
    assert json.loads(greeted.stdout)["jobs"][0]["result"] == {"greeting": "Bonjour, Ada!"}

    token = run_hookline(examples, tmp_path, "run", "token-demo", "--input", "-", stdin='{"a": 1}')
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["reply"]["body"] == {"got": {"a": 1}}

    # the plugin command of register_commands
    none_failed = run_hookline(examples, tmp_path, "last-failure", "nightly-report")
    assert none_failed.returncode == 1
    assert "workflow 'nightly-report' has no failed execution" in none_failed.stderr


# --- the complete example: hookline-set, in examples/plugins/ -------------------------------


def test_the_complete_example_is_the_example_folder() -> None:
    for relative, text in files_of("hookline-set").items():
        assert (EXAMPLE_SET / relative).read_text() == text, f"docs/plugin-guide.md differs from {EXAMPLE_SET / relative}"


@pytest.fixture(scope="module")
def set_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install(EXAMPLE_SET, tmp_path_factory.mktemp("hookline-set") / "site")


def test_the_example_plugin_passes_its_own_tests(set_site: Path, tmp_path: Path) -> None:
    # A copy, so that running its tests leaves nothing behind in the repository.
    import shutil

    package = Path(shutil.copytree(EXAMPLE_SET, tmp_path / "hookline-set"))
    result = run_package_tests(package, set_site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout


def test_the_example_plugin_runs_its_demo_workflow(set_site: Path, tmp_path: Path) -> None:
    assert plugin_named(run_hookline(set_site, tmp_path, "plugins"), "set")["node_types"] == ["delay", "set"]
    assert run_hookline(set_site, tmp_path, "migrate").returncode == 0
    applied = run_hookline(set_site, tmp_path, "workflows", "apply", str(EXAMPLE_SET / "set-demo.yaml"))
    assert applied.returncode == 0, applied.stderr
    ran = run_hookline(set_site, tmp_path, "run", "set-demo", "--input", "-", stdin='{"body": {"id": "A-1", "amount": 150}}')
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["reply"]["body"] == {"order": "A-1", "label": "Order A-1 (150 EUR)", "waited": 0.5}


def test_an_optional_implementation_loads_without_the_plugin_declaring_its_hook(examples: Path, tmp_path: Path) -> None:
    listing = run_hookline(examples, tmp_path, "plugins", disable="greetings")
    assert plugin_named(listing, "french")["node_types"] == []
    assert "greetings" not in [p["name"] for p in json.loads(listing.stdout)]
