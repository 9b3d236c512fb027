"""Stopping the host's background tasks (heartbeat, recovery, purge, the queue's reader)."""

from __future__ import annotations

import asyncio

import pytest

from hookline.background import stop_task


async def test_a_task_that_loses_a_cancellation_is_stopped_all_the_same() -> None:
    """On Python 3.11 a library can swallow a cancellation that races the result it awaits (CI
    hung for good in a teardown, a recovery task 'cancelling' in its next sleep): cancelling once
    and waiting is not enough."""
    lost = []

    async def periodic() -> None:
        while True:
            try:
                await asyncio.sleep(3600)  # a database call, say, and the next period
            except asyncio.CancelledError:
                if lost:
                    raise
                lost.append(True)  # lost once, as such a call can lose it

    task = asyncio.get_running_loop().create_task(periodic())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_task(task), timeout=30)
    assert lost == [True] and task.cancelled()


async def test_a_task_that_will_not_stop_is_left_after_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    stubborn = True

    async def ignores_cancellations() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not stubborn:
                    raise

    task = asyncio.get_running_loop().create_task(ignores_cancellations(), name="stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_task(task, most=0.3), timeout=30)
    assert not task.done()
    assert "background task stubborn did not stop within 0.3 s" in caplog.text
    stubborn = False
    await asyncio.wait_for(stop_task(task), timeout=30)
    assert task.cancelled()


async def test_nothing_to_stop() -> None:
    await stop_task(None)
