"""Bounds on what a request may hold, beyond its size."""

from __future__ import annotations

from typing import Any

#: Deepest nesting of arrays and objects accepted in a JSON value. Deeper documents are refused
#: before anything walks them recursively (storage, templates, the JSON encoder).
MAX_DEPTH = 64


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:  # no need to walk further
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
