"""The ``hookline`` CLI, in-process through click's runner (same services as the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from conftest import EXAMPLES, sync_workflow
from hookline.cli.main import build_cli
from hookline.plugins import make_plugin_manager


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOOKLINE_API_TOKEN", raising=False)
    pm = make_plugin_manager()
    group = build_cli(pm)
    db = f"sqlite://{tmp_path / 'cli.db'}"

    def invoke(*args: str, input: str | None = None, db_url: str | None = db) -> Result:
        argv = list(args) + (["--db", db_url] if db_url else [])
        return CliRunner().invoke(group, argv, obj={"pm": pm}, input=input, catch_exceptions=False)

    invoke("migrate")
    return invoke


def out(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_migrate_is_idempotent(cli: Any) -> None:
    assert out(cli("migrate")) == {"applied": []}


def test_plugins_prints_json(cli: Any) -> None:
    plugins = out(cli("plugins", db_url=None))
    assert [p["name"] for p in plugins] == ["condition", "console", "error_trigger", "http", "response", "webhook"]
    assert "hookline.web.api" in [p["name"] for p in out(cli("plugins", "--all", db_url=None))]


def test_apply_a_directory_then_list_show_and_run(cli: Any, tmp_path: Path) -> None:
    applied = out(cli("workflows", "apply", str(EXAMPLES)))
    keys = ("order-paid", "order-events", "ship-order", "failure-alerts", "failure-inbox")
    assert {(a["key"], a["version"], a["created"]) for a in applied} == {(key, 1, True) for key in keys}
    again = out(cli("workflows", "apply", str(EXAMPLES)))
    assert {(a["key"], a["version"], a["changed"]) for a in again} == {(key, 1, False) for key in keys}

    listed = out(cli("workflows", "list", "-q", "paid"))
    assert [w["key"] for w in listed["items"]] == ["order-paid"]
    shown = out(cli("workflows", "show", "order-paid"))
    assert shown["definition"]["nodes"][0]["key"] == "check"

    payload = tmp_path / "order.json"
    payload.write_text(json.dumps({"body": {"id": "A-7", "amount": 250}}))
    execution = out(cli("run", "order-paid", "--input", str(payload)))
    assert execution["status"] == "succeeded" and execution["mode"] == "manual"
    assert execution["reply"]["body"]["tier"] == "high"

    listed = out(cli("executions", "list", "--workflow", "order-paid", "--status", "succeeded"))
    assert [e["id"] for e in listed["items"]] == [execution["id"]]
    assert out(cli("executions", "show", str(execution["id"])))["jobs"][1]["node"] == "express"


def test_run_reads_yaml_from_stdin_and_exits_1_when_the_run_fails(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "pay.yaml").write_text(yaml.safe_dump(sync_workflow()))
    out(cli("workflows", "apply", str(tmp_path / "pay.yaml")))
    result = cli("run", "pay", "--input", "-", input="body: {amount: lots}\n")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"


def test_invalid_files_are_reported_and_nothing_is_saved(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "a.yaml").write_text(yaml.safe_dump(sync_workflow(key="good")))
    broken = sync_workflow(key="bad")
    broken["nodes"][0]["type"] = "conditon"
    (folder / "b.yaml").write_text(yaml.safe_dump(broken))
    (folder / "c.json").write_text(json.dumps(sync_workflow(key="good")))
    result = cli("workflows", "apply", str(folder))
    assert result.exit_code == 1
    assert "b.yaml: nodes[0].type: unknown node type 'conditon'" in result.stderr
    assert "c.json: key: 'good' is also defined in" in result.stderr
    assert out(cli("workflows", "list"))["items"] == []


def test_unreadable_files_are_a_clear_error(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("key: [unclosed\n")
    result = cli("workflows", "apply", str(tmp_path / "x.yaml"))
    assert result.exit_code == 1
    assert "cannot read it as YAML" in result.stderr


def test_errors_are_one_line_not_a_traceback(cli: Any) -> None:
    missing = cli("workflows", "show", "nope")
    assert missing.exit_code == 1 and "no workflow with key 'nope'" in missing.stderr
    unmigrated = cli("workflows", "list", db_url="sqlite:///nonexistent-dir/x.db")
    assert unmigrated.exit_code == 1
    assert "directory '/nonexistent-dir' does not exist" in unmigrated.stderr
    assert "Traceback" not in unmigrated.output
    unknown = cli("workflows", "list", db_url="mysql://x")
    assert unknown.exit_code == 1 and "not supported" in unknown.stderr
    fresh = cli("workflows", "list", db_url=f"sqlite://{Path.cwd() / 'fresh.db'}")
    assert fresh.exit_code == 1 and "hookline migrate" in fresh.stderr


def test_an_execution_id_that_is_not_a_number_is_refused_in_one_line(cli: Any) -> None:
    for command in (("executions", "show"), ("executions", "replay")):
        result = cli(*command, "abc")
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr == "Error: execution id must be a number (see 'hookline executions list'), not 'abc'\n"


def test_run_help_says_what_the_input_is_and_it_is_so(cli: Any, tmp_path: Path) -> None:
    helped = " ".join(cli("run", "--help", db_url=None).stdout.split())
    assert "For a webhook workflow it stands for the request, not only its body" in helped
    assert '({"amount": 150} is the same as {"body": {"amount": 150}})' in helped
    assert "Without --input the body is {}" in helped

    out(cli("workflows", "apply", str(EXAMPLES)))
    as_body = out(cli("run", "order-events", "--input", "-", input='{"amount": 150}'))
    as_parts = out(cli("run", "order-events", "--input", "-", input='{"body": {"amount": 150}}'))
    assert as_body["context"] == as_parts["context"]
    assert as_body["context"]["body"] == {"amount": 150}
    with_query = out(cli("run", "order-events", "--input", "-", input='{"body": {"amount": 150}, "query": {"page": "1"}}'))
    assert with_query["context"]["query"] == {"page": "1"}
    without_input = cli("run", "order-events")
    assert without_input.exit_code == 1  # the example requires an amount: {} has none
    assert without_input.stderr.startswith("Error: Missing required parameter(s)")
    assert '"missing": [{"in": "body", "path": "amount"}]' in without_input.stderr  # which one


def test_token_rotate_prints_a_token_the_api_accepts(cli: Any, tmp_path: Path) -> None:
    token = out(cli("token", "rotate"))["token"]
    assert len(token) >= 40
    second = out(cli("token", "rotate"))["token"]
    assert second != token


def test_an_error_is_one_line_with_only_the_details_that_add_to_it(cli: Any) -> None:
    missing = cli("workflows", "show", "ghost")
    assert (missing.exit_code, missing.stderr) == (1, "Error: no workflow with key 'ghost'\n")
    out(cli("workflows", "apply", str(EXAMPLES)))
    refused = cli("run", "order-paid", "--input", "-", input='{"id": "A-1", "amount": "many"}')
    assert refused.exit_code == 1
    assert refused.stderr.startswith('Error: Invalid parameter(s) {"invalid": [{"in": "body", "path": "amount"')


def test_run_refuses_an_empty_input_rather_than_run_with_a_null_body(cli: Any) -> None:
    out(cli("workflows", "apply", str(EXAMPLES)))
    empty = cli("run", "order-events", "--input", "-", input="  \n")
    assert (empty.exit_code, empty.stderr) == (
        1, "Error: <stdin>: empty; give a JSON or YAML document, or leave out --input for the body {}\n"
    )
