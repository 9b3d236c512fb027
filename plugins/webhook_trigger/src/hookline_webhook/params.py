"""Declared parameters: ``headers``, ``query`` and ``body`` lists of ``{path, alias, required,
type}`` in the trigger config. Required ones must be present, typed ones are checked (and coerced
from the strings of query strings, forms and headers), and every declared parameter is also
available by its alias (or path) as ``$context.params.<alias>``."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hookline.errors import BadRequest
from hookline.web import MAX_DEPTH, MAX_VALUES, json_shape
from hookline_webhook.paths import PathError, Segment, get_path, has_path, parse_path, set_path

TYPES = ("string", "number", "integer", "boolean", "object", "array")
#: Where declared parameters are: config lists of these names, read from ``$context`` of the same
#: names (``path_params``: the values of a custom path's ``:name`` segments).
WHERE = ("headers", "query", "body", "path_params")

PARAMETER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["path"],
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "minLength": 1, "maxLength": 256},
        "alias": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
        "required": {"type": "boolean"},
        "type": {"enum": list(TYPES)},
        "description": {"type": "string"},
    },
}


@dataclass(frozen=True)
class Parameter:
    where: str
    path: str
    segments: tuple[Segment, ...]
    name: str
    required: bool
    type: str | None

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"in": self.where, "path": self.path}
        if self.name != self.path:
            data["alias"] = self.name
        return data


class ParameterError(BadRequest):
    """Missing required or invalid parameters: the caller gets a 400 listing them."""

    def __init__(self, missing: list[dict[str, Any]], invalid: list[dict[str, Any]]) -> None:
        self.missing = missing
        self.invalid = invalid
        if missing:
            self.code = "missing_parameters"
            details: dict[str, Any] = {"missing": missing, **({"invalid": invalid} if invalid else {})}
            super().__init__("Missing required parameter(s)", **details)
        else:
            self.code = "invalid_parameters"
            super().__init__("Invalid parameter(s)", invalid=invalid)


def parameter_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems with the declared parameters that the schema cannot see."""
    problems: list[str] = []
    names: dict[str, str] = {}
    for where in WHERE:
        seen: set[tuple[Segment, ...]] = set()
        for number, item in enumerate(config.get(where) or []):
            label = f"{where}[{number}]"
            try:
                segments = tuple(parse_path(item["path"]))
            except PathError as exc:
                problems.append(f"{label}.path: {exc}")
                continue
            if where == "headers" and len(segments) != 1:
                problems.append(f"{label}.path: a header parameter is a header name, not {item['path']!r}")
            if where == "path_params" and (len(segments) != 1 or "alias" in item):
                problems.append(f"{label}: a path parameter is declared by its name alone (no alias, no nested path)")
            if segments in seen:
                problems.append(f"{label}.path: {item['path']!r} is declared twice in {where}")
            seen.add(segments)
            name = item.get("alias") or item["path"]
            if name in names:
                problems.append(f"{label}: the name {name!r} is also used by {names[name]}; give one an alias")
            names[name] = label
    return problems


def compile_parameters(config: Mapping[str, Any]) -> tuple[Parameter, ...]:
    parameters = []
    for where in WHERE:
        for item in config.get(where) or []:
            path = item["path"].lower() if where == "headers" else item["path"]
            parameters.append(
                Parameter(
                    where=where,
                    path=item["path"],
                    segments=tuple(parse_path(path)),
                    name=item.get("alias") or item["path"],
                    required=item.get("required", False),
                    type=item.get("type"),
                )
            )
    return tuple(parameters)


def apply_parameters(context: dict[str, Any], parameters: tuple[Parameter, ...], *, body_is_text: bool) -> dict[str, Any]:
    """Check ``parameters`` against ``context`` (coercing in place) and return them by name.

    :param body_is_text: the body came as strings (a form), so its values may be coerced like
        query values; a JSON body's values must already have the declared type.
    :raises ParameterError: listing every missing and invalid parameter.
    """
    values: dict[str, Any] = {}
    missing: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for parameter in parameters:
        source = context.get(parameter.where)
        segments = list(parameter.segments)
        if not has_path(source, segments) or get_path(source, segments) is None:
            if parameter.required:
                missing.append(parameter.describe())
            continue
        value = get_path(source, segments)
        if parameter.type is not None:
            from_text = parameter.where != "body" or body_is_text
            try:
                value = coerce(value, parameter.type, from_text=from_text)
            except ValueError as exc:
                invalid.append({**parameter.describe(), "expected": parameter.type, "message": str(exc)})
                continue
            set_path(source, segments, value)
        values[parameter.name] = value
    if missing or invalid:
        raise ParameterError(missing, invalid)
    return values


# ASCII digits only: Python's int() and float() also take other scripts' digits ("٣") and
# underscores ("1_000"), which no sender means as a number in a query string or form field.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = {"nan", "inf", "infinity"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def coerce(value: Any, expected: str, *, from_text: bool) -> Any:
    """``value`` as ``expected``; strings are converted only when ``from_text``."""
    if from_text and isinstance(value, str) and expected != "string":
        return _FROM_TEXT[expected](value)
    if from_text and expected == "array" and not isinstance(value, list):
        return [value]  # a key sent once is a single value; declared as an array, it is a list of one
    if not _IS[expected](value):
        raise ValueError(f"expected {_article(expected)}, got {_kind(value)} {_show(value)}")
    if expected == "integer" and isinstance(value, float):
        return int(value)
    return value


def _number(text: str) -> int | float:
    stripped = text.strip()
    try:
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
        if _DECIMAL.fullmatch(stripped):
            number = float(stripped)
            if math.isfinite(number):
                return number
            raise ValueError(f"expected a finite number, got {_show(text)}")
    except ValueError as exc:  # (int() refuses more than 4,300 digits)
        if "finite" in str(exc):
            raise
    if stripped.lower().lstrip("+-") in _NOT_FINITE:
        raise ValueError(f"expected a finite number, got {_show(text)}")
    raise ValueError(f"expected a number, got {_show(text)}")


def _integer(text: str) -> int:
    stripped = text.strip()
    try:
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
    except ValueError:  # more than 4,300 digits
        pass
    raise ValueError(f"expected an integer, got {_show(text)}")


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false, 1/0, yes/no), got {_show(text)}")


def _json_of(kind: str, check: Callable[[Any], bool]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError(f"expected {_article(kind)} (as JSON), got {_show(text)}") from None
        shape = json_shape(value)
        if shape.depth > MAX_DEPTH:
            raise ValueError(f"expected {_article(kind)} nested at most {MAX_DEPTH} levels deep")
        if shape.values > MAX_VALUES:
            raise ValueError(f"expected {_article(kind)} of at most {MAX_VALUES} values")
        if not check(value):
            raise ValueError(f"expected {_article(kind)}, got {_show(text)}")
        return value

    return convert


_IS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_FROM_TEXT: dict[str, Callable[[str], Any]] = {
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "object": _json_of("object", _IS["object"]),
    "array": lambda text: [text],
}


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
