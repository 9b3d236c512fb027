"""The HTTP Request node (``http-request``, plugin ``hookline-http``): every option, every refusal,
against real upstream servers on 127.0.0.1 / 127.0.0.2 (tests/test_http_upstream.py). No HTTP is
mocked; the only patched function is the event loop's ``getaddrinfo`` in the DNS rebinding test,
where it stands in for a hostile DNS server.

Nothing here asserts on time: timeouts are either what a test expects to fire (an upstream that
never answers) or generous safety nets, and order is shown by what the upstream saw.

The node does not depend on the database, so these tests run on SQLite only;
tests/test_http_storage.py stores its results on both databases.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hookline import DefinitionError, PluginError
from hookline.settings import Settings
from hookline.testing import TEST_TOKEN, HooklineTestApp
from hookline_http import plugin
from hookline_http.clients import HttpClients
from hookline_http.egress import EgressPolicy, EgressRefused, classify, inner_addresses, parse_allow_list
from hookline_http.network import guarded_socket_factory
from hookline_http.retry import RetryPolicy, retry_after
from hookline_http.schema import CONFIG_SCHEMA, UI_HINTS
from hookline_http.settings import HttpSettings
from test_http_upstream import Received, Upstream, send

NODE = "http-request"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def hookline_db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only (see the module's docstring)."""
    path = tmp_path / "hookline.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite://{path}"


@pytest.fixture
def http_allow() -> str | None:
    """``HOOKLINE_HTTP_ALLOW`` for the host under test; ``None`` leaves it unset. Parametrize it
    to change it."""
    return "127.0.0.1, 127.0.0.2"


@pytest.fixture
def http_env() -> dict[str, str]:
    """More of the environment the host is built in (the node's secrets, its limits)."""
    return {}


@pytest.fixture
def hookline_settings(
    hookline_db_url: str, http_allow: str | None, http_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    # Set before the `hookline` fixture builds the host: the plugin reads them then.
    if http_allow is None:
        monkeypatch.delenv("HOOKLINE_HTTP_ALLOW", raising=False)
    else:
        monkeypatch.setenv("HOOKLINE_HTTP_ALLOW", http_allow)
    for name in ("HOOKLINE_HTTP_MAX_PER_HOST", "HOOKLINE_HTTP_MAX_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in http_env.items():
        monkeypatch.setenv(name, value)
    return Settings(db_url=hookline_db_url, api_token=TEST_TOKEN, shutdown_grace=5.0)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream("127.0.0.1").start()
    yield server
    await server.close()


@pytest.fixture
async def upstream2() -> AsyncIterator[Upstream]:
    """A second upstream, on 127.0.0.2 (Linux routes all of 127/8 to the loopback interface)."""
    server = await Upstream("127.0.0.2").start()
    yield server
    await server.close()


def workflow(config: dict[str, Any], *, key: str = "call", **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "trigger": {"type": "webhook"},
        "nodes": [{"key": "call", "type": NODE, "config": config}],
        **extra,
    }


async def call(hookline: HooklineTestApp, config: dict[str, Any], body: Any = None) -> dict[str, Any]:
    """Run a workflow of one HTTP Request node by hand; its job."""
    execution = await hookline.run_workflow(workflow(config), {"body": body if body is not None else {}})
    [job] = execution["jobs"]
    assert job["status"] == ("succeeded" if execution["status"] == "succeeded" else "failed"), execution
    return job


async def result_of(hookline: HooklineTestApp, config: dict[str, Any], body: Any = None) -> dict[str, Any]:
    job = await call(hookline, config, body)
    assert job["status"] == "succeeded", job["error"]
    return job["result"]


async def error_of(hookline: HooklineTestApp, config: dict[str, Any], body: Any = None) -> dict[str, Any]:
    job = await call(hookline, config, body)
    assert job["status"] == "failed", job["result"]
    return job["error"]


# --- the node type and its config ------------------------------------------------------------


def objects_in(schema: Any, where: str = "config") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            yield where, schema
        for key, value in schema.items():
            yield from objects_in(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from objects_in(value, f"{where}[{index}]")


def test_every_record_of_the_schema_is_closed_and_described() -> None:
    records = list(objects_in(CONFIG_SCHEMA))
    assert len(records) > 8
    assert [where for where, schema in records if schema.get("additionalProperties") is not False] == []
    undescribed = [name for name, prop in CONFIG_SCHEMA["properties"].items() if not prop.get("description")]
    assert undescribed == []
    assert set(UI_HINTS) == set(CONFIG_SCHEMA["properties"])
    auth = CONFIG_SCHEMA["properties"]["auth"]["properties"]
    secrets = [
        auth["basic"]["properties"]["password"],
        auth["bearer"]["properties"]["token"],
        auth["header"]["properties"]["value"],
    ]
    assert all(secret["writeOnly"] is True and secret["required"] == ["env"] for secret in secrets)


async def test_the_plugin_registers_the_node_type(hookline: HooklineTestApp) -> None:
    response = await hookline.api("GET", "/api/plugins")
    [http] = [p for p in response.json()["plugins"] if p["name"] == "http"]
    assert http["distribution"] == "hookline-http"
    assert http["node_types"] == [NODE]
    assert set(http["hooks"]) == {"register_node_types", "shutdown"}


REFUSED_AT_SAVE = [
    ({"url": "http://a.example/", "method": "GET", "body": {"json": 1}}, "a GET request has no body"),
    ({"url": "http://a.example/", "method": "HEAD", "body": {"text": "x"}}, "a HEAD request has no body"),
    ({"url": "http://a.example/", "method": "OPTIONS", "body": {"form": {}}}, "an OPTIONS request"),
    (
        {"url": "http://a.example/", "method": "POST", "body": {"json": 1, "text": "x"}},
        "exactly one of json, form or text",
    ),
    (
        {"url": "http://a.example/", "method": "POST", "body": {"content_type": "a/b"}},
        "exactly one of json, form or text",
    ),
    (
        {"url": "http://a.example/", "method": "POST", "body": {"json": 1, "content_type": "a/b"}},
        "content_type goes with a text body",
    ),
    ({"url": "a.example/path"}, "is not absolute"),
    ({"url": "ftp://a.example/"}, "only http and https"),
    ({"url": "file:///etc/passwd"}, "only http and https"),
    ({"url": "http://user:pw@a.example/"}, "must not hold credentials"),
    ({"url": "http:///path"}, "has no host"),
    ({"url": "http://a.example/a b"}, "holds a space"),
    ({"url": "http://a.example:99999/"}, "invalid port"),
    ({"url": "http://a.example:0/"}, "invalid port"),
    ({"url": "http://a.example/", "headers": {"Host": "b"}}, "'Host' is computed"),
    ({"url": "http://a.example/", "headers": {"content-length": "1"}}, "'content-length' is computed"),
    ({"url": "http://a.example/", "headers": {"Transfer-Encoding": "chunked"}}, "computed"),
    ({"url": "http://a.example/", "headers": {"Connection": "close"}}, "computed"),
    ({"url": "http://a.example/", "headers": {"Accept": "a", "accept": "b"}}, "are the same header"),
    ({"url": "http://a.example/", "headers": {"X-A": "line\nbreak"}}, "does not match"),
    ({"url": "http://a.example/", "headers": {"Bad Name": "x"}}, "does not match"),
    (
        {"url": "http://a.example/", "headers": {"Authorization": "x"}, "auth": {"bearer": {"token": {"env": "T"}}}},
        "would be replaced by auth",
    ),
    (
        {
            "url": "http://a.example/",
            "headers": {"x-key": "x"},
            "auth": {"header": {"name": "X-Key", "value": {"env": "T"}}},
        },
        "would be replaced by auth.header",
    ),
    (
        {"url": "http://a.example/", "auth": {"header": {"name": "Host", "value": {"env": "T"}}}},
        "cannot carry a secret",
    ),
    ({"url": "http://a.example/", "auth": {"bearer": {"token": "written-out"}}}, "is not of type 'object'"),
    (
        {"url": "http://a.example/", "auth": {"bearer": {"token": {"env": "{{ $context.body.name }}"}}}},
        "does not match",
    ),
    ({"url": "http://a.example/", "auth": {"basic": {"username": "u", "password": "p"}}}, "is not of type 'object'"),
    (
        {
            "url": "http://a.example/",
            "auth": {"bearer": {"token": {"env": "T"}}, "header": {"name": "X", "value": {"env": "T"}}},
        },
        "too many properties",
    ),
    ({"url": "http://a.example/", "auth": {}}, "should be non-empty"),
    ({"url": "http://a.example/", "timeout": {"total": 0}}, "less than or equal to the minimum"),
    ({"url": "http://a.example/", "timeout": {"connect": 3601}}, "greater than the maximum"),
    ({"url": "http://a.example/", "timeout": {"read": 3}}, "Additional properties"),
    ({"url": "http://a.example/", "redirects": 21}, "greater than the maximum"),
    ({"url": "http://a.example/", "max_response_size": 64 * 1024 * 1024 + 1}, "greater than the maximum"),
    ({"url": "http://a.example/", "response_format": "xml"}, "is not one of"),
    ({"url": "http://a.example/", "fail_on_status": ["6xx"]}, "'6xx' is not a status (404) or a class of statuses"),
    ({"url": "http://a.example/", "retry": {"attempts": 11}}, "greater than the maximum"),
    ({"url": "http://a.example/", "retry": {"statuses": [99]}}, "99 is less than the minimum of 100"),
    ({"url": "http://a.example/", "method": "TRACE"}, "is not one of"),
    ({"url": "http://a.example/", "proxy": "http://p/"}, "Additional properties"),
    ({"method": "GET"}, "'url' is a required property"),
    # With auth, a caller must not be able to move the host: the origin is written out first.
    *(
        ({"url": url, "auth": {"bearer": {"token": {"env": "T"}}}}, "lets a caller choose where the credentials go")
        for url in (
            "http://api.example.test{{ $context.body.path }}",
            "https://{{ $context.body.tenant }}.api.example.com/",
            "{{ $context.body.url }}",
            "https://api.example.com:{{ $context.body.port }}/",
            "https://user{{ $context.body.x }}@api.example.com/",
        )
    ),
]


@pytest.mark.parametrize(("config", "message"), REFUSED_AT_SAVE, ids=[m for _, m in REFUSED_AT_SAVE])
async def test_a_config_is_refused_when_saved(hookline: HooklineTestApp, config: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(workflow(config))
    texts = [str(problem) for problem in refused.value.problems]
    assert any(message in text and text.startswith("nodes[0].config") for text in texts), texts


async def test_a_templated_url_is_checked_when_the_node_runs(hookline: HooklineTestApp) -> None:
    saved = await hookline.apply(workflow({"url": "{{ $context.body.url }}"}))
    assert saved["key"] == "call"
    # With auth, templates after the written-out origin are fine.
    bearer = {"bearer": {"token": {"env": "T"}}}
    for url in (
        "https://api.example.com/{{ $context.body.path }}",
        "http://api.example.com:8080?q={{ $context.body.q }}",
    ):
        assert (await hookline.apply(workflow({"url": url, "auth": bearer})))["key"] == "call"


# --- requests --------------------------------------------------------------------------------


async def test_a_get_gives_status_headers_body_url_attempts_and_time(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    result = await result_of(hookline, {"url": upstream.url("/echo/order")})
    assert result["status"] == 200
    assert result["body"] == {"method": "GET", "path": "/echo/order", "headers": {}, "body": ""}
    assert result["headers"]["content-type"] == "application/json"
    assert result["url"] == upstream.url("/echo/order")
    [attempt] = result["attempts"]
    assert attempt["attempt"] == 1 and attempt["status"] == 200 and attempt["waited_ms"] == 0 and "error" not in attempt
    assert isinstance(attempt["ms"], int) and isinstance(result["ms"], int)
    assert result["request"]["method"] == "GET" and result["request"]["url"] == upstream.url("/echo/order")
    assert "body_encoding" not in result
    assert upstream.requests[0].headers["user-agent"].startswith("hookline-http/")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_each_method_with_a_body(hookline: HooklineTestApp, upstream: Upstream, method: str) -> None:
    result = await result_of(hookline, {"method": method, "url": upstream.url("/echo"), "body": {"json": {"a": 1}}})
    assert result["body"]["method"] == method
    assert json.loads(result["body"]["body"]) == {"a": 1}


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_each_method_without_a_body(hookline: HooklineTestApp, upstream: Upstream, method: str) -> None:
    result = await result_of(hookline, {"method": method, "url": upstream.url("/echo")})
    assert upstream.requests[0].method == method and upstream.requests[0].body == b""
    assert result["status"] == 200
    if method == "HEAD":
        assert result["body"] is None  # a JSON content type and no body


async def test_query_parameters_are_added_to_the_urls_own(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {
        "url": upstream.url("/echo?keep=1&tag=a"),
        "query": {
            "tag": ["b", "c"],
            "page": 2,
            "ratio": 0.5,
            "draft": False,
            "q": "{{ $context.body.q }}",
            "missing": "{{ $context.body.nothing }}",
        },
    }
    result = await result_of(hookline, config, {"q": "a b&c"})
    assert upstream.requests[0].target == "/echo?keep=1&tag=a&tag=b&tag=c&page=2&ratio=0.5&draft=false&q=a%20b%26c"
    assert result["url"] == upstream.url(upstream.requests[0].target)


async def test_a_query_value_that_renders_to_an_object_fails_the_job(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    error = await error_of(hookline, {"url": upstream.url("/echo"), "query": {"q": "{{ $context.body }}"}}, {"a": 1})
    assert error["error"] == "bad_request"
    assert (
        error["message"]
        == "query parameter 'q' must be text, a number or a boolean (or a list of them) once rendered, got an object"
    )
    assert upstream.connections == 0


async def test_headers_are_sent_with_templated_values(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {
        "url": upstream.url("/echo"),
        "headers": {"X-Order": "{{ $context.body.id }}", "X-Count": 3, "Accept": "application/json"},
    }
    result = await result_of(hookline, config, {"id": "A-1"})
    assert result["body"]["headers"] == {"x-order": "A-1", "x-count": "3"}
    assert upstream.requests[0].headers["accept"] == "application/json"


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "nul\u0000"])
async def test_a_header_value_with_a_line_break_fails_the_job(
    hookline: HooklineTestApp, upstream: Upstream, value: str
) -> None:
    error = await error_of(
        hookline, {"url": upstream.url("/echo"), "headers": {"X-Note": "{{ $context.body.note }}"}}, {"note": value}
    )
    assert error["error"] == "bad_request" and error["header"] == "X-Note"
    assert "control characters" in error["message"]
    assert upstream.connections == 0


async def test_a_json_body(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {
        "method": "POST",
        "url": upstream.url("/echo"),
        "body": {"json": {"order": "{{ $context.body }}", "n": [1, None]}},
    }
    result = await result_of(hookline, config, {"id": "é"})
    assert result["body"]["headers"] == {"content-type": "application/json"}
    assert json.loads(result["body"]["body"]) == {"order": {"id": "é"}, "n": [1, None]}


async def test_a_form_body(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {
        "method": "POST",
        "url": upstream.url("/echo"),
        "body": {"form": {"a": "x y", "b": [1, True], "c": "{{ $context.body.c }}"}},
    }
    result = await result_of(hookline, config, {"c": "é&"})
    assert result["body"]["headers"] == {"content-type": "application/x-www-form-urlencoded"}
    assert result["body"]["body"] == "a=x%20y&b=1&b=true&c=%C3%A9%26"


async def test_a_text_body_with_its_default_and_its_own_content_type(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    plain = await result_of(
        hookline,
        {"method": "PUT", "url": upstream.url("/echo"), "body": {"text": "Hi {{ $context.body.name }}"}},
        {"name": "Ada"},
    )
    assert (
        plain["body"]["headers"] == {"content-type": "text/plain; charset=utf-8"} and plain["body"]["body"] == "Hi Ada"
    )
    config = {
        "method": "PUT",
        "url": upstream.url("/echo"),
        "body": {"text": "<a/>", "content_type": "application/xml"},
    }
    xml = await result_of(hookline, config)
    assert xml["body"]["headers"] == {"content-type": "application/xml"}


async def test_a_content_type_header_overrides_the_bodys(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {
        "method": "POST",
        "url": upstream.url("/echo"),
        "headers": {"content-type": "application/vnd.x+json"},
        "body": {"json": [1]},
    }
    result = await result_of(hookline, config)
    assert result["body"]["headers"] == {"content-type": "application/vnd.x+json"}


# --- credentials -------------------------------------------------------------------------------


SECRETS = {
    "HTTP_TEST_TOKEN": "tok-3f9a",
    "HTTP_TEST_PASSWORD": "pa:ss-7c1e",
    "HTTP_TEST_USER": "svc",
    "HTTP_TEST_EMPTY": "",
}

AUTHS = [
    ({"bearer": {"token": {"env": "HTTP_TEST_TOKEN"}}}, "authorization", "Bearer tok-3f9a"),
    (
        {"basic": {"username": "{{ $context.body.user }}", "password": {"env": "HTTP_TEST_PASSWORD"}}},
        "authorization",
        "Basic " + base64.b64encode(b"ada:pa:ss-7c1e").decode(),
    ),
    (
        {"basic": {"username": {"env": "HTTP_TEST_USER"}, "password": {"env": "HTTP_TEST_PASSWORD"}}},
        "authorization",
        "Basic " + base64.b64encode(b"svc:pa:ss-7c1e").decode(),
    ),
    ({"header": {"name": "X-Api-Key", "value": {"env": "HTTP_TEST_TOKEN"}}}, "x-api-key", "tok-3f9a"),
]


@pytest.mark.parametrize("http_env", [SECRETS])
@pytest.mark.parametrize(("auth", "header", "sent"), AUTHS, ids=["bearer", "basic", "basic-env-user", "header"])
async def test_credentials_come_from_the_environment_and_are_never_recorded(
    hookline: HooklineTestApp, upstream: Upstream, auth: dict[str, Any], header: str, sent: str
) -> None:
    execution = await hookline.run_workflow(
        workflow({"url": upstream.url("/status/200"), "auth": auth}), {"body": {"user": "ada"}}
    )
    assert execution["status"] == "succeeded"
    assert upstream.requests[0].headers[header] == sent
    [job] = execution["jobs"]
    assert job["result"]["request"]["headers"] == {
        "Authorization" if header == "authorization" else "X-Api-Key": "[redacted]"
    }
    stored = json.dumps(await hookline.host.executions.get(execution["id"]))
    assert "tok-3f9a" not in stored and "pa:ss-7c1e" not in stored


@pytest.mark.parametrize("http_env", [SECRETS])
@pytest.mark.parametrize("variable", ["HTTP_TEST_UNSET", "HTTP_TEST_EMPTY"])
async def test_a_secret_whose_variable_is_unset_or_empty_fails_the_job(
    hookline: HooklineTestApp, upstream: Upstream, variable: str
) -> None:
    error = await error_of(hookline, {"url": upstream.url("/echo"), "auth": {"bearer": {"token": {"env": variable}}}})
    assert error == {
        "error": "missing_secret",
        "message": f"auth.bearer.token reads the environment variable {variable}, which is not set (or is empty) on the server",
        "variable": variable,
        "attempts": [],
    }
    assert upstream.connections == 0


@pytest.mark.parametrize("http_env", [SECRETS])
async def test_a_caller_cannot_make_a_rendered_value_read_the_environment(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    # A username that renders to {"env": NAME} is the text of what the caller sent, never a
    # reference to the server's environment (here refused: the text holds a ':').
    auth = {"basic": {"username": "{{ $context.body.user }}", "password": {"env": "HTTP_TEST_PASSWORD"}}}
    error = await error_of(hookline, {"url": upstream.url("/echo"), "auth": auth}, {"user": {"env": "HTTP_TEST_TOKEN"}})
    assert error["message"] == "auth.basic.username must not contain ':' (HTTP Basic cannot send it)"
    assert upstream.connections == 0


@pytest.mark.parametrize("http_env", [SECRETS])
async def test_a_secret_that_is_not_utf8_fails_the_job_naming_only_its_variable(
    hookline: HooklineTestApp, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(os.environb, b"HTTP_TEST_BYTES", b"pw\xff-7c1e")
    auth = {"basic": {"username": "ada", "password": {"env": "HTTP_TEST_BYTES"}}}
    error = await error_of(hookline, {"url": upstream.url("/echo"), "auth": auth})
    assert error["error"] == "bad_request"
    assert error["message"] == "auth.basic.password: the environment variable HTTP_TEST_BYTES is not valid UTF-8 text"
    assert "7c1e" not in json.dumps(error) and upstream.connections == 0


@pytest.mark.parametrize("http_env", [{"HTTP_TEST_TOKEN": "tok\nQ7W2"}])
async def test_a_secret_that_cannot_be_a_header_fails_without_showing_it(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    error = await error_of(
        hookline,
        {"url": upstream.url("/echo"), "auth": {"header": {"name": "X-Key", "value": {"env": "HTTP_TEST_TOKEN"}}}},
    )
    assert error["error"] == "bad_request" and "HTTP_TEST_TOKEN" in error["message"] and "Q7W2" not in json.dumps(error)


# --- URLs rendered at run time --------------------------------------------------------------------


BAD_URLS = [
    ("a.example/x", "is not absolute"),
    ("ftp://127.0.0.1/x", "uses ftp:, but only http and https"),
    ("file:///etc/passwd", "uses file:"),
    ("http:///x", "has no host"),
    ("http://127.0.0.1/a b", "holds a space"),
    ("http://127.0.0.1:70000/", "invalid port 70000"),
    ("http://127.0.0.1:x/", "is not a valid URL"),
    ("http://user:pw-9z@127.0.0.1/", "must not hold credentials"),
    ("http://exa%41mple.com/", "invalid host"),
    ("", "url is empty"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[m for _, m in BAD_URLS])
async def test_a_url_that_renders_wrong_fails_the_job(
    hookline: HooklineTestApp, upstream: Upstream, url: str, message: str
) -> None:
    error = await error_of(hookline, {"url": "{{ $context.body.url }}"}, {"url": url})
    assert error["error"] == "bad_url" and message in error["message"]
    assert "pw-9z" not in error["message"]
    assert error["attempts"] == []


async def test_a_url_that_renders_to_a_number_fails_the_job(hookline: HooklineTestApp) -> None:
    error = await error_of(hookline, {"url": "{{ $context.body.url }}"}, {"url": 5})
    assert error["message"] == "url must be text, got a number"


# --- timeouts ------------------------------------------------------------------------------------


async def test_an_upstream_that_never_answers_fails_after_the_total_timeout(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    error = await error_of(hookline, {"url": upstream.url("/hang"), "timeout": {"total": 0.5}})
    assert error["error"] == "timeout" and error["message"] == "no answer within 0.5 s"
    assert [attempt["error"] for attempt in error["attempts"]] == ["no answer within 0.5 s"]
    assert upstream.requests[0].path == "/hang"


async def test_the_total_timeout_bounds_the_body_too(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(hookline, {"url": upstream.url("/dribble"), "timeout": {"total": 0.5}})
    assert error["message"] == "no answer within 0.5 s"


async def test_a_connection_that_is_never_accepted_fails_after_the_connect_timeout(hookline: HooklineTestApp) -> None:
    # A listening socket that never accepts, its backlog full: further connections hang.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                try:
                    filler.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
            error = await error_of(hookline, {"url": f"http://127.0.0.1:{port}/", "timeout": {"connect": 0.3}})
        finally:
            for filler in fillers:
                filler.close()
    assert error["error"] == "timeout"
    assert error["message"] == f"could not connect to 127.0.0.1:{port} within 0.3 s"


async def test_a_refused_connection_fails_and_says_so(hookline: HooklineTestApp) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, not listening: connections are refused
        error = await error_of(hookline, {"url": f"http://127.0.0.1:{port}/"})
    assert error["error"] == "connect_failed"
    assert error["message"] == f"could not connect to 127.0.0.1:{port}: connection refused"


# --- redirects -----------------------------------------------------------------------------------


async def test_a_redirect_is_not_followed_by_default_and_fails_the_job(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    target = upstream.url("/redirect?to=/echo")
    error = await error_of(hookline, {"url": target})
    assert (
        error["error"] == "upstream_status" and error["message"] == "upstream answered 302" and error["status"] == 302
    )
    result = await result_of(hookline, {"url": target, "fail_on_status": False})
    assert result["status"] == 302 and result["headers"]["location"] == "/echo" and result["url"] == target
    assert [r.path for r in upstream.requests] == ["/redirect", "/redirect"]


async def test_redirects_are_followed_up_to_the_limit(hookline: HooklineTestApp, upstream: Upstream) -> None:
    result = await result_of(hookline, {"url": upstream.url("/redirect/3"), "redirects": 3})
    assert result["url"] == upstream.url("/echo/landed") and result["body"]["path"] == "/echo/landed"
    assert len(result["attempts"]) == 1
    error = await error_of(hookline, {"url": upstream.url("/redirect/3"), "redirects": 2})
    assert error["error"] == "too_many_redirects" and error["message"] == "more than 2 redirects"
    one = await error_of(hookline, {"url": upstream.url("/redirect/3"), "redirects": 1})
    assert one["message"] == "more than 1 redirect"


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(303, "GET", ""), (302, "GET", ""), (301, "GET", ""), (307, "POST", "[1]"), (308, "POST", "[1]")],
)
async def test_a_redirect_uses_the_right_method(
    hookline: HooklineTestApp, upstream: Upstream, status: int, method: str, body: str
) -> None:
    config = {
        "method": "POST",
        "url": upstream.url(f"/redirect?status={status}&to=/echo"),
        "body": {"json": [1]},
        "redirects": 1,
    }
    result = await result_of(hookline, config)
    assert result["body"]["method"] == method and result["body"]["body"] == body
    assert ("content-type" in result["body"]["headers"]) == (method == "POST")


@pytest.mark.parametrize("http_env", [SECRETS])
async def test_credentials_are_dropped_on_a_redirect_to_another_origin(
    hookline: HooklineTestApp, upstream: Upstream, upstream2: Upstream
) -> None:
    for auth, header in [
        ({"bearer": {"token": {"env": "HTTP_TEST_TOKEN"}}}, "authorization"),
        ({"header": {"name": "X-Api-Key", "value": {"env": "HTTP_TEST_TOKEN"}}}, "x-api-key"),
    ]:
        upstream.requests.clear()
        upstream2.requests.clear()
        same = {"url": upstream.url("/redirect?to=/echo"), "redirects": 1, "auth": auth, "headers": {"X-Plain": "1"}}
        await result_of(hookline, same)  # the same origin: kept
        assert [r.headers[header].endswith("tok-3f9a") for r in upstream.requests] == [True, True]
        other = {**same, "url": upstream.url(f"/redirect?to={upstream2.url('/echo')}")}
        result = await result_of(hookline, other)
        assert header not in upstream2.requests[0].headers
        assert result["body"]["headers"] == {"x-plain": "1"}


@pytest.mark.parametrize("http_allow", ["127.0.0.2/32"])
async def test_a_redirect_to_an_address_not_admitted_is_refused(
    hookline: HooklineTestApp, upstream: Upstream, upstream2: Upstream
) -> None:
    config = {"url": upstream2.url(f"/redirect?to={upstream.url('/echo')}"), "redirects": 3}
    error = await error_of(hookline, config)
    assert error["error"] == "egress_refused"
    assert (
        error["message"]
        == "refused: 127.0.0.1 is a loopback address; an operator can admit it with HOOKLINE_HTTP_ALLOW"
    )
    assert upstream2.connections == 1 and upstream.connections == 0


async def test_a_redirect_to_another_scheme_is_refused(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(hookline, {"url": upstream.url("/redirect?to=ftp://127.0.0.1/x"), "redirects": 2})
    assert error["error"] == "bad_redirect" and "only http and https" in error["message"]


# --- the response's size -------------------------------------------------------------------------


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    error = await error_of(hookline, {"url": upstream.url("/big?size=2000"), "max_response_size": 1000})
    assert error["error"] == "response_too_large" and error["message"] == "response larger than 1000 bytes"
    assert error["content_length"] == 2000 and error["limit"] == 1000


@pytest.mark.parametrize("path", ["/big?size=3000000&chunked=1", "/endless"])
async def test_a_streamed_body_over_the_limit_is_stopped(
    hookline: HooklineTestApp, upstream: Upstream, path: str
) -> None:
    error = await error_of(hookline, {"url": upstream.url(path)})
    assert error["error"] == "response_too_large" and error["message"] == "response larger than 1048576 bytes"
    assert "content_length" not in error


async def test_a_gzip_bomb_is_stopped_at_the_decoded_limit(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(hookline, {"url": upstream.url("/gzip-bomb?size=20000000"), "max_response_size": 100000})
    assert error["message"] == "response larger than 100000 bytes"


async def test_a_body_at_the_limit_is_given(hookline: HooklineTestApp, upstream: Upstream) -> None:
    result = await result_of(hookline, {"url": upstream.url("/big?size=1000"), "max_response_size": 1000})
    assert result["body"] == "x" * 1000


async def test_a_compressed_body_is_decoded(hookline: HooklineTestApp, upstream: Upstream) -> None:
    result = await result_of(
        hookline, {"url": upstream.url("/body?type=application/json&encoding=gzip&text=%7B%22a%22%3A1%7D")}
    )
    assert result["body"] == {"a": 1} and result["headers"]["content-encoding"] == "gzip"


async def test_a_deflate_body_with_or_without_its_wrapper_is_decoded(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    import zlib

    for data in (zlib.compress(b"hello"), zlib.compress(b"hello")[2:-4]):
        result = await result_of(
            hookline, {"url": upstream.url(f"/body?type=text/plain&encoding=deflate&hex={data.hex()}")}
        )
        assert result["body"] == "hello"


async def test_a_body_in_an_encoding_not_decoded_is_given_as_base64(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    result = await result_of(hookline, {"url": upstream.url("/body?type=text/plain&encoding=br&text=abc")})
    assert result["body"] == base64.b64encode(b"abc").decode() and result["body_encoding"] == "base64"


async def test_a_corrupt_gzip_body_fails_the_job(hookline: HooklineTestApp, upstream: Upstream) -> None:
    corrupt = gzip.compress(b"hello")[:12] + b"\xff" * 8
    upstream.routes["/corrupt"] = lambda request, writer: send(writer, 200, corrupt, {"Content-Encoding": "gzip"})
    error = await error_of(hookline, {"url": upstream.url("/corrupt")})
    assert error["error"] == "bad_response" and error["message"].startswith("the response body is not valid gzip")


# --- response_format -----------------------------------------------------------------------------


FORMATS = [
    ("auto", "application/json", '{"a":1}', {"a": 1}),
    ("auto", "application/problem+json", '{"a":1}', {"a": 1}),
    ("auto", "text/plain", '{"a":1}', '{"a":1}'),
    ("auto", "application/json", "not json", "not json"),
    ("auto", "application/json", "", None),
    ("auto", None, "plain", "plain"),
    ("json", "text/plain", "[1,2]", [1, 2]),
    ("json", "text/plain", "", None),
    ("text", "application/json", '{"a":1}', '{"a":1}'),
    ("auto", "text/plain; charset=iso-8859-1", "caf\xe9", "café"),
]


@pytest.mark.parametrize(("response_format", "content_type", "text", "body"), FORMATS)
async def test_response_format(
    hookline: HooklineTestApp, upstream: Upstream, response_format: str, content_type: str | None, text: str, body: Any
) -> None:
    data = text.encode("latin-1" if content_type and "8859" in content_type else "utf-8")
    query = f"hex={data.hex()}" + (f"&type={quote(content_type)}" if content_type else "")
    result = await result_of(hookline, {"url": upstream.url(f"/body?{query}"), "response_format": response_format})
    assert result["body"] == body and "body_encoding" not in result


@pytest.mark.parametrize("text", ["not json", "NaN", "[1e999]", '"\\u0000"', "[" * 100 + "]" * 100])
async def test_response_format_json_fails_on_a_body_that_is_not_usable_json(
    hookline: HooklineTestApp, upstream: Upstream, text: str
) -> None:
    error = await error_of(
        hookline,
        {"url": upstream.url(f"/body?type=application/json&hex={text.encode().hex()}"), "response_format": "json"},
    )
    assert error["error"] == "bad_response" and error["message"].startswith("the response is not usable JSON: ")
    assert error["status"] == 200


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n\x00\xff", b"text with a NUL \x00 inside", "caf\xe9".encode("latin-1")]
)
async def test_a_body_that_is_not_utf8_text_is_given_as_base64(
    hookline: HooklineTestApp, upstream: Upstream, data: bytes
) -> None:
    result = await result_of(hookline, {"url": upstream.url(f"/body?type=application/octet-stream&hex={data.hex()}")})
    assert result["body_encoding"] == "base64" and base64.b64decode(result["body"]) == data


# --- fail_on_status ------------------------------------------------------------------------------


async def test_a_status_outside_2xx_fails_the_job_by_default(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(hookline, {"url": upstream.url("/status/404")})
    assert error == {
        "error": "upstream_status",
        "message": "upstream answered 404",
        "status": 404,
        "body": '{"status": 404}',
        "attempts": [{"attempt": 1, "status": 404, "ms": error["attempts"][0]["ms"], "waited_ms": 0}],
        "url": upstream.url("/status/404"),
    }


async def test_a_failures_body_is_cut_at_1000_characters(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(hookline, {"url": upstream.url("/status/500?body=" + "e" * 3000)})
    assert error["body"] == "e" * 1000


@pytest.mark.parametrize(
    ("fail_on_status", "status", "fails"),
    [
        (False, 500, False),
        (False, 404, False),
        ([404, "5xx"], 404, True),
        ([404, "5xx"], 503, True),
        ([404, "5xx"], 418, False),
        (["4xx"], 201, False),
        ([201], 201, True),
        ([], 500, False),
        (True, 204, False),
        (True, 302, True),
    ],
)
async def test_fail_on_status(
    hookline: HooklineTestApp, upstream: Upstream, fail_on_status: Any, status: int, fails: bool
) -> None:
    job = await call(hookline, {"url": upstream.url(f"/status/{status}"), "fail_on_status": fail_on_status})
    assert (job["status"] == "failed") == fails
    if not fails:
        assert job["result"]["status"] == status


# --- retries -------------------------------------------------------------------------------------


async def test_retries_until_an_answer_with_backoff(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {"url": upstream.url("/flaky/a?fail=2"), "retry": {"attempts": 4, "backoff": 0.01, "max_delay": 0.015}}
    result = await result_of(hookline, config)
    assert result["body"] == {"ok": True, "calls": 3}
    attempts = result["attempts"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 503), (2, 503), (3, 200)]
    # Full jitter: uniform(0, min(max_delay, backoff * 2 ** (n - 1))) before attempt n + 1.
    assert attempts[0]["waited_ms"] == 0 and 0 <= attempts[1]["waited_ms"] <= 10 and 0 <= attempts[2]["waited_ms"] <= 15


async def test_when_every_attempt_fails_the_last_answer_fails_the_job(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    error = await error_of(
        hookline, {"url": upstream.url("/flaky/b?fail=9&status=429"), "retry": {"attempts": 3, "backoff": 0.001}}
    )
    assert error["message"] == "upstream answered 429" and [a["status"] for a in error["attempts"]] == [429] * 3
    assert len(upstream.requests) == 3


async def test_only_the_listed_statuses_are_retried(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(
        hookline,
        {"url": upstream.url("/flaky/c?fail=9&status=500"), "retry": {"attempts": 3, "statuses": [502, "4xx"]}},
    )
    assert len(error["attempts"]) == 1 and len(upstream.requests) == 1


async def test_connection_failures_are_retried(hookline: HooklineTestApp, upstream: Upstream) -> None:
    calls = 0

    async def closes_twice(request: Received, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls > 2:
            await send(writer, 200, {"ok": True})

    upstream.routes["/unsteady"] = closes_twice
    result = await result_of(hookline, {"url": upstream.url("/unsteady"), "retry": {"attempts": 3, "backoff": 0.001}})
    assert [a["status"] for a in result["attempts"]] == [None, None, 200]
    assert all(a["error"].startswith(f"the exchange with {upstream.base} failed") for a in result["attempts"][:2])


async def test_a_timeout_is_retried(hookline: HooklineTestApp, upstream: Upstream) -> None:
    error = await error_of(
        hookline, {"url": upstream.url("/hang"), "timeout": {"total": 0.2}, "retry": {"attempts": 2, "backoff": 0.001}}
    )
    assert [a["error"] for a in error["attempts"]] == ["no answer within 0.2 s"] * 2


async def test_retry_after_is_honoured(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {
        "url": upstream.url("/flaky/d?fail=1&retry_after=1"),
        "retry": {"attempts": 2, "backoff": 100, "max_delay": 200},
    }
    result = await result_of(hookline, config)
    assert [a["waited_ms"] for a in result["attempts"]] == [0, 1000]  # what Retry-After asked, not the backoff


async def test_a_retry_after_beyond_max_delay_stops_retrying(hookline: HooklineTestApp, upstream: Upstream) -> None:
    config = {"url": upstream.url("/flaky/e?fail=5&retry_after=120"), "retry": {"attempts": 5, "max_delay": 1}}
    error = await error_of(hookline, config)
    assert error["message"] == "upstream answered 503 and asked to retry after 120 s, longer than retry.max_delay (1 s)"
    [attempt] = error["attempts"]
    assert attempt["retry_after"] == 120 and len(upstream.requests) == 1
    given = await result_of(
        hookline, {**config, "url": upstream.url("/flaky/f?fail=5&retry_after=120"), "fail_on_status": False}
    )
    assert given["status"] == 503
    assert given["attempts"][0]["note"] == "not retried: asked to retry after 120 s, longer than retry.max_delay (1 s)"


@pytest.mark.parametrize("http_allow", ["10.0.0.0/8"])
async def test_refusals_are_never_retried(hookline: HooklineTestApp, upstream: Upstream) -> None:
    retry = {"attempts": 3, "backoff": 0.001}
    refused = await error_of(hookline, {"url": upstream.url("/echo"), "retry": retry})
    assert refused["error"] == "egress_refused" and len(refused["attempts"]) == 1


async def test_size_and_url_failures_are_never_retried(hookline: HooklineTestApp, upstream: Upstream) -> None:
    retry = {"attempts": 3, "backoff": 0.001}
    large = await error_of(hookline, {"url": upstream.url("/big?size=2000"), "max_response_size": 10, "retry": retry})
    assert large["error"] == "response_too_large" and len(large["attempts"]) == 1
    bad = await error_of(hookline, {"url": "{{ $context.body.url }}", "retry": retry}, {"url": "ftp://x/"})
    assert bad["error"] == "bad_url" and bad["attempts"] == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import datetime

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after("Fri, 02 Jan 2026 03:04:35 GMT", now) == 30.0
    assert retry_after("Fri, 02 Jan 2026 03:00:00 GMT", now) == 0.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None and retry_after("-3", now) is None


def test_the_backoff_is_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(attempts=5, backoff=1, max_delay=5)
    bounds = [policy.delay(n, uniform=lambda low, high: high) for n in (1, 2, 3, 4)]
    assert bounds == [1, 2, 4, 5]
    assert policy.delay(3, uniform=lambda low, high: low) == 0


# --- requests in flight per upstream -------------------------------------------------------------


@pytest.mark.parametrize("http_env", [{"HOOKLINE_HTTP_MAX_PER_HOST": "2"}])
async def test_requests_to_one_upstream_are_limited(
    hookline: HooklineTestApp, upstream: Upstream, upstream2: Upstream
) -> None:
    release = asyncio.Event()

    async def held(request: Received, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        await send(writer, 200, {"ok": True})

    upstream.routes["/held"] = held
    slow = {"url": upstream.url("/held"), "timeout": {"connect": 30, "total": 60}}
    first = [asyncio.ensure_future(call(hookline, slow)) for _ in range(2)]
    try:
        await upstream.wait_for_requests(2)
        # Both slots are taken: a third request waits its connect timeout, then fails.
        error = await error_of(hookline, {**slow, "timeout": {"connect": 0.2}})
        assert error == {
            "error": "host_busy",
            "message": f"2 requests to {upstream.base} are already in flight (HOOKLINE_HTTP_MAX_PER_HOST)",
            "limit": 2,
            "attempts": error["attempts"],
            "url": upstream.url("/held"),
        }
        assert upstream.connections == 2
        # Another upstream is not held up by this one.
        assert (await result_of(hookline, {"url": upstream2.url("/echo")}))["status"] == 200
        # A request that may wait longer gets the first slot that frees.
        third = asyncio.ensure_future(call(hookline, slow))
        await asyncio.sleep(0)
        assert upstream.connections == 2
        release.set()
        jobs = await asyncio.wait_for(asyncio.gather(*first, third), 60)
        assert [job["status"] for job in jobs] == ["succeeded"] * 3 and upstream.connections == 3
    finally:
        release.set()
        for task in first:
            task.cancel()


@pytest.mark.parametrize("http_env", [{"HOOKLINE_HTTP_MAX_CONNECTIONS": "1"}])
async def test_a_request_that_finds_the_pool_full_fails_after_the_connect_timeout(
    hookline: HooklineTestApp, upstream: Upstream, upstream2: Upstream
) -> None:
    release = asyncio.Event()

    async def held(request: Received, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        await send(writer, 200, {"ok": True})

    upstream.routes["/held"] = held
    first = asyncio.ensure_future(call(hookline, {"url": upstream.url("/held"), "timeout": {"total": 60}}))
    try:
        await upstream.wait_for_requests(1)
        # The one connection is in use: a request to another upstream waits its connect timeout.
        error = await error_of(hookline, {"url": upstream2.url("/echo"), "timeout": {"connect": 0.2}})
        assert error["error"] == "timeout"
        assert error["message"] == "no free connection within 0.2 s (HOOKLINE_HTTP_MAX_CONNECTIONS)"
        assert upstream2.connections == 0
        release.set()
        assert (await asyncio.wait_for(first, 60))["status"] == "succeeded"
        assert (await result_of(hookline, {"url": upstream2.url("/echo")}))["status"] == 200
    finally:
        release.set()
        first.cancel()


# --- the egress guard ----------------------------------------------------------------------------


HOSTILE = [
    ("http://0x7f000001:{port}/", "0x7f000001 resolves to 127.0.0.1, a loopback address"),
    ("http://2130706433:{port}/", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("http://127.1:{port}/", "127.1 resolves to 127.0.0.1, a loopback address"),
    ("http://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/", "::ffff:127.0.0.1 is a loopback address (IPv4-mapped 127.0.0.1)"),
    ("http://[::1]:{port}/", "::1 is a loopback address"),
    ("http://localhost.:{port}/", "localhost. resolves to 127.0.0.1, a loopback address"),
    ("http://localhost:{port}/", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://api.localhost:{port}/", "api.localhost resolves to 127.0.0.1, a loopback address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified ('this network') address"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "169.254.169.254 is a link-local address (where cloud metadata services answer)",
    ),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://10.1.2.3/", "10.1.2.3 is a private address"),
    ("http://[fd00::1]/", "fd00::1 is a private (unique local) address"),
    ("http://[64:ff9b::a00:1]/", "64:ff9b::a00:1 is a private address (NAT64 10.0.0.1)"),
]


@pytest.mark.parametrize("http_allow", [None])
@pytest.mark.parametrize(("url", "message"), HOSTILE, ids=[u.split("/")[2] for u, _ in HOSTILE])
async def test_private_addresses_are_refused_without_a_connection(
    hookline: HooklineTestApp, upstream: Upstream, url: str, message: str
) -> None:
    error = await error_of(hookline, {"url": url.format(port=upstream.port), "retry": {"attempts": 3}})
    assert error["error"] == "egress_refused"
    assert error["message"] == f"refused: {message}; an operator can admit it with HOOKLINE_HTTP_ALLOW"
    assert len(error["attempts"]) == 1
    assert upstream.connections == 0


@pytest.mark.parametrize("http_allow", [None])
async def test_an_octal_address_is_not_even_a_url(hookline: HooklineTestApp, upstream: Upstream) -> None:
    # Four numbers are an IPv4 address written the one way: 0177.0.0.1 (octal 127) is no URL.
    error = await error_of(hookline, {"url": "{{ $context.body.url }}"}, {"url": f"http://0177.0.0.1:{upstream.port}/"})
    assert error["error"] == "bad_url" and "Invalid IPv4 address" in error["message"]
    assert upstream.connections == 0


@pytest.mark.parametrize("http_allow", ["127.0.0.1"])
async def test_an_admitted_address_is_reached_by_any_of_its_names(
    hookline: HooklineTestApp, upstream: Upstream
) -> None:
    for host in ("127.0.0.1", "localhost", "0x7f000001", "127.1"):
        result = await result_of(hookline, {"url": f"http://{host}:{upstream.port}/echo"})
        assert result["status"] == 200
    assert upstream.connections == 4


@pytest.mark.parametrize("http_allow", ["127.0.0.2"])
async def test_the_allow_list_admits_only_its_networks(
    hookline: HooklineTestApp, upstream: Upstream, upstream2: Upstream
) -> None:
    assert (await result_of(hookline, {"url": upstream2.url("/echo")}))["status"] == 200
    error = await error_of(hookline, {"url": upstream.url("/echo")})
    assert error["error"] == "egress_refused" and error["address"] == "127.0.0.1" and error["host"] == "127.0.0.1"
    assert upstream.connections == 0


@pytest.mark.parametrize("http_allow", ["127.0.0.2/32"])
async def test_dns_rebinding_reaches_only_the_address_checked(
    hookline: HooklineTestApp, upstream: Upstream, upstream2: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hostile DNS server: rebind.test is 127.0.0.2 (admitted) once, then 127.0.0.1. The node must
    # connect to the address it checked, never ask again between the check and the connection.
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    answers = iter(["127.0.0.2", "127.0.0.1", "127.0.0.1"])
    asked: list[str] = []

    async def hostile_dns(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return await real(host, port, *args, **kwargs)
        address = next(answers)
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", hostile_dns)
    upstream.routes["/"] = upstream2.routes["/"] = lambda request, writer: send(
        writer, 200, {"host": request.headers["host"]}
    )
    first = await result_of(hookline, {"url": f"http://rebind.test:{upstream2.port}/"})
    assert first["body"] == {"host": f"rebind.test:{upstream2.port}"}
    assert asked == ["127.0.0.2"] and upstream2.connections == 1
    second = await error_of(hookline, {"url": f"http://rebind.test:{upstream.port}/"})
    assert second["message"].startswith("refused: rebind.test resolves to 127.0.0.1, a loopback address")
    assert asked == ["127.0.0.2", "127.0.0.1"] and upstream.connections == 0


async def test_the_socket_factory_refuses_whatever_the_resolver_answered(upstream: Upstream) -> None:
    # The guard's last step, alone: aiohttp with a resolver that answers 127.0.0.1 for any name (as
    # a DNS server rebinding a name would), and the node's own check of IP literals left out.
    class Anywhere(AbstractResolver):
        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
            return [
                {"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            ]

        async def close(self) -> None:
            return None

    connector = aiohttp.TCPConnector(
        resolver=Anywhere(), socket_factory=guarded_socket_factory(EgressPolicy()), use_dns_cache=False
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in (f"http://rebind.test:{upstream.port}/echo", upstream.url("/echo")):
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                await session.get(url)
            assert isinstance(refused.value.os_error, EgressRefused)
            assert str(refused.value.os_error) == (
                "refused: 127.0.0.1 is a loopback address; an operator can admit it with HOOKLINE_HTTP_ALLOW"
            )
    assert upstream.connections == 0


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for localhost that no authority signed (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (apt-get install openssl)")
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return key, certificate


@pytest.mark.parametrize("http_allow", ["127.0.0.1"])
async def test_tls_checks_the_host_name_while_connecting_to_the_checked_address(
    hookline: HooklineTestApp, self_signed: tuple[Path, Path]
) -> None:
    # The connection goes to the vetted 127.0.0.1, but TLS still speaks to "localhost": SNI carries
    # the name, and the certificate is verified (here it fails: nobody signed it).
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(self_signed[1], self_signed[0])
    context.sni_callback = lambda connection, name, _: names.append(name)
    handshakes = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal handshakes
        handshakes += 1
        writer.close()

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda loop, context: None)  # the refused handshake is reported there
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        port = server.sockets[0].getsockname()[1]
        error = await error_of(hookline, {"url": f"https://localhost:{port}/"})
    finally:
        server.close()
        await server.wait_closed()
        loop.set_exception_handler(previous)
    assert error["error"] == "connect_failed" and "CERTIFICATE_VERIFY_FAILED" in error["message"]
    assert names == ["localhost"] and handshakes == 0


ADDRESSES = [
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("2606:4700::1", None),
    ("2002:808:808::1", None),  # 6to4 of 8.8.8.8
    ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
    ("::ffff:8.8.8.8", None),
    ("127.0.0.1", "a loopback address"),
    ("127.255.255.254", "a loopback address"),
    ("10.0.0.1", "a private address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.255", "a private address"),
    ("172.32.0.1", None),
    ("192.168.1.1", "a private address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("169.254.169.254", "a link-local address (where cloud metadata services answer)"),
    ("0.0.0.0", "an unspecified ('this network') address"),
    ("0.1.2.3", "an unspecified ('this network') address"),
    ("192.0.0.9", "a reserved (IETF protocol) address"),
    ("192.0.2.1", "a documentation address"),
    ("198.18.0.1", "a benchmarking address"),
    ("198.51.100.1", "a documentation address"),
    ("203.0.113.1", "a documentation address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "the broadcast address"),
    ("::", "the unspecified address"),
    ("::1", "a loopback address"),
    ("fc00::1", "a private (unique local) address"),
    ("fd12:3456::1", "a private (unique local) address"),
    ("fe80::1", "a link-local address"),
    ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"),
    ("2001:db8::1", "a documentation address"),
    ("::ffff:127.0.0.1", "a loopback address (IPv4-mapped 127.0.0.1)"),
    (
        "::ffff:169.254.169.254",
        "a link-local address (where cloud metadata services answer) (IPv4-mapped 169.254.169.254)",
    ),
    ("::127.0.0.1", "a loopback address (IPv4-compatible 127.0.0.1)"),
    ("::10.0.0.1", "a private address (IPv4-compatible 10.0.0.1)"),
    ("64:ff9b::7f00:1", "a loopback address (NAT64 127.0.0.1)"),
    ("64:ff9b::a9fe:a9fe", "a link-local address (where cloud metadata services answer) (NAT64 169.254.169.254)"),
    ("64:ff9b:1::a00:1", "a private (local-use NAT64) address"),
    ("2002:7f00:1::1", "a loopback address (6to4 127.0.0.1)"),
    ("2002:a9fe:a9fe::1", "a link-local address (where cloud metadata services answer) (6to4 169.254.169.254)"),
    ("2002:c0a8:101::1", "a private address (6to4 192.168.1.1)"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo tunnel address"),
    ("2001:0:7f00:1:8000:f227:80ff:fffe", "a Teredo tunnel address"),
    ("::ffff:0:7f00:1", "a reserved (IPv4-translated) address"),
    ("::ffff:0:808:808", "a reserved (IPv4-translated) address"),
]


@pytest.mark.parametrize(("address", "kind"), ADDRESSES, ids=[a for a, _ in ADDRESSES])
def test_the_address_classifier(address: str, kind: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == kind
    assert EgressPolicy().admits(ipaddress.ip_address(address)) is (kind is None)


def test_the_allow_list_admits_an_address_or_the_one_it_carries() -> None:
    policy = EgressPolicy(parse_allow_list("10.0.0.0/8, ::1"))
    assert policy.admits(ipaddress.ip_address("10.9.8.7"))
    assert policy.admits(ipaddress.ip_address("::ffff:10.9.8.7"))
    assert policy.admits(ipaddress.ip_address("64:ff9b::a09:807"))
    assert policy.admits(ipaddress.ip_address("::1"))
    assert not policy.admits(ipaddress.ip_address("127.0.0.1"))
    assert policy.admits(ipaddress.ip_address("11.0.0.1"))  # public anyway
    # 6to4 and Teredo go through relays, not to the admitted network: not admitted for what they carry.
    assert not policy.admits(ipaddress.ip_address("2002:a09:807::1"))
    assert not policy.admits(ipaddress.ip_address("2001:0:a09:807::5600:fefe"))
    assert [inner.how for inner in inner_addresses(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:3fff:fdd2"))] == [
        "Teredo server",
        "Teredo client",
    ]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"HOOKLINE_HTTP_ALLOW": "internal.example.com"},
            "HOOKLINE_HTTP_ALLOW: 'internal.example.com' is not an IP address or network",
        ),
        ({"HOOKLINE_HTTP_ALLOW": "10.0.0.1/8"}, "did you mean 10.0.0.0/8?"),
        ({"HOOKLINE_HTTP_ALLOW": "[::1]"}, "'[::1]' is not an IP address"),
        (
            {"HOOKLINE_HTTP_MAX_PER_HOST": "0"},
            "HOOKLINE_HTTP_MAX_PER_HOST must be a whole number from 1 to 10000, got '0'",
        ),
        ({"HOOKLINE_HTTP_MAX_CONNECTIONS": "many"}, "HOOKLINE_HTTP_MAX_CONNECTIONS must be a whole number"),
    ],
)
def test_a_bad_setting_is_a_plugin_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(PluginError) as refused:
        HttpSettings.from_env(environ)
    assert message in refused.value.message


def test_the_settings_and_their_defaults() -> None:
    assert HttpSettings.from_env({}) == HttpSettings(EgressPolicy(()), 16, 100)
    settings = HttpSettings.from_env(
        {
            "HOOKLINE_HTTP_ALLOW": " 127.0.0.1, 10.0.0.0/8,,fd00::/8 ",
            "HOOKLINE_HTTP_MAX_PER_HOST": "4",
            "HOOKLINE_HTTP_MAX_CONNECTIONS": "9",
        }
    )
    assert [str(n) for n in settings.policy.allow] == ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]
    assert (settings.max_per_host, settings.max_connections) == (4, 9)


def test_a_server_with_a_bad_allow_list_does_not_start(tmp_path: Path) -> None:
    env = {**os.environ, "HOOKLINE_HTTP_ALLOW": "intranet", "HOOKLINE_DB_URL": f"sqlite://{tmp_path / 'x.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "hookline", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert (
        "HOOKLINE_HTTP_ALLOW: 'intranet' is not an IP address or network" in done.stderr.decode() + done.stdout.decode()
    )


# --- the shared client ---------------------------------------------------------------------------


async def test_cookies_set_by_an_upstream_are_never_sent_again(hookline: HooklineTestApp, upstream: Upstream) -> None:
    first = await result_of(hookline, {"url": upstream.url("/cookie")})
    second = await result_of(hookline, {"url": upstream.url("/cookie")})
    assert first["headers"]["set-cookie"] == "session=abc; Path=/"
    assert second["body"] == {"cookie": None}


def bound_clients(hookline: HooklineTestApp) -> HttpClients:
    clients = hookline.host.registry.nodes[NODE].clients
    assert isinstance(clients, HttpClients)
    return clients


async def test_each_host_has_its_own_client_closed_at_shutdown(hookline: HooklineTestApp, upstream: Upstream) -> None:
    from hookline.host import Host
    from hookline.plugins import make_plugin_manager

    clients = bound_clients(hookline)
    await result_of(hookline, {"url": upstream.url("/echo")})
    assert clients.open
    other = Host(hookline.host.settings, pm=make_plugin_manager())
    assert other.registry.nodes[NODE].clients is not clients
    await plugin.shutdown(hookline.host)
    assert not clients.open
    await result_of(hookline, {"url": upstream.url("/echo")})  # a later call opens a new one
    assert clients.open
