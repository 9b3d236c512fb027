"""The ``webhook`` trigger type: its config (schema, checks, compiled form), endpoints and manual
runs. The reference for every option is docs/reference/webhook.md."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from hookline import TriggerType, WorkflowDefinition
from hookline.errors import DefinitionError, TemplateError
from hookline.templates import Template, compile_template
from hookline.web import RESPONSE_HEADERS_SCHEMA, response_header_problems
from hookline_webhook.authentication import Authentication, auth_problems, auth_schema, compile_auth
from hookline_webhook.custom_paths import PATH_SCHEMA, CustomPath, PathIndex, address_of, parse_custom_path, path_problems
from hookline_webhook.idempotency import IDEMPOTENCY_SCHEMA, Idempotency, compile_idempotency, idempotency_problems
from hookline_webhook.network import IpAllowlist, allowlist_problems, compile_allowlist
from hookline_webhook.ratelimit import RATE_LIMIT_SCHEMA, RateLimit
from hookline_webhook.params import (
    PARAMETER_SCHEMA,
    Parameter,
    apply_parameters,
    compile_parameters,
    parameter_problems,
)
from hookline_webhook.signatures import ALGORITHMS, ENCODINGS, PRESETS, SignatureScheme, compile_signature, signature_problems

if TYPE_CHECKING:
    from hookline import Host

#: Both paths reach the same workflow: NocoBase's form and a plain REST one.
PATHS = ("/api/webhook:trigger/{key}", "/api/webhooks/{key}")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_MAX_BODY = 1024 * 1024
#: Sanic refuses larger bodies before any handler runs; a trigger cannot allow more.
LARGEST_MAX_BODY = 100 * 1024 * 1024
#: Seconds a sync caller waits by default: below the 10 s after which common senders give up.
DEFAULT_SYNC_TIMEOUT = 5.0

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A secret: the value itself, or ``{"env": "NAME"}`` read from the server's environment.
#: ``writeOnly`` (a JSON Schema annotation) tells a console never to show the value.
SECRET_SCHEMA: dict[str, Any] = {
    "writeOnly": True,
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "required": ["env"],
            "additionalProperties": False,
            "properties": {"env": {"type": "string", "pattern": _ENV_NAME}},
        },
    ]
}

_HEADER_NAME: dict[str, Any] = {"type": "string", "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}

_SIGNATURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["secrets"],
    "additionalProperties": False,
    "description": "HMAC signature checked over the raw body (preset, or a generic scheme).",
    "properties": {
        "preset": {"enum": list(PRESETS)},
        "algorithm": {"enum": list(ALGORITHMS)},
        "encoding": {"enum": list(ENCODINGS)},
        "header": _HEADER_NAME,
        "prefix": {"type": "string", "maxLength": 64},
        "signed": {"type": "string", "minLength": 1, "maxLength": 256},
        "timestamp_header": _HEADER_NAME,
        "id_header": _HEADER_NAME,
        "tolerance": {"type": "integer", "minimum": 1, "maximum": 86400},
        "secrets": {"type": "array", "minItems": 1, "maxItems": 16, "items": SECRET_SCHEMA},
    },
}

_IP_ALLOWLIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["allow"],
    "additionalProperties": False,
    "description": "Caller addresses (CIDR) allowed; others get 403.",
    "properties": {
        "allow": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
        "trusted_proxies": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 64}},
    },
}

_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "headers": RESPONSE_HEADERS_SCHEMA,
        "body": {},
    },
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "methods": {
            "type": "array",
            "items": {"enum": list(METHODS)},
            "minItems": 1,
            "uniqueItems": True,
            "description": "HTTP methods that start the workflow (default [POST]).",
        },
        "auth": auth_schema(SECRET_SCHEMA, _HEADER_NAME),
        "signature": _SIGNATURE_SCHEMA,
        "ip_allowlist": _IP_ALLOWLIST_SCHEMA,
        "cors": {
            "type": "object",
            "required": ["origins"],
            "additionalProperties": False,
            "properties": {
                "origins": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": r"^(\*|https?://[^/\s]+)$"}},
                "headers": {"type": "array", "items": {"type": "string", "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}},
                "max_age": {"type": "integer", "minimum": 0, "maximum": 86400},
                "credentials": {"type": "boolean"},
            },
        },
        "content_types": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": r"^[a-z0-9!#$&^_.+*-]+/[a-z0-9!#$&^_.+*-]+$"},
            "description": "Media types accepted (wildcards allowed: application/*+json); others get 415.",
        },
        "max_body_size": {"type": "integer", "minimum": 1, "maximum": LARGEST_MAX_BODY},
        "keep_files": {"type": "boolean", "description": "Keep multipart file contents (base64) in $context.files."},
        "path": PATH_SCHEMA,
        "path_params": {"type": "array", "items": PARAMETER_SCHEMA},
        "headers": {"type": "array", "items": PARAMETER_SCHEMA},
        "query": {"type": "array", "items": PARAMETER_SCHEMA},
        "body": {"type": "array", "items": PARAMETER_SCHEMA},
        "response": {**_RESPONSE_SCHEMA, "description": "Answer of an asynchronous workflow (default: 200, body 'ok')."},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
        "timeout_response": {**_RESPONSE_SCHEMA, "description": "Answer when a sync workflow outlasts 'timeout'."},
        "rate_limit": {**RATE_LIMIT_SCHEMA, "description": "At most 'requests' calls per 'per' seconds (per process)."},
        "idempotency": IDEMPOTENCY_SCHEMA,
    },
}


def _hint(order: int, label: str, help: str, widget: str = "json", placeholder: str | None = None) -> dict[str, Any]:
    hint: dict[str, Any] = {"label": label, "help": help, "widget": widget, "order": order}
    if placeholder is not None:
        hint["placeholder"] = placeholder
    return hint


#: Hints for the config form a console generates (see hookline.ui): the everyday options first,
#: security next, then the declared parameters and the answers, limits last.
UI_HINTS: dict[str, dict[str, Any]] = {
    "methods": _hint(1, "Methods", "HTTP methods that start the workflow (default [\"POST\"]).", placeholder='["POST"]'),
    "auth": _hint(
        2, "Authentication", "basic (username, password), header (name, value), bearer (token) or jwt (algorithms, "
        "secret / public_key / jwks, audience, issuer); each secret a value or {\"env\": \"NAME\"}, never shown. "
        "With several, any one lets the caller in.",
        placeholder='{"basic": {"username": "shop", "password": {"env": "SHOP_PASSWORD"}}}'
    ),
    "signature": _hint(
        3, "Signature", "An HMAC signature of the raw body: a preset (github, stripe, shopify, ...) or a generic "
        "scheme, and its secrets.", placeholder='{"preset": "github", "secrets": [{"env": "GITHUB_SECRET"}]}'
    ),
    "ip_allowlist": _hint(4, "Allowed addresses", "Caller addresses (CIDR) allowed; others get 403.", placeholder='{"allow": ["203.0.113.0/24"]}'),
    "path": _hint(
        5, "Custom path", "A URL path under /api/webhooks/ besides the key's: orders/:id/events/:kind; each :name "
        "segment's value is in $context.params.", widget="text", placeholder="orders/:id/events/:kind"
    ),
    "path_params": _hint(5, "Path parameters", "Types of the path's :name parameters (path: id, type: integer)."),
    "headers": _hint(5, "Header parameters", "Declared header parameters: path, alias, required, type. The Samples tab writes them for you."),
    "query": _hint(6, "Query parameters", "Declared query string parameters: path, alias, required, type. The Samples tab writes them for you."),
    "body": _hint(7, "Body parameters", "Declared body parameters: path, alias, required, type. The Samples tab writes them for you."),
    "content_types": _hint(8, "Content types", "Media types accepted (wildcards allowed); others get 415.", placeholder='["application/json"]'),
    "response": _hint(9, "Answer (async)", "What an asynchronous workflow's caller gets at once (default: 200, body 'ok').", placeholder='{"status": 202}'),
    "timeout": _hint(10, "Timeout (s)", "Seconds a sync caller waits for the Response node (default 5).", widget="number", placeholder="5"),
    "timeout_response": _hint(11, "Answer on timeout", "What a sync caller gets when the workflow outlasts the timeout."),
    "cors": _hint(12, "CORS", "Web pages allowed to call the URL from a browser.", placeholder='{"origins": ["https://app.example"]}'),
    "rate_limit": _hint(13, "Rate limit", "At most 'requests' calls per 'per' seconds (per process).", placeholder='{"requests": 10, "per": 1}'),
    "idempotency": _hint(14, "Idempotency", "Answer a repeated delivery (same key) without running again."),
    "max_body_size": _hint(15, "Largest body (bytes)", "Larger bodies get 413 (default 1 MiB).", widget="number", placeholder="1048576"),
    "keep_files": _hint(16, "Keep uploaded files", "Keep multipart file contents (base64) in $context.files.", widget="checkbox"),
}


@dataclass(frozen=True)
class Cors:
    origins: tuple[str, ...]
    headers: tuple[str, ...]
    max_age: int
    credentials: bool

    def allows(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.origins or origin in self.origins)


@dataclass(frozen=True)
class WebhookConfig:
    """A workflow's trigger config, compiled once per version."""

    methods: tuple[str, ...]
    auth: Authentication | None
    signature: SignatureScheme | None
    ip_allowlist: IpAllowlist | None
    rate_limit: RateLimit | None
    cors: Cors | None
    content_types: tuple[str, ...] | None
    max_body_size: int
    keep_files: bool
    parameters: tuple[Parameter, ...]
    response: Template
    timeout: float
    timeout_response: Template
    idempotency: Idempotency | None = None
    #: The custom path, if the workflow has one.
    path: CustomPath | None = None

    def accepts(self, content_type: str) -> bool:
        if self.content_types is None:
            return True
        return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in self.content_types)


#: What the trigger's own answers can use: the request, and the execution's id and status URL.
ANSWER_VARIABLES = ("$context", "$execution.id", "$execution.status_url", "$execution['id']", "$execution['status_url']")

DEFAULT_TIMEOUT_RESPONSE: dict[str, Any] = {
    "status": 202,
    "body": {
        "execution": "{{ $execution.id }}",
        "status": "running",
        "status_url": "{{ $execution.status_url }}",
        "message": "the workflow is still running; its answer will be at status_url",
    },
}


class WebhookTrigger(TriggerType):
    """Starts a workflow when its URL is called; see docs/reference/webhook.md."""

    name = "webhook"
    title = "Webhook: an HTTP call to the workflow's URL"
    config_schema: ClassVar[Mapping[str, Any]] = CONFIG_SCHEMA
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = UI_HINTS
    #: The last batch of pending workflows (see :meth:`conflicts`) and its index.
    _pending_cache: tuple[Sequence[WorkflowDefinition], PathIndex, frozenset[str]] | None = None

    def check(self, workflow: WorkflowDefinition) -> list[str]:
        config = workflow.trigger.config or {}
        problems: list[str] = []
        if workflow.sync and "response" in config:
            problems.append("'response' answers asynchronous workflows only; in a sync workflow a Response node answers")
        if not workflow.sync:
            problems += [f"{name!r} applies to sync workflows only" for name in ("timeout", "timeout_response") if name in config]
        for name in ("response", "timeout_response"):
            problems += response_header_problems((config.get(name) or {}).get("headers"))
            try:
                template = compile_template(config.get(name) or {})
            except TemplateError as exc:
                problems.append(f"{name}: {exc.message}")
                continue
            for expression in template.expressions():
                if not expression.startswith(ANSWER_VARIABLES):
                    problems.append(
                        f"{name}: {expression!r} is not known when the trigger answers; use "
                        "$execution.id, $execution.status_url or $context"
                    )
        cors = config.get("cors") or {}
        if cors.get("credentials") and "*" in cors.get("origins", []):
            problems.append("cors: 'credentials: true' needs explicit origins, not '*'")
        problems += parameter_problems(config)
        if "path" in config:
            declared = [item.get("alias") or item["path"] for where in ("headers", "query", "body") for item in config.get(where) or []]
            problems += path_problems(config["path"], declared, [item["path"] for item in config.get("path_params") or []])
        elif "path_params" in config:
            problems.append("path_params: declared without a 'path' to take them from")
        if "auth" in config:
            problems += auth_problems(config["auth"])
        if "signature" in config:
            problems += signature_problems(config["signature"])
        if "ip_allowlist" in config:
            problems += allowlist_problems(config["ip_allowlist"])
        if "idempotency" in config:
            problems += idempotency_problems(
                config["idempotency"], signature_preset=(config.get("signature") or {}).get("preset"), sync=workflow.sync
            )
        return problems

    def endpoints(self, workflow: WorkflowDefinition) -> dict[str, str]:
        endpoints = {"webhook": PATHS[1].format(key=workflow.key), "webhook_nocobase": PATHS[0].format(key=workflow.key)}
        path = _custom_path(workflow)
        if path is not None:
            endpoints["webhook_path"] = f"/api/webhooks/{path.text}"
        return endpoints

    def search_terms(self, workflow: WorkflowDefinition) -> list[str]:
        custom = _custom_path(workflow)
        return [url.format(key=workflow.key) for url in PATHS] + ([f"/api/webhooks/{custom.text}"] if custom else [])

    def _pending_index(self, pending: Sequence[WorkflowDefinition]) -> tuple[PathIndex, frozenset[str]]:
        """The custom paths of ``pending`` indexed, and the keys of its webhook workflows; the
        same batch is indexed once (the host passes the same list for each of its workflows)."""
        cached = self._pending_cache
        if cached is None or cached[0] is not pending:
            paths = [(o.key, p) for o in pending if (p := _custom_path(o)) is not None]
            keys = frozenset(o.key for o in pending if o.trigger.type == self.name)
            cached = self._pending_cache = (pending, PathIndex(paths), keys)
        return cached[1], cached[2]

    def addresses(self, workflow: WorkflowDefinition) -> list[str]:
        path = _custom_path(workflow)
        return [path.address] if path is not None else []

    async def conflicts(self, workflow: WorkflowDefinition, host: Host, pending: Sequence[WorkflowDefinition] = ()) -> list[str]:
        """Two webhook workflows that could answer one URL: custom paths that overlap, or a
        one-segment path equal to another workflow's key (its key URL)."""
        path = _custom_path(workflow)
        problems: dict[str, None] = {}  # (in order, once each)
        url = "/api/webhooks/"
        index, batch_keys = self._pending_index(pending)
        if path is not None:
            stored = await host.workflows.find_by_address(self.name, path.shorter_addresses())
            stored += await host.workflows.find_by_address_prefix(self.name, f"{path.address}/")
            # A workflow saved in the same batch is checked as it will be, not as it is stored.
            others = [(o.key, o.trigger_state.path) for o in stored if o.key not in batch_keys]
            others += index.candidates(path)
            for key, other in others:
                example = path.overlap(other) if other is not None and key != workflow.key else None
                if example is not None:
                    problems[
                        f"path {path.text!r} of workflow {workflow.key!r} and path {other.text!r} of workflow {key!r} "
                        f"both match {url}{example}; change one of them"
                    ] = None
            if len(path.segments) == 1 and path.text != workflow.key:
                taken = path.text in batch_keys
                try:
                    found = await host.workflows.current(path.text)
                    taken = taken or (found is not None and found.definition.trigger.type == self.name)
                except DefinitionError:  # stored, but not runnable here: its key URL is still its own
                    taken = True
                if taken:
                    problems[
                        f"path {path.text!r} of workflow {workflow.key!r} is the key URL of workflow {path.text!r} "
                        f"({url}{path.text}); choose another path"
                    ] = None
        address = address_of([workflow.key], 1)
        holders = [o.key for o in await host.workflows.find_by_address(self.name, address) if o.key not in batch_keys]
        holders += [key for key, _ in index.at(address)]
        for key in sorted(set(holders) - {workflow.key}):
            problems[
                f"the key URL of workflow {workflow.key!r} ({url}{workflow.key}) is the path of workflow {key!r}; "
                "choose another key"
            ] = None
        return list(problems)

    async def manual_context(self, workflow: WorkflowDefinition, data: Any) -> dict[str, Any]:
        """A manual run takes ``{"body": ..., "query": ..., "headers": ..., "method": ...}`` (all
        optional); anything else is taken as the body."""
        keys = {"body", "query", "headers", "method", "path_params"}
        parts = data if isinstance(data, dict) and data and set(data) <= keys else {"body": data}
        context = {
            "method": parts.get("method", "POST"),
            "headers": {str(k).lower(): str(v) for k, v in (parts.get("headers") or {}).items()},
            "query": parts.get("query") or {},
            "content_type": "application/json",
            "body": parts.get("body"),
            "raw_body": None,
        }
        if "path" in (workflow.trigger.config or {}):
            context["path_params"] = {str(k): str(v) for k, v in (parts.get("path_params") or {}).items()}
        # The declared parameters apply as they do to a call: required, typed, aliased.
        context["params"] = {
            **context.get("path_params", {}),
            **apply_parameters(context, compile_parameters(workflow.trigger.config or {}), body_is_text=False),
        }
        return context

    def prepare(self, workflow: WorkflowDefinition) -> WebhookConfig:
        """The compiled config of a workflow version, kept by the host with the version."""
        return _compile(workflow)


def _compile(workflow: WorkflowDefinition) -> WebhookConfig:
    config = workflow.trigger.config or {}
    cors = config.get("cors")
    return WebhookConfig(
        methods=tuple(config.get("methods", ["POST"])),
        auth=compile_auth(config.get("auth")),
        signature=compile_signature(config["signature"]) if "signature" in config else None,
        ip_allowlist=compile_allowlist(config["ip_allowlist"]) if "ip_allowlist" in config else None,
        rate_limit=RateLimit(config["rate_limit"]["requests"], float(config["rate_limit"]["per"])) if "rate_limit" in config else None,
        cors=Cors(
            origins=tuple(cors["origins"]),
            headers=tuple(cors.get("headers", ())),
            max_age=cors.get("max_age", 600),
            credentials=cors.get("credentials", False),
        )
        if cors
        else None,
        content_types=tuple(config["content_types"]) if "content_types" in config else None,
        max_body_size=config.get("max_body_size", DEFAULT_MAX_BODY),
        keep_files=config.get("keep_files", True),
        parameters=compile_parameters(config),
        response=compile_template(config.get("response", {})),
        timeout=float(config.get("timeout", DEFAULT_SYNC_TIMEOUT)),
        timeout_response=compile_template(config.get("timeout_response", DEFAULT_TIMEOUT_RESPONSE)),
        idempotency=compile_idempotency(
            config["idempotency"], signature_preset=(config.get("signature") or {}).get("preset")
        )
        if "idempotency" in config
        else None,
        path=_custom_path(workflow),
    )


def _custom_path(workflow: WorkflowDefinition) -> CustomPath | None:
    """The workflow's parsed ``path`` (it was checked), or ``None``."""
    path = (workflow.trigger.config or {}).get("path") if workflow.trigger.type == WebhookTrigger.name else None
    return _parsed(path) if isinstance(path, str) and path else None


@lru_cache(maxsize=4096)
def _parsed(path: str) -> CustomPath:
    return parse_custom_path(path)
