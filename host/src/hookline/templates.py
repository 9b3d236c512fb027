"""``{{ }}`` templates in node configs, resolved with JSONPath (jsonpath-ng).

A config value is compiled once (when a workflow version is loaded) into a :class:`Template`;
rendering it against a scope is cheap. Rules (SPEC "Variables in node configs"):

* ``"{{ $context.body.amount }}"`` — a string that is exactly one expression keeps the value's
  type (number, object, list, ``null`` when nothing matches).
* ``"Order {{ $context.body.id }} paid"`` — inside longer text each value is rendered as text:
  strings as they are, ``null`` as the empty string, everything else as compact JSON.
* An expression is a JSONPath rooted at a scope variable: ``$context``, ``$nodes``,
  ``$execution``, ``$workflow`` or ``$system``. A *definite* path (only names and indexes) gives
  one value; a path with wildcards, slices, filters or ``..`` gives the list of all matches.
* Dicts and lists are walked; keys are never templated.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Mapping

from jsonpath_ng import jsonpath
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath

from hookline import jsontext
from hookline.errors import TemplateError

#: The variables an expression may start with.
ROOTS: tuple[str, ...] = ("context", "nodes", "execution", "workflow", "system")

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ROOT = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)")
_MISSING = object()


class Template:
    """A compiled config value. ``render(scope)`` returns a new value with expressions resolved."""

    __slots__ = ()

    #: True when the value holds no expression at all (rendering returns it unchanged).
    is_static: bool = False

    def render(self, scope: Mapping[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def expressions(self) -> list[str]:
        """Every expression the template contains, as written (for docs and validation)."""
        return []


class _Constant(Template):
    __slots__ = ("value",)
    is_static = True

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, scope: Mapping[str, Any]) -> Any:
        return self.value


class Expression(Template):
    """One JSONPath expression, such as ``$context.body.amount``."""

    __slots__ = ("source", "_path", "_definite", "_names")

    def __init__(self, source: str) -> None:
        self.source = source.strip()
        self._path, self._definite, self._names = _compile_expression(self.source)

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self._names is not None:  # names only (most expressions): what jsonpath-ng does, directly
            value: Any = scope
            for name in self._names:
                try:
                    value = value.get(name, _MISSING)
                except (TypeError, AttributeError):  # not an object: no match
                    return None
                if value is _MISSING:
                    return None
            return value
        matches = self._path.find(scope)
        if self._definite:
            return matches[0].value if matches else None
        return [match.value for match in matches]

    def expressions(self) -> list[str]:
        return [self.source]


class _Text(Template):
    __slots__ = ("parts",)

    def __init__(self, parts: list[str | Expression]) -> None:
        self.parts = parts

    def render(self, scope: Mapping[str, Any]) -> str:
        return "".join(
            part if isinstance(part, str) else as_text(part.render(scope)) for part in self.parts
        )

    def expressions(self) -> list[str]:
        return [p.source for p in self.parts if isinstance(p, Expression)]


class _Dict(Template):
    __slots__ = ("items",)

    def __init__(self, items: dict[str, Template]) -> None:
        self.items = items

    def render(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value.render(scope) for key, value in self.items.items()}

    def expressions(self) -> list[str]:
        return [e for value in self.items.values() for e in value.expressions()]


class _List(Template):
    __slots__ = ("items",)

    def __init__(self, items: list[Template]) -> None:
        self.items = items

    def render(self, scope: Mapping[str, Any]) -> list[Any]:
        return [item.render(scope) for item in self.items]

    def expressions(self) -> list[str]:
        return [e for item in self.items for e in item.expressions()]


def compile_template(value: Any) -> Template:
    """Compile a JSON-like value (str, number, bool, None, dict, list) into a :class:`Template`.

    Raises :class:`hookline.TemplateError` for a malformed expression, naming it.
    """
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, dict):
        items = {str(k): _compile_at(k, v) for k, v in value.items()}
        if all(t.is_static for t in items.values()):
            return _Constant(value)
        return _Dict(items)
    if isinstance(value, (list, tuple)):
        elements = [_compile_at(i, v) for i, v in enumerate(value)]
        if all(t.is_static for t in elements):
            return _Constant(list(value))
        return _List(elements)
    return _Constant(value)


def _compile_at(step: str | int, value: Any) -> Template:
    try:
        return compile_template(value)
    except TemplateError as exc:
        exc.path.insert(0, step)  # so validation can say where, e.g. config.body.id
        raise


def render_template(value: Any, scope: Mapping[str, Any]) -> Any:
    """Compile and render in one step; for one-off use. Hot paths keep the compiled template."""
    return compile_template(value).render(scope)


def as_text(value: Any) -> str:
    """How a value appears inside longer text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return jsontext.encode_text(value)


def _compile_string(text: str) -> Template:
    if "{{" not in text:
        return _Constant(text)
    pieces: list[str | Expression] = []
    position = 0
    for match in _EXPRESSION.finditer(text):
        if match.start() > position:
            pieces.append(text[position : match.start()])
        pieces.append(Expression(match.group(1)))
        position = match.end()
    if position < len(text):
        pieces.append(text[position:])
    unclosed = "".join(p for p in pieces if isinstance(p, str))
    if "{{" in unclosed:
        raise TemplateError(f"unclosed '{{{{' in template {text!r}", template=text)
    if len(pieces) == 1 and isinstance(pieces[0], Expression):
        return pieces[0]
    return _Text(pieces)


@lru_cache(maxsize=4096)
def _compile_expression(source: str) -> tuple[jsonpath.JSONPath, bool, tuple[str, ...] | None]:
    root = _ROOT.match(source)
    if not source:
        raise TemplateError("empty expression '{{ }}'", expression=source)
    if root is None:
        raise TemplateError(
            f"expression {source!r} must start with a variable: "
            + ", ".join(f"${name}" for name in ROOTS),
            expression=source,
        )
    if root.group(1) not in ROOTS:
        raise TemplateError(
            f"unknown variable ${root.group(1)} in {source!r} (known: "
            + ", ".join(f"${name}" for name in ROOTS)
            + ")",
            expression=source,
        )
    rest = source[root.end() :]
    if rest and rest[0] not in ".[":
        raise TemplateError(f"expected '.' or '[' after ${root.group(1)} in {source!r}")
    try:
        path = parse_jsonpath(f"$.{root.group(1)}{rest}")
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # noqa: BLE001
        # jsonpath-ng raises plain Exception for some syntax errors.
        raise TemplateError(f"invalid expression {source!r}: {exc}", expression=source) from None
    return path, _is_definite(path), _names(path)


def _names(path: jsonpath.JSONPath) -> tuple[str, ...] | None:
    """The field names of a path made only of ``$`` and single names (``$.context.body.id``),
    which render without jsonpath-ng's machinery; ``None`` for any other path."""
    if isinstance(path, jsonpath.Root):
        return ()
    if isinstance(path, jsonpath.Child):
        left, right = _names(path.left), _names(path.right)
        return None if left is None or right is None else left + right
    if type(path) is jsonpath.Fields and len(path.fields) == 1 and path.fields[0] != "*":
        return (path.fields[0],)
    return None


def _is_definite(path: jsonpath.JSONPath) -> bool:
    """True when the path can match at most one value (names and integer indexes only)."""
    if isinstance(path, (jsonpath.Root, jsonpath.This)):
        return True
    if isinstance(path, jsonpath.Child):
        return _is_definite(path.left) and _is_definite(path.right)
    if isinstance(path, jsonpath.Fields):
        return len(path.fields) == 1 and path.fields[0] != "*"
    if isinstance(path, jsonpath.Index):
        return len(getattr(path, "indices", [0])) == 1
    return False


__all__ = ["ROOTS", "Template", "as_text", "compile_template", "render_template"]
