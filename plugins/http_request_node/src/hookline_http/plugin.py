"""Hook implementations: the entry point ``http = "hookline_http.plugin"``."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from hookline import NodeType, hookimpl

from hookline_http.clients import HttpClients
from hookline_http.node import HttpRequestNode
from hookline_http.settings import HttpSettings

if TYPE_CHECKING:
    from hookline import Host

#: The HTTP state of each host, for ``shutdown`` to close. Weak: a host dropped (tests build many
#: in one process) takes its entry with it; the node type bound to it holds the state itself.
_CLIENTS: weakref.WeakKeyDictionary[Host, HttpClients] = weakref.WeakKeyDictionary()


@hookimpl
def register_node_types(register: Callable[[type[NodeType]], None], host: Host) -> None:
    # The settings are read here, when the host builds its registry: a bad value stops the
    # server from starting (PluginError) instead of failing calls later.
    clients = HttpClients(HttpSettings.from_env())
    _CLIENTS[host] = clients
    register(HttpRequestNode.using(clients))


@hookimpl
async def shutdown(host: Host) -> None:
    clients = _CLIENTS.pop(host, None)
    if clients is not None:
        await clients.aclose()
