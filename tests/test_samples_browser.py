"""The webhook trigger's Samples tab in a real browser (headless Chromium, on a real
``hookline serve``): paste and save, then capture a request that appears without a reload while
the countdown ticks; no CSP violation or script error on the way, and no serious axe-core
problem. The in-process tests of the same tab are in test_console_samples.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from browser_support import (  # noqa: F401 - fixtures
    Console,
    browser,
    console_server,
    context,
    describe_violations,
    page,
    problems,
    run_axe,
    sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

TAB = "/console/workflows/order-events/pages/samples"
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def test_paste_save_then_capture_a_request_that_appears_without_a_reload(page: Any, console_server: Console) -> None:
    from playwright.sync_api import expect

    console_server.apply({"key": "order-events", "trigger": {"type": "webhook"}, "nodes": []})
    sign_in(page, path="/console/workflows/order-events")
    page.get_by_role("link", name="Samples").click()
    expect(page).to_have_url(re.compile(re.escape(TAB) + "$"))

    # Paste a JSON sample, untick one parameter, make another required, save.
    page.get_by_label("JSON body").check()
    page.get_by_label(re.compile("^Sample:")).fill('{"order": {"id": "A-1"}, "note": "x"}')
    page.get_by_role("button", name="Find the parameters").click()
    table = page.locator("#paste-parameters")
    expect(table.get_by_role("checkbox", name="order.id", exact=True)).to_be_checked()
    table.get_by_role("checkbox", name="note", exact=True).uncheck()
    table.get_by_label("body parameter order.id is required").check()
    table.get_by_label("Alias of body parameter order.id").fill("order_id")
    found: dict[str, Any] = {"pasted": run_axe(page)}
    table.get_by_role("button", name="Save into the trigger").click()
    expect(page.get_by_role("status").filter(has_text="version 2")).to_be_visible()
    declared = console_server.api("GET", "/api/workflows/order-events").json()["definition"]["trigger"]["config"]["body"]
    assert declared == [
        {"path": "order", "required": False, "type": "object"},
        {"path": "order.id", "alias": "order_id", "required": True, "type": "string"},
    ]

    # Capture: the countdown ticks, and the request shows up by itself.
    page.get_by_role("button", name="Capture the next request").click()
    countdown = page.locator("#capture .countdown")
    expect(countdown).to_have_text(re.compile(r"^[23]:\d\d$"))
    first = countdown.text_content()
    expect(countdown).not_to_have_text(first or "")  # ticking
    page.evaluate("window.notReloaded = true")
    found["armed"] = run_axe(page)
    called = console_server.webhook("order-events", json={"order": {"id": "A-7"}, "note": HOSTILE}, params={"page": "2"})
    assert called.json()["captured"] is True
    capture = page.locator("#capture")
    expect(capture.get_by_text("Request captured")).to_be_visible()
    expect(capture.get_by_text(HOSTILE).first).to_be_visible()  # text, not markup
    assert page.evaluate("window.notReloaded === true")
    assert page.locator("#capture img").count() == 0
    expect(capture.get_by_role("checkbox", name="page", exact=True)).to_be_checked()
    found["captured"] = run_axe(page)

    report = "\n".join(describe_violations(where, v) for where, v in found.items() if v)
    assert not report, "axe-core found serious or critical accessibility problems:\n" + report
