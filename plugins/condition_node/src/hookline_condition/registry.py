"""Building one host's operator table from the ``register_condition_operators`` hook."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import pluggy

from hookline_condition.operators import OperatorTable

#: ``each(hook_name)`` yields ``(plugin_name, caller)`` for every plugin implementing the hook,
#: where ``caller(**kwargs)`` calls that plugin's implementation only.
HookEach = Callable[[str], Iterable[tuple[str, Callable[..., Any]]]]


def each_plugin(pm: pluggy.PluginManager) -> HookEach:
    """One caller per implementing plugin, so a duplicate operator can name its plugin."""

    def each(hook_name: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            others = [plugin for plugin in pm.get_plugins() if plugin is not impl.plugin]
            yield impl.plugin_name, pm.subset_hook_caller(hook_name, remove_plugins=others)

    return each


def collect_operators(each: HookEach) -> OperatorTable:
    """The built-in operators plus every plugin's, a duplicate name naming both plugins."""
    table = OperatorTable()
    for plugin, call in each("register_condition_operators"):
        call(register=table.registrar(plugin))
    return table
