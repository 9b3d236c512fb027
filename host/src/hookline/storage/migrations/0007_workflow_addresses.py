from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index

# The addresses triggers find workflows by besides their keys (TriggerType.addresses). A new
# table: no stored workflow has one yet (the webhook trigger's custom paths are new with it).


class Migration(migrations.Migration):
    dependencies = [('hookline', '0006_history_queries')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WorkflowAddress',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workflow', fields.ForeignKeyField('hookline.Workflow', source_field='workflow_id', db_constraint=True, to_field='id', related_name='addresses', on_delete=OnDelete.CASCADE)),
                ('trigger_type', fields.CharField(max_length=64)),
                ('address', fields.CharField(max_length=255)),
            ],
            options={'table': 'hookline_workflow_address', 'app': 'hookline', 'indexes': [Index(fields=['trigger_type', 'address'])], 'pk_attr': 'id', 'table_description': 'An address the trigger finds the workflow by besides its key (TriggerType.addresses).'},
            bases=['Model'],
        ),
    ]
