from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('hookline', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Process',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('hostname', fields.CharField(max_length=255)),
                ('machine', fields.CharField(description='boot id and pid namespace of its process table', max_length=128)),
                ('pid', fields.IntField()),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('heartbeat_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(description='when the process is taken for dead without a heartbeat', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'hookline_process', 'app': 'hookline', 'pk_attr': 'id', 'table_description': 'A server process that runs executions, alive while its heartbeat is recent. Executions'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Execution',
            name='dedup_key',
            field=fields.CharField(null=True, description="sha256 of the delivery's idempotency key", max_length=64),
        ),
        ops.AddField(
            model_name='Execution',
            name='dedup_until',
            field=fields.DatetimeField(null=True, description='until when dedup_key holds', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Execution',
            name='owner',
            field=fields.CharField(null=True, description='id of the process running it', max_length=32),
        ),
        ops.AddField(
            model_name='Execution',
            name='replay_of',
            field=fields.BigIntField(null=True, description='the execution this one replays'),
        ),
        ops.AddIndex(
            model_name='Execution',
            index=Index(fields=['created_at']),
        ),
        ops.AddConstraint(
            model_name='Execution',
            constraint=UniqueConstraint(fields=('workflow', 'dedup_key'), name=None),
        ),
    ]
