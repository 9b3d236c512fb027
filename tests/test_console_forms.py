"""The console's config forms, generated from each type's JSON Schema and ui_hints: the schema
to fields mapping, reading a submitted form back into a config, and the pages that create and
edit a workflow with them (a third-party node type included)."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any, ClassVar, Mapping

import httpx
import pytest
import yaml

from conftest import EXAMPLES
from console_support import sign_in
from hookline import NodeResult, NodeRun, NodeType, hookimpl
from hookline.testing import HooklineTestApp
from hookline_console.forms import MISSING, read_config, read_field, schema_fields
from hookline_console.masking import MASK

EXAMPLE = yaml.safe_load((EXAMPLES / "order-paid.yaml").read_text())
HOSTILE = '"><img src=x onerror=alert(1)>'


class NotifyNode(NodeType):
    """A stranger's node type: nothing in the console knows it."""

    name = "notify"
    title = "Send a notification"
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["channel", "message"],
        "additionalProperties": False,
        "properties": {
            "channel": {"$ref": "#/$defs/channel"},
            "message": {"type": "string", "title": "Message text", "description": "What is sent."},
            "retries": {"type": "integer", "minimum": 0, "maximum": 5},
            "ratio": {"type": "number"},
            "urgent": {"type": "boolean"},
            "token": {"type": "string", "writeOnly": True, "minLength": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "level": {"anyOf": [{"const": "info"}, {"const": "warn"}]},
            "delay": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
            "login": {
                "type": "object",
                "properties": {"user": {"type": "string"}, "password": {"type": "string", "writeOnly": True}},
            },
            "extra": {},
            "code": {"type": ["integer", "string"]},
        },
        "$defs": {"channel": {"enum": ["email", "sms"], "description": "Where it goes."}},
    }
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "message": {"label": "Message", "help": "Plain text; templates allowed.", "widget": "textarea", "order": 1},
        "retries": {"order": 2, "placeholder": "0"},
        "ratio": {"widget": "text"},
    }

    @classmethod
    def check(cls, node: Any, workflow: Any) -> list[str]:
        if node.config.get("urgent") and not node.config.get("retries"):
            return ["an urgent notification needs retries"]
        return []

    async def execute(self, run: NodeRun) -> NodeResult:
        return NodeResult(result=run.config)


class NotifyPlugin:
    @hookimpl
    def register_node_types(self, register: Any) -> None:
        register(NotifyNode)


@pytest.fixture
def hookline_plugins() -> list[object]:
    return [NotifyPlugin()]


@pytest.fixture
async def console(hookline: HooklineTestApp) -> HooklineTestApp:
    response = await sign_in(hookline.client)
    assert response.status_code == 303, response.text
    return hookline


NOTIFY = {
    "key": "notify-me",
    "title": "Notify me",
    "trigger": {"type": "webhook", "config": {}},
    "nodes": [
        {
            "key": "tell",
            "type": "notify",
            "config": {
                "channel": "sms",
                "message": "hello",
                "retries": 1,
                "token": "tok-s3cret",
                "login": {"user": "ann", "password": "pw-s3cret"},
            },
        }
    ],
}


def fields_of(config: Any = None, hints: Mapping[str, Any] | None = None) -> dict[str, Any]:
    made = schema_fields(NotifyNode.config_schema, NotifyNode.ui_hints if hints is None else hints, config or {}, namespace="n")
    return {f.name: f for f in made}


# --- the schema -> fields mapping ----------------------------------------------------------


def test_each_property_gets_the_widget_its_schema_calls_for() -> None:
    fields = fields_of(hints={})
    widgets = {name: f.widget for name, f in fields.items()}
    assert widgets == {
        "channel": "select",  # an enum, behind a $ref to $defs
        "message": "text",
        "retries": "number",
        "ratio": "number",
        "urgent": "checkbox",
        "token": "password",  # writeOnly
        "tags": "json",
        "level": "select",  # anyOf of consts
        "delay": "number",  # oneOf integer or null
        "login": "json",
        "extra": "json",  # {}
        "code": "json",  # a union of types
    }
    assert fields["channel"].options == [("email", "email"), ("sms", "sms")]
    assert fields["channel"].help == "Where it goes."  # the $ref target's description
    assert fields["channel"].required and fields["message"].required and not fields["retries"].required
    assert fields["message"].label == "Message text" and fields["message"].help == "What is sent."  # title, description
    assert fields["retries"].label == "Retries" and (fields["retries"].minimum, fields["retries"].maximum) == (0, 5)
    assert fields["tags"].input_name == "n.config.tags"
    assert list(fields) == list(NotifyNode.config_schema["properties"])  # schema order


def test_ui_hints_override_label_help_widget_and_order() -> None:
    fields = fields_of()
    assert list(fields)[:2] == ["message", "retries"]  # hinted order first, then the schema's
    assert list(fields)[2:] == [n for n in NotifyNode.config_schema["properties"] if n not in ("message", "retries")]
    message = fields["message"]
    assert (message.label, message.help, message.widget) == ("Message", "Plain text; templates allowed.", "textarea")
    assert fields["retries"].placeholder == "0"
    assert fields["ratio"].widget == "text"


def test_properties_are_humanised_when_nothing_names_them() -> None:
    schema = {"type": "object", "properties": {"ip_allowlist": {"type": "string"}, "maxAge": {"type": "integer"}}}
    assert [f.label for f in schema_fields(schema, {}, {}, namespace="t")] == ["Ip allowlist", "Max age"]


def test_alternatives_of_one_type_keep_its_widget() -> None:
    schema = {
        "type": "object",
        "properties": {
            "span": {"type": "string", "anyOf": [{"pattern": "^[0-9]+s$"}, {"const": "forever"}]},
            "secret": {"writeOnly": True, "anyOf": [{"type": "string"}, {"type": "object", "required": ["env"]}]},
            "count": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
        },
    }
    fields = {f.name: f for f in schema_fields(schema, {}, {"secret": {"env": "SECRET"}}, namespace="t")}
    assert {name: f.widget for name, f in fields.items()} == {"span": "text", "secret": "password", "count": "number"}
    assert fields["secret"].value == "" and fields["secret"].note == "Saved (from env SECRET): leave empty to keep it."


def test_a_schema_without_properties_is_one_json_field_for_the_whole_config() -> None:
    [whole] = schema_fields({"type": "object"}, {}, {"a": 1}, namespace="trigger")
    assert (whole.input_name, whole.widget) == ("trigger.config", "json")
    assert read_config([whole], {"trigger.config": '{"b": [1, 2]}'}) == ({"b": [1, 2]}, {})


def test_secrets_are_never_rendered() -> None:
    fields = fields_of(NOTIFY["nodes"][0]["config"])
    token = fields["token"]
    assert token.widget == "password" and token.value == "" and token.has_saved and not token.html_required
    assert "tok-s3cret" not in repr(vars(token))
    login = fields["login"]  # a secret inside a JSON field is masked
    assert "pw-s3cret" not in login.value and MASK in login.value and '"ann"' in login.value
    # A hint cannot show a secret either.
    hinted = schema_fields(NotifyNode.config_schema, {"token": {"widget": "text"}}, {"token": "tok-s3cret"}, namespace="n")
    assert [(f.widget, f.value) for f in hinted if f.name == "token"] == [("text", "")]


# --- form -> config ----------------------------------------------------------------------------


def test_a_submitted_form_becomes_a_config() -> None:
    fields = list(fields_of().values())
    config, errors = read_config(
        fields,
        {
            "n.config.channel": "email",
            "n.config.message": "line one\r\nline two",
            "n.config.retries": "3",
            "n.config.ratio": "0.25",
            "n.config.urgent": "true",
            "n.config.token": "",
            "n.config.tags": '["a", "b"]',
            "n.config.level": "warn",
            "n.config.delay": "",
            "n.config.login": "",
            "n.config.extra": "null",
        },
    )
    assert errors == {}
    assert config == {
        "channel": "email",
        "message": "line one\nline two",
        "retries": 3,
        "ratio": 0.25,
        "urgent": True,
        "tags": ["a", "b"],
        "level": "warn",
        "extra": None,
    }  # the empty optional fields (token, delay, login, code) are left out


def test_an_unchecked_box_is_false_once_set_and_left_out_when_never_set() -> None:
    [urgent] = [f for f in fields_of().values() if f.name == "urgent"]
    assert read_field(urgent, None, MISSING) is MISSING
    assert read_field(urgent, None, True) is False
    assert read_field(urgent, "true", MISSING) is True


def test_an_empty_secret_keeps_the_stored_one_and_masked_json_is_restored() -> None:
    stored = NOTIFY["nodes"][0]["config"]
    fields = list(fields_of(stored).values())
    form = {f.input_name: f.value for f in fields if f.widget != "checkbox"}
    config, errors = read_config(fields, form, stored)
    assert errors == {}
    assert config == stored
    form["n.config.token"] = "tok-new"
    config, _ = read_config(fields, form, stored)
    assert config["token"] == "tok-new"
    # A masked value with nothing stored behind it is refused, not saved as the secret.
    config, errors = read_config(fields, form, {**stored, "login": {"user": "ann"}})
    assert "replace the hidden value" in errors["n.config.login"]


def test_values_that_cannot_be_read_are_problems_naming_their_field() -> None:
    fields = list(fields_of().values())
    _, errors = read_config(
        fields,
        {"n.config.tags": '["a", ', "n.config.retries": "2.5", "n.config.ratio": "lots", "n.config.channel": "fax", "n.config.extra": "NaN"},
    )
    assert errors["n.config.tags"].startswith("not valid JSON: Expecting value (line 1, column 7)")
    assert errors["n.config.retries"] == "'2.5' is not a whole number"
    assert errors["n.config.ratio"] == "'lots' is not a number"
    assert errors["n.config.channel"].startswith("'fax' is not one of the choices")
    assert "NaN" in errors["n.config.extra"]
    assert {f.name: f.value for f in fields}["tags"] == '["a", '  # shown again as typed


# --- the pages -------------------------------------------------------------------------------


class FormReader(HTMLParser):
    """The controls of a page's forms as a browser would submit them untouched: names and
    values, checked boxes, selected options, textareas' text."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.ids: dict[str, dict[str, str]] = {}
        self.labels: set[str] = set()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.ids[a["id"]] = {"tag": tag, **a}
        if tag == "form":
            self.forms.append({"method": a.get("method", "get"), "fields": {}})
        elif tag == "label" and "for" in a:
            self.labels.add(a["for"])
        elif not self.forms:
            return
        fields = self.forms[-1]["fields"]
        if tag == "input" and "name" in a:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    fields[a["name"]] = a.get("value", "on")
            else:
                fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a["name"]
            fields.setdefault(self._select, "")
        elif tag == "option" and self._select and "selected" in a:
            fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # The one newline after <textarea> is not part of the value.
            self.forms[-1]["fields"][self._textarea] = self._text.removeprefix("\n")
            self._textarea = None


def read_page(page: httpx.Response) -> FormReader:
    reader = FormReader()
    reader.feed(page.text)
    return reader


def post_form(page: httpx.Response) -> dict[str, Any]:
    """What the page's main form would submit (the sign-out form posts too, with one field)."""
    posting = [f["fields"] for f in read_page(page).forms if f["method"] == "post"]
    return dict(max(posting, key=len))


async def test_editing_the_example_through_the_form_saves_a_new_version(console: HooklineTestApp) -> None:
    await console.apply(EXAMPLE)
    page = await console.client.get("/console/workflows/order-paid/form")
    assert page.status_code == 200
    fields = post_form(page)
    # The trigger's fields, and each node's, the ones in branches too.
    assert "trigger.config.body" in fields and "nodes.check.config.rules" in fields
    assert "nodes.express.config.body" in fields and "nodes.standard.config.status" in fields
    assert 'href="/console/workflows/order-paid/edit"' in page.text  # structure: the YAML editor
    assert fields["title"] == "Order paid callback" and fields["sync"] == "true"
    fields["title"] = "Order paid (forms)"
    fields["nodes.express.config.status"] = "201"
    saved = await console.client.post("/console/workflows/order-paid/form", data=fields)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/console/workflows/order-paid?saved=2"
    stored = await console.host.workflows.get("order-paid")
    assert stored["version"] == 2 and stored["title"] == "Order paid (forms)"
    definition = stored["definition"]
    express = definition["nodes"][0]["branches"]["true"][0]
    assert express["config"]["status"] == 201
    expected = copy.deepcopy(EXAMPLE)
    expected["nodes"][0]["branches"]["true"][0]["config"]["status"] = 201
    assert definition["nodes"] == expected["nodes"]  # the rest as it was
    assert definition["trigger"] == expected["trigger"]
    # Both editors link to each other.
    workflow = await console.client.get("/console/workflows/order-paid")
    assert 'href="/console/workflows/order-paid/form"' in workflow.text
    yaml_editor = await console.client.get("/console/workflows/order-paid/edit")
    assert 'href="/console/workflows/order-paid/form"' in yaml_editor.text


async def test_a_third_party_node_type_gets_its_generated_fields(console: HooklineTestApp) -> None:
    await console.apply(NOTIFY)
    page = await console.client.get("/console/workflows/notify-me/form")
    assert page.status_code == 200
    reader = read_page(page)
    channel = reader.ids["f-nodes.tell.config.channel"]
    assert channel["tag"] == "select" and "required" in channel
    message = reader.ids["f-nodes.tell.config.message"]
    assert message["tag"] == "textarea" and "f-nodes.tell.config.message-help" in message["aria-describedby"]
    assert "Plain text; templates allowed." in page.text and ">Message <span" in page.text
    assert reader.ids["f-nodes.tell.config.retries"]["type"] == "number"
    assert reader.ids["f-nodes.tell.config.token"]["type"] == "password"
    assert "tok-s3cret" not in page.text and "pw-s3cret" not in page.text
    # Every control has its label.
    controls = [i for i, a in reader.ids.items() if a["tag"] in ("input", "select", "textarea") and a.get("type") != "hidden"]
    assert controls and not [c for c in controls if c not in reader.labels]

    fields = post_form(page)
    fields.update({"nodes.tell.config.channel": "email", "nodes.tell.config.retries": "4", "nodes.tell.config.urgent": "true", "nodes.tell.config.tags": '["ops"]'})
    saved = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert saved.status_code == 303, saved.text
    config = (await console.host.workflows.get("notify-me"))["definition"]["nodes"][0]["config"]
    assert config == {
        "channel": "email",
        "message": "hello",
        "retries": 4,
        "urgent": True,
        "tags": ["ops"],
        "token": "tok-s3cret",  # left empty: kept
        "login": {"user": "ann", "password": "pw-s3cret"},  # masked: restored
    }


async def test_invalid_values_are_422_with_each_problem_at_its_field(console: HooklineTestApp) -> None:
    await console.apply(NOTIFY)
    page = await console.client.get("/console/workflows/notify-me/form")
    fields = post_form(page)
    fields.update({"nodes.tell.config.retries": "9", "nodes.tell.config.message": "", "title": "Typed title"})
    response = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert response.status_code == 422
    reader = read_page(response)
    retries = reader.ids["f-nodes.tell.config.retries"]
    assert retries["aria-invalid"] == "true" and "f-nodes.tell.config.retries-problem" in retries["aria-describedby"]
    assert "9 is greater than the maximum of 5" in response.text
    message = reader.ids["f-nodes.tell.config.message"]
    assert message["aria-invalid"] == "true"
    assert 'id="f-nodes.tell.config.message-problem">&#39;message&#39; is a required property' in response.text
    assert 'href="#f-nodes.tell.config.retries"' in response.text  # the list at the top links there
    assert reader.ids["f-title"]["value"] == "Typed title"  # what was typed is kept
    assert (await console.host.workflows.get("notify-me"))["version"] == 1


async def test_broken_json_in_a_field_is_a_422_naming_the_field(console: HooklineTestApp) -> None:
    await console.apply(NOTIFY)
    page = await console.client.get("/console/workflows/notify-me/form")
    fields = post_form(page)
    fields["nodes.tell.config.tags"] = '["ops"'
    response = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert response.status_code == 422
    assert '<a href="#f-nodes.tell.config.tags">Tags</a>: not valid JSON' in response.text
    assert read_page(response).ids["f-nodes.tell.config.tags"]["aria-invalid"] == "true"
    assert "[&#34;ops&#34;\n</textarea>" in response.text or '["ops"' in response.text.replace("&#34;", '"')


async def test_hostile_values_are_escaped(console: HooklineTestApp) -> None:
    nodes = copy.deepcopy(NOTIFY["nodes"])
    nodes[0]["config"]["message"] = HOSTILE
    await console.apply({**NOTIFY, "title": HOSTILE, "nodes": nodes})
    page = await console.client.get("/console/workflows/notify-me/form")
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "&lt;img src=x" in page.text
    fields = post_form(page)
    assert fields["nodes.tell.config.message"] == HOSTILE and fields["title"] == HOSTILE
    fields["nodes.tell.config.tags"] = HOSTILE  # not JSON: shown again as typed, escaped
    again = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert again.status_code == 422
    assert "<img src=x" not in again.text and "&lt;img src=x" in again.text
    for response in (page, again):
        tags = read_page(response).tags
        assert not [t for t, _ in tags if t == "img"]
        assert not [(t, a) for t, a in tags for name in a if name.startswith("on")]  # no event handlers
        assert [a.get("src") for t, a in tags if t == "script"] == ["/console/static/htmx.min.js", "/console/static/console.js"]


async def test_a_post_without_the_csrf_token_is_refused(console: HooklineTestApp) -> None:
    await console.apply(NOTIFY)
    page = await console.client.get("/console/workflows/notify-me/form")
    fields = post_form(page)
    del fields["csrf_token"]
    fields["title"] = "changed"
    refused = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert refused.status_code == 403
    new = await console.client.post("/console/workflows/new/form", data={"trigger.type": "webhook", "node.type": "notify"})
    assert new.status_code == 403
    assert (await console.host.workflows.get("notify-me"))["title"] == "Notify me"


async def test_a_save_made_meanwhile_is_not_undone(console: HooklineTestApp) -> None:
    await console.apply(NOTIFY)
    page = await console.client.get("/console/workflows/notify-me/form")
    await console.apply({**NOTIFY, "title": "Saved meanwhile"})
    fields = post_form(page)
    fields["nodes.tell.config.message"] = "mine"
    response = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert response.status_code == 409 and "nothing was saved" in response.text
    again = post_form(response)
    assert again["version"] == "2" and again["nodes.tell.config.message"] == "mine"
    saved = await console.client.post("/console/workflows/notify-me/form", data=again)
    assert saved.status_code == 303


async def test_a_new_workflow_from_chosen_types(console: HooklineTestApp) -> None:
    page = await console.client.get("/console/workflows/new/form?trigger=webhook&node=notify")
    assert page.status_code == 200
    reader = read_page(page)
    chooser = next(f for f in reader.forms if f["method"] == "get" and "node" in f["fields"])
    assert chooser["fields"] == {"trigger": "webhook", "node": "notify"}
    # htmx swaps the fields when a type changes; without script the button shows them.
    assert 'hx-trigger="change"' in page.text and 'hx-select="#type-fields"' in page.text
    assert '<button type="submit">Show fields</button>' in page.text
    fields = post_form(page)
    assert fields["node.type"] == "notify" and "node.config.channel" in fields and "trigger.config.body" in fields
    fields.update({"key": "made-here", "title": "Made here", "node.key": "tell", "node.config.channel": "sms", "node.config.message": "hi"})
    created = await console.client.post("/console/workflows/new/form", data=fields)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/console/workflows/made-here?saved=1"
    stored = (await console.host.workflows.get("made-here"))["definition"]
    assert stored["title"] == "Made here" and stored["enabled"] is True and stored["sync"] is False
    assert stored["nodes"] == [{"key": "tell", "type": "notify", "config": {"channel": "sms", "message": "hi"}}]
    # The same key again: the problem is at the key field.
    again = await console.client.post("/console/workflows/new/form", data=fields)
    assert again.status_code == 409
    assert read_page(again).ids["f-key"]["aria-invalid"] == "true"
    # Another node type: other fields (htmx sends the node key typed so far along).
    response = await console.client.get("/console/workflows/new/form?trigger=webhook&node=response&node.key=reply")
    other = post_form(response)
    assert other["node.type"] == "response" and other["node.key"] == "reply"
    assert "node.config.status" in other and "node.config.channel" not in other


async def test_a_new_workflow_with_problems_keeps_what_was_typed(console: HooklineTestApp) -> None:
    page = await console.client.get("/console/workflows/new/form?trigger=webhook&node=notify")
    fields = post_form(page)
    fields.update({"key": "bad key!", "title": "Kept", "node.key": "tell", "node.config.message": "hi", "node.config.retries": "-1"})
    response = await console.client.post("/console/workflows/new/form", data=fields)
    assert response.status_code == 422
    reader = read_page(response)
    assert reader.ids["f-key"]["aria-invalid"] == "true" and reader.ids["f-key"]["value"] == "bad key!"
    assert reader.ids["f-node.config.retries"]["aria-invalid"] == "true"
    assert reader.ids["f-node.config.channel"]["aria-invalid"] == "true"  # required, not chosen
    assert reader.ids["f-title"]["value"] == "Kept"
    assert not (await console.host.workflows.list()).items


async def test_a_problem_no_field_is_about_is_listed_at_the_top(console: HooklineTestApp) -> None:
    await console.apply(NOTIFY)
    page = await console.client.get("/console/workflows/notify-me/form")
    fields = post_form(page)
    fields.update({"nodes.tell.config.urgent": "true", "nodes.tell.config.retries": ""})
    del fields["enabled"]
    response = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert response.status_code == 422
    # The type's own check reports it on the node's config: the list links to the node's fieldset.
    assert '<a href="#s-nodes.tell">Node tell</a>: an urgent notification needs retries' in response.text
    assert 'aria-describedby="s-nodes.tell-problems"' in response.text
    fields["nodes.tell.config.retries"] = "2"
    saved = await console.client.post("/console/workflows/notify-me/form", data=fields)
    assert saved.status_code == 303
    stored = await console.host.workflows.get("notify-me")
    assert stored["enabled"] is False  # unchecked
    assert stored["definition"]["nodes"][0]["config"]["urgent"] is True
