"""Response headers that plugins let users configure: one schema and one set of rules, so the
webhook trigger's answer and the Response node refuse the same things."""

from __future__ import annotations

import re
from typing import Any, Mapping

from hookline.templates import as_text

#: RFC 9110 token characters.
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

#: Visible characters, spaces and tabs: no control characters (CR and LF would split the response).
_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

#: JSON Schema for ``headers: {Name: value}``: valid names, values without line breaks.
RESPONSE_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": HEADER_NAME_PATTERN},
    "additionalProperties": {"type": "string", "pattern": _VALUE_PATTERN},
}

#: Headers the server computes; configuring them would produce broken responses.
SERVER_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def response_header_problems(headers: Mapping[str, Any] | None) -> list[str]:
    """Problems a schema cannot express, as messages for a definition's problem list."""
    return [
        f"header {name!r} is set by the server and cannot be configured"
        for name in (headers or {})
        if name.lower() in SERVER_HEADERS
    ]


def header_value(name: str, value: Any) -> str:
    """A rendered header value as text (``null`` -> empty, objects as JSON). Raises
    ``ValueError`` if it holds a control character (a line break would split the response)."""
    text = as_text(value)
    if _CONTROL.search(text):
        raise ValueError(f"header {name!r} must not contain control characters (line breaks, NUL) once rendered")
    return text
