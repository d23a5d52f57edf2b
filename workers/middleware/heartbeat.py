"""Tell the world this worker process is alive: a Redis key per process, refreshed
every 10 s with a 30 s expiry, removed at a clean shutdown. Each beat also records the
process's name in a sorted set (`workers_key`), so the dashboard reads the liveness keys
by name instead of scanning the keyspace; names silent for an hour leave the set.

Dramatiq's own `__heartbeats__` set cannot answer "how many workers": every process
that merely enqueues (the web tier, the scheduler) writes to it too.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import dramatiq
from dramatiq import Middleware

from orchestrator.queues import worker_key, workers_key

INTERVAL_SECONDS = 10
TTL_SECONDS = 30
FORGET_AFTER_SECONDS = 3600


def record_beat(client: Any, namespace: str, name: str, info: str) -> None:
    """One beat of worker process `name`: its liveness key, and its name in the set."""
    now = time.time()
    registry = workers_key(namespace)
    pipe = client.pipeline(transaction=False)
    pipe.set(worker_key(namespace, name), info, ex=TTL_SECONDS)
    pipe.zadd(registry, {name: now})
    pipe.zremrangebyscore(registry, "-inf", now - FORGET_AFTER_SECONDS)
    pipe.execute()


def forget(client: Any, namespace: str, name: str) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.delete(worker_key(namespace, name))
    pipe.zrem(workers_key(namespace), name)
    pipe.execute()


class WorkerHeartbeat(Middleware):
    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        name = f"{socket.gethostname()}:{os.getpid()}"
        client: Any = broker.client  # type: ignore[attr-defined]
        info = json.dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": sorted(worker.consumer_whitelist or broker.queues),
                "threads": worker.worker_threads,
                "started_at": time.time(),
            }
        )

        def beat() -> None:
            while not self._stop.is_set():
                try:
                    record_beat(client, self._namespace, name, info)
                except Exception:  # noqa: S110 - Redis down: the key simply expires
                    pass
                self._stop.wait(INTERVAL_SECONDS)
            try:
                forget(client, self._namespace, name)
            except Exception:  # noqa: S110
                pass

        self._thread = threading.Thread(target=beat, name="worker-heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
