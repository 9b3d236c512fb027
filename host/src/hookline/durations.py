"""Durations in configuration: ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"``, or a number of
seconds. One syntax for every setting that takes a span of time (retention, dedup windows)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

#: The longest duration accepted (datetime arithmetic overflows not far beyond).
MAX_SECONDS = 100 * 365 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

#: JSON Schema of a duration, for config schemas.
DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhdw]\s*$"},
    ],
    "description": "a duration: seconds as a number, or a string such as '90s', '15m', '12h', '7d', '2w'",
}


def parse_duration(value: Any) -> timedelta:
    """``"7d"`` -> ``timedelta(days=7)``; a number is seconds.

    :raises ValueError: naming the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use seconds, or a number with s, m, h, d or w: '7d')")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{value!r} is not a positive duration of at most 100 years")
    return timedelta(seconds=seconds)


def parse_duration_text(text: str) -> timedelta:
    """A duration from a command line, an environment variable or a query string, where a
    number of seconds arrives as text (``"90"``) as well as ``"90s"``."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        return parse_duration(text)
    return parse_duration(number)
