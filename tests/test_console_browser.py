"""The console in a real browser (headless Chromium through Playwright), on a real
``hookline serve``: the operator's journeys end to end, what a hostile caller's values do to
the pages (nothing), CSRF, cookies and sign-out, accessibility (axe-core) and the keyboard.

Every test fails on a Content-Security-Policy violation, a script error or a dialog in any of
its pages (browser_support.context). The in-process tests of the same pages are in
test_console.py. Run alone: ``.venv/bin/python -m pytest tests/test_console_browser.py``;
``HOOKLINE_SCREENSHOTS=1`` also rewrites docs/images/console-*.png.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from browser_support import (  # noqa: F401 - fixtures
    SHOP_SECRET,
    Console,
    PageProblems,
    browser,
    console_server,
    context,
    describe_violations,
    page,
    problems,
    run_axe,
    screenshot,
    sign_in,
)
from conftest import EXAMPLES

pytestmark = [pytest.mark.browser, pytest.mark.server]

ORDER_YAML = """\
key: shop-order
title: Shop order paid
sync: true
trigger:
  type: webhook
  config:
    signature: {preset: github, secrets: [{env: SHOP_SECRET}]}
nodes:
  - key: check
    type: condition
    config:
      rules: {left: "{{ $context.body.amount }}", op: gt, right: 100}
    branches:
      "true":
        - {key: express, type: response, config: {body: {tier: high, order: "{{ $context.body.id }}"}}}
      "false":
        - {key: standard, type: response, config: {body: {tier: low, order: "{{ $context.body.id }}"}}}
"""


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def signed(body: bytes, secret: str = SHOP_SECRET) -> dict[str, str]:
    """GitHub's signature header for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def call_signed(url: str, data: Any, secret: str = SHOP_SECRET) -> httpx.Response:
    body = json.dumps(data).encode()
    return httpx.post(url, content=body, headers=signed(body, secret), timeout=30)


def reload_until_visible(page: Any, locator: Any, attempts: int = 20) -> None:
    """Reload until ``locator`` shows (for a page that does not update itself), each look
    waiting a second at most."""
    for _ in range(attempts - 1):
        try:
            expect(locator.first).to_be_visible(timeout=1000)
            return
        except AssertionError:
            page.reload()
    expect(locator.first).to_be_visible()


# --- the operator's journey ------------------------------------------------------------------


def test_create_a_workflow_call_it_watch_it_run_replay_it_and_sign_out(
    page: Any, context: Any, console_server: Console
) -> None:
    sign_in(page, path="/console/")
    expect(page).to_have_url(re.compile(r"/console/workflows$"))

    # Create it in the YAML editor.
    page.get_by_role("link", name="New workflow").click()
    expect(page).to_have_url(re.compile(r"/console/workflows/new$"))
    page.get_by_label("Definition (YAML or JSON)").fill(ORDER_YAML)
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/console/workflows/shop-order\?saved=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Shop order paid")

    # Copy its URL with the button, as an operator pasting it into the sender's settings.
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_server.base_url)
    url = console_server.url("/api/webhooks/shop-order")
    expect(page.locator("dl.urls code").first).to_have_text(url)
    copy = page.get_by_role("button", name="Copy the webhook URL")
    copy.click()
    # It says "Copied" for 1.5 s; data-copied stays (a loaded machine may look later than that).
    expect(copy).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == url

    # Capture the sender's first call on the Samples tab, and declare its fields from it.
    page.get_by_role("navigation", name="Workflow pages").get_by_role("link", name="Samples").click()
    page.get_by_role("button", name="Capture the next request").click()
    expect(page.locator("#capture .countdown")).to_be_visible()
    captured = call_signed(page.evaluate("navigator.clipboard.readText()"), {"id": "B-6", "amount": 90})
    assert captured.json()["captured"] is True
    parameters = page.locator("#capture-parameters")
    expect(parameters).to_be_visible()  # without a reload: the tab polls while armed
    for path in ("id", "amount"):
        parameters.get_by_role("checkbox", name=path, exact=True).check()
        parameters.get_by_label(f"body parameter {path} is required").check()
    parameters.get_by_label("Type of body parameter amount").select_option("number")
    parameters.get_by_role("button", name="Save into the trigger").click()
    expect(page.get_by_role("status").filter(has_text="version 2")).to_be_visible()
    declared = console_server.api("GET", "/api/workflows/shop-order").json()["definition"]["trigger"]["config"]
    assert {(p["path"], p["required"], p.get("type")) for p in declared["body"]} >= {
        ("id", True, "string"),
        ("amount", True, "number"),
    }
    assert declared["signature"]["secrets"] == [{"env": "SHOP_SECRET"}]  # kept as it was
    missing = call_signed(url, {"id": "B-6"})
    assert missing.status_code == 400 and missing.json()["error"] == "missing_parameters"

    # Watch the executions list while the sender calls the copied URL: the new execution
    # appears without a reload (the list polls).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Executions").click()
    expect(page.get_by_text("No executions")).to_be_visible()
    page.evaluate("window.loadedOnce = true")
    answer = call_signed(page.evaluate("navigator.clipboard.readText()"), {"id": "B-7", "amount": 150})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tier": "high", "order": "B-7"}
    execution_id = answer.headers["X-Hookline-Execution"]
    row = page.get_by_role("link", name=f"#{execution_id}", exact=True)
    expect(row).to_be_visible()
    assert page.evaluate("window.loadedOnce === true"), "the list reloaded the page instead of updating in place"

    # Open it and read why the branch was taken.
    row.click()
    expect(page).to_have_url(re.compile(rf"/console/executions/{execution_id}$"))
    expect(page.locator("#execution-status")).to_have_text("succeeded")
    check = page.locator("#job-check")
    expect(check.locator(".job-head .branch")).to_have_text("→ branch true")
    comparisons = check.get_by_role("table", name="Comparisons made by node check, in order")
    expect(comparisons.locator("tbody tr")).to_have_count(1)
    expect(comparisons.locator("tbody tr td")).to_have_text(["150", "gt (>)", "100", "true"])
    expect(check.locator(".outcome")).to_have_text("Result: true → branch true")
    expect(page.locator("#job-express")).to_contain_text("succeeded")
    expect(page.locator("#job-standard")).to_have_count(0)
    expect(page.get_by_role("region", name="Request as stored")).to_contain_text('"B-7"')

    # Replay it: a new execution, linked to the first, that succeeds the same way.
    page.get_by_role("button", name="Replay").click()
    expect(page).not_to_have_url(re.compile(rf"/console/executions/{execution_id}$"))
    expect(page.locator("dl.facts").get_by_role("link", name=f"#{execution_id}", exact=True)).to_be_visible()
    expect(page.locator("#execution-status")).to_have_text("succeeded")
    expect(page.locator("#job-check .job-head .branch")).to_have_text("→ branch true")
    replay_path = page.url.removeprefix(console_server.base_url)

    # A call signed with the wrong secret is refused, and the refused calls say why.
    forged = call_signed(url, {"id": "B-8", "amount": 150}, secret="not-the-shop-secret")
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_signature"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Refused calls").click()
    refused_row = page.locator("table.list tbody tr").filter(has_text="invalid_signature")
    reload_until_visible(page, refused_row)
    expect(refused_row).to_contain_text("shop-order")
    expect(refused_row).to_contain_text("401")
    refused_row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Refused: 401 invalid_signature")
    expect(page.locator("main pre")).to_contain_text('"B-8"')  # the start of the body, kept
    signature_cell = page.get_by_role("row").filter(has_text="x-hub-signature-256")
    expect(signature_cell).to_contain_text("[redacted]")

    # Sign out: the page is gone, and the old cookie, replayed, gives no access.
    old_cookie = next(c for c in context.cookies() if c["name"] == "hookline_console")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in\?signed_out=1$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(replay_path)
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    context.add_cookies([old_cookie])
    page.goto(replay_path)
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Hookline")
    stolen = httpx.get(
        console_server.url(replay_path), cookies={"hookline_console": old_cookie["value"]}, timeout=30
    )
    assert stolen.status_code == 302 and stolen.headers["location"].startswith("/console/sign-in")


def test_create_a_workflow_with_the_forms_and_call_it(page: Any, console_server: Console) -> None:
    sign_in(page, path="/console/workflows/new/form")
    page.get_by_label("Key", exact=True).fill("form-reply")
    page.get_by_label("Title").fill("Made with the forms")
    page.get_by_label("Synchronous").check()
    # Another first node: its fields replace the condition's in place (htmx), the key typed stays.
    page.get_by_label("First node type").select_option("response")
    node = page.get_by_role("group", name=re.compile(r"^First node · response"))
    expect(node).to_be_visible()
    node.get_by_label("Node key (required)").fill("reply")
    node.get_by_label("Status").fill("201")
    node.get_by_label("Body (JSON)").fill('{"got": "{{ $context.body.id }}"}')
    expect(page.get_by_label("Key", exact=True)).to_have_value("form-reply")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/console/workflows/form-reply\?saved=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Made with the forms")

    answer = console_server.webhook("form-reply", json={"id": "F-1"})
    assert answer.status_code == 201 and answer.json() == {"got": "F-1"}
    definition = console_server.api("GET", "/api/workflows/form-reply").json()["definition"]
    assert definition["sync"] is True
    assert definition["nodes"] == [
        {"key": "reply", "type": "response", "config": {"status": 201, "body": {"got": "{{ $context.body.id }}"}}}
    ]


def test_the_editor_shows_each_problem_at_its_line_and_saves_nothing(page: Any, console_server: Console) -> None:
    sign_in(page, path="/console/workflows/new")
    broken = ORDER_YAML.replace("type: response", "type: respnse", 1).replace("op: gt", "op: greater")
    page.get_by_label("Definition (YAML or JSON)").fill(broken)
    page.get_by_role("button", name="Create").click()
    problems = page.locator("#problems")
    expect(problems).to_contain_text("nothing was saved")
    expect(problems).to_contain_text("respnse")
    # A problem's line link puts the caret on that line of the editor.
    link = problems.locator("a.goto").first
    line = int(link.get_attribute("data-line"))
    link.click()
    editor = page.get_by_label("Definition (YAML or JSON)")
    expect(editor).to_be_focused()
    caret_line = page.evaluate(
        "() => { const a = document.getElementById('definition');"
        " return a.value.slice(0, a.selectionStart).split('\\n').length; }"
    )
    assert caret_line == line
    assert console_server.api("GET", "/api/workflows/shop-order").status_code == 404


# --- security ---------------------------------------------------------------------------------

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = '"><img src=x onerror=alert(1)>'
HOSTILE_URL = "javascript:alert(1)"
HOSTILE = HOSTILE_SCRIPT + HOSTILE_IMG


def hostile_workflow(title: str) -> dict[str, Any]:
    return {
        "key": "hostile",
        "title": title,
        "sync": True,
        "trigger": {"type": "webhook"},
        "nodes": [
            {
                "key": "check",
                "type": "condition",
                "config": {"rules": {"left": "{{ $context.body.name }}", "op": "eq", "right": HOSTILE_IMG}},
                "branches": {
                    "true": [
                        {
                            "key": "echo",
                            "type": "response",
                            "config": {"body": {"echo": "{{ $context.body.name }}", "link": HOSTILE_URL}},
                        }
                    ],
                },
            }
        ],
    }


def assert_nothing_injected(page: Any, where: str) -> None:
    injected = page.evaluate(
        """() => ({
            images: document.querySelectorAll('img[src="x"]').length,
            handlers: [...document.querySelectorAll('*')].filter(el => [...el.attributes].some(a => /^on/i.test(a.name))).length,
            scripts: [...document.scripts].filter(s => (s.textContent || '').includes('alert')).length,
            javascriptLinks: [...document.querySelectorAll('a[href], form[action], iframe[src]')]
                .filter(el => /^\\s*javascript:/i.test(el.getAttribute('href') || el.getAttribute('action') || el.getAttribute('src') || '')).length,
        })"""
    )
    assert injected == {"images": 0, "handlers": 0, "scripts": 0, "javascriptLinks": 0}, f"{where}: {injected}"


def test_hostile_values_stay_text_on_every_page(
    page: Any, console_server: Console, problems: PageProblems
) -> None:
    console_server.apply(hostile_workflow(HOSTILE))
    console_server.apply(hostile_workflow(HOSTILE + " v2 " + HOSTILE_URL))
    answer = console_server.webhook(
        "hostile",
        params={"q": HOSTILE_IMG, "next": HOSTILE_URL},
        json={"name": HOSTILE_IMG, "url": HOSTILE_URL, HOSTILE_SCRIPT: HOSTILE},
        headers={"X-Evil": HOSTILE, "Referer": HOSTILE_URL},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["echo"] == HOSTILE_IMG  # the branch the hostile value chose ran
    execution_id = answer.headers["X-Hookline-Execution"]
    # Refused calls keep what the caller sent too: a hostile path, headers and body.
    console_server.apply(yaml.safe_load(ORDER_YAML))
    unknown = console_server.webhook(quote(HOSTILE_IMG, safe=""), json={"x": HOSTILE})
    assert unknown.status_code == 404
    forged = call_signed(console_server.url("/api/webhooks/shop-order"), {"id": HOSTILE, "amount": HOSTILE_URL}, secret="x")
    assert forged.status_code == 401
    refusals = wait_for_refusals(console_server, 2)

    sign_in(page, path="/console/workflows")
    pages = {
        "/console/workflows": HOSTILE_SCRIPT,
        f"/console/workflows?q={quote(HOSTILE)}": HOSTILE,
        "/console/workflows/hostile": HOSTILE_IMG,
        "/console/workflows/hostile/edit": HOSTILE_URL,
        "/console/workflows/hostile/diff?a=1&b=2": HOSTILE_URL,
        "/console/workflows/hostile/versions/1": HOSTILE_IMG,
        "/console/workflows/hostile/delete": "hostile",
        "/console/executions": "hostile",
        f"/console/executions?workflow={quote(HOSTILE)}&q={quote(HOSTILE_IMG)}": None,
        f"/console/executions/{execution_id}": HOSTILE_SCRIPT,
        f"/console/workflows/{quote(HOSTILE_IMG, safe='')}": None,
        f"/console/executions/{quote(HOSTILE, safe='')}": None,
        "/console/plugins": "webhook",
        "/console/refused": "invalid_signature",
        **{f"/console/refused/{r['id']}": None for r in refusals},
        f"/console/sign-in?next={quote(HOSTILE_URL)}": None,
    }
    for path, shown in pages.items():
        page.goto(path)
        page.wait_for_load_state("load")
        assert_nothing_injected(page, path)
        if shown is not None:
            # The value is on the page as text, exactly as it was sent.
            expect(page.locator("main")).to_contain_text(shown)

    # The editor: hostile text typed in comes back as text in the form and in its problems.
    page.goto("/console/workflows/new")
    breakout = f"key: {json.dumps(HOSTILE_IMG)}\ntitle: '</textarea>{HOSTILE_SCRIPT}'\ntrigger: {{type: webhook}}\nnodes: []\n"
    page.get_by_label("Definition (YAML or JSON)").fill(breakout)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#problems")).to_be_visible()
    expect(page.get_by_label("Definition (YAML or JSON)")).to_have_value(breakout)
    assert_nothing_injected(page, "the editor with problems")
    assert problems.dialogs == []


def wait_for_refusals(console_server: Console, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The refused calls, once ``count`` are stored (they are written in the background, in
    batches: some half a second after the call, on an idle server)."""
    deadline = time.monotonic() + timeout
    while True:
        items = console_server.api("GET", "/api/refusals").json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # polling for the write, not waiting it out
    assert len(items) >= count, f"fewer than {count} refused calls stored within {timeout} s: {items}"
    return items


def test_a_post_without_the_csrf_token_is_refused(page: Any, console_server: Console) -> None:
    console_server.apply(yaml.safe_load(ORDER_YAML))
    sign_in(page, path="/console/workflows/shop-order")

    # From the test, with the session's cookie but no token.
    refused = page.request.post("/console/workflows/shop-order/enabled", form={"enabled": "0"}, max_redirects=0)
    assert refused.status == 403
    assert "security token" in refused.text()
    # From a script in the page itself, same origin, still without the token.
    status = page.evaluate(
        """() => fetch('/console/workflows/shop-order/enabled', {method: 'POST',
                 body: new URLSearchParams({enabled: '0'}), redirect: 'manual'}).then(r => r.status)"""
    )
    assert status == 403
    # From another site's page: a form posting here. The session cookie is SameSite=Strict, so
    # the browser does not send it, and the console asks for a sign-in.
    page.route(
        "http://elsewhere.test/**",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<form method="post" action="{console_server.base_url}/console/workflows/shop-order/enabled">'
            '<input type="hidden" name="enabled" value="0"><button>Win a prize</button></form>',
        ),
    )
    page.goto("http://elsewhere.test/prize")
    page.get_by_role("button", name="Win a prize").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    assert console_server.api("GET", "/api/workflows/shop-order").json()["enabled"] is True

    # The page's own form, with its token, does it (the refusals above are not for another reason).
    page.goto("/console/workflows/shop-order")
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    assert console_server.api("GET", "/api/workflows/shop-order").json()["enabled"] is False


def test_the_session_cookie_is_http_only_strict_and_ends_at_sign_out(
    page: Any, context: Any, console_server: Console
) -> None:
    sign_in(page, path="/console/plugins")
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["hookline_console"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == "/console"
    assert session["secure"] is False  # plain HTTP on 127.0.0.1 (HOOKLINE_CONSOLE_SECURE_COOKIE=auto)
    assert session["expires"] > 0  # ends with the session (8 hours), not with the browser
    assert "hookline_console=" not in page.evaluate("document.cookie")  # no script can read it

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"signed_out=1"))
    assert "hookline_console" not in {c["name"] for c in context.cookies()}
    # The session is gone on the server: its cookie, put back, is worth nothing.
    context.add_cookies([session])
    page.goto("/console/plugins")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=%2Fconsole%2Fplugins"))


CONSOLE_PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize("console_server", [{"HOOKLINE_CONSOLE_PASSWORD": CONSOLE_PASSWORD}], indirect=True, ids=["password"])
def test_sign_in_with_the_console_password_after_a_wrong_one(page: Any, context: Any) -> None:
    page.goto("/console/executions")
    secret = page.get_by_label("API token or console password")
    secret.fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token or password is not right.")
    expect(secret).to_have_attribute("aria-invalid", "true")
    assert "hookline_console" not in {c["name"] for c in context.cookies()}
    secret.fill(CONSOLE_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/executions$"))  # where it was going
    expect(page.get_by_role("heading", level=1)).to_have_text("Executions")


# --- accessibility ----------------------------------------------------------------------------


def seed_examples(console_server: Console) -> str:
    """The quick start's workflows, a second version of order-paid, a few executions (a
    succeeded one per branch, one replayed); returns the id of the high-amount one."""
    for path in sorted(Path(EXAMPLES).glob("*.yaml")):
        console_server.apply(yaml.safe_load(path.read_text()))
    changed = yaml.safe_load((Path(EXAMPLES) / "order-paid.yaml").read_text())
    changed["nodes"][0]["config"]["rules"]["and"][0]["right"] = 200
    console_server.apply(changed)
    high = console_server.webhook("order-paid", json={"id": "A-1001", "amount": 250})
    assert high.status_code == 200, high.text
    assert console_server.webhook("order-paid", json={"id": "A-1002", "amount": 40}).status_code == 200
    assert console_server.webhook("order-events", json={"amount": 500}).status_code == 200
    assert console_server.webhook("order-paid", json={"id": "A-1003"}).status_code == 400  # refused
    assert console_server.webhook("order-payd", json={"id": "A-1004", "amount": 10}).status_code == 404  # refused
    return high.headers["X-Hookline-Execution"]


def test_every_page_passes_axe_and_the_docs_screenshots_are_taken(page: Any, console_server: Console) -> None:
    execution_id = seed_examples(console_server)
    refusal_id = next(r["id"] for r in wait_for_refusals(console_server, 2) if r["workflow"] == "order-paid")
    page.goto("/console/sign-in")
    pages: list[tuple[str, str | None]] = [("/console/sign-in", "sign-in")]
    found: dict[str, list[dict[str, Any]]] = {"/console/sign-in": run_axe(page)}
    screenshot(page, "sign-in")
    sign_in(page, path="/console/workflows")
    pages = [
        ("/console/workflows", "workflows"),
        ("/console/workflows/order-paid", "workflow"),
        ("/console/workflows/new", None),
        ("/console/workflows/order-paid/edit", "editor"),
        ("/console/workflows/order-paid/diff", "diff"),
        ("/console/workflows/order-paid/versions/1", None),
        ("/console/workflows/order-paid/delete", None),
        ("/console/executions", "executions"),
        (f"/console/executions/{execution_id}", "execution"),
        ("/console/workflows/order-paid/form", "form"),
        ("/console/workflows/new/form?trigger=webhook&node=response", None),
        ("/console/workflows/order-paid/pages/samples", None),
        ("/console/refused", "refused"),
        (f"/console/refused/{refusal_id}", "refusal"),
        ("/console/plugins", "plugins"),
        ("/console/workflows/no-such-workflow", None),
    ]
    for path, name in pages:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        found[path] = run_axe(page)
        if name:
            screenshot(page, name)
    # The diff reads as a diff: one line per line, the changed ones marked.
    page.goto("/console/workflows/order-paid/diff")
    diff = page.get_by_role("region", name="Difference between version 1 and version 2")
    lines = diff.inner_text().splitlines()
    assert lines[:2] == ["--- version 1", "+++ version 2"], lines
    changed = [" ".join(line.split()) for line in lines[2:] if line.startswith(("-", "+"))]
    assert changed == ["- right: 100", "+ right: 200"], lines
    expect(diff.locator("del")).to_have_text([re.compile(r"^-\s+right: 100$")])
    expect(diff.locator("ins")).to_have_text([re.compile(r"^\+\s+right: 200$")])

    # The editor with problems, as an operator sees a refused save.
    page.goto("/console/workflows/new")
    page.get_by_label("Definition (YAML or JSON)").fill(ORDER_YAML.replace("type: response", "type: respnse", 1))
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#problems")).to_be_visible()
    found["/console/workflows/new (problems)"] = run_axe(page)
    screenshot(page, "editor-problems")

    # The Samples tab with a pasted sample's parameters.
    page.goto("/console/workflows/order-paid/pages/samples")
    page.get_by_label("JSON body").check()
    page.get_by_label(re.compile("^Sample:")).fill('{"id": "A-1001", "amount": 150, "customer": {"email": "a@example.com"}}')
    page.get_by_role("button", name="Find the parameters").click()
    expect(page.locator("#paste-parameters")).to_be_visible()
    found["/console/workflows/order-paid/pages/samples (pasted)"] = run_axe(page)
    # The sample and the parameters found in it, in one view.
    page.evaluate("document.getElementById('sample-text').scrollIntoView({block: 'start'})")
    screenshot(page, "samples")

    report = "\n".join(describe_violations(where, v) for where, v in found.items() if v)
    assert not report, "axe-core found serious or critical accessibility problems:\n" + report


def focused(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            const box = el.getBoundingClientRect();
            return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.textContent || '').trim(),
                    href: el.getAttribute('href') || '', name: el.getAttribute('aria-label') || '',
                    visible: el.matches(':focus-visible') && style.outlineStyle !== 'none'
                             && parseFloat(style.outlineWidth) >= 2,
                    onScreen: box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0
                              && box.right <= innerWidth && box.bottom <= innerHeight};
        }"""
    )


def tab_to(page: Any, matches: Any, what: str, most: int = 40) -> dict[str, Any]:
    """Press Tab until the focused element ``matches``; each stop must show where focus is."""
    for _ in range(most):
        page.keyboard.press("Tab")
        now = focused(page)
        assert now["visible"], f"focus is not visible on {now} (on the way to {what})"
        if matches(now):
            return now
    raise AssertionError(f"{most} presses of Tab did not reach {what}")


def test_by_keyboard_alone_sign_in_open_a_workflow_and_run_it(page: Any, console_server: Console) -> None:
    console_server.apply(yaml.safe_load(ORDER_YAML))
    page.goto("/console/")
    # The token field has focus when the sign-in page opens.
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(console_server.server.env["HOOKLINE_API_TOKEN"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/workflows$"))

    # The first Tab shows the skip link; it takes focus past the navigation, to the content.
    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["text"] == "Skip to content" and skip["visible"] and skip["onScreen"], skip
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    tab_to(page, lambda el: el["href"].endswith("/console/workflows/shop-order"), "the workflow's link", most=10)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/workflows/shop-order$"))

    tab_to(page, lambda el: el["id"] == "run-input", "the run input")
    page.keyboard.type('{"body": {"id": "K-1", "amount": 5}}')
    tab_to(page, lambda el: el["tag"] == "button" and el["text"] == "Run", "the Run button", most=3)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/executions/\d+$"))
    expect(page.locator("#execution-status")).to_have_text("succeeded")
    expect(page.locator("#job-check .job-head .branch")).to_have_text("→ branch false")
