"""Fixtures for the console's real-browser tests (test_console_browser.py).

Playwright for Python (``pip install 'hookline-console[test]'``) drives Debian's Chromium at
``/usr/bin/chromium``; Playwright's own browser download is never used. Without that Chromium
the browser tests skip, saying how to install it, unless ``HOOKLINE_REQUIRE_BROWSER=1`` (CI,
``.ci/run``) turns that into a failure, as ``HOOKLINE_REQUIRE_POSTGRES`` does for PostgreSQL.

``HOOKLINE_SCREENSHOTS=1`` makes the tests write the documentation's screenshots
(``docs/images/console-*.png``, see docs/console.md); otherwise they take none.

The tests use Playwright's sync API, so they are plain ``def`` functions: pytest-asyncio runs
``async def`` tests inside an event loop, where the sync API refuses to start.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import REPO, skip_or_fail
from hookline.testing import TEST_TOKEN, HooklineServer

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("HOOKLINE_REQUIRE_BROWSER") == "1"
SCREENSHOTS = os.environ.get("HOOKLINE_SCREENSHOTS") == "1"
SCREENSHOT_DIR = REPO / "docs" / "images"
AXE = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"

#: Chromium's flags: no sandbox (CI runs as root in a container), and nothing that reaches out
#: to the network on its own (updates, sync, safe-browsing lists).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
#: How long an expect() or an action waits (ms): generous, for a loaded CI machine. Waiting
#: is always for something the page shows, never a sleep.
TIMEOUT_MS = 20_000
#: The signing secret of the test workflows' webhooks (``{env: SHOP_SECRET}``).
SHOP_SECRET = "browser-test-signing-secret"


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install 'hookline-console[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium"
    return None


def require_browser() -> None:
    skip_or_fail(browser_unavailable(), required=REQUIRE_BROWSER, variable="HOOKLINE_REQUIRE_BROWSER")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module's tests (each test gets its own context)."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    """A real ``hookline serve`` with the console, and what the test calls it with."""

    server: HooklineServer

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The management API with the test token."""
        headers = {**self.server.auth, **kwargs.pop("headers", {})}
        return httpx.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def apply(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create the workflow, or save a new version of it."""
        response = self.api("POST", "/api/workflows", json=definition)
        if response.status_code == 409:
            response = self.api("PUT", f"/api/workflows/{definition['key']}", json=definition)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def webhook(self, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url(f"/api/webhooks/{key}"), timeout=30, **kwargs)


@pytest.fixture
def console_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    """``hookline serve`` on SQLite in ``tmp_path``, with the API token ``TEST_TOKEN``. More
    environment for it: ``@pytest.mark.parametrize("console_server", [{"NAME": "value"}], indirect=True)``."""
    require_browser()  # no server to start for a test that will skip
    env = {"SHOP_SECRET": SHOP_SECRET, **getattr(request, "param", {})}
    server = HooklineServer(f"sqlite://{tmp_path / 'hookline.db'}", cwd=tmp_path, env=env)
    server.env.pop("HOOKLINE_DISABLE_PLUGINS", None)  # the console and every plugin, whatever the shell says
    server.start(tmp_path / "server.log")
    try:
        yield Console(server)
    finally:
        server.stop()
        print(f"--- the server's log (end) ---\n{server.log()[-8000:]}")  # shown if the test failed


@dataclass
class PageProblems:
    """What went wrong in the page while a test ran: CSP violations, script errors, dialogs."""

    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.csp.append(f"{message.location.get('url', '?')}: {text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def context(browser: Any, console_server: Console, problems: PageProblems) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the server; every page in it is watched for CSP
    violations, script errors and dialogs, and the test fails on any at its end."""
    context = browser.new_context(base_url=console_server.base_url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.on("page", problems.watch)
    try:
        yield context
    finally:
        context.close()
    assert not problems.csp, "Content-Security-Policy violations:\n" + "\n".join(problems.csp)
    assert not problems.errors, "script errors in the page:\n" + "\n".join(problems.errors)
    assert not problems.dialogs, "dialogs opened:\n" + "\n".join(problems.dialogs)


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def sign_in(page: Any, secret: str = TEST_TOKEN, *, path: str = "/console/") -> None:
    """Open ``path`` signed out, sign in with ``secret`` on the form it leads to, and wait for
    ``path`` to load."""
    from playwright.sync_api import expect

    page.goto(path)
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    page.get_by_label(re.compile("^API token")).fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    """``docs/images/console-<name>.png`` when ``HOOKLINE_SCREENSHOTS=1``; nothing otherwise."""
    if not SCREENSHOTS:
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"console-{name}.png"), full_page=full_page, animations="disabled")


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    The script is evaluated, not added as a ``<script>``: the console's Content-Security-Policy
    (rightly) refuses inline script, and an evaluation from the test is not subject to it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    results = page.evaluate(
        """async () => {
            const results = await axe.run(document, {resultTypes: ["violations"]});
            return results.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html, summary: n.failureSummary})),
            }));
        }"""
    )
    return [violation for violation in results if violation["impact"] in ("serious", "critical")]


def describe_violations(where: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{where}:"]
    for violation in violations:
        lines.append(f"  [{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['html'][:200]}")
            lines.append("      " + (node["summary"] or "").replace("\n", "\n      "))
    return "\n".join(lines)
