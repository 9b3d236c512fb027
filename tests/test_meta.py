"""Checks on the project itself: every hookspec is tested and documented, the host never imports
a plugin, and the migrations match the models. That plugins import only the public API is checked
by test_public_api.py."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hookline import hookspecs

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugin-guide.md"


def declared_hookspecs() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "hookline_spec")
    ]


def test_hook_names_lists_every_hookspec() -> None:
    assert sorted(hookspecs.HOOK_NAMES) == sorted(declared_hookspecs())


@pytest.mark.parametrize("hook", hookspecs.HOOK_NAMES)
def test_every_hookspec_has_a_test(hook: str) -> None:
    tests = "\n".join(path.read_text() for path in (REPO / "tests").glob("test_*.py") if path.name != "test_meta.py")
    assert re.search(rf"hookspec: {hook}\b", tests), f"no test is marked '# hookspec: {hook}'"


@pytest.mark.parametrize("hook", hookspecs.HOOK_NAMES)
def test_every_hookspec_is_in_the_plugin_guide(hook: str) -> None:
    guide = GUIDE.read_text()
    assert re.search(rf"^#+ .*`{hook}`", guide, re.MULTILINE), f"docs/plugin-guide.md has no heading for `{hook}`"


@pytest.mark.parametrize("hook", hookspecs.HOOK_NAMES)
def test_every_hookspec_has_a_complete_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "Called" in doc or "called" in doc or "server" in doc, f"{hook}: say when it fires"
    for parameter in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f":param {parameter}:" in doc, f"{hook}: document parameter {parameter!r}"


def test_the_host_never_imports_a_plugin() -> None:
    pattern = re.compile(r"^\s*(import|from)\s+hookline_(webhook|response|condition|console|http|error_trigger)\b", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "host").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("app", ["hookline", "hookline_webhook", "hookline_console"])
async def test_migrations_match_the_models(tmp_path: Path, app: str) -> None:
    """A model change without its migration is caught here, not in production: tortoise's
    autodetector (what ``makemigrations`` runs) finds nothing to write. A plugin's app is
    checked together with the host's, as its migrations are generated."""
    from tortoise.cli.cli import tortoise_cli_context
    from tortoise.migrations.autodetector import MigrationAutodetector

    from hookline.storage.db import HOST_APP, tortoise_config

    apps = [HOST_APP]
    if app == "hookline_webhook":
        from hookline_webhook.tortoise_config import WEBHOOK_APP

        apps.append(WEBHOOK_APP)
    if app == "hookline_console":
        from hookline_console.tortoise_config import CONSOLE_APP

        apps.append(CONSOLE_APP)
    config = tortoise_config(f"sqlite://{tmp_path / 'meta.db'}", apps)
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    assert [(w.app_label, w.name) for w in writers] == []
