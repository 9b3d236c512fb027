"""The host's own background tasks (heartbeat, recovery, purge, the queue's reader): how they
are stopped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("hookline")


async def stop_task(task: asyncio.Task[Any] | None, *, most: float = 10.0) -> None:
    """Cancel ``task`` and wait until it has ended, for at most ``most`` seconds.

    One ``cancel()`` is not enough on Python 3.11: a cancellation that races the result of what
    the task awaits can be swallowed inside a library (``asyncio.wait_for`` and
    ``asyncio.timeout`` before 3.12, which database and Redis clients use), and a periodic task
    then goes on to its next ``sleep``, waited for forever. So it is cancelled again, every half
    second, until it ends.
    """
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + most
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            log.warning("background task %s did not stop within %g s; left running", task.get_name(), most)
            return
        task.cancel()
        await asyncio.wait({task}, timeout=min(0.5, left))
    if not task.cancelled():
        task.exception()  # retrieved: its end was reported where it happened
