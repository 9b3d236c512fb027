"""The processes' leases (table ``hookline_process``): the verbs :mod:`hookline.lease` asks for.
Which lease counts as alive, and when to renew, are the lease's; how the rows are written is
this module's alone."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from hookline.storage.models import Process


class NewLease(NamedTuple):
    """A process registering: who it is, where it runs, and until when its lease holds."""

    id: str
    hostname: str
    #: What identifies its machine's process table (boot id and pid namespace), or ``""``.
    machine: str
    pid: int
    now: datetime
    expires_at: datetime


class Lease(NamedTuple):
    """A lease as the others judge whether its process is alive."""

    id: str
    machine: str
    pid: int


async def register(lease: NewLease) -> None:
    """Write a new lease, renewed at ``lease.now``."""
    await Process.create(
        id=lease.id,
        hostname=lease.hostname,
        machine=lease.machine,
        pid=lease.pid,
        started_at=lease.now,
        heartbeat_at=lease.now,
        expires_at=lease.expires_at,
    )


async def renew(process_id: str, now: datetime, expires_at: datetime) -> bool:
    """Renew a lease at ``now``, until ``expires_at``; ``False`` if it is gone (another process
    took this one for dead and forgot it)."""
    return bool(await Process.filter(id=process_id).update(heartbeat_at=now, expires_at=expires_at))


async def unregister(process_id: str) -> None:
    """Delete a lease: its process is gone."""
    await Process.filter(id=process_id).delete()


async def alive_since(moment: datetime) -> list[Lease]:
    """The leases that had not run out at ``moment``."""
    rows = await Process.filter(expires_at__gte=moment).values("id", "machine", "pid")
    return [Lease(row["id"], row["machine"], row["pid"]) for row in rows]


async def forget_expired_before(moment: datetime) -> int:
    """Delete the leases that ran out before ``moment``; how many were."""
    return await Process.filter(expires_at__lt=moment).delete()
