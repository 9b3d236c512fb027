"""Hook implementations: the entry point ``set = "hookline_set.plugin"``."""

from __future__ import annotations

import json
from html import escape
from typing import Any, Callable, Mapping

from hookline import NodeType, hookimpl
from hookline_set.nodes import DelayNode, SetNode


@hookimpl
def register_node_types(register: Callable[[type[NodeType]], None]) -> None:
    register(SetNode)
    register(DelayNode)


@hookimpl
def render_job_result(job: Mapping[str, Any]) -> str | None:
    # On a console's execution page, a set node's values as a table. Everything else is left to
    # its own plugin (None). The values may come from a webhook caller: escape every one.
    if job["type"] != "set" or not isinstance(job.get("result"), dict):
        return None
    rows = "".join(
        f'<tr><th scope="row"><code>{escape(name)}</code></th>'
        f"<td><code>{escape(json.dumps(value, ensure_ascii=False))}</code></td></tr>"
        for name, value in job["result"].items()
    )
    return f'<table class="list compact"><caption>Values set</caption><tbody>{rows}</tbody></table>'
