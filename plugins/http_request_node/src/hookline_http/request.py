"""The request a rendered config describes: URL, query, headers, body and credentials.

Everything here runs on the config *after* its templates were rendered, so each value is checked
again: a template may have produced anything. Secrets are read from the server's environment
only here, at call time; they are never part of the config, the job's input or its result.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hookline.templates import as_text
from hookline.web import header_value
from yarl import URL

from hookline_http.failures import BAD_REQUEST, BAD_URL, MISSING_SECRET, CallFailed
from hookline_http.urls import parse_url, with_query

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: Methods that send no body.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Headers the HTTP client computes; configuring them would break the request's framing.
COMPUTED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: Headers shown as ``[redacted]`` wherever the request is recorded (besides ``auth.header``'s).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDACTED = "[redacted]"

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_JSON_TYPES = {str: "text", bool: "a boolean", int: "a number", float: "a number", dict: "an object", list: "a list"}


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def parameters(values: Mapping[str, Any] | None, what: str) -> list[tuple[str, str]]:
    """``{name: value or [values]}`` as ``(name, text)`` pairs: ``null`` leaves a value out,
    ``true``/``false`` are written as such, numbers as JSON writes them."""
    pairs = []
    for name, value in (values or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(item, (dict, list)):
                raise CallFailed(
                    BAD_REQUEST,
                    f"{what} {name!r} must be text, a number or a boolean (or a list of them) once rendered, "
                    f"got {json_type(item)}",
                    parameter=name,
                )
            pairs.append((name, as_text(item)))
    return pairs


def encode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, quote_via=quote)


@dataclass(frozen=True)
class Outgoing:
    """A request ready to send."""

    method: str
    url: URL
    headers: list[tuple[str, str]]
    content: bytes | None
    #: Lower-case names of headers holding credentials.
    secret_headers: frozenset[str]

    def record(self) -> dict[str, Any]:
        """The request as the job's result shows it, credentials redacted."""
        return {
            "method": self.method,
            "url": str(self.url),
            "headers": {
                name: REDACTED if name.lower() in self.secret_headers else value for name, value in self.headers
            },
        }


def build_request(
    config: Mapping[str, Any], raw_config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Outgoing:
    """The request ``config`` (rendered) describes. Secrets are found in ``raw_config``, the
    config as written: a rendered value that looks like ``{"env": NAME}`` (a caller can send
    one) is never taken for a reference. Raises :class:`CallFailed`."""
    environ = os.environ if environ is None else environ
    method = config.get("method", "GET")
    url_text = config.get("url")
    if not isinstance(url_text, str):
        raise CallFailed(BAD_URL, f"url must be text, got {json_type(url_text)}")
    try:
        url = parse_url(url_text)
    except ValueError as exc:
        raise CallFailed(BAD_URL, str(exc)) from None
    query = parameters(config.get("query"), "query parameter")
    if query:
        url = with_query(url, encode(query))

    headers: list[tuple[str, str]] = []
    for name, value in (config.get("headers") or {}).items():
        try:
            headers.append((name, header_value(name, value)))
        except ValueError as exc:
            raise CallFailed(BAD_REQUEST, str(exc), header=name) from None

    content, content_type = _body(config.get("body"))
    if content_type is not None and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", content_type))

    secret = set(SECRET_HEADERS)
    auth = config.get("auth")
    if auth:
        name, value = _credentials(auth, raw_config["auth"], environ)
        headers.append((name, value))
        secret.add(name.lower())
    return Outgoing(method, url, headers, content, frozenset(secret))


def _body(body: Mapping[str, Any] | None) -> tuple[bytes | None, str | None]:
    if not body:
        return None, None
    if "json" in body:
        text = json.dumps(body["json"], ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8"), "application/json"
    if "form" in body:
        return encode(parameters(body["form"], "form field")).encode("ascii"), "application/x-www-form-urlencoded"
    content_type = body.get("content_type")
    if content_type is None:
        content_type = "text/plain; charset=utf-8"
    try:
        content_type = header_value("Content-Type", content_type)
    except ValueError as exc:
        raise CallFailed(BAD_REQUEST, f"body.content_type: {exc}") from None
    return as_text(body.get("text")).encode("utf-8"), content_type


def _credentials(auth: Mapping[str, Any], raw: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, str]:
    """The header that carries ``auth`` (rendered), its secrets read from ``environ`` as
    ``raw`` (the config as written) names them."""
    if "basic" in raw:
        username = raw["basic"]["username"]
        if isinstance(username, dict):
            user = _secret(username, "auth.basic.username", environ)
        else:
            user = as_text(auth["basic"]["username"])
        if ":" in user:
            raise CallFailed(BAD_REQUEST, "auth.basic.username must not contain ':' (HTTP Basic cannot send it)")
        password = _secret(raw["basic"]["password"], "auth.basic.password", environ)
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return "Authorization", f"Basic {token}"
    if "bearer" in raw:
        token = _secret(raw["bearer"]["token"], "auth.bearer.token", environ, header=True)
        return "Authorization", f"Bearer {token}"
    header = raw["header"]
    return header["name"], _secret(header["value"], "auth.header.value", environ, header=True)


def _secret(reference: Mapping[str, Any], where: str, environ: Mapping[str, str], *, header: bool = False) -> str:
    """The value of the environment variable ``reference`` names. Messages name the variable,
    never its value."""
    variable = reference["env"]
    value = environ.get(variable, "")
    if not value:
        raise CallFailed(
            MISSING_SECRET,
            f"{where} reads the environment variable {variable}, which is not set (or is empty) on the server",
            variable=variable,
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 in the environment (surrogate escapes)
        raise CallFailed(
            BAD_REQUEST,
            f"{where}: the environment variable {variable} is not valid UTF-8 text",
            variable=variable,
        ) from None
    if header and _CONTROL.search(value):
        raise CallFailed(
            BAD_REQUEST,
            f"{where}: the environment variable {variable} holds a line break or a control character, "
            "which a header cannot carry",
            variable=variable,
        )
    return value
