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


#: How an execution can fail: what the ``execution_failed`` hook announces. (``cancelled`` is a
#: shutdown stopping a run whose caller had gone with the server, not the workflow failing.)
FAILURE_STATUSES = frozenset({ExecutionStatus.FAILED, ExecutionStatus.ERROR, ExecutionStatus.TIMED_OUT})


class JobStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERROR = "error"
    TIMED_OUT = "timed_out"
