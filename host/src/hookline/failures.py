"""Announcing failed executions to plugins: the ``execution_failed`` hook, at least once.

An execution that ends ``failed``, ``error`` or ``timed_out`` is written with ``notify_at`` set
(in the same statement as its status: see :meth:`hookline.storage.executions.ExecutionStore`),
as long as some plugin implements the hook. :class:`FailureNotices` then finds the rows that
are due (``notify_at`` passed, a partial index holding only those), claims each one by moving
its ``notify_at`` a lease ahead (one process of several takes it), calls every implementation,
and clears ``notify_at`` once they all returned. A process that dies meanwhile, or a plugin
that raises, leaves the row due again when the lease ends: another process, or the next start,
announces it again. So a failure is announced at least once, and plugins make their work
idempotent by the execution's id (the ``execution-failed`` trigger enqueues with it as its
idempotency key).

Nothing of this runs without a plugin implementing the hook: no row is marked, no task runs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hookline.engine import utcnow
from hookline.storage import failures as rows

if TYPE_CHECKING:
    from hookline.host import Host

log = logging.getLogger("hookline.failures")

#: The hook's name, as plugins implement it.
HOOK = "execution_failed"
#: How long a process holds a failure it announces; a failure whose announcement did not end
#: (the process died, a plugin raised) is announced again after it.
LEASE = timedelta(seconds=60)
#: Rows claimed per read.
BATCH = 100
#: Seconds each plugin's implementation may take; past it, it counts as having raised.
HOOK_TIMEOUT = 30.0
#: A failure that plugins keep failing to take is no longer announced this long after it
#: ended (logged as an error): well within the error trigger's idempotency window (7 days).
GIVE_UP = timedelta(days=1)


@dataclass(frozen=True)
class ExecutionFailure:
    """A failed execution, as the ``execution_failed`` hook gives it to plugins."""

    #: The execution's id (``GET /api/executions/<id>``): the key to make work idempotent by.
    id: int
    #: ``failed`` (a node failed), ``error`` (a node crashed, the run was interrupted, its
    #: outcome could not be stored) or ``timed_out`` (the workflow's timeout).
    status: str
    #: How it was started: ``sync``, ``async``, ``manual`` or ``replay``.
    mode: str
    #: ``{"key", "title", "version"}`` of the workflow that failed.
    workflow: dict[str, Any]
    #: The trigger type of that workflow (``webhook``, ``execution-failed``, ...).
    trigger_type: str
    #: The key of the node that failed, if one did.
    node: str | None
    #: What went wrong, in a sentence.
    message: str
    #: The execution's error as stored (``{"node", "error", "message", ...details}``).
    error: dict[str, Any]
    #: ``$context`` of the failed execution, as stored (secret headers already redacted).
    context: Any
    #: When it started and ended, ISO 8601 (UTC).
    started_at: str | None
    finished_at: str | None
    #: The execution it replayed, if it is a replay.
    replay_of: int | None
    #: The execution in the management API (``{base}/api/executions/<id>``), with the server's
    #: public URL (``HOOKLINE_PUBLIC_URL``) or the address it listens on.
    url: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FailureNotices:
    """This process's announcer of failed executions (``host.executions.failures``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        #: Whether any plugin implements the hook: otherwise nothing is marked, nothing runs.
        self.enabled = host.hooks.implements(HOOK)
        #: Seconds between looks for failures due that no process announced (a dead one's).
        self.interval = max(1.0, host.settings.heartbeat_interval)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A failure was just stored here: announce it now rather than at the next look."""
        self._wake.set()

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="hookline-failure-notices")

    async def stop(self) -> None:
        """Stop announcing. One being announced is cancelled; its lease ends and it is
        announced again (by another process, or at the next start)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        # Waits first: what a dead process left is due within an interval of the start, and the
        # start's heap is frozen meanwhile (hookline.runtime) without this loop's garbage in it.
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while await self.announce_due() == BATCH:
                    pass
            except Exception as exc:  # the database is away: look again later
                log.warning("could not announce failed executions: %s: %s", type(exc).__name__, exc)

    async def announce_due(self, now: datetime | None = None) -> int:
        """Announce up to ``BATCH`` failures that are due; returns how many were found."""
        read_at = now or utcnow()
        due = await rows.due(read_at, BATCH)
        for execution_id in due:
            # Claimed with a conditional update: of several processes, one takes it. Its lease
            # runs from the claim, not from the read: announcing the rows before it may have
            # taken longer than a lease.
            claimed_at = utcnow() if now is None else max(now, utcnow())
            if await rows.claim(execution_id, claimed_at, claimed_at + LEASE):
                await self._announce(execution_id)
        return len(due)

    async def _announce(self, execution_id: int) -> None:
        failure = await self.load(execution_id)
        if failure is None:  # deleted meanwhile (a purge, its workflow deleted)
            return
        if await self.host.hooks.execution_failed(failure, self.host, timeout=HOOK_TIMEOUT):
            await rows.announced(execution_id)
        elif _age(failure) > GIVE_UP:
            log.error(
                "gave up announcing the failure of execution %s (workflow %r): plugins kept failing to take it "
                "for %s; it stays in the history",
                failure.id,
                failure.workflow["key"],
                GIVE_UP,
            )
            await rows.announced(execution_id)
        # Else a plugin raised (logged): its lease ends and the failure is announced again.

    async def load(self, execution_id: int) -> ExecutionFailure | None:
        """The failure of execution ``execution_id`` as the hook gives it (``None`` if gone)."""
        row = await rows.failure_row(execution_id)
        if row is None:
            return None
        error = row["error"] if isinstance(row["error"], dict) else {}
        status = str(getattr(row["status"], "value", row["status"]))
        return ExecutionFailure(
            id=row["id"],
            status=status,
            mode=row["mode"],
            workflow={"key": row["workflow_key"], "title": row["workflow_title"], "version": row["version_number"]},
            trigger_type=row["trigger_type"],
            node=error.get("node") if isinstance(error.get("node"), str) else None,
            message=str(error.get("message") or f"the execution ended {status}"),
            error=error,
            context=row["context"],
            started_at=_iso(row["started_at"]),
            finished_at=_iso(row["finished_at"]),
            replay_of=row["replay_of"],
            url=f"{self.host.settings.base_url}/api/executions/{row['id']}",
        )


def _age(failure: ExecutionFailure) -> timedelta:
    ended = datetime.fromisoformat(failure.finished_at) if failure.finished_at else None
    return timedelta(0) if ended is None else utcnow() - ended


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
