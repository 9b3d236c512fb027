"""Sample capture (Mingdao's "generate from a request sample"): arm a workflow's URL so that the
next request to it, within a window, is stored as a sample instead of running the workflow.

The webhook route asks :meth:`CaptureService.take` about every request. That is the hot path,
so the service keeps the keys of armed captures in memory and reads them from the database at
most once a second: a capture armed by another process (another worker, ``hookline webhooks
capture``) takes effect within a second, one armed through this process at once. Only a request
to an armed key touches the database, and a conditional ``UPDATE ... WHERE status = 'armed'``
makes sure one request, in one process, takes the capture.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise.transactions import in_transaction

from hookline import Host
from hookline.errors import BadRequest, Conflict, NotFound
from hookline_webhook.models import Capture, CaptureStatus
from hookline_webhook.samples import parameters_from_context
from hookline_webhook.trigger import WebhookTrigger

log = logging.getLogger("hookline.webhook.capture")

#: The methods a capture takes (Mingdao: "a GET or POST request"), whatever the workflow's own.
CAPTURE_METHODS = ("GET", "POST")
#: Seconds a capture waits for a request unless told otherwise (Mingdao's 3 minutes).
DEFAULT_WINDOW = 180
MAX_WINDOW = 3600
#: Seconds the armed keys read from the database are trusted.
REFRESH_INTERVAL = 1.0


class NotAWebhookWorkflow(Conflict):
    code = "not_a_webhook_workflow"


class CaptureService:
    """Arms, takes, reads and cancels captures. One instance per app (the routes share it);
    the CLI makes its own."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._armed: set[str] = set()
        self._loaded_at = float("-inf")
        self._refresh_failed = False

    # --- the webhook's hot path --------------------------------------------------------

    async def take(self, workflow_key: str, context: dict[str, Any]) -> int | None:
        """If a capture is armed for ``workflow_key``, store ``context`` as its sample with the
        parameters generated from it, and return the capture's id: the caller then answers
        without running the workflow. ``None`` otherwise: run as usual.

        Never raises: when the capture cannot be stored (the database fails), the failure is
        logged and ``None`` returned."""
        if workflow_key not in await self._armed_keys():
            return None
        try:
            return await self._claim(workflow_key, context)
        except Exception:
            log.exception("workflow %r: the request could not be stored as a capture; it runs instead", workflow_key)
            return None

    async def armed(self, workflow_key: str) -> bool:
        """Whether a capture is armed for ``workflow_key`` (as far as this process knows: at
        most a second old). Cheap: no database access on most calls."""
        return workflow_key in await self._armed_keys()

    async def _armed_keys(self) -> set[str]:
        if time.monotonic() - self._loaded_at >= REFRESH_INTERVAL:
            # Marked first, so that requests arriving during the query use the keys known.
            self._loaded_at = time.monotonic()
            before = set(self._armed)
            try:
                fresh = await (
                    Capture.filter(status=CaptureStatus.ARMED, expires_at__gt=_now())
                    .distinct()
                    .values_list("workflow_key", flat=True)
                )
            except Exception:
                if not self._refresh_failed:
                    log.warning("armed captures could not be read; keeping the ones known", exc_info=True)
                self._refresh_failed = True
            else:
                self._refresh_failed = False
                # Keys armed here while the query ran are kept: the query may predate them.
                self._armed = set(fresh) | (self._armed - before)
        return self._armed

    async def _claim(self, workflow_key: str, context: dict[str, Any]) -> int | None:
        now = _now()
        live = Capture.filter(workflow_key=workflow_key, status=CaptureStatus.ARMED, expires_at__gt=now)
        row = await live.order_by("-id").only("id").first()
        if row is None:
            self._armed.discard(workflow_key)
            return None
        taken = await Capture.filter(id=row.id, status=CaptureStatus.ARMED, expires_at__gt=now).update(
            status=CaptureStatus.CAPTURED,
            captured_at=now,
            request=context,
            parameters=parameters_from_context(context),
        )
        if not taken:  # another request, maybe in another process, was first
            return None
        if not await live.exists():
            self._armed.discard(workflow_key)
        log.info("workflow %r: request captured as sample %d", workflow_key, row.id)
        return row.id

    # --- managing captures (API and CLI) -----------------------------------------------

    async def arm(self, key: str, window_seconds: float = DEFAULT_WINDOW) -> dict[str, Any]:
        """Arm workflow ``key``'s URL to capture its next request within ``window_seconds``
        (1 to 3600). An armed capture of the workflow is replaced. Returns the new capture."""
        number = isinstance(window_seconds, (int, float)) and not isinstance(window_seconds, bool)
        if not number or not 1 <= window_seconds <= MAX_WINDOW:
            raise BadRequest(f"window must be a number of seconds from 1 to {MAX_WINDOW}, not {window_seconds!r}")
        await self._check_workflow(key)
        now = _now()
        async with in_transaction():
            armed = Capture.filter(workflow_key=key, status=CaptureStatus.ARMED)
            await armed.filter(expires_at__lte=now).update(status=CaptureStatus.EXPIRED)
            await armed.update(status=CaptureStatus.CANCELLED)
            row = await Capture.create(
                workflow_key=key,
                status=CaptureStatus.ARMED,
                armed_at=now,
                expires_at=now + timedelta(seconds=window_seconds),
            )
        self._armed.add(key)
        return capture_dict(row)

    async def latest(self, key: str) -> dict[str, Any] | None:
        """The newest capture of workflow ``key``, or ``None`` if it never had one."""
        await self._check_workflow(key)
        row = await Capture.filter(workflow_key=key).order_by("-id").first()
        return capture_dict(row) if row is not None else None

    async def get(self, capture_id: int) -> dict[str, Any] | None:
        row = await Capture.filter(id=capture_id).first()
        return capture_dict(row) if row is not None else None

    async def cancel(self, key: str) -> dict[str, Any]:
        """Cancel workflow ``key``'s armed capture; returns it. :class:`NotFound` when none is
        armed."""
        await self._check_workflow(key)
        live = Capture.filter(workflow_key=key, status=CaptureStatus.ARMED, expires_at__gt=_now())
        row = await live.order_by("-id").first()
        if row is None or not await live.update(status=CaptureStatus.CANCELLED):
            raise NotFound(f"workflow {key!r} has no armed capture to cancel", key=key)
        self._armed.discard(key)
        await row.refresh_from_db()
        return capture_dict(row)

    async def wait(self, capture_id: int, timeout: float, interval: float = 0.5) -> dict[str, Any]:
        """Poll capture ``capture_id`` until it is no longer armed or ``timeout`` seconds have
        passed; returns it as it then is."""
        deadline = time.monotonic() + timeout
        while True:
            capture = await self.get(capture_id)
            if capture is None:
                raise NotFound(f"no capture {capture_id}")
            if capture["status"] != CaptureStatus.ARMED.value or time.monotonic() >= deadline:
                return capture
            await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0)))

    async def _check_workflow(self, key: str) -> None:
        workflow = await self.host.workflows.get(key)  # NotFound for an unknown key
        if workflow["trigger"] != WebhookTrigger.name:
            raise NotAWebhookWorkflow(
                f"workflow {key!r} is triggered by {workflow['trigger']!r}, not by a webhook: it has no URL to capture",
                key=key,
            )


def capture_dict(row: Capture) -> dict[str, Any]:
    """A capture as the API and the CLI show it."""
    status = row.status
    if status is CaptureStatus.ARMED and row.expires_at <= _now():
        status = CaptureStatus.EXPIRED
    return {
        "id": row.id,
        "workflow": row.workflow_key,
        "status": status.value,
        "armed_at": row.armed_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "captured_at": row.captured_at.isoformat() if row.captured_at else None,
        "request": row.request,
        "parameters": row.parameters,
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)
