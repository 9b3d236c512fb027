"""The webhook trigger's parsers, unit by unit: Basic credentials (RFC 7617's vector and hostile
headers), nested query strings, parameter paths, declared-parameter coercion."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hookline_webhook.auth import MisconfiguredSecret, basic_matches, parse_basic
from hookline_webhook.params import ParameterError, apply_parameters, coerce, compile_parameters, parameter_problems
from hookline_webhook.paths import PathError, format_path, parse_path
from hookline_webhook.querystring import QueryError, parse_nested


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_rfc7617_example() -> None:
    assert parse_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == (b"Aladdin", b"open sesame")
    assert basic_matches("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", {"username": "Aladdin", "password": "open sesame"})


@pytest.mark.parametrize(
    "header, expected",
    [
        (basic("hook", "p:ss:word"), (b"hook", b"p:ss:word")),  # ':' in the password
        ("basic " + base64.b64encode(b"u:p").decode(), (b"u", b"p")),  # lower-case scheme
        ("BASIC   " + base64.b64encode(b"u:p").decode() + "  ", (b"u", b"p")),
        (basic("", ""), (b"", b"")),
        (basic("ünï", "çødé"), ("ünï".encode(), "çødé".encode())),
        (None, None),
        ("", None),
        ("Basic", None),
        ("Basic ", None),
        ("Bearer abc", None),
        ("Basic not*base64", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic " + base64.b64encode(b"u:p").decode()[:-1], None),  # broken padding
        ("Basic " + "QQ==" * 5000, None),
        ("Basic \x00\xff", None),
    ],
)
def test_basic_header_parsing(header: str | None, expected: Any) -> None:
    assert parse_basic(header) == expected


def test_both_fields_must_match() -> None:
    secret = {"username": "hook", "password": "s3cret"}
    assert basic_matches(basic("hook", "s3cret"), secret)
    assert not basic_matches(basic("hook", "s3cre"), secret)
    assert not basic_matches(basic("Hook", "s3cret"), secret)
    assert not basic_matches(basic("hook", "s3cret "), secret)
    assert not basic_matches(None, secret)


def test_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = {"username": "hook", "password": {"env": "HOOK_PASSWORD"}}
    with pytest.raises(MisconfiguredSecret, match="HOOK_PASSWORD is not set"):
        basic_matches(basic("hook", "x"), secret)
    monkeypatch.setenv("HOOK_PASSWORD", "from-env")
    assert basic_matches(basic("hook", "from-env"), secret)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1&a=2&a=3", {"a": ["1", "2", "3"]}),
        ("a[]=1&a[]=2", {"a": ["1", "2"]}),
        ("a[b]=1&a[c]=2", {"a": {"b": "1", "c": "2"}}),
        ("a.b=1", {"a": {"b": "1"}}),
        ("query[0].a=1&query[0].b=2&query[1].a=3", {"query": [{"a": "1", "b": "2"}, {"a": "3"}]}),
        ("a[1]=y&a[0]=x", {"a": ["x", "y"]}),
        ("a[2]=z", {"a": [None, None, "z"]}),
        ("x=&y", {"x": "", "y": ""}),
        ("k%5B0%5D=v&sp=a+b%20c", {"k": ["v"], "sp": "a b c"}),
        ("a[b][c][d]=deep", {"a": {"b": {"c": {"d": "deep"}}}}),
        ("a[5000]=x", {"a[5000]": "x"}),
        ("a=1&a[]=2", {"a": ["1", "2"]}),
        ("a[]=1&a=2", {"a": ["1", "2"]}),  # an index too large to be a list: kept as a plain name
    ],
)
def test_nested_query_strings(query: str, expected: dict[str, Any]) -> None:
    assert parse_nested(query) == expected


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("a=1&a[b]=2", "both as a value and as a container"),
        ("a[b]=1&a=2", "both as a value and as a container"),
        ("a[0]=1&a[b]=2", "mixes list and object syntax"),
        ("a=%ff", "not valid UTF-8"),
        ("&".join(f"k{i}=v" for i in range(1001)), "too many parameters"),
    ],
)
def test_hostile_or_contradictory_queries_are_refused(query: str, fragment: str) -> None:
    with pytest.raises(QueryError, match=fragment):
        parse_nested(query)


@pytest.mark.parametrize(
    "path, segments",
    [("a", ["a"]), ("b.c", ["b", "c"]), ("query[0].a", ["query", 0, "a"]), ("a[b].c", ["a", "b", "c"]), ("x-y", ["x-y"])],
)
def test_paths_round_trip(path: str, segments: list[Any]) -> None:
    assert parse_path(path) == segments
    assert parse_path(format_path(segments)) == segments


@pytest.mark.parametrize("path", ["", " ", ".a", "a.", "a..b", "a[", "a]", "a[9999]"])
def test_bad_paths(path: str) -> None:
    with pytest.raises(PathError):
        parse_path(path)


@pytest.mark.parametrize(
    "value, expected_type, from_text, result",
    [
        ("12", "integer", True, 12),
        ("-3", "integer", True, -3),
        ("1.5", "number", True, 1.5),
        (" -1.5e3 ", "number", True, -1500.0),
        (".5", "number", True, 0.5),
        ("5.", "number", True, 5.0),
        ("+12", "integer", True, 12),
        ("7", "number", True, 7),
        ("TRUE", "boolean", True, True),
        ("off", "boolean", True, False),
        ('{"a": 1}', "object", True, {"a": 1}),
        ("one", "array", True, ["one"]),
        (["a", "b"], "array", True, ["a", "b"]),
        ("text", "string", True, "text"),
        (3.0, "integer", False, 3),
        (2, "number", False, 2),
        ({"x": 1}, "object", True, {"x": 1}),
    ],
)
def test_coercion(value: Any, expected_type: str, from_text: bool, result: Any) -> None:
    assert coerce(value, expected_type, from_text=from_text) == result


@pytest.mark.parametrize(
    "value, expected_type, from_text, message",
    [
        ("12a", "integer", True, 'expected an integer, got "12a"'),
        # ASCII digits only: int() and float() would take these
        ("1_000", "integer", True, 'expected an integer, got "1_000"'),
        ("1_000", "number", True, 'expected a number, got "1_000"'),
        ("\u0663", "integer", True, "expected an integer"),  # ARABIC-INDIC DIGIT THREE
        ("\u0661.5", "number", True, "expected a number"),
        ("\uff11\uff12", "number", True, "expected a number"),  # FULLWIDTH DIGITS
        ("1e999", "number", True, "expected a finite number"),
        ("-Infinity", "number", True, "expected a finite number"),
        ("0x10", "number", True, "expected a number"),
        ("9" * 5000, "integer", True, "expected an integer"),
        ("", "number", True, "expected a number"),
        ("1.5", "integer", True, "expected an integer"),
        ("NaN", "number", True, "expected a finite number"),
        ("maybe", "boolean", True, "expected a boolean"),
        ("[1]", "object", True, "expected an object"),
        ("12", "integer", False, 'expected an integer, got string "12"'),
        (True, "integer", False, "expected an integer, got boolean true"),
        (["a"], "string", True, 'expected a string, got array ["a"]'),
        (1.5, "integer", False, "expected an integer"),
    ],
)
def test_coercion_failures_say_what_was_expected(value: Any, expected_type: str, from_text: bool, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        coerce(value, expected_type, from_text=from_text)
    assert message in str(caught.value)


def test_parameters_are_checked_coerced_in_place_and_named() -> None:
    config = {
        "query": [{"path": "page", "type": "integer", "required": True, "alias": "p"}, {"path": "tags", "type": "array"}],
        "headers": [{"path": "X-Signature", "required": True, "alias": "sig"}],
        "body": [{"path": "order.id", "required": True}, {"path": "order.total", "type": "number"}],
    }
    context = {
        "query": {"page": "3", "tags": "one"},
        "headers": {"x-signature": "abc"},
        "body": {"order": {"id": "A-1", "total": 9.5}},
    }
    values = apply_parameters(context, compile_parameters(config), body_is_text=False)
    assert values == {"p": 3, "tags": ["one"], "sig": "abc", "order.id": "A-1", "order.total": 9.5}
    assert context["query"] == {"page": 3, "tags": ["one"]}


def test_every_missing_and_invalid_parameter_is_listed() -> None:
    config = {
        "query": [{"path": "page", "type": "integer", "required": True}],
        "body": [{"path": "order.id", "required": True, "alias": "order_id"}, {"path": "n", "type": "integer"}],
        "headers": [{"path": "X-Key", "required": True}],
    }
    context = {"query": {"page": "x"}, "headers": {}, "body": {"n": "5"}}
    with pytest.raises(ParameterError) as caught:
        apply_parameters(context, compile_parameters(config), body_is_text=False)
    answer = caught.value.to_dict()
    assert answer["message"] == "Missing required parameter(s)"
    assert answer["missing"] == [{"in": "headers", "path": "X-Key"}, {"in": "body", "path": "order.id", "alias": "order_id"}]
    assert [(i["in"], i["path"], i["expected"]) for i in answer["invalid"]] == [("query", "page", "integer"), ("body", "n", "integer")]


def test_form_bodies_are_coerced_like_queries() -> None:
    params = compile_parameters({"body": [{"path": "n", "type": "integer"}]})
    assert apply_parameters({"body": {"n": "5"}}, params, body_is_text=True) == {"n": 5}


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"query": [{"path": "a..b"}]}, "query[0].path"),
        ({"headers": [{"path": "x.y"}]}, "a header parameter is a header name"),
        ({"body": [{"path": "a"}, {"path": "a"}]}, "declared twice"),
        ({"query": [{"path": "a"}], "body": [{"path": "a"}]}, "also used by query[0]; give one an alias"),
        ({"query": [{"path": "a", "alias": "x"}], "body": [{"path": "b", "alias": "x"}]}, "the name 'x'"),
    ],
)
def test_parameter_declarations_are_checked(config: dict[str, Any], fragment: str) -> None:
    problems = parameter_problems(config)
    assert any(fragment in problem for problem in problems), problems
