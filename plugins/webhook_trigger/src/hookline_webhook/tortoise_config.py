"""For tortoise's CLI only, to generate this plugin's migrations:
``tortoise -c hookline_webhook.tortoise_config.TORTOISE_ORM makemigrations``."""

import os

from hookline.database import HOST_APP, ModelApp, tortoise_config

#: This plugin's tortoise app, as its ``register_models`` hook registers it.
WEBHOOK_APP = ModelApp("hookline_webhook", ("hookline_webhook.models",), "hookline_webhook.migrations")

# makemigrations needs no database; sqlmigrate writes the SQL of HOOKLINE_DB_URL's database.
TORTOISE_ORM = tortoise_config(os.environ.get("HOOKLINE_DB_URL", "sqlite://:memory:"), [HOST_APP, WEBHOOK_APP])
