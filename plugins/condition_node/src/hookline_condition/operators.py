"""Comparison operators. Each takes the resolved left and right values and returns a bool, or
raises ``TypeError`` with a sentence naming the values when they cannot be compared."""

from __future__ import annotations

import json
from typing import Any, Callable


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _ordered(left: Any, right: Any) -> tuple[Any, Any]:
    if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
        return left, right
    raise TypeError(
        f"{show(left)} ({_kind(left)}) and {show(right)} ({_kind(right)}) cannot be ordered; "
        "compare two numbers or two strings"
    )


def equals(left: Any, right: Any) -> bool:
    """Equal values of the same kind, all the way down (1 equals 1.0; "1" does not equal 1,
    and [1] does not equal [true])."""
    if _is_number(left) and _is_number(right):
        return left == right
    if _kind(left) != _kind(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(equals(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(equals(left[k], right[k]) for k in left)
    return bool(left == right)


def show(value: Any) -> str:
    """A value as the user wrote it: JSON, shortened."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def contains(left: Any, right: Any) -> bool:
    """Substring of a string, element of an array, or key of an object."""
    if isinstance(left, str):
        if not isinstance(right, str):
            raise TypeError(f"a string can only contain a string, not {show(right)} ({_kind(right)})")
        return right in left
    if isinstance(left, list):
        return any(equals(item, right) for item in left)
    if isinstance(left, dict):
        return isinstance(right, str) and right in left
    raise TypeError(f"{show(left)} ({_kind(left)}) cannot contain anything; use a string, array or object")


def _gt(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return a > b


def _gte(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return a >= b


def _lt(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return a < b


def _lte(left: Any, right: Any) -> bool:
    a, b = _ordered(left, right)
    return a <= b


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": equals,
    "ne": lambda left, right: not equals(left, right),
    "gt": _gt,
    "gte": _gte,
    "lt": _lt,
    "lte": _lte,
    "contains": contains,
}
