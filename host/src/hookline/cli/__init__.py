"""What a plugin's own ``hookline`` command needs (hook ``register_commands``): a host built as
the host's commands build theirs, the database opened around the work, JSON output.

These names are the public API; the modules of this package (``common``, ``main``, ...) are the
implementation of the ``hookline`` command. Import from here::

    from hookline.cli import db_option, emit, make_host, run_with_database
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hookline.cli.common import db_option, emit, make_host, run_with_database

#: Imported on first use, with the module each comes from: they pull in the host and its storage
#: layer, which importing another module of this package (``hookline.cli.scaffold``) should not.
_LAZY = {
    "db_option": "hookline.cli.common",
    "emit": "hookline.cli.common",
    "make_host": "hookline.cli.common",
    "run_with_database": "hookline.cli.common",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookline.cli' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


__all__ = ["db_option", "emit", "make_host", "run_with_database"]
