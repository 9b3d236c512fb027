"""Retention: deleting finished executions (with their jobs) once they are old enough.

How long an execution is kept depends on its workflow and its status: the ``retention`` of the
workflow's *current* definition (``succeeded: 7d``, ``default: 90d``, ``failed: forever``, ...),
and for statuses it does not name (nor ``default``), the server's ``HOOKLINE_RETENTION`` (30 days
unless set; ``forever`` keeps everything). Age counts from when the execution was created.

Rules that hold whatever the policy or the request:

* only finished executions are deleted, never ``queued`` or ``running`` ones;
* an execution whose idempotency key still holds (``dedup_until`` in the future) is kept until
  it expires: deleting it would let a redelivery of the same event run again;
* rows go in batches, each batch its own short transaction, so that a large purge never holds
  a long lock (SQLite has one writer; PostgreSQL would keep row locks to the end).

The server purges by policy once an hour (first shortly after start); ``DELETE /api/executions``
and ``hookline executions purge`` purge on demand, by policy or by an explicit age.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from hookline.background import stop_task
from hookline.durations import parse_duration, parse_duration_text
from hookline.engine import utcnow
from hookline.errors import BadRequest, NotFound
from hookline.status import ExecutionStatus
from hookline.storage import retention as stored
from hookline.storage import workflows as stored_workflows
from hookline.storage.retention import Scope
from hookline.workflows import is_workflow_key

if TYPE_CHECKING:
    from hookline.host import Host

log = logging.getLogger("hookline.retention")

FINISHED = [s for s in ExecutionStatus if s.finished]
DEFAULT_BATCH = 1000
MAX_BATCH = 10_000


@dataclass
class PurgeResult:
    """What a purge deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    deleted: int = 0
    #: Matching executions kept because their idempotency key still holds.
    protected: int = 0
    workflows: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "dry_run": self.dry_run,
            "protected": self.protected,
            "workflows": dict(sorted(self.workflows.items())),
            "statuses": dict(sorted(self.statuses.items())),
        }


class RetentionService:
    #: Seconds between two policy purges of the server, and before the first one.
    interval = 3600.0
    first_delay = 60.0

    def __init__(self, host: Host) -> None:
        self.host = host
        self._task: asyncio.Task[None] | None = None

    # --- the server's periodic purge -----------------------------------------------------

    def start(self) -> None:
        """Purge by policy every :attr:`interval` seconds, the first time shortly after start
        (with a little jitter, so that the workers of one server do not all purge at once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._periodic())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _periodic(self) -> None:
        delay = self.first_delay * random.uniform(1.0, 1.5)
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            try:
                result = await self.purge()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away, a bug: try again at the next round
                log.warning("purging old executions failed; trying again in %g s", self.interval, exc_info=True)
                continue
            if result.deleted:
                log.info("retention: deleted %d finished execution(s) %s", result.deleted, dict(result.statuses))

    # --- purging -------------------------------------------------------------------------

    async def purge(
        self,
        *,
        workflow: str | None = None,
        statuses: Iterable[str] | None = None,
        older_than: timedelta | None = None,
        everything: bool = False,
        dry_run: bool = False,
        batch: int = DEFAULT_BATCH,
    ) -> PurgeResult:
        """Delete finished executions, with their jobs.

        Without ``older_than`` (nor ``everything``), by policy: each workflow's ``retention``,
        else the server's default. With ``older_than``, those created longer ago than that,
        whatever the policies say; with ``everything``, of any age. ``workflow`` and ``statuses``
        narrow it down. Executions whose idempotency key still holds are always kept; failures still
        to be announced to plugins (``execution_failed``) are kept by a purge by policy.

        :param batch: executions deleted per transaction.
        :param dry_run: count, delete nothing.
        """
        if older_than is not None and everything:
            raise BadRequest("give older_than or all, not both")
        if older_than is not None and older_than <= timedelta(0):
            raise BadRequest("older_than must be a positive duration")
        if not 1 <= batch <= MAX_BATCH:
            raise BadRequest(f"batch must be from 1 to {MAX_BATCH}, not {batch}")
        wanted = _statuses(statuses)
        now = utcnow()
        workflow_id = await _workflow_id(workflow) if workflow is not None else None
        if everything:
            rules = [Scope(wanted, None, workflow_id)]
        elif older_than is not None:
            cutoff = _before(now, older_than)
            rules = [Scope(wanted, cutoff, workflow_id)] if cutoff is not None else []
        else:
            rules = await self._policy_rules(wanted, now, workflow_id)
        result = PurgeResult(dry_run=dry_run)
        keys: dict[int, str] = {}
        for rule in rules:
            await _apply(rule, now, batch, dry_run, result, keys)
        return result

    async def _policy_rules(
        self, wanted: list[ExecutionStatus], now: datetime, workflow_id: int | None
    ) -> list[Scope]:
        """One rule per workflow with a ``retention`` of its own and per span it sets, plus one
        for every other workflow under the server's default."""
        default = self.host.settings.retention
        own: dict[int, dict[str, timedelta | None]] = {}
        for wid, definition in (await stored_workflows.current_definitions(workflow_id)).items():
            spans = _retention(definition)
            if spans:
                own[wid] = spans
        rules: list[Scope] = []
        for wid, spans in own.items():
            by_span: dict[timedelta | None, list[ExecutionStatus]] = {}
            for status in wanted:
                span = spans.get(status.value, spans.get("default", default))
                by_span.setdefault(span, []).append(status)
            for span, sts in by_span.items():
                cutoff = _before(now, span) if span is not None else None
                if cutoff is not None:
                    rules.append(Scope(sts, cutoff, wid, keep_unannounced=True))
        cutoff = _before(now, default) if default is not None else None
        if cutoff is not None and (workflow_id is None or workflow_id not in own):
            rules.append(Scope(wanted, cutoff, workflow_id, exclude=tuple(own), keep_unannounced=True))
        return rules


async def _apply(rule: Scope, now: datetime, batch: int, dry_run: bool, result: PurgeResult, keys: dict[int, str]) -> None:
    # A key still holding keeps its row: a redelivery of that event must still be recognised.
    result.protected += await stored.key_holders(rule, now)
    last = 0
    while True:
        rows = await stored.deletable(rule, now, after=last, limit=batch)
        if not rows:
            return
        last = rows[-1].id
        if not dry_run:  # each batch its own short transaction
            await stored.delete_executions([row.id for row in rows])
        missing = {row.workflow_id for row in rows} - keys.keys()
        if missing:
            keys.update(await stored_workflows.keys_of(missing))
        result.deleted += len(rows)
        result.workflows.update(keys.get(row.workflow_id, str(row.workflow_id)) for row in rows)
        result.statuses.update(row.status.value for row in rows)
        if len(rows) < batch:
            return
        await asyncio.sleep(0)  # let the server's other work at the database between batches


def _before(now: datetime, span: timedelta) -> datetime | None:
    """``now - span``, or ``None`` when that is before year 1: nothing is that old."""
    try:
        return now - span
    except OverflowError:
        return None


def _retention(definition: Any) -> dict[str, timedelta | None]:
    """The ``retention`` of a stored definition (valid when saved), without compiling it: a
    workflow whose node types were uninstalled keeps its policy."""
    spans: dict[str, timedelta | None] = {}
    data = definition.get("retention") if isinstance(definition, dict) else None
    for name, value in (data or {}).items():
        try:
            spans[name] = None if value == "forever" else parse_duration(value)
        except (ValueError, OverflowError):
            log.warning("ignoring retention.%s %r of a stored definition", name, value)
            spans[name] = None  # when in doubt, keep
    return spans


def _statuses(statuses: Iterable[str] | None) -> list[ExecutionStatus]:
    if not statuses:
        return list(FINISHED)
    wanted: list[ExecutionStatus] = []
    for name in statuses:
        status = next((s for s in FINISHED if s.value == name), None)
        if status is None:
            finished = ", ".join(s.value for s in FINISHED)
            raise BadRequest(f"status {name!r} cannot be purged (finished statuses: {finished})", status=name)
        if status not in wanted:
            wanted.append(status)
    return wanted


async def _workflow_id(key: str) -> int:
    row = await stored_workflows.by_key(key) if is_workflow_key(key) else None
    if row is None:
        raise NotFound(f"no workflow with key {key!r}", key=key)
    return row.id


def parse_age(value: Any) -> timedelta:
    """``older_than`` as given to the API or the CLI: ``"30d"``, ``"12h"``, or seconds."""
    try:
        return parse_duration_text(str(value))
    except ValueError as exc:
        raise BadRequest(f"older_than: {exc}") from None
