"""A tiny circuit breaker: after a failure, skip the dependency for a few seconds.

The webhook gateway must acknowledge within Slack's 3 s even while Redis is down; paying
a connect timeout on every request would break that. While the breaker is open the
gateway stores events without enqueueing them, and the relay enqueues them later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Breaker:
    def __init__(self, cooldown: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._cooldown = cooldown
        self._clock = clock
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self._clock() < self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = self._clock() + self._cooldown
