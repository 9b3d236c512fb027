"""Workflow definitions: their shape, and validation that lists every problem with its location.

The shape is SPEC.md's "Workflow definition". :func:`parse_definition` turns a dict (from YAML,
JSON or the API) into a :class:`WorkflowDefinition`, or raises :class:`DefinitionError` whose
``problems`` name each location (``nodes[0].branches.true[0].config.status``).
"""

from __future__ import annotations

import difflib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from hookline.durations import DURATION_SCHEMA, parse_duration
from hookline.errors import DefinitionError, Problem, TemplateError
from hookline.templates import compile_template

if TYPE_CHECKING:
    from hookline.registry import TypeRegistry

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

_NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "type"],
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": KEY_PATTERN},
        "type": {"type": "string", "minLength": 1},
        "title": {"type": "string"},
        "config": {},
        "branches": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        },
    },
}

WORKFLOW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Hookline workflow definition",
    "type": "object",
    "required": ["trigger"],
    "additionalProperties": False,
    "properties": {
        "key": {"type": "string", "pattern": KEY_PATTERN},
        "title": {"type": "string", "maxLength": 200},
        "description": {"type": "string"},
        "enabled": {"type": "boolean"},
        "sync": {"type": "boolean"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        "recovery": {
            "enum": ["requeue", "interrupt"],
            "description": "what happens to an execution whose process died while it ran",
        },
        "history": {
            "enum": ["all", "failures"],
            "description": (
                "which executions the history keeps: 'all', or 'failures' (only those that did not "
                "succeed); default: the server's HOOKLINE_HISTORY"
            ),
        },
        "retention": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                name: {
                    "anyOf": [
                        {"type": "number", "exclusiveMinimum": 0},
                        # Both alternatives anchored at both ends: a duration followed by
                        # anything else passed the schema and then failed to parse (a 500).
                        {"type": "string", "pattern": f"^(?:{DURATION_SCHEMA['anyOf'][1]['pattern'][1:-1]}|forever)$"},
                    ],
                    "description": "a duration ('90s', '15m', '12h', '7d', '2w', or seconds) or 'forever'",
                }
                for name in ("default", "succeeded", "failed", "error", "cancelled", "timed_out")
            },
            "description": "how long finished executions are kept, per status ('default' for the others)",
        },
        "trigger": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {"type": {"type": "string", "minLength": 1}, "config": {}},
        },
        "nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}},
    },
    "$defs": {"node": _NODE_SCHEMA},
}

_WORKFLOW_VALIDATOR = Draft202012Validator(WORKFLOW_SCHEMA)

#: Seconds a workflow may run before it ends ``timed_out``, unless it sets ``timeout``.
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class NodeDefinition:
    key: str
    type: str
    config: Any
    title: str = ""
    branches: dict[str, list[NodeDefinition]] = field(default_factory=dict)
    location: str = ""

    def walk(self) -> Iterator[NodeDefinition]:
        """This node and every node inside its branches, depth first."""
        yield self
        for nodes in self.branches.values():
            for node in nodes:
                yield from node.walk()


@dataclass(frozen=True)
class TriggerDefinition:
    type: str
    config: Any


@dataclass(frozen=True)
class WorkflowDefinition:
    key: str
    title: str
    enabled: bool
    sync: bool
    timeout: float
    trigger: TriggerDefinition
    nodes: list[NodeDefinition]
    description: str = ""
    #: ``requeue`` (run again: at-least-once) or ``interrupt`` (end it ``error``/``interrupted``)
    #: an execution left ``running`` by a process that died.
    recovery: str = "requeue"
    #: Finished status (or ``default``) -> how long its executions are kept; ``None``: forever.
    #: Statuses not named follow ``default``, else the server's HOOKLINE_RETENTION.
    retention: dict[str, timedelta | None] = field(default_factory=dict)
    #: ``all`` or ``failures`` (only the executions that did not succeed are kept); ``None``:
    #: the server's HOOKLINE_HISTORY.
    history: str | None = None

    def walk(self) -> Iterator[NodeDefinition]:
        """Every node of the workflow, branches included, in definition order."""
        for node in self.nodes:
            yield from node.walk()

    def to_dict(self) -> dict[str, Any]:
        """The normalised definition (defaults filled in), as stored and returned by the API."""
        data: dict[str, Any] = {"key": self.key, "title": self.title}
        if self.description:
            data["description"] = self.description
        data.update(
            enabled=self.enabled,
            sync=self.sync,
            timeout=self.timeout,
            recovery=self.recovery,
        )
        if self.history is not None:
            data["history"] = self.history
        if self.retention:
            data["retention"] = {
                name: "forever" if span is None else _format_span(span) for name, span in self.retention.items()
            }
        data.update(
            trigger={"type": self.trigger.type, "config": self.trigger.config},
            nodes=[_node_to_dict(n) for n in self.nodes],
        )
        return data


def _format_span(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    # Fixed-point, never an exponent ('1e+13s', '1e-05s'), which the duration syntax refuses.
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"


def _retention(data: dict[str, Any], problems: list[Problem]) -> dict[str, timedelta | None]:
    """The retention spans; one the schema lets through but that no ``timedelta`` can hold
    (``1e20``, ``99999999999w``) is a problem of the definition, not a server error."""
    spans: dict[str, timedelta | None] = {}
    for name, value in data.items():
        try:
            span = None if value == "forever" else parse_duration(value)
        except ValueError as exc:
            problems.append(Problem(f"retention.{name}", str(exc)))
            continue
        except OverflowError:
            problems.append(Problem(f"retention.{name}", f"{value!r} is too long a duration (at most 999999999 days)"))
            continue
        if span is not None and span <= timedelta(0):  # below a microsecond
            problems.append(Problem(f"retention.{name}", f"{value!r} is not a positive duration"))
            continue
        spans[name] = span
    return spans


def generate_key() -> str:
    """An unguessable workflow key: 128 bits of randomness, as 32 hex digits (always a valid
    key; URL-safe base64 may start with '-' or '_', which keys may not)."""
    return secrets.token_hex(16)


def parse_definition(
    data: Any,
    registry: TypeRegistry,
    *,
    key: str | None = None,
    stored: bool = False,
    plugins_checked: bool = False,
) -> WorkflowDefinition:
    """Validate ``data`` and return the normalised definition.

    :param key: the key the definition must have (``PUT /api/workflows/<key>``); a definition
        that names another key is refused, one without a key gets it.
    :param stored: ``data`` is a stored version, validated in full when it was saved: the
        workflow schema (Hookline's own) and the templates are not checked again, only what the
        installed plugins decide (their types are there, their config schemas and checks pass).
        A template that no longer compiles fails when the node is prepared.
    :param plugins_checked: with ``stored``, the installed plugins already accepted this very
        definition (in this process: the plugins a process loads do not change while it runs),
        so their checks are not run again either.
    :raises DefinitionError: listing every problem found.
    """
    if not isinstance(data, dict):
        raise DefinitionError([Problem("", "a workflow definition must be an object (mapping)")])
    problems = [] if stored else [_problem(error) for error in _WORKFLOW_VALIDATOR.iter_errors(data)]
    if key is not None and data.get("key") not in (None, key):
        problems.append(Problem("key", f"is {data.get('key')!r} but the workflow being saved is {key!r}"))
    if any(p.location not in ("", "key") for p in problems) or not isinstance(data.get("trigger"), dict):
        # Beyond unknown top-level fields and a bad key, the definition is too malformed for
        # type checks to say anything useful.
        raise DefinitionError(sorted(problems, key=lambda p: p.location))

    given_key = data.get("key") or key
    trigger = data["trigger"]
    sync = data.get("sync", False)
    definition = WorkflowDefinition(
        key=given_key if isinstance(given_key, str) else generate_key(),
        title=data.get("title", ""),
        description=data.get("description", ""),
        enabled=data.get("enabled", True),
        sync=sync,
        timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
        # A sync caller whose process died got no answer and retries; running it again in the
        # background as well would run the event twice. Background runs are re-queued.
        recovery=data.get("recovery", "interrupt" if sync else "requeue"),
        retention=_retention(data.get("retention") or {}, problems),
        history=data.get("history"),
        trigger=TriggerDefinition(type=trigger["type"], config=trigger.get("config", {})),
        nodes=[_node(n, f"nodes[{i}]") for i, n in enumerate(data.get("nodes", []))],
    )
    if not (stored and plugins_checked):
        problems.extend(_check_trigger(definition, registry, stored=stored))
        problems.extend(_check_nodes(definition, registry, stored=stored))
    if problems:
        subject = f"workflow {given_key!r}" if isinstance(given_key, str) else "workflow definition"
        raise DefinitionError(problems, subject=subject)
    return definition


def format_location(path: Iterable[Any]) -> str:
    """``["nodes", 0, "config", "status"]`` -> ``nodes[0].config.status``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def schema_problems(validator: Draft202012Validator, value: Any, location: str) -> list[Problem]:
    """Every way ``value`` fails ``validator``'s schema, located under ``location``."""
    problems = []
    for error in map(_most_relevant, validator.iter_errors(value)):
        where = _join(location, format_location(error.absolute_path))
        problems.append(Problem(where, _message(error)))
    return sorted(problems, key=lambda p: p.location)


def _join(location: str, inner: str) -> str:
    if not inner:
        return location
    return f"{location}{inner}" if inner.startswith("[") else f"{location}.{inner}"


def _problem(error: ValidationError) -> Problem:
    error = _most_relevant(error)
    return Problem(format_location(error.absolute_path), _message(error))


def _most_relevant(error: ValidationError) -> ValidationError:
    """For anyOf / oneOf, the error of the alternative of the right type, located where it is."""
    while error.context:
        matching_type = [e for e in error.context if e.validator != "type"]
        error = best_match(matching_type or error.context)
    return error


def _message(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message} (allowed: {', '.join(allowed)})" if allowed else error.message
    parent = error.parent.schema if error.parent is not None else {}
    if error.validator == "pattern" and isinstance(parent, dict) and "description" in parent:
        # An alternative of a described anyOf: say what was expected, not the regular expression.
        return f"{error.instance!r} is not {parent['description']}"
    if error.validator == "pattern" and error.schema.get("pattern") == KEY_PATTERN:
        return (
            f"{error.instance!r} is not a valid key: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return error.message


def _node(data: dict[str, Any], location: str) -> NodeDefinition:
    return NodeDefinition(
        key=data["key"],
        type=data["type"],
        title=data.get("title", ""),
        config=data.get("config", {}),
        location=location,
        branches={
            name: [_node(n, f"{location}.branches.{name}[{i}]") for i, n in enumerate(nodes)]
            for name, nodes in data.get("branches", {}).items()
        },
    )


def _node_to_dict(node: NodeDefinition) -> dict[str, Any]:
    data: dict[str, Any] = {"key": node.key, "type": node.type}
    if node.title:
        data["title"] = node.title
    data["config"] = node.config
    if node.branches:
        data["branches"] = {
            name: [_node_to_dict(n) for n in nodes] for name, nodes in node.branches.items()
        }
    return data


def _check_trigger(definition: WorkflowDefinition, registry: TypeRegistry, *, stored: bool = False) -> list[Problem]:
    trigger_type = registry.triggers.get(definition.trigger.type)
    if trigger_type is None:
        return [Problem("trigger.type", _missing_type("trigger", definition.trigger.type, registry, stored=stored))]
    problems = schema_problems(
        registry.trigger_validator(trigger_type.name), definition.trigger.config, "trigger.config"
    )
    if not problems:
        problems = [Problem("trigger.config", m) for m in trigger_type.check(definition)]
    return problems


def _check_nodes(definition: WorkflowDefinition, registry: TypeRegistry, *, stored: bool = False) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for node in definition.walk():
        if node.key in seen:
            problems.append(
                Problem(f"{node.location}.key", f"duplicate node key {node.key!r} (also at {seen[node.key]})")
            )
        else:
            seen[node.key] = node.location
        node_type = registry.nodes.get(node.type)
        if node_type is None:
            problems.append(Problem(f"{node.location}.type", _missing_type("node", node.type, registry, stored=stored)))
            continue
        for name in node.branches:
            if name not in node_type.branches:
                allowed = (
                    f"its branches are: {', '.join(node_type.branches)}"
                    if node_type.branches
                    else "it has no branches"
                )
                problems.append(
                    Problem(f"{node.location}.branches.{name}", f"node type {node.type!r} has no branch {name!r}; {allowed}")
                )
        config_problems = schema_problems(
            registry.node_validator(node.type), node.config, f"{node.location}.config"
        )
        if not config_problems:
            config_problems = [
                Problem(f"{node.location}.config", message) for message in node_type.check(node, definition)
            ]
        if not config_problems and node_type.render_config and not stored:
            try:
                compile_template(node.config)
            except TemplateError as exc:
                where = _join(f"{node.location}.config", format_location(exc.path))
                config_problems.append(Problem(where, exc.message))
        problems.extend(config_problems)
    return problems


def _stored_nodes(nodes: Any, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each node dict of a stored definition with its location, depth first (as ``walk``)."""
    for i, node in enumerate(nodes if isinstance(nodes, list) else []):
        if not isinstance(node, dict):
            continue
        location = f"{prefix}[{i}]"
        yield location, node
        branches = node.get("branches")
        for name, children in (branches.items() if isinstance(branches, dict) else ()):
            yield from _stored_nodes(children, f"{location}.branches.{name}")


def _missing_type(kind: str, name: str, registry: TypeRegistry, *, stored: bool) -> str:
    types = registry.nodes if kind == "node" else registry.triggers
    # In a definition being saved, most likely a typo (surely one when no plugin is disabled,
    # or when it is one letter or two from an installed type): the names it could have meant.
    if not stored and (not registry.disabled or difflib.get_close_matches(name, list(types), n=1, cutoff=0.8)):
        return f"unknown {kind} type {name!r} (installed {kind} types: {', '.join(sorted(types)) or 'none'})"
    # A stored definition was valid when saved: the plugin that provided the type is gone.
    return registry.missing_type(kind, name)


def missing_types(data: Any, registry: TypeRegistry) -> list[Problem]:
    """The trigger and node types a stored (normalised) definition names that ``registry``
    lacks, as :func:`parse_definition` reports them for a stored definition. Far cheaper than
    parsing it: what tells, for thousands of stored workflows, which cannot run here."""
    if not isinstance(data, dict):
        return []
    problems = []
    trigger = data.get("trigger")
    trigger_type = trigger.get("type") if isinstance(trigger, dict) else None
    if isinstance(trigger_type, str) and trigger_type not in registry.triggers:
        problems.append(Problem("trigger.type", registry.missing_type("trigger", trigger_type)))
    for location, node in _stored_nodes(data.get("nodes"), "nodes"):
        node_type = node.get("type")
        if isinstance(node_type, str) and node_type not in registry.nodes:
            problems.append(Problem(f"{location}.type", registry.missing_type("node", node_type)))
    return problems
