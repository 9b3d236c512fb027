"""Building one host's operator table from the ``register_condition_operators`` hook."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import pluggy

from hookline import each_implementation
from hookline_condition.operators import OperatorTable

#: ``each(hook_name)`` yields ``(plugin_name, caller)`` for every plugin implementing the hook,
#: where ``caller(**kwargs)`` calls that plugin's implementation only.
HookEach = Callable[[str], Iterable[tuple[str, Callable[..., Any]]]]


def each_plugin(pm: pluggy.PluginManager) -> HookEach:
    """One caller per implementing plugin, so a duplicate operator can name its plugin."""
    return lambda hook_name: each_implementation(pm, hook_name)


def collect_operators(each: HookEach) -> OperatorTable:
    """The built-in operators plus every plugin's, a duplicate name naming both plugins."""
    table = OperatorTable()
    for plugin, call in each("register_condition_operators"):
        call(register=table.registrar(plugin))
    return table
