"""Request pacing for the J-Quants client: a requests-per-minute bucket with a shared pause.

Concurrency (how many requests are in flight) and rate (how many start per minute)
are separate limits: the plan's per-minute budget binds in production, concurrency
hides latency. A 429 with ``Retry-After`` pauses *every* request of the client until
the given instant, so one throttled request does not turn into a storm of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


class RateLimiter:
    """Token bucket: ``per_minute`` requests per 60 s, bursts up to ``burst``.

    ``per_minute=None`` disables the rate limit (the pause still applies).
    ``acquire()`` waits for a token and for any pause set by ``pause_until``.
    """

    def __init__(self, per_minute: int | None, burst: int | None = None, clock=time.monotonic):
        if per_minute is not None and per_minute < 1:
            raise ValueError(f"requests_per_minute must be >= 1, got {per_minute}")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0 if per_minute else None
        self._capacity = float(burst or max(1, (per_minute or 1) // 10))
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause_until(self, instant: float) -> None:
        """Hold all requests until the monotonic ``instant`` (e.g. from Retry-After)."""
        self._paused_until = max(self._paused_until, instant)

    async def acquire(self) -> None:
        """Wait until a request may start."""
        while True:
            now = self._clock()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            if self._rate is None:
                return
            async with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self._rate
            await asyncio.sleep(wait)


@dataclass
class InFlight:
    """Counts requests on the wire; ``peak`` is the most at once (tests, benchmarks)."""

    current: int = 0
    peak: int = 0

    def __enter__(self) -> InFlight:
        self.current += 1
        self.peak = max(self.peak, self.current)
        return self

    def __exit__(self, *exc) -> None:
        self.current -= 1
