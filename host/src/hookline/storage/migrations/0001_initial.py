from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hookline.storage.models import ExecutionStatus, JobStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Setting',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('value', fields.TextField(unique=False)),
            ],
            options={'table': 'hookline_setting', 'app': 'hookline', 'pk_attr': 'key', 'table_description': "Host-wide values that must be shared by every process (the API token's hash)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Workflow',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=128)),
                ('title', fields.CharField(default='', max_length=200)),
                ('enabled', fields.BooleanField(default=True)),
                ('trigger_type', fields.CharField(max_length=64)),
                ('search_text', fields.TextField(default='', description="Lower-cased key, title and the trigger's search terms, for ``?q=``.", unique=False)),
                ('current_version_id', fields.BigIntField(null=True, description='Id of the version webhooks run. A plain column, not a foreign key, so that the two tables')),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'hookline_workflow', 'app': 'hookline', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WorkflowVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workflow', fields.ForeignKeyField('hookline.Workflow', source_field='workflow_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('definition', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('digest', fields.CharField(description='sha256 of the canonical definition: equal digests mean equal definitions.', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'hookline_workflow_version', 'app': 'hookline', 'unique_together': (('workflow', 'number'),), 'pk_attr': 'id', 'table_description': 'A definition as saved. Immutable once an execution uses it: saving makes a new one.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Execution',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workflow', fields.ForeignKeyField('hookline.Workflow', source_field='workflow_id', db_constraint=True, to_field='id', related_name='executions', on_delete=OnDelete.CASCADE)),
                ('version', fields.ForeignKeyField('hookline.WorkflowVersion', source_field='version_id', db_constraint=True, to_field='id', related_name='executions', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(description='QUEUED: queued\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed\nERROR: error\nCANCELLED: cancelled\nTIMED_OUT: timed_out', enum_type=ExecutionStatus, max_length=16)),
                ('mode', fields.CharField(description='How it was started: ``sync`` (a caller waits), ``async`` (queued) or ``manual``.', max_length=16)),
                ('trigger_type', fields.CharField(max_length=64)),
                ('context', fields.JSONField(description='What the trigger received (``$context``).', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reply', fields.JSONField(null=True, description='The answer given to a waiting caller, if any: ``{"status", "headers", "body"}``.', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('error', fields.JSONField(null=True, description='``{"node", "message", ...}`` when the execution did not succeed.', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'hookline_execution', 'app': 'hookline', 'indexes': [Index(fields=['workflow_id', 'id']), Index(fields=['status', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('execution', fields.ForeignKeyField('hookline.Execution', source_field='execution_id', db_constraint=True, to_field='id', related_name='jobs', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField(description='Order in which the nodes ran, from 0.')),
                ('node', fields.CharField(max_length=128)),
                ('type', fields.CharField(max_length=64)),
                ('status', fields.CharEnumField(description='SUCCEEDED: succeeded\nFAILED: failed\nERROR: error\nTIMED_OUT: timed_out', enum_type=JobStatus, max_length=16)),
                ('input', fields.TextField(null=True, description="The node's config as rendered for this run, as JSON text. Text rather than a JSON field", unique=False)),
                ('result', fields.TextField(null=True, description="The node's result, as JSON text (see ``input``).", unique=False)),
                ('branch', fields.CharField(null=True, max_length=64)),
                ('error', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'hookline_job', 'app': 'hookline', 'indexes': [Index(fields=['execution_id', 'position'])], 'pk_attr': 'id', 'table_description': 'One node run within an execution.'},
            bases=['Model'],
        ),
    ]
