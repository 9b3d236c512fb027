"""The :class:`Host`: one object holding what an app or a CLI run works with.

Plugins receive it in ``register_routes``, ``startup`` and ``shutdown``, and route handlers
reach it as ``request.app.ctx.hookline``. Its public surface for plugin authors:

* ``host.settings`` — :class:`hookline.settings.Settings`.
* ``host.registry`` — installed trigger and node types.
* ``host.workflows.find(key)`` — a workflow's current version, ready to run.
* ``host.executions.start(workflow, context)`` — run now; await ``handle.reply()``.
* ``host.executions.enqueue(workflow, context)`` — store as queued, run in the background.
* ``host.executions.list(workflow=, status=, mode=, since=, until=, q=, after=, ...)`` and
  ``host.executions.get(id)`` — the history, as ``GET /api/executions[/<id>]``;
  ``host.executions.activity(keys)`` — each workflow's last execution and counts of the last 24 h.
* ``host.replays`` — replay finished executions; ``host.retention`` — purge old ones.
* ``host.queue`` — where queued executions go (``memory``, or Redis for several processes).
* ``host.refused_calls`` — :class:`hookline.refused.RefusedCalls`: a trigger reports each call it
  refuses with ``host.refused_calls.record(workflow=..., status=..., cause=..., ...)``
  (synchronous, never raises, sampled under a flood, written in the background); operators read
  them with ``list(...)`` and ``get(id)`` (``GET /api/refusals``, ``hookline refusals``).
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

from hookline.engine import Engine
from hookline.executions import ExecutionService
from hookline.plugins import PluginHooks, make_plugin_manager
from hookline.queue import ExecutionQueue
from hookline.refused import RefusedCalls
from hookline.replay import ReplayService
from hookline.retention import RetentionService
from hookline.settings import Settings
from hookline.storage.db import (
    check_db_url,
    close_database,
    maintenance_problem,
    migrate_database,
    open_database,
    open_migrated_database,
    tortoise_config,
)
from hookline.workflows import WorkflowService

log = logging.getLogger("hookline")


class Host:
    def __init__(self, settings: Settings | None = None, *, pm: pluggy.PluginManager | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pm = pm or make_plugin_manager(disabled=self.settings.disable_plugins)
        self.hooks = PluginHooks(self.pm)
        self.registry = self.hooks.build_registry(self)
        self.model_apps = self.hooks.model_apps()
        self.engine = Engine()
        self.workflows = WorkflowService(self)
        self.executions = ExecutionService(self)
        self.queue = ExecutionQueue(self)
        self.replays = ReplayService(self)
        self.retention = RetentionService(self)
        self.refused_calls = RefusedCalls(self)

    @property
    def tortoise_config(self) -> dict[str, Any]:
        return tortoise_config(self.settings.db_url, self.model_apps, lock_timeout=self.settings.db_lock_timeout)

    def describe_plugins(self, *, include_default: bool = False) -> list[dict[str, Any]]:
        return self.hooks.describe(self.registry, include_default=include_default)

    # --- database ------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending migrations of the host and every plugin; closes its connections."""
        check_db_url(self.settings.db_url)
        return await migrate_database(self.tortoise_config, self.settings.db_url)

    async def open_database(self) -> None:
        check_db_url(self.settings.db_url)
        await open_database(self.tortoise_config)

    async def open_migrated_database(self) -> None:
        """Open a database that exists and is migrated, creating nothing: what CLI commands and
        workers use (only ``migrate`` and ``serve`` create or migrate one). Raises
        :class:`hookline.storage.db.DatabaseNotReady`, naming the database and what to do."""
        await open_migrated_database(self.tortoise_config, self.settings.db_url)

    async def close_database(self) -> None:
        await close_database()

    # --- serving -------------------------------------------------------------------------

    async def start(self) -> None:
        """Called by the server (and ``hookline worker``) once the database is open: this
        process connects to the queue and registers (so that a plugin's ``startup`` may start
        executions), plugins' ``startup`` run; then, every plugin being ready, a process with
        role ``all`` or ``worker`` starts receiving from a shared queue and what dead processes
        left (running or queued) is recovered; then the hourly purge of old executions and the
        writer of refused calls are scheduled, and failed executions are announced to the
        plugins that implement ``execution_failed`` (see :mod:`hookline.failures`). Last, each
        stored workflow that cannot run here is logged with why, and a database setting that
        will slow it down (PostgreSQL's autovacuum off) with what to do."""
        await self.executions.open(recover=False)
        try:
            await self.hooks.startup(self)
            if self.settings.role != "ingress":
                self.executions.receive()
            await self.executions.start_recovery()
        except BaseException:
            await self.executions.close()
            raise
        self.retention.start()
        self.refused_calls.start()
        self.executions.failures.start()
        try:
            await self.workflows.log_unrunnable()
        except Exception as exc:  # only a report: the server serves without it
            log.warning("could not check which stored workflows can run here: %s: %s", type(exc).__name__, exc)
        try:
            problem = await maintenance_problem()
        except Exception as exc:  # only a report
            log.debug("could not read the database's maintenance settings", exc_info=exc)
        else:
            if problem:
                log.warning("%s", problem)

    async def stop(self) -> None:
        await self.executions.failures.stop()
        await self.retention.stop()
        await self.refused_calls.stop()
        await self.executions.drain(self.settings.shutdown_grace)
        await self.executions.close()
        await self.hooks.shutdown(self)
