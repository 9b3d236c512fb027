"""Cursor pagination, newest first: the ``limit`` and ``cursor`` of the API's and the CLI's lists,
and the page they get (the rows of a page are storage's: :mod:`hookline.storage.pages`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hookline.errors import BadRequest

MAX_LIMIT = 500
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def parse_limit(value: Any, default: int = 50) -> int:
    """A list's ``limit`` query parameter as a whole number from 1 to :data:`MAX_LIMIT`
    (``default`` when absent or empty); anything else raises :class:`BadRequest` (a 400)."""
    if value in (None, ""):
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
    return limit


def parse_cursor(cursor: str | None) -> int | None:
    """The id a ``next_cursor`` stands for (rows below it come next), or ``None`` for none."""
    if not cursor:
        return None
    try:
        before = int(cursor)
    except (TypeError, ValueError):
        before = 0
    # Ids are positive 64-bit integers; a larger number overflows the database's (a 500).
    if not 0 < before <= MAX_ID:
        raise BadRequest(f"cursor {cursor!r} is not one this API gave out")
    return before


def cursor_of(before: int | None) -> str | None:
    """The ``next_cursor`` of a page whose next one starts below id ``before`` (``None``: none)."""
    return None if before is None else str(before)
