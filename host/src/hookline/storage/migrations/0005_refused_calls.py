from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('hookline', '0004_partial_dedup_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Refusal',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workflow', fields.CharField(null=True, description='key of the workflow called, if known', max_length=128)),
                ('status', fields.SmallIntField(description='HTTP status of the answer')),
                ('cause', fields.CharField(description='machine code of the refusal (invalid_signature, ...)', max_length=64)),
                ('message', fields.TextField(description='why, for the operator', unique=False)),
                ('method', fields.CharField(max_length=16)),
                ('path', fields.TextField(description='the path called, without the query string', unique=False)),
                ('address', fields.CharField(null=True, description="the caller's address", max_length=64)),
                ('headers', fields.JSONField(description='the request headers, credentials redacted', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('body', fields.TextField(null=True, description='the start of the body: text, or base64 if not text', unique=False)),
                ('body_base64', fields.BooleanField(default=False, description='whether body holds base64')),
                ('body_size', fields.BigIntField(null=True, description="the whole body's length in bytes, if read")),
                ('similar_dropped', fields.BigIntField(default=0, description='similar refusals not kept')),
                ('created_at', fields.DatetimeField(description='when the call was refused', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'hookline_refusal', 'app': 'hookline', 'indexes': [Index(fields=['workflow', 'id']), Index(fields=['status', 'id']), Index(fields=['cause', 'id'])], 'pk_attr': 'id', 'table_description': 'A call a trigger refused (bad signature, unknown key, ...), kept for troubleshooting.'},
            bases=['Model'],
        ),
    ]
