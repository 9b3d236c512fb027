"""``hookline plugin new NAME``: a ready-to-install plugin package with a node type and a passing test.

The files are rendered from the templates in ``hookline/scaffold/`` (package data). :func:`scaffold`
does the work; the command is a thin layer over it, and the tests call both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from hookline.errors import HooklineError

#: Lower-case words joined by single '-' or '_': ``greet``, ``hookline-set``, ``order_tools``.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"<<(\w+)>>")


class ScaffoldError(HooklineError):
    """A plugin package cannot be made: a bad name or an occupied folder."""

    code = "scaffold_error"
    status = 400


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin package goes by, derived from what the author typed."""

    dist: str  # hookline-greet: the distribution, what pip installs
    package: str  # hookline_greet: the import name
    entry_point: str  # greet: the plugin's name in `hookline plugins` and HOOKLINE_DISABLE_PLUGINS
    node_type: str  # greet: the node type's name in workflow definitions
    node_class: str  # GreetNode

    @classmethod
    def derive(cls, name: str, node_type: str | None = None) -> PluginNames:
        if not NAME_PATTERN.match(name):
            raise ScaffoldError(
                f"invalid plugin name {name!r}: use lower-case letters, digits and single '-' or '_' "
                "between words, starting with a letter (e.g. 'greet' or 'hookline-greet')"
            )
        short = re.sub(r"^hookline[-_]", "", name)
        if short == "hookline":
            raise ScaffoldError("invalid plugin name 'hookline': name the plugin, e.g. 'hookline-greet'")
        node_type = node_type if node_type is not None else short
        if not NAME_PATTERN.match(node_type):
            raise ScaffoldError(
                f"invalid node type name {node_type!r}: use lower-case letters, digits and single '-' or '_' "
                "between words, starting with a letter (e.g. 'greet')"
            )
        words = re.split(r"[-_]", node_type)
        return cls(
            dist=f"hookline-{short.replace('_', '-')}",
            package=f"hookline_{short.replace('-', '_')}",
            entry_point=short,
            node_type=node_type,
            node_class="".join(word.capitalize() for word in words) + "Node",
        )


def _files(names: PluginNames) -> dict[str, str]:
    """Path in the new package -> template in ``hookline/scaffold/``."""
    return {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"src/{names.package}/__init__.py": "__init__.py.tmpl",
        f"src/{names.package}/plugin.py": "plugin.py.tmpl",
        f"src/{names.package}/nodes.py": "nodes.py.tmpl",
        f"tests/test_{names.package}.py": "test.py.tmpl",
    }


def render(template: str, values: dict[str, str]) -> str:
    """Replace every ``<<name>>`` in ``template`` (a KeyError for an unknown one is a bug here)."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def scaffold(name: str, directory: str | Path | None = None, node_type: str | None = None) -> list[Path]:
    """Write a plugin package for ``name`` into ``directory`` (default: ``./<distribution name>``)
    and return the files written. Raises :class:`ScaffoldError` for an invalid name or a
    directory that exists and is not empty; nothing is written then."""
    names = PluginNames.derive(name, node_type)
    target = Path(directory) if directory is not None else Path(names.dist)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not an empty directory; choose another --directory")
    values = {
        "dist": names.dist,
        "package": names.package,
        "entry_point": names.entry_point,
        "node_type": names.node_type,
        "node_class": names.node_class,
        "node_title": " ".join(re.split(r"[-_]", names.node_type)).capitalize(),  # sum-items: "Sum items"
        # A node key for the README's workflow, readable in a template path: $nodes.sum_items.greeting
        "node_key": names.node_type.replace("-", "_"),
    }
    templates = resources.files("hookline") / "scaffold"
    written = []
    for relative, template_name in _files(names).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render((templates / template_name).read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(path)
    return written


class _BadName(click.ClickException):
    """One line on stderr and exit code 2, as click gives for other bad arguments."""

    exit_code = 2


@click.group()
def plugin() -> None:
    """Create plugin packages."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--directory", "-d", type=click.Path(file_okay=False), help="Folder to create (default: ./hookline-NAME)."
)
@click.option("--node-type", help="Name of the node type it adds (default: NAME without 'hookline-').")
def plugin_new(name: str, directory: str | None, node_type: str | None) -> None:
    """Create a plugin package NAME (e.g. hookline-greet) with a node type and a passing test."""
    try:
        names = PluginNames.derive(name, node_type)
    except ScaffoldError as exc:
        raise _BadName(exc.message) from None
    try:
        written = scaffold(name, directory, node_type)
    except ScaffoldError as exc:
        raise click.ClickException(exc.message) from None
    root = Path(directory) if directory is not None else Path(names.dist)
    for path in written:
        click.echo(f"created {path}")
    click.echo(
        f"\nNext steps (in the environment where Hookline is installed):\n"
        f"  cd {root}\n"
        f'  pip install -e ".[test]"\n'
        f"  pytest\n"
        f"  hookline plugins      # lists '{names.entry_point}' with the node type '{names.node_type}'"
    )
