"""The "edit with forms" page's model: a workflow as fields, read back into a definition, with
each problem the host's validation reports placed at the field it is about.

The trigger's and every node's config fields come from their types' schemas
(:mod:`hookline_console.forms`). The structure (which nodes, their keys and types, branches)
is not edited here: saving changes only the title, ``sync``, ``enabled`` and the configs of the
definition that was loaded, so everything else in it is saved again as it was.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from hookline.errors import Problem
from hookline_console.forms import MISSING, Field, read_config, read_field, required_property, schema_fields

#: The node of a new workflow's form: its fields are ``node.key``, ``node.config.<property>``.
NEW_NODE = "node"


@dataclass
class Section:
    """The config fields of the trigger or of one node, as a fieldset."""

    heading: str
    type_name: str
    type_title: str
    namespace: str
    #: Where the host's problems about it are reported: ``trigger``, ``nodes[0].branches.true[1]``.
    location: str
    fields: list[Field]
    #: The dict of the definition being built whose ``config`` the fields make.
    target: dict[str, Any]
    where: str = ""
    installed: bool = True
    #: Config properties the schema allows but the form does not show (kept as saved).
    kept: list[str] = field(default_factory=list)
    key_field: Field | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        return "s-" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.namespace)


@dataclass(frozen=True)
class FormProblem:
    """A problem in the list at the top of the page: the control (or fieldset) it is about, if
    any, so it can link there."""

    target: str | None
    label: str
    message: str


@dataclass
class WorkflowForm:
    creating: bool
    top: list[Field]
    sections: list[Section]
    #: What is saved: a copy of the stored definition (or a new one) the form's values go into.
    definition: dict[str, Any]
    version: int | None = None
    problems: list[FormProblem] = field(default_factory=list)

    def fields(self) -> Iterator[Field]:
        yield from self.top
        for section in self.sections:
            if section.key_field is not None:
                yield section.key_field
            yield from section.fields

    def read(self, form: Mapping[str, Any]) -> bool:
        """Put the submitted values into :attr:`definition`; ``False`` (and each problem at
        its field) when a value cannot be read (a number that is not one, broken JSON)."""
        for made in self.top:
            if made.readonly:
                continue
            value = read_field(made, _first(form, made.input_name))
            if made.widget == "checkbox":
                self.definition[made.name] = made.checked
            elif made.name == "key":
                if value is not MISSING:
                    self.definition["key"] = value.strip()
            else:
                self.definition[made.name] = "" if value is MISSING else value
        for section in self.sections:
            if section.key_field is not None:
                typed = read_field(section.key_field, _first(form, section.key_field.input_name))
                section.target["key"] = "" if typed is MISSING else typed.strip()
            if not section.installed:
                continue
            config, errors = read_config(section.fields, form, section.target.get("config", MISSING))
            section.target["config"] = config
            for made in section.fields:
                if made.input_name in errors:
                    self._at(made, errors[made.input_name])
        return not self.problems

    def place(self, problems: list[Problem]) -> None:
        """Each of the host's problems at the field (or section) its location names; the rest
        only in the list at the top."""
        by_location = {made.location: made for made in self.fields() if made.location}
        sections = sorted(self.sections, key=lambda s: len(s.location), reverse=True)
        for problem in problems:
            found = by_location.get(problem.location)
            if found is not None:
                self._at(found, problem.message)
                continue
            section = next((s for s in sections if _within(problem.location, s.location)), None)
            if section is None:
                self.problems.append(FormProblem(None, problem.location, problem.message))
                continue
            made = _config_field(section, problem)
            if made is not None:
                self._at(made, problem.message)
            else:
                where = problem.location[len(section.location) + 1 :]
                message = f"{where}: {problem.message}" if where and where != "config" else problem.message
                section.problems.append(message)
                self.problems.append(FormProblem(section.dom_id, section.heading, message))

    def problem(self, message: str) -> None:
        self.problems.append(FormProblem(None, "", message))

    def _at(self, made: Field, message: str) -> None:
        made.problems.append(message)
        self.problems.append(FormProblem(made.dom_id, made.label, message))


def _config_field(section: Section, problem: Problem) -> Field | None:
    config = f"{section.location}.config"
    if problem.location == config:
        named = required_property(problem.message)
        return next((f for f in section.fields if f.name == named or f.name == ""), None)
    if not problem.location.startswith((config + ".", config + "[")):
        return None
    rest = problem.location[len(config) + 1 :]
    # A property name may hold a '.': the longest field name the rest starts with.
    candidates = [
        f for f in section.fields if f.name == "" or rest == f.name or rest.startswith((f.name + ".", f.name + "["))
    ]
    return max(candidates, key=lambda f: len(f.name), default=None)


def _within(location: str, section: str) -> bool:
    return location == section or location.startswith((section + ".", section + "["))


def _first(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name) if form else None
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


# --- building the forms -----------------------------------------------------------------------


def edit_form(stored: Mapping[str, Any], registry: Any) -> WorkflowForm:
    """The form for a saved workflow (``host.workflows.get``'s answer), filled from its
    current definition."""
    definition = copy.deepcopy(stored["definition"])
    top = _top_fields(definition, creating=False)
    sections = [_trigger_section(definition, registry)]
    for location, node, where in _walk(definition.get("nodes"), "nodes", ""):
        key = str(node.get("key", ""))
        sections.append(_node_section(node, registry, namespace=f"nodes.{key}", location=location, where=where))
    return WorkflowForm(
        creating=False, top=top, sections=sections, definition=definition, version=stored.get("version")
    )


def new_form(registry: Any, trigger_type: str, node_type: str, node_key: str = "") -> WorkflowForm:
    """The form for a new workflow: a trigger of ``trigger_type`` and one node of
    ``node_type``, with empty configs."""
    node: dict[str, Any] = {"key": node_key, "type": node_type, "config": {}}
    definition: dict[str, Any] = {"trigger": {"type": trigger_type, "config": {}}, "nodes": [node]}
    section = _node_section(node, registry, namespace=NEW_NODE, location="nodes[0]", where="")
    section.heading = "First node"
    section.key_field = Field(
        name="key",
        input_name=f"{NEW_NODE}.key",
        label="Node key",
        widget="text",
        required=True,
        value=node_key,
        help="Names the node in the definition and in executions: letters, digits, '_', '-' or '.'.",
        location="nodes[0].key",
    )
    sections = [_trigger_section(definition, registry), section]
    top = _top_fields(definition, creating=True)
    return WorkflowForm(creating=True, top=top, sections=sections, definition=definition)


def _top_fields(definition: Mapping[str, Any], *, creating: bool) -> list[Field]:
    key = Field(
        name="key",
        input_name="key",
        label="Key",
        widget="text",
        value=str(definition.get("key", "")),
        readonly=not creating,
        location="key",
        help=(
            "Part of the workflow's URL: letters, digits, '_', '-' or '.'. "
            "Leave it empty for a random, unguessable key."
            if creating
            else "The key cannot change; to use another, create a new workflow."
        ),
    )
    title = Field(
        name="title", input_name="title", label="Title", widget="text", value=str(definition.get("title", "")), location="title"
    )
    sync = Field(
        name="sync",
        input_name="sync",
        label="Synchronous",
        widget="checkbox",
        kind="boolean",
        checked=bool(definition.get("sync", False)),
        location="sync",
        help=(
            "The caller waits for the reply a node of the workflow sends; otherwise it is answered at once "
            "and the workflow runs in the background."
        ),
    )
    enabled = Field(
        name="enabled",
        input_name="enabled",
        label="Enabled",
        widget="checkbox",
        kind="boolean",
        checked=bool(definition.get("enabled", True)),
        location="enabled",
        help="A disabled workflow starts no executions.",
    )
    return [key, title, sync, enabled]


def _trigger_section(definition: dict[str, Any], registry: Any) -> Section:
    trigger = definition["trigger"]
    name = str(trigger.get("type", ""))
    trigger_type = registry.triggers.get(name)
    section = Section(
        heading="Trigger",
        type_name=name,
        type_title=getattr(trigger_type, "title", "") or "",
        namespace="trigger",
        location="trigger",
        fields=[],
        target=trigger,
        installed=trigger_type is not None,
    )
    if trigger_type is not None:
        _add_fields(section, trigger_type.config_schema, trigger_type.ui_hints, trigger.get("config", {}))
    return section


def _node_section(node: dict[str, Any], registry: Any, *, namespace: str, location: str, where: str) -> Section:
    name = str(node.get("type", ""))
    node_type = registry.nodes.get(name)
    key = node.get("key")
    section = Section(
        heading=f"Node {key}",
        type_name=name,
        type_title=getattr(node_type, "title", "") or "",
        namespace=namespace,
        location=location,
        fields=[],
        target=node,
        where=where,
        installed=node_type is not None,
    )
    if node_type is not None:
        _add_fields(section, node_type.config_schema, node_type.ui_hints, node.get("config", {}))
    return section


def _add_fields(section: Section, schema: Any, hints: Any, config: Any) -> None:
    section.fields = schema_fields(schema, hints, config, namespace=section.namespace, location=section.location)
    shown = {f.name for f in section.fields}
    if "" not in shown and isinstance(config, Mapping):
        section.kept = [name for name in config if name not in shown]


def _walk(nodes: Any, prefix: str, where: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Each node dict with its location and where it sits, depth first (the host's order)."""
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        if not isinstance(node, dict):
            continue
        location = f"{prefix}[{index}]"
        yield location, node, where
        branches = node.get("branches")
        for branch, children in (branches.items() if isinstance(branches, dict) else ()):
            yield from _walk(children, f"{location}.branches.{branch}", f"in branch {branch!r} of {node.get('key')}")
