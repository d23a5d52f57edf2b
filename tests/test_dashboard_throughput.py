"""Per-minute job counts for the dashboard's charts: the worker middleware counts real
messages processed by an in-process Dramatiq worker against real Redis; several
processes share one bucket; a Redis outage loses nothing; the buckets stay bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.dashboard import throughput
from orchestrator.db.pool import create_pool
from orchestrator.errors import PeerRejected
from orchestrator.settings import Settings
from tests.webhook_support import wait_for
from workers.broker import create_broker
from workers.middleware.throughput import Throughput


@pytest.fixture
def worker_broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    pool = create_pool(settings, name="test-throughput")
    broker = create_broker(
        settings.model_copy(update={"orchestrator_max_attempts": 2}),
        role="worker",
        pool=pool,
        prometheus=False,
        min_backoff_ms=10,
        max_backoff_ms=20,
    )
    yield broker
    broker.close()
    pool.close()


def test_a_worker_counts_processed_failed_and_dead_messages(
    worker_broker: dramatiq.Broker, services: Any, namespace: str
) -> None:
    @dramatiq.actor(broker=worker_broker, queue_name="agents", actor_name="fine")
    def fine() -> None:
        pass

    @dramatiq.actor(broker=worker_broker, queue_name="webhooks", actor_name="broken")
    def broken() -> None:
        raise PeerRejected("refused for good")

    worker_broker.emit_after("process_boot")
    worker = dramatiq.Worker(worker_broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        for _ in range(5):
            fine.send()
        broken.send()

        def counted() -> throughput.Series | None:
            s = throughput.series(services.redis, namespace, now=time.time(), minutes=2)
            return s if (sum(s.ok), sum(s.failed), sum(s.dead)) == (5, 1, 1) else None

        assert wait_for(counted, timeout=10)
    finally:
        worker.stop()
    keys = list(services.redis.scan_iter(match=f"{namespace}:__orchestrator_throughput__:*"))
    assert keys
    fields = set().union(*(services.redis.hkeys(k) for k in keys))
    assert fields <= {b"agents:ok", b"webhooks:failed", b"webhooks:dead"}
    assert all(0 < services.redis.ttl(k) <= throughput.RETENTION_SECONDS for k in keys)


class _Broker:
    def __init__(self, client: Any) -> None:
        self.client = client


class _Worker:
    pass


def _message(queue: str) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue, actor_name="a", args=(), kwargs={}, options={})


def test_several_processes_add_to_the_same_minute(services: Any, namespace: str) -> None:
    clock = lambda: 1_800_000_000.0  # noqa: E731
    a = Throughput(namespace, clock=clock)
    b = Throughput(namespace, clock=clock)
    for m in (a, b):
        m._client = services.redis
    for _ in range(3):
        a.after_process_message(None, _message("webhooks"))  # type: ignore[arg-type]
    b.after_process_message(None, _message("webhooks.DQ"))  # type: ignore[arg-type]
    b.after_process_message(None, _message("mystery"), exception=ValueError())  # type: ignore[arg-type]
    a.flush()
    b.flush()
    bucket = services.redis.hgetall(throughput.bucket_key(namespace, int(clock()) // 60))
    assert bucket == {b"webhooks:ok": b"4", b"other:failed": b"1"}
    series = throughput.series(services.redis, namespace, now=clock(), minutes=3)
    assert series.ok == [0, 0, 4] and series.failed == [0, 0, 1]
    assert series.minutes[-1] == int(clock()) // 60 * 60


def test_counts_survive_a_redis_outage_and_flush_at_shutdown(
    redis_url: str, namespace: str
) -> None:
    up = redis_lib.Redis.from_url(redis_url)
    down = redis_lib.Redis(
        host="127.0.0.1", port=9, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    middleware = Throughput(namespace, interval=3600)
    middleware.after_worker_boot(_Broker(down), _Worker())  # type: ignore[arg-type]
    middleware.after_process_message(None, _message("agents"))  # type: ignore[arg-type]
    middleware.after_nack(None, _message("agents"))  # type: ignore[arg-type]
    middleware.flush()  # Redis down: kept for the next flush
    middleware._client = up
    middleware.before_worker_shutdown(None, _Worker())  # type: ignore[arg-type]
    s = throughput.series(up, namespace, now=time.time(), minutes=2)
    assert (sum(s.ok), sum(s.dead)) == (1, 1)
    up.close()
