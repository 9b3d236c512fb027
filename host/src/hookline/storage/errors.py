"""What storage raises that a service must react to, named so that services catch it without
knowing the ORM. A verb that can tell what a refusal means raises its own exception instead
(:class:`hookline.storage.executions.KeyTaken`)."""

from __future__ import annotations

import asyncio
from typing import Any

from tortoise.exceptions import DBConnectionError, DoesNotExist, IntegrityError, OperationalError

#: The database refused a write by a constraint: a row it refers to is gone (a workflow deleted
#: meanwhile), or a unique value is taken. (tortoise's class, which the SQLite group commit
#: raises too.)
ConstraintViolation = IntegrityError

#: A row looked up by its id is not there (deleted meanwhile). (tortoise's class: what a caller
#: that catches it, or lets it through, saw before.)
RowMissing = DoesNotExist


#: SQLSTATE classes and codes of a PostgreSQL that cannot write now, whatever is written:
#: connection (08), insufficient resources (53: disk full), operator intervention (57: shutdown,
#: statement cancelled), lock not available (55P03).
_UNAVAILABLE_STATES = ("08", "53", "57", "55P03")
_UNAVAILABLE_SQLITE = ("locked", "busy", "disk", "readonly", "unable to open")


def unavailable(error: BaseException) -> bool:
    """Whether a write failed because the database cannot write now (down, locked, full), as
    opposed to refusing what was written: trying another write at once would only wait as
    long again."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        exc = pending.pop()
        if not isinstance(exc, BaseException) or id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, (DBConnectionError, OSError, asyncio.TimeoutError)):
            return True
        state = getattr(exc, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        if type(exc).__module__ == "sqlite3" and any(word in str(exc).lower() for word in _UNAVAILABLE_SQLITE):
            return True
        if isinstance(exc, (OperationalError,)) and any(
            word in str(exc).lower() for word in ("database is locked", "lock timeout")
        ):
            return True
        pending.extend([exc.__cause__, exc.__context__, *exc.args])
    return False


__all__ = ["ConstraintViolation", "RowMissing", "unavailable"]
