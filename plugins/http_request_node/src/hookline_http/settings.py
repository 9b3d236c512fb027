"""The server's settings for the HTTP Request node, read from the environment when the host
builds its registry. A bad value is a :class:`hookline.PluginError`: the server refuses to start
rather than run with an egress policy other than the one the operator meant."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from hookline import PluginError

from hookline_http.egress import ALLOW_VARIABLE, EgressPolicy, parse_allow_list

MAX_PER_HOST_VARIABLE = "HOOKLINE_HTTP_MAX_PER_HOST"
MAX_CONNECTIONS_VARIABLE = "HOOKLINE_HTTP_MAX_CONNECTIONS"


@dataclass(frozen=True)
class HttpSettings:
    #: What the egress guard admits besides public addresses.
    policy: EgressPolicy = field(default_factory=EgressPolicy)
    #: Requests in flight at once per upstream (scheme, host, port) in one server process.
    max_per_host: int = 16
    #: Size of the process's connection pool.
    max_connections: int = 100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpSettings:
        environ = os.environ if environ is None else environ
        try:
            allow = parse_allow_list(environ.get(ALLOW_VARIABLE, ""))
        except ValueError as exc:
            raise PluginError(f"{ALLOW_VARIABLE}: {exc}") from None
        return cls(
            policy=EgressPolicy(allow),
            max_per_host=_count(environ, MAX_PER_HOST_VARIABLE, cls.max_per_host, most=10_000),
            max_connections=_count(environ, MAX_CONNECTIONS_VARIABLE, cls.max_connections, most=100_000),
        )


def _count(environ: Mapping[str, str], name: str, default: int, *, most: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise PluginError(f"{name} must be a whole number from 1 to {most}, got {text!r}")
    return value
