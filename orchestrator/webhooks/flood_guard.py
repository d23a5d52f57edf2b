"""Ingress flood guard: at most `ORCHESTRATOR_INGRESS_RATE_LIMIT` accepted deliveries
per source, shared by every web process through Redis (moving window).

It fails open: when Redis is down the guard lets events through, because the gateway
must still store and acknowledge them (the relay enqueues them later). A flood guard
that turned a Redis outage into lost events would be worse than no guard.
"""

from __future__ import annotations

import logging
import math
import time

from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.breaker import Breaker

log = logging.getLogger("orchestrator.webhooks")


class FloodGuard:
    """Parameters: `redis_url`; `rate` like `200/second`; `namespace` prefixes keys."""

    def __init__(self, redis_url: str, rate: str, *, namespace: str) -> None:
        self._item = parse(rate)
        self._storage = RedisStorage(
            redis_url,
            key_prefix=f"{namespace}:flood",
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._breaker = Breaker()

    def admit(self, source: str) -> float | None:
        """None when admitted, else the seconds to wait (for `Retry-After`)."""
        if self._breaker.open:
            return None
        try:
            if self._limiter.hit(self._item, source):
                return None
            stats = self._limiter.get_window_stats(self._item, source)
            return max(1.0, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:
            self._breaker.trip()
            log.warning("flood guard unavailable; admitting", extra={"error": type(exc).__name__})
            return None
