"""When a call is tried again, and how long it waits first; which statuses fail the job."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

#: A status (``404``) or a class of statuses (``"5xx"``).
StatusPattern = int | str


def status_matches(status: int, patterns: Sequence[StatusPattern]) -> bool:
    return any(status == pattern if isinstance(pattern, int) else str(status)[0] == pattern[0] for pattern in patterns)


def fails_job(status: int, fail_on_status: bool | Sequence[StatusPattern]) -> bool:
    """Whether an upstream's ``status`` fails the job, as ``fail_on_status`` says: ``true`` (any
    status outside 200-299), ``false`` (none) or a list of statuses and classes."""
    if fail_on_status is True:
        return not 200 <= status <= 299
    if fail_on_status is False:
        return False
    return status_matches(status, fail_on_status)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay seconds or an HTTP date), or
    ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 1
    statuses: tuple[StatusPattern, ...] = (429, "5xx")
    backoff: float = 1.0
    max_delay: float = 30.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> RetryPolicy:
        config = config or {}
        return cls(
            attempts=config.get("attempts", cls.attempts),
            statuses=tuple(config.get("statuses", cls.statuses)),
            backoff=config.get("backoff", cls.backoff),
            max_delay=config.get("max_delay", cls.max_delay),
        )

    def retries_status(self, status: int) -> bool:
        return status_matches(status, self.statuses)

    def delay(self, failed: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after the ``failed``-th attempt (1, 2, ...): exponential backoff
        with full jitter, ``uniform(0, min(max_delay, backoff * 2 ** (failed - 1)))``."""
        return uniform(0.0, min(self.max_delay, self.backoff * 2 ** (failed - 1)))
