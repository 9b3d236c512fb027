"""Query strings and form bodies with nested keys, as PHP, Rails and the qs library write them:

* ``a=1&a=2`` -> ``{"a": ["1", "2"]}`` (a repeated key becomes a list)
* ``a[]=1&a[]=2`` -> ``{"a": ["1", "2"]}``
* ``a[b]=1`` and ``a.b=1`` -> ``{"a": {"b": "1"}}``
* ``a[0].b=1&a[1].b=2`` -> ``{"a": [{"b": "1"}, {"b": "2"}]}``

Values stay strings (declared parameters can coerce them). A key used both as a value and as a
container (``a=1&a[b]=2``) is an error naming it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from hookline.web import MAX_PARAMETERS
from hookline_webhook.paths import MAX_INDEX, PathError, Segment, parse_path

#: More pairs than this are refused (a query of a million pairs is an attack, not a webhook).
MAX_PAIRS = MAX_PARAMETERS


class QueryError(ValueError):
    pass


class TooManyPairs(QueryError):
    """More than :data:`MAX_PAIRS` pairs."""


def parse_nested(text: str) -> dict[str, Any]:
    """Decode ``text`` (without the leading ``?``) into nested dicts and lists."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PAIRS, errors="strict")
    except UnicodeDecodeError:
        raise QueryError("a percent-encoded value is not valid UTF-8") from None
    except ValueError as exc:
        raise TooManyPairs(f"too many parameters (more than {MAX_PAIRS})") from exc
    result: dict[str, Any] = {}
    for key, value in pairs:
        _insert(result, key, value)
    return _compact(result)


class _List(dict):
    """A list under construction: index -> value, ``[]`` appends."""


def _insert(root: dict[str, Any], key: str, value: str) -> None:
    appending = key.endswith("[]")
    try:
        segments: list[Segment] = parse_path(key[:-2] if appending else key) if key.strip("[]") else [key]
    except PathError:
        segments = [key]  # not nested syntax: a plain (odd) name
    if appending:
        segments.append(-1)
    node: Any = root
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if isinstance(segment, int):
            if not isinstance(node, _List):
                raise QueryError(f"parameter {key!r} mixes list and object syntax")
            slot = len(node) if segment == -1 else segment
            if slot > MAX_INDEX:
                raise QueryError(f"parameter {key!r}: index larger than {MAX_INDEX}")
        else:
            if isinstance(node, _List):
                raise QueryError(f"parameter {key!r} mixes list and object syntax")
            slot = segment
        if last:
            existing = node.get(slot)
            if existing is None:
                node[slot] = value
            elif isinstance(existing, str):
                node[slot] = _List({0: existing, 1: value})
            elif isinstance(existing, _List) and all(isinstance(v, str) for v in existing.values()):
                existing[len(existing)] = value
            else:
                raise QueryError(f"parameter {key!r} is used both as a value and as a container")
            return
        following = segments[position + 1]
        child = node.get(slot)
        if child is None:
            child = _List() if isinstance(following, int) else {}
            node[slot] = child
        elif isinstance(child, str) and following == -1:
            child = node[slot] = _List({0: child})  # a=1&a[]=2: the same list as a[]=1&a=2
        elif isinstance(child, str):
            raise QueryError(f"parameter {key!r} is used both as a value and as a container")
        node = child


def _compact(value: Any) -> Any:
    if isinstance(value, _List):
        return [_compact(value[i]) if i in value else None for i in range(max(value) + 1)] if value else []
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    return value
