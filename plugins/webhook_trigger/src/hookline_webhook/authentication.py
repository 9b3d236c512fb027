"""The trigger's ``auth``: HTTP Basic, a header holding a secret, a bearer token, a JWT; with
several, a caller passing any one of them is let in. See the ``auth`` section of
docs/reference/webhook.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from hookline_webhook.auth import MisconfiguredSecret, basic_matches, header_matches
from hookline_webhook.jwt_auth import InvalidToken, JwtAuth, bearer_token, compile_jwt, jwt_problems, jwt_schema

#: At most this many values per secret list (rotation needs two or three).
MAX_SECRETS = 16


def auth_schema(secret: Mapping[str, Any], header_name: Mapping[str, Any]) -> dict[str, Any]:
    one_or_more = {"anyOf": [secret, {"type": "array", "minItems": 1, "maxItems": MAX_SECRETS, "items": secret}]}
    return {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "Who may call: HTTP Basic, a secret header, a bearer token or a JWT; any one configured suffices.",
        "properties": {
            "basic": {
                "type": "object",
                "required": ["username", "password"],
                "additionalProperties": False,
                "properties": {"username": secret, "password": secret},
            },
            "header": {
                "type": "object",
                "required": ["name", "value"],
                "additionalProperties": False,
                "properties": {"name": header_name, "value": one_or_more},
            },
            "bearer": {
                "type": "object",
                "required": ["token"],
                "additionalProperties": False,
                "properties": {"token": one_or_more},
            },
            "jwt": jwt_schema(secret, header_name),
        },
    }


#: Headers that no method may read its secret from: they are the request's framing and routing.
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "content-type", "connection"}


def auth_problems(config: Mapping[str, Any]) -> list[str]:
    problems = []
    header = (config.get("header") or {}).get("name", "")
    if header.lower() in _RESERVED_HEADERS:
        problems.append(f"auth.header.name: {header!r} cannot hold a secret; choose a header of your own (X-Api-Key)")
    if header.lower() == "authorization" and ({"basic", "bearer", "jwt"} & set(config)):
        problems.append(
            "auth.header.name: Authorization is read by basic, bearer and jwt here; use 'bearer' or another header"
        )
    if "jwt" in config:
        problems += jwt_problems(config["jwt"])
        jwt_header = config["jwt"].get("header", "")
        if jwt_header and jwt_header.lower() in _RESERVED_HEADERS:
            problems.append(f"auth.jwt.header: {jwt_header!r} cannot hold a token")
    return problems


@dataclass(frozen=True)
class Verdict:
    """The outcome of :meth:`Authentication.check`."""

    #: What ``$context.auth`` holds when the caller was let in; ``None`` when refused.
    context: dict[str, Any] | None
    #: Why each method refused (for the operator; the caller gets one answer).
    reasons: list[str] = field(default_factory=list)
    #: A secret the server lacks, when that is why nothing let the caller in.
    misconfigured: str | None = None
    #: Whether a JWT was presented and refused (its challenge then says ``invalid_token``).
    bad_token: bool = False


@dataclass(frozen=True)
class Authentication:
    """A trigger's ``auth`` config, compiled."""

    basic: Mapping[str, Any] | None
    header: Mapping[str, Any] | None
    bearer: Mapping[str, Any] | None
    jwt: JwtAuth | None

    def check(self, headers: Mapping[str, Any]) -> Verdict:
        """``headers``: the request's, looked up by lower-case name. Every configured method is
        tried (the first to let the caller in wins, in the order basic, header, bearer, jwt)."""
        reasons: list[str] = []
        misconfigured: str | None = None
        bad_token = False
        authorization = headers.get("authorization")
        try:
            if self.basic is not None:
                if basic_matches(authorization, self.basic):
                    return Verdict({"method": "basic"})
                reasons.append("basic: missing or wrong credentials")
        except MisconfiguredSecret as exc:
            misconfigured = f"{exc} (auth.basic)"
        try:
            if self.header is not None:
                name = self.header["name"]
                if header_matches(headers.get(name.lower()), self.header["value"]):
                    return Verdict({"method": "header", "header": name.lower()})
                reasons.append(f"header: {name} missing or wrong")
        except MisconfiguredSecret as exc:
            misconfigured = f"{exc} (auth.header)"
        try:
            if self.bearer is not None:
                if header_matches(bearer_token(authorization), self.bearer["token"]):
                    return Verdict({"method": "bearer"})
                reasons.append("bearer: missing or wrong token")
        except MisconfiguredSecret as exc:
            misconfigured = f"{exc} (auth.bearer)"
        if self.jwt is not None:
            token = self.jwt.token(headers)
            if token is None:
                reasons.append(f"jwt: no token in {self.jwt.header or 'Authorization: Bearer'}")
            else:
                try:
                    return Verdict({"method": "jwt", "claims": self.jwt.verify(token)})
                except InvalidToken as exc:
                    reasons.append(f"jwt: {exc}")
                    bad_token = True
                except MisconfiguredSecret as exc:
                    misconfigured = f"{exc} (auth.jwt)"
        return Verdict(None, reasons, misconfigured, bad_token)

    def wanted(self) -> str:
        """What the caller must send, for the 401's message."""
        parts = []
        if self.basic is not None:
            parts.append("HTTP Basic credentials (Authorization: Basic ...)")
        if self.header is not None:
            parts.append(f"the {self.header['name']} header")
        if self.bearer is not None:
            parts.append("a bearer token (Authorization: Bearer ...)")
        if self.jwt is not None:
            parts.append(
                f"a JWT in the {self.jwt.header} header" if self.jwt.header else "a JWT (Authorization: Bearer ...)"
            )
        return " or ".join(parts)

    def challenges(self, verdict: Verdict) -> str:
        """``WWW-Authenticate``: one challenge per scheme a caller may use (RFC 9110 §11.6.1)."""
        challenges = []
        if self.basic is not None:
            challenges.append('Basic realm="hookline", charset="UTF-8"')
        if self.bearer is not None or (self.jwt is not None and self.jwt.header is None):
            challenges.append('Bearer realm="hookline"' + (', error="invalid_token"' if verdict.bad_token else ""))
        if self.header is not None:
            challenges.append(f'ApiKey realm="hookline", header="{self.header["name"]}"')
        if self.jwt is not None and self.jwt.header is not None:
            challenges.append(f'ApiKey realm="hookline", header="{self.jwt.header}"')
        return ", ".join(challenges)

    def secret_headers(self) -> list[str]:
        """Headers holding a credential here, besides Authorization (never stored)."""
        names = [self.header["name"].lower()] if self.header is not None else []
        if self.jwt is not None and self.jwt.header is not None:
            names.append(self.jwt.header.lower())
        return names


def compile_auth(config: Mapping[str, Any] | None) -> Authentication | None:
    if not config:
        return None
    return Authentication(
        basic=config.get("basic"),
        header=config.get("header"),
        bearer=config.get("bearer"),
        jwt=compile_jwt(config["jwt"]) if "jwt" in config else None,
    )
