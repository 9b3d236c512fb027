"""Parameter paths such as ``a``, ``b.c``, ``items[0]`` and ``query[0].a``: parsing, formatting,
reading and writing them in decoded request data."""

from __future__ import annotations

import re
from typing import Any

Segment = str | int

_TOKEN = re.compile(r"\[(\d+)\]|\[([^\[\]]*)\]|\.?([^.\[\]]+)")

#: Larger list indexes are refused: ``a[99999999]=x`` must not allocate a huge list.
MAX_INDEX = 1000


class PathError(ValueError):
    pass


def parse_path(path: str) -> list[Segment]:
    """``query[0].a`` -> ``["query", 0, "a"]``; ``a[b]`` -> ``["a", "b"]``."""
    if not isinstance(path, str) or not path.strip():
        raise PathError("a path must be a non-empty string such as 'a', 'b.c' or 'items[0].id'")
    segments: list[Segment] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise PathError(f"{path!r} is not a valid path (at character {position + 1})")
        index, bracketed, name = match.groups()
        if index is not None:
            if int(index) > MAX_INDEX:
                raise PathError(f"{path!r}: index {index} is larger than {MAX_INDEX}")
            segments.append(int(index))
        else:
            segments.append(bracketed if bracketed is not None else name)
        position = match.end()
    if path.startswith(".") or path.endswith("."):
        raise PathError(f"{path!r} is not a valid path (it starts or ends with '.')")
    return segments


def format_path(segments: list[Segment]) -> str:
    """``["query", 0, "a"]`` -> ``query[0].a``; names that are not plain become ``[name]``."""
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif re.fullmatch(r"[^.\[\]]+", segment) and not segment.isdigit():
            text += f".{segment}" if text else segment
        else:
            text += f"[{segment}]"
    return text


_MISSING = object()


def get_path(data: Any, segments: list[Segment], default: Any = None) -> Any:
    for segment in segments:
        if isinstance(segment, int) and isinstance(data, list) and segment < len(data):
            data = data[segment]
        elif isinstance(data, dict) and str(segment) in data:
            data = data[str(segment)]
        else:
            return default
    return data


def has_path(data: Any, segments: list[Segment]) -> bool:
    return get_path(data, segments, _MISSING) is not _MISSING


def set_path(data: Any, segments: list[Segment], value: Any) -> None:
    """Replace the value at an existing path (used to store coerced parameters)."""
    for segment in segments[:-1]:
        data = data[segment] if isinstance(segment, int) else data[str(segment)]
    last = segments[-1]
    if isinstance(last, int):
        data[last] = value
    else:
        data[str(last)] = value
