"""Config forms generated from a type's JSON Schema: fields to show, and back to a config.

Any installed trigger or node type gets a form, a stranger's as much as ours: each top-level
property of its ``config_schema`` becomes a field, shaped by the type's ``ui_hints`` (see
:mod:`hookline.ui`). The host still validates what the form produces, as it does for the API.

Secrets never reach the page: a ``writeOnly`` property (or one a hint shows as a password) is
rendered empty, and left empty it keeps the stored value; a secret inside a JSON field shows
masked and is put back from the stored config on save (:func:`restore_hidden`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from hookline.errors import BadRequest
from hookline.ui import WIDGETS
from hookline_console.editor import restore_hidden
from hookline_console.masking import MOST_DEPTH, mask

#: A field's ``kind`` (what it holds, as read from its schema; the widget is how it is shown):
#: one of these, ``enum`` (a choice among values) or ``json`` (anything else).
_TYPE_KINDS = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_REQUIRED = re.compile(r"^'(.+)' is a required property$")
#: Rows of a JSON or multi-line field.
JSON_ROWS = 3


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: No value at all (a property left out), as opposed to ``null``.
MISSING: Any = _Missing()


@dataclass
class Field:
    """One control of a generated form.

    ``name`` is the config property (``""`` for a whole config edited as JSON); ``input_name``
    the control's name in the HTML form (``trigger.config.methods``). ``value`` is the text the
    control shows, ``checked`` a checkbox's state. ``problems`` are filled when saving fails.
    """

    name: str
    input_name: str
    label: str
    widget: str
    kind: str = "string"
    help: str = ""
    note: str = ""
    required: bool = False
    order: float = math.inf
    placeholder: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    choices: list[Any] = field(default_factory=list)
    value: str = ""
    checked: bool = False
    secret: bool = False
    #: The JSON types the schema allows (empty: any, or a choice of values).
    types: frozenset[str] = frozenset()
    readonly: bool = False
    minimum: float | None = None
    maximum: float | None = None
    default: Any = MISSING
    location: str = ""
    #: A secret field whose stored value is kept when it is left empty.
    has_saved: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        """An element id made from the input name (ids cannot hold spaces; aria-describedby
        is a list of ids separated by spaces)."""
        return "f-" + re.sub(r"[^A-Za-z0-9_.-]", lambda m: f"_{ord(m.group()):x}_", self.input_name)

    @property
    def allows_string(self) -> bool:
        return "string" in self.types or (self.kind in ("json", "string") and not self.types)

    @property
    def html_required(self) -> bool:
        """Whether the browser must refuse it empty: not a checkbox (checked would be forced),
        not a secret that keeps its saved value when left empty."""
        return self.required and not self.readonly and self.widget != "checkbox" and not self.has_saved

    @property
    def default_text(self) -> str:
        return "" if self.default is MISSING else option_value(self.default)

    @property
    def rows(self) -> int:
        return max(JSON_ROWS, min(20, self.value.count("\n") + 2))


@dataclass(frozen=True)
class _Shape:
    kind: str
    types: frozenset[str]
    choices: tuple[Any, ...] = ()
    secret: bool = False


# --- schema -> fields ---------------------------------------------------------------------


def object_schema(schema: Any) -> tuple[dict[str, Mapping[str, Any]], set[str]]:
    """The properties of a config schema (local ``$ref`` followed, ``allOf`` members merged)
    and its required names."""
    root = schema if isinstance(schema, Mapping) else {}
    top = resolve(root, root)
    properties: dict[str, Mapping[str, Any]] = {}
    required: set[str] = set()
    for part in [top, *(resolve(p, root) for p in top.get("allOf", ()) if isinstance(p, Mapping))]:
        for name, sub in (part.get("properties") or {}).items():
            properties.setdefault(name, sub if isinstance(sub, Mapping) else {})
        required.update(r for r in part.get("required", ()) if isinstance(r, str))
    return properties, required


def schema_fields(
    schema: Any,
    hints: Mapping[str, Mapping[str, Any]] | None,
    config: Any,
    *,
    namespace: str,
    location: str = "",
) -> list[Field]:
    """The fields of a form for a config ``schema``, filled from ``config``.

    One field per top-level property, ordered by the hints' ``order``, then as the schema
    lists them. A schema without properties (``{"type": "object"}``) is one JSON field for the
    whole config. ``namespace`` prefixes each input's name (``trigger`` gives
    ``trigger.config.<property>``); ``location`` is where problems about the config are
    reported (``nodes[0]``).
    """
    root = schema if isinstance(schema, Mapping) else {}
    hints = hints or {}
    current = config if isinstance(config, Mapping) else {}
    properties, required = object_schema(root)
    if not properties:
        whole = Field(
            name="",
            input_name=f"{namespace}.config",
            label="Config",
            help=str(resolve(root, root).get("description", "")),
            widget="json",
            kind="json",
            types=frozenset({"object"}),
            location=f"{location}.config" if location else "config",
        )
        whole.value = _json_text(mask(config, root)) if config not in (None, {}, MISSING) else ""
        return [whole]
    fields = []
    for index, (name, sub) in enumerate(properties.items()):
        hint = hints.get(name) or {}
        made = _field(name, sub, root, hint, required=name in required, namespace=namespace)
        made.location = f"{location}.config.{name}" if location else f"config.{name}"
        made.order = hint["order"] if isinstance(hint.get("order"), (int, float)) else math.inf
        _fill(made, current.get(name, MISSING), sub, root)
        fields.append((made.order, index, made))
    return [made for _, _, made in sorted(fields, key=lambda item: (item[0], item[1]))]


def _field(
    name: str, sub: Mapping[str, Any], root: Mapping[str, Any], hint: Mapping[str, Any], *, required: bool, namespace: str
) -> Field:
    resolved = resolve(sub, root)
    shape = shape_of(resolved, root)
    widget = hint.get("widget") if hint.get("widget") in WIDGETS else None
    if widget == "select" and not shape.choices:
        widget = None  # nothing to choose from: the schema decides
    if widget is None:
        widget = default_widget(shape)
    made = Field(
        name=name,
        input_name=f"{namespace}.config.{name}",
        label=str(hint.get("label") or resolved.get("title") or humanise(name)),
        help=str(hint.get("help") or resolved.get("description") or ""),
        widget=widget,
        kind=shape.kind,
        required=required,
        placeholder=str(hint.get("placeholder", "")),
        choices=list(shape.choices),
        secret=shape.secret or widget == "password",
        types=shape.types,
        minimum=_number(resolved.get("minimum")),
        maximum=_number(resolved.get("maximum")),
        default=resolved.get("default", MISSING),
    )
    if made.widget == "select":
        made.options = [(option_value(choice), option_value(choice)) for choice in shape.choices]
    if not made.placeholder and made.default is not MISSING and made.widget in ("text", "number", "textarea"):
        made.placeholder = option_value(made.default)
    if made.widget == "json" and made.allows_string:
        made.note = "In JSON, text goes in double quotes."
    return made


def default_widget(shape: _Shape) -> str:
    """The widget for a property without a hint (the rules of :data:`hookline.ui.WIDGETS`)."""
    if shape.secret and (shape.kind in ("string", "integer", "number") or "string" in shape.types):
        return "password"
    if shape.choices:
        return "select"
    return {"boolean": "checkbox", "integer": "number", "number": "number", "string": "text"}.get(shape.kind, "json")


def shape_of(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int = 0) -> _Shape:
    """What a (resolved) property schema holds: one simple kind, a choice among values, or
    ``json`` for anything else (objects, arrays, unions of types, ``{}``)."""
    secret = bool(schema.get("writeOnly"))
    if "const" in schema:
        return _Shape("enum", frozenset(), (schema["const"],), secret)
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _Shape("enum", frozenset(), tuple(schema["enum"]), secret)
    options = [resolve(o, root) for key in ("anyOf", "oneOf") for o in schema.get(key, ()) if isinstance(o, Mapping)]
    if options and depth < MOST_DEPTH:
        shapes = [shape_of(option, root, depth + 1) for option in options]
        secret = secret or any(s.secret for s in shapes)
        if all(s.kind == "enum" for s in shapes):
            return _Shape("enum", frozenset(), tuple(c for s in shapes for c in s.choices), secret)
        if "type" in schema:  # the options refine a declared type (patterns of a string)
            return _Shape(_kind_of(_types(schema)), _types(schema), (), secret)
        types = frozenset(t for s in shapes for t in s.types)
        if any(s.kind in ("json", "enum") for s in shapes):
            return _Shape("json", types, (), secret)
        return _Shape(_kind_of(types), types, (), secret)
    types = _types(schema)
    return _Shape(_kind_of(types) if types else "json", types, (), secret)


def _types(schema: Mapping[str, Any]) -> frozenset[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(t for t in declared if isinstance(t, str))
    return frozenset()


def _kind_of(types: frozenset[str]) -> str:
    simple = types - {"null"}
    if not simple and types:
        return "null"  # only null: an option of a union that may be left out
    if simple == {"integer", "number"}:
        return "number"
    if len(simple) == 1:
        return _TYPE_KINDS.get(next(iter(simple)), "json")
    return "json"


def resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` (``#/$defs/name``) followed; keywords beside the
    ``$ref`` (a ``description``) win over the target's."""
    if not isinstance(schema, Mapping):
        return {}
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#") or depth > MOST_DEPTH:
        return schema
    target: Any = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        target = target.get(part) if isinstance(target, Mapping) else None
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**resolve(target, root, depth + 1), **siblings}


def humanise(name: str) -> str:
    """``ip_allowlist`` -> ``Ip allowlist``, ``maxAge`` -> ``Max age``."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:] if text else name


def option_value(value: Any) -> str:
    """How a choice (or a default) is written in the form: text as it is, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _fill(made: Field, value: Any, sub: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """Show ``value`` (the stored one) in the field; a secret is never shown."""
    if made.widget == "checkbox":
        made.checked = value is True if value is not MISSING else made.default is True
    elif made.secret and made.widget != "json":
        made.value = ""
        if value is not MISSING:
            made.has_saved = True
            shown = mask(value, sub, root)  # "from env NAME" says where it comes from, not what it is
            source = f" ({shown})" if isinstance(shown, str) and shown.startswith("from env ") else ""
            made.note = f"Saved{source}: leave empty to keep it."
    elif value is MISSING:
        made.value = ""
    elif made.widget == "json":
        made.value = _json_text(mask(value, sub, root))
    elif made.widget == "select":
        made.value = option_value(value)
    else:
        made.value = value if isinstance(value, str) else json.dumps(mask(value, sub, root), ensure_ascii=False)


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- form -> config -----------------------------------------------------------------------


def read_config(fields: list[Field], form: Mapping[str, Any], stored: Any = MISSING) -> tuple[Any, dict[str, str]]:
    """The config the submitted ``form`` describes, and the problems per input name.

    Each field is shown again as typed (``field.value``), except a secret. Numbers are parsed,
    a checkbox is a boolean, a JSON field is parsed and its hidden secrets restored from
    ``stored``; an empty optional field is left out, an empty secret keeps the stored value.
    Properties of ``stored`` that have no field (allowed by the schema, not shown) are kept.
    """
    stored_map = stored if isinstance(stored, Mapping) else {}
    errors: dict[str, str] = {}
    if len(fields) == 1 and fields[0].name == "":
        whole = fields[0]
        value = read_field(whole, _text(form, whole.input_name), stored)
        if isinstance(value, FieldProblem):
            errors[whole.input_name] = value.message
            return {}, errors
        return ({} if value is MISSING else value), errors
    shown = {f.name for f in fields}
    config = {name: value for name, value in stored_map.items() if name not in shown}
    for made in fields:
        value = read_field(made, _text(form, made.input_name), stored_map.get(made.name, MISSING))
        if isinstance(value, FieldProblem):
            errors[made.input_name] = value.message
        elif value is not MISSING:
            config[made.name] = value
    return config, errors


@dataclass(frozen=True)
class FieldProblem:
    message: str


def read_field(made: Field, raw: str | None, stored: Any = MISSING) -> Any:
    """One field's value from the text submitted (``None``: not submitted, as an unchecked
    checkbox), :data:`MISSING` to leave it out, or a :class:`FieldProblem`. Sets the text
    the field shows again (never a secret's)."""
    if made.widget == "checkbox":
        made.checked = raw is not None
        if made.checked:
            return True
        # Unchecked and never set: leave it to the type's default (shown unchecked).
        if not made.required and stored is MISSING and made.default is not True:
            return MISSING
        return False
    text = (raw or "").replace("\r\n", "\n")
    hidden = made.secret and made.widget != "json"
    made.value = "" if hidden else text
    if hidden and text:
        made.note = "Type the new value again if this form is shown again: a secret is never shown back."
    if text.strip() == "":
        if hidden:
            return stored
        return MISSING
    if made.widget == "json":
        return _read_json(text, stored)
    if made.kind == "enum" or made.widget == "select":
        for choice in made.choices:
            if option_value(choice) == text:
                return choice
        return FieldProblem(f"{text!r} is not one of the choices ({', '.join(map(option_value, made.choices))})")
    if made.widget == "number" or made.kind in ("integer", "number"):
        return _read_number(text.strip(), integer=made.kind == "integer")
    if not made.allows_string:
        return _read_json(text, stored)
    if made.types - {"string", "null"}:
        return _read_scalar(text, made.types)
    return text


def _read_scalar(text: str, types: frozenset[str]) -> Any:
    """Text typed for a union with ``string`` (``integer`` or a template): a number or a
    boolean when it reads as one the schema allows, else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    allowed = {
        bool: "boolean" in types,
        int: "integer" in types or "number" in types,
        float: "number" in types,
    }
    if type(value) in allowed and allowed[type(value)] and (not isinstance(value, float) or math.isfinite(value)):
        return value
    return text


def _read_number(text: str, *, integer: bool) -> Any:
    if _INTEGER.match(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return FieldProblem(f"{text!r} is not a {'whole ' if integer else ''}number")
    if not math.isfinite(number):
        return FieldProblem(f"{text!r} is not a finite number")
    if integer:
        return int(number) if number.is_integer() else FieldProblem(f"{text!r} is not a whole number")
    return number


def _read_json(text: str, stored: Any) -> Any:
    try:
        value = json.loads(text)
        json.dumps(value, allow_nan=False)
    except json.JSONDecodeError as exc:
        return FieldProblem(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except (ValueError, RecursionError):
        return FieldProblem("not valid JSON: NaN and Infinity are not JSON numbers")
    try:
        return restore_hidden(value, None if stored is MISSING else stored)
    except BadRequest as exc:  # a hidden value where nothing is stored
        return FieldProblem(exc.message.removeprefix("the definition: "))


def _text(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name) if form else None
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def required_property(message: str) -> str | None:
    """The property a jsonschema "is a required property" message names, else ``None``."""
    found = _REQUIRED.match(message)
    return found.group(1) if found else None
