"""A bound on failed dashboard sign-ins per client address.

Admin tokens are long random strings, so guessing one is hopeless anyway; the bound
keeps a script from turning the login form into a flood of Config Service calls. Only
failures count: operators signing in behind one proxy address are never slowed down
by each other's successes. The window is a moving one in Redis, shared by every web
process. Like the webhook flood guard it fails open when Redis is unreachable — the
Config Service still verifies every token.
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

log = logging.getLogger("orchestrator.dashboard")


class FailedSignIns:
    """Parameters: `redis_url`; `rate` like `10/minute`; `namespace` prefixes keys."""

    def __init__(self, redis_url: str, rate: str, *, namespace: str) -> None:
        self._item = parse(rate)
        self._limiter = MovingWindowRateLimiter(
            RedisStorage(
                redis_url,
                key_prefix=f"{namespace}:dashboard-sign-in",
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]
            )
        )
        self._breaker = Breaker()

    def wait_seconds(self, address: str) -> float | None:
        """None while `address` may try again, else how long it must wait."""
        if self._breaker.open:
            return None
        try:
            if self._limiter.test(self._item, address):
                return None
            stats = self._limiter.get_window_stats(self._item, address)
            return max(1.0, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:
            self._unavailable(exc)
            return None

    def failed(self, address: str) -> None:
        if self._breaker.open:
            return
        try:
            self._limiter.hit(self._item, address)
        except Exception as exc:
            self._unavailable(exc)

    def _unavailable(self, exc: Exception) -> None:
        self._breaker.trip()
        log.warning("sign-in limit unavailable; not limiting", extra={"error": type(exc).__name__})
