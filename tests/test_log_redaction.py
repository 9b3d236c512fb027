"""No secret leaves the server's memory: webhooks with every kind of secret (HTTP Basic passwords,
the signing secrets of the generic HMAC and of the GitHub, Stripe, Standard Webhooks and Slack
presets, secrets given as ``{env: NAME}``) and the management API's token, called with valid and
invalid requests, while every logger records at DEBUG. No secret (nor the base64 forms a Basic
password travels in) may appear in a log record, an answer body, a stored execution or a captured
sample. A real server's output is checked for a subset."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Iterator

import httpx
import pytest

from hookline.testing import TEST_TOKEN, HooklineServer, HooklineTestApp

USER = "hook-user"
PASSWORD = "pw-literal-Zq8x:rT"  # a ':' inside, as RFC 7617 allows
ENV_PASSWORD = "pw-from-env-Kd93mQ"
GENERIC_SECRET = "generic-secret-7Hs2Lp"
GITHUB_SECRET = "github-secret-from-env-Vb81"
STRIPE_SECRET = "whsec_stripe-secret-Qm4Tz"
SLACK_SECRET = "slack-signing-secret-9Fw3Nc"
SW_KEY = bytes(range(1, 33))
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
BAD_SW_SECRET = "whsec_not*base64*at-all-Xr7"

ENVIRONMENT = {
    "REDACT_BASIC_PASSWORD": ENV_PASSWORD,
    "REDACT_GITHUB_SECRET": GITHUB_SECRET,
    "REDACT_BAD_SW_SECRET": BAD_SW_SECRET,
}
SECRETS = [PASSWORD, ENV_PASSWORD, GENERIC_SECRET, GITHUB_SECRET, STRIPE_SECRET, SLACK_SECRET, SW_SECRET, BAD_SW_SECRET, TEST_TOKEN]


def forms_of(secret: str) -> list[str]:
    """The secret and the forms it travels in: base64 of ``user:secret`` and of itself, and for
    a Standard Webhooks secret its base64 part."""
    forms = [secret, base64.b64encode(secret.encode()).decode(), base64.b64encode(f"{USER}:{secret}".encode()).decode()]
    if secret.startswith("whsec_"):
        forms.append(secret[len("whsec_"):])
    return forms


FORBIDDEN = sorted({form for secret in SECRETS for form in forms_of(secret)})

ECHO = [{"key": "echo", "type": "response", "config": {"body": "{{ $context }}"}}]


def sync(key: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "sync": True, "trigger": {"type": "webhook", "config": config}, "nodes": ECHO}


WORKFLOWS = [
    sync("basic", {"auth": {"basic": {"username": USER, "password": PASSWORD}}}),
    sync("basic-env", {"auth": {"basic": {"username": USER, "password": {"env": "REDACT_BASIC_PASSWORD"}}}}),
    sync("basic-unset", {"auth": {"basic": {"username": USER, "password": {"env": "REDACT_NOT_SET"}}}}),
    sync("generic", {"signature": {"header": "X-Signature", "prefix": "sha256=", "secrets": [GENERIC_SECRET]}}),
    sync("github", {"signature": {"preset": "github", "secrets": [{"env": "REDACT_GITHUB_SECRET"}]}}),
    sync("stripe", {"signature": {"preset": "stripe", "secrets": [STRIPE_SECRET]}}),
    sync("standard", {"signature": {"preset": "standard", "secrets": [SW_SECRET]}}),
    sync("standard-bad-env", {"signature": {"preset": "standard", "secrets": [{"env": "REDACT_BAD_SW_SECRET"}]}}),
    sync("slack", {"signature": {"preset": "slack", "secrets": [SLACK_SECRET]}}),
    sync("unset-signature", {"signature": {"preset": "github", "secrets": [{"env": "REDACT_NOT_SET"}]}}),
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def hex_hmac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def calls(now: int) -> list[tuple[str, dict[str, str], bytes]]:
    """(workflow, headers, body): for each secret a valid call and invalid ones."""
    body = json.dumps({"event": "paid", "id": "evt_1"}).encode()
    ts = str(now)
    sw_signature = base64.b64encode(hmac.new(SW_KEY, f"msg_1.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    json_type = {"Content-Type": "application/json"}
    return [
        # HTTP Basic: right, wrong password, wrong user, malformed, another scheme holding the password.
        ("basic", {**json_type, "Authorization": basic(USER, PASSWORD)}, body),
        ("basic", {**json_type, "Authorization": basic(USER, PASSWORD + "x")}, body),
        ("basic", {**json_type, "Authorization": basic("intruder", PASSWORD)}, body),
        ("basic", {**json_type, "Authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()}, body),
        ("basic", {**json_type, "Authorization": "Basic !!" + PASSWORD}, body),
        ("basic", {**json_type, "Authorization": f"Bearer {PASSWORD}"}, body),
        ("basic", {**json_type, "Authorization": basic(USER, PASSWORD), "Proxy-Authorization": basic(USER, PASSWORD)}, body),
        ("basic-env", {**json_type, "Authorization": basic(USER, ENV_PASSWORD)}, body),
        ("basic-env", {**json_type, "Authorization": basic(USER, ENV_PASSWORD[:-1])}, body),
        ("basic-unset", {**json_type, "Authorization": basic(USER, ENV_PASSWORD)}, body),
        # Generic HMAC: right, wrong, not hex, repeated header.
        ("generic", {**json_type, "X-Signature": "sha256=" + hex_hmac(GENERIC_SECRET.encode(), body)}, body),
        ("generic", {**json_type, "X-Signature": "sha256=" + hex_hmac(b"wrong", body)}, body),
        ("generic", {**json_type, "X-Signature": "sha256=" + GENERIC_SECRET}, body),
        ("generic", {**json_type, "X-Signature": GENERIC_SECRET}, body),
        # GitHub, its secret from the environment.
        ("github", {**json_type, "X-Hub-Signature-256": "sha256=" + hex_hmac(GITHUB_SECRET.encode(), body)}, body),
        ("github", {**json_type, "X-Hub-Signature-256": "sha256=" + hex_hmac(GITHUB_SECRET.encode(), body + b" ")}, body),
        ("github", {**json_type, "X-Hub-Signature-256": GITHUB_SECRET}, body),
        # Stripe: right, stale, malformed.
        ("stripe", {**json_type, "Stripe-Signature": f"t={ts},v1=" + hex_hmac(STRIPE_SECRET.encode(), f"{ts}.".encode() + body)}, body),
        ("stripe", {**json_type, "Stripe-Signature": f"t={now - 9999},v1=" + hex_hmac(STRIPE_SECRET.encode(), body)}, body),
        ("stripe", {**json_type, "Stripe-Signature": f"t=x,v1={STRIPE_SECRET}"}, body),
        # Standard Webhooks: right, wrong, missing id; a secret in the environment that is not whsec_.
        ("standard", {**json_type, "webhook-id": "msg_1", "webhook-timestamp": ts, "webhook-signature": f"v1,{sw_signature}"}, body),
        ("standard", {**json_type, "webhook-id": "msg_2", "webhook-timestamp": ts, "webhook-signature": f"v1,{sw_signature}"}, body),
        ("standard", {**json_type, "webhook-timestamp": ts, "webhook-signature": f"v1,{SW_SECRET}"}, body),
        ("standard-bad-env", {**json_type, "webhook-id": "msg_1", "webhook-timestamp": ts, "webhook-signature": f"v1,{sw_signature}"}, body),
        # Slack: right, wrong, no timestamp.
        ("slack", {**json_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + hex_hmac(SLACK_SECRET.encode(), f"v0:{ts}:".encode() + body)}, body),
        ("slack", {**json_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + hex_hmac(b"nope", body)}, body),
        ("slack", {**json_type, "X-Slack-Signature": "v0=" + SLACK_SECRET}, body),
        # A secret named by an environment variable that is not set.
        ("unset-signature", {**json_type, "X-Hub-Signature-256": "sha256=" + hex_hmac(GITHUB_SECRET.encode(), body)}, body),
    ]


#: The calls above that are valid, by workflow: they must run (a test that cannot fail is a defect).
VALID = {"basic": 2, "basic-env": 1, "generic": 1, "github": 1, "stripe": 1, "standard": 1, "slack": 1}


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger at DEBUG, also from loggers that do not propagate to root."""
    caplog.set_level(logging.DEBUG)
    for name in ("sanic", "sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets", "hookline", "tortoise", "asyncio", "aiosqlite", "asyncpg", "httpx"):
        caplog.set_level(logging.DEBUG, logger=name)
    isolated = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in isolated:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in isolated:
            logger.removeHandler(caplog.handler)


def leaks(where: str, text: str) -> list[str]:
    return [f"{where} holds {form!r}" for form in FORBIDDEN if form in text]


def record_text(record: logging.LogRecord) -> str:
    text = f"{record.name} {record.getMessage()}"
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text + (record.stack_info or "")


async def test_no_secret_in_logs_answers_executions_or_samples(
    hookline: HooklineTestApp, every_log_record: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for definition in WORKFLOWS:
        await hookline.apply(definition)
    # Saving a definition sends its literal secrets to the database: a SQL log at DEBUG holds
    # them (tortoise's own), and that is the database's business, not a request's.
    every_log_record.clear()
    found: list[str] = []
    answers: dict[str, list[int]] = {}
    for number, (key, headers, body) in enumerate(calls(int(time.time()))):
        response = await hookline.client.post(f"/api/webhooks/{key}", content=body, headers=headers)
        answers.setdefault(key, []).append(response.status_code)
        found += leaks(f"answer {number} ({key}, {response.status_code})", response.text + json.dumps(dict(response.headers)))
    assert {key: statuses.count(200) for key, statuses in answers.items() if 200 in statuses} == VALID, answers
    assert answers["basic-unset"] == answers["standard-bad-env"] == answers["unset-signature"] == [503]

    # Samples: a capture takes the request after the credentials were checked, and keeps its headers.
    valid: dict[str, dict[str, str]] = {}
    for key, headers, body in calls(int(time.time())):
        valid.setdefault(key, headers)  # the first call of each workflow is the valid one
    for key in ("basic", "generic"):
        armed = await hookline.api("POST", f"/api/workflows/{key}/webhook-capture")
        assert armed.status_code == 201, armed.text
    for key in ("basic", "generic"):
        captured = await hookline.client.post(f"/api/webhooks/{key}", content=body, headers=valid[key])
        assert captured.json()["captured"] is True, captured.text
        sample = await hookline.api("GET", f"/api/workflows/{key}/webhook-capture")
        assert sample.json()["status"] == "captured"
        found += leaks(f"the sample of {key}", sample.text)

    # The management API: its token in, never out; a wrong token (that is another secret) too.
    for headers in (hookline.auth, {"Authorization": f"Bearer {PASSWORD}"}, {"Authorization": basic("x", TEST_TOKEN)}):
        response = await hookline.client.get("/api/executions", headers=headers)
        found += leaks("a management answer", response.text)
    listing = (await hookline.api("GET", "/api/executions", params={"limit": 500})).json()["items"]
    assert len(listing) == sum(VALID.values())
    for item in listing:
        stored = await hookline.api("GET", f"/api/executions/{item['id']}")
        assert stored.status_code == 200
        found += leaks(f"execution {item['id']} ({item['workflow']})", stored.text)
        headers = stored.json()["context"]["headers"]
        for name in ("authorization", "proxy-authorization", "x-signature", "x-hub-signature-256", "stripe-signature", "webhook-signature", "x-slack-signature"):
            assert headers.get(name) in (None, "[redacted]"), (name, headers)

    assert every_log_record.records, "nothing was logged: the capture of log records is broken"
    for record in every_log_record.records:
        found += leaks(f"log record {record.name}:{record.levelname}", record_text(record))
    assert not found, "\n".join(found)


# --- a real server's output -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    root = tmp_path_factory.mktemp("redaction-server")
    folder = root / "workflows"
    folder.mkdir()
    for definition in WORKFLOWS:
        (folder / f"{definition['key']}.json").write_text(json.dumps(definition))
    env = {**ENVIRONMENT, "SANIC_ACCESS_LOG": "true", "SANIC_DEBUG": "true"}
    process = HooklineServer(f"sqlite://{root / 'redaction.db'}", workflows=folder, cwd=root, env=env)
    process.start(root / "server.log")
    yield process
    process.stop()


@pytest.mark.server
def test_no_secret_in_a_real_servers_output(server: HooklineServer) -> None:
    statuses = []
    with httpx.Client(base_url=server.base_url, timeout=20) as client:
        for key, headers, body in calls(int(time.time())):
            statuses.append(client.post(f"/api/webhooks/{key}", content=body, headers=headers).status_code)
        client.get("/api/executions", headers=server.auth)
        client.get("/api/executions", headers={"Authorization": f"Bearer {PASSWORD}"})
        client.post("/api/webhooks/basic", content=b"{", headers={"Content-Type": "application/json", "Authorization": basic(USER, PASSWORD)})
    assert statuses.count(200) == sum(VALID.values()) and 503 in statuses
    server.stop()
    output = server.log()
    assert "webhook 'basic-unset': environment variable REDACT_NOT_SET is not set" in output  # the operator is told
    assert not [form for form in FORBIDDEN if form in output], output


def test_the_forbidden_forms_are_what_travels() -> None:
    header = basic(USER, PASSWORD)[len("Basic "):]
    assert header in FORBIDDEN and PASSWORD in FORBIDDEN and SW_SECRET[len("whsec_"):] in FORBIDDEN
