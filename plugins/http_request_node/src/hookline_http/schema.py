"""The ``http-request`` config: its JSON Schema, the console's hints, and the rules a schema
cannot express (checked when a workflow is saved)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from hookline.templates import compile_template
from hookline.web import HEADER_NAME_PATTERN

from hookline_http.request import BODYLESS_METHODS, COMPUTED_HEADERS, METHODS
from hookline_http.urls import parse_url

MIB = 1024 * 1024
DEFAULT_MAX_RESPONSE_SIZE = MIB
MOST_RESPONSE_SIZE = 64 * MIB
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_TOTAL_TIMEOUT = 30.0
MOST_SECONDS = 3600

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_VALUE = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"

_ENV: dict[str, Any] = {
    "type": "object",
    "required": ["env"],
    "additionalProperties": False,
    "properties": {
        "env": {
            "type": "string",
            "pattern": _ENV_NAME,
            "description": "The name of an environment variable of the server, read when the request is made.",
        }
    },
}

#: A secret is always read from the server's environment: nothing secret is stored in a
#: definition, a job's input or its result. ``writeOnly`` tells a console never to show it.
SECRET_SCHEMA: dict[str, Any] = {
    **_ENV,
    "writeOnly": True,
    "description": 'A secret, read from the server\'s environment: {"env": "NAME"}.',
}

_SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}

_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "maxProperties": 1000,
    "propertyNames": {"minLength": 1, "maxLength": 256},
    "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "maxItems": 1000, "items": _SCALAR}]},
}

_SECONDS: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0, "maximum": MOST_SECONDS}

_STATUS_PATTERN: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": "^[1-5]xx$"},
    ],
    "description": 'a status (404) or a class of statuses ("4xx", "5xx")',
}

_HEADER_NAME: dict[str, Any] = {"type": "string", "pattern": HEADER_NAME_PATTERN}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "method": {"enum": list(METHODS), "default": "GET", "description": "The HTTP method (default GET)."},
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": 8192,
            "description": "The absolute http:// or https:// URL to call; templates allowed. No user:password@: use auth.",
        },
        "query": {
            **_PARAMETERS,
            "description": "Query parameters added to the URL's own: name -> value or list of values.",
        },
        "headers": {
            "type": "object",
            "maxProperties": 100,
            "propertyNames": {"pattern": HEADER_NAME_PATTERN},
            "additionalProperties": {"anyOf": [{"type": "string", "pattern": _VALUE}, {"type": ["number", "boolean"]}]},
            "description": "Request headers: name -> value. Host, Content-Length, Transfer-Encoding and Connection are computed.",
        },
        "body": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "description": "The request body: exactly one of json, form or text.",
            "properties": {
                "json": {"description": "Any JSON value, sent as application/json."},
                "form": {**_PARAMETERS, "description": "Fields sent as application/x-www-form-urlencoded."},
                "text": {"type": "string", "description": "Text sent as it is (UTF-8)."},
                "content_type": {
                    "type": "string",
                    "pattern": _VALUE,
                    "maxLength": 256,
                    "description": "The Content-Type of a text body (default text/plain; charset=utf-8).",
                },
            },
        },
        "auth": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "description": "Credentials, exactly one of basic, bearer or header; secrets come from the server's environment.",
            "properties": {
                "basic": {
                    "type": "object",
                    "required": ["username", "password"],
                    "additionalProperties": False,
                    "description": "HTTP Basic authentication.",
                    "properties": {
                        "username": {"anyOf": [{"type": "string"}, _ENV], "description": "Text, or {env: NAME}."},
                        "password": SECRET_SCHEMA,
                    },
                },
                "bearer": {
                    "type": "object",
                    "required": ["token"],
                    "additionalProperties": False,
                    "description": "Authorization: Bearer <token>.",
                    "properties": {"token": SECRET_SCHEMA},
                },
                "header": {
                    "type": "object",
                    "required": ["name", "value"],
                    "additionalProperties": False,
                    "description": "A header of your choice carrying a secret (X-Api-Key: <value>).",
                    "properties": {"name": _HEADER_NAME, "value": SECRET_SCHEMA},
                },
            },
        },
        "timeout": {
            "type": "object",
            "additionalProperties": False,
            "description": "Seconds: connect (default 10) to connect, total (default 30) for one attempt, body included.",
            "properties": {
                "connect": {**_SECONDS, "default": DEFAULT_CONNECT_TIMEOUT},
                "total": {**_SECONDS, "default": DEFAULT_TOTAL_TIMEOUT},
            },
        },
        "redirects": {
            "type": "integer",
            "minimum": 0,
            "maximum": 20,
            "default": 0,
            "description": "Redirects to follow (default 0: a 3xx answer is the response).",
        },
        "max_response_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": MOST_RESPONSE_SIZE,
            "default": DEFAULT_MAX_RESPONSE_SIZE,
            "description": "Largest response body accepted, in bytes once decompressed (default 1 MiB, at most 64 MiB).",
        },
        "response_format": {
            "enum": ["auto", "json", "text"],
            "default": "auto",
            "description": "auto: JSON when the Content-Type says so, else text. json: must be JSON. text: as text.",
        },
        "fail_on_status": {
            "anyOf": [{"type": "boolean"}, {"type": "array", "maxItems": 100, "items": _STATUS_PATTERN}],
            "default": True,
            "description": 'Which statuses fail the job: true (outside 200-299), false (none), or a list such as [404, "5xx"].',
        },
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "description": "Try again on connection errors, timeouts and some statuses, with exponential backoff.",
            "properties": {
                "attempts": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "statuses": {"type": "array", "maxItems": 100, "items": _STATUS_PATTERN, "default": [429, "5xx"]},
                "backoff": {"type": "number", "minimum": 0, "maximum": MOST_SECONDS, "default": 1},
                "max_delay": {"type": "number", "minimum": 0, "maximum": MOST_SECONDS, "default": 30},
            },
        },
    },
}

UI_HINTS: dict[str, dict[str, Any]] = {
    "method": {"label": "Method", "widget": "select", "order": 1},
    "url": {
        "label": "URL",
        "help": "http:// or https://; templates such as {{ $context.body.id }} allowed. Private addresses are "
        "refused unless the operator admits them (HOOKLINE_HTTP_ALLOW).",
        "widget": "text",
        "order": 2,
        "placeholder": "https://api.example.com/orders/{{ $context.body.id }}",
    },
    "query": {"label": "Query parameters", "widget": "json", "order": 3, "placeholder": '{"page": 1}'},
    "headers": {"label": "Headers", "widget": "json", "order": 4, "placeholder": '{"Accept": "application/json"}'},
    "body": {
        "label": "Body",
        "help": "One of json, form or text (with content_type).",
        "widget": "json",
        "order": 5,
        "placeholder": '{"json": {"order": "{{ $context.body.id }}"}}',
    },
    "auth": {
        "label": "Authentication",
        "help": 'basic, bearer or header; secrets are {"env": "NAME"}, read from the server\'s environment.',
        "widget": "json",
        "order": 6,
        "placeholder": '{"bearer": {"token": {"env": "API_TOKEN"}}}',
    },
    "timeout": {"label": "Timeouts (s)", "widget": "json", "order": 7, "placeholder": '{"connect": 10, "total": 30}'},
    "retry": {
        "label": "Retry",
        "help": "attempts (1 = no retry), statuses, backoff, max_delay.",
        "widget": "json",
        "order": 8,
        "placeholder": '{"attempts": 3}',
    },
    "fail_on_status": {
        "label": "Fail on status",
        "help": 'true: any status outside 200-299 fails the job; false: none; or a list such as [404, "5xx"].',
        "widget": "json",
        "order": 9,
    },
    "response_format": {"label": "Response format", "widget": "select", "order": 10},
    "redirects": {"label": "Redirects to follow", "widget": "number", "order": 11},
    "max_response_size": {"label": "Largest response (bytes)", "widget": "number", "order": 12},
}

_BODY_KINDS = ("json", "form", "text")


#: The start of a URL whose origin is written out: scheme, then host (and port) ended by '/', '?' or '#'.
_FIXED_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#{}\\@]+[/?#]")


def config_problems(config: Mapping[str, Any]) -> Iterable[str]:
    """What a schema cannot say about ``config`` (as written, templates unrendered)."""
    method = config.get("method", "GET")
    body = config.get("body")
    if body is not None:
        kinds = [kind for kind in _BODY_KINDS if kind in body]
        if len(kinds) != 1:
            yield f"body: give exactly one of json, form or text (got {', '.join(kinds) or 'none'})"
        if "content_type" in body and "text" not in body:
            yield "body.content_type goes with a text body only (json and form bodies set their own)"
        if method in BODYLESS_METHODS:
            article = "an" if method[0] in "AEIOU" else "a"
            yield f"{article} {method} request has no body; remove 'body' or use POST, PUT, PATCH or DELETE"

    url = config["url"]
    if compile_template(url).is_static:
        try:
            parse_url(url)
        except ValueError as exc:
            yield str(exc)

    seen: dict[str, str] = {}
    for name in config.get("headers") or {}:
        lower = name.lower()
        if lower in COMPUTED_HEADERS:
            yield f"header {name!r} is computed by the HTTP client and cannot be configured"
        elif lower in seen:
            yield f"headers {seen[lower]!r} and {name!r} are the same header; keep one"
        seen.setdefault(lower, name)

    auth = config.get("auth") or {}
    if auth and isinstance(url, str) and "{{" in url and not _FIXED_ORIGIN.match(url[: url.index("{{")]):
        yield (
            "with auth, the URL's scheme and host (and port) must be written out and followed by '/', '?' or '#' "
            "before any {{ }}: a template in the host, or right after it, lets a caller choose where the "
            "credentials go (http://api.example.com{{ x }} with x = '.evil.example/' sends them to evil.example)"
        )
    if "basic" in auth or "bearer" in auth:
        if "authorization" in seen:
            yield f"header {seen['authorization']!r} would be replaced by auth; remove one of them"
    elif "header" in auth:
        name = auth["header"]["name"]
        if name.lower() in COMPUTED_HEADERS:
            yield f"auth.header.name {name!r} is computed by the HTTP client and cannot carry a secret"
        elif name.lower() in seen:
            yield f"header {seen[name.lower()]!r} would be replaced by auth.header; remove one of them"
