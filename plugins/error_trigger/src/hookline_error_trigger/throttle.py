"""At most so many runs of an error workflow a minute, per process (``max_runs_per_minute``).

A storm of failures (an upstream down for every call) must not become a storm of alerts; and an
error workflow that watches a workflow it calls itself (its HTTP Request node posting to a
webhook workflow that fails) starts itself again for ever, each pass a new failure: the limit
turns that loop into a warning a minute instead of an execution a few milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger("hookline.error_trigger")

WINDOW = 60.0


@dataclass
class _Runs:
    started: deque[float] = field(default_factory=deque)
    dropped: int = 0
    warned_at: float = float("-inf")


class Throttle:
    """The runs each error workflow started in the last minute, in this process."""

    def __init__(self) -> None:
        self._clock = time.monotonic
        self._runs: dict[str, _Runs] = {}

    def admit(self, key: str, limit: int) -> bool:
        """Whether error workflow ``key`` may start one more run now; counts it if so. A refusal
        is counted and logged as a warning, at most once a minute per workflow."""
        now = self._clock()
        runs = self._runs.setdefault(key, _Runs())
        while runs.started and runs.started[0] <= now - WINDOW:
            runs.started.popleft()
        if len(runs.started) < limit:
            runs.started.append(now)
            return True
        runs.dropped += 1
        if now - runs.warned_at >= WINDOW:
            log.warning(
                "error workflow %r started %d runs in the last minute (max_runs_per_minute); %d failure(s) started "
                "nothing since the last warning. A storm of failures, or a loop: an error workflow that watches a "
                "workflow it calls starts itself again",
                key,
                len(runs.started),
                runs.dropped,
            )
            runs.warned_at, runs.dropped = now, 0
        return False
