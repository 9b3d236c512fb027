"""The statuses of executions and jobs: one definition, used by the engine, the storage and the
API alike (this module imports nothing, so any of them can use it)."""

from __future__ import annotations

from enum import Enum


class ExecutionStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


class JobStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERROR = "error"
    TIMED_OUT = "timed_out"
