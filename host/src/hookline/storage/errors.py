"""What storage raises that a service must react to, named so that services catch it without
knowing the ORM. A verb that can tell what a refusal means raises its own exception instead
(:class:`hookline.storage.executions.KeyTaken`)."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError

#: The database refused a write by a constraint: a row it refers to is gone (a workflow deleted
#: meanwhile), or a unique value is taken. (tortoise's class, which the SQLite group commit
#: raises too.)
ConstraintViolation = IntegrityError

__all__ = ["ConstraintViolation"]
