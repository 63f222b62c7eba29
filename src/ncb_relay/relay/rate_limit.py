"""Per-bureau request rate limits: one token bucket per authenticated principal (API-10).

A bucket is charged only after a request is authenticated, so nobody can
spend another bureau's allowance by naming it in a forged request.  Time is
the relay's injected clock, in whole seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RateLimited", "RateLimiter"]


class RateLimited(Exception):
    """Over the limit; ``retry_after`` is the whole seconds until a request may pass."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: int


class RateLimiter:
    def __init__(self, *, per_second: int, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def charge(self, principal: str, now: int) -> None:
        """Take one token from ``principal``'s bucket or raise :class:`RateLimited`."""
        bucket = self._buckets.get(principal)
        if bucket is None:
            bucket = self._buckets[principal] = _Bucket(float(self.burst), now)
        elapsed = max(0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_second)
        bucket.updated = max(bucket.updated, now)
        if bucket.tokens < 1:
            raise RateLimited(max(1, math.ceil((1 - bucket.tokens) / self.per_second)))
        bucket.tokens -= 1
