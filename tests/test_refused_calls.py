"""Refused calls: every refusal at the webhook door is kept with its cause (SQLite and
PostgreSQL), credentials never are, bodies are cut short, a flood is sampled and counted, the
table stays within its bounds; read through the API and the CLI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from conftest import sync_workflow
from hookline import NodeType, hookimpl
from hookline.cli.main import build_cli
from hookline.host import Host
from hookline.plugins import make_plugin_manager
from hookline.settings import Settings
from hookline.storage.models import Refusal
from hookline.testing import HooklineTestApp

SECRET = "sig-secret-Zq81"


def webhook(key: str, config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"key": key, "trigger": {"type": "webhook", "config": config or {}}, **extra}


async def stored(hookline: HooklineTestApp, **params: Any) -> list[dict[str, Any]]:
    """What the API lists, once what was recorded is written."""
    await hookline.host.refused_calls.flush()
    answer = await hookline.api("GET", "/api/refusals", params={"limit": 500, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- every refusal at the door -------------------------------------------------------------


class BrokenNode(NodeType):
    name = "broken_init"

    def __init__(self, config: Any) -> None:
        raise RuntimeError("cannot prepare")


class BrokenPlugin:
    @hookimpl
    def register_node_types(self, register: Callable[[type[NodeType]], None]) -> None:
        register(BrokenNode)


def _signed(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


#: (workflow definition or None, request kwargs, expected status, expected cause, workflow recorded)
CASES: dict[str, tuple[dict[str, Any] | None, dict[str, Any], int, str, str | None]] = {
    "unknown key": (None, {"url": "/api/webhooks/nope"}, 404, "not_found", None),
    "unknown key, nocobase path": (None, {"url": "/api/webhook:trigger/nope"}, 404, "not_found", None),
    "disabled": (webhook("wf", enabled=False), {}, 404, "workflow_disabled", "wf"),
    "unavailable": (
        {**webhook("wf"), "nodes": [{"key": "b", "type": "broken_init"}]}, {}, 503, "workflow_unavailable", "wf"
    ),
    "basic auth": (
        webhook("wf", {"auth": {"basic": {"username": "hook", "password": "pw"}}}),
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"hook:wrong").decode()}},
        401,
        "unauthorized",
        "wf",
    ),
    "basic auth secret not set": (
        webhook("wf", {"auth": {"basic": {"username": "hook", "password": {"env": "HOOKLINE_TEST_UNSET_PASSWORD"}}}}),
        {},
        503,
        "misconfigured",
        "wf",
    ),
    "signature": (
        webhook("wf", {"signature": {"header": "X-Hook-Check", "secrets": [SECRET]}}),
        {"headers": {"X-Hook-Check": _signed(b"other")}},
        401,
        "invalid_signature",
        "wf",
    ),
    "address": (webhook("wf", {"ip_allowlist": {"allow": ["10.0.0.0/8"]}}), {}, 403, "forbidden", "wf"),
    "cors preflight": (
        webhook("wf", {"cors": {"origins": ["https://app.example"]}}),
        {"method": "OPTIONS", "headers": {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}},
        403,
        "cors_denied",
        "wf",
    ),
    "method": (webhook("wf"), {"method": "GET"}, 405, "method_not_allowed", "wf"),
    "too large": (webhook("wf", {"max_body_size": 10}), {"content": b"x" * 11}, 413, "payload_too_large", "wf"),
    "media type": (
        webhook("wf", {"content_types": ["application/json"]}),
        {"content": b"a=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "unsupported_media_type",
        "wf",
    ),
    "invalid body": (
        webhook("wf"),
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "invalid_body",
        "wf",
    ),
    "missing parameter": (
        webhook("wf", {"body": [{"path": "amount", "required": True, "type": "number"}]}),
        {"json": {"id": 1}},
        400,
        "missing_parameters",
        "wf",
    ),
    "invalid parameter": (
        webhook("wf", {"body": [{"path": "amount", "type": "number"}]}),
        {"json": {"amount": "lots"}},
        400,
        "invalid_parameters",
        "wf",
    ),
}


@pytest.mark.parametrize("hookline_plugins", [[BrokenPlugin()]])
@pytest.mark.parametrize("case", list(CASES))
async def test_every_refusal_at_the_door_is_recorded_with_its_cause(hookline: HooklineTestApp, case: str) -> None:
    definition, request, status, cause, workflow = CASES[case]
    request = dict(request)  # the case is shared by the sqlite and postgres runs
    if definition is not None:
        await hookline.apply(definition)
    answer = await hookline.client.request(
        request.pop("method", "POST"), request.pop("url", "/api/webhooks/wf"), **request
    )
    assert (answer.status_code, answer.json()["error"]) == (status, cause)

    [refusal] = await stored(hookline)
    assert (refusal["status"], refusal["cause"], refusal["workflow"]) == (status, cause, workflow)
    assert refusal["method"] == answer.request.method
    assert refusal["path"] == answer.request.url.path
    assert refusal["address"] == "127.0.0.1"
    assert refusal["message"]
    assert refusal["similar_dropped"] == 0


async def test_rate_limited_calls_are_recorded(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook("wf", {"rate_limit": {"requests": 1, "per": 60}}))
    assert (await hookline.webhook("wf", json={})).status_code == 200
    answer = await hookline.webhook("wf", json={})
    assert answer.status_code == 429
    [refusal] = await stored(hookline)
    assert (refusal["status"], refusal["cause"], refusal["workflow"]) == (429, "rate_limited", "wf")


async def test_the_operator_reads_more_than_the_caller(hookline: HooklineTestApp) -> None:
    """The caller gets one answer for every signature problem; the refusal names the problem."""
    await hookline.apply(webhook("wf", {"signature": {"header": "X-Hook-Check", "secrets": [SECRET]}}))
    answer = await hookline.webhook("wf", json={})
    assert answer.json()["message"] == "the request signature could not be verified"
    [refusal] = await stored(hookline)
    assert refusal["message"].startswith("the request signature could not be verified: ")
    assert len(refusal["message"]) > len(answer.json()["message"]) + 5


async def test_calls_that_run_or_only_probe_record_nothing(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow())
    await hookline.apply(webhook("cors", {"cors": {"origins": ["https://app.example"]}}))
    assert (await hookline.webhook("pay", json={"amount": 1})).status_code == 202
    assert (await hookline.client.head("/api/webhooks/pay")).status_code == 200
    assert (await hookline.client.options("/api/webhooks/pay")).status_code == 204
    preflight = await hookline.client.options(
        "/api/webhooks/cors", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert await stored(hookline) == []


# --- what is kept of a call -----------------------------------------------------------------


async def test_credentials_and_secret_headers_are_never_stored(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook("wf", {"signature": {"header": "X-Hook-Check", "secrets": [SECRET]}}))
    secrets = {
        "Authorization": "Bearer tok-AAA111",
        "Proxy-Authorization": "Basic cHJveHk6UFBQMjIy",
        "Cookie": "session=COOKIE333",
        "X-Hook-Check": "deadbeefSIG444",  # the workflow's own signature header: no telling name
        "X-Api-Key": "KEY555",
        "X-Hub-Signature-256": "sha256=HUB666",
        "X-Auth-Token": "TOK777",
    }
    values = [*secrets.values(), "cHJveHk6UFBQMjIy", "QUERY888"]
    for url in ("/api/webhooks/wf?token=QUERY888", "/api/webhooks/nope?token=QUERY888"):
        answer = await hookline.client.post(url, json={"x": 1}, headers={**secrets, "X-Request-Id": "req-1"})
        assert answer.status_code in (401, 404)

    items = await stored(hookline)
    assert {item["cause"] for item in items} == {"invalid_signature", "not_found"}
    for item in items:
        shown = (await hookline.api("GET", f"/api/refusals/{item['id']}")).json()
        assert shown["headers"]["x-request-id"] == "req-1"  # the others are kept
        for name in secrets:
            assert shown["headers"][name.lower()] == "[redacted]", name
        assert shown["path"] in ("/api/webhooks/wf", "/api/webhooks/nope")
    # Nowhere in the table, whatever the column.
    rows = json.dumps([dict(row) for row in await Refusal.all().values()], default=str)
    for value in values:
        assert value not in rows, value


async def test_the_body_is_cut_short_with_its_length_kept(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook("wf", {"body": [{"path": "amount", "required": True}]}))
    text = ("é" * 1023 + "€" + "x" * 5000).encode()  # the cut at 2048 bytes falls inside the €
    binary = bytes(range(256)) * 20
    for body, content_type in ((text, "text/plain"), (binary, "application/octet-stream"), (b"short", "text/plain")):
        answer = await hookline.webhook("wf", content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 400
    items = {item["body_size"]: item for item in await stored(hookline)}
    assert set(items) == {len(text), len(binary), 5}

    long_text = (await hookline.api("GET", f"/api/refusals/{items[len(text)]['id']}")).json()
    assert long_text["body_encoding"] == "text"
    assert long_text["body"] == "é" * 1023  # 2046 bytes: the cut € is left out, not mangled
    assert long_text["body_truncated"] is True

    long_binary = (await hookline.api("GET", f"/api/refusals/{items[len(binary)]['id']}")).json()
    assert long_binary["body_encoding"] == "base64"
    assert base64.b64decode(long_binary["body"]) == binary[:2048]
    assert long_binary["body_truncated"] is True

    short = (await hookline.api("GET", f"/api/refusals/{items[5]['id']}")).json()
    assert (short["body"], short["body_encoding"], short["body_truncated"]) == ("short", "text", False)


async def test_a_body_refused_before_it_is_read_is_not_kept(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook("wf", {"max_body_size": 10}))
    assert (await hookline.webhook("wf", content=b"y" * 100)).status_code == 413
    [item] = await stored(hookline)
    shown = (await hookline.api("GET", f"/api/refusals/{item['id']}")).json()
    assert (shown["body"], shown["body_size"], shown["body_encoding"]) == (None, None, None)


async def test_unstorable_text_is_stored_replaced_not_refused(hookline: HooklineTestApp) -> None:
    refused = hookline.host.refused_calls
    refused.record(
        workflow=None,
        status=404,
        cause="not_found",
        message="key 'a\x00b\ud800'",
        method="POST",
        path="/api/webhooks/a\x00b",
        headers={"x-odd": "v\x00\udcff", "x-long": "z" * 5000},
        body=b"nul\x00inside",
    )
    [item] = await stored(hookline)
    shown = (await hookline.api("GET", f"/api/refusals/{item['id']}")).json()
    assert "\x00" not in shown["message"] + shown["path"] + shown["headers"]["x-odd"]
    assert len(shown["headers"]["x-long"]) == 512
    assert (shown["body_encoding"], base64.b64decode(shown["body"])) == ("base64", b"nul\x00inside")


async def test_record_never_raises(hookline: HooklineTestApp) -> None:
    refused = hookline.host.refused_calls
    refused.record(workflow=None, status="not a status", cause="x")  # type: ignore[arg-type]
    refused.record(workflow=None, status=400, cause="x", headers=42)  # type: ignore[arg-type]
    assert await stored(hookline) == []


# --- a flood ---------------------------------------------------------------------------------


async def test_a_flood_is_sampled_and_the_rest_counted(hookline: HooklineTestApp) -> None:
    refused = hookline.host.refused_calls
    clock = refused.clock = FakeClock()
    refused.per_workflow_rate, refused.total_rate = 2.0, 3.0
    await hookline.apply(webhook("wf", {"signature": {"header": "X-Hook-Check", "secrets": [SECRET]}}))

    for _ in range(30):  # one second's flood of badly signed calls, all answered
        assert (await hookline.webhook("wf", json={})).status_code == 401
    first = await stored(hookline, workflow="wf")
    assert len(first) == 2  # the workflow's rate
    assert sum(item["similar_dropped"] for item in first) == 28
    assert first[0]["similar_dropped"] == 28  # counted on the newest kept before them

    for _ in range(5):  # dropped after a row already written: added to it
        await hookline.webhook("wf", json={})
    assert [item["similar_dropped"] for item in await stored(hookline, workflow="wf")] == [33, 0]

    clock.now += 1.0  # a second later: two more kept
    for _ in range(10):
        await hookline.webhook("wf", json={})
    for _ in range(10):
        await hookline.webhook("nope", json={})
    items = await stored(hookline)
    # 2 more of wf, then the total rate (3 a second) leaves 1 for the calls to an unknown key.
    assert [item["workflow"] for item in items] == [None, "wf", "wf", "wf", "wf"]
    assert sum(item["similar_dropped"] for item in items) + len(items) == 30 + 5 + 10 + 10
    assert items[0]["similar_dropped"] == 9


async def test_a_flood_costs_neither_memory_nor_rows(hookline: HooklineTestApp) -> None:
    refused = hookline.host.refused_calls
    refused.clock = FakeClock()
    for number in range(100_000):
        refused.record(workflow=f"wf-{number % 7}", status=401, cause="invalid_signature", body=b"x" * 10_000)
    kept = 7 * int(refused.per_workflow_rate)  # one second's worth of each workflow: 35, below the total rate
    assert refused.pending == kept  # in memory: the bodies of 35 calls, 2 KiB each
    assert await refused.flush() == kept
    assert await Refusal.all().count() == kept
    dropped = sum(await Refusal.all().values_list("similar_dropped", flat=True))
    assert dropped == 100_000 - kept


# --- bounds ----------------------------------------------------------------------------------


async def test_the_table_keeps_the_newest_per_workflow_and_in_all(hookline: HooklineTestApp) -> None:
    hookline.host.settings = hookline.host.settings.with_overrides(refusals_per_workflow=3, refusals_max=5)
    refused = hookline.host.refused_calls
    refused.per_workflow_rate = refused.total_rate = 1000.0
    for number in range(6):
        refused.record(workflow="a", status=401, cause="invalid_signature", message=f"a{number}")
    await refused.flush()
    assert [item["message"] for item in await stored(hookline)] == ["a5", "a4", "a3"]
    for number in range(4):
        refused.record(workflow="b", status=405, cause="method_not_allowed", message=f"b{number}")
        await refused.flush()
    assert [item["message"] for item in await stored(hookline)] == ["b3", "b2", "b1", "a5", "a4"]
    refused.record(workflow=None, status=404, cause="not_found", message="n0")
    assert [item["message"] for item in await stored(hookline)] == ["n0", "b3", "b2", "b1", "a5"]


def test_the_bounds_are_settings() -> None:
    assert (Settings().refusals_per_workflow, Settings().refusals_max) == (100, 10_000)
    settings = Settings.from_env({"HOOKLINE_REFUSALS_PER_WORKFLOW": "7", "HOOKLINE_REFUSALS_MAX": "0"})
    assert (settings.refusals_per_workflow, settings.refusals_max) == (7, 0)
    with pytest.raises(Exception, match="HOOKLINE_REFUSALS_MAX must be a whole number of at least 0, not '-1'"):
        Settings.from_env({"HOOKLINE_REFUSALS_MAX": "-1"})


async def test_a_bound_of_zero_keeps_nothing(hookline: HooklineTestApp) -> None:
    hookline.host.settings = hookline.host.settings.with_overrides(refusals_max=0)
    assert (await hookline.webhook("nope", json={})).status_code == 404
    assert await stored(hookline) == []


# --- the writer ------------------------------------------------------------------------------


async def test_the_server_writes_in_the_background_and_on_stop(hookline: HooklineTestApp) -> None:
    refused = hookline.host.refused_calls
    refused.flush_delay = 0.0
    assert (await hookline.webhook("nope", json={})).status_code == 404
    deadline = asyncio.get_running_loop().time() + 10
    while await Refusal.all().count() == 0:  # written by the server's own task, not by the test
        assert asyncio.get_running_loop().time() < deadline, "the refusal was not written in the background"
        await asyncio.sleep(0.01)
    refused.record(workflow=None, status=404, cause="not_found", message="last")
    await refused.stop()  # what the server's stop does: the last ones are written
    assert await Refusal.filter(message="last").count() == 1


# --- reading: API and CLI ------------------------------------------------------------------------


async def test_api_filters_and_pages(hookline: HooklineTestApp) -> None:
    await hookline.apply(webhook("wf"))
    for _ in range(2):
        await hookline.client.get("/api/webhooks/wf")
    await hookline.webhook("nope", json={})
    await hookline.webhook("wf", content=b"{", headers={"Content-Type": "application/json"})
    everything = await stored(hookline)
    causes = ["invalid_body", "not_found", "method_not_allowed", "method_not_allowed"]
    assert [item["cause"] for item in everything] == causes
    assert [item["cause"] for item in await stored(hookline, workflow="wf")] == [causes[0], *causes[2:]]
    assert [item["cause"] for item in await stored(hookline, status=405)] == ["method_not_allowed"] * 2
    assert [item["workflow"] for item in await stored(hookline, cause="not_found")] == [None]
    assert await stored(hookline, workflow="gone") == []  # refusals outlive workflows: no 404

    first = (await hookline.api("GET", "/api/refusals", params={"limit": 3})).json()
    second = (await hookline.api("GET", "/api/refusals", params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [item["id"] for item in first["items"] + second["items"]] == [item["id"] for item in everything]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "argument"),
    [
        ("status=abc", "status"),
        ("status=99", "status"),
        ("status=4%C2%B2", "status"),
        ("cause=" + "x" * 65, "cause"),
        ("workflow=" + "w" * 129, "workflow"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=99999999999999999999999", "cursor"),
    ],
)
async def test_api_bad_filters_are_400_naming_the_argument(
    hookline: HooklineTestApp, query: str, argument: str
) -> None:
    answer = await hookline.api("GET", f"/api/refusals?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_request"
    assert argument in answer.json()["message"]


@pytest.mark.parametrize("refusal_id", ["abc", "0", "-1", "999999", "99999999999999999999999", "1e3"])
async def test_api_unknown_refusal_is_404(hookline: HooklineTestApp, refusal_id: str) -> None:
    answer = await hookline.api("GET", f"/api/refusals/{refusal_id}")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"


async def test_api_needs_the_token_and_is_documented(hookline: HooklineTestApp) -> None:
    assert (await hookline.client.get("/api/refusals")).status_code == 401
    assert (await hookline.client.get("/api/refusals/1")).status_code == 401
    document = (await hookline.client.get("/openapi.json")).json()
    assert set(document["paths"]["/api/refusals"]) == {"get"}
    assert set(document["paths"]["/api/refusals/{refusal_id}"]) == {"get", "parameters"}
    assert {"Refusal", "RefusalSummary"} <= set(document["components"]["schemas"])


def test_cli_lists_and_shows_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite://{tmp_path / 'cli.db'}"
    pm = make_plugin_manager()

    async def seed() -> None:
        host = Host(Settings(db_url=db), pm=pm)
        await host.migrate()
        await host.open_database()
        try:
            for cause, status in (("invalid_signature", 401), ("not_found", 404)):
                workflow = "wf" if status == 401 else None
                host.refused_calls.record(workflow=workflow, status=status, cause=cause, method="POST")
            await host.refused_calls.flush()
        finally:
            await host.close_database()

    asyncio.run(seed())
    group = build_cli(pm)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(group, [*args, "--db", db], obj={"pm": pm}, catch_exceptions=False)

    listed = invoke("refusals", "list")
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.stdout)["items"]
    assert [item["cause"] for item in items] == ["not_found", "invalid_signature"]
    only = json.loads(invoke("refusals", "list", "--workflow", "wf", "--status", "401", "--limit", "5").stdout)
    assert [item["cause"] for item in only["items"]] == ["invalid_signature"]
    assert json.loads(invoke("refusals", "list", "--cause", "not_found").stdout)["items"][0]["workflow"] is None

    shown = invoke("refusals", "show", str(items[1]["id"]))
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["cause"] == "invalid_signature"

    missing = invoke("refusals", "show", "999")
    assert (missing.exit_code, missing.stderr.strip()) == (1, "Error: no refused call with id 999")
    garbage = invoke("refusals", "show", "abc")
    assert garbage.exit_code == 2 and "refusal id must be a number" in garbage.stderr
    bad_status = invoke("refusals", "list", "--status", "99")
    assert bad_status.exit_code == 2 and "--status" in bad_status.stderr
