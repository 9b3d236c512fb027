"""Tables of the webhook trigger (tortoise app label ``hookline_webhook``).

A change here needs a migration, generated from any directory with
``tortoise -c hookline_webhook.tortoise_config.TORTOISE_ORM makemigrations`` (no app label:
see docs/development.md). Indexes are declared in ``Meta.indexes``.
"""

from __future__ import annotations

from enum import Enum

from tortoise import fields
from tortoise.models import Model


class CaptureStatus(str, Enum):
    ARMED = "armed"
    CAPTURED = "captured"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Capture(Model):
    # A workflow's URL armed to store its next request as a sample instead of running it.
    # Found by the key in the request's URL, so the key is stored rather than a foreign key to
    # the host's workflow table.
    id = fields.BigIntField(primary_key=True)
    workflow_key = fields.CharField(max_length=128)
    # An armed capture past expires_at reads as expired; the row may still say armed.
    status = fields.CharEnumField(CaptureStatus, max_length=16)
    armed_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    captured_at = fields.DatetimeField(null=True)
    # The captured request's $context, and the parameter lists generated from it.
    request = fields.JSONField(null=True)
    parameters = fields.JSONField(null=True)

    class Meta:
        table = "hookline_webhook_capture"
        indexes = (("workflow_key", "id"), ("status", "expires_at"))
