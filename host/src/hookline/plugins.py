"""The plugin manager, and the typed facade host code uses instead of ``pm.hook``.

Plugins are found through entry points in the ``hookline`` group. The host's own management
API is a default plugin registered the same way (``--all`` shows it). Nothing is loaded at
import time: each app or CLI run builds its own manager with :func:`make_plugin_manager`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import pluggy

from hookline import hookspecs
from hookline.errors import HooklineError, PluginError
from hookline.registry import DisabledPlugin, Entries, ModelApp, TypeRegistry

if TYPE_CHECKING:
    import click
    from sanic import Blueprint

    from hookline.failures import ExecutionFailure
    from hookline.host import Host
    from hookline.ui import ConsolePage

log = logging.getLogger("hookline.plugins")

ENTRY_POINT_GROUP = "hookline"
#: Modules of the host that are plugins themselves, registered after the entry points.
DEFAULT_PLUGINS: tuple[str, ...] = ("hookline.web.api",)
#: Set to 1 to log every hook call (pluggy's tracing) to stderr.
TRACE_ENV = "HOOKLINE_TRACE_HOOKS"
#: Comma-separated entry-point names of plugins not to load; the only switch that disables one.
DISABLE_ENV = "HOOKLINE_DISABLE_PLUGINS"


def make_plugin_manager(
    *,
    disabled: Iterable[str] = (),
    entry_points: bool = True,
    extra_plugins: Iterable[object] = (),
) -> pluggy.PluginManager:
    """Build a plugin manager: hookspecs, installed entry points, default plugins, extras.

    :param disabled: entry-point names not to load (``HOOKLINE_DISABLE_PLUGINS``).
    :param entry_points: load installed plugins; tests turn it off to pick plugins by hand.
    :param extra_plugins: objects or modules with ``@hookimpl`` methods to register as well.
    :raises PluginError: a plugin implements a hook that does not exist (a misspelt name).
    """
    pm = pluggy.PluginManager("hookline")
    pm.add_hookspecs(hookspecs)
    disabled = [name.strip() for name in disabled if name.strip()]
    for name in disabled:
        pm.set_blocked(name)
    if entry_points:
        _load_entry_points(pm, disabled)
    for module_name in DEFAULT_PLUGINS:
        if not pm.is_blocked(module_name):
            pm.register(import_module(module_name), name=module_name)
    for plugin in extra_plugins:
        _register(pm, plugin, _plugin_name(pm, plugin))
    _add_plugin_hookspecs(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {pm.get_name(exc.plugin)!r} is invalid: {exc}") from None
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _load_entry_points(pm: pluggy.PluginManager, disabled: list[str]) -> None:
    """pluggy's loader, after checks it does not make: two distributions claiming one name (pluggy
    would silently keep the first), and a plugin that fails to import or to register (named,
    instead of a traceback)."""
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    unknown = set(disabled) - {ep.name for ep in found} - set(DEFAULT_PLUGINS)
    if unknown:
        log.warning("%s names no installed plugin: %s", DISABLE_ENV, ", ".join(sorted(unknown)))
    owners: dict[str, str] = {}
    for ep in found:
        if ep.name in disabled:
            continue
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in owners and owners[ep.name] != dist:
            raise PluginError(
                f"two installed distributions declare the hookline plugin {ep.name!r}: "
                f"{owners[ep.name]} and {dist}; uninstall one"
            )
        owners[ep.name] = dist
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except pluggy.PluginValidationError as exc:
        module = getattr(exc.plugin, "__name__", None)
        name = next((ep.name for ep in found if ep.value == module), module or repr(exc.plugin))
        raise PluginError(f"plugin {name!r} is invalid: {_first_line(exc)}") from None
    except Exception as exc:
        culprit = next((ep for ep in found if ep.name not in disabled and not pm.has_plugin(ep.name)), None)
        where = f"plugin {culprit.name!r} ({culprit.value}, from {owners[culprit.name]})" if culprit else "a plugin"
        raise PluginError(f"{where} could not be loaded: {type(exc).__name__}: {exc}") from exc


def disabled_plugins(pm: pluggy.PluginManager) -> list[DisabledPlugin]:
    """The installed plugins (entry points, and the host's default plugins) that ``pm`` blocks,
    by name. Read from the entry points' metadata only: a disabled plugin is never imported."""
    blocked = {name for name, plugin in pm.list_name_plugin() if plugin is None}
    if not blocked:
        return []
    found: dict[str, DisabledPlugin] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked and ep.name not in found:
            name, version = (ep.dist.name, ep.dist.version) if ep.dist is not None else (None, None)
            found[ep.name] = DisabledPlugin(ep.name, name, version, DISABLE_ENV)
    for name in DEFAULT_PLUGINS:
        if name in blocked:
            found[name] = DisabledPlugin(name, "hookline", host_version(), DISABLE_ENV)
    return sorted(found.values(), key=lambda plugin: plugin.name)


def each_implementation(pm: pluggy.PluginManager, hook_name: str) -> Iterator[tuple[str, pluggy.HookCaller]]:
    """``(plugin name, caller)`` for each plugin implementing ``hook_name``, where the caller
    calls that plugin's implementation only: what a ``register`` callback needs to name the
    plugin that registered something. Plugins that declare hooks of their own use it too."""
    hook: pluggy.HookCaller = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        yield impl.plugin_name, pm.subset_hook_caller(hook_name, remove_plugins=others)


def _add_plugin_hookspecs(pm: pluggy.PluginManager) -> None:
    """Hooks that plugins declare for other plugins (``register_hookspecs``)."""
    for plugin, call in each_implementation(pm, "register_hookspecs"):

        def register(specs: object, _plugin: str = plugin) -> None:
            try:
                pm.add_hookspecs(specs)
            except (ValueError, pluggy.PluginValidationError) as exc:
                raise PluginError(f"plugin {_plugin!r} declared invalid hookspecs: {_first_line(exc)}") from None

        call(register=register)


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} is invalid: {_first_line(exc)}") from None
    except ValueError as exc:  # pluggy: already registered, or blocked
        raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from None


def _first_line(exc: Exception) -> str:
    """pluggy's validation messages run over several lines; the first says what is wrong."""
    return " ".join(str(exc).strip().splitlines()[:2])


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable, unique name for a plugin object registered by hand (tests, embedding)."""
    base = getattr(plugin, "__name__", None) or type(plugin).__name__
    name, number = base, 1
    while pm.has_plugin(name) or pm.is_blocked(name):
        number += 1
        name = f"{base}-{number}"
    return name


def disabled_from_env(environ: dict[str, str] | None = None) -> list[str]:
    value = (environ if environ is not None else os.environ).get(DISABLE_ENV, "")
    return [name.strip() for name in value.split(",") if name.strip()]


class PluginHooks:
    """Typed calls into the installed plugins. Host code uses this, never ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _each(self, hook_name: str) -> Iterator[tuple[str, pluggy.HookCaller]]:
        """One caller per plugin implementing the hook, so that what a plugin registers (and
        any error it raises) can be attributed to it by name."""
        return each_implementation(self.pm, hook_name)

    # --- types -------------------------------------------------------------------------

    def build_registry(self, host: Host) -> TypeRegistry:
        # The host's default plugins register no types: never what a missing type needs.
        registry = TypeRegistry(disabled=[p for p in disabled_plugins(self.pm) if p.name not in DEFAULT_PLUGINS])
        for plugin, call in self._each("register_trigger_types"):
            call(register=registry.trigger_registrar(plugin), host=host)
        for plugin, call in self._each("register_node_types"):
            call(register=registry.node_registrar(plugin), host=host)
        return registry

    # --- storage -----------------------------------------------------------------------

    def model_apps(self) -> list[ModelApp]:
        apps: Entries[ModelApp] = Entries("model app label")
        apps.add("hookline", ModelApp("hookline", ("hookline.storage.models",), "hookline.storage.migrations"), "hookline")
        for plugin, call in self._each("register_models"):

            def register(label: str, models: str | list[str], migrations: str | None = None, _plugin: str = plugin) -> None:
                names = (models,) if isinstance(models, str) else tuple(models)
                if not names:
                    raise PluginError(f"plugin {_plugin!r} registered model app {label!r} with no models")
                apps.add(label, ModelApp(label, names, migrations), _plugin)

            call(register=register)
        return list(apps.items.values())

    # --- HTTP --------------------------------------------------------------------------

    def blueprints(self, host: Host) -> list[Blueprint]:
        from sanic import Blueprint

        found: Entries[Blueprint] = Entries("blueprint")
        for plugin, call in self._each("register_routes"):

            def register(blueprint: Blueprint, _plugin: str = plugin) -> None:
                if not isinstance(blueprint, Blueprint):
                    raise PluginError(f"plugin {_plugin!r} registered {blueprint!r}, not a sanic.Blueprint")
                found.add(blueprint.name, blueprint, _plugin)

            call(register=register, host=host)
        return list(found.items.values())

    # --- lifecycle ---------------------------------------------------------------------

    async def startup(self, host: Host) -> None:
        for plugin, call in self._each("startup"):
            try:
                await _maybe_await(call(host=host))
            except Exception as exc:
                raise PluginError(f"plugin {plugin!r} failed to start: {exc!r}") from exc

    async def shutdown(self, host: Host) -> None:
        for plugin, call in self._each("shutdown"):
            try:
                await _maybe_await(call(host=host))
            except Exception:
                log.exception("plugin %r failed during shutdown", plugin)

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements hook ``hook_name``."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    async def execution_failed(self, failure: ExecutionFailure, host: Host, *, timeout: float) -> bool:
        """Announce a failed execution to every plugin implementing the hook, each given at most
        ``timeout`` seconds; ``False`` if one raised or took longer (logged): the failure is then
        announced again later, to all of them."""
        taken = True
        for plugin, call in self._each("execution_failed"):
            try:
                async with asyncio.timeout(timeout):
                    await _maybe_await(call(failure=failure, host=host))
            except HooklineError as exc:  # an expected refusal (a full backlog, a shutdown): no traceback
                log.warning(
                    "plugin %r could not take the failure of execution %s yet (%s); it is announced again later",
                    plugin,
                    failure.id,
                    exc.message,
                )
                taken = False
            except TimeoutError:
                log.warning(
                    "plugin %r took more than %g s to take the failure of execution %s; it is announced again later",
                    plugin,
                    timeout,
                    failure.id,
                )
                taken = False
            except Exception:
                log.exception(
                    "plugin %r failed to take the failure of execution %s; it is announced again later", plugin, failure.id
                )
                taken = False
        return taken

    # --- CLI ---------------------------------------------------------------------------

    def commands(self, taken: Iterable[str]) -> list[click.Command]:
        found: Entries[Any] = Entries("CLI command")
        for name in taken:
            found.add(name, None, "hookline")
        for plugin, call in self._each("register_commands"):

            def register(command: click.Command, _plugin: str = plugin) -> None:
                found.add(command.name or "", command, _plugin)

            call(register=register)
        return [command for command in found.items.values() if command is not None]

    # --- console -------------------------------------------------------------------------

    def console_pages(self, host: Host) -> list[ConsolePage]:
        """The pages plugins add to the console, checked, in registration order."""
        from hookline.ui import ConsolePage

        found: Entries[ConsolePage] = Entries("console page")
        for plugin, call in self._each("register_console_pages"):

            def register(page: ConsolePage, _plugin: str = plugin) -> None:
                if not isinstance(page, ConsolePage):
                    raise PluginError(f"plugin {_plugin!r} registered {page!r}, not a hookline.ui.ConsolePage")
                problems = page.problems()
                if problems:
                    raise PluginError(f"plugin {_plugin!r}: {problems[0]}")
                found.add(page.name, page, _plugin)

            call(register=register, host=host)
        return list(found.items.values())

    def render_job_result(self, job: Mapping[str, Any], host: Host) -> str | None:
        """HTML a plugin gives for ``job``'s result, or ``None``. A plugin failing to render is
        logged and left out: the page shows the result as JSON instead."""
        try:
            html = self.pm.hook.render_job_result(job=job, host=host)
        except Exception:
            log.exception("a plugin failed to render the result of job %r (type %r)", job.get("node"), job.get("type"))
            return None
        return html if isinstance(html, str) else None

    # --- introspection -----------------------------------------------------------------

    def describe(self, registry: TypeRegistry, *, include_default: bool = False) -> list[dict[str, Any]]:
        """What ``hookline plugins`` and ``GET /api/plugins`` show, one dict per plugin. With
        ``include_default``, the installed plugins that are disabled too (``"disabled": true``)."""
        dists = {id(plugin): dist for plugin, dist in self.pm.list_plugin_distinfo()}
        contributed = registry.owners()
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:  # blocked
                continue
            default = name in DEFAULT_PLUGINS
            if default and not include_default:
                continue
            dist = dists.get(id(plugin))
            if dist is not None:
                distribution, version = dist.project_name, dist.version
            elif default:
                distribution, version = "hookline", host_version()
            else:
                distribution, version = None, None
            rows.append(
                {
                    "name": name,
                    "distribution": distribution,
                    "version": version,
                    "default": default,
                    "hooks": sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or []),
                    "trigger_types": contributed.get(name, {}).get("trigger_types", []),
                    "node_types": contributed.get(name, {}).get("node_types", []),
                    "titles": {
                        **{t: registry.triggers[t].title for t in contributed.get(name, {}).get("trigger_types", [])},
                        **{n: registry.nodes[n].title for n in contributed.get(name, {}).get("node_types", [])},
                    },
                }
            )
        if include_default:
            for disabled in disabled_plugins(self.pm):
                rows.append(
                    {
                        "name": disabled.name,
                        "distribution": disabled.distribution,
                        "version": disabled.version,
                        "default": disabled.name in DEFAULT_PLUGINS,
                        "disabled": True,
                        "disabled_by": disabled.disabled_by,
                        # Not imported, so what it would contribute is not known.
                        "hooks": [],
                        "trigger_types": [],
                        "node_types": [],
                        "titles": {},
                    }
                )
        return sorted(rows, key=lambda row: row["name"])


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
    elif isinstance(value, list):  # pluggy returns every implementation's result
        for item in value:
            if inspect.isawaitable(item):
                await item


def host_version() -> str:
    try:
        return metadata.version("hookline")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"

