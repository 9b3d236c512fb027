"""Refused calls: what a trigger turned away at its door (a bad signature, an unknown key, a
disabled workflow, ...), kept so that an operator asking "why did my webhook not run?" can see
the calls and their causes (``GET /api/refusals``, ``hookline refusals list``).

A trigger reports each refusal with :meth:`RefusedCalls.record`, on its hot path: it is
synchronous, never raises and never touches the database. It appends to a bounded buffer that a
background task writes in batches. A flood costs neither disk nor CPU:

* **Sampling.** At most :attr:`RefusedCalls.per_workflow_rate` refusals per second are kept per
  workflow and :attr:`RefusedCalls.total_rate` in all (token buckets, per process); the others
  are only counted, and the count is added to the newest kept refusal of the same workflow
  (``similar_dropped``: "1 kept, 41,233 more like it").
* **Truncation.** The first :attr:`RefusedCalls.body_limit` bytes of the body are kept, with its
  whole length; a few dozen headers, each value cut to 512 characters.
* **Bounds.** After each write, only the newest ``HOOKLINE_REFUSALS_PER_WORKFLOW`` of each
  workflow (default 100) and ``HOOKLINE_REFUSALS_MAX`` in all (default 10,000) are kept.

Credentials are never stored: headers arrive redacted by the trigger (which knows its workflow's
secret headers), and are redacted again here by name (``Authorization``, ``Cookie``, anything
naming a signature, token, secret, password, session or API key). The query string is not kept.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping

from hookline.background import stop_task
from hookline.engine import utcnow
from hookline.errors import BadRequest, NotFound
from hookline.pagination import MAX_ID, Page, cursor_of, parse_cursor
from hookline.storage import refusals as storage

if TYPE_CHECKING:
    from hookline.host import Host

log = logging.getLogger("hookline.refused")

#: What a redacted header value reads.
REDACTED = "[redacted]"
#: Header names whose values are never stored, whatever the trigger did.
_SECRET_HEADER = re.compile(
    r"auth|cookie|token|secret|sign|passw|session|credential|api[-_]?key|hmac|jwt", re.IGNORECASE
)
_MAX_HEADERS = 64
_MAX_HEADER_VALUE = 512
_MAX_MESSAGE = 1000
_MAX_PATH = 1024
_MAX_CAUSE = 64
_MAX_WORKFLOW = 128
_MAX_METHOD = 16
_MAX_ADDRESS = 64
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``rate`` saved up (a burst)."""

    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now

    def take(self, rate: float, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)  # a clock set back (a test's) refills nothing
        self.tokens = min(max(rate, 1.0), self.tokens + elapsed * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RefusedCalls:
    """``host.refused_calls``: record refused calls (triggers), read them (API, CLI)."""

    #: Refusals kept per second per workflow, and in all, per process; the rest are counted.
    per_workflow_rate: float = 5.0
    total_rate: float = 50.0
    #: Bytes of a body kept.
    body_limit: int = 2048
    #: Refusals waiting to be written, at most; past it (the database is slow), counted only.
    buffer_limit: int = 1000
    #: Seconds the writer waits after the first refusal, to write several in one batch.
    flush_delay: float = 0.5

    def __init__(self, host: Host, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        #: Monotonic seconds, for the sampling; a test gives its own.
        self.clock = clock
        self._buffer: deque[dict[str, Any]] = deque()
        # The newest buffered row of each workflow: refusals dropped after it are added to it.
        self._newest: dict[str | None, dict[str, Any]] = {}
        # Refusals dropped after a row already written, per workflow: added to it by the writer.
        self._dropped: dict[str | None, int] = {}
        self._buckets: dict[str | None, _Bucket] = {}
        self._total = _Bucket(self.total_rate, clock())
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def pending(self) -> int:
        """Refusals recorded and not written yet (at most :attr:`buffer_limit`)."""
        return len(self._buffer)

    @property
    def enabled(self) -> bool:
        settings = self.host.settings
        return settings.refusals_max > 0 and settings.refusals_per_workflow > 0

    # --- recording (a trigger's hot path) ------------------------------------------------

    def record(
        self,
        *,
        workflow: str | None,
        status: int,
        cause: str,
        message: str = "",
        method: str = "",
        path: str = "",
        address: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> None:
        """Report a call the trigger refused. Synchronous and cheap; never raises, never waits
        for the database (the row is written in the background, within a second).

        :param workflow: the key of the workflow called, ``None`` when no workflow has that key
            (the key is then in ``path``).
        :param status: the HTTP status answered (``401``).
        :param cause: the machine code answered (``invalid_signature``).
        :param message: why, for the operator (may say more than the caller was told).
        :param method: the request method.
        :param path: the path called, without the query string (which may carry secrets).
        :param address: the caller's address.
        :param headers: the request headers, lower-cased, with the workflow's credentials and
            signature headers already redacted (known secret names are redacted again here).
        :param body: the raw body if it was read, else ``None``; only its start is kept.
        """
        try:
            if not self.enabled:
                return
            if not self._admit(workflow):
                self._count_dropped(workflow)
                return
            row = {
                "workflow": _text(workflow, _MAX_WORKFLOW) if workflow is not None else None,
                "status": int(status),
                "cause": _text(cause, _MAX_CAUSE),
                "message": _text(message, _MAX_MESSAGE),
                "method": _text(method, _MAX_METHOD),
                "path": _text(path.split("?", 1)[0], _MAX_PATH),
                "address": _text(address, _MAX_ADDRESS) if address else None,
                "headers": redact_headers(headers or {}),
                **_body_columns(body, self.body_limit),
                "similar_dropped": 0,
                "created_at": utcnow(),
            }
            self._buffer.append(row)
            self._newest[workflow] = row
            self._signal()
        except Exception:  # a report must never break the answer to the call
            log.debug("could not record a refused call", exc_info=True)

    def _admit(self, workflow: str | None) -> bool:
        if len(self._buffer) >= self.buffer_limit:
            return False
        now = self.clock()
        bucket = self._buckets.get(workflow)
        if bucket is None:
            if len(self._buckets) >= 10_000:  # keys a trigger makes up: forget the idle ones
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < 60}
            bucket = self._buckets[workflow] = _Bucket(self.per_workflow_rate, now)
        # The workflow's bucket first: a workflow over its own rate takes nothing from the others.
        if not bucket.take(self.per_workflow_rate, now):
            return False
        return self._total.take(self.total_rate, now)

    def _count_dropped(self, workflow: str | None) -> None:
        newest = self._newest.get(workflow)
        if newest is not None:
            newest["similar_dropped"] += 1
        else:
            self._dropped[workflow] = self._dropped.get(workflow, 0) + 1
            self._signal()

    def _signal(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- writing -------------------------------------------------------------------------

    def start(self) -> None:
        """Called by :meth:`Host.start`: write what is recorded in the background."""
        if self._task is None:
            self._wake = asyncio.Event()
            if self._buffer or self._dropped:
                self._wake.set()
            self._task = asyncio.get_running_loop().create_task(self._write_loop(), name="hookline-refused-calls")

    async def stop(self) -> None:
        """Called by :meth:`Host.stop`: stop the writer, then write what is left."""
        await stop_task(self._task)
        self._task = None
        self._wake = None
        try:
            await self.flush()
        except Exception as exc:
            log.warning("could not store the last refused calls: %s: %s", type(exc).__name__, exc)

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.flush_delay)  # let a batch gather
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: those are lost, the next ones may not be
                log.warning("could not store refused calls: %s: %s", type(exc).__name__, exc)

    async def flush(self) -> int:
        """Write the refusals recorded so far, then delete the oldest beyond the bounds.
        Returns how many were written. The server does it in the background; tests call it."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            rows = list(self._buffer)
            self._buffer.clear()
            self._newest.clear()
            dropped, self._dropped = self._dropped, {}
            # Dropped after a row written earlier: added to it before newer rows are written.
            for workflow, count in dropped.items():
                if not await storage.add_dropped(workflow, count):
                    # Nothing of that workflow is stored (yet): the next row written gets them.
                    self._dropped[workflow] = self._dropped.get(workflow, 0) + count
            for row in rows:
                carried = self._dropped.pop(row["workflow"], 0)
                row["similar_dropped"] += carried
            await storage.insert_refusals(rows)
            if rows:
                settings = self.host.settings
                workflows = {row["workflow"] for row in rows}
                await storage.prune_refusals(
                    workflows, per_workflow=settings.refusals_per_workflow, total=settings.refusals_max
                )
            return len(rows)

    # --- reading (API, CLI) --------------------------------------------------------------

    async def list(
        self,
        *,
        workflow: str | None = None,
        status: int | str | None = None,
        cause: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Refused calls, newest first, paginated; of ``workflow``, with ``status`` or ``cause``."""
        workflow = workflow or None
        cause = cause or None
        if workflow is not None and (len(workflow) > _MAX_WORKFLOW or _UNSTORABLE.search(workflow)):
            raise BadRequest(
                f"workflow must be a workflow key of at most {_MAX_WORKFLOW} characters", argument="workflow"
            )
        if cause is not None and (len(cause) > _MAX_CAUSE or _UNSTORABLE.search(cause)):
            raise BadRequest(
                f"cause must be a refusal code of at most {_MAX_CAUSE} characters (invalid_signature, ...)",
                argument="cause",
            )
        items, next_before = await storage.refusal_page(
            workflow=workflow, status=parse_status(status), cause=cause, limit=limit, before=parse_cursor(cursor)
        )
        return Page([_summary(item) for item in items], cursor_of(next_before))

    async def get(self, refusal_id: int | str) -> dict[str, Any]:
        """One refused call, with its headers and the start of its body."""
        try:
            number = int(refusal_id)
        except (TypeError, ValueError):
            raise NotFound(f"no refused call with id {refusal_id!r}") from None
        if not 0 < number <= MAX_ID:
            raise NotFound(f"no refused call with id {number}", id=number)
        item = await storage.get_refusal(number)
        if item is None:
            raise NotFound(f"no refused call with id {number}", id=number)
        return {
            **_summary(item),
            "headers": item["headers"],
            "body": item["body"],
            "body_encoding": None if item["body"] is None else "base64" if item["body_base64"] else "text",
        }


def parse_status(value: int | str | None) -> int | None:
    """A ``status`` filter: an HTTP status code, 100 to 599."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit() and 100 <= int(text) <= 599):
        raise BadRequest(f"status must be an HTTP status code from 100 to 599, not {value!r}", argument="status")
    return int(text)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """At most a few dozen headers, names lower-cased, values cut short; every header whose name
    says it holds a credential reads ``[redacted]``."""
    kept: dict[str, str] = {}
    for name, value in list(headers.items())[:_MAX_HEADERS]:
        name = _text(str(name).lower(), 128)
        kept[name] = REDACTED if _SECRET_HEADER.search(name) else _text(str(value), _MAX_HEADER_VALUE)
    return kept


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    created: datetime = item["created_at"]
    size = item["body_size"]
    return {
        "id": item["id"],
        "workflow": item["workflow"],
        "status": item["status"],
        "cause": item["cause"],
        "message": item["message"],
        "method": item["method"],
        "path": item["path"],
        "address": item["address"],
        "body_size": size,
        "body_truncated": size is not None and item["body"] is not None and size > _kept_size(item),
        "similar_dropped": item["similar_dropped"],
        "created_at": created.isoformat(),
    }


def _kept_size(item: dict[str, Any]) -> int:
    body = item["body"]
    return len(base64.b64decode(body)) if item["body_base64"] else len(body.encode("utf-8"))


def _body_columns(body: bytes | None, limit: int) -> dict[str, Any]:
    """The start of ``body``: as text when it is UTF-8 without NUL, else as base64."""
    if body is None:
        return {"body": None, "body_base64": False, "body_size": None}
    head = bytes(body[:limit])
    for cut in range(4):  # a character cut in two at the limit is left out
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            if len(head) < len(body):
                continue
            break
        if "\x00" not in text:
            return {"body": text, "body_base64": False, "body_size": len(body)}
        break
    return {"body": base64.b64encode(head).decode("ascii"), "body_base64": True, "body_size": len(body)}


def _text(value: Any, limit: int) -> str:
    """``value`` as text a database stores (no NUL, no lone surrogate), at most ``limit`` long."""
    text = str(value)[:limit]
    if not text.isascii() and _UNSTORABLE.search(text) or "\x00" in text:
        text = _UNSTORABLE.sub("\ufffd", text)
    return text
