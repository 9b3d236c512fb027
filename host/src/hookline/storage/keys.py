"""Values every process sharing the database must agree on (table ``hookline_setting``): the
server's secrets (:mod:`hookline.keys`) and the API token's hash (:mod:`hookline.web.auth`).
Several processes may write the same name at once; these verbs say who wins."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

from hookline.storage.models import Setting


async def value_of(name: str) -> str | None:
    """The value stored under ``name``, or ``None``."""
    rows = await Setting.filter(key=name).limit(1).values_list("value", flat=True)
    return rows[0] if rows else None


async def add(name: str, value: str) -> bool:
    """Store ``value`` under ``name`` unless a value is stored there already (then nothing is
    written, and ``False``)."""
    try:
        await Setting.create(key=name, value=value)
    except IntegrityError:  # there already, or another process wrote it first
        return False
    return True


async def setdefault(name: str, value: str) -> str:
    """The value stored under ``name``; stores ``value`` first if there is none. Of processes
    doing it at once, the first to write wins and every one gets its value."""
    stored = await value_of(name)
    if stored is not None:
        return stored
    if await add(name, value):
        return value
    return (await Setting.get(key=name)).value


async def put(name: str, value: str) -> None:
    """Store ``value`` under ``name``, replacing what is there."""
    await Setting.update_or_create(key=name, defaults={"value": value})
