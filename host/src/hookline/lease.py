"""This process's lease: its row in ``hookline_process``, renewed by a heartbeat, and what the
other processes' leases say of whether they are alive.

A process that runs executions registers and renews its lease every heartbeat interval; a
lease runs out three intervals after its last renewal. The executions a process owns are
recovered by the others once it is dead: its lease ran out, or its pid is gone from this
machine's process table (see :mod:`hookline.recovery`).

A lease that ran out is proof of death only if its owner could have renewed it. A stall of
the machine (CPU starvation, a long collection, a paused VM, a database that did not answer
the heartbeat's write) holds back every process on it alike: when it ends, the first process
to wake finds its peers' leases run out while they are alive and about to renew, and would
re-queue their runs while they still run them. So each process measures how late its own
renewals come (:meth:`ProcessLease.slack`) and gives the others' leases that much more time,
for a lease after the stall: a peer stalled with it is not taken for dead, and a dead one is
taken as soon as the extra time is over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import deque
from datetime import timedelta

from hookline.background import stop_task
from hookline.engine import utcnow
from hookline.settings import Settings
from hookline.storage import processes as stored

log = logging.getLogger("hookline.executions")


def _clock() -> float:
    """Seconds, counting the time this machine was suspended (which ``time.monotonic`` does
    not count on Linux): a lease written with the wall clock runs out during a suspension."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


class ProcessLease:
    """This process's registration and heartbeat (see the module's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: This process, as the owner of the executions it runs.
        self.process_id = secrets.token_hex(16)
        self._heartbeat: asyncio.Task[None] | None = None
        #: ``_clock()`` of the last renewal (0: not registered).
        self._renewed_at = 0.0
        #: How late renewals came (seconds), each with the ``_clock()`` until which it counts.
        self._lateness: deque[tuple[float, float]] = deque()

    @property
    def registered(self) -> bool:
        return self._heartbeat is not None

    @property
    def length(self) -> timedelta:
        """How long a lease lasts after its renewal: three heartbeat intervals."""
        return timedelta(seconds=3 * self.settings.heartbeat_interval)

    async def register(self) -> None:
        """Write this process's lease and start its heartbeat."""
        self._renewed_at = 0.0
        self._lateness.clear()
        await self._write_new()
        _OPEN_HERE.add(self.process_id)
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def release(self) -> None:
        """Stop the heartbeat and delete the lease: this process is gone for the others."""
        await stop_task(self._heartbeat)
        self._heartbeat = None
        self._renewed_at = 0.0
        _OPEN_HERE.discard(self.process_id)
        try:
            await stored.unregister(self.process_id)
        except Exception:  # the database is gone; the row expires by itself
            log.warning("could not unregister process %s", self.process_id, exc_info=True)

    async def _write_new(self) -> None:
        began = _clock()
        now = utcnow()
        await stored.register(
            stored.NewLease(
                id=self.process_id,
                hostname=socket.gethostname()[:255],
                machine=_MACHINE,
                pid=os.getpid(),
                now=now,
                expires_at=now + self.length,
            )
        )
        self._renewed(began)

    async def _beat(self) -> None:
        interval = self.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                began = _clock()
                now = utcnow()
                if await stored.renew(self.process_id, now, now + self.length):
                    self._renewed(began)
                else:
                    # Taken for dead during a long pause: what it ran was recovered elsewhere,
                    # and its outcomes will not be stored (see ExecutionService._store).
                    log.warning("process %s was taken for dead by another; registering again", self.process_id)
                    await self._write_new()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("heartbeat failed; trying again in %g s", interval, exc_info=True)

    def _renewed(self, began: float) -> None:
        """Note a renewal whose write began at ``began``: how late it came counts for a lease."""
        interval = self.settings.heartbeat_interval
        if self._renewed_at:
            late = began - self._renewed_at - interval
            if late > 0:
                self._lateness.append((_clock() + self.length.total_seconds(), late))
            if late > interval:
                log.warning(
                    "process %s renewed its lease %.1f s late (the process or its machine stalled, or the "
                    "database did not answer): other processes' leases get as much more for %g s",
                    self.process_id, late, self.length.total_seconds(),
                )
        self._renewed_at = began

    def slack(self) -> float:
        """Seconds more that the other processes' leases get now: how late this process's own
        renewal is now, or came within the last lease (0 for a process not registered)."""
        if not self._renewed_at:
            return 0.0
        now = _clock()
        while self._lateness and self._lateness[0][0] <= now:
            self._lateness.popleft()
        overdue = now - self._renewed_at - self.settings.heartbeat_interval
        return max([0.0, overdue, *(late for _, late in self._lateness)])

    def stalled_since(self, slack: float) -> bool:
        """Whether this process has stalled since :meth:`slack` said ``slack``: what was judged
        with it says too little now. (Half an interval of jitter is nothing: a live process's
        lease has two intervals to spare.)"""
        return self.slack() > slack + self.settings.heartbeat_interval / 2

    async def alive(self, slack: float = 0.0) -> set[str]:
        """Ids of the processes alive now: this one, and those whose lease has not run out
        (given ``slack`` seconds more) and that are not known gone from this machine."""
        since = utcnow() - timedelta(seconds=slack)
        alive = {
            lease.id
            for lease in await stored.alive_since(since)
            if lease.id in _OPEN_HERE or not (_MACHINE and lease.machine == _MACHINE and _gone(lease.pid))
        }
        alive.add(self.process_id)
        return alive

    async def forget_long_dead(self) -> None:
        """Delete the leases that ran out ten leases ago (what their processes left has been
        recovered)."""
        await stored.forget_expired_before(utcnow() - 10 * self.length)


def _machine() -> str:
    """What identifies this machine's process table: boot id and pid namespace (Linux). Two
    processes with the same value can see each other's pids; empty where unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot = file.read().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"[:128]
    except OSError:
        return ""


_MACHINE = _machine()

#: Process ids registered by this interpreter (tests run several hosts in one).
_OPEN_HERE: set[str] = set()


def _gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine no longer exists (or is this very process, for a
    row not registered by this interpreter: an earlier incarnation, as a restarted container
    reuses its pid)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False
