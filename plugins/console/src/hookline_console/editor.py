"""The definition editor's server side: reading the YAML or JSON typed in, placing each problem
the host's validation reports at its line, and keeping the secrets the editor showed hidden."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from hookline.errors import BadRequest, Problem
from hookline_console.masking import MASK

#: A definition typed into the editor: as large as the API takes.
MOST_CHARS = 1_000_000
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class EditorProblem:
    line: int | None
    column: int | None
    location: str
    message: str


def load_document(text: str) -> Any:
    """The definition typed in (YAML, of which JSON is a part). :class:`BadRequest` names the
    line of a syntax error."""
    if not text.strip():
        raise BadRequest("the definition is empty")
    if len(text) > MOST_CHARS:
        raise BadRequest(f"the definition is longer than {MOST_CHARS:,} characters")
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise BadRequest(f"{where}not valid YAML: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise BadRequest(f"not valid YAML: {exc}") from None
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the definition holds a value JSON cannot store: {exc}") from None
    return data


def locate_problems(text: str, problems: list[Problem]) -> list[EditorProblem]:
    """Each problem with the line and column of its location in ``text`` (the closest existing
    parent when the location is missing, such as a required field)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        root = None
    located = []
    for problem in problems:
        node = _find(root, problem.location)
        mark = node.start_mark if node is not None else None
        located.append(
            EditorProblem(
                mark.line + 1 if mark is not None else None,
                mark.column + 1 if mark is not None else None,
                problem.location,
                problem.message,
            )
        )
    return located


def _find(root: Any, location: str) -> Any:
    node = root
    for name, index in _SEGMENT.findall(location or ""):
        child = None
        if index and isinstance(node, yaml.SequenceNode):
            position = int(index)
            child = node.value[position] if position < len(node.value) else None
        elif name and isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if getattr(key, "value", None) == name), None)
        if child is None:
            break
        node = child
    return node


def restore_hidden(data: Any, stored: Any) -> Any:
    """``data`` with each hidden secret the editor showed (:data:`MASK`, or ``from env NAME``
    left as shown) put back from the ``stored`` definition at the same place (nodes matched by
    key). A hidden value with nothing stored there is refused: it would be saved as the secret."""
    return _restore(data, stored, "")


def _restore(value: Any, stored: Any, location: str) -> Any:
    if value == MASK:
        if stored is None or stored == MASK:
            raise BadRequest(f"{location or 'the definition'}: replace the hidden value with the secret itself")
        return stored
    if isinstance(value, str) and value.startswith("from env ") and isinstance(stored, dict) and stored.get("env") == value[9:]:
        return stored
    if isinstance(value, dict):
        return {
            name: _restore(item, stored.get(name) if isinstance(stored, dict) else None, _join(location, name))
            for name, item in value.items()
        }
    if isinstance(value, list):
        by_key = _keyed(stored)
        restored = []
        for position, item in enumerate(value):
            if by_key is not None and isinstance(item, dict) and "key" in item:
                counterpart = by_key.get(item["key"])
            else:
                counterpart = stored[position] if isinstance(stored, list) and position < len(stored) else None
            restored.append(_restore(item, counterpart, f"{location}[{position}]"))
        return restored
    return value


def _keyed(stored: Any) -> dict[Any, Any] | None:
    """Nodes (dicts with a ``key``) by key, so that a node moved in the editor keeps its secrets."""
    if isinstance(stored, list) and stored and all(isinstance(item, dict) and "key" in item for item in stored):
        return {item["key"]: item for item in stored}
    return None


def _join(location: str, name: str) -> str:
    return f"{location}.{name}" if location else name
