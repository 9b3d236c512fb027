"""The execution history's queries: the filters of ``GET /api/executions`` (and of
``host.executions.list``, which the API, the CLI and the console share), the text search in the
stored request, ``after`` for polling, and each workflow's activity (``host.executions.activity``,
``GET /api/workflows?include=activity``). Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import sync_workflow
from hookline.errors import BadRequest, NotFound
from hookline.storage.models import Execution
from hookline.testing import HooklineTestApp


def background_workflow(key: str = "later") -> dict[str, Any]:
    """An async workflow: the caller gets 200 at once, one condition node runs afterwards."""
    return {
        "key": key,
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "check", "type": "condition", "config": {"rules": {"left": "{{ $context.body.n }}", "op": "gt", "right": 0}}}],
    }


def replying_workflow(key: str = "pay") -> dict[str, Any]:
    """sync_workflow, whose high branch answers with a word that no request holds."""
    definition = sync_workflow(key)
    definition["nodes"][0]["branches"]["true"][0]["config"]["body"] = {"tier": "zeppelin-express"}
    return definition


async def ids(hookline: HooklineTestApp, **params: Any) -> list[int]:
    response = await hookline.api("GET", "/api/executions", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def call(hookline: HooklineTestApp, key: str, body: Any, **kwargs: Any) -> int:
    response = await hookline.webhook(key, json=body, **kwargs)
    assert response.status_code in (200, 202, 500), response.text  # 500: the workflow failed (workflow_failed)
    newest = (await hookline.host.executions.list(workflow=key, limit=1)).items[0]
    return newest["id"]


@pytest.fixture
async def history(hookline: HooklineTestApp) -> dict[str, int]:
    """A small history, by name: sync calls of 'pay' (succeeded, failed), one of 'other', an
    async call of 'later', a manual run and a replay of 'pay'."""
    await hookline.apply(replying_workflow("pay"))
    await hookline.apply(sync_workflow("other"))
    await hookline.apply(background_workflow("later"))
    made: dict[str, int] = {}
    made["paid"] = await call(
        hookline,
        "pay",
        {"amount": 150, "customer": {"email": "Ada.Lovelace@Example.com"}, "code": "50%_off"},
        params={"ref": "campaign-42"},
        headers={"X-Request-Id": "req-7f3a9"},
    )
    made["broken"] = await call(hookline, "pay", {"amount": "lots", "note": 'say "hi" to Zoë'})
    made["other"] = await call(hookline, "other", {"amount": 5, "code": "5000off"})
    response = await hookline.webhook("later", json={"n": 1, "tracking": "parcel-991"})
    assert response.status_code == 200
    made["later"] = (await hookline.host.executions.list(workflow="later", limit=1)).items[0]["id"]
    await hookline.wait_for_execution(made["later"])
    made["manual"] = (await hookline.host.executions.run_manual("pay", {"body": {"amount": 3, "via": "console"}}))["id"]
    replay = await hookline.host.replays.replay(made["broken"])
    await hookline.wait_for_execution(replay.execution)
    made["replay"] = replay.execution
    return made


# --- each filter alone and combined ------------------------------------------------------


async def test_status_one_or_several(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    assert await ids(hookline, status="failed") == [h["replay"], h["broken"]]
    both = [h["replay"], h["manual"], h["later"], h["other"], h["broken"], h["paid"]]
    assert await ids(hookline, status="failed,succeeded") == both
    assert await ids(hookline, status=["succeeded", "failed"]) == both  # ?status=succeeded&status=failed
    assert await ids(hookline, status="queued,running") == []
    service = await hookline.host.executions.list(status=["failed", "succeeded"], limit=2)
    assert [e["id"] for e in service.items] == both[:2]


async def test_mode(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    assert await ids(hookline, mode="sync") == [h["other"], h["broken"], h["paid"]]
    assert await ids(hookline, mode="async") == [h["later"]]
    assert await ids(hookline, mode="manual") == [h["manual"]]
    assert await ids(hookline, mode="replay") == [h["replay"]]
    assert await ids(hookline, mode=["manual", "replay"]) == [h["replay"], h["manual"]]
    service = await hookline.host.executions.list(mode=("async", "replay"))
    assert [e["mode"] for e in service.items] == ["replay", "async"]


async def test_since_and_until(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    day = datetime(2026, 11, 22, tzinfo=timezone.utc)
    await Execution.filter(id=h["paid"]).update(created_at=day + timedelta(hours=1))
    await Execution.filter(id=h["broken"]).update(created_at=day + timedelta(hours=13))
    await Execution.filter(id=h["other"]).update(created_at=day + timedelta(days=2))

    assert await ids(hookline, since="2026-11-22T00:00:00Z", until="2026-11-23T00:00:00Z") == [h["broken"], h["paid"]]
    assert await ids(hookline, until="2026-11-22T12:00:00Z") == [h["paid"]]
    # without an offset, UTC; with one, converted; a date alone is its midnight
    assert await ids(hookline, since="2026-11-22T13:00:00", until="2026-11-22T14:00:00") == [h["broken"]]
    assert await ids(hookline, since="2026-11-22T14:00:00+01:00", until="2026-11-22T16:00:00+02:00") == [h["broken"]]
    assert await ids(hookline, since="2026-11-24", until="2026-11-25") == [h["other"]]
    assert h["paid"] not in await ids(hookline, since="2026-11-22T01:00:00.000001Z")
    assert h["paid"] in await ids(hookline, since="2026-11-22T01:00:00Z")  # since is inclusive
    assert await ids(hookline, until="2026-11-22T01:00:00Z") == []  # until is not
    # the service takes datetimes too; a naive one is UTC
    page = await hookline.host.executions.list(since=day, until=datetime(2026, 11, 22, 12))
    assert [e["id"] for e in page.items] == [h["paid"]]


async def test_filters_combined(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    assert await ids(hookline, workflow="pay", status="failed", mode="sync") == [h["broken"]]
    assert await ids(hookline, workflow="pay", status="failed,succeeded", mode="sync,manual") == [
        h["manual"],
        h["broken"],
        h["paid"],
    ]
    assert await ids(hookline, workflow="pay", status="failed", q="zoë") == [h["replay"], h["broken"]]
    assert await ids(hookline, workflow="pay", status="failed", q="zoë", mode="replay") == [h["replay"]]
    assert await ids(hookline, workflow="other", q="zoë") == []
    assert await ids(hookline, status="succeeded", q="amount", after=h["other"]) == [h["manual"]]
    assert await ids(hookline, workflow="pay", since="2000-01-01", until="2100-01-01", status="succeeded") == [
        h["manual"],
        h["paid"],
    ]


# --- text search ---------------------------------------------------------------------------


async def test_search_finds_body_query_and_header_values_in_any_case(
    hookline: HooklineTestApp, history: dict[str, int]
) -> None:
    h = history
    assert await ids(hookline, q="ada.lovelace@example") == [h["paid"]]  # body, nested
    assert await ids(hookline, q="ADA.LOVELACE") == [h["paid"]]
    assert await ids(hookline, q="campaign-42") == [h["paid"]]  # query string
    assert await ids(hookline, q="REQ-7F3A9") == [h["paid"]]  # header value
    assert await ids(hookline, q="parcel-991") == [h["later"]]  # an async call's body
    assert await ids(hookline, q="console") == [h["manual"]]  # a manual run's input body
    assert await ids(hookline, q='say "hi"') == [h["replay"], h["broken"]]  # quotes as sent; a replay has the same request
    assert await ids(hookline, q="Zoë") == [h["replay"], h["broken"]]  # beyond ASCII
    assert await ids(hookline, q="  campaign-42 ") == [h["paid"]]  # trimmed


async def test_search_takes_like_wildcards_literally(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    assert await ids(hookline, q="50%_off") == [h["paid"]]
    assert await ids(hookline, q="%_o") == [h["paid"]]  # not "any text, one character, o"
    assert await ids(hookline, q="5_00") == []  # '_' is not any character: '5000off' does not match
    assert await ids(hookline, q="\\") == []


async def test_search_does_not_look_outside_the_request(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    paid = await hookline.host.executions.get(h["paid"])
    assert paid["reply"]["body"]["tier"] == "zeppelin-express"
    assert await ids(hookline, q="zeppelin") == []  # only in the reply
    broken = await hookline.host.executions.get(h["broken"])
    error_word = broken["error"]["message"].split()[0]
    assert error_word.lower() not in str(broken["context"]["body"]).lower()
    assert h["broken"] not in await ids(hookline, q=broken["error"]["message"])  # only in the error
    assert await ids(hookline, q="POST") == []  # the method
    assert await ids(hookline, q="raw_body") == []  # the context's own field names
    assert await ids(hookline, q="pay") == []  # the workflow's key


async def test_replay_of(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    assert await ids(hookline, replay_of=h["broken"]) == [h["replay"]]
    assert await ids(hookline, replay_of=h["paid"]) == []
    again = await hookline.host.replays.replay(h["broken"])
    await hookline.wait_for_execution(again.execution)
    page = await hookline.host.executions.list(replay_of=str(h["broken"]), status="failed")
    assert [e["id"] for e in page.items] == [again.execution, h["replay"]]


# --- after, cursors ------------------------------------------------------------------------


async def test_after_gives_only_newer_executions(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    assert await ids(hookline, after=h["manual"]) == [h["replay"]]
    assert await ids(hookline, after=h["replay"]) == []
    assert await ids(hookline, after=0) == await ids(hookline)
    # more new ones than a page: newest first, and the cursor goes down to 'after', not past it
    first = (await hookline.api("GET", "/api/executions", params={"after": h["broken"], "limit": 2})).json()
    assert [e["id"] for e in first["items"]] == [h["replay"], h["manual"]]
    rest = await ids(hookline, after=h["broken"], limit=2, cursor=first["next_cursor"])
    assert rest == [h["later"], h["other"]]
    last = (await hookline.api("GET", "/api/executions", params={"after": h["broken"], "limit": 2, "cursor": h["other"]})).json()
    assert last == {"items": [], "next_cursor": None}


async def test_cursor_pages_with_filters_walk_every_match_once(hookline: HooklineTestApp) -> None:
    await hookline.apply(sync_workflow("pay"))
    made = []
    for n in range(9):
        made.append(await call(hookline, "pay", {"amount": "bad" if n % 3 == 0 else 5, "batch": "b-17"}))
    failed = [made[n] for n in range(9) if n % 3 == 0]
    for params in ({"status": "failed"}, {"status": "failed,succeeded"}, {"q": "B-17", "status": "failed,error"}):
        seen: list[int] = []
        cursor = None
        while True:
            page = (await hookline.api("GET", "/api/executions", params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})})).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        expected = sorted(made if params["status"] == "failed,succeeded" else failed, reverse=True)
        assert seen == expected, params


# --- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, named",
    [
        ({"status": "done"}, "status"),
        ({"status": "failed,done"}, "status"),
        ({"mode": "fast"}, "mode"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"since": "2026-11-23", "until": "2026-11-22"}, "until"),
        ({"q": "x" * 201}, "q"),
        ({"after": "-1"}, "after"),
        ({"after": "abc"}, "after"),
        ({"after": str(2**63)}, "after"),
        ({"replay_of": "x"}, "replay_of"),
        ({"cursor": "zz"}, "cursor"),
        ({"limit": "0"}, "limit"),
    ],
)
async def test_bad_arguments_are_400s_naming_them(hookline: HooklineTestApp, params: dict[str, str], named: str) -> None:
    response = await hookline.api("GET", "/api/executions", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_request"
    assert named in body["message"]


async def test_bad_arguments_of_the_service_are_bad_requests(hookline: HooklineTestApp) -> None:
    executions = hookline.host.executions
    for kwargs in ({"status": ["failed", 3]}, {"mode": "sync,fast"}, {"since": 12}, {"q": "\udc80"}, {"after": True}):
        with pytest.raises(BadRequest):
            await executions.list(**kwargs)
    with pytest.raises(NotFound):
        await executions.list(workflow="ghost")
    with pytest.raises(BadRequest):
        await executions.activity([f"w{n}" for n in range(501)])
    with pytest.raises(BadRequest):
        await executions.activity(["pay"], since="soon")


# --- activity ------------------------------------------------------------------------------


async def test_activity_last_execution_and_counts_by_status(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    h = history
    await hookline.apply(sync_workflow("quiet"))
    long_ago = datetime.now(timezone.utc) - timedelta(days=3)
    await Execution.filter(id=h["paid"]).update(created_at=long_ago)

    activity = await hookline.host.executions.activity(["pay", "quiet", "ghost", "later", "pay"])
    assert list(activity) == ["pay", "quiet", "later"]  # in the order asked, once; no 'ghost'
    pay = activity["pay"]
    assert pay["last_execution"]["id"] == h["replay"] and pay["last_execution"]["status"] == "failed"
    assert pay["counts"] == {"succeeded": 1, "failed": 2}  # the manual run; broken and its replay; not 'paid'
    assert pay["total"] == 3
    since = datetime.fromisoformat(pay["since"])
    assert timedelta(hours=23, minutes=59) < datetime.now(timezone.utc) - since < timedelta(hours=24, minutes=1)
    assert activity["quiet"] == {"since": pay["since"], "last_execution": None, "counts": {}, "total": 0}
    assert activity["later"]["counts"] == {"succeeded": 1}

    earlier = await hookline.host.executions.activity(["pay"], since=long_ago - timedelta(minutes=1))
    assert earlier["pay"]["counts"] == {"succeeded": 2, "failed": 2}
    assert await hookline.host.executions.activity([]) == {}


async def test_workflows_list_includes_activity_when_asked(hookline: HooklineTestApp, history: dict[str, int]) -> None:
    plain = (await hookline.api("GET", "/api/workflows")).json()["items"]
    assert all("activity" not in item for item in plain)
    response = await hookline.api("GET", "/api/workflows", params={"include": "activity", "limit": 2})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["key"] for item in items] == ["later", "other"]
    assert items[0]["activity"]["last_execution"]["id"] == history["later"]
    assert items[1]["activity"]["counts"] == {"succeeded": 1}
    since = (await hookline.api("GET", "/api/workflows", params={"include": "activity", "activity_since": "2100-01-01"})).json()
    assert {item["key"]: item["activity"]["total"] for item in since["items"]} == {"later": 0, "other": 0, "pay": 0}

    for params in ({"include": "versions"}, {"include": "activity", "activity_since": "soon"}, {"activity_since": "2026-01-01"}):
        bad = await hookline.api("GET", "/api/workflows", params=params)
        assert bad.status_code == 400, params
        assert bad.json()["error"] == "bad_request"


# --- PostgreSQL: the search's index ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("hookline_db_url", ["postgres"], indirect=True)
async def test_postgres_search_uses_the_trigram_index(hookline: HooklineTestApp) -> None:
    """Migration 0006's index is of the very expression the search uses: with sequential scans
    and plain index scans off, the planner can only answer through it."""
    from tortoise import connections

    from hookline.storage.history import POSTGRES_SEARCH_TEXT

    connection = connections.get("default")
    _, found = await connection.execute_query(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_hookline_execution_search'", []
    )
    assert found and "gin_trgm_ops" in found[0][0]
    async with connection.acquire_connection() as raw:
        await raw.execute("SET enable_seqscan = off; SET enable_indexscan = off")
        try:
            plan = await raw.fetch(
                "EXPLAIN SELECT e.id FROM hookline_execution e "
                f"WHERE {POSTGRES_SEARCH_TEXT.format(context='e.context')} ILIKE '%campaign-42%' ORDER BY e.id DESC LIMIT 51"
            )
        finally:
            await raw.execute("RESET enable_seqscan; RESET enable_indexscan")
    assert "idx_hookline_execution_search" in "\n".join(row[0] for row in plan)


# --- SQLite: the plans (SQLite plans without statistics: as on a million rows) ---------------


@pytest.mark.parametrize("hookline_db_url", ["sqlite"], indirect=True)
async def test_sqlite_reads_the_history_through_its_indexes(hookline: HooklineTestApp) -> None:
    """Several statuses are one index range each, not every row of the workflow; the activity's
    counts read (workflow_id, created_at, status) alone, not (workflow_id, status, id) for its
    order (which took seconds on a million executions)."""
    from tortoise import connections

    from hookline.storage import history as stored
    from hookline.storage.models import ExecutionStatus

    connection = connections.get("default")

    async def plan(statement: str, values: list[Any]) -> list[str]:
        _, rows = await connection.execute_query("EXPLAIN QUERY PLAN " + statement, values)
        return [row[3] for row in rows]

    params = stored._Params("sqlite")
    where = stored.ExecutionFilter(workflow_id=1, statuses=(ExecutionStatus.ERROR, ExecutionStatus.TIMED_OUT))
    page = await plan(stored._page_statement(params, "sqlite", where, 51), params.values)
    assert sum("(workflow_id=? AND status=?)" in line for line in page) == 2, page
    assert not any(line.startswith("SCAN e") for line in page), page

    counts = await plan(*stored._counts_statement("sqlite", list(range(1, 51)), datetime.now(timezone.utc)))
    assert any("COVERING INDEX" in line and "(workflow_id=? AND created_at>?)" in line for line in counts), counts


# --- the CLI: the same filters -----------------------------------------------------------------


def test_cli_executions_list_filters_and_workflows_activity(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from hookline.cli.main import build_cli
    from hookline.plugins import make_plugin_manager

    monkeypatch.chdir(tmp_path)
    pm = make_plugin_manager()
    group = build_cli(pm)

    def cli(*args: str) -> Any:
        return CliRunner().invoke(group, [*args, "--db", f"sqlite://{tmp_path / 'cli.db'}"], obj={"pm": pm}, catch_exceptions=False)

    def out(*args: str) -> Any:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert cli("migrate").exit_code == 0
    definition = tmp_path / "pay.json"
    definition.write_text(json.dumps(sync_workflow("pay")))
    out("workflows", "apply", str(definition))
    made = []
    for n, body in enumerate([{"amount": 500, "order": "A-1"}, {"amount": "x", "order": "B-2"}, {"amount": 7, "order": "C-3"}]):
        payload = tmp_path / f"in{n}.json"
        payload.write_text(json.dumps({"body": body}))
        made.append(json.loads(cli("run", "pay", "--input", str(payload)).stdout)["id"])

    def listed(*args: str) -> list[int]:
        return [e["id"] for e in out("executions", "list", *args)["items"]]

    assert listed("--mode", "manual", "--status", "succeeded", "--status", "failed") == made[::-1]
    assert listed("--status", "failed,succeeded", "-q", "b-2") == [made[1]]
    assert listed("--query", "A-1", "--since", "2000-01-01", "--until", "2100-01-01") == [made[0]]
    assert listed("--after", str(made[0]), "--limit", "1") == [made[2]]
    bad = cli("executions", "list", "--status", "done")
    assert bad.exit_code == 1 and "unknown status 'done'" in bad.stderr
    bad = cli("executions", "list", "--since", "soon")
    assert bad.exit_code == 1 and "since must be an ISO 8601 time" in bad.stderr

    [pay] = out("workflows", "list", "--activity")["items"]
    assert pay["activity"]["last_execution"]["id"] == made[2]
    assert pay["activity"]["counts"] == {"succeeded": 2, "failed": 1} and pay["activity"]["total"] == 3
    assert "activity" not in out("workflows", "list")["items"][0]
