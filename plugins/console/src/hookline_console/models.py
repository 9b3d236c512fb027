"""The console's one table: sign-in sessions (tortoise app label ``hookline_console``)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ConsoleSession(Model):
    """A signed-in browser. The cookie holds a random token, and only its SHA-256 is stored: a
    database dump signs nobody in."""

    id = fields.CharField(max_length=64, primary_key=True, description="sha256 of the cookie's token")
    csrf_token = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    address = fields.CharField(max_length=64, default="")
    #: How the operator signed in: ``token`` (the management API token) or ``password``.
    method = fields.CharField(max_length=16)

    class Meta:
        table = "hookline_console_session"
        indexes = (("expires_at",),)
