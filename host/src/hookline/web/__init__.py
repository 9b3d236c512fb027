"""What a plugin serving HTTP needs (a trigger's routes, admin routes, a console page): the
management API token, the one shape of an error answer, response header rules, and bounds on
what a request may hold.

These names are the public API; the modules of this package (``auth``, ``errors``, ``headers``,
``limits``, ``app``, ...) are the implementation. Import from here::

    from hookline.web import json_loads, check_json, require_token
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from hookline.web.headers import HEADER_NAME_PATTERN, RESPONSE_HEADERS_SCHEMA, header_value, response_header_problems
from hookline.web.limits import (
    MAX_DEPTH,
    MAX_PARAMETERS,
    MAX_VALUES,
    JSONShape,
    TooManyParameters,
    check_json,
    json_shape,
)
from hookline.web.limits import loads as json_loads  # a bare "loads" would not say what it reads

if TYPE_CHECKING:
    from hookline.pagination import parse_limit
    from hookline.web.auth import TokenVerifier, require_token
    from hookline.web.errors import error_response
    from hookline.workflows import endpoints_at

#: Names imported on first use, with the module each comes from: they pull in Sanic, the storage
#: layer or the workflow service, which a node type checking its headers does not need.
_LAZY = {
    "TokenVerifier": "hookline.web.auth",
    "endpoints_at": "hookline.workflows",
    "error_response": "hookline.web.errors",
    "parse_limit": "hookline.pagination",
    "require_token": "hookline.web.auth",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookline.web' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


__all__ = [
    "HEADER_NAME_PATTERN",
    "MAX_DEPTH",
    "MAX_PARAMETERS",
    "MAX_VALUES",
    "RESPONSE_HEADERS_SCHEMA",
    "JSONShape",
    "TokenVerifier",
    "TooManyParameters",
    "check_json",
    "endpoints_at",
    "error_response",
    "header_value",
    "json_loads",
    "json_shape",
    "parse_limit",
    "require_token",
    "response_header_problems",
]
