"""Count every message's outcome per minute, for the dashboard's throughput charts.

Outcomes (see `orchestrator.dashboard.throughput`): `ok` and `failed` per attempt at
`after_process_message`, `dead` at `after_nack` (Dramatiq nacks only what it
dead-letters). Counting happens in memory — a message costs a dictionary increment,
never a Redis round trip — and a thread adds the counts to the shared per-minute
buckets every `interval` seconds and once more at shutdown. A Redis outage keeps the
counts in memory until it passes; counts older than the buckets' retention are
dropped, so memory stays bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq import Middleware

from orchestrator.dashboard import throughput

log = logging.getLogger("orchestrator.workers.throughput")


class Throughput(Middleware):
    """Parameters: `namespace` of the broker's keys; `interval` seconds between flushes
    (default 1); `clock` returns Unix time (injectable for tests)."""

    def __init__(
        self, namespace: str, *, interval: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._namespace = namespace
        self._interval = interval
        self._clock = clock
        self._counts: Counter[tuple[int, str, str]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._count(message, "ok" if exception is None else "failed")

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._count(message, "dead")

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._client = broker.client  # type: ignore[attr-defined]
        self._stop.clear()

        def flush_periodically() -> None:
            while not self._stop.wait(self._interval):
                self.flush()

        self._thread = threading.Thread(
            target=flush_periodically, name="throughput-flush", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.flush()

    def flush(self) -> None:
        """Add what was counted since the last flush to the shared buckets."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts or self._client is None:
            return
        try:
            throughput.record(self._client, self._namespace, counts)
        except Exception as exc:
            oldest = int(self._clock()) // 60 - throughput.RETENTION_SECONDS // 60
            with self._lock:
                for key, n in counts.items():
                    if key[0] > oldest:
                        self._counts[key] += n
            log.warning("could not record job throughput", extra={"error": type(exc).__name__})

    def _count(self, message: dramatiq.MessageProxy | dramatiq.Message[Any], outcome: str) -> None:
        key = (
            int(self._clock()) // 60,
            throughput.queue_label(message.queue_name),
            outcome,
        )
        with self._lock:
            self._counts[key] += 1
