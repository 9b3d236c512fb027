from tortoise import migrations
from tortoise.migrations import operations as ops

# The idempotency key's unique index, partial: only executions with a key are in it (most have
# none). Every execution written, and every status change on PostgreSQL, then updates one index
# fewer. tortoise declares partial unique indexes for PostgreSQL only; the SQL is the same on
# SQLite. Lookups by (workflow_id, dedup_key = ?) use it on both.
DEDUP_INDEX = "uid_hookline_execution_dedup"


class Migration(migrations.Migration):
    dependencies = [('hookline', '0003_queued_at')]

    initial = False

    operations = [
        ops.RemoveConstraint(
            model_name='Execution',
            name=None,
            fields=['workflow', 'dedup_key'],
        ),
        ops.RunSQL(
            f'CREATE UNIQUE INDEX "{DEDUP_INDEX}" ON "hookline_execution" ("workflow_id", "dedup_key") '
            'WHERE "dedup_key" IS NOT NULL',
            reverse_sql=f'DROP INDEX "{DEDUP_INDEX}"',
        ),
    ]
