"""The webhook trigger's "Samples" tab in the console (a plugin page of register_console_pages):
paste a sample or capture a request, tick the parameters found, save them into the trigger as a
new version. Through the in-process client, signed in like an operator."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from conftest import REPO
from console_support import csrf_of, sign_in
from hookline.testing import HooklineTestApp

ORDERS = {
    "key": "orders",
    "sync": True,
    "trigger": {
        "type": "webhook",
        "config": {
            "auth": {"basic": {"username": "shop", "password": "s3cret-pass"}},
            "body": [{"path": "order.id", "alias": "order_id", "required": True, "description": "kept"}],
        },
    },
    "nodes": [{"key": "reply", "type": "response", "config": {"body": "{{ $context.params }}"}}],
}
TAB = "/console/workflows/orders/pages/samples"
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


@pytest.fixture
async def console(hookline: HooklineTestApp) -> HooklineTestApp:
    assert (await sign_in(hookline.client)).status_code == 303
    await hookline.apply(ORDERS)
    return hookline


def form_fields(page: httpx.Response, source: str) -> dict[str, str]:
    """The tick-and-save form of ``source`` (paste or capture) as the browser would post it: every
    field by name, a checkbox only when checked."""
    form = re.search(rf'<form[^>]*id="{source}-parameters".*?</form>', page.text, re.S)
    assert form, f"no {source} parameters form on the page"
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form.group(0)):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or ('type="checkbox"' in tag and " checked" not in tag):
            continue
        fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for select in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form.group(0), re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', select[1])
        fields[select[0]] = chosen.group(1) if chosen else ""
    return fields


def paths_in(fields: dict[str, str]) -> dict[str, int]:
    return {fields[name]: int(name[1:].split(".")[0]) for name in fields if name.endswith(".path")}


async def parse(console: HooklineTestApp, kind: str, sample: str, into: str = "body") -> httpx.Response:
    page = await console.client.get(TAB)
    return await console.client.post(
        TAB, data={"csrf_token": csrf_of(page), "action": "parse", "kind": kind, "sample": sample, "into": into}
    )


async def test_the_tab_shows_on_webhook_workflows_only(console: HooklineTestApp) -> None:
    overview = await console.client.get("/console/workflows/orders")
    assert f'href="{TAB}"' in overview.text and ">Samples<" in overview.text
    tab = await console.client.get(TAB)
    assert tab.status_code == 200
    assert "Paste a sample" in tab.text and "Capture the next request" in tab.text
    assert "<script>" not in tab.text and not re.search(r"<[^>]+\s(on[a-z]+|style)=", tab.text)
    # every control has a label
    for control in re.findall(r'<(?:textarea|select|input)(?![^>]*type="hidden")[^>]*id="([^"]+)"', tab.text):
        assert f'for="{control}"' in tab.text, control


@pytest.mark.parametrize(
    ("kind", "sample", "into", "expected"),
    [
        ("url", "https://shop.example/hook?page=2&order[id]=A-1", "body", [("query", "page"), ("query", "order"), ("query", "order.id")]),
        ("json", '{"order": {"id": "A-1", "total": 12.5}, "paid": true}', "body", [("body", "order"), ("body", "order.id"), ("body", "order.total"), ("body", "paid")]),
        ("pairs", "x-shop=acme\nx-request-id=7", "headers", [("headers", "x-shop"), ("headers", "x-request-id")]),
    ],
)
async def test_each_kind_of_sample_gives_its_parameters(
    console: HooklineTestApp, kind: str, sample: str, into: str, expected: list[tuple[str, str]]
) -> None:
    page = await parse(console, kind, sample, into)
    assert page.status_code == 200, page.text
    fields = form_fields(page, "paste")
    found = sorted(paths_in(fields).items(), key=lambda item: item[1])
    assert [(fields[f"p{i}.part"], path) for path, i in found] == expected
    assert all(fields[f"p{i}.use"] == "1" for _, i in found)  # ticked by default
    if kind == "json":
        i = paths_in(fields)["order.total"]
        assert fields[f"p{i}.type"] == "number"
        declared = paths_in(fields)["order.id"]  # already in the trigger: shown with its settings
        assert fields[f"p{declared}.alias"] == "order_id" and fields[f"p{declared}.required"] == "1"


async def test_saving_ticked_parameters_makes_a_new_version_and_keeps_secrets(console: HooklineTestApp) -> None:
    page = await parse(console, "json", '{"order": {"id": "A-1", "total": 12.5}, "paid": true, "note": "x"}')
    fields = form_fields(page, "paste")
    at = paths_in(fields)
    del fields[f"p{at['note']}.use"]  # untick
    del fields[f"p{at['order']}.use"]
    fields[f"p{at['order.total']}.alias"] = "total"
    fields[f"p{at['order.total']}.required"] = "1"
    fields[f"p{at['paid']}.type"] = ""
    saved = await console.client.post(TAB, data={**fields, "csrf_token": csrf_of(page)})
    assert saved.status_code == 200, saved.text
    assert "version 2" in saved.text
    stored = await console.host.workflows.get("orders")
    assert stored["version"] == 2
    config = stored["definition"]["trigger"]["config"]
    assert config["body"] == [
        {"path": "order.id", "alias": "order_id", "required": True, "description": "kept"},
        {"path": "order.total", "alias": "total", "required": True, "type": "number"},
        {"path": "paid", "required": False},
    ]
    assert config["auth"]["basic"]["password"] == "s3cret-pass"  # the secret, not the mask
    # the new version is live: a call without the required total is refused
    refused = await console.webhook("orders", json={"order": {"id": "A-1"}}, auth=("shop", "s3cret-pass"))
    assert refused.status_code == 400 and refused.json()["error"] == "missing_parameters"


async def test_an_invalid_choice_shows_the_problems_and_saves_nothing(console: HooklineTestApp) -> None:
    page = await parse(console, "json", '{"a": 1, "b": 2}')
    fields = form_fields(page, "paste")
    at = paths_in(fields)
    fields[f"p{at['a']}.alias"] = "same"
    fields[f"p{at['b']}.alias"] = "same"
    refused = await console.client.post(TAB, data={**fields, "csrf_token": csrf_of(page)})
    assert refused.status_code == 422
    assert "Not saved" in refused.text and "same" in refused.text
    assert (await console.host.workflows.get("orders"))["version"] == 1
    nothing = {name: value for name, value in fields.items() if not name.endswith(".use")}
    empty = await console.client.post(TAB, data={**nothing, "csrf_token": csrf_of(page)})
    assert empty.status_code == 400 and "tick at least one parameter" in empty.text
    forged = await console.client.post(TAB, data={**fields, "p0.part": "cookies", "csrf_token": csrf_of(page)})
    assert forged.status_code == 400 and "part must be one of headers, query, body" in forged.text


@pytest.mark.parametrize(
    ("kind", "sample", "problem"),
    [
        ("json", "{nope", "not valid JSON"),
        ("json", "[]", "has no parameters"),
        ("url", "https://shop.example/hook", "has no query string"),
        ("pairs", "just text", "is not key=value"),
    ],
)
async def test_a_sample_that_cannot_be_parsed_is_a_400_naming_the_problem(
    console: HooklineTestApp, kind: str, sample: str, problem: str
) -> None:
    page = await parse(console, kind, sample)
    assert page.status_code == 400
    assert problem in html.unescape(page.text)
    assert 'aria-invalid="true"' in page.text
    assert html.escape(sample, quote=False) in page.text  # the sample is kept to be corrected


async def test_hostile_samples_are_escaped(console: HooklineTestApp) -> None:
    page = await parse(console, "json", '{"%s": "%s"}' % (HOSTILE.replace('"', '\\"'), HOSTILE.replace('"', '\\"')))
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>alert" not in page.text
    assert "&lt;img src=x" in page.text
    pairs = await parse(console, "pairs", HOSTILE)  # key '"><img src', value 'x onerror=...'
    assert pairs.status_code == 200 and "<img src=x" not in pairs.text and "&lt;img src" in pairs.text
    bad = await parse(console, "json", HOSTILE)
    assert bad.status_code == 400 and "<img src=x" not in bad.text and "&lt;img src=x" in bad.text


async def test_capture_shows_the_next_request_without_a_reload(console: HooklineTestApp) -> None:
    page = await console.client.get(TAB)
    armed = await console.client.post(TAB, data={"csrf_token": csrf_of(page), "action": "arm"})
    assert armed.status_code == 200
    wrapper = re.search(r'<div id="capture"[^>]*>', armed.text).group(0)
    assert f'hx-get="{TAB}"' in wrapper and 'hx-trigger="every 1s"' in wrapper and 'hx-select="#capture"' in wrapper
    deadline = re.search(r'class="countdown" data-deadline="([^"]+)"', armed.text)
    assert deadline and deadline.group(1) == (await console.client.get("/api/workflows/orders/webhook-capture", headers=console.auth)).json()["expires_at"]
    assert "http://hookline.test/api/webhooks/orders" in armed.text

    called = await console.client.post(
        "/api/webhooks/orders?page=2",
        json={"order": {"id": "A-7"}, "note": HOSTILE},
        headers={"X-Shop": HOSTILE},
        auth=("shop", "s3cret-pass"),
    )
    assert called.json()["captured"] is True

    polled = await console.client.get(TAB, headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert "<html" not in polled.text  # the fragment alone
    fragment = re.search(r'<div id="capture".*', polled.text, re.S).group(0)
    assert "hx-trigger" not in fragment.split(">", 1)[0]  # done: no more polling
    assert "Request captured" in fragment and "POST" in fragment
    assert "&lt;img src=x" in fragment and "<img src=x" not in fragment
    assert "s3cret-pass" not in fragment and "c2hvcDpzM2NyZXQtcGFzcw" not in fragment  # Authorization redacted
    fields = form_fields(polled, "capture")
    at = paths_in(fields)
    assert {"order.id", "note", "page", "x-shop"} <= set(at)
    # the sender's own header is ticked; what every client sends (host, user-agent) is not
    assert fields.get(f"p{at['x-shop']}.use") == "1"
    assert "host" in at and f"p{at['host']}.use" not in fields

    for name in [n for n in fields if n.endswith(".use")]:
        del fields[name]
    fields[f"p{at['page']}.use"] = "1"
    fields[f"p{at['page']}.type"] = "integer"
    saved = await console.client.post(TAB, data={**fields, "csrf_token": csrf_of(page)})
    assert saved.status_code == 200 and "version 2" in saved.text
    config = (await console.host.workflows.get("orders"))["definition"]["trigger"]["config"]
    assert config["query"] == [{"path": "page", "required": False, "type": "integer"}]


async def test_a_capture_can_be_cancelled_and_says_when_it_expired(console: HooklineTestApp) -> None:
    page = await console.client.get(TAB)
    await console.client.post(TAB, data={"csrf_token": csrf_of(page), "action": "arm"})
    cancelled = await console.client.post(TAB, data={"csrf_token": csrf_of(page), "action": "cancel"})
    assert cancelled.status_code == 200 and "The last capture was cancelled" in cancelled.text
    again = await console.client.post(TAB, data={"csrf_token": csrf_of(page), "action": "cancel"})
    assert again.status_code == 409 and "No capture was armed" in again.text
    captures = await console.client.post("/api/workflows/orders/webhook-capture", json={"window": 1}, headers=console.auth)
    assert captures.status_code == 201
    await asyncio.sleep(1.1)
    expired = await console.client.get(TAB)
    assert "expired" in expired.text and "no request came" in expired.text
    assert "hx-trigger" not in re.search(r'<div id="capture"[^>]*>', expired.text).group(0)


async def test_forms_need_the_csrf_token_and_known_actions(console: HooklineTestApp) -> None:
    refused = await console.client.post(TAB, data={"action": "arm"})
    assert refused.status_code == 403
    page = await console.client.get(TAB)
    unknown = await console.client.post(TAB, data={"csrf_token": csrf_of(page), "action": "explode"})
    assert unknown.status_code == 400 and "unknown action" in html.unescape(unknown.text)


def test_the_webhook_wheel_holds_the_tab_templates(tmp_path: Path) -> None:
    """The templates are package data: a wheel built from the plugin's folder carries them."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO / "plugins" / "webhook_trigger"), "--no-deps",
         "--no-build-isolation", "--quiet", "--wheel-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("hookline_webhook-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("samples.html", "_parameters.html", "_capture.html"):
        assert f"hookline_webhook/console/{template}" in names
