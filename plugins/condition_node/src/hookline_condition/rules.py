"""Rules: nested ``and``/``or``/``not`` groups of comparisons. Their schema, their checks at
save time, and their evaluation with a record of every comparison made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from hookline import NodeError
from hookline_condition.operators import Operator, Options, evaluate
from hookline_condition.values import Incomparable

#: How deep groups may nest: deep enough for any real rule, shallow enough for Python's stack.
MAX_DEPTH = 32
GROUP_KEYS = ("and", "or", "not")


#: The first operators, in the order error messages have always listed them; the rest follow
#: in alphabetical order.
_FIRST = ("contains", "eq", "gt", "gte", "lt", "lte", "ne")


def operator_names(operators: Mapping[str, Operator]) -> list[str]:
    """Operator names in the order ``'x' is not one of [...]`` lists them."""
    return [name for name in _FIRST if name in operators] + sorted(set(operators) - set(_FIRST))


def rule_schema(operators: Mapping[str, Operator]) -> dict[str, Any]:
    """A group or a comparison. if/then/else rather than oneOf, so that an error names what is
    wrong with the kind of rule written, not every kind it is not. An unknown ``op`` is refused
    at its location, listing the known operators."""
    group = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/rule"}}
    comparison = {
        "type": "object",
        "required": ["left", "op"],
        "additionalProperties": False,
        "properties": {
            "left": {},
            "op": {"enum": operator_names(operators)},
            "right": {},
            "case_sensitive": {"type": "boolean"},
            "loose": {"type": "boolean"},
        },
    }

    def only(key: str, schema: Any) -> dict[str, Any]:
        return {"additionalProperties": False, "properties": {key: schema}}

    return {
        "type": "object",
        "if": {"required": ["and"]},
        "then": only("and", group),
        "else": {
            "if": {"required": ["or"]},
            "then": only("or", group),
            "else": {"if": {"required": ["not"]}, "then": only("not", {"$ref": "#/$defs/rule"}), "else": comparison},
        },
    }


def _is_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, list):
        return any(_is_template(item) for item in value)
    if isinstance(value, dict):
        return any(_is_template(item) for item in value.values())
    return False


def _walk(rule: Mapping[str, Any], at: str, depth: int = 0) -> Iterator[tuple[str, Mapping[str, Any], int]]:
    yield at, rule, depth
    for key in GROUP_KEYS:
        if key in rule:
            children = rule[key] if key != "not" else [rule[key]]
            for index, child in enumerate(children):
                yield from _walk(child, f"{at}.{key}[{index}]" if key != "not" else f"{at}.not", depth + 1)


def rule_problems(rule: Mapping[str, Any], at: str, operators: Mapping[str, Operator]) -> Iterator[str]:
    """What the schema cannot say: unknown operators (listing the known ones), a ``right``
    given to or missing from an operator, a literal ``right`` the operator refuses (an invalid
    regular expression), nesting deeper than :data:`MAX_DEPTH`."""
    for where, item, depth in _walk(rule, at):
        if depth > MAX_DEPTH:
            yield f"{where}: rules nest more than {MAX_DEPTH} levels deep"
            return
        if any(key in item for key in GROUP_KEYS):
            continue
        name = item["op"]
        operator = operators.get(name)
        if operator is None:
            yield f"{where}.op: unknown operator {name!r} (known operators: {', '.join(sorted(operators))})"
            continue
        if operator.unary and "right" in item:
            yield f"{where}.right: operator {name!r} takes no 'right'; remove it"
        elif not operator.unary and "right" not in item:
            yield f"{where}: operator {name!r} needs a 'right' value"
        elif operator.check_right is not None and not _is_template(item["right"]):
            problem = operator.check_right(item["right"])
            if problem:
                yield f"{where}.right: {problem}"


@dataclass
class Evaluation:
    """The comparisons made while evaluating rules, in order, for the job result."""

    operators: Mapping[str, Operator]
    checks: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def rule(self, rule: Mapping[str, Any], at: str) -> bool:
        """Evaluate a rule; groups stop at the first rule that decides them."""
        if "and" in rule:
            return all(self.rule(child, f"{at}.and[{i}]") for i, child in enumerate(rule["and"]))
        if "or" in rule:
            return any(self.rule(child, f"{at}.or[{i}]") for i, child in enumerate(rule["or"]))
        if "not" in rule:
            return not self.rule(rule["not"], f"{at}.not")
        return self._comparison(rule, at)

    def _comparison(self, rule: Mapping[str, Any], at: str) -> bool:
        name, left, right = rule["op"], rule["left"], rule.get("right")
        options = Options(case_sensitive=rule.get("case_sensitive", True), loose=rule.get("loose", False))
        try:
            outcome = evaluate(self.operators[name], left, right, options)
        except Incomparable as exc:
            raise NodeError(f"cannot evaluate {name}: {exc}", left=left, op=name, right=right, at=at) from None
        check: dict[str, Any] = {"left": left, "op": name, "right": right, "result": outcome}
        if not options.case_sensitive:
            check["case_sensitive"] = False
        if options.loose:
            check["loose"] = True
        check.update(self.extra)
        self.checks.append(check)
        return outcome
