"""Bounds on what a request may hold, beyond its size: how deep its JSON nests, how many values
it holds, how many parameters its query string and form carry."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hookline.errors import BadRequest, InvalidBody

#: Deepest nesting of arrays and objects accepted in a JSON value. Deeper documents are refused
#: before anything walks them recursively (storage, templates, the JSON encoder).
MAX_DEPTH = 64
#: Most values (arrays, objects and scalars, the document itself included) accepted in one JSON
#: document. A 1 MiB body of ``[0,0,0,...]`` holds 500,000; real events hold a few hundred, and
#: a batch of a thousand records a few tens of thousands.
MAX_VALUES = 100_000
#: Most parameters in a query string, and most fields (or parts) in a form body.
MAX_PARAMETERS = 1000


def loads(text: str | bytes) -> Any:
    """``json.loads`` as JSON is written: ``NaN``, ``Infinity`` and numbers too large for a
    double (``1e999``, which Python reads as infinity) are refused with ``ValueError``. None of
    them is JSON, and PostgreSQL refuses to store them. ``RecursionError`` and
    ``UnicodeDecodeError`` pass through as ``json.loads`` raises them."""
    # What json.loads does before decoding, then the decoder made once (json.loads with
    # options makes a new one on each call).
    if isinstance(text, str):
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    else:
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    return _DECODER.decode(text)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


#: Made once: ``json.loads`` with options makes a new decoder on each call.
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


class TooManyParameters(BadRequest):
    """More query parameters, form fields, multipart parts or JSON values than the limit. A 400
    rather than a 413: the request may be small in bytes, and resending it smaller (what a 413
    asks for) would not help; its shape must change."""

    code = "too_many_parameters"


@dataclass(frozen=True)
class JSONShape:
    """How deeply a JSON value nests and how many values it holds. When a limit was passed the
    walk stopped there, so the figures are lower bounds beyond the limit."""

    depth: int
    values: int


def json_shape(value: Any, *, max_depth: int = MAX_DEPTH, max_values: int | float = MAX_VALUES) -> JSONShape:
    """Walk ``value`` once, without recursion, stopping as soon as either limit is passed.

    Only arrays and objects are visited; their scalars are counted by length, so a document of
    a million numbers costs one ``len`` rather than a million steps."""
    deepest = 0
    count = 1
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > max_depth:
                break
        children = item.values() if isinstance(item, dict) else item
        count += len(children)
        if count > max_values:
            break
        stack.extend([(child, depth + 1) for child in children if isinstance(child, (dict, list))])
    return JSONShape(depth=deepest, values=count)


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), without recursion."""
    return json_shape(value, max_values=float("inf")).depth


def check_json(value: Any, subject: str = "the JSON body") -> None:
    """Refuse a parsed JSON document deeper than :data:`MAX_DEPTH` (:class:`InvalidBody`) or
    holding more than :data:`MAX_VALUES` values (:class:`TooManyParameters`); both are 400."""
    shape = json_shape(value)
    if shape.depth > MAX_DEPTH:
        raise InvalidBody(f"{subject} is nested deeper than {MAX_DEPTH} levels")
    if shape.values > MAX_VALUES:
        raise TooManyParameters(
            f"{subject} has too many values (more than {MAX_VALUES} arrays, objects and scalars)",
            limit=MAX_VALUES,
        )
