"""The worker's Prometheus middleware keeps nothing per message once a message has left
the process: a delayed message re-enqueued by one worker process and run by another
(what happens to every throttled event, waiting provisioning run and retry when there
are several processes) left its id in Dramatiq's `delayed_messages` set for good and
its gauge raised (upstream Bogdanp/dramatiq#672)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from tests.webhook_support import wait_for
from workers.broker import create_broker, redis_client
from workers.middleware.prometheus import Prometheus

ACTOR = "later"


@pytest.fixture(autouse=True)
def _restore_metrics_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # The middleware's boot points these at its own directory; set here, they are put
    # back as they were after the test, so no other test inherits that.
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        monkeypatch.setenv(name, str(tmp_path))


def booted() -> Prometheus:
    middleware = Prometheus()
    middleware.after_process_boot(None)  # type: ignore[no-untyped-call]
    return middleware


def delayed_gauge(middleware: Prometheus, queue: str) -> float:
    return sum(
        sample.value
        for metric in middleware.inprogress_delayed_messages.collect()
        for sample in metric.samples
        if sample.labels == {"queue_name": queue, "actor_name": ACTOR}
    )


def test_a_delayed_message_run_by_another_process_is_released_where_it_was_delayed() -> None:
    """The hooks in the order `dramatiq.worker` calls them: process A takes the message
    off the delay queue and holds it until its eta, puts it back on its queue and acks
    the delay-queue copy; process B then runs it."""
    a, b = booted(), booted()
    broker = StubBroker()  # the hooks' first argument; none of them uses it
    held: dramatiq.Message[Any] = dramatiq.Message(
        queue_name="webhooks.DQ", actor_name=ACTOR, args=(), kwargs={}, options={"eta": 1}
    )
    ready = held.copy(queue_name="webhooks")
    before = delayed_gauge(a, "webhooks.DQ")

    a.before_delay_message(broker, held)  # type: ignore[no-untyped-call]
    assert held.message_id in a.delayed_messages
    assert delayed_gauge(a, "webhooks.DQ") == before + 1
    a.after_ack(broker, held)
    b.before_process_message(broker, ready)
    b.after_process_message(broker, ready)  # type: ignore[no-untyped-call]
    b.after_ack(broker, ready)

    assert a.delayed_messages == set() and b.delayed_messages == set()
    assert delayed_gauge(a, "webhooks.DQ") == before
    assert b.message_start_times == {} and a.message_start_times == {}


@pytest.fixture
def ran() -> list[int]:
    return []


@pytest.fixture
def two_processes(
    redis_url: str, namespace: str, ran: list[int]
) -> Iterator[list[tuple[Any, Prometheus]]]:
    """Two brokers, each with its own middleware and worker, on one Redis namespace: two
    worker processes as far as the middleware can tell."""
    started: list[tuple[RedisBroker, dramatiq.Worker, Prometheus]] = []
    for _ in range(2):
        middleware = Prometheus()
        broker = RedisBroker(client=redis_client(redis_url), namespace=namespace)  # type: ignore[no-untyped-call]
        broker.add_middleware(middleware)

        @dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name="webhooks")
        def later(n: int) -> None:
            ran.append(n)

        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
        worker.start()
        started.append((broker, worker, middleware))
    yield [(broker, middleware) for broker, _, middleware in started]
    for broker, worker, _ in started:
        worker.stop()
        broker.close()


def test_delayed_messages_leave_nothing_behind_in_either_process(
    two_processes: list[tuple[Any, Prometheus]], ran: list[int]
) -> None:
    (sender, first), (_, second) = two_processes
    for n in range(60):
        sender.get_actor(ACTOR).send_with_options(args=(n,), delay=10)
    wait_for(lambda: len(ran) == 60, timeout=30)
    time.sleep(0.3)  # the last delay-queue acks
    # Before the fix about half the ids (those run by the other process) stayed.
    assert first.delayed_messages == set() and second.delayed_messages == set()
    assert first.message_start_times == {} and second.message_start_times == {}


def test_the_worker_broker_uses_this_middleware(settings: Any) -> None:
    from orchestrator.db.pool import create_pool

    pool = create_pool(settings, name="test-prometheus")
    broker = create_broker(settings, role="worker", pool=pool)
    try:
        assert any(type(m) is Prometheus for m in broker.middleware)
    finally:
        broker.close()
        pool.close()
