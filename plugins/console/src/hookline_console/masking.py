"""Secrets are never rendered: a config value whose JSON Schema says ``writeOnly: true`` shows
as masked, or as ``from env NAME`` when it is read from the server's environment."""

from __future__ import annotations

from typing import Any, Mapping

MASK = "•••••• (hidden)"
#: Deeper than this, a schema (a recursive ``$ref``) is not followed.
MOST_DEPTH = 32


def mask(value: Any, schema: Mapping[str, Any] | None, root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """``value`` with every write-only part replaced, as ``schema`` describes it."""
    if not isinstance(schema, Mapping) or depth > MOST_DEPTH:
        return value
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if schema.get("writeOnly"):
        return _masked(value)
    for keyword in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(keyword, ()):
            if isinstance(option, Mapping) and _resolve(option, root).get("writeOnly"):
                return _masked(value)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        masked = {}
        for name, item in value.items():
            sub = properties.get(name, extra if isinstance(extra, Mapping) else None)
            masked[name] = mask(item, sub, root, depth + 1)
        return _through_combinators(masked, schema, root, depth)
    if isinstance(value, list):
        items = schema.get("items")
        return [mask(item, items, root, depth + 1) for item in value] if isinstance(items, Mapping) else value
    return value


def _through_combinators(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    for keyword in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(keyword, ()):
            if isinstance(option, Mapping) and isinstance(value, dict):
                value = mask(value, option, root, depth + 1)
    return value


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return target if isinstance(target, Mapping) else {}
    return schema


def _masked(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
        return f"from env {value['env']}"
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return MASK


def mask_definition(definition: Mapping[str, Any], registry: Any) -> dict[str, Any]:
    """A workflow definition with the secrets of its trigger's and nodes' configs masked, by
    each type's ``config_schema``. A type not installed here masks nothing it cannot read:
    its config is hidden whole."""
    shown = dict(definition)
    trigger = definition.get("trigger")
    if isinstance(trigger, Mapping):
        trigger_type = registry.triggers.get(trigger.get("type"))
        shown["trigger"] = {
            **trigger,
            "config": mask(trigger.get("config", {}), trigger_type.config_schema) if trigger_type else MASK,
        }
    nodes = definition.get("nodes")
    if isinstance(nodes, list):
        shown["nodes"] = [_mask_node(node, registry) for node in nodes]
    return shown


def _mask_node(node: Any, registry: Any) -> Any:
    if not isinstance(node, Mapping):
        return node
    node_type = registry.nodes.get(node.get("type"))
    shown = {**node, "config": mask(node.get("config", {}), node_type.config_schema) if node_type else MASK}
    if "branches" in node and isinstance(node["branches"], Mapping):
        shown["branches"] = {
            name: [_mask_node(child, registry) for child in children] if isinstance(children, list) else children
            for name, children in node["branches"].items()
        }
    return shown
