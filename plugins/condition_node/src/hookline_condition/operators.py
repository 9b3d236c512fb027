"""The operators a comparison can use, and the table that holds them.

An operator is a function ``(left, right, options) -> bool`` over resolved JSON values. It
raises :class:`~hookline_condition.values.Incomparable` (a ``TypeError``) with a sentence for
the user when the values cannot be compared. Other plugins add operators through the
``register_condition_operators`` hook (:mod:`hookline_condition.hookspecs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from hookline import PluginError
from hookline_condition import regexes
from hookline_condition.values import (
    TYPE_NAMES,
    Incomparable,
    as_instant,
    as_text,
    described,
    fold,
    is_number,
    kind,
    loosen,
)


@dataclass(frozen=True)
class Options:
    """A comparison's options. ``case_sensitive=False`` compares text case-insensitively;
    ``loose=True`` converts numeric strings to numbers and ``"true"``/``"false"`` to booleans
    (and, for text operators, numbers and booleans to text)."""

    case_sensitive: bool = True
    loose: bool = False


#: Checks a literal ``right`` when the workflow is saved: returns a problem sentence or ``None``.
RightCheck = Callable[[Any], "str | None"]
OperatorFunction = Callable[[Any, Any, Options], bool]


@dataclass(frozen=True)
class Operator:
    """One operator. ``unary`` operators take no ``right``. ``check_right`` validates a literal
    (non-template) ``right`` when the workflow is saved."""

    name: str
    function: OperatorFunction
    description: str = ""
    unary: bool = False
    check_right: RightCheck | None = None


# --- equality and ordering ------------------------------------------------------------------


def _prepare(left: Any, right: Any, options: Options) -> tuple[Any, Any]:
    if options.loose:
        left, right = loosen(left), loosen(right)
    if not options.case_sensitive:
        left, right = fold(left), fold(right)
    return left, right


def equals(left: Any, right: Any) -> bool:
    """Equal values of the same kind, all the way down (1 equals 1.0; "1" does not equal 1,
    and [1] does not equal [true])."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    if kind(left) != kind(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(equals(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(equals(left[k], right[k]) for k in left)
    return bool(left == right)


def _ordered(left: Any, right: Any) -> tuple[Any, Any]:
    if (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
        return left, right
    raise Incomparable(
        f"{described(left)} and {described(right)} cannot be ordered; compare two numbers or two strings"
    )


def _eq(left: Any, right: Any, options: Options) -> bool:
    return equals(*_prepare(left, right, options))


def _ordering(test: Callable[[Any, Any], bool]) -> OperatorFunction:
    def compare(left: Any, right: Any, options: Options) -> bool:
        a, b = _ordered(*_prepare(left, right, options))
        return test(a, b)

    return compare


def _between(left: Any, right: Any, options: Options) -> bool:
    problem = _range_problem(right)
    if problem:
        raise Incomparable(problem)
    value, low = _ordered(*_prepare(left, right[0], options))
    value, high = _ordered(*_prepare(left, right[1], options))
    return bool(low <= value <= high)


def _range_problem(right: Any) -> str | None:
    if isinstance(right, list) and len(right) == 2:
        return None
    return f"between needs right to be [low, high], not {described(right)}"


# --- membership -----------------------------------------------------------------------------


def _contains(left: Any, right: Any, options: Options) -> bool:
    """Substring of a string, element of an array, or key of an object."""
    if isinstance(left, str):
        text = as_text(right, loose=options.loose, role="what a string contains")
        if not options.case_sensitive:
            return text.casefold() in left.casefold()
        return text in left
    left, right = _prepare(left, right, options)
    if isinstance(left, list):
        return any(equals(item, right) for item in left)
    if isinstance(left, dict):
        return isinstance(right, str) and right in left
    raise Incomparable(f"{described(left)} cannot contain anything; use a string, array or object")


def _in(left: Any, right: Any, options: Options) -> bool:
    return _contains(right, left, options)


# --- text -----------------------------------------------------------------------------------


def _text_test(test: Callable[[str, str], bool], name: str) -> OperatorFunction:
    def compare(left: Any, right: Any, options: Options) -> bool:
        subject = as_text(left, loose=options.loose, role=f"left of {name}")
        part = as_text(right, loose=options.loose, role=f"right of {name}")
        if not options.case_sensitive:
            subject, part = subject.casefold(), part.casefold()
        return test(subject, part)

    return compare


def _regex(left: Any, right: Any, options: Options) -> bool:
    subject = as_text(left, loose=options.loose, role="left of regex")
    if not isinstance(right, str):
        raise Incomparable(f"right of regex must be a pattern string, not {described(right)}")
    return regexes.search(right, subject, case_sensitive=options.case_sensitive)


# --- presence, emptiness, booleans, types ---------------------------------------------------


def _is_empty(left: Any, right: Any, options: Options) -> bool:
    if left is None:
        return True
    if isinstance(left, (str, list, dict)):
        return len(left) == 0
    raise Incomparable(f"{described(left)} is neither empty nor non-empty; use it with a string, array or object")


def _is_true(left: Any, right: Any, options: Options) -> bool:
    return (loosen(left) if options.loose else left) is True


def _is_false(left: Any, right: Any, options: Options) -> bool:
    return (loosen(left) if options.loose else left) is False


def _is_type(left: Any, right: Any, options: Options) -> bool:
    problem = _type_problem(right)
    if problem:
        raise Incomparable(problem)
    value = loosen(left) if options.loose else left
    if right == "integer":
        return is_number(value) and float(value).is_integer()
    return kind(value) == right


def _type_problem(right: Any) -> str | None:
    if right in TYPE_NAMES:
        return None
    return f"is_type needs right to be one of {', '.join(TYPE_NAMES)}; got {described(right)}"


# --- length ---------------------------------------------------------------------------------


def _length(test: Callable[[int, Any], bool], name: str) -> OperatorFunction:
    def compare(left: Any, right: Any, options: Options) -> bool:
        if not isinstance(left, (str, list, dict)):
            raise Incomparable(f"{described(left)} has no length; {name} needs a string, array or object")
        limit = loosen(right) if options.loose else right
        if not (is_number(limit) and float(limit).is_integer()):
            raise Incomparable(f"right of {name} must be a whole number, not {described(right)}")
        return test(len(left), limit)

    return compare


# --- dates and times ------------------------------------------------------------------------


def _instant(test: Callable[[Any, Any], bool]) -> OperatorFunction:
    def compare(left: Any, right: Any, options: Options) -> bool:
        if options.loose:
            left, right = loosen(left), loosen(right)
        return test(as_instant(left, role="left"), as_instant(right, role="right"))

    return compare


def _not(function: OperatorFunction) -> OperatorFunction:
    return lambda left, right, options: not function(left, right, options)


def _builtin() -> dict[str, Operator]:
    regex_check: RightCheck = regexes.pattern_problem
    items = [
        Operator("eq", _eq, "equal: same JSON kind and value, at any depth (1 equals 1.0)"),
        Operator("ne", _not(_eq), "not eq"),
        Operator("gt", _ordering(lambda a, b: a > b), "greater than (two numbers, or two strings by code point)"),
        Operator("gte", _ordering(lambda a, b: a >= b), "greater than or equal"),
        Operator("lt", _ordering(lambda a, b: a < b), "less than"),
        Operator("lte", _ordering(lambda a, b: a <= b), "less than or equal"),
        Operator("between", _between, "low <= left <= high, right is [low, high]", check_right=_range_problem),
        Operator("in", _in, "left is an element of the array right, a substring of the string right, or a key of the object right"),
        Operator("not_in", _not(_in), "not in"),
        Operator("contains", _contains, "right is a substring, element or key of left"),
        Operator("not_contains", _not(_contains), "not contains"),
        Operator("starts_with", _text_test(str.startswith, "starts_with"), "the string left starts with right"),
        Operator("not_starts_with", _not(_text_test(str.startswith, "not_starts_with")), "not starts_with"),
        Operator("ends_with", _text_test(str.endswith, "ends_with"), "the string left ends with right"),
        Operator("not_ends_with", _not(_text_test(str.endswith, "not_ends_with")), "not ends_with"),
        Operator("regex", _regex, "the pattern right matches somewhere in the string left", check_right=regex_check),
        Operator("not_regex", _not(_regex), "not regex", check_right=regex_check),
        Operator("exists", lambda left, right, options: left is not None, "left is not null", unary=True),
        Operator("not_exists", lambda left, right, options: left is None, "left is null", unary=True),
        Operator("is_null", lambda left, right, options: left is None, "left is null", unary=True),
        Operator("is_not_null", lambda left, right, options: left is not None, "left is not null", unary=True),
        Operator("is_empty", _is_empty, "null, \"\", [] or {}", unary=True),
        Operator("is_not_empty", _not(_is_empty), "a non-empty string, array or object", unary=True),
        Operator("is_true", _is_true, "left is true", unary=True),
        Operator("is_false", _is_false, "left is false", unary=True),
        Operator("is_type", _is_type, "left is of the JSON kind right", check_right=_type_problem),
        Operator("length_eq", _length(lambda n, m: n == m, "length_eq"), "len(left) == right"),
        Operator("length_ne", _length(lambda n, m: n != m, "length_ne"), "len(left) != right"),
        Operator("length_gt", _length(lambda n, m: n > m, "length_gt"), "len(left) > right"),
        Operator("length_gte", _length(lambda n, m: n >= m, "length_gte"), "len(left) >= right"),
        Operator("length_lt", _length(lambda n, m: n < m, "length_lt"), "len(left) < right"),
        Operator("length_lte", _length(lambda n, m: n <= m, "length_lte"), "len(left) <= right"),
        Operator("date_before", _instant(lambda a, b: a < b), "the time left is before the time right"),
        Operator("date_after", _instant(lambda a, b: a > b), "the time left is after the time right"),
        Operator("date_same", _instant(lambda a, b: a == b), "the same instant"),
    ]
    return {operator.name: operator for operator in items}


#: The operators this plugin ships, read-only.
BUILTIN_OPERATORS: Mapping[str, Operator] = MappingProxyType(_builtin())


class OperatorTable(Mapping[str, Operator]):
    """The operators one host knows: the built-in ones plus what plugins registered through
    ``register_condition_operators``. Built once per plugin manager; never shared globally."""

    def __init__(self) -> None:
        self._operators: dict[str, Operator] = dict(BUILTIN_OPERATORS)
        self._owners: dict[str, str] = {name: "condition" for name in BUILTIN_OPERATORS}

    def __getitem__(self, name: str) -> Operator:
        return self._operators[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._operators)

    def __len__(self) -> int:
        return len(self._operators)

    def owner(self, name: str) -> str:
        return self._owners[name]

    def registrar(self, plugin: str) -> Callable[..., None]:
        """The ``register`` callback handed to ``plugin``'s ``register_condition_operators``."""

        def register(
            name: str,
            function: OperatorFunction,
            *,
            description: str = "",
            unary: bool = False,
            check_right: RightCheck | None = None,
        ) -> None:
            if not isinstance(name, str) or not name.isidentifier() or name.lower() != name:
                raise PluginError(
                    f"plugin {plugin!r} registered condition operator {name!r}; names are lower-case "
                    "identifiers (letters, digits, _)"
                )
            if not callable(function):
                raise PluginError(f"plugin {plugin!r} registered condition operator {name!r} with {function!r}, not a function")
            if name in self._operators:
                raise PluginError(
                    f"condition operator {name!r} from plugin {plugin!r} is already registered by plugin "
                    f"{self._owners[name]!r}; choose another name",
                    kind="condition operator",
                    name=name,
                    plugins=[self._owners[name], plugin],
                )
            self._operators[name] = Operator(name, function, description, unary, check_right)
            self._owners[name] = plugin

        return register


def evaluate(operator: Operator, left: Any, right: Any, options: Options) -> bool:
    """Run an operator; its answer must be a bool (``Incomparable`` propagates)."""
    outcome = operator.function(left, right, options)
    if not isinstance(outcome, bool):
        raise TypeError(f"condition operator {operator.name!r} returned {outcome!r}, not true or false")
    return outcome


__all__ = ["BUILTIN_OPERATORS", "Incomparable", "Operator", "OperatorTable", "Options", "equals", "evaluate"]
