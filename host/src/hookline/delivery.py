"""What a trigger sees of the executions it starts: idempotency keys (:class:`Dedup`), the
answer to a delivery already received (:class:`Duplicate`, naming its :class:`ExecutionRecord`)
and the handle of a run it waits on (:class:`RunHandle`).

Idempotency: a trigger may pass a :class:`Dedup` key; the row carries its digest under a unique
constraint, so a second delivery of the same event (even a concurrent one, from another process)
fails to insert and gets :class:`Duplicate`, naming the first execution.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable

from hookline.engine import Outcome
from hookline.errors import HooklineError, Overloaded
from hookline.status import ExecutionStatus
from hookline.types import Reply, ReplySlot

#: How long an idempotency key holds unless the trigger says otherwise.
DEFAULT_DEDUP_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Dedup:
    """The idempotency key of a delivery (a provider's event or delivery id). Within ``window``
    of the first delivery, another with the same key for the same workflow runs nothing."""

    key: str
    window: timedelta = DEFAULT_DEDUP_WINDOW

    @property
    def digest(self) -> str:
        # Keys come from callers: hashed, they fit the column whatever their length or bytes.
        return hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ExecutionRecord:
    """Where an execution stands, as stored: what a trigger needs to answer a duplicate."""

    id: int
    status: ExecutionStatus
    mode: str
    reply: Reply | None
    error: dict[str, Any] | None
    workflow_id: int = 0
    trigger_type: str = ""

    @property
    def finished(self) -> bool:
        return self.status.finished


class Duplicate(HooklineError):
    """The delivery's idempotency key was seen within its window: nothing was started.
    ``execution`` is the first delivery's execution."""

    code = "duplicate"
    status = 409

    def __init__(self, execution: ExecutionRecord) -> None:
        super().__init__(
            f"this delivery was already received: execution {execution.id} ({execution.status.value})",
            execution=execution.id,
        )
        self.execution = execution


class NotRecorded(HooklineError):
    """A sync run written when it ends (see :mod:`hookline.deferred`) could not be written at
    all: the history has no trace of it (503, retry later)."""

    code = "unavailable"
    status = 503


class ShuttingDown(Overloaded):
    """The process is stopping: it starts nothing new (503, retry later)."""

    code = "shutting_down"


class RunHandle:
    """A started execution. A trigger awaits :meth:`reply` to answer its caller."""

    def __init__(
        self,
        execution_id: int,
        task: asyncio.Task[Outcome],
        slot: ReplySlot,
        *,
        persist: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """``persist``, for a run written only when it ends: writes its row now (a caller is
        about to be told it still runs) and says whether the run has ended meanwhile. Such a
        run's early reply is handed over by :meth:`release` once its row is written."""
        self.execution_id = execution_id
        self._task = task
        self._persist = persist
        self._released: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if persist is None:
            slot.on_release(self.release)

    def release(self, reply: Reply) -> None:
        """Let the reply out to :meth:`reply`'s waiter before the execution ends."""
        if not self._released.done():
            self._released.set_result(reply)

    async def reply(self, timeout: float | None = None) -> Reply | None:
        """The reply a node gave, once the execution is stored, or earlier when the workflow
        goes on after answering; ``None`` if it ended without one. Cancelling the caller does
        not cancel the execution.

        :param timeout: seconds to wait at most; then ``TimeoutError`` (the execution goes on,
            and is stored as running by then).
        """
        if not self._released.done() and not self._task.done():
            # One future and one timer: cheaper, on every sync call, than asyncio.wait under
            # asyncio.timeout.
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: object = None) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            self._released.add_done_callback(wake)
            self._task.add_done_callback(wake)
            timer = loop.call_later(timeout, wake) if timeout is not None else None
            try:
                await waiter
            finally:
                self._released.remove_done_callback(wake)
                self._task.remove_done_callback(wake)
                if timer is not None:
                    timer.cancel()
            if not self._released.done() and not self._task.done():
                if self._persist is None or not await self._persist():
                    raise TimeoutError(f"no reply within {timeout:g} s")
                await asyncio.wait([self._task])  # it ended as it was written: its reply
        if self._released.done():
            return self._released.result()
        if self._task.cancelled() or self._task.exception() is not None:
            return None
        return self._task.result().reply

    async def outcome(self) -> Outcome:
        """Wait for the execution to end (stored) and return how it ended."""
        return await asyncio.shield(self._task)
