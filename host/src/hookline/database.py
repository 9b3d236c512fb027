"""For a plugin with tables of its own (hook ``register_models``): the tortoise configuration
that tortoise's command line tool needs to write the plugin's migrations, naming the plugin's
app and the host's (so that ``"hookline.Execution"`` resolves)::

    MY_APP = ModelApp("my_label", ("my_pkg.models",), "my_pkg.migrations")
    TORTOISE_ORM = tortoise_config("sqlite://:memory:", [HOST_APP, MY_APP])

The public face of :mod:`hookline.storage`, which is the implementation.
"""

from __future__ import annotations

from hookline.registry import ModelApp
from hookline.storage.db import HOST_APP, tortoise_config

__all__ = ["HOST_APP", "ModelApp", "tortoise_config"]
