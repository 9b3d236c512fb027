"""Configuration: command-line flags override environment variables, which override defaults."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Mapping

from hookline.durations import parse_duration_text
from hookline.errors import ConfigurationError

DEFAULT_DB_URL = "sqlite://hookline.db"
#: What a process can do (``--role``).
ROLES = ("all", "ingress", "worker")
#: Which executions the history keeps (``HOOKLINE_HISTORY``, a workflow's ``history``).
HISTORY_POLICIES = ("all", "failures")


@dataclass(frozen=True)
class Settings:
    #: tortoise-style URL: ``sqlite://PATH`` or ``postgres://user:pass@host:port/db``.
    db_url: str = DEFAULT_DB_URL
    #: Bearer token for the management API. ``None``: generated on first ``serve`` and stored
    #: (hashed) in the database.
    api_token: str | None = None
    #: Entry-point names of plugins not to load.
    disable_plugins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    #: Server processes. 1 runs a single process (no worker manager).
    workers: int = 1
    #: Base URL of the endpoints shown (``https://hooks.example.com``). ``None``: the API uses the
    #: address it was called at, ``serve`` its own (:attr:`listen_url`), other commands show paths.
    public_url: str | None = None
    #: Background (async) executions run at once per process; more wait, queued.
    max_concurrent_runs: int = 64
    #: Background executions a process lets wait for a run slot; past it, new async calls are
    #: refused (503, retry later) rather than held in memory without bound.
    max_backlog: int = 10_000
    #: Seconds shutdown waits for running executions before re-queueing them.
    shutdown_grace: float = 10.0
    #: Seconds between a process's heartbeats. A process silent for three intervals is taken
    #: for dead, and the executions it was running are recovered by the others.
    heartbeat_interval: float = 10.0
    #: Seconds a database statement waits for a lock held elsewhere before failing (a webhook
    #: then answers 503 to retry instead of hanging). PostgreSQL lock_timeout, SQLite busy_timeout.
    db_lock_timeout: float = 3.0
    #: How long finished executions are kept unless their workflow's ``retention`` says
    #: otherwise; ``None`` keeps them forever.
    retention: timedelta | None = timedelta(days=30)
    #: Which executions the history keeps unless their workflow's ``history`` says: ``all``,
    #: or ``failures`` (only those that did not succeed; replays and manual runs are kept).
    history: str = "all"
    #: Where queued (async) executions go to be run: ``memory`` (this process runs what it
    #: queues) or ``redis://HOST:PORT/DB`` (a Redis stream shared by ingress and worker processes).
    queue_url: str = "memory"
    #: Name of the Redis stream and of its consumer group.
    queue_name: str = "hookline"
    #: What this process does: ``all`` (answer HTTP and run queued executions), ``ingress``
    #: (answer HTTP; queued executions are run by workers) or ``worker`` (run queued executions).
    role: str = "all"
    #: Memory (MiB, approximately) for the compiled workflow versions a process keeps: about
    #: 6,000 small workflows in the default. Calls to more workflows than fit compile on each call.
    workflow_cache_mb: int = 64
    #: Seconds after which an execution still queued is sent to the queue again (a message lost
    #: with Redis, or held by a dead worker). Deliveries are idempotent: at worst it is a no-op.
    redeliver_after: float = 60.0
    #: Refused calls (bad signature, unknown key, ...) kept per workflow, newest first; the older
    #: ones are deleted as new ones are stored. 0 keeps none.
    refusals_per_workflow: int = 100
    #: Refused calls kept in all (calls to unknown keys included), newest first. 0 keeps none.
    refusals_max: int = 10_000

    def __post_init__(self) -> None:
        from hookline.queue import check_queue_url
        from hookline.storage.db import check_db_url_form

        check_db_url_form(self.db_url)
        check_queue_url(self.queue_url)
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", self.queue_name):
            raise ConfigurationError(
                f"queue name {self.queue_name!r}: use 1 to 100 letters, digits and _ . : - (HOOKLINE_QUEUE_NAME)"
            )
        for name in ("refusals_per_workflow", "refusals_max"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must be a whole number of at least 0, not {getattr(self, name)!r}")
        if self.history not in HISTORY_POLICIES:
            raise ConfigurationError(
                f"HOOKLINE_HISTORY must be one of {', '.join(HISTORY_POLICIES)}, not {self.history!r}"
            )
        if self.role not in ROLES:
            raise ConfigurationError(f"unknown role {self.role!r} (known: {', '.join(ROLES)})")
        if self.role != "all" and self.queue_url == "memory":
            raise ConfigurationError(
                f"role {self.role!r} needs a queue shared between processes: set HOOKLINE_QUEUE_URL=redis://HOST:PORT/DB "
                "(with the in-memory queue, a process runs what it queues: role 'all')"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``HOOKLINE_*`` variables, then apply ``overrides`` that are not ``None``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "HOOKLINE_DB_URL" in env and overrides.get("db_url") is None:
            # Set but empty is refused, not read as unset: it is most often a substitution that
            # found nothing (HOOKLINE_DB_URL=$DATABASE_URL), and the default would quietly serve
            # or read another database, a SQLite file in the working directory.
            if not env["HOOKLINE_DB_URL"].strip():
                raise ConfigurationError(
                    "HOOKLINE_DB_URL is set but empty: set it to a database URL (sqlite://PATH or "
                    f"postgres://user:pass@host:port/db), or unset it to use {DEFAULT_DB_URL}"
                )
            values["db_url"] = env["HOOKLINE_DB_URL"].strip()
        if env.get("HOOKLINE_API_TOKEN"):
            values["api_token"] = env["HOOKLINE_API_TOKEN"]
        if env.get("HOOKLINE_DISABLE_PLUGINS"):
            values["disable_plugins"] = tuple(
                name.strip() for name in env["HOOKLINE_DISABLE_PLUGINS"].split(",") if name.strip()
            )
        if env.get("HOOKLINE_PUBLIC_URL"):
            values["public_url"] = env["HOOKLINE_PUBLIC_URL"]
        for variable, name in (
            ("HOOKLINE_MAX_CONCURRENT_RUNS", "max_concurrent_runs"),
            ("HOOKLINE_MAX_BACKLOG", "max_backlog"),
            ("HOOKLINE_WORKFLOW_CACHE_MB", "workflow_cache_mb"),
        ):
            if env.get(variable):
                values[name] = _positive_int(variable, env[variable])
        for variable, name in (
            ("HOOKLINE_REFUSALS_PER_WORKFLOW", "refusals_per_workflow"),
            ("HOOKLINE_REFUSALS_MAX", "refusals_max"),
        ):
            if env.get(variable):
                values[name] = _whole_number(variable, env[variable])
        if env.get("HOOKLINE_HEARTBEAT_INTERVAL"):
            values["heartbeat_interval"] = _duration("HOOKLINE_HEARTBEAT_INTERVAL", env["HOOKLINE_HEARTBEAT_INTERVAL"]).total_seconds()
        if env.get("HOOKLINE_DB_LOCK_TIMEOUT"):
            values["db_lock_timeout"] = _duration("HOOKLINE_DB_LOCK_TIMEOUT", env["HOOKLINE_DB_LOCK_TIMEOUT"]).total_seconds()
        if env.get("HOOKLINE_SHUTDOWN_GRACE"):
            values["shutdown_grace"] = _duration("HOOKLINE_SHUTDOWN_GRACE", env["HOOKLINE_SHUTDOWN_GRACE"]).total_seconds()
        if env.get("HOOKLINE_RETENTION"):
            text = env["HOOKLINE_RETENTION"].strip()
            values["retention"] = None if text == "forever" else _duration("HOOKLINE_RETENTION", text)
        if env.get("HOOKLINE_HISTORY"):
            values["history"] = env["HOOKLINE_HISTORY"].strip()
        if env.get("HOOKLINE_QUEUE_URL"):
            values["queue_url"] = env["HOOKLINE_QUEUE_URL"].strip()
        if env.get("HOOKLINE_QUEUE_NAME"):
            values["queue_name"] = env["HOOKLINE_QUEUE_NAME"].strip()
        if env.get("HOOKLINE_ROLE"):
            values["role"] = env["HOOKLINE_ROLE"].strip()
        if env.get("HOOKLINE_REDELIVER_AFTER"):
            values["redeliver_after"] = _duration("HOOKLINE_REDELIVER_AFTER", env["HOOKLINE_REDELIVER_AFTER"]).total_seconds()
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def base_url(self) -> str:
        """Where a server with these settings is reached: ``public_url``, else :attr:`listen_url`."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return self.listen_url

    @property
    def listen_url(self) -> str:
        """``http://HOST:PORT`` of the address a server with these settings listens on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite:")


def _duration(variable: str, text: str) -> timedelta:
    try:
        return parse_duration_text(text)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None


def _positive_int(variable: str, text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigurationError(f"{variable} must be a whole number of at least 1, not {text!r}")
    return int(text)


def _whole_number(variable: str, text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise ConfigurationError(f"{variable} must be a whole number of at least 0, not {text!r}")
    return int(text)
