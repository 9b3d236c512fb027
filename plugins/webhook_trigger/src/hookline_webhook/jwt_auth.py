"""``auth.jwt``: a JSON Web Token (RFC 7519) in ``Authorization: Bearer`` (or a header of the
trigger's choosing), verified with PyJWT against an explicit algorithm allow-list.

The key is chosen by the token's algorithm and never the other way round: an HMAC algorithm
(HS256/384/512) is verified with ``secret`` only, an asymmetric one (RS, PS, ES, EdDSA) with
``public_key`` or a key of the ``jwks`` document only, so a public key can never serve as an HMAC
secret (the HS/RS confusion). ``alg: none`` is not an algorithm this module knows.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import jwt
from jwt.algorithms import get_default_algorithms

from hookline_webhook.auth import MisconfiguredSecret, resolve_secret

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS
#: RFC 7518 §3.2: an HMAC key at least as long as the hash.
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
DEFAULT_LEEWAY = 30
DEFAULT_REQUIRE = ("exp",)
#: Longer tokens are refused unread (an identity provider's tokens are a few hundred bytes to a few KiB).
MAX_TOKEN_LENGTH = 8192
#: A JWS in compact form: three base64url parts (RFC 7515 §7.1).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_CLAIM = {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,64}$"}
_ONE_OR_MORE = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
    ]
}


def jwt_schema(secret_schema: Mapping[str, Any], header_name: Mapping[str, Any]) -> dict[str, Any]:
    text_or_env = {key: value for key, value in secret_schema.items() if key != "writeOnly"}
    return {
        "type": "object",
        "required": ["algorithms"],
        "additionalProperties": False,
        "description": "A JWT, verified by signature (algorithm allow-list) and claims.",
        "properties": {
            "algorithms": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(ALGORITHMS)}},
            "secret": secret_schema,
            "public_key": text_or_env,
            "jwks": {
                "type": "object",
                "required": ["keys"],
                "properties": {"keys": {"type": "array", "minItems": 1, "maxItems": 32, "items": {"type": "object"}}},
            },
            "audience": _ONE_OR_MORE,
            "issuer": _ONE_OR_MORE,
            "leeway": {"type": "integer", "minimum": 0, "maximum": 600},
            "max_age": {"type": "integer", "minimum": 1, "maximum": 31_536_000},
            "require": {"type": "array", "uniqueItems": True, "items": _CLAIM},
            "header": header_name,
        },
    }


@dataclass(frozen=True)
class JwtAuth:
    """An ``auth.jwt`` config, compiled."""

    algorithms: tuple[str, ...]
    secret: Any
    public_key: Any
    jwks: tuple[Mapping[str, Any], ...]
    audience: tuple[str, ...] | None
    issuer: tuple[str, ...] | None
    leeway: int
    max_age: int | None
    require: tuple[str, ...]
    #: Where the token is: ``None`` for ``Authorization: Bearer``, else a header holding it alone.
    header: str | None

    def token(self, headers: Mapping[str, Any]) -> str | None:
        """The token sent, or ``None`` when there is none."""
        if self.header is not None:
            value = headers.get(self.header.lower())
            return value.strip() or None if isinstance(value, str) else None
        return bearer_token(headers.get("authorization"))

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The verified claims; raises :class:`InvalidToken` saying why not (for the operator),
        or :class:`MisconfiguredSecret`."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
        if not _COMPACT.fullmatch(token):
            raise InvalidToken("the token is not a JWS in compact form (three base64url parts)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token's header is not valid: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise InvalidToken(
                f"algorithm {str(algorithm)[:20]!r} is not allowed (allowed: {', '.join(self.algorithms)})"
            )
        failure: InvalidToken | None = None
        for key in self._keys(algorithm, header.get("kid")):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=list(self.audience) if self.audience else None,
                    issuer=list(self.issuer) if self.issuer else None,
                    leeway=self.leeway,
                    options={"require": list(self.require), "enforce_minimum_key_length": True},
                )
            except jwt.InvalidSignatureError:
                failure = failure or InvalidToken("the signature does not match")
                continue
            except jwt.InvalidKeyError as exc:
                failure = failure or InvalidToken(f"the key does not fit the token: {exc}")
                continue
            except jwt.PyJWTError as exc:  # claims: expired, audience, issuer, missing...
                raise InvalidToken(_claims_problem(exc)) from None
            self._check_age(claims, now if now is not None else time.time())
            return claims
        raise failure or InvalidToken(
            f"no key of the JWKS has kid {str(header.get('kid'))[:64]!r}"
            if header.get("kid") is not None
            else "no key for this algorithm"
        )

    def _keys(self, algorithm: str, kid: Any) -> list[Any]:
        if algorithm in HMAC_ALGORITHMS:
            if self.secret is None:
                return []
            secret = resolve_secret(self.secret).encode("utf-8")
            if len(secret) < HMAC_KEY_BYTES[algorithm]:
                raise MisconfiguredSecret(
                    f"the JWT secret is {len(secret)} bytes; {algorithm} needs at least {HMAC_KEY_BYTES[algorithm]}"
                )
            return [secret]
        keys: list[Any] = []
        if self.public_key is not None:
            try:
                keys.append(_public_key(algorithm, resolve_secret(self.public_key)))
            except InvalidToken:  # a key of another kind (RSA for ES256): the JWKS may have one
                pass
        for jwk in self.jwks:
            if kid is not None and jwk.get("kid") != kid:
                continue
            if jwk.get("alg", algorithm) != algorithm or jwk.get("use", "sig") != "sig":
                continue
            key = _jwk(json.dumps(jwk, sort_keys=True), algorithm)
            if key is not None:
                keys.append(key)
        return keys

    def _check_age(self, claims: Mapping[str, Any], now: float) -> None:
        if self.max_age is None:
            return
        issued = claims.get("iat")
        if not isinstance(issued, (int, float)) or isinstance(issued, bool):
            raise InvalidToken("the token has no 'iat' claim (max_age needs it)")
        if not -1e12 < issued < 1e12:  # (a float would overflow, or be nan)
            raise InvalidToken("the token's 'iat' is not a time")
        if now - issued > self.max_age + self.leeway:
            raise InvalidToken(f"the token was issued {int(now - issued)} s ago (max_age {self.max_age} s)")


class InvalidToken(Exception):
    """Why a token was refused (for the operator's log; the caller gets one generic answer)."""


def bearer_token(header: str | None) -> str | None:
    """``Authorization: Bearer <token>`` (scheme matched case-insensitively) -> the token."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def compile_jwt(config: Mapping[str, Any]) -> JwtAuth:
    def many(name: str) -> tuple[str, ...] | None:
        value = config.get(name)
        return None if value is None else (value,) if isinstance(value, str) else tuple(value)

    return JwtAuth(
        algorithms=tuple(config["algorithms"]),
        secret=config.get("secret"),
        public_key=config.get("public_key"),
        jwks=tuple((config.get("jwks") or {}).get("keys", ())),
        audience=many("audience"),
        issuer=many("issuer"),
        leeway=config.get("leeway", DEFAULT_LEEWAY),
        max_age=config.get("max_age"),
        require=tuple(config.get("require", DEFAULT_REQUIRE)),
        header=config.get("header"),
    )


def jwt_problems(config: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say: each allowed algorithm has a key of its kind, and the keys
    given in the definition parse."""
    problems = []
    algorithms = config.get("algorithms", [])
    hmac_ones = [name for name in algorithms if name in HMAC_ALGORITHMS]
    asymmetric = [name for name in algorithms if name in ASYMMETRIC_ALGORITHMS]
    if hmac_ones and "secret" not in config:
        problems.append(f"auth.jwt: {', '.join(hmac_ones)} need 'secret'")
    if not hmac_ones and "secret" in config:
        problems.append("auth.jwt: 'secret' is for HS256/HS384/HS512, and none is in 'algorithms'")
    if asymmetric and "public_key" not in config and "jwks" not in config:
        problems.append(f"auth.jwt: {', '.join(asymmetric)} need 'public_key' or 'jwks'")
    if not asymmetric and ("public_key" in config or "jwks" in config):
        problems.append(
            "auth.jwt: 'public_key' and 'jwks' are for RS/PS/ES/EdDSA algorithms, and none is in 'algorithms'"
        )
    secret = config.get("secret")
    if isinstance(secret, str) and hmac_ones:
        needed = max(HMAC_KEY_BYTES[name] for name in hmac_ones)
        if len(secret.encode("utf-8")) < needed:
            problems.append(
                f"auth.jwt.secret: {', '.join(hmac_ones)} need a secret of at least {needed} bytes (RFC 7518 §3.2)"
            )
    public_key = config.get("public_key")
    if isinstance(public_key, str) and asymmetric:
        fitting = [name for name in asymmetric if _fits(name, public_key)]
        if not fitting:
            problems.append(f"auth.jwt.public_key: not a PEM public key for {', '.join(asymmetric)}")
        for name in fitting[:1]:
            weak = get_default_algorithms()[name].check_key_length(_public_key(name, public_key))
            if weak:
                problems.append(f"auth.jwt.public_key: {weak}")
    for number, jwk in enumerate((config.get("jwks") or {}).get("keys", [])):
        if "d" in jwk or (jwk.get("kty") == "oct"):
            problems.append(f"auth.jwt.jwks.keys[{number}]: a private or symmetric key; give public keys only")
            continue
        if not any(_jwk(json.dumps(jwk, sort_keys=True), name) is not None for name in asymmetric):
            problems.append(
                f"auth.jwt.jwks.keys[{number}]: not a public key for {', '.join(asymmetric) or 'the algorithms'}"
            )
    return problems


def _claims_problem(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired (exp)"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return f"the token is not valid yet ({exc})"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"wrong audience ({exc})"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"wrong issuer ({exc})"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"a required claim is missing ({exc})"
    return f"the token is not valid: {exc}"


def _fits(algorithm: str, pem: str) -> bool:
    try:
        return _public_key(algorithm, pem) is not None
    except InvalidToken:
        return False


@lru_cache(maxsize=128)
def _public_key(algorithm: str, pem: str) -> Any:
    """A PEM public key prepared for ``algorithm`` (cached: parsing one costs far more than a
    verification). A private key is refused: only the sender should hold it."""
    if "PRIVATE KEY" in pem:
        raise InvalidToken("the configured public_key is a private key")
    try:
        return get_default_algorithms()[algorithm].prepare_key(pem)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(f"the configured public key does not fit {algorithm}: {exc}") from None


@lru_cache(maxsize=256)
def _jwk(document: str, algorithm: str) -> jwt.PyJWK | None:
    """The JWK for ``algorithm``, or ``None`` when it is not a key of that kind (an RSA key for
    ES256, a symmetric key for RS256: never used across kinds)."""
    try:
        key = jwt.PyJWK(json.loads(document), algorithm=algorithm)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    return key
