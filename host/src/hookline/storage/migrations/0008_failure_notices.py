from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# Failures to announce to plugins (the execution_failed hook): a column written with the failed
# outcome, and a partial index holding only the rows where it is set (a few at any time), so
# that finding what is due reads no other row, and the executions that succeed update nothing.
NOTIFY_INDEX = "idx_hookline_execution_notify"


class Migration(migrations.Migration):
    dependencies = [('hookline', '0007_workflow_addresses')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Execution',
            name='notify_at',
            field=fields.DatetimeField(null=True, description='when its failure is next due to be announced', auto_now=False, auto_now_add=False),
        ),
        ops.RunSQL(
            f'CREATE INDEX "{NOTIFY_INDEX}" ON "hookline_execution" ("notify_at") WHERE "notify_at" IS NOT NULL',
            reverse_sql=f'DROP INDEX "{NOTIFY_INDEX}"',
        ),
    ]
