from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='ConsoleSession',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, description="sha256 of the cookie's token", max_length=64)),
                ('csrf_token', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('address', fields.CharField(default='', max_length=64)),
                ('method', fields.CharField(description='How the operator signed in: ``token`` (the management API token) or ``password``.', max_length=16)),
            ],
            options={'table': 'hookline_console_session', 'app': 'hookline_console', 'indexes': [Index(fields=['expires_at'])], 'pk_attr': 'id', 'table_description': 'A signed-in browser. The cookie holds a random token, and only its SHA-256 is stored: a'},
            bases=['Model'],
        ),
    ]
