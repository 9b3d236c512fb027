"""The public API for plugins (docs/plugin-guide.md, "The public API").

Its modules are listed here and in the guide; its names are each module's ``__all__``, and the guide
lists them name for name. Our four plugins, the example plugin, the scaffold's templates and the
guide's own code import nothing else from ``hookline``: every import is read with ``ast`` and one
that reaches past the list fails the test, naming the file, the line and the import.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pytest

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugin-guide.md"

#: The public modules, in the order the guide shows them.
PUBLIC_MODULES = (
    "hookline",
    "hookline.errors",
    "hookline.templates",
    "hookline.web",
    "hookline.ui",
    "hookline.cli",
    "hookline.database",
    "hookline.testing",
)

#: Paths the guide showed (or our plugins used) before there was a public API, and the public name
#: of the same object. Nothing moved: they keep working, without a warning, since they are where
#: the implementation lives.
FORMER_PATHS = {
    "hookline.web.headers.RESPONSE_HEADERS_SCHEMA": "hookline.web.RESPONSE_HEADERS_SCHEMA",
    "hookline.web.headers.HEADER_NAME_PATTERN": "hookline.web.HEADER_NAME_PATTERN",
    "hookline.web.headers.header_value": "hookline.web.header_value",
    "hookline.web.headers.response_header_problems": "hookline.web.response_header_problems",
    "hookline.web.auth.require_token": "hookline.web.require_token",
    "hookline.web.limits.loads": "hookline.web.json_loads",
    "hookline.cli.common.make_host": "hookline.cli.make_host",
    "hookline.registry.ModelApp": "hookline.database.ModelApp",
    "hookline.storage.db.HOST_APP": "hookline.database.HOST_APP",
    "hookline.storage.db.tortoise_config": "hookline.database.tortoise_config",
    "hookline.definitions.NodeDefinition": "hookline.NodeDefinition",
    "hookline.definitions.WorkflowDefinition": "hookline.WorkflowDefinition",
    "hookline.executions.Dedup": "hookline.Dedup",
    "hookline.executions.Duplicate": "hookline.Duplicate",
    "hookline.executions.ExecutionRecord": "hookline.ExecutionRecord",
    "hookline.executions.RunHandle": "hookline.RunHandle",
    "hookline.executions.DEFAULT_DEDUP_WINDOW": "hookline.DEFAULT_DEDUP_WINDOW",
    "hookline.settings.Settings": "hookline.Settings",
}


def public_names() -> dict[str, frozenset[str]]:
    return {module: frozenset(import_module(module).__all__) for module in PUBLIC_MODULES}


# --- the guide's list ----------------------------------------------------------------------------

_MODULE_HEADING = re.compile(r"^### `(hookline[\w.]*)`$")
_NAME_ROW = re.compile(r"^\| `(\w+)` \|")


def guide_list() -> dict[str, list[str]]:
    """``{module: [names]}`` from the tables of the guide's section "The public API"."""
    section = GUIDE.read_text().split("\n## The public API\n", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, list[str]] = {}
    module = None
    for line in section.splitlines():
        if line.startswith("### "):
            heading = _MODULE_HEADING.match(line)
            module = heading.group(1) if heading else None
            if module is not None:
                assert module not in listed, f"the guide lists module {module} twice"
                listed[module] = []
        elif module is not None and (row := _NAME_ROW.match(line)):
            listed[module].append(row.group(1))
    return listed


def test_the_guide_lists_the_public_modules() -> None:
    assert list(guide_list()) == list(PUBLIC_MODULES)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_the_guide_lists_each_name_of_a_public_module_and_each_imports(module: str) -> None:
    listed = guide_list()[module]
    exported = import_module(module).__all__
    assert len(set(exported)) == len(exported), f"{module}.__all__ repeats a name"
    assert len(set(listed)) == len(listed), f"the guide lists a name of {module} twice"
    assert sorted(listed) == sorted(exported), (
        f"docs/plugin-guide.md lists {module} as {sorted(listed)}, its __all__ is {sorted(exported)}"
    )
    for name in listed:
        assert getattr(import_module(module), name) is not None, f"{module}.{name}"


def test_importing_the_public_modules_loads_neither_sanic_nor_tortoise() -> None:
    """Names that pull in the server or the storage layer are imported when first used, so a plugin
    module that only needs ``hookimpl`` (or a node type checking its headers) stays cheap."""
    cheap = ["hookline", "hookline.errors", "hookline.templates", "hookline.web", "hookline.ui", "hookline.cli"]
    heavy = "[m for m in ('sanic', 'tortoise') if m in sys.modules]"
    code = f"import sys\nfor m in {cheap!r}: __import__(m)\nprint({heavy})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("former", sorted(FORMER_PATHS))
def test_paths_the_guide_used_to_show_give_the_same_objects(former: str) -> None:
    def resolve(path: str) -> object:
        module, _, name = path.rpartition(".")
        return getattr(import_module(module), name)

    assert resolve(former) is resolve(FORMER_PATHS[former])


def test_the_top_level_execution_status_is_the_one_of_hookline_status() -> None:
    import hookline
    from hookline.status import ExecutionStatus, JobStatus

    assert hookline.ExecutionStatus is ExecutionStatus
    assert hookline.JobStatus is JobStatus


# --- what plugins import ---------------------------------------------------------------------


@dataclass(frozen=True)
class Offence:
    line: int
    code: str  # the import as written, or the attribute reached
    why: str


def _is_hookline(module: str) -> bool:
    return module == "hookline" or module.startswith("hookline.")


def _reached(public: Mapping[str, frozenset[str]], module: str, attributes: Iterable[str]) -> str | None:
    """Why ``module.attr1.attr2...`` reaches past the public API, or None. Walks through public
    submodules; stops at the first public name (what lies beyond is that object's business)."""
    for attribute in attributes:
        if f"{module}.{attribute}" in public:
            module = f"{module}.{attribute}"
        elif attribute in public[module]:
            return None
        else:
            return f"{attribute!r} is not in {module}.__all__"
    return None


def private_imports(source: str, public: Mapping[str, frozenset[str]]) -> list[Offence]:
    """The imports (and attribute uses of imported modules) in ``source`` that reach past ``public``."""
    tree = ast.parse(source)
    offences: list[Offence] = []
    bound: dict[str, str] = {}  # a local name -> the public module it stands for

    def offence(node: ast.stmt | ast.expr, why: str) -> None:
        offences.append(Offence(node.lineno, ast.get_source_segment(source, node) or "", why))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _is_hookline(alias.name):
                    continue
                if alias.name not in public:
                    offence(node, f"{alias.name} is not a public module")
                elif alias.asname:
                    bound[alias.asname] = alias.name
                else:  # "import hookline.web" binds "hookline"
                    bound["hookline"] = "hookline"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _is_hookline(node.module):
            if node.module not in public:
                offence(node, f"{node.module} is not a public module")
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in public:
                    bound[alias.asname or alias.name] = submodule
                elif alias.name != "*" and alias.name not in public[node.module]:
                    offence(node, f"{alias.name!r} is not in {node.module}.__all__")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            target = node.args[0].value
            if function in ("import_module", "__import__") and isinstance(target, str) and _is_hookline(target):
                if target not in public:
                    offence(node, f"{target} is not a public module")
    for node in ast.walk(tree):
        chain: list[str] = []
        base = node
        while isinstance(base, ast.Attribute):
            chain.insert(0, base.attr)
            base = base.value
        if chain and isinstance(base, ast.Name) and base.id in bound:
            why = _reached(public, bound[base.id], chain)
            if why:
                offence(node, why)
    # hookline.web.limits.loads repeats what hookline.web.limits says: keep the shortest form.
    kept: dict[tuple[int, str], Offence] = {}
    for found in sorted(offences, key=lambda o: (o.line, len(o.code))):
        kept.setdefault((found.line, found.why), found)
    return list(kept.values())


def offences_in(
    paths: Iterable[Path], public: Mapping[str, frozenset[str]], read: Callable[[Path], str] = Path.read_text
) -> list[str]:
    found = []
    for path in paths:
        for offence in private_imports(read(path), public):
            found.append(f"{path.relative_to(REPO)}:{offence.line}: {offence.code}  ({offence.why})")
    return found


def test_our_plugins_import_only_the_public_api() -> None:
    files = sorted(REPO.glob("plugins/*/src/**/*.py"))
    assert len(files) > 40, "the plugins' sources were not found"
    offences = offences_in(files, public_names())
    heading = "plugins import past the public API (docs/plugin-guide.md, 'The public API'):"
    assert offences == [], "\n".join([heading, *offences])


def test_the_example_plugin_and_the_scaffold_import_only_the_public_api() -> None:
    examples = sorted(REPO.glob("examples/plugins/**/*.py"))
    templates = sorted((REPO / "host" / "src" / "hookline" / "scaffold").glob("*.py.tmpl"))
    assert examples and templates

    def fill_in(path: Path) -> str:  # the scaffold's <<placeholders>> stand in names and strings
        return re.sub(r"<<\w+>>", "placeholder", path.read_text())

    offences = offences_in(examples, public_names()) + offences_in(templates, public_names(), read=fill_in)
    assert offences == [], "\n".join(offences)


def test_the_code_in_the_docs_imports_only_the_public_api() -> None:
    public = public_names()
    offences = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        text = page.read_text()
        for block in re.finditer(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
            first_line = text.count("\n", 0, block.start(1)) + 1
            for offence in private_imports(block.group(1), public):
                where = f"{page.relative_to(REPO)}:{first_line + offence.line - 1}"
                offences.append(f"{where}: {offence.code}  ({offence.why})")
    assert offences == [], "\n".join(offences)


def test_the_check_names_each_way_past_the_public_api() -> None:
    """The check can fail: every form of import that reaches an internal module is reported, with its line."""
    source = "\n".join(
        [
            "from hookline import NodeType, hookimpl",  # 1: public
            "from hookline.web import json_loads, require_token",  # 2: public
            "from hookline.web.limits import MAX_DEPTH",  # 3: an internal module
            "from hookline.web import limits",  # 4: a submodule that is not public
            "from hookline import executions",  # 5: the same, from the top
            "from hookline.errors import problems_text",  # 6: a public module's name not in __all__
            "import hookline.storage.db",  # 7: an internal module
            "import hookline.web as web",  # 8: public
            "web.limits.loads('1')",  # 9: reaching an internal module through a public one
            "import hookline",  # 10: public
            "hookline.executions.Dedup",  # 11: the same, from the top
            "hookline.Dedup",  # 12: public
            "from importlib import import_module",  # 13
            "import_module('hookline.keys')",  # 14: imported by name
            "from hookline_webhook.routes import WebhookRoutes",  # 15: another plugin, not hookline
            "from . import sibling",  # 16: the plugin's own
        ]
    )
    found = {(o.line, o.why) for o in private_imports(source, public_names())}
    assert found == {
        (3, "hookline.web.limits is not a public module"),
        (4, "'limits' is not in hookline.web.__all__"),
        (5, "'executions' is not in hookline.__all__"),
        (6, "'problems_text' is not in hookline.errors.__all__"),
        (7, "hookline.storage.db is not a public module"),
        (9, "'limits' is not in hookline.web.__all__"),
        (11, "'executions' is not in hookline.__all__"),
        (14, "hookline.keys is not a public module"),
    }
