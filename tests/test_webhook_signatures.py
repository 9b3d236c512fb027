"""Signature verification and the IP allowlist of the webhook trigger: the providers' published
vectors (reliability catalogue section 1), mutations, malformed headers, rotation, env secrets,
config validation, and the answers a caller sees (in-process and through a real server)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from hookline.storage.models import Execution
from hookline.testing import HooklineServer, HooklineTestApp
from hookline_webhook.auth import MisconfiguredSecret
from hookline_webhook.network import compile_allowlist, parse_address
from hookline_webhook.signatures import SignatureScheme, compile_signature, decode_whsec, verify

# --- Published vectors, written exactly as the catalogue gives them ---------------------------

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = "1614265330"
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_BAD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar"
    b"&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
    b"%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

# Self-computed in the catalogue (no official vector is published for these two).
STRIPE_SECRET = "whsec_test_secret"
STRIPE_BODY = b'{"id":"evt_test_webhook","object":"event"}'
STRIPE_HEADER = "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
SHOPIFY_SECRET = "hush"
SHOPIFY_BODY = b'{"id":1,"email":"a@example.com"}'
SHOPIFY_SIGNATURE = "SnRPygpSlvOBkfX6XdQZR4cL4GiE8A3prXrBdoz9iBA="

GENERIC_ERROR = {"error": "invalid_signature", "message": "the request signature could not be verified"}


def scheme(preset: str | None = None, secrets: list[Any] | None = None, **options: Any) -> SignatureScheme:
    config: dict[str, Any] = {"secrets": secrets or ["s"], **options}
    if preset:
        config["preset"] = preset
    return compile_signature(config)


def headers(**values: str | list[str]) -> dict[str, list[str]]:
    return {name.replace("_", "-").lower(): value if isinstance(value, list) else [value] for name, value in values.items()}


def sw_headers(signature: str = SW_SIGNATURE, timestamp: str = SW_TIMESTAMP, message_id: str = SW_ID) -> dict[str, list[str]]:
    return {"webhook-id": [message_id], "webhook-timestamp": [timestamp], "webhook-signature": [signature]}


def slack_headers(signature: str = SLACK_SIGNATURE, timestamp: str = SLACK_TIMESTAMP) -> dict[str, list[str]]:
    return {"x-slack-signature": [signature], "x-slack-request-timestamp": [timestamp]}


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


# --- Unit: golden vectors ---------------------------------------------------------------------


def test_github_golden_vector_and_its_mutations() -> None:
    github = scheme("github", [GITHUB_SECRET])
    assert verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE), GITHUB_BODY, now=0) is None
    assert verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256=")), GITHUB_BODY, now=0) is None
    assert verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE), b"Hello, World?", now=0) is not None
    for index in range(len(GITHUB_BODY)):
        assert verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE), flip(GITHUB_BODY, index), now=0) is not None
    for bad in (GITHUB_SIGNATURE[:-1] + "8", GITHUB_SIGNATURE[len("sha256="):], "sha1=" + GITHUB_SIGNATURE[7:], "",
                "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", GITHUB_SIGNATURE[:-1], GITHUB_SIGNATURE + "zz"):
        assert verify(github, headers(x_hub_signature_256=bad), GITHUB_BODY, now=0) is not None, bad


def test_standard_webhooks_golden_vector_with_a_frozen_clock() -> None:
    standard = scheme("standard", [SW_SECRET])
    now = int(SW_TIMESTAMP)
    assert verify(standard, sw_headers(), SW_BODY, now) is None
    assert verify(standard, sw_headers(SW_BAD_SIGNATURE), SW_BODY, now) is not None
    for index in range(len(SW_BODY)):
        assert verify(standard, sw_headers(), flip(SW_BODY, index), now) is not None
    assert verify(standard, sw_headers(message_id=SW_ID + "x"), SW_BODY, now) is not None
    assert verify(standard, sw_headers(timestamp=str(now + 1)), SW_BODY, now) is not None


def test_svix_header_names_are_accepted_by_the_standard_preset() -> None:
    """Svix signs exactly as Standard Webhooks does but sends svix-id, svix-timestamp and
    svix-signature by default (the vector is Svix's own documentation's)."""
    standard = scheme("standard", [SW_SECRET])
    now = int(SW_TIMESTAMP)
    svix = {"svix-id": [SW_ID], "svix-timestamp": [SW_TIMESTAMP], "svix-signature": [SW_SIGNATURE]}
    assert verify(standard, svix, SW_BODY, now) is None
    assert verify(standard, {**svix, "svix-signature": [SW_BAD_SIGNATURE]}, SW_BODY, now) is not None
    assert verify(standard, {**svix, "svix-id": [SW_ID + "x"]}, SW_BODY, now) is not None
    assert verify(standard, {**svix, "svix-timestamp": [str(now + 1)]}, SW_BODY, now) is not None
    assert verify(standard, svix, SW_BODY, now + 301) is not None
    # One set is read, never a mix: the webhook-* set wins when its signature header is there.
    assert verify(standard, {**svix, "webhook-signature": [SW_SIGNATURE]}, SW_BODY, now) is not None
    mixed = {"svix-signature": [SW_SIGNATURE], "webhook-id": [SW_ID], "webhook-timestamp": [SW_TIMESTAMP]}
    assert "svix-timestamp" in (verify(standard, mixed, SW_BODY, now) or "")
    # A generic scheme has no other names.
    generic = scheme(header="webhook-signature", secrets=["s"])
    assert "webhook-signature" in (verify(generic, {"svix-signature": ["x"]}, b"", now) or "")


def test_standard_webhooks_tolerance_is_checked_both_ways() -> None:
    standard = scheme("standard", [SW_SECRET])
    now = int(SW_TIMESTAMP)
    for edge in (now - 300, now + 300):
        # The signature is over the vector's timestamp: only the clock moves.
        assert verify(standard, sw_headers(), SW_BODY, edge) is None
    for outside in (now - 301, now + 301, now + 3600, now - 86400):
        assert verify(standard, sw_headers(), SW_BODY, outside) is not None


def test_standard_webhooks_several_signatures_in_one_header() -> None:
    standard = scheme("standard", [SW_SECRET])
    now = int(SW_TIMESTAMP)
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    header = f"{other} v2,{other[3:]}  {SW_SIGNATURE} v1,bad bad"
    assert verify(standard, sw_headers(header), SW_BODY, now) is None
    assert verify(standard, sw_headers("v1a," + SW_SIGNATURE[3:]), SW_BODY, now) is not None


def test_standard_webhooks_secret_formats() -> None:
    key = decode_whsec(SW_SECRET)
    assert key is not None
    assert decode_whsec(SW_SECRET[len("whsec_"):]) == key
    unpadded = "whsec_" + base64.b64encode(b"k" * 25).decode().rstrip("=")
    assert decode_whsec(unpadded) == b"k" * 25
    assert decode_whsec("whsec_") is None and decode_whsec("whsec_" + base64.b64encode(b"short").decode()) is None
    assert decode_whsec("whsec_not base64!") is None


def test_slack_golden_vector() -> None:
    slack = scheme("slack", [SLACK_SECRET])
    now = int(SLACK_TIMESTAMP)
    assert verify(slack, slack_headers(), SLACK_BODY, now) is None
    assert verify(slack, slack_headers(), SLACK_BODY, now + 301) is not None
    assert verify(slack, slack_headers(), SLACK_BODY, now - 301) is not None
    assert verify(slack, slack_headers(timestamp="abc"), SLACK_BODY, now) is not None
    assert verify(slack, slack_headers(timestamp=str(now - 1)), SLACK_BODY, now) is not None


def test_stripe_vector_uses_the_whole_whsec_string_as_key() -> None:
    stripe = scheme("stripe", [STRIPE_SECRET])
    now = 1700000000
    assert verify(stripe, headers(stripe_signature=STRIPE_HEADER), STRIPE_BODY, now) is None
    # Keyed with the base64-decoded secret instead (Standard Webhooks' key handling): refused.
    decoded = base64.urlsafe_b64decode("test_secret" + "=")
    wrong = hmac.new(decoded, b"1700000000." + STRIPE_BODY, hashlib.sha256).hexdigest()
    assert verify(stripe, headers(stripe_signature=f"t=1700000000,v1={wrong}"), STRIPE_BODY, now) is not None
    good = STRIPE_HEADER.split("v1=")[1]
    assert verify(stripe, headers(stripe_signature=f"t=1700000000,v1={'0' * 64},v1={good}"), STRIPE_BODY, now) is None
    for bad in (f"t=1700000000,v0={good}", f"t=abc,v1={good}", f"v1={good}", "", "t=,v1=", ","):
        assert verify(stripe, headers(stripe_signature=bad), STRIPE_BODY, now) is not None, bad
    assert verify(stripe, headers(stripe_signature=STRIPE_HEADER), STRIPE_BODY, now + 301) is not None
    assert verify(stripe, headers(stripe_signature=STRIPE_HEADER), STRIPE_BODY, now - 3600) is not None


def test_shopify_vector_is_base64_not_hex() -> None:
    shopify = scheme("shopify", [SHOPIFY_SECRET])
    assert verify(shopify, headers(x_shopify_hmac_sha256=SHOPIFY_SIGNATURE), SHOPIFY_BODY, 0) is None
    as_hex = base64.b64decode(SHOPIFY_SIGNATURE).hex()
    assert verify(shopify, headers(x_shopify_hmac_sha256=as_hex), SHOPIFY_BODY, 0) is not None


# --- Unit: generic HMAC, rotation, secrets ----------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_generic_hmac_over_a_template(algorithm: str, encoding: str) -> None:
    generic = scheme(None, ["old", "new"], algorithm=algorithm, encoding=encoding, header="X-Sig", prefix="v=",
                     signed="{id}:{timestamp}:{body}", timestamp_header="X-Ts", id_header="X-Id", tolerance=60)
    now, body = 1_000_000, b"\x00\xff raw bytes {}"
    digest = hmac.new(b"new", b"ev-1:1000000:" + body, algorithm).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    good = headers(x_sig="v=" + value, x_ts="1000000", x_id="ev-1")
    assert verify(generic, good, body, now) is None
    assert verify(generic, good, body, now + 61) is not None
    assert verify(generic, {**good, "x-id": ["ev-2"]}, body, now) is not None
    assert verify(generic, {**good, "x-sig": [value]}, body, now) is not None
    only_old = scheme(None, ["old"], algorithm=algorithm, encoding=encoding, header="X-Sig", prefix="v=",
                      signed="{id}:{timestamp}:{body}", timestamp_header="X-Ts", id_header="X-Id")
    assert verify(only_old, good, body, now) is not None


def test_rotation_accepts_any_active_secret() -> None:
    github = scheme("github", ["retired", GITHUB_SECRET])
    assert verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE), GITHUB_BODY, 0) is None
    assert verify(scheme("github", ["retired"]), headers(x_hub_signature_256=GITHUB_SIGNATURE), GITHUB_BODY, 0) is not None


def test_env_secrets_are_read_at_each_check(monkeypatch: pytest.MonkeyPatch) -> None:
    github = scheme("github", [{"env": "HOOK_SIG_SECRET"}])
    monkeypatch.delenv("HOOK_SIG_SECRET", raising=False)
    with pytest.raises(MisconfiguredSecret):
        verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE), GITHUB_BODY, 0)
    monkeypatch.setenv("HOOK_SIG_SECRET", GITHUB_SECRET)
    assert verify(github, headers(x_hub_signature_256=GITHUB_SIGNATURE), GITHUB_BODY, 0) is None


def test_comparison_is_constant_time_on_decoded_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert verify(scheme("github", [GITHUB_SECRET]), headers(x_hub_signature_256=GITHUB_SIGNATURE), GITHUB_BODY, 0) is None
    assert calls and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


# --- Unit: malformed headers never raise ------------------------------------------------------

GARBAGE = ["", " ", "v1", "v1,", "v1,a,b", "v1,@@@", "sha256=", "sha256=zz", "t=", "=", ",,,", "x" * 7000, "x" * 20000,
           "é" * 50, "sha256=é", "\x00", "\t", "v0=" + "0" * 63, "t=1,v1=" + "g" * 64, "v1,====", "sha256=" + "0" * 64 + " extra",
           "\u2603,\u2603", "t=99999999999,v1=00", "t=1e10,v1=00"]
TIMESTAMPS = ["hello", "nan", "inf", "1e10", "-1", "123.5", " 123x", "", "12345678901", "١٢٣", "0x10", "+123"]


@pytest.mark.parametrize("preset", ["github", "stripe", "slack", "shopify", "standard"])
def test_garbage_headers_are_refused_not_raised(preset: str) -> None:
    secret = SW_SECRET if preset == "standard" else "secret"
    compiled = scheme(preset, [secret])
    names = [compiled.header, compiled.timestamp_header, compiled.id_header]
    for value in GARBAGE:
        for name in filter(None, names):
            sent = {n.lower(): ["1614265330" if n == compiled.timestamp_header else "id"] for n in filter(None, names)}
            sent[name.lower()] = [value]
            assert verify(compiled, sent, b"{}", 1614265330) is not None, (name, value)
    for value in TIMESTAMPS:
        assert verify(scheme("slack", ["secret"]), slack_headers(timestamp=value), SLACK_BODY, int(SLACK_TIMESTAMP)) is not None
        assert verify(scheme("standard", [SW_SECRET]), sw_headers(timestamp=value), SW_BODY, int(SW_TIMESTAMP)) is not None
    # Missing, and repeated (ambiguous), headers.
    assert verify(compiled, {}, b"{}", 0) is not None
    assert verify(scheme("github", [GITHUB_SECRET]), headers(x_hub_signature_256=[GITHUB_SIGNATURE, GITHUB_SIGNATURE]),
                  GITHUB_BODY, 0) is not None


def test_each_missing_standard_header_is_refused() -> None:
    standard = scheme("standard", [SW_SECRET])
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        sent = sw_headers()
        del sent[name]
        assert verify(standard, sent, SW_BODY, int(SW_TIMESTAMP)) is not None


# --- Unit: addresses --------------------------------------------------------------------------


def test_allowlist_ipv4_ipv6_and_mapped_addresses() -> None:
    allowlist = compile_allowlist({"allow": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]})
    assert allowlist.allows("10.1.2.3", [])
    assert allowlist.allows("::ffff:10.0.0.1", [])
    assert allowlist.allows("[2001:db8::1]", [])
    assert allowlist.allows("192.0.2.7", [])
    assert not allowlist.allows("192.0.2.8", [])
    assert not allowlist.allows("2001:db9::1", [])
    assert not allowlist.allows("not-an-ip", [])
    assert not allowlist.allows("", [])
    # X-Forwarded-For is ignored without trusted proxies.
    assert not allowlist.allows("127.0.0.1", ["10.0.0.1"])
    assert parse_address("::ffff:127.0.0.1") == parse_address("127.0.0.1")


def test_allowlist_behind_trusted_proxies() -> None:
    allowlist = compile_allowlist({"allow": ["10.0.0.0/8"], "trusted_proxies": ["127.0.0.1/32", "172.16.0.0/12"]})
    assert allowlist.allows("127.0.0.1", ["10.0.0.1"])
    assert allowlist.allows("127.0.0.1", ["::ffff:10.0.0.1"])
    assert allowlist.allows("127.0.0.1", ["203.0.113.9, 10.0.0.1, 172.16.0.5"])  # proxy chain, right to left
    assert not allowlist.allows("127.0.0.1", ["10.0.0.1, 203.0.113.9"])  # spoofed left-most entry
    assert not allowlist.allows("127.0.0.1", ["10.0.0.1", "203.0.113.9"])  # repeated header: the last one counts
    assert not allowlist.allows("127.0.0.1", ["not-an-ip"])
    assert not allowlist.allows("127.0.0.1", [""])
    assert not allowlist.allows("127.0.0.1", [])  # the proxy itself is not allowed
    assert not allowlist.allows("203.0.113.9", ["10.0.0.1"])  # an untrusted peer cannot name a caller


# --- Config validation ------------------------------------------------------------------------


def definition(config: dict[str, Any], *, sync: bool = False, key: str = "w") -> dict[str, Any]:
    return {"key": key, "sync": sync, "trigger": {"type": "webhook", "config": config}}


@pytest.mark.parametrize(
    "config, location, fragment",
    [
        ({"signature": {"preset": "github"}}, "trigger.config.signature", "'secrets' is a required property"),
        ({"signature": {"preset": "gitlab", "secrets": ["s"]}}, "trigger.config.signature.preset", "is not one of"),
        ({"signature": {"preset": "github", "secrets": []}}, "trigger.config.signature.secrets", "should be non-empty"),
        ({"signature": {"preset": "github", "secrets": [""]}}, "trigger.config.signature.secrets[0]", ""),
        ({"signature": {"preset": "github", "secrets": [{"env": "1X"}]}}, "trigger.config.signature.secrets[0]", ""),
        ({"signature": {"preset": "github", "header": "X", "secrets": ["s"]}}, "trigger.config", "fixed by the preset"),
        ({"signature": {"preset": "standard", "secrets": ["whsec_c2hvcnQ="]}}, "trigger.config", "signature.secrets[0]"),
        ({"signature": {"secrets": ["s"]}}, "trigger.config", "'header'"),
        ({"signature": {"header": "X-Sig", "algorithm": "md5", "secrets": ["s"]}}, "trigger.config.signature.algorithm", "is not one of"),
        ({"signature": {"header": "X-Sig", "encoding": "base32", "secrets": ["s"]}}, "trigger.config.signature.encoding", "is not one of"),
        ({"signature": {"header": "X Sig", "secrets": ["s"]}}, "trigger.config.signature.header", "does not match"),
        ({"signature": {"header": "X-Sig", "signed": "{ts}.{body}", "secrets": ["s"]}}, "trigger.config", "unknown placeholder"),
        ({"signature": {"header": "X-Sig", "signed": "{timestamp}", "secrets": ["s"]}}, "trigger.config", "{body} exactly once"),
        ({"signature": {"header": "X-Sig", "signed": "timestamp.body", "secrets": ["s"]}}, "trigger.config", "timestamp_header"),
        ({"signature": {"header": "X-Sig", "signed": "id.timestamp.body", "timestamp_header": "T", "secrets": ["s"]}},
         "trigger.config", "id_header"),
        ({"signature": {"header": "X-Sig", "tolerance": 0, "secrets": ["s"]}}, "trigger.config.signature.tolerance", "minimum"),
        ({"ip_allowlist": {"allow": []}}, "trigger.config.ip_allowlist.allow", "should be non-empty"),
        ({"ip_allowlist": {}}, "trigger.config.ip_allowlist", "'allow' is a required property"),
        ({"ip_allowlist": {"allow": ["10.0.0.1/8"]}}, "trigger.config", "did you mean '10.0.0.0/8'"),
        ({"ip_allowlist": {"allow": ["10.0.0.0/8"], "trusted_proxies": ["proxy.local"]}}, "trigger.config",
         "ip_allowlist.trusted_proxies[0]: 'proxy.local' is not"),
    ],
)
async def test_signature_and_allowlist_problems_are_located(
    hookline: HooklineTestApp, config: dict[str, Any], location: str, fragment: str
) -> None:
    response = await hookline.api("POST", "/api/workflows", json=definition(config))
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p["location"].startswith(location) and fragment in p["message"] for p in problems), problems


async def test_full_signature_configs_are_accepted(hookline: HooklineTestApp) -> None:
    for number, signature in enumerate([
        {"preset": "standard", "secrets": [SW_SECRET, {"env": "SW_NEXT"}], "tolerance": 600},
        {"algorithm": "sha512", "encoding": "base64", "header": "X-Sig", "prefix": "v1=", "signed": "{id}|{timestamp}|{body}",
         "timestamp_header": "X-Ts", "id_header": "X-Id", "tolerance": 30, "secrets": ["a", "b"]},
    ]):
        config = {"signature": signature, "ip_allowlist": {"allow": ["10.0.0.0/8", "::1"], "trusted_proxies": ["127.0.0.1"]}}
        response = await hookline.api("POST", "/api/workflows", json=definition(config, key=f"ok{number}"))
        assert response.status_code == 201, response.text


# --- In-process: what a caller sees -----------------------------------------------------------


def github_workflow(key: str = "gh", secrets: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    config = {"signature": {"preset": "github", "secrets": secrets or [GITHUB_SECRET]}, **extra}
    return {"key": key, "trigger": {"type": "webhook", "config": config}}


async def test_github_end_to_end(hookline: HooklineTestApp) -> None:
    await hookline.apply(github_workflow())
    ok = await hookline.client.post("/api/webhooks/gh", content=GITHUB_BODY,
                                    headers={"X-Hub-Signature-256": GITHUB_SIGNATURE, "Content-Type": "text/plain"})
    assert (ok.status_code, ok.text) == (200, "ok")
    bad = await hookline.client.post("/api/webhooks/gh", content=GITHUB_BODY,
                                     headers={"X-Hub-Signature-256": GITHUB_SIGNATURE[:-1] + "8", "Content-Type": "text/plain"})
    assert (bad.status_code, bad.json()) == (401, GENERIC_ERROR)
    assert "757107ea" not in bad.text
    assert await Execution.all().count() == 1


async def test_raw_bytes_are_verified_before_parsing(hookline: HooklineTestApp) -> None:
    await hookline.apply(github_workflow(secrets=["raw"]))
    body = b'{ "b":1,  "a":2 }'
    signature = "sha256=" + hmac.new(b"raw", body, hashlib.sha256).hexdigest()
    ok = await hookline.client.post("/api/webhooks/gh", content=body, headers={"X-Hub-Signature-256": signature,
                                                                                  "Content-Type": "application/json"})
    assert ok.status_code == 200, ok.text
    binary = b'{"a": "\xff"}'
    signature = "sha256=" + hmac.new(b"raw", binary, hashlib.sha256).hexdigest()
    parse_error = await hookline.client.post("/api/webhooks/gh", content=binary, headers={
        "X-Hub-Signature-256": signature, "Content-Type": "application/json"})
    assert parse_error.status_code == 400
    unsigned = await hookline.client.post("/api/webhooks/gh", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (unsigned.status_code, unsigned.json()) == (401, GENERIC_ERROR)


@pytest.mark.parametrize("value", ["", "sha256=", "sha256=" + "é" * 10, "x" * 6000, "sha1=abc", "sha256=" + "0" * 63, "\tsha256=zz"])
async def test_malformed_signatures_get_the_one_generic_401(hookline: HooklineTestApp, value: str) -> None:
    await hookline.apply(github_workflow())
    response = await hookline.client.post("/api/webhooks/gh", content=GITHUB_BODY,
                                          headers=[("X-Hub-Signature-256", value.encode("utf-8"))])
    assert (response.status_code, response.json()) == (401, GENERIC_ERROR)


async def test_repeated_signature_headers_are_refused(hookline: HooklineTestApp) -> None:
    await hookline.apply(github_workflow())
    response = await hookline.client.post("/api/webhooks/gh", content=GITHUB_BODY,
                                          headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)] * 2)
    assert (response.status_code, response.json()) == (401, GENERIC_ERROR)


async def test_rotation_and_env_secrets_end_to_end(hookline: HooklineTestApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_GH_NEXT", "next-secret")
    await hookline.apply(github_workflow(secrets=[GITHUB_SECRET, {"env": "HOOK_GH_NEXT"}]))
    body = b"rotated"
    for secret in (GITHUB_SECRET, "next-secret"):
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        response = await hookline.client.post("/api/webhooks/gh", content=body, headers={"X-Hub-Signature-256": signature})
        assert response.status_code == 200, secret
    await hookline.apply(github_workflow(secrets=[{"env": "HOOK_GH_NEXT"}]))
    old = await hookline.client.post("/api/webhooks/gh", content=GITHUB_BODY, headers={"X-Hub-Signature-256": GITHUB_SIGNATURE})
    assert old.status_code == 401
    monkeypatch.delenv("HOOK_GH_NEXT")
    unset = await hookline.client.post("/api/webhooks/gh", content=body, headers={"X-Hub-Signature-256": GITHUB_SIGNATURE})
    assert unset.status_code == 503 and "HOOK_GH_NEXT" not in unset.text


async def test_per_workflow_isolation(hookline: HooklineTestApp) -> None:
    await hookline.apply(github_workflow("a", secrets=[GITHUB_SECRET]))
    await hookline.apply(github_workflow("b", secrets=["another"]))
    response = await hookline.client.post("/api/webhooks/b", content=GITHUB_BODY, headers={"X-Hub-Signature-256": GITHUB_SIGNATURE})
    assert response.status_code == 401


def standard_request(secret: str, body: bytes, timestamp: int, message_id: str = "msg_1") -> dict[str, str]:
    key = decode_whsec(secret)
    assert key is not None
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode(), "Content-Type": "application/json"}


async def test_standard_webhooks_end_to_end_with_timestamps(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "sw", "trigger": {"type": "webhook", "config": {"signature": {"preset": "standard", "secrets": [SW_SECRET]}}}})
    body = b'{"type":"ping"}'
    now = int(time.time())
    ok = await hookline.client.post("/api/webhooks/sw", content=body, headers=standard_request(SW_SECRET, body, now))
    assert ok.status_code == 200
    mixed_case = {k.title(): v for k, v in standard_request(SW_SECRET, body, now).items()}
    assert (await hookline.client.post("/api/webhooks/sw", content=body, headers=mixed_case)).status_code == 200
    for skew in (-3600, 3600):
        stale = await hookline.client.post("/api/webhooks/sw", content=body, headers=standard_request(SW_SECRET, body, now + skew))
        assert (stale.status_code, stale.json()) == (401, GENERIC_ERROR)
    golden = await hookline.client.post("/api/webhooks/sw", content=SW_BODY, headers=sw_headers_flat())
    assert golden.status_code == 401  # the 2021 vector is far outside the tolerance today


async def test_a_plain_svix_delivery_end_to_end(hookline: HooklineTestApp) -> None:
    config = {"signature": {"preset": "standard", "secrets": [SW_SECRET]}, "idempotency": {"preset": "standard"}}
    await hookline.apply({"key": "svix", "trigger": {"type": "webhook", "config": config}})
    body = b'{"type":"invoice.paid"}'
    sent = {name.replace("webhook-", "svix-"): value for name, value in standard_request(SW_SECRET, body, int(time.time())).items()}
    ok = await hookline.client.post("/api/webhooks/svix", content=body, headers=sent)
    assert ok.status_code == 200, ok.text
    again = await hookline.client.post("/api/webhooks/svix", content=body, headers=sent)  # Svix's retry: same svix-id
    assert again.status_code == 200 and again.headers["X-Hookline-Duplicate"] == "true"
    stored = await Execution.filter(workflow__key="svix").all()
    assert len(stored) == 1
    assert stored[0].context["headers"]["svix-signature"] == "[redacted]"
    assert stored[0].context["headers"]["svix-id"] == sent["svix-id"]
    forged = await hookline.client.post("/api/webhooks/svix", content=body + b" ", headers=sent)
    assert (forged.status_code, forged.json()) == (401, GENERIC_ERROR)


def sw_headers_flat() -> dict[str, str]:
    return {name: values[0] for name, values in sw_headers().items()}


async def test_head_and_options_skip_the_checks(hookline: HooklineTestApp) -> None:
    await hookline.apply(github_workflow(ip_allowlist={"allow": ["10.0.0.0/8"]}))
    assert (await hookline.client.head("/api/webhooks/gh")).status_code == 200
    assert (await hookline.client.options("/api/webhooks/gh")).status_code == 204


def slack_request(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": "v0=" + mac, "X-Slack-Request-Timestamp": str(timestamp), "Content-Type": "application/json"}


async def test_slack_url_verification_is_answered_without_running(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "sl", "trigger": {"type": "webhook", "config": {"signature": {"preset": "slack", "secrets": [SLACK_SECRET]}}}})
    body = json.dumps({"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).encode()
    now = int(time.time())
    response = await hookline.client.post("/api/webhooks/sl", content=body, headers=slack_request(SLACK_SECRET, body, now))
    assert (response.status_code, response.json()) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    unsigned = await hookline.client.post("/api/webhooks/sl", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    event = b'{"type":"event_callback","event":{"type":"message"}}'
    ran = await hookline.client.post("/api/webhooks/sl", content=event, headers=slack_request(SLACK_SECRET, event, now))
    assert (ran.status_code, ran.text) == (200, "ok")
    assert await Execution.all().count() == 1


async def test_ip_allowlist_direct_peer_and_spoofing(hookline: HooklineTestApp) -> None:
    # hookline.client is an ASGI client: Sanic sees the peer 127.0.0.1.
    await hookline.apply({"key": "local", "trigger": {"type": "webhook", "config": {"ip_allowlist": {"allow": ["127.0.0.0/8"]}}}})
    await hookline.apply({"key": "lan", "trigger": {"type": "webhook", "config": {"ip_allowlist": {"allow": ["10.0.0.0/8"]}}}})
    assert (await hookline.webhook("local", json={})).status_code == 200
    denied = await hookline.webhook("lan", json={}, headers={"X-Forwarded-For": "10.0.0.1"})
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
    assert await Execution.all().count() == 1


async def test_ip_allowlist_behind_a_trusted_proxy(hookline: HooklineTestApp) -> None:
    await hookline.apply({"key": "proxied", "trigger": {"type": "webhook", "config": {
        "ip_allowlist": {"allow": ["10.0.0.0/8", "2001:db8::/32"], "trusted_proxies": ["127.0.0.1"]}}}})
    for forwarded, status in [("10.0.0.1", 200), ("::ffff:10.0.0.1", 200), ("2001:db8::5", 200), ("203.0.113.9, 10.0.0.1", 200),
                              ("10.0.0.1, 203.0.113.9", 403), ("not-an-ip", 403), ("", 403), ("2001:db9::5", 403)]:
        response = await hookline.webhook("proxied", json={}, headers={"X-Forwarded-For": forwarded})
        assert response.status_code == status, forwarded
    assert (await hookline.webhook("proxied", json={})).status_code == 403


async def test_check_order_ip_then_basic_then_signature(hookline: HooklineTestApp) -> None:
    config = {"ip_allowlist": {"allow": ["10.0.0.0/8"], "trusted_proxies": ["127.0.0.1"]},
              "auth": {"basic": {"username": "u", "password": "p"}},
              "signature": {"preset": "github", "secrets": [GITHUB_SECRET]}}
    await hookline.apply({"key": "all", "trigger": {"type": "webhook", "config": config}})
    basic = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    signed = {"X-Hub-Signature-256": GITHUB_SIGNATURE}
    outside = await hookline.client.post("/api/webhooks/all", content=GITHUB_BODY, headers={**basic, **signed})
    assert outside.status_code == 403
    inside = {"X-Forwarded-For": "10.1.1.1"}
    no_basic = await hookline.client.post("/api/webhooks/all", content=GITHUB_BODY, headers={**inside, **signed})
    assert no_basic.status_code == 401 and no_basic.json()["error"] == "unauthorized"
    bad_signature = await hookline.client.post("/api/webhooks/all", content=b"Hello", headers={**inside, **basic, **signed})
    assert (bad_signature.status_code, bad_signature.json()) == (401, GENERIC_ERROR)
    ok = await hookline.client.post("/api/webhooks/all", content=GITHUB_BODY, headers={**inside, **basic, **signed})
    assert ok.status_code == 200


# --- Through a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HooklineServer]:
    root: Path = tmp_path_factory.mktemp("signature-server")
    folder = root / "workflows"
    folder.mkdir()
    workflows = [
        github_workflow("gh", secrets=[{"env": "HOOK_SIG_GH"}]),
        {"key": "sw", "trigger": {"type": "webhook", "config": {"signature": {"preset": "standard", "secrets": [SW_SECRET]}}}},
        {"key": "lan", "trigger": {"type": "webhook", "config": {"ip_allowlist": {"allow": ["10.0.0.0/8"]}}}},
        {"key": "v6", "trigger": {"type": "webhook", "config": {"ip_allowlist": {"allow": ["::ffff:127.0.0.1/128", "::1"]}}}},
    ]
    for number, workflow in enumerate(workflows):
        (folder / f"{number}-{workflow['key']}.json").write_text(json.dumps(workflow))
    process = HooklineServer(f"sqlite://{root / 'hooks.db'}", workflows=folder, cwd=root, env={"HOOK_SIG_GH": GITHUB_SECRET})
    process.start(root / "server.log")
    yield process
    process.stop()


@pytest.mark.server
def test_signatures_and_allowlist_through_a_real_server(server: HooklineServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=20) as client:
        ok = client.post("/api/webhooks/gh", content=GITHUB_BODY, headers={"X-Hub-Signature-256": GITHUB_SIGNATURE})
        assert (ok.status_code, ok.text) == (200, "ok")
        bad = client.post("/api/webhooks/gh", content=GITHUB_BODY, headers={"X-Hub-Signature-256": GITHUB_SIGNATURE[:-1] + "8"})
        assert (bad.status_code, bad.json()) == (401, GENERIC_ERROR)
        chunked = client.post("/api/webhooks/gh", content=iter([b"Hello, ", b"World!"]), headers={"X-Hub-Signature-256": GITHUB_SIGNATURE})
        assert chunked.status_code == 200  # a streamed body is verified over all its bytes
        body = b'{"n":1}'
        sw = client.post("/api/webhooks/sw", content=body, headers=standard_request(SW_SECRET, body, int(time.time())))
        assert sw.status_code == 200
        garbage = client.post("/api/webhooks/sw", content=body, headers={"webhook-id": "x", "webhook-timestamp": "nan",
                                                                        "webhook-signature": "v1"})
        assert garbage.status_code == 401
        spoofed = client.post("/api/webhooks/lan", json={}, headers={"X-Forwarded-For": "10.0.0.1"})
        assert spoofed.status_code == 403
        assert client.post("/api/webhooks/v6", json={}).status_code == 200  # 127.0.0.1 matches its mapped form
    assert "757107ea" not in server.log()
