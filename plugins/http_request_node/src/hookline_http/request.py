"""The request a rendered config describes: URL, query, headers, body and credentials.

Everything here runs on the config *after* its templates were rendered, so each value is checked
again: a template may have produced anything. Secrets are read from the server's environment
only here, at call time; they are never part of the config, the job's input or its result.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hookline.templates import as_text
from hookline.web import header_value

from hookline_http.failures import BAD_REQUEST, BAD_URL, MISSING_SECRET, CallFailed

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: Methods that send no body.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Headers the HTTP client computes; configuring them would break the request's framing.
COMPUTED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: Headers shown as ``[redacted]`` wherever the request is recorded (besides ``auth.header``'s).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDACTED = "[redacted]"
MAX_URL_LENGTH = 8192

_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_JSON_TYPES = {str: "text", bool: "a boolean", int: "a number", float: "a number", dict: "an object", list: "a list"}


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _shown(url: str) -> str:
    return repr(url if len(url) <= 200 else url[:200] + "...")


def parse_url(value: Any) -> httpx.URL:
    """``value`` as an absolute ``http``/``https`` URL with a host and no credentials.
    Raises ``ValueError`` (``TypeError`` for a value that is not text) saying what is wrong;
    the message starts with ``url``."""
    if not isinstance(value, str):
        raise TypeError(f"url must be text, got {json_type(value)}")
    if not value:
        raise ValueError("url is empty")
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"url is longer than {MAX_URL_LENGTH} characters")
    if _SPACE_OR_CONTROL.search(value):
        raise ValueError(f"url {_shown(value)} holds a space or a control character; percent-encode it (%20)")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"url {_shown(value)} is not a valid URL: {exc}") from None
    if not url.scheme:
        raise ValueError(f"url {_shown(value)} is not absolute: write it with http:// or https:// and a host")
    if url.scheme not in ("http", "https"):
        raise ValueError(f"url {_shown(value)} uses {url.scheme}:, but only http and https are supported")
    if url.userinfo:  # the URL is not repeated: it holds a password
        raise ValueError("url must not hold credentials (user:password@); use 'auth' with secrets from the environment")
    host = url.raw_host.decode("ascii")
    if not host:
        raise ValueError(f"url {_shown(value)} has no host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"url {_shown(value)} has an invalid IPv6 address {host!r}") from None
    elif not _HOST_NAME.match(host):
        raise ValueError(f"url {_shown(value)} has an invalid host {host!r}")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError(f"url {_shown(value)} has an invalid port {url.port} (1 to 65535)")
    return url


def origin_of(url: httpx.URL) -> str:
    """``host:port`` of ``url``, the port written out (``api.example.com:443``)."""
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.raw_host.decode("ascii")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def same_origin(one: httpx.URL, other: httpx.URL) -> bool:
    return one.scheme == other.scheme and origin_of(one) == origin_of(other)


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
    url: httpx.URL
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
    try:
        url = parse_url(config.get("url"))
    except (TypeError, ValueError) as exc:
        raise CallFailed(BAD_URL, str(exc)) from None
    query = parameters(config.get("query"), "query parameter")
    if query:
        own = url.query.decode("ascii")
        url = url.copy_with(query=((f"{own}&" if own else "") + encode(query)).encode("ascii"))

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
    if header and _CONTROL.search(value):
        raise CallFailed(
            BAD_REQUEST,
            f"{where}: the environment variable {variable} holds a line break or a control character, "
            "which a header cannot carry",
            variable=variable,
        )
    return value
