"""Custom webhook paths (``path: orders/:id/events/:kind`` under /api/webhooks/): parsing, the
parameters in ``$context.params`` (typed when declared), the key URL still working, clashes
refused at save naming both workflows, and a rule per refusal."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hookline import DefinitionError, TriggerType, hookimpl
from hookline.storage.models import Execution
from hookline.testing import HooklineTestApp
from hookline_webhook.custom_paths import parse_custom_path, split_url_path


class OtherTrigger(TriggerType):
    """A trigger type with no URL, whose workflows' keys take none."""

    name = "other-test"


class OtherTriggers:
    @hookimpl
    def register_trigger_types(self, register: Callable[[type[TriggerType]], None]) -> None:
        register(OtherTrigger)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [OtherTriggers()]


def hook(key: str, path: str | None = None, **config: Any) -> dict[str, Any]:
    trigger_config = {**({"path": path} if path else {}), **config}
    return {
        "key": key,
        "sync": True,
        "trigger": {"type": "webhook", "config": trigger_config},
        "nodes": [
            {
                "key": "answer",
                "type": "response",
                "config": {"body": {"workflow": key, "params": "{{ $context.params }}"}},
            }
        ],
    }


# --- parsing ------------------------------------------------------------------------------------


def test_a_path_is_literal_segments_and_parameters() -> None:
    path = parse_custom_path("/orders/:id/events/:kind/")
    assert path.text == "orders/:id/events/:kind" and path.address == "4:orders"
    assert parse_custom_path("tenants/acme/orders/:id").address == "4:tenants/acme/orders"
    assert parse_custom_path("a/b/:x").shorter_addresses() == ["3:a", "3:a/b"]
    assert path.parameters == ["id", "kind"]
    assert path.match(["orders", "42", "events", "paid"]) == {"id": "42", "kind": "paid"}
    assert path.match(["orders", "42", "events"]) is None
    assert path.match(["orders", "42", "event", "paid"]) is None
    assert path.match(["Orders", "42", "events", "paid"]) is None  # case-sensitive, like keys


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (":id/orders", "first segment must be literal"),
        ("orders/:id/:id", "appear twice"),
        ("orders/:1d", "a parameter is ':' and a name"),
        ("orders/:", "a parameter is ':' and a name"),
        ("orders/a b", "letters, digits"),
        ("orders/%41", "letters, digits"),
        ("orders/:id/x?y", "letters, digits"),
        ("a/" * 17 + "b", "at most 16 segments"),
        ("orders/executions/:id", "status URL"),
        ("orders/executions/17", "status URL"),
        ("orders/executions/-1", "status URL"),
    ],
)
def test_bad_paths_are_refused(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_custom_path(path)


def test_overlap_gives_a_url_both_match() -> None:
    def overlap(a: str, b: str) -> str | None:
        return parse_custom_path(a).overlap(parse_custom_path(b))

    assert overlap("orders/:id", "orders/special") == "orders/special"
    assert overlap("orders/special", "orders/:id") == "orders/special"
    assert overlap("orders/:id/x", "orders/:n/x") == "orders/1/x"
    assert overlap("orders/:id", "orders/:id/x") is None
    assert overlap("orders/a/:x", "orders/b/:x") is None
    assert overlap("orders/:a/x", "orders/b/:y") == "orders/b/x"


def test_url_segments_are_decoded_and_empty_ones_refused() -> None:
    assert split_url_path("orders/a%20b/x") == ["orders", "a b", "x"]
    assert split_url_path("orders/%2F/x") == ["orders", "/", "x"]
    assert split_url_path("orders//x") is None and split_url_path("orders/") is None
    assert split_url_path("orders/%ff") is None
    assert split_url_path("orders/%00") is None  # (PostgreSQL refuses a NUL in text: a 404, not a 503)


# --- through the webhook ------------------------------------------------------------------------


async def test_a_call_to_a_custom_path_runs_the_workflow_with_its_parameters(hookline: HooklineTestApp) -> None:
    saved = await hookline.apply(hook("order-events", "orders/:id/events/:kind"))
    assert saved["endpoints"]["webhook_path"] == "/api/webhooks/orders/:id/events/:kind"
    answer = await hookline.client.post("/api/webhooks/orders/42/events/paid", json={})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"workflow": "order-events", "params": {"id": "42", "kind": "paid"}}
    stored = await Execution.filter(workflow__key="order-events").first()
    assert stored is not None and stored.context["path_params"] == {"id": "42", "kind": "paid"}
    encoded = await hookline.client.post("/api/webhooks/orders/A%2042/events/paid", json={})
    assert encoded.json()["params"]["id"] == "A 42"
    # The key URL keeps working (no path parameters then).
    by_key = await hookline.webhook("order-events", json={})
    assert by_key.status_code == 200 and by_key.json()["params"] == {}
    for wrong in (
        "orders/42/events",
        "orders/42/events/paid/x",
        "orders/42/event/paid",
        "orders//events/paid",
        "nothing/1/2/3",
    ):
        missing = await hookline.client.post(f"/api/webhooks/{wrong}", json={})
        assert missing.status_code == 404 and missing.json()["error"] == "not_found", wrong
        assert "check the URL" in missing.json()["message"]


async def test_path_parameters_are_typed_and_join_declared_ones(hookline: HooklineTestApp) -> None:
    config = {
        "path_params": [{"path": "id", "type": "integer", "required": True}],
        "query": [{"path": "page", "type": "integer"}],
    }
    await hookline.apply(hook("typed", "items/:id/:label", **config))
    answer = await hookline.client.post("/api/webhooks/items/7/blue?page=2", json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["params"] == {"id": 7, "label": "blue", "page": 2}
    invalid = await hookline.client.post("/api/webhooks/items/seven/blue", json={})
    assert invalid.status_code == 400 and invalid.json()["error"] == "invalid_parameters"
    assert invalid.json()["invalid"][0] == {
        "in": "path_params",
        "path": "id",
        "expected": "integer",
        "message": 'expected an integer, got "seven"',
    }
    by_key = await hookline.webhook("typed", json={})  # required: the key URL has no id
    assert by_key.status_code == 400 and by_key.json()["missing"] == [{"in": "path_params", "path": "id"}]


async def test_a_one_segment_path_after_the_keys(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("github-events-7f3a", "github"))
    answer = await hookline.client.post("/api/webhooks/github", json={})
    assert answer.status_code == 200 and answer.json()["workflow"] == "github-events-7f3a"
    nocobase = await hookline.client.post("/api/webhook:trigger/github", json={})
    assert nocobase.status_code == 200  # the same lookup
    # A workflow may not then take that key, nor another that path.
    with pytest.raises(DefinitionError, match="is the path of workflow 'github-events-7f3a'"):
        await hookline.apply(hook("github"))
    with pytest.raises(DefinitionError, match="both match /api/webhooks/github"):
        await hookline.apply(hook("other", "github"))
    await hookline.apply(hook("plain"))
    with pytest.raises(DefinitionError, match="is the key URL of workflow 'plain'"):
        await hookline.apply(hook("third", "plain"))
    await hookline.apply(hook("plain", "plain"))  # its own key: the same URL, no clash


async def test_overlapping_paths_are_refused_at_save_naming_both(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("first", "orders/:id"))
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(hook("second", "orders/special"))
    message = refused.value.problems[0].message
    assert refused.value.problems[0].location == "trigger.config"
    assert message == (
        "path 'orders/special' of workflow 'second' and path 'orders/:id' of workflow 'first' both match "
        "/api/webhooks/orders/special; change one of them"
    )
    await hookline.apply(hook("third", "orders/:id/x"))  # another length: no URL matches both
    await hookline.apply(hook("fourth", "invoices/:id"))
    await hookline.apply(hook("first", "orders/:order"))  # a workflow never clashes with itself
    # Moving a path frees it.
    await hookline.apply(hook("first", "orders-v2/:id"))
    await hookline.apply(hook("second", "orders/special"))
    answer = await hookline.client.post("/api/webhooks/orders/special", json={})
    assert answer.json()["workflow"] == "second"
    # Deleting a workflow frees its path too.
    assert (await hookline.api("DELETE", "/api/workflows/second")).status_code == 204
    await hookline.apply(hook("fifth", "orders/:anything"))


async def test_workflow_files_clashing_with_each_other_save_nothing(hookline: HooklineTestApp) -> None:
    with pytest.raises(DefinitionError, match="both match /api/webhooks/a/b") as refused:
        await hookline.host.workflows.apply_all([("a.yaml", hook("a", "a/:x")), ("b.yaml", hook("b", "a/b"))])
    assert {problem.location.split(":")[0] for problem in refused.value.problems} == {"a.yaml", "b.yaml"}
    assert (await hookline.api("GET", "/api/workflows/a")).status_code == 404


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"path": ":id"}, "first segment must be literal"),
        ({"path": "orders/:id", "query": [{"path": "id"}]}, "also a declared parameter's name"),
        ({"path": "orders/:n", "body": [{"path": "x", "alias": "n"}]}, "also a declared parameter's name"),
        ({"path": "orders/:id", "path_params": [{"path": "other"}]}, "'other' is not a parameter of the path"),
        ({"path": "orders/:id", "path_params": [{"path": "id", "alias": "x"}]}, "declared by its name alone"),
        ({"path_params": [{"path": "id"}]}, "without a 'path'"),
        ({"path": "a b"}, "does not match"),
    ],
)
async def test_path_configs_are_checked_when_saved(
    hookline: HooklineTestApp, config: dict[str, Any], problem: str
) -> None:
    definition = hook("bad")
    definition["trigger"]["config"] = config
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(definition)
    assert problem in str(refused.value.to_dict()), refused.value.to_dict()


async def test_status_urls_are_not_custom_paths(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("orders", "orders/:id/:action", methods=["GET", "POST"]))
    status = await hookline.client.get("/api/webhooks/orders/executions/1")
    assert status.status_code == 403 and status.json()["error"] == "invalid_token"  # the status route, not the path
    answer = await hookline.client.post("/api/webhooks/orders/executions/1", json={})
    assert answer.status_code == 405  # the status route, which only GETs
    answer = await hookline.client.get("/api/webhooks/orders/executions/x")
    assert answer.status_code == 200 and answer.json()["params"] == {"id": "executions", "action": "x"}


async def test_manual_runs_take_path_parameters(hookline: HooklineTestApp) -> None:
    execution = await hookline.run_workflow(hook("manual", "m/:id"), {"path_params": {"id": "9"}, "body": {}})
    assert execution["status"] == "succeeded"
    assert execution["reply"]["body"]["params"] == {"id": "9"}


# --- samples and capture ------------------------------------------------------------------------


async def test_a_url_sample_with_the_workflows_path_gives_its_parameters(hookline: HooklineTestApp) -> None:
    url = "https://hooks.example/api/webhooks/orders/42/events/paid?page=2"
    parsed = await hookline.api(
        "POST", "/api/webhook-samples/parse", json={"url": url, "path": "orders/:id/events/:kind"}
    )
    assert parsed.status_code == 200, parsed.text
    assert parsed.json()["parameters"]["path_params"] == [
        {"path": "id", "type": "string", "required": False},
        {"path": "kind", "type": "string", "required": False},
    ]
    assert parsed.json()["examples"]["path_params"] == {"id": "42", "kind": "paid"}
    assert parsed.json()["parameters"]["query"] == [{"path": "page", "type": "string", "required": False}]
    no_query = await hookline.api(
        "POST",
        "/api/webhook-samples/parse",
        json={"url": "/api/webhooks/orders/1/events/x", "path": "orders/:id/events/:kind"},
    )
    assert no_query.status_code == 200 and "query" not in no_query.json()["parameters"]
    for body, problem in [
        ({"url": "/api/webhooks/orders/1", "path": "orders/:id/events/:kind"}, "does not match the workflow's path"),
        ({"url": "/elsewhere/orders/1/events/x", "path": "orders/:id/events/:kind"}, "does not match"),
        ({"url": "/api/webhooks/orders/1", "path": ":id"}, "is not valid"),
        ({"query": "a=1", "path": "orders/:id"}, "'path' goes with url only"),
        ({"url": "/api/webhooks/orders/1", "path": 7}, "'path' must be text"),
    ]:
        refused = await hookline.api("POST", "/api/webhook-samples/parse", json=body)
        assert refused.status_code == 400 and problem in refused.json()["message"], (body, refused.text)


async def test_a_capture_through_a_custom_path_lists_its_parameters(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("captured", "shipments/:id", body=[{"path": "id", "alias": "body_id"}]))
    assert (await hookline.api("POST", "/api/workflows/captured/webhook-capture")).status_code == 201
    answer = await hookline.client.post("/api/webhooks/shipments/S-9", json={"id": 1})
    assert answer.json()["captured"] is True
    capture = (await hookline.api("GET", "/api/workflows/captured/webhook-capture")).json()
    assert capture["request"]["path_params"] == {"id": "S-9"}
    parameters = capture["parameters"]
    assert parameters["path_params"] == [{"path": "id", "type": "string", "required": False}]
    assert parameters["body"] == [{"path": "id", "type": "integer", "required": False, "alias": "body_id"}]
    assert await Execution.filter(workflow__key="captured").count() == 0


@pytest.mark.parametrize(
    ("first", "second"), [("orders/special/x", "orders/:id/x"), ("orders/:id/x", "orders/special/x")]
)
async def test_overlaps_are_found_whichever_is_saved_first(hookline: HooklineTestApp, first: str, second: str) -> None:
    await hookline.apply(hook("one", first))
    with pytest.raises(DefinitionError, match="both match /api/webhooks/orders/special/x"):
        await hookline.apply(hook("two", second))


async def test_paths_that_only_look_alike_do_not_clash(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("underscore", "a_b/:x"))
    await hookline.apply(hook("letter", "aXb/c"))  # '_' is no wildcard here
    await hookline.apply(hook("upper", "Orders/:x"))
    await hookline.apply(hook("lower", "orders/y"))  # paths are case-sensitive
    assert (await hookline.client.post("/api/webhooks/Orders/y", json={})).json()["workflow"] == "upper"
    assert (await hookline.client.post("/api/webhooks/orders/y", json={})).json()["workflow"] == "lower"
    assert (await hookline.client.post("/api/webhooks/aXb/c", json={})).json()["workflow"] == "letter"
    assert (await hookline.client.post("/api/webhooks/a_b/c", json={})).json()["workflow"] == "underscore"


async def test_many_workflows_under_one_prefix_are_each_found(hookline: HooklineTestApp) -> None:
    """Paths sharing their literal prefix and length (tenants/:t/<action>) share an address:
    every one is still found (no cap on the candidates)."""
    actions = [f"action{n:03d}" for n in range(120)]
    await hookline.host.workflows.apply_all([(f"{a}.yaml", hook(f"t-{a}", f"tenants/:tenant/{a}")) for a in actions])
    for action in (actions[0], actions[60], actions[-1]):
        answer = await hookline.client.post(f"/api/webhooks/tenants/acme/{action}", json={})
        assert answer.json() == {"workflow": f"t-{action}", "params": {"tenant": "acme"}}


async def test_workflow_files_moving_a_path_free_it_in_the_same_batch(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("mover", "x/:id"))
    # The folder moves mover elsewhere and gives x/special to another: checked as they will be.
    await hookline.host.workflows.apply_all(
        [("mover.yaml", hook("mover", "y/:id")), ("taker.yaml", hook("taker", "x/special"))]
    )
    assert (await hookline.client.post("/api/webhooks/x/special", json={})).json()["workflow"] == "taker"
    # Applying the same folder again finds nothing to refuse (each clashes with itself only).
    await hookline.host.workflows.apply_all(
        [("mover.yaml", hook("mover", "y/:id")), ("taker.yaml", hook("taker", "x/special"))]
    )
    with pytest.raises(DefinitionError) as refused:  # a clash is reported once, not per source of it
        await hookline.host.workflows.apply_all(
            [("a.yaml", hook("taker", "x/special")), ("b.yaml", hook("other", "x/:n"))]
        )
    assert len([p for p in refused.value.problems if p.location.startswith("b.yaml")]) == 1


async def test_a_one_segment_path_answers_where_the_key_is_not_a_webhooks(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "github", "trigger": {"type": "other-test"}, "nodes": []})
    await hookline.apply(hook("gh-events", "github"))  # no URL is taken: that workflow has none
    answer = await hookline.client.post("/api/webhooks/github", json={})
    assert answer.status_code == 200 and answer.json()["workflow"] == "gh-events"


async def test_a_batch_is_saved_whole_whatever_its_order(hookline: HooklineTestApp) -> None:
    """Each file is saved checked against the batch as it will be, not against what of it is saved so far."""
    await hookline.apply(hook("mover", "x/:id"))
    await hookline.apply(hook("mover2", "q/:id"))
    batch = [
        ("mover2.yaml", hook("mover2", "q2/:id")),
        ("taker.yaml", hook("taker", "x/special")),
        ("mover.yaml", hook("mover", "y/:id")),
    ]
    await hookline.host.workflows.apply_all(batch)
    assert (await hookline.client.post("/api/webhooks/x/special", json={})).json()["workflow"] == "taker"
    assert (await hookline.client.post("/api/webhooks/y/1", json={})).json()["workflow"] == "mover"


async def test_a_nul_in_a_custom_path_url_is_a_404(hookline: HooklineTestApp) -> None:
    await hookline.apply(hook("nul", "a/:x"))
    answer = await hookline.client.post("/api/webhooks/a/%00", json={})
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
