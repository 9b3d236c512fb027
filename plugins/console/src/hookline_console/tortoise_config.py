"""For tortoise's CLI only, to generate this plugin's migrations:
``tortoise -c hookline_console.tortoise_config.TORTOISE_ORM makemigrations``."""

import os

from hookline.database import HOST_APP, ModelApp, tortoise_config

#: This plugin's tortoise app, as its ``register_models`` hook registers it.
CONSOLE_APP = ModelApp("hookline_console", ("hookline_console.models",), "hookline_console.migrations")

# makemigrations needs no database; sqlmigrate writes the SQL of HOOKLINE_DB_URL's database.
TORTOISE_ORM = tortoise_config(os.environ.get("HOOKLINE_DB_URL", "sqlite://:memory:"), [HOST_APP, CONSOLE_APP])
