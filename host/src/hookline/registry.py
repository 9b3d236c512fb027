"""What the installed plugins registered: trigger types, node types, models, routes, commands.

Each ``register`` callback handed to a hook is bound to the plugin being called, so a
conflict names both plugins: ``node type 'response' from plugin 'acme' is already registered
by plugin 'response'``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from hookline.errors import PluginError
from hookline.types import NodeType, TriggerType

T = TypeVar("T")


@dataclass
class Entries(Generic[T]):
    """Named things of one kind, each remembering the plugin that registered it."""

    kind: str
    items: dict[str, T] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, item: T, plugin: str) -> None:
        if name in self.items:
            raise PluginError(
                f"{self.kind} {name!r} from plugin {plugin!r} is already registered by plugin "
                f"{self.owners[name]!r}; uninstall one of them or block it with "
                "HOOKLINE_DISABLE_PLUGINS",
                kind=self.kind,
                name=name,
                plugins=[self.owners[name], plugin],
            )
        self.items[name] = item
        self.owners[name] = plugin

    def by_plugin(self, plugin: str) -> list[str]:
        return sorted(name for name, owner in self.owners.items() if owner == plugin)


@dataclass(frozen=True)
class DisabledPlugin:
    """An installed plugin that was not loaded because it is disabled. Its module is not
    imported, so what it would register is not known: only its name and distribution."""

    name: str
    distribution: str | None
    version: str | None
    #: What disabled it: ``HOOKLINE_DISABLE_PLUGINS``.
    disabled_by: str

    def __str__(self) -> str:
        return f"{self.name!r} ({self.distribution} {self.version})" if self.distribution else repr(self.name)


@dataclass(frozen=True)
class ModelApp:
    """A tortoise app contributed by a plugin (or the host itself)."""

    label: str
    models: tuple[str, ...]
    migrations: str | None


class TypeRegistry:
    """Trigger and node types by name, with their config validators, and the installed plugins
    that are disabled (which may be what provides a type that is missing)."""

    def __init__(self, disabled: Sequence[DisabledPlugin] = ()) -> None:
        self._triggers: Entries[TriggerType] = Entries("trigger type")
        self._nodes: Entries[type[NodeType]] = Entries("node type")
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}
        self.disabled: tuple[DisabledPlugin, ...] = tuple(disabled)

    @property
    def triggers(self) -> Mapping[str, TriggerType]:
        return self._triggers.items

    @property
    def nodes(self) -> Mapping[str, type[NodeType]]:
        return self._nodes.items

    def owners(self) -> dict[str, dict[str, list[str]]]:
        """``{plugin: {"trigger_types": [...], "node_types": [...]}}``."""
        plugins = set(self._triggers.owners.values()) | set(self._nodes.owners.values())
        return {
            plugin: {
                "trigger_types": self._triggers.by_plugin(plugin),
                "node_types": self._nodes.by_plugin(plugin),
            }
            for plugin in plugins
        }

    def missing_type(self, kind: str, name: str) -> str:
        """Why there is no ``kind`` (``"node"`` or ``"trigger"``) type ``name`` here, ending in
        what to do: ``node type 'condition' is not installed here (...); pip install ...``.
        When plugins are disabled, they are named as what may provide it: a disabled plugin is
        never imported, so the types it would register cannot be known for sure."""
        types = self.nodes if kind == "node" else self.triggers
        available = ", ".join(sorted(types)) or "none"
        if not self.disabled:
            return (
                f"{kind} type {name!r} is not installed here (installed {kind} types: {available}); "
                "pip install the package that provides it"
            )
        plugins = " and ".join(str(plugin) for plugin in self.disabled)
        by = " and ".join(sorted({plugin.disabled_by for plugin in self.disabled}))
        one = len(self.disabled) == 1
        return (
            f"{kind} type {name!r} is not available here: {'plugin' if one else 'plugins'} {plugins}, which may "
            f"provide it, {'is' if one else 'are'} installed but disabled by {by} (available {kind} types: {available})"
        )

    def trigger_validator(self, name: str) -> Draft202012Validator:
        return self._validators[("trigger", name)]

    def node_validator(self, name: str) -> Draft202012Validator:
        return self._validators[("node", name)]

    def trigger_registrar(self, plugin: str) -> Callable[[type[TriggerType]], None]:
        def register(trigger_class: type[TriggerType]) -> None:
            name = _check_class(trigger_class, TriggerType, "trigger type", plugin)
            validator = _validator(trigger_class, "trigger type", plugin)
            self._triggers.add(name, trigger_class(), plugin)
            self._validators[("trigger", name)] = validator

        return register

    def node_registrar(self, plugin: str) -> Callable[[type[NodeType]], None]:
        def register(node_class: type[NodeType]) -> None:
            name = _check_class(node_class, NodeType, "node type", plugin)
            if inspect.iscoroutinefunction(node_class.execute) is False:
                raise PluginError(
                    f"node type {name!r} from plugin {plugin!r}: execute() must be 'async def'"
                )
            validator = _validator(node_class, "node type", plugin)
            self._nodes.add(name, node_class, plugin)
            self._validators[("node", name)] = validator

        return register


def _check_class(cls: Any, base: type, kind: str, plugin: str) -> str:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(
            f"plugin {plugin!r} registered {cls!r} as a {kind}; pass a subclass of "
            f"hookline.{base.__name__}"
        )
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{kind} class {cls.__qualname__} from plugin {plugin!r} has no 'name'")
    return name


def _validator(cls: Any, kind: str, plugin: str) -> Draft202012Validator:
    from hookline.ui import ui_hint_problems

    problems = ui_hint_problems(f"{kind} {cls.name!r} from plugin {plugin!r}", getattr(cls, "ui_hints", {}))
    if problems:
        raise PluginError(problems[0])
    schema = cls.config_schema
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise PluginError(
            f"{kind} {cls.name!r} from plugin {plugin!r} has an invalid config_schema: {exc.message}"
        ) from None
    return Draft202012Validator(schema)
