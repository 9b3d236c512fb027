"""The example workflows (``examples/workflows``, what ``./dev serve`` applies) as a sender sees them:
the README quick start's calls answer exactly what it shows, a form body works as well as JSON, and a
call the examples cannot take is refused with a 400 naming the field, never answered with a failed run
(``500 workflow_failed``) that the sender would retry for ever."""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES, REPO
from hookline.testing import HooklineTestApp
from hookline.workflow_files import read_workflow_files

# What a sender sees does not depend on the database; SQLite keeps these quick.
pytestmark = pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)


@pytest.fixture(autouse=True)
def http_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    """As ./dev serve runs the examples: the HTTP Request node may call 127.0.0.1 (read when the
    host is built, so before the ``hookline`` fixture)."""
    monkeypatch.setenv("HOOKLINE_HTTP_ALLOW", "127.0.0.1")


@pytest.fixture
async def examples(hookline: HooklineTestApp) -> HooklineTestApp:
    await hookline.host.workflows.apply_all(read_workflow_files(EXAMPLES))
    return hookline


def quick_start_calls() -> list[tuple[str, dict[str, Any], str]]:
    """The curl commands of the README's quick start: (path, request, the answer shown under it)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    lines = section.replace("\\\n", " ").splitlines()
    calls = []
    for line, answer in zip(lines, lines[1:]):
        if not line.startswith("curl "):
            continue
        assert answer.startswith("# "), f"README quick start: no answer shown under {line!r}"
        method, url, headers, data = "GET", "", {}, None
        args = iter(shlex.split(line)[1:])
        for arg in args:
            if arg == "-X":
                method = next(args)
            elif arg == "-H":
                name, _, value = next(args).partition(":")
                headers[name.strip()] = value.strip()
            elif arg == "-d":
                data = next(args)
            elif arg.startswith("http://"):
                url = arg
            else:
                assert arg == "-s", f"README quick start: curl option {arg!r} is not understood by this test"
        if data is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")  # as curl -d does
        calls.append((urlsplit(url).path, {"method": method, "headers": headers, "content": data}, answer[2:]))
    return calls


async def test_the_quick_start_calls_answer_what_the_readme_shows(examples: HooklineTestApp) -> None:
    calls = quick_start_calls()
    assert len(calls) >= 3  # two amounts, and a call refused
    for path, request, shown in calls:
        response = await examples.client.request(url=path, **request)
        # "..." in an answer shown stands for what changes from run to run (an execution's id)
        assert re.fullmatch(".*?".join(map(re.escape, shown.split("..."))), response.text), (response.text, shown)


@pytest.mark.parametrize(
    "request_options",
    [
        {"data": {"id": "A-1001", "amount": "150"}},
        {"files": {"id": (None, "A-1001"), "amount": (None, " 150 ")}},
        {"json": {"id": "A-1001", "amount": 150.0}},
    ],
    ids=["form", "multipart", "json-float"],
)
async def test_a_form_body_is_taken_like_json(examples: HooklineTestApp, request_options: dict[str, Any]) -> None:
    response = await examples.client.post("/api/webhooks/order-paid", **request_options)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "tier": "high", "order": "A-1001", "message": "Order A-1001 ships express"}


MISSING_BOTH = {
    "error": "missing_parameters",
    "message": "Missing required parameter(s)",
    "missing": [{"in": "body", "path": "id"}, {"in": "body", "path": "amount"}],
}


def invalid_amount(message: str) -> dict[str, Any]:
    return {
        "error": "invalid_parameters",
        "message": "Invalid parameter(s)",
        "invalid": [{"in": "body", "path": "amount", "expected": "number", "message": message}],
    }


@pytest.mark.parametrize(
    ("key", "request_options", "answer"),
    [
        ("order-paid", {}, MISSING_BOTH),
        ("order-paid", {"data": {}}, MISSING_BOTH),
        ("order-paid", {"json": {"id": "A-1", "amount": "abc"}}, invalid_amount('expected a number, got string "abc"')),
        ("order-paid", {"json": {"id": "A-1", "amount": "150"}}, invalid_amount('expected a number, got string "150"')),
        ("order-paid", {"data": {"id": "A-1", "amount": "abc"}}, invalid_amount('expected a number, got "abc"')),
        (
            "order-paid",
            {"json": {"amount": 150}},
            {"error": "missing_parameters", "message": "Missing required parameter(s)",
             "missing": [{"in": "body", "path": "id"}]},
        ),
        (
            "order-events",
            {},
            {"error": "missing_parameters", "message": "Missing required parameter(s)",
             "missing": [{"in": "body", "path": "amount"}]},
        ),
        ("order-events", {"json": {"amount": "lots"}}, invalid_amount('expected a number, got string "lots"')),
    ],
    ids=["empty", "empty-form", "json-abc", "json-string-150", "form-abc", "no-id", "async-empty", "async-lots"],
)
async def test_a_call_the_example_cannot_take_is_a_400_naming_the_field(
    examples: HooklineTestApp, key: str, request_options: dict[str, Any], answer: dict[str, Any]
) -> None:
    response = await examples.client.post(f"/api/webhooks/{key}", **request_options)
    assert (response.status_code, response.json()) == (400, answer)
    stored = await examples.api("GET", f"/api/executions?workflow={key}")
    assert stored.json()["items"] == []  # nothing ran, nothing to retry or replay


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)
form_values = st.text(max_size=12) | st.sampled_from(["150", "40", " 1e3 ", "-0", "1.5", "nan", "inf", "1e400", "0x10"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["order-paid", "order-events"]),
    body=st.fixed_dictionaries({}, optional={"id": json_values, "amount": json_values}) | json_values,
    form=st.none() | st.fixed_dictionaries({}, optional={"id": form_values, "amount": form_values}),
)
async def test_no_body_makes_an_example_fail_its_run(
    examples: HooklineTestApp, key: str, body: Any, form: dict[str, str] | None
) -> None:
    """Whatever the body, the sender gets an answer or a 400 to act on; the run itself never fails."""
    sent = {"data": form} if form is not None else {"json": body}
    response = await examples.client.post(f"/api/webhooks/{key}", **sent)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"] in ("missing_parameters", "invalid_parameters", "invalid_body")
        return
    execution = await examples.wait_for_execution(int(response.headers["x-hookline-execution"]))
    assert execution["status"] == "succeeded", execution["error"]
