"""Tables of the host (tortoise app label ``hookline``).

A change here needs a migration: ``tortoise -c hookline.storage.db.TORTOISE_ORM
makemigrations hookline`` from ``host/src`` (see docs/development.md), then review the SQL with
``sqlmigrate``. Indexes are declared in ``Meta.indexes``: tortoise's migrations ignore
``db_index=True`` on fields.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from hookline import jsontext
from hookline.status import ExecutionStatus, JobStatus

def _json_field(**kwargs: Any) -> fields.JSONField[Any]:
    # The encoding is ours (see hookline.jsontext), not whichever tortoise would pick.
    return fields.JSONField(encoder=jsontext.encode_column, decoder=jsontext.decode, **kwargs)


class Workflow(Model):
    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=128, unique=True)
    title = fields.CharField(max_length=200, default="")
    enabled = fields.BooleanField(default=True)
    trigger_type = fields.CharField(max_length=64)
    #: Lower-cased key, title and the trigger's search terms, for ``?q=``.
    search_text = fields.TextField(default="")
    #: Id of the version webhooks run. A plain column, not a foreign key, so that the two tables
    #: do not reference each other (a cycle that schema migrations handle badly).
    current_version_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "hookline_workflow"


class WorkflowAddress(Model):
    """An address the trigger finds the workflow by besides its key (TriggerType.addresses)."""

    # The webhook trigger's custom URL paths, by their first segment and length. Replaced with
    # each new current version; several workflows may share one.

    id = fields.BigIntField(primary_key=True)
    workflow: fields.ForeignKeyRelation[Workflow] = fields.ForeignKeyField(
        "hookline.Workflow", related_name="addresses", on_delete=fields.CASCADE
    )
    trigger_type = fields.CharField(max_length=64)
    address = fields.CharField(max_length=255)

    class Meta:
        table = "hookline_workflow_address"
        indexes = (("trigger_type", "address"),)


class WorkflowVersion(Model):
    """A definition as saved. Immutable once an execution uses it: saving makes a new one."""

    id = fields.BigIntField(primary_key=True)
    workflow: fields.ForeignKeyRelation[Workflow] = fields.ForeignKeyField(
        "hookline.Workflow", related_name="versions", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    definition = _json_field()
    #: sha256 of the canonical definition: equal digests mean equal definitions.
    digest = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "hookline_workflow_version"
        unique_together = (("workflow", "number"),)


class Execution(Model):
    id = fields.BigIntField(primary_key=True)
    workflow: fields.ForeignKeyRelation[Workflow] = fields.ForeignKeyField(
        "hookline.Workflow", related_name="executions", on_delete=fields.CASCADE
    )
    version: fields.ForeignKeyRelation[WorkflowVersion] = fields.ForeignKeyField(
        "hookline.WorkflowVersion", related_name="executions", on_delete=fields.CASCADE
    )
    status = fields.CharEnumField(ExecutionStatus, max_length=16)
    #: How it was started: ``sync`` (a caller waits), ``async`` (queued) or ``manual``.
    mode = fields.CharField(max_length=16)
    trigger_type = fields.CharField(max_length=64)
    #: What the trigger received (``$context``).
    context = _json_field()
    #: The answer given to a waiting caller, if any: ``{"status", "headers", "body"}``.
    reply = _json_field(null=True)
    #: ``{"node", "message", ...}`` when the execution did not succeed.
    error = _json_field(null=True)
    created_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    # Idempotency: unique per workflow, so a concurrent duplicate fails to insert rather than
    # running twice; after dedup_until the same key starts a new execution. The unique index is
    # partial (only rows with a key: most have none), made by migration 0004 with SQL, since
    # tortoise declares partial unique indexes for PostgreSQL only: an index entry fewer for
    # every execution written, and for every status change on PostgreSQL.
    dedup_key = fields.CharField(max_length=64, null=True, description="sha256 of the delivery's idempotency key")
    dedup_until = fields.DatetimeField(null=True, description="until when dedup_key holds")
    owner = fields.CharField(max_length=32, null=True, description="id of the process running it")
    replay_of = fields.BigIntField(null=True, description="the execution this one replays")
    queued_at = fields.DatetimeField(null=True, description="when it was last sent to the queue")
    #: When the execution's failure is next due to be announced to plugins (the
    #: ``execution_failed`` hook; see hookline.failures): set in the same write as a failed
    #: outcome, cleared once every plugin has taken it. Partial index (migration 0008).
    notify_at = fields.DatetimeField(null=True, description="when its failure is next due to be announced")

    class Meta:
        table = "hookline_execution"
        # (workflow_id, status, id): a workflow's executions of one status, newest first (the API's
        # and the CLI's list), without walking all of that workflow's history.
        # (workflow_id, created_at, status): a workflow's executions since a time counted by
        # status from the index alone (GET /api/workflows?include=activity). Migration 0006 also
        # makes, on PostgreSQL, the trigram index of the text search (see storage/history.py).
        indexes = (
            ("workflow_id", "id"),
            ("status", "id"),
            ("created_at",),
            ("workflow_id", "status", "id"),
            ("workflow_id", "created_at", "status"),
        )


class Job(Model):
    """One node run within an execution."""

    id = fields.BigIntField(primary_key=True)
    execution: fields.ForeignKeyRelation[Execution] = fields.ForeignKeyField(
        "hookline.Execution", related_name="jobs", on_delete=fields.CASCADE
    )
    #: Order in which the nodes ran, from 0.
    position = fields.IntField()
    node = fields.CharField(max_length=128)
    type = fields.CharField(max_length=64)
    status = fields.CharEnumField(JobStatus, max_length=16)
    #: The node's config as rendered for this run, as JSON text. Text rather than a JSON field
    #: because it may be any JSON value, and tortoise's JSONField takes a ``str`` for
    #: already-encoded JSON, so a plain string value could not be stored.
    input = fields.TextField(null=True)
    #: The node's result, as JSON text (see ``input``).
    result = fields.TextField(null=True)
    branch = fields.CharField(max_length=64, null=True)
    error = _json_field(null=True)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField()

    class Meta:
        table = "hookline_job"
        indexes = (("execution_id", "position"),)


class Process(Model):
    """A server process that runs executions, alive while its heartbeat is recent. Executions
    left ``running`` by a process whose heartbeat stopped are recovered by the others."""

    id = fields.CharField(max_length=32, primary_key=True)
    hostname = fields.CharField(max_length=255)
    # Boot id and pid namespace: processes with the same one see each other's pids.
    machine = fields.CharField(max_length=128, description="boot id and pid namespace of its process table")
    pid = fields.IntField()
    started_at = fields.DatetimeField()
    heartbeat_at = fields.DatetimeField()
    # Renewed with each heartbeat, by the process's own interval: past it, others take the
    # process for dead (each process is judged by its own heartbeat, not the judge's).
    expires_at = fields.DatetimeField(description="when the process is taken for dead without a heartbeat")

    class Meta:
        table = "hookline_process"


class Refusal(Model):
    """A call a trigger refused (bad signature, unknown key, ...), kept for troubleshooting."""

    id = fields.BigIntField(primary_key=True)
    # The workflow's key as called: not a foreign key, so that a refusal outlives its workflow
    # and calls to keys that never existed (workflow NULL) are kept too.
    workflow = fields.CharField(max_length=128, null=True, description="key of the workflow called, if known")
    status = fields.SmallIntField(description="HTTP status of the answer")
    cause = fields.CharField(max_length=64, description="machine code of the refusal (invalid_signature, ...)")
    message = fields.TextField(description="why, for the operator")
    method = fields.CharField(max_length=16)
    path = fields.TextField(description="the path called, without the query string")
    address = fields.CharField(max_length=64, null=True, description="the caller's address")
    headers = _json_field(description="the request headers, credentials redacted")
    body = fields.TextField(null=True, description="the start of the body: text, or base64 if not text")
    body_base64 = fields.BooleanField(default=False, description="whether body holds base64")
    body_size = fields.BigIntField(null=True, description="the whole body's length in bytes, if read")
    # Calls of the same workflow refused after this one and not kept (sampling under a flood).
    similar_dropped = fields.BigIntField(default=0, description="similar refusals not kept")
    created_at = fields.DatetimeField(description="when the call was refused")

    class Meta:
        table = "hookline_refusal"
        # Newest first, by workflow, status or cause (the API's filters), and per workflow for
        # pruning to the newest N of each.
        indexes = (("workflow", "id"), ("status", "id"), ("cause", "id"))


class Setting(Model):
    """Host-wide values that must be shared by every process (the API token's hash)."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()

    class Meta:
        table = "hookline_setting"
