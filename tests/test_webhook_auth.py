"""The webhook trigger's ``auth`` beyond Basic: a secret header, a bearer token and JWT (HS, RS,
PS, ES, EdDSA; a public key or a JWKS; claims checked with a leeway), several methods at once,
and hostile tokens (``alg: none``, HS/RS key confusion, expired, wrong audience, truncated, huge,
non-JSON header, 1,000 dots). Tokens are made with PyJWT and, for the forged ones, by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hookline import DefinitionError
from hookline.storage.models import Execution
from hookline.testing import HooklineTestApp
from hookline_webhook.auth import MisconfiguredSecret
from hookline_webhook.authentication import compile_auth
from hookline_webhook.jwt_auth import InvalidToken, compile_jwt, jwt_problems

HS_SECRET = "a-shared-secret-of-at-least-32-bytes!!"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def pem(private_key: Any) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(private_key: Any) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def jwk(private_key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    key = json.loads(jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(private_key.public_key()))
    return {**key, "kid": kid, "use": "sig", "alg": algorithm}


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "shop-42", "iat": now, "exp": now + 300, "aud": "hookline", "iss": "https://idp.example", **extra}


def token(private_key: Any, algorithm: str, payload: dict[str, Any] | None = None, **headers: Any) -> str:
    return jwt.encode(
        payload if payload is not None else claims(), private_key, algorithm=algorithm, headers=headers or None
    )


def b64url(data: bytes | str) -> str:
    return base64.urlsafe_b64encode(data.encode() if isinstance(data, str) else data).rstrip(b"=").decode()


def forged(
    header: dict[str, Any] | str, payload: dict[str, Any], signature: bytes = b"", *, hmac_key: bytes | None = None
) -> str:
    """A token made by hand: any header (``alg: none``), HMAC-signed with any key (a public key's
    PEM, for the key-confusion attack PyJWT itself refuses to sign)."""
    head = b64url(header if isinstance(header, str) else json.dumps(header))
    signing_input = f"{head}.{b64url(json.dumps(payload))}"
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def verifier(**config: Any) -> Any:
    return compile_jwt({"audience": "hookline", "issuer": "https://idp.example", **config})


# --- JWT, unit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "private_key", "other_key"),
    [
        ("RS256", RSA_KEY, OTHER_RSA_KEY),
        ("RS512", RSA_KEY, OTHER_RSA_KEY),
        ("PS256", RSA_KEY, OTHER_RSA_KEY),
        ("ES256", EC_KEY, ec.generate_private_key(ec.SECP256R1())),
        ("EdDSA", ED_KEY, ed25519.Ed25519PrivateKey.generate()),
    ],
)
def test_asymmetric_algorithms_with_a_public_key(algorithm: str, private_key: Any, other_key: Any) -> None:
    check = verifier(algorithms=[algorithm], public_key=pem(private_key))
    assert check.verify(token(private_key, algorithm))["sub"] == "shop-42"
    with pytest.raises(InvalidToken, match="signature"):
        check.verify(token(other_key, algorithm))


def test_hs256_with_a_secret() -> None:
    check = verifier(algorithms=["HS256", "HS512"], secret=HS_SECRET + "x" * 30)
    assert check.verify(token(HS_SECRET + "x" * 30, "HS256"))["sub"] == "shop-42"
    assert check.verify(token(HS_SECRET + "x" * 30, "HS512"))["sub"] == "shop-42"
    with pytest.raises(InvalidToken, match="signature"):
        check.verify(token("another-secret-of-at-least-32-bytes!!!" + "x" * 30, "HS256"))


def test_a_jwks_picks_the_key_by_kid_and_algorithm() -> None:
    keys = [jwk(RSA_KEY, "rsa-1", "RS256"), jwk(OTHER_RSA_KEY, "rsa-2", "RS256"), jwk(EC_KEY, "ec-1", "ES256")]
    check = verifier(algorithms=["RS256", "RS384", "ES256"], jwks={"keys": keys})
    assert check.verify(token(RSA_KEY, "RS256", kid="rsa-1"))["sub"] == "shop-42"
    assert check.verify(token(OTHER_RSA_KEY, "RS256", kid="rsa-2"))["sub"] == "shop-42"
    assert check.verify(token(EC_KEY, "ES256", kid="ec-1"))["sub"] == "shop-42"
    assert check.verify(token(OTHER_RSA_KEY, "RS256"))["sub"] == "shop-42"  # no kid: every key of the kind is tried
    with pytest.raises(InvalidToken, match="signature"):
        check.verify(token(OTHER_RSA_KEY, "RS256", kid="rsa-1"))  # the kid's key, another signer
    with pytest.raises(InvalidToken, match="kid 'rsa-9'"):
        check.verify(token(RSA_KEY, "RS256", kid="rsa-9"))
    with pytest.raises(InvalidToken):  # the key says alg RS256: not used for RS384
        check.verify(token(RSA_KEY, "RS384", kid="rsa-1"))


def test_claims_are_checked_with_a_leeway() -> None:
    now = int(time.time())
    check = verifier(algorithms=["ES256"], public_key=pem(EC_KEY), leeway=30)
    assert check.verify(token(EC_KEY, "ES256", claims(exp=now - 20)))  # within the leeway
    for payload, problem in [
        (claims(exp=now - 60), "expired"),
        (claims(nbf=now + 60), "not valid yet"),
        (claims(iat=now + 600), "not valid yet"),
        (claims(aud="someone-else"), "audience"),
        (claims(aud=["a", "b"]), "audience"),
        (claims(iss="https://evil.example"), "issuer"),
        ({k: v for k, v in claims().items() if k != "exp"}, "required claim"),
        ({k: v for k, v in claims().items() if k != "aud"}, "required claim"),
    ]:
        with pytest.raises(InvalidToken, match=problem):
            check.verify(token(EC_KEY, "ES256", payload))
    several = verifier(
        algorithms=["ES256"], public_key=pem(EC_KEY), audience=["x", "hookline"], issuer=["https://idp.example"]
    )
    assert several.verify(token(EC_KEY, "ES256", claims(aud=["y", "hookline"])))
    no_exp = compile_jwt({"algorithms": ["ES256"], "public_key": pem(EC_KEY), "require": []})
    assert no_exp.verify(token(EC_KEY, "ES256", {"sub": "x"})) == {"sub": "x"}
    with pytest.raises(InvalidToken, match="audience"):  # a token for someone, to a trigger that names no audience
        no_exp.verify(token(EC_KEY, "ES256", {"sub": "x", "aud": "elsewhere"}))


def test_max_age_bounds_the_issue_time() -> None:
    now = int(time.time())
    check = verifier(algorithms=["ES256"], public_key=pem(EC_KEY), max_age=60, leeway=0)
    assert check.verify(token(EC_KEY, "ES256", claims(iat=now - 30)))
    with pytest.raises(InvalidToken, match="issued"):
        check.verify(token(EC_KEY, "ES256", claims(iat=now - 120)))
    with pytest.raises(InvalidToken, match="not a time"):  # validly signed, absurd: refused, not a 500
        check.verify(token(EC_KEY, "ES256", claims(iat=-(10**400))))
    with pytest.raises(InvalidToken, match="no 'iat'"):
        check.verify(token(EC_KEY, "ES256", {k: v for k, v in claims().items() if k != "iat"}))


def test_alg_none_is_refused() -> None:
    check = verifier(algorithms=["RS256", "HS256"], public_key=pem(RSA_KEY), secret=HS_SECRET)
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"alg": "NONE"}, {"typ": "JWT"}, {"alg": None}):
        with pytest.raises(InvalidToken):
            check.verify(forged(header, claims()))  # no signature: not even a JWS
        with pytest.raises(InvalidToken, match="not allowed"):
            check.verify(forged(header, claims(), b"sig"))


def test_hs_rs_key_confusion_is_refused() -> None:
    """The attacker knows the public key and signs HS256 with its PEM as the HMAC secret."""
    public = pem(RSA_KEY)
    attack = forged({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=public.encode())
    with pytest.raises(InvalidToken, match="not allowed"):
        verifier(algorithms=["RS256"], public_key=public).verify(attack)
    # Both allowed: an HS token is checked against the secret only, never the public key.
    with pytest.raises(InvalidToken, match="signature"):
        verifier(algorithms=["RS256", "HS256"], public_key=public, secret=HS_SECRET).verify(attack)
    # And a JWKS holding the RSA key: it is never an HMAC key.
    with pytest.raises(InvalidToken):
        verifier(algorithms=["RS256"], jwks={"keys": [jwk(RSA_KEY, "k", "RS256")]}).verify(
            forged({"alg": "HS256", "kid": "k"}, claims(), hmac_key=public.encode())
        )


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        pytest.param(lambda good: good[: good.rindex(".") + 5], "signature", id="truncated-signature"),
        pytest.param(lambda good: good[: good.rindex(".")], "compact form", id="no-signature"),
        pytest.param(lambda good: good + "." + good, "compact form", id="two-tokens"),
        pytest.param(lambda good: "." * 1000, "compact form", id="1000-dots"),
        pytest.param(lambda good: "a." * 1000 + "a", "compact form", id="1000-parts"),
        pytest.param(lambda good: "x" * 9000, "longer than", id="huge"),
        pytest.param(lambda good: good.replace(".", ".\u00e9", 1), "compact form", id="non-ascii"),
        pytest.param(
            lambda good: b64url("not json") + good[good.index(".") :], "header is not valid", id="non-json-header"
        ),
        pytest.param(
            lambda good: b64url("[1, 2]") + good[good.index(".") :], "header is not valid", id="header-not-an-object"
        ),
        pytest.param(
            lambda good: good[: good.index(".") + 1] + b64url("not json") + good[good.rindex(".") :],
            ".",
            id="non-json-payload",
        ),
        pytest.param(lambda good: forged({"alg": "ES256"}, claims(), b"\x00" * 64), "signature", id="zero-signature"),
        pytest.param(lambda good: forged({"alg": "ES256", "crit": ["exp"]}, claims(), b"x"), ".", id="unknown-crit"),
    ],
)
def test_hostile_tokens_are_refused_not_raised(sent: Any, problem: str) -> None:
    check = verifier(algorithms=["ES256"], public_key=pem(EC_KEY))
    with pytest.raises(InvalidToken, match=problem):
        check.verify(sent(token(EC_KEY, "ES256")))


def test_secrets_and_keys_are_checked_when_saved_and_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert jwt_problems({"algorithms": ["HS256"]}) == ["auth.jwt: HS256 need 'secret'"]
    assert "at least 64 bytes" in jwt_problems({"algorithms": ["HS256", "HS512"], "secret": HS_SECRET})[0]
    assert "need 'public_key' or 'jwks'" in jwt_problems({"algorithms": ["RS256"]})[0]
    assert (
        "'secret' is for HS"
        in jwt_problems({"algorithms": ["RS256"], "secret": HS_SECRET, "public_key": pem(RSA_KEY)})[0]
    )
    assert "not a PEM public key" in jwt_problems({"algorithms": ["ES256"], "public_key": pem(RSA_KEY)})[0]
    assert "not a PEM public key" in jwt_problems({"algorithms": ["RS256"], "public_key": private_pem(RSA_KEY)})[0]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert "2048" in jwt_problems({"algorithms": ["RS256"], "public_key": pem(weak)})[0]
    private_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY))
    assert "private or symmetric" in jwt_problems({"algorithms": ["RS256"], "jwks": {"keys": [private_jwk]}})[0]
    assert (
        "private or symmetric"
        in jwt_problems({"algorithms": ["RS256"], "jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}})[0]
    )
    assert (
        "not a public key" in jwt_problems({"algorithms": ["ES256"], "jwks": {"keys": [jwk(RSA_KEY, "k", "RS256")]}})[0]
    )
    assert (
        jwt_problems(
            {
                "algorithms": ["RS256", "ES256"],
                "public_key": pem(RSA_KEY),
                "jwks": {"keys": [jwk(EC_KEY, "e", "ES256")]},
            }
        )
        == []
    )
    # From the environment: read at each request; too short or unset is the server's fault.
    check = compile_jwt({"algorithms": ["HS256"], "secret": {"env": "JWT_SECRET"}, "require": []})
    monkeypatch.setenv("JWT_SECRET", "short")
    with pytest.raises(MisconfiguredSecret, match="at least 32"):
        check.verify(token(HS_SECRET, "HS256", {"sub": "x"}))
    monkeypatch.setenv("JWT_SECRET", HS_SECRET)
    assert check.verify(token(HS_SECRET, "HS256", {"sub": "x"})) == {"sub": "x"}
    monkeypatch.delenv("JWT_SECRET")
    with pytest.raises(MisconfiguredSecret):
        check.verify(token(HS_SECRET, "HS256", {"sub": "x"}))


# --- several methods, unit ------------------------------------------------------------------------


def test_any_configured_method_lets_the_caller_in() -> None:
    auth = compile_auth(
        {
            "basic": {"username": "u", "password": "p"},
            "header": {"name": "X-Api-Key", "value": ["old-key", "new-key"]},
            "bearer": {"token": "opaque-token"},
            "jwt": {"algorithms": ["HS256"], "secret": HS_SECRET, "require": []},
        }
    )
    assert auth is not None
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    assert auth.check({"authorization": basic}).context == {"method": "basic"}
    assert auth.check({"x-api-key": "new-key"}).context == {"method": "header", "header": "x-api-key"}
    assert auth.check({"x-api-key": "old-key"}).context is not None  # rotation: both values are active
    assert auth.check({"authorization": "bearer opaque-token"}).context == {"method": "bearer"}
    assert auth.check({"authorization": "Bearer " + token(HS_SECRET, "HS256", {"sub": "s"})}).context == {
        "method": "jwt",
        "claims": {"sub": "s"},
    }
    refused = auth.check({"authorization": "Bearer nope", "x-api-key": "new-key-"})
    assert refused.context is None and refused.bad_token
    assert [reason.split(":")[0] for reason in refused.reasons] == ["basic", "header", "bearer", "jwt"]
    assert auth.wanted() == (
        "HTTP Basic credentials (Authorization: Basic ...) or the X-Api-Key header or a bearer token "
        "(Authorization: Bearer ...) or a JWT (Authorization: Bearer ...)"
    )
    assert auth.challenges(refused) == (
        'Basic realm="hookline", charset="UTF-8", Bearer realm="hookline", error="invalid_token", '
        'ApiKey realm="hookline", header="X-Api-Key"'
    )
    for empty in ({}, {"x-api-key": ""}, {"authorization": "Bearer "}, {"authorization": "Bearer"}):
        assert auth.check(empty).context is None


# --- through the webhook (in-process) -------------------------------------------------------------


def echo_auth(key: str, auth: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "sync": True,
        "trigger": {"type": "webhook", "config": {"auth": auth}},
        "nodes": [{"key": "answer", "type": "response", "config": {"body": {"auth": "{{ $context.auth }}"}}}],
    }


async def test_a_secret_header_end_to_end(hookline: HooklineTestApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_KEY", "k-from-env")
    await hookline.apply(
        echo_auth("keyed", {"header": {"name": "X-Api-Key", "value": ["k-inline", {"env": "HOOK_KEY"}]}})
    )
    for value in ("k-inline", "k-from-env"):
        ok = await hookline.webhook("keyed", json={}, headers={"X-Api-Key": value})
        assert ok.status_code == 200 and ok.json() == {"auth": {"method": "header", "header": "x-api-key"}}
    for headers in ({}, {"X-Api-Key": "k-inlin"}, {"X-Api-Key": "k-inline2"}, {"Authorization": "Bearer k-inline"}):
        refused = await hookline.webhook("keyed", json={}, headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {"error": "unauthorized", "message": "this webhook needs the X-Api-Key header"}
        assert refused.headers["WWW-Authenticate"] == 'ApiKey realm="hookline", header="X-Api-Key"'
    twice = await hookline.client.post(
        "/api/webhooks/keyed", json={}, headers=[("X-Api-Key", "k-inline"), ("X-Api-Key", "k-inline")]
    )
    assert twice.status_code == 401  # which one did a proxy check? neither counts
    stored = await Execution.filter(workflow__key="keyed").all()
    assert len(stored) == 2 and {row.context["headers"]["x-api-key"] for row in stored} == {"[redacted]"}


async def test_a_bearer_token_end_to_end(hookline: HooklineTestApp) -> None:
    await hookline.apply(echo_auth("bearer", {"bearer": {"token": "t0ken-value"}}))
    ok = await hookline.webhook("bearer", json={}, headers={"Authorization": "Bearer t0ken-value"})
    assert ok.status_code == 200 and ok.json() == {"auth": {"method": "bearer"}}
    refused = await hookline.webhook("bearer", json={}, headers={"Authorization": "Basic t0ken-value"})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="hookline"'
    assert refused.json()["message"] == "this webhook needs a bearer token (Authorization: Bearer ...)"


async def test_jwt_claims_reach_the_workflow(hookline: HooklineTestApp) -> None:
    auth = {"jwt": {"algorithms": ["RS256"], "jwks": {"keys": [jwk(RSA_KEY, "main", "RS256")]}, "audience": "hookline"}}
    await hookline.apply(echo_auth("jwt", auth))
    sent = token(RSA_KEY, "RS256", claims(role="shipper"), kid="main")
    ok = await hookline.webhook("jwt", json={}, headers={"Authorization": f"Bearer {sent}"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["auth"]["method"] == "jwt" and ok.json()["auth"]["claims"]["role"] == "shipper"
    stored = await Execution.filter(workflow__key="jwt").first()
    assert stored is not None and stored.context["headers"]["authorization"] == "[redacted]"
    assert stored.context["auth"]["claims"]["sub"] == "shop-42"
    expired = token(RSA_KEY, "RS256", claims(exp=int(time.time()) - 3600), kid="main")
    refused = await hookline.webhook("jwt", json={}, headers={"Authorization": f"Bearer {expired}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="hookline", error="invalid_token"'
    assert (
        refused.json()["message"] == "this webhook needs a JWT (Authorization: Bearer ...)"
    )  # the cause is the operator's
    missing = await hookline.webhook("jwt", json={})
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="hookline"'
    await hookline.host.refused_calls.flush()
    calls = await hookline.api("GET", "/api/refusals", params={"workflow": "jwt"})
    messages = [item["message"] for item in calls.json()["items"]]
    assert any("the token has expired" in message for message in messages), messages
    assert await Execution.filter(workflow__key="jwt").count() == 1


async def test_jwt_or_basic(hookline: HooklineTestApp) -> None:
    auth = {
        "basic": {"username": "shop", "password": "pw"},
        "jwt": {"algorithms": ["EdDSA"], "public_key": pem(ED_KEY)},
    }
    await hookline.apply(echo_auth("either", auth))
    with_jwt = await hookline.webhook(
        "either",
        json={},
        headers={
            "Authorization": "Bearer " + token(ED_KEY, "EdDSA", {"sub": "a", "aud": "x", "exp": int(time.time()) + 60})
        },
    )
    assert with_jwt.status_code == 401  # a token with an audience, to a trigger that names none
    with_jwt = await hookline.webhook(
        "either",
        json={},
        headers={"Authorization": "Bearer " + token(ED_KEY, "EdDSA", {"sub": "a", "exp": int(time.time()) + 60})},
    )
    assert with_jwt.status_code == 200 and with_jwt.json()["auth"]["claims"]["sub"] == "a"
    with_basic = await hookline.webhook("either", json={}, auth=("shop", "pw"))
    assert with_basic.status_code == 200 and with_basic.json() == {"auth": {"method": "basic"}}
    neither = await hookline.webhook("either", json={}, auth=("shop", "wrong"))
    assert neither.status_code == 401
    assert neither.headers["WWW-Authenticate"] == 'Basic realm="hookline", charset="UTF-8", Bearer realm="hookline"'
    assert neither.json()["message"] == (
        "this webhook needs HTTP Basic credentials (Authorization: Basic ...) or a JWT (Authorization: Bearer ...)"
    )


async def test_an_unset_secret_is_503_whatever_the_caller_sent(
    hookline: HooklineTestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_HOOK_TOKEN", raising=False)
    await hookline.apply(echo_auth("unset", {"bearer": {"token": {"env": "UNSET_HOOK_TOKEN"}}}))
    answer = await hookline.webhook("unset", json={}, headers={"Authorization": "Bearer x"})
    assert answer.status_code == 503 and answer.json()["error"] == "misconfigured"
    assert "UNSET_HOOK_TOKEN" not in answer.text


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ({}, "should be non-empty"),
        ({"header": {"name": "Content-Type", "value": "x"}}, "cannot hold a secret"),
        ({"header": {"name": "Authorization", "value": "x"}, "bearer": {"token": "y"}}, "use 'bearer'"),
        ({"header": {"name": "X Key", "value": "x"}}, "does not match"),
        ({"bearer": {"token": []}}, "should be non-empty"),
        ({"jwt": {"algorithms": ["none"], "secret": HS_SECRET}}, "'none' is not one of"),
        ({"jwt": {"algorithms": ["HS256"], "secret": "short"}}, "at least 32 bytes"),
        ({"jwt": {"algorithms": ["RS256"], "public_key": "not a key"}}, "not a PEM public key"),
        ({"jwt": {"secret": HS_SECRET}}, "'algorithms' is a required property"),
    ],
)
async def test_auth_configs_are_checked_when_saved(
    hookline: HooklineTestApp, auth: dict[str, Any], problem: str
) -> None:
    with pytest.raises(DefinitionError) as refused:
        await hookline.apply(echo_auth("bad", auth))
    assert problem in str(refused.value.to_dict()), refused.value.to_dict()
