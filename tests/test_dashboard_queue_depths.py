"""Queue depths (`/api/v1/admin/jobs/queues`, the dashboard's queue table) read known
keys only — no SCAN or KEYS, however large the keyspace — and give the same answers the
keyspace scan gave: checked against a real Dramatiq worker on real Redis, with messages
ready, delayed, in flight and dead-lettered, and live, stopped and silent workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

from orchestrator.db.pool import create_pool
from orchestrator.dead_letters import QueueDepth, queue_depths
from orchestrator.queues import QUEUES, dead_key, delayed_key, queue_key, worker_key
from orchestrator.settings import Settings
from tests.webhook_support import wait_for
from workers.broker import create_broker
from workers.middleware.heartbeat import forget, record_beat


def scanned_depths(client: Any, namespace: str) -> tuple[list[QueueDepth], int]:
    """The previous implementation, kept as the reference: every `__acks__` and worker
    key found by scanning the keyspace."""
    in_progress: dict[str, int] = dict.fromkeys(QUEUES, 0)
    for key in client.scan_iter(match=f"{namespace}:__acks__.*", count=500):
        name = key.decode()
        queue = name.rsplit(".", 1)[-1] if not name.endswith(".DQ") else name.rsplit(".", 2)[-2]
        if queue in in_progress:
            in_progress[queue] += int(client.scard(key))
    depths = [
        QueueDepth(
            q,
            client.llen(queue_key(namespace, q)),
            client.llen(delayed_key(namespace, q)),
            in_progress[q],
            client.zcard(dead_key(namespace, q)),
        )
        for q in QUEUES
    ]
    workers = client.scan_iter(match=f"{namespace}:__orchestrator_workers__:*", count=500)
    return depths, sum(1 for _ in workers)


class NoKeyspaceScan:
    """A Redis client that refuses the commands that walk the keyspace."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name in ("scan", "scan_iter", "keys"):
            raise AssertionError(f"queue depths used {name.upper()}")
        return getattr(self._client, name)


@pytest.fixture
def live_broker(settings: Settings, namespace: str) -> Iterator[dramatiq.Broker]:
    """The production worker broker (heartbeat middleware included) on this test's
    namespace; a ValueError is permanent, so a failing message dead-letters at once."""
    pool = create_pool(settings, name="test-depths")
    broker = create_broker(settings, role="worker", pool=pool, prometheus=False)
    yield broker
    broker.close()
    pool.close()


def test_depths_from_known_keys_equal_the_keyspace_scan_on_a_live_broker(
    live_broker: dramatiq.Broker, services: Any, namespace: str
) -> None:
    r = services.redis
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(30)

    def explode() -> None:
        raise ValueError("permanent")

    hold_actor = dramatiq.actor(hold, broker=live_broker, queue_name="webhooks", actor_name="hold")
    explode_actor = dramatiq.actor(
        explode, broker=live_broker, queue_name="provisioning", actor_name="explode"
    )
    idle_actor = dramatiq.actor(
        lambda: None, broker=live_broker, queue_name="default", actor_name="idle"
    )
    # Ready on a queue nobody consumes, delayed, and a dead letter.
    for _ in range(3):
        idle_actor.send()
    idle_actor.send_with_options(delay=600_000)
    live_broker.enqueue(
        dramatiq.Message(queue_name="agents", actor_name="idle", args=(), kwargs={}, options={}),
        delay=600_000,
    )
    live_broker.emit_after("process_boot")
    worker = dramatiq.Worker(
        live_broker, queues={"webhooks", "provisioning"}, worker_threads=2, worker_timeout=50
    )
    worker.start()
    try:
        # The dead letter first: once both threads hold, nothing else would run.
        explode_actor.send()
        wait_for(lambda: r.zcard(dead_key(namespace, "provisioning")) == 1)
        for _ in range(5):
            hold_actor.send()
        for _ in range(2):  # both threads are busy: the rest waits prefetched or queued
            assert started.acquire(timeout=10)
        wait_for(lambda: queue_depths(r, namespace)[1] == 1)
        # A worker that stopped cleanly and one whose key expired: neither is alive.
        record_beat(r, namespace, "gone:1", "{}")
        forget(r, namespace, "gone:1")
        record_beat(r, namespace, "silent:2", "{}")
        r.delete(worker_key(namespace, "silent:2"))

        depths, workers = queue_depths(NoKeyspaceScan(r), namespace)
        assert (depths, workers) == scanned_depths(r, namespace)
        by_name = {d.name: d for d in depths}
        assert workers == 1
        assert by_name["webhooks"].ready + by_name["webhooks"].in_progress == 5
        assert by_name["webhooks"].in_progress >= 2
        assert (by_name["default"].ready, by_name["default"].delayed) == (3, 1)
        assert by_name["agents"].delayed == 1
        assert (by_name["provisioning"].dead, by_name["provisioning"].in_progress) == (1, 0)
    finally:
        release.set()
        worker.stop()
    # Drained: nothing in flight, and the worker left the count at its clean stop.
    depths, workers = queue_depths(NoKeyspaceScan(r), namespace)
    assert (depths, workers) == scanned_depths(r, namespace)
    assert workers == 0
    assert sum(d.in_progress for d in depths) == 0


def test_depths_of_an_idle_namespace_cost_one_round_trip(services: Any, namespace: str) -> None:
    calls: list[int] = []
    real = services.redis

    class Counting(NoKeyspaceScan):
        def pipeline(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return real.pipeline(*args, **kwargs)

    depths, workers = queue_depths(Counting(real), namespace)
    assert workers == 0 and [d.name for d in depths] == list(QUEUES)
    assert all((d.ready, d.delayed, d.in_progress, d.dead) == (0, 0, 0, 0) for d in depths)
    assert len(calls) == 1  # no consumer, no worker: nothing more to read
