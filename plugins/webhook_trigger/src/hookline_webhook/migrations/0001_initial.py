from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from hookline_webhook.models import CaptureStatus
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Capture',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('workflow_key', fields.CharField(max_length=128)),
                ('status', fields.CharEnumField(description='ARMED: armed\nCAPTURED: captured\nEXPIRED: expired\nCANCELLED: cancelled', enum_type=CaptureStatus, max_length=16)),
                ('armed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('captured_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('request', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('parameters', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'hookline_webhook_capture', 'app': 'hookline_webhook', 'indexes': [Index(fields=['workflow_key', 'id']), Index(fields=['status', 'expires_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
