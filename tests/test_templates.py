"""``{{ }}`` templates: type preservation, text rendering, JSONPath rules, errors."""

from __future__ import annotations

import pytest

from hookline.errors import TemplateError
from hookline.templates import Expression, compile_template, render_template

SCOPE = {
    "context": {
        "body": {"amount": 150, "id": "A-1", "items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 5}], "ok": True},
        "headers": {"x-request-id": "r-1"},
        "query": {"q": None},
    },
    "nodes": {"check": {"result": False}},
    "execution": {"id": 7},
    "workflow": {"key": "order-paid", "version": 3},
    "system": {"now": "2026-11-22T10:00:00+00:00"},
}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{{ $context.body.amount }}", 150),
        ("{{$context.body.ok}}", True),
        ("{{ $context.body.items[1] }}", {"sku": "y", "qty": 5}),
        ("{{ $context.body.items[*].sku }}", ["x", "y"]),
        ("{{ $context.body.items[?(@.qty > 3)].sku }}", ["y"]),
        ("{{ $context.body.items[5].sku }}", None),
        ("{{ $context.headers['x-request-id'] }}", "r-1"),
        ("{{ $nodes.check.result }}", False),
        ("{{ $nodes.missing.result }}", None),
        ("{{ $execution.id }}", 7),
        ("{{ $workflow.key }}", "order-paid"),
        ("{{ $system.now }}", "2026-11-22T10:00:00+00:00"),
        ("{{ $context.body..sku }}", ["x", "y"]),
    ],
)
def test_a_whole_string_expression_keeps_the_type(template: str, expected: object) -> None:
    assert render_template(template, SCOPE) == expected


@pytest.mark.parametrize(
    "template, expected",
    [
        ("Order {{ $context.body.id }} for {{ $context.body.amount }}", "Order A-1 for 150"),
        ("ok={{ $context.body.ok }} q=[{{ $context.query.q }}]", "ok=true q=[]"),
        ("item: {{ $context.body.items[0] }}", 'item: {"sku":"x","qty":2}'),
        ("no templates here", "no templates here"),
        ("{{ $workflow.key }}-{{ $workflow.version }}", "order-paid-3"),
    ],
)
def test_text_with_expressions_renders_as_text(template: str, expected: str) -> None:
    assert render_template(template, SCOPE) == expected


def test_nested_values_are_walked_and_keys_left_alone() -> None:
    value = {"{{ $context.body.id }}": ["{{ $context.body.amount }}", {"deep": "{{ $execution.id }}"}], "n": 1}
    assert render_template(value, SCOPE) == {"{{ $context.body.id }}": [150, {"deep": 7}], "n": 1}


def test_static_values_are_returned_as_they_are() -> None:
    value = {"a": [1, 2], "b": "text"}
    template = compile_template(value)
    assert template.is_static
    assert template.render(SCOPE) == value


def test_expressions_are_compiled_once() -> None:
    first = Expression("$context.body.amount")
    second = Expression("  $context.body.amount ")
    assert first._path is second._path  # the parsed JSONPath is shared


@pytest.mark.parametrize(
    "template, fragment",
    [
        ("{{ }}", "empty expression"),
        ("{{ context.body }}", "must start with a variable"),
        ("{{ $body.amount }}", "unknown variable $body"),
        ("{{ $contextbody }}", "unknown variable $contextbody"),
        ("{{ $context.body[ }}", "invalid expression"),
        ("Total {{ $context.body.amount", "unclosed"),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError, match=fragment.replace("$", r"\$").replace("[", r"\[")):
        compile_template(template)


def test_template_errors_know_where_they_are() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template({"body": {"items": ["ok", "{{ $nope }}"]}})
    assert caught.value.path == ["body", "items", 1]


# Names-only paths render without jsonpath-ng: the same values as jsonpath-ng, whatever the data.
from hypothesis import given, settings, strategies as st  # noqa: E402

from hookline.templates import Expression, _compile_expression  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c d", "0"]), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["a", "b", "c d", "0"]), _json, max_size=3),
       names=st.lists(st.sampled_from(["a", "b", "c d", "0"]), min_size=1, max_size=4))
def test_names_only_paths_render_as_jsonpath_ng_does(data: dict, names: list[str]) -> None:
    source = "$context" + "".join(f"['{name}']" for name in names)
    path, definite, fast = _compile_expression(source)
    assert definite and fast == ("context", *names)
    matches = path.find({"context": data})
    assert Expression(source).render({"context": data}) == (matches[0].value if matches else None)
