"""Idempotency: the key of a delivery, so that a sender's retry (or a concurrent duplicate) runs
nothing twice. See the ``idempotency`` section of docs/reference/webhook.md.

The key is taken from a header, a query parameter or a JSONPath into the parsed body; presets
name where each provider puts its delivery or event id. The host enforces it (a unique
constraint per workflow); this module only finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath

from hookline import DEFAULT_DEDUP_WINDOW, DURATION_SCHEMA, Dedup, parse_duration
from hookline.errors import BadRequest

#: Where each provider puts the id that stays the same across its retries of one delivery.
PRESETS: dict[str, dict[str, str]] = {
    # Standard Webhooks: "webhook-id", also signed; Svix sends it as "svix-id" by default.
    "standard": {"header": "webhook-id", "other_header": "svix-id"},
    "github": {"header": "X-GitHub-Delivery"},
    "shopify": {"header": "X-Shopify-Webhook-Id"},
    # Stripe's retries resend the same event object.
    "stripe": {"body": "$.id"},
    # Slack's Events API retries keep event_id (X-Slack-Retry-Num counts the retries).
    "slack": {"body": "$.event_id"},
}
LOCATIONS = ("header", "query", "body")
WHILE_RUNNING = ("wait", "reject")

IDEMPOTENCY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Deliveries with the same key within 'window' run once; duplicates get the first's answer.",
    "properties": {
        "preset": {"enum": list(PRESETS)},
        "header": {"type": "string", "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
        "query": {"type": "string", "minLength": 1, "maxLength": 256},
        "body": {"type": "string", "minLength": 1, "maxLength": 512},
        "window": DURATION_SCHEMA,
        "required": {"type": "boolean"},
        "while_running": {"enum": list(WHILE_RUNNING)},
    },
}

#: The longest a key is remembered.
MAX_WINDOW = timedelta(days=365)
#: A key longer than this is refused: no provider's ids come near it.
MAX_KEY_LENGTH = 1024


class MissingKey(BadRequest):
    code = "missing_idempotency_key"


class InvalidKey(BadRequest):
    code = "invalid_idempotency_key"


@dataclass(frozen=True)
class Idempotency:
    """A trigger's ``idempotency`` config, compiled."""

    header: str | None
    query: str | None
    body: JSONPath | None
    window: timedelta
    required: bool
    while_running: str
    #: A second header read when ``header`` was not sent (a preset's other name for it).
    other_header: str | None = None

    def describe(self) -> str:
        where = [f"header {self.header!r}"] if self.header else []
        where += [f"header {self.other_header!r}"] if self.other_header else []
        where += [f"query parameter {self.query!r}"] if self.query else []
        where += [f"body path {str(self.body)!r}"] if self.body is not None else []
        return " or ".join(where)

    def dedup(self, context: Mapping[str, Any]) -> Dedup | None:
        """The delivery's key from the parsed request, or ``None`` when it has none (refused with
        400 when ``required``)."""
        key = self._find(context)
        if key is None:
            if self.required:
                raise MissingKey(f"this webhook needs an idempotency key in the {self.describe()}")
            return None
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidKey(f"the idempotency key is longer than {MAX_KEY_LENGTH} characters")
        return Dedup(key=key, window=self.window)

    def _find(self, context: Mapping[str, Any]) -> str | None:
        for header in (self.header, self.other_header):
            value = (context.get("headers") or {}).get(header.lower()) if header else None
            if isinstance(value, str) and value.strip():
                return value.strip()
        if self.query:
            value = (context.get("query") or {}).get(self.query)
            if isinstance(value, list):  # a repeated parameter: its first value
                value = value[0] if value else None
            if isinstance(value, str) and value.strip():
                return value.strip()
        if self.body is not None and isinstance(context.get("body"), (dict, list)):
            try:
                matches = self.body.find(context["body"])
            except Exception:  # noqa: BLE001 - an extended path (filter, sort) on a body of other types
                matches = []
            if matches:
                value = matches[0].value
                if isinstance(value, str) and value.strip():
                    return value.strip()
                if isinstance(value, int) and not isinstance(value, bool):
                    return str(value)
        return None


def idempotency_problems(config: Mapping[str, Any], *, signature_preset: str | None, sync: bool) -> list[str]:
    problems = []
    if not _locations(config, signature_preset):
        problems.append(
            "idempotency: say where the key is: a 'preset' ("
            + ", ".join(PRESETS)
            + "), a 'header', a 'query' parameter or a 'body' path"
            + (f" (the signature preset {signature_preset!r} has no delivery id)" if signature_preset else "")
        )
    if "body" in config:
        try:
            _parse_path(config["body"])
        except ValueError as exc:
            problems.append(f"idempotency.body: {exc}")
    if "window" in config:
        try:
            if parse_duration(config["window"]) > MAX_WINDOW:
                problems.append("idempotency.window: at most 365 days")
        except ValueError as exc:
            problems.append(f"idempotency.window: {exc}")
    if "while_running" in config and not sync:
        problems.append("idempotency.while_running applies to sync workflows only (async duplicates are answered at once)")
    return problems


def compile_idempotency(config: Mapping[str, Any], *, signature_preset: str | None) -> Idempotency:
    locations = _locations(config, signature_preset)
    return Idempotency(
        header=locations.get("header"),
        other_header=locations.get("other_header"),
        query=locations.get("query"),
        body=_parse_path(locations["body"]) if "body" in locations else None,
        window=parse_duration(config["window"]) if "window" in config else DEFAULT_DEDUP_WINDOW,
        required=config.get("required", False),
        while_running=config.get("while_running", "wait"),
    )


def _locations(config: Mapping[str, Any], signature_preset: str | None) -> dict[str, str]:
    """Where the key is: explicit locations, else the preset's, else the signature preset's."""
    explicit = {name: config[name] for name in LOCATIONS if name in config}
    if explicit:
        return explicit
    preset = config.get("preset") or signature_preset
    return dict(PRESETS.get(preset or "", {}))


def _parse_path(text: str) -> JSONPath:
    expression = text if text.startswith("$") else f"$.{text}"
    try:
        return parse_jsonpath(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # noqa: BLE001 - it raises plain Exception too
        raise ValueError(f"{text!r} is not a JSONPath into the body ({exc})") from None
