"""Per-workflow rate limits: a token bucket in each server process.

``rate_limit: {requests: N, per: SECONDS}`` lets N calls through per window on average, with
bursts of up to N. Each process keeps its own buckets, so with W processes behind a load
balancer a workflow accepts up to W times the rate (documented).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

RATE_LIMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["requests", "per"],
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "per": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
    },
}


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per: float


class Buckets:
    """One bucket per workflow version (a new version starts full)."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, int], tuple[float, float]] = {}

    def take(self, key: tuple[str, int], limit: RateLimit, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        rate = limit.requests / limit.per
        tokens, updated = self._buckets.get(key, (float(limit.requests), now))
        tokens = min(float(limit.requests), tokens + (now - updated) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
