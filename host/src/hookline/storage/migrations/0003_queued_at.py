from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [('hookline', '0002_dedup_recovery_replay')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Execution',
            name='queued_at',
            field=fields.DatetimeField(null=True, description='when it was last sent to the queue', auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name='Execution',
            index=Index(fields=['workflow_id', 'status', 'id']),
        ),
    ]
