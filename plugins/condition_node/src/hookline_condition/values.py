"""How the condition operators see values: JSON kinds, loose typing, case folding, text, instants.

Every function here is pure. A value that an operator cannot use raises :class:`Incomparable`
(a ``TypeError``) with a sentence naming the value and its JSON kind; the node turns it into a
``hookline.NodeError`` so the job fails with that sentence instead of crashing.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from typing import Any

#: The names ``is_type`` accepts, in the order the docs list them.
TYPE_NAMES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object", "null")


class Incomparable(TypeError):
    """The values cannot be compared by this operator. The message is shown to the user."""


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind(value: Any) -> str:
    """The JSON kind of a value: ``null``, ``boolean``, ``number``, ``string``, ``array``, ``object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def show(value: Any) -> str:
    """A value as the user wrote it: JSON, shortened to 80 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def described(value: Any) -> str:
    """``"150" (string)``: the value and its kind, for error messages."""
    return f"{show(value)} ({kind(value)})"


def loosen(value: Any) -> Any:
    """Loose typing: a numeric string becomes its number, ``"true"``/``"false"`` (any case,
    surrounding spaces ignored) become booleans; arrays and objects are converted element by
    element. Anything else is returned unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "true":
            return True
        if text.lower() == "false":
            return False
        number = _parse_number(text)
        return value if number is None else number
    if isinstance(value, list):
        return [loosen(item) for item in value]
    if isinstance(value, dict):
        return {key: loosen(item) for key, item in value.items()}
    return value


def _parse_number(text: str) -> int | float | None:
    if not text or len(text) > 100:
        return None
    try:
        return int(text, 10)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    # "nan", "inf" and "1e999" parse as floats but are not numbers a JSON user wrote.
    return number if math.isfinite(number) else None


def fold(value: Any) -> Any:
    """Case-insensitive comparison: every string, at any depth, case-folded (``"Straße"`` and
    ``"STRASSE"`` fold to the same text)."""
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list):
        return [fold(item) for item in value]
    if isinstance(value, dict):
        return {key: fold(item) for key, item in value.items()}
    return value


def as_text(value: Any, *, loose: bool, role: str) -> str:
    """A string operand. With loose typing, numbers and booleans are written as JSON
    (``1`` → ``"1"``, ``true`` → ``"true"``)."""
    if isinstance(value, str):
        return value
    if loose and (is_number(value) or isinstance(value, bool)):
        return json.dumps(value)
    hint = "" if loose else "; set loose: true to compare numbers and booleans as text"
    raise Incomparable(f"{role} must be a string, not {described(value)}{hint}")


def as_instant(value: Any, *, role: str) -> datetime:
    """A point in time from an ISO 8601 string (``2024-05-01``, ``2024-05-01T12:00:00Z``,
    ``2024-05-01T14:00:00+02:00``) or a Unix epoch number in seconds. A date or time without an
    offset is taken as UTC."""
    if is_number(value):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise Incomparable(f"{role} {described(value)} is out of range for a Unix time in seconds") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            try:
                parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
            except ValueError:
                raise Incomparable(
                    f"{role} {described(value)} is not an ISO 8601 date or time "
                    "(2024-05-01, 2024-05-01T12:00:00Z) or a Unix time in seconds"
                ) from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
    raise Incomparable(
        f"{role} {described(value)} is not a date or time; use an ISO 8601 string or a Unix time in seconds"
    )
