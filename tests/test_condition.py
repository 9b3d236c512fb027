"""The condition plugin's operators and options, one by one, including hostile input."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hookline_condition import BUILTIN_OPERATORS, Incomparable, Options
from hookline_condition.operators import evaluate
from hookline_condition.regexes import MAX_PATTERN_LENGTH, MAX_SUBJECT_LENGTH, pattern_problem


def compare(left: Any, op: str, right: Any = None, **options: bool) -> bool:
    return evaluate(BUILTIN_OPERATORS[op], left, right, Options(**options))


OPTIONS_CASES: list[tuple[Any, str, Any, dict[str, bool], bool]] = [
    # eq / ne
    (1, "eq", 1.0, {}, True),
    ("1", "eq", 1, {}, False),
    ("1", "eq", 1, {"loose": True}, True),
    (" 2.5 ", "eq", 2.5, {"loose": True}, True),
    ("true", "eq", True, {}, False),
    ("TRUE", "eq", True, {"loose": True}, True),
    (True, "eq", 1, {}, False),
    ([1, {"a": [2]}], "eq", [1.0, {"a": [2]}], {}, True),
    ([1], "eq", [True], {}, False),
    (["1", "x"], "eq", [1, "x"], {"loose": True}, True),
    ({"a": 1}, "ne", {"a": 1, "b": 2}, {}, True),
    (None, "eq", None, {}, True),
    ("Paid", "eq", "paid", {}, False),
    ("Paid", "eq", "paid", {"case_sensitive": False}, True),
    ({"s": "Straße"}, "eq", {"s": "STRASSE"}, {"case_sensitive": False}, True),
    ("Paid", "ne", "paid", {"case_sensitive": False}, False),
    ("nan", "eq", "NaN", {"loose": True}, False),  # not a number: stays text
    # ordering
    (150, "gt", 100, {}, True),
    (100, "gte", 100, {}, True),
    ("apple", "lt", "banana", {}, True),
    (2.5, "lte", 2, {}, False),
    ("10", "lt", "9", {}, True),
    ("10", "lt", "9", {"loose": True}, False),
    ("10", "gt", 9, {"loose": True}, True),
    ("b", "gt", "A", {"case_sensitive": False}, True),
    ("b", "lt", "A", {}, False),
    # between
    (5, "between", [1, 10], {}, True),
    (10, "between", [1, 10], {}, True),
    (11, "between", [1, 10], {}, False),
    ("5", "between", ["1", "10"], {"loose": True}, True),
    ("m", "between", ["a", "z"], {}, True),
    # in / not_in
    ("b", "in", ["a", "b"], {}, True),
    ("B", "in", ["a", "b"], {"case_sensitive": False}, True),
    ("2", "in", [1, 2], {"loose": True}, True),
    ("2", "in", [1, 2], {}, False),
    ("ell", "in", "hello", {}, True),
    ("id", "in", {"id": 1}, {}, True),
    ("c", "not_in", ["a", "b"], {}, True),
    ("a", "not_in", ["a", "b"], {}, False),
    # contains / not_contains
    ("hello world", "contains", "world", {}, True),
    ("hello world", "contains", "WORLD", {"case_sensitive": False}, True),
    ("order 42", "contains", 42, {"loose": True}, True),
    ([1, 2, 3], "contains", 2.0, {}, True),
    ([[1]], "contains", [True], {}, False),
    (["A"], "contains", "a", {"case_sensitive": False}, True),
    ({"id": 1}, "contains", "id", {}, True),
    ({"id": 1}, "contains", 1, {}, False),
    ("abc", "not_contains", "x", {}, True),
    ([1], "not_contains", 1, {}, False),
    # starts / ends
    ("invoice-1", "starts_with", "invoice", {}, True),
    ("Invoice-1", "starts_with", "invoice", {}, False),
    ("Invoice-1", "starts_with", "invoice", {"case_sensitive": False}, True),
    (12345, "starts_with", "12", {"loose": True}, True),
    ("a.pdf", "not_starts_with", "b", {}, True),
    ("a.pdf", "ends_with", ".pdf", {}, True),
    ("a.PDF", "ends_with", ".pdf", {"case_sensitive": False}, True),
    ("a.pdf", "not_ends_with", ".pdf", {}, False),
    # regex
    ("order-123", "regex", r"^order-\d+$", {}, True),
    ("ORDER-1", "regex", r"^order-\d+$", {}, False),
    ("ORDER-1", "regex", r"^order-\d+$", {"case_sensitive": False}, True),
    ("x order-1 y", "regex", r"order-\d", {}, True),  # searches, not anchored
    (42, "regex", r"^\d+$", {"loose": True}, True),
    ("abc", "not_regex", r"\d", {}, True),
    ("a1c", "not_regex", r"\d", {}, False),
    # presence
    (0, "exists", None, {}, True),
    (None, "exists", None, {}, False),
    (None, "not_exists", None, {}, True),
    ("", "not_exists", None, {}, False),
    (None, "is_null", None, {}, True),
    (False, "is_null", None, {}, False),
    ([], "is_not_null", None, {}, True),
    (None, "is_not_null", None, {}, False),
    # emptiness
    (None, "is_empty", None, {}, True),
    ("", "is_empty", None, {}, True),
    ([], "is_empty", None, {}, True),
    ({}, "is_empty", None, {}, True),
    (" ", "is_empty", None, {}, False),
    ([0], "is_not_empty", None, {}, True),
    ("", "is_not_empty", None, {}, False),
    # booleans
    (True, "is_true", None, {}, True),
    ("true", "is_true", None, {}, False),
    ("True", "is_true", None, {"loose": True}, True),
    (1, "is_true", None, {}, False),
    (False, "is_false", None, {}, True),
    ("false", "is_false", None, {"loose": True}, True),
    (None, "is_false", None, {}, False),
    # types
    ("x", "is_type", "string", {}, True),
    (1.5, "is_type", "number", {}, True),
    (2.0, "is_type", "integer", {}, True),
    (2.5, "is_type", "integer", {}, False),
    (True, "is_type", "number", {}, False),
    (True, "is_type", "boolean", {}, True),
    ([1], "is_type", "array", {}, True),
    ({}, "is_type", "object", {}, True),
    (None, "is_type", "null", {}, True),
    ("12", "is_type", "number", {}, False),
    ("12", "is_type", "integer", {"loose": True}, True),
    # length
    ("abc", "length_eq", 3, {}, True),
    ([1, 2], "length_ne", 3, {}, True),
    ({"a": 1}, "length_gt", 0, {}, True),
    ("abc", "length_gte", 4, {}, False),
    ([], "length_lt", 1, {}, True),
    ("abcd", "length_lte", "4", {"loose": True}, True),
    # dates
    ("2024-05-01", "date_before", "2024-05-02T00:00:00Z", {}, True),
    ("2024-05-01T12:00:00+02:00", "date_same", "2024-05-01T10:00:00Z", {}, True),
    ("2024-05-01T12:00:00", "date_same", "2024-05-01T12:00:00Z", {}, True),  # no offset: UTC
    (1714564800, "date_same", "2024-05-01T12:00:00Z", {}, True),  # epoch seconds
    (1714564800.5, "date_after", "2024-05-01T12:00:00Z", {}, True),
    ("1714564800", "date_same", "2024-05-01T12:00:00Z", {"loose": True}, True),
    ("2024-05-02", "date_after", "2024-05-01", {}, True),
    ("2024-05-02", "date_before", "2024-05-01", {}, False),
]


def test_every_builtin_operator_has_a_case() -> None:
    assert {op for _, op, _, _, _ in OPTIONS_CASES} == set(BUILTIN_OPERATORS)


@pytest.mark.parametrize("left, op, right, options, expected", OPTIONS_CASES)
def test_operators(left: Any, op: str, right: Any, options: dict[str, bool], expected: bool) -> None:
    assert compare(left, op, right, **options) is expected


@pytest.mark.parametrize(
    "left, op, right, options, message",
    [
        (None, "gt", 100, {}, "null (null) and 100 (number) cannot be ordered"),
        ("150", "gt", 100, {}, '"150" (string) and 100 (number) cannot be ordered'),
        ("many", "gt", 1, {"loose": True}, '"many" (string) and 1 (number) cannot be ordered'),
        (True, "lt", 2, {}, "true (boolean) and 2 (number) cannot be ordered"),
        ([1], "gte", [0], {}, "[1] (array) and [0] (array) cannot be ordered"),
        (5, "contains", 1, {}, "5 (number) cannot contain anything"),
        ("abc", "contains", 1, {}, "what a string contains must be a string, not 1 (number); set loose: true"),
        (1, "in", 5, {}, "5 (number) cannot contain anything"),
        (5, "between", 1, {}, "between needs right to be [low, high], not 1 (number)"),
        (5, "between", [1, "z"], {}, '5 (number) and "z" (string) cannot be ordered'),
        (5, "starts_with", "5", {}, "left of starts_with must be a string, not 5 (number)"),
        ("a", "ends_with", None, {"loose": True}, "right of ends_with must be a string, not null (null)"),
        (5, "regex", "5", {}, "left of regex must be a string"),
        ("a", "regex", 5, {}, "right of regex must be a pattern string, not 5 (number)"),
        ("a", "regex", "(", {}, "invalid regular expression"),
        (5, "is_empty", None, {}, "5 (number) is neither empty nor non-empty"),
        (True, "is_not_empty", None, {}, "true (boolean) is neither empty nor non-empty"),
        ("x", "is_type", "text", {}, "is_type needs right to be one of string, number, integer"),
        (5, "length_eq", 1, {}, "5 (number) has no length"),
        ("abc", "length_gt", 1.5, {}, "right of length_gt must be a whole number, not 1.5 (number)"),
        ("yesterday", "date_before", "2024-01-01", {}, '"yesterday" (string) is not an ISO 8601 date or time'),
        (None, "date_after", "2024-01-01", {}, "left null (null) is not a date or time"),
        (10**20, "date_same", 0, {}, "is out of range for a Unix time in seconds"),
        ("2024-01-01", "date_same", "1700000000", {}, "is not an ISO 8601 date"),  # strict: text is not epoch
    ],
)
def test_incomparable_values_are_a_clear_error(
    left: Any, op: str, right: Any, options: dict[str, bool], message: str
) -> None:
    with pytest.raises(Incomparable) as caught:
        compare(left, op, right, **options)
    assert message in str(caught.value)


# --- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"(a+)+b", r"^(a|a?)+$", r"(x+x+)+y"])
def test_a_catastrophic_regex_is_stopped_quickly(pattern: str) -> None:
    subject = "a" * 5000 + "!" if "x" not in pattern else "x" * 5000
    started = time.monotonic()
    try:
        compare(subject, "regex", pattern)
    except Incomparable as exc:
        assert "was stopped" in str(exc)
    assert time.monotonic() - started < 2.0


def test_a_regex_over_a_long_text_is_refused_not_run() -> None:
    with pytest.raises(Incomparable, match=f"the limit for regex is {MAX_SUBJECT_LENGTH}"):
        compare("a" * (MAX_SUBJECT_LENGTH + 1), "regex", "a")


def test_a_long_pattern_is_refused() -> None:
    assert "the limit is 500" in (pattern_problem("a" * (MAX_PATTERN_LENGTH + 1)) or "")
    with pytest.raises(Incomparable, match="the limit is 500"):
        compare("a", "regex", "a" * (MAX_PATTERN_LENGTH + 1))


@pytest.mark.parametrize(
    "left, op, right, options, expected",
    [
        ("1e999", "eq", "1e999", {"loose": True}, True),  # infinity stays text
        ("9" * 5000, "gt", 1, {}, None),  # a huge digit string is text unless loose...
        ("9" * 5000, "eq", "9" * 5000, {"loose": True}, True),  # ...and loose keeps it text too (too long)
        ("\u0000abc", "contains", "abc", {}, True),
        ("ǅ", "eq", "ǆ", {"case_sensitive": False}, True),
    ],
)
def test_odd_input_does_not_crash(left: Any, op: str, right: Any, options: dict[str, bool], expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(Incomparable):
            compare(left, op, right, **options)
    else:
        assert compare(left, op, right, **options) is expected


def test_deeply_nested_values_compare() -> None:
    nested: Any = 1
    for _ in range(200):
        nested = [nested]
    assert compare(nested, "eq", nested) is True
