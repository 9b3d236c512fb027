"""The console's pages through the in-process client: sign-in, sessions, CSRF, security
headers, and each page a signed-in operator sees. The browser journeys are in
test_console_browser.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from console_support import csrf_of, sign_in
from hookline.testing import TEST_TOKEN, HooklineTestApp

ORDER = {
    "key": "order-paid",
    "title": "Order paid",
    "sync": True,
    "trigger": {
        "type": "webhook",
        "config": {"signature": {"preset": "github", "secrets": [{"env": "GITHUB_SECRET"}]}, "auth": {"basic": {"username": "shop", "password": "s3cret-pass"}}},
    },
    "nodes": [
        {
            "key": "check",
            "type": "condition",
            "config": {"rules": {"left": "{{ $context.body.amount }}", "op": "gt", "right": 100}},
            "branches": {
                "true": [{"key": "big", "type": "response", "config": {"status": 200, "body": {"tier": "high"}}}],
                "false": [{"key": "small", "type": "response", "config": {"status": 200, "body": {"tier": "low"}}}],
            },
        }
    ],
}


@pytest.fixture
async def console(hookline: HooklineTestApp) -> HooklineTestApp:
    response = await sign_in(hookline.client)
    assert response.status_code == 303, response.text
    return hookline


async def test_pages_need_a_session(hookline: HooklineTestApp) -> None:
    response = await hookline.client.get("/console/workflows?q=x")
    assert response.status_code == 302
    assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fworkflows%3Fq%3Dx"
    htmx = await hookline.client.get("/console/workflows", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/console/sign-in")


async def test_sign_in_sets_a_strict_http_only_cookie_and_goes_where_asked(hookline: HooklineTestApp) -> None:
    response = await sign_in(hookline.client, next_path="/console/plugins")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/plugins"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("hookline_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here (auto)
    page = await hookline.client.get("/console/plugins")
    assert page.status_code == 200 and "webhook" in page.text


async def test_sign_in_never_redirects_elsewhere(hookline: HooklineTestApp) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/console\\@evil", "/api/workflows"):
        hookline.client.cookies.clear()
        response = await sign_in(hookline.client, next_path=target)
        assert response.headers["location"] == "/console/", target


async def test_a_wrong_secret_is_refused_and_failures_are_limited(hookline: HooklineTestApp) -> None:
    for _ in range(5):
        response = await sign_in(hookline.client, secret="wrong")
        assert response.status_code == 401
        assert "not right" in response.text
    limited = await sign_in(hookline.client, secret=TEST_TOKEN)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "hookline_console=" not in limited.headers.get("set-cookie", "")


async def test_sign_in_needs_the_form_token(hookline: HooklineTestApp) -> None:
    response = await hookline.client.post("/console/sign-in", data={"secret": TEST_TOKEN, "signin_token": "forged"})
    assert response.status_code == 403
    assert "hookline_console=" not in response.headers.get("set-cookie", "")


async def test_sign_out_ends_the_session_on_the_server(hookline: HooklineTestApp) -> None:
    await sign_in(hookline.client)
    cookie = hookline.client.cookies.get("hookline_console")
    page = await hookline.client.get("/console/plugins")
    out = await hookline.client.post("/console/sign-out", data={"csrf_token": csrf_of(page)})
    assert out.status_code == 303
    # The old cookie, replayed, signs nobody in.
    hookline.client.cookies.set("hookline_console", cookie, path="/console")
    replay = await hookline.client.get("/console/plugins")
    assert replay.status_code == 302


async def test_every_page_sends_a_strict_content_security_policy(console: HooklineTestApp) -> None:
    for path in ("/console/workflows", "/console/plugins", "/console/executions", "/console/refused", "/console/sign-in"):
        if path == "/console/sign-in":
            console.client.cookies.clear()  # (signed in, it redirects)
        response = await console.client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert "<script>" not in response.text  # every script is a file
        assert not re.search(r"<[^>]+\son[a-z]+=", response.text)  # no inline event handlers


async def test_a_post_without_the_csrf_token_is_refused(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    response = await console.client.post("/console/workflows/order-paid/enabled", data={"enabled": "0"})
    assert response.status_code == 403
    assert "security token" in response.text
    assert (await console.host.workflows.get("order-paid"))["enabled"] is True
    forged = await console.client.post("/console/workflows/order-paid/enabled", data={"enabled": "0", "csrf_token": "x" * 43})
    assert forged.status_code == 403


async def test_a_post_from_another_origin_is_refused(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    page = await console.client.get("/console/workflows/order-paid")
    response = await console.client.post(
        "/console/workflows/order-paid/enabled",
        data={"enabled": "0", "csrf_token": csrf_of(page)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


async def test_the_workflow_page_shows_urls_and_masks_secrets(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    page = await console.client.get("/console/workflows/order-paid")
    assert page.status_code == 200
    assert "http://hookline.test/api/webhooks/order-paid" in page.text
    assert "http://hookline.test/api/webhook:trigger/order-paid" in page.text
    assert "s3cret-pass" not in page.text and "shop" not in page.text
    assert "from env GITHUB_SECRET" in page.text


async def test_enable_disable_and_delete_with_confirmation(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    page = await console.client.get("/console/workflows/order-paid")
    token = csrf_of(page)
    off = await console.client.post("/console/workflows/order-paid/enabled", data={"enabled": "0", "csrf_token": token})
    assert off.status_code == 303
    assert (await console.host.workflows.get("order-paid"))["enabled"] is False
    wrong = await console.client.post("/console/workflows/order-paid/delete", data={"confirm_key": "order", "csrf_token": token})
    assert wrong.status_code == 400 and "exactly" in wrong.text
    gone = await console.client.post("/console/workflows/order-paid/delete", data={"confirm_key": "order-paid", "csrf_token": token})
    assert gone.status_code == 303
    assert (await console.client.get("/console/workflows/order-paid")).status_code == 404


async def test_run_by_hand_shows_the_execution_and_why_the_branch_was_taken(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    page = await console.client.get("/console/workflows/order-paid")
    bad = await console.client.post("/console/workflows/order-paid/run", data={"input": "{nope", "csrf_token": csrf_of(page)})
    assert bad.status_code == 400 and "not valid JSON" in bad.text
    ran = await console.client.post(
        "/console/workflows/order-paid/run", data={"input": '{"body": {"amount": 150}}', "csrf_token": csrf_of(page)}
    )
    assert ran.status_code == 303
    execution = await console.client.get(ran.headers["location"])
    assert execution.status_code == 200
    assert "branch <strong>true</strong>" in execution.text
    assert "150" in execution.text


async def test_the_editor_places_each_problem_at_its_line(console: HooklineTestApp) -> None:
    page = await console.client.get("/console/workflows/new")
    text = "key: broken\ntrigger:\n  type: webhook\nnodes:\n  - key: a\n    type: response\n    config:\n      status: 700\n"
    response = await console.client.post("/console/workflows/new", data={"definition": text, "csrf_token": csrf_of(page)})
    assert response.status_code == 422
    assert "line 8, column 15" in response.text
    assert "nothing was saved" in response.text


async def test_the_editor_keeps_hidden_secrets(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    edit = await console.client.get("/console/workflows/order-paid/edit")
    assert "s3cret-pass" not in edit.text
    text = re.search(r'<textarea id="definition"[^>]*>(.*?)</textarea>', edit.text, re.S).group(1)
    import html

    text = html.unescape(text).replace("title: Order paid", "title: Order paid (edited)")
    saved = await console.client.post("/console/workflows/order-paid/edit", data={"definition": text, "csrf_token": csrf_of(edit)})
    assert saved.status_code == 303, saved.text
    stored = await console.host.workflows.get("order-paid")
    assert stored["title"] == "Order paid (edited)"
    assert stored["definition"]["trigger"]["config"]["auth"]["basic"]["password"] == "s3cret-pass"
    assert stored["definition"]["trigger"]["config"]["signature"]["secrets"] == [{"env": "GITHUB_SECRET"}]


async def test_versions_and_their_diff(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    await console.apply({**ORDER, "title": "Order paid v2"})
    diff = await console.client.get("/console/workflows/order-paid/diff?a=1&b=2")
    assert diff.status_code == 200
    assert "<del>-title: Order paid</del>" in diff.text and "<ins>+title: Order paid v2</ins>" in diff.text
    assert "s3cret-pass" not in diff.text
    missing = await console.client.get("/console/workflows/order-paid/versions/9")
    assert missing.status_code == 404
    bad = await console.client.get("/console/workflows/order-paid/diff?a=x")
    assert bad.status_code == 400


async def test_hostile_values_are_escaped(console: HooklineTestApp) -> None:
    hostile = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    await console.apply({**ORDER, "title": hostile})
    await console.host.executions.run_manual("order-paid", {"body": {"amount": hostile}, "headers": {"x-evil": hostile}})
    for path in ("/console/workflows", "/console/workflows/order-paid", "/console/executions"):
        page = await console.client.get(path)
        assert page.status_code == 200, path
        assert "<img src=x" not in page.text and "<script>alert" not in page.text, path
    listing = await console.host.executions.list(workflow="order-paid")
    page = await console.client.get(f"/console/executions/{listing.items[0]['id']}")
    assert "<img src=x" not in page.text and "<script>alert" not in page.text
    assert "&lt;img src=x" in page.text


async def test_refused_calls_page_shows_the_cause_with_credentials_redacted(console: HooklineTestApp) -> None:
    await console.apply({**ORDER, "trigger": {"type": "webhook", "config": {"auth": {"basic": {"username": "shop", "password": "s3cret-pass"}}}}})
    refused = await console.client.post(
        "/api/webhooks/order-paid",
        json={"amount": 1},
        headers={"Authorization": "Basic c2hvcDp3cm9uZw==", "X-Note": "<b>hostile</b>"},
    )
    assert refused.status_code == 401
    await console.host.refused_calls.flush()
    page = await console.client.get("/console/refused?workflow=order-paid")
    assert page.status_code == 200
    assert "401" in page.text and "order-paid" in page.text
    link = re.search(r'href="(/console/refused/\d+)"', page.text).group(1)
    detail = await console.client.get(link)
    assert detail.status_code == 200
    assert "c2hvcDp3cm9uZw" not in detail.text  # the Authorization header is redacted
    assert "&lt;b&gt;hostile&lt;/b&gt;" in detail.text
    bad = await console.client.get("/console/refused?status=abc")
    assert bad.status_code == 400 and "status must be" in bad.text
    assert (await console.client.get("/console/refused/999999")).status_code == 404


async def test_executions_filters_search_and_the_replays_of_an_execution(console: HooklineTestApp) -> None:
    await console.apply(ORDER)
    big = await console.host.executions.run_manual("order-paid", {"body": {"amount": 150, "note": "needle-in-body"}})
    await console.host.executions.run_manual("order-paid", {"body": {"amount": 5}})
    found = await console.client.get("/console/executions", params={"q": "NEEDLE-in", "workflow": "order-paid"})
    assert found.status_code == 200
    assert f'href="/console/executions/{big["id"]}"' in found.text
    assert found.text.count('href="/console/executions/') == 1
    none = await console.client.get("/console/executions", params={"status": "failed"})
    assert none.status_code == 200 and "No executions match these filters" in none.text
    bad = await console.client.get("/console/executions", params={"since": "yesterday-ish"})
    assert bad.status_code == 400 and "since" in bad.text

    page = await console.client.get(f"/console/executions/{big['id']}")
    replayed = await console.client.post(f"/console/executions/{big['id']}/replay", data={"version": "original", "csrf_token": csrf_of(page)})
    assert replayed.status_code == 303
    replay_id = int(replayed.headers["location"].rsplit("/", 1)[1])
    await console.wait_for_execution(replay_id)
    replays = await console.client.get(f"/console/executions?replay_of={big['id']}")
    assert replays.status_code == 200
    assert f'href="/console/executions/{replay_id}"' in replays.text
    assert f'href="/console/executions/{big["id"]}"' in replays.text  # "replay of #id", and the way back
    assert "replaying #" in replays.text


async def test_a_failed_sign_in_keeps_where_to_go_next(hookline: HooklineTestApp) -> None:
    failed = await sign_in(hookline.client, secret="wrong", next_path="/console/plugins")
    assert failed.status_code == 401
    assert 'name="next" value="/console/plugins"' in failed.text


async def test_an_unknown_console_path_is_a_page_not_json(console: HooklineTestApp) -> None:
    missing = await console.client.get("/console/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "The console has no page /console/no/such/page." in missing.text
    assert (await console.client.get("/console/static/console.css")).status_code == 200
    assert (await console.client.get("/console/workflows")).status_code == 200
    home = await console.client.get("/console/")
    assert home.status_code == 302 and home.headers["location"] == "/console/workflows"
