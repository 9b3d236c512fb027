"""The columns the hot path writes, and their values converted as the models' own fields store
them (as tortoise's executor would: enums, JSON text, datetimes), without the ORM's per-value
checks where they are known to pass."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from tortoise.fields import BigIntField, CharField, DatetimeField, IntField, JSONField, TextField
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.validators import MaxLengthValidator

#: Columns written when an execution is created (the others keep their defaults: NULL).
EXECUTION_COLUMNS = (
    "workflow_id",
    "version_id",
    "status",
    "mode",
    "trigger_type",
    "context",
    "created_at",
    "started_at",
    "owner",
    "dedup_key",
    "dedup_until",
    "replay_of",
    "queued_at",
)

JOB_COLUMNS = (
    "execution_id",
    "position",
    "node",
    "type",
    "status",
    "input",
    "result",
    "branch",
    "error",
    "started_at",
    "finished_at",
)

#: Columns written when an execution is created with an id of this process's (see
#: :func:`hookline.storage.sql.reserve_ids`), finished or not.
KNOWN_COLUMNS = ("id", *EXECUTION_COLUMNS, "reply", "error", "finished_at", "notify_at")

#: Jobs per INSERT: far below the databases' limits on parameters (32766 SQLite, 32767 PostgreSQL).
JOBS_PER_STATEMENT = 500

#: What finishing an execution writes.
OUTCOME_COLUMNS = ("status", "error", "reply", "finished_at", "notify_at")


def names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def postgres_types(model: type[Model], columns: Sequence[str]) -> list[str]:
    """The PostgreSQL type of each column (``BIGINT``, ``JSONB``, ``VARCHAR(64)``...), as
    tortoise creates them (the models are initialised by then)."""
    by_column = {field.source_field or name: field for name, field in model._meta.fields_map.items()}
    return [by_column[column].get_for_dialect("postgres", "SQL_TYPE") for column in columns]


_CONVERTERS: dict[type[Model], dict[str, Callable[[Any], Any]]] = {}


def convert(model: type[Model], columns: Sequence[str], values: dict[str, Any]) -> list[Any]:
    """Values as the model's fields store them (what tortoise's executor does)."""
    converters = _CONVERTERS.get(model)
    if converters is None:
        fields = model._meta.fields_map
        converters = _CONVERTERS[model] = {
            field.source_field or name: _converter(model, field) for name, field in fields.items()
        }
    return [None if (value := values.get(column)) is None else converters[column](value) for column in columns]


def _converter(model: type[Model], field: Any) -> Callable[[Any], Any]:
    """``field.to_db_value``, without its generic checks for the values the hot path writes
    (checked here once per field rather than on every value): what it would return for them."""

    def generic(value: Any) -> Any:
        return field.to_db_value(value, model)

    if isinstance(field, CharEnumFieldInstance) and _only_max_length(field):
        # The enum's own values are checked against max_length once.
        enum, limit = field.enum_type, field.max_length
        if all(len(str(member.value)) <= limit for member in enum):
            return lambda value: str(value.value) if type(value) is enum else generic(value)
        return generic
    if type(field) is CharField and _only_max_length(field):
        limit = field.max_length
        return lambda value: value if type(value) is str and len(value) <= limit else generic(value)
    if field.validators:
        return generic
    if isinstance(field, JSONField):
        encode = field.encoder
        # A str or bytes is taken as JSON already encoded (and checked): that stays generic.
        return lambda value: encode(value) if type(value) in (dict, list) else generic(value)
    if type(field) in (IntField, BigIntField):
        return lambda value: value if type(value) is int else generic(value)
    if type(field) is TextField:
        return lambda value: value if type(value) is str else generic(value)
    if type(field) is DatetimeField and not (field.auto_now or field.auto_now_add):
        # An aware datetime is stored as it is, whatever the time zone settings.
        return lambda value: value if type(value) is datetime and value.tzinfo is not None else generic(value)
    return generic


def _only_max_length(field: Any) -> bool:
    return len(field.validators) == 1 and isinstance(field.validators[0], MaxLengthValidator)
