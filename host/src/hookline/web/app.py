"""The Sanic app factory.

``create_app`` builds everything synchronously (Sanic finalises routes before the server
starts): the host, the plugins' blueprints, the JSON error handler and the listeners that open
the database and run the plugins' ``startup``/``shutdown`` in every worker process.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pluggy
from sanic import Sanic
from sanic.config import Config

from hookline.host import Host
from hookline.plugins import disabled_plugins
from hookline.runtime import settle_heap
from hookline.settings import Settings
from hookline.web.errors import JSONErrorHandler

log = logging.getLogger("hookline")
_app_numbers = itertools.count(1)

#: Sanic's limits and timers, chosen rather than inherited. Each can be overridden from the
#: environment as ``SANIC_<NAME>`` (``SANIC_REQUEST_TIMEOUT=5``), which Sanic reads over these.
SERVER_LIMITS: dict[str, int | float] = {
    # Bodies of the routes Sanic buffers: the management API (workflow definitions, manual run
    # inputs). Webhook routes are streamed: Sanic lifts this limit for them and each workflow's
    # max_body_size applies instead, however large; past it the connection is closed unread.
    "REQUEST_MAX_SIZE": 10 * 1024 * 1024,
    # The request line and headers (the query string included); Sanic answers 413 beyond.
    "REQUEST_MAX_HEADER_SIZE": 8192,
    # Silence allowed while headers arrive (then 408 and the connection closes), and, on
    # webhook routes, while the body arrives. An idle timer: a client trickling a byte at a
    # time is not cut off by it; a reverse proxy's absolute deadlines are the cure for that.
    "REQUEST_TIMEOUT": 15,
    # Silence allowed while a handler works. A sync webhook waits for its workflow's reply up
    # to its trigger's timeout (at most 300 s), so this must be longer, or Sanic would answer
    # 503 first; it also bounds a stalled body on the management API.
    "RESPONSE_TIMEOUT": 330,
    # Idle keep-alive connections: longer than the 60-75 s idle timeouts of load balancers and
    # nginx, so that the proxy rather than us closes them (the other way round races into 502s).
    "KEEP_ALIVE_TIMEOUT": 120,
}


def create_app(
    settings: Settings | None = None,
    *,
    host: Host | None = None,
    pm: pluggy.PluginManager | None = None,
    name: str | None = None,
    manage_database: bool = True,
    tune_gc: bool = False,
) -> Sanic:
    """Build a Hookline app.

    :param settings: defaults to :meth:`Settings.from_env`.
    :param host: an existing host to serve (its settings and plugins are used).
    :param pm: a plugin manager (tests pass one with a chosen plugin set).
    :param name: the Sanic app name; unique per process (Sanic keeps a registry of apps).
    :param manage_database: open the database in ``before_server_start`` and close it in
        ``after_server_stop``. Tests that own the database pass ``False``.
    :param tune_gc: once the server has started, :func:`hookline.runtime.settle_heap` (the
        process is the server's: ``hookline serve`` passes ``True``).
    """
    host = host or Host(settings, pm=pm)
    app = Sanic(
        name or f"hookline_{next(_app_numbers)}", config=Config(defaults=SERVER_LIMITS), error_handler=JSONErrorHandler()
    )
    app.config.FALLBACK_ERROR_FORMAT = "json"
    # sanic-ext switches itself on when pydantic happens to be installed; we use none of it.
    app.config.AUTO_EXTEND = False
    app.config.ACCESS_LOG = False
    app.ctx.hookline = host

    for blueprint in host.hooks.blueprints(host):
        app.blueprint(blueprint)

    @app.on_response
    async def _no_sniffing_no_caching(request: Any, response: Any) -> None:
        # Answers are data for programs: never sniffed as HTML, never cached by a proxy.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")

    @app.before_server_start
    async def _start(app: Sanic, _: Any = None) -> None:
        if manage_database:
            await host.open_database()
        _log_plugins(host)  # first: the stored workflows that cannot run here are named next
        try:
            await host.start()
        except BaseException:
            if manage_database:  # the server will not stop what never started: close here
                await host.close_database()
            raise

    if tune_gc:

        @app.after_server_start
        async def _settle(app: Sanic, _: Any = None) -> None:
            settle_heap()

    @app.before_server_stop
    async def _stop(app: Sanic, _: Any = None) -> None:
        await host.stop()

    @app.after_server_stop
    async def _close(app: Sanic, _: Any = None) -> None:
        if manage_database:
            await host.close_database()

    return app


def _log_plugins(host: Host) -> None:
    plugins = host.describe_plugins()
    disabled = disabled_plugins(host.pm)
    if not host.registry.triggers:  # (a console alone triggers nothing)
        log.warning(
            "no trigger type %s: no workflow can be triggered (%s)",
            "enabled" if disabled else "installed",
            "see the disabled plugins below" if disabled else "pip install hookline-webhook",
        )
    for plugin in plugins:
        contributes = ", ".join(
            [f"trigger {t}" for t in plugin["trigger_types"]] + [f"node {n}" for n in plugin["node_types"]]
        )
        log.info(
            "plugin %s (%s %s)%s",
            plugin["name"],
            plugin["distribution"],
            plugin["version"],
            f": {contributes}" if contributes else "",
        )
    for by in sorted({plugin.disabled_by for plugin in disabled}):
        log.info("plugins disabled by %s: %s", by, ", ".join(str(p) for p in disabled if p.disabled_by == by))
