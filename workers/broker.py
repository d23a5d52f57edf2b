"""The one broker factory, used by web (to enqueue) and workers (to consume).

The middleware list is explicit and ordered (STYLE: nothing registers itself by
import): limits first, then retries with the transient/permanent policy, the current
message, log context, resources, final-failure recording, liveness and per-minute
throughput for the dashboard, and Prometheus only in worker processes (in an
enqueue-only process it logs AttributeErrors — NOTES; ours releases delayed messages
where they leave the process — workers/middleware/prometheus.py).
"""

from __future__ import annotations

from typing import Any, Literal

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from psycopg import Connection
from psycopg_pool import ConnectionPool
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.queues import QUEUES
from orchestrator.settings import Settings
from workers.middleware.failure_recorder import FailureRecorder
from workers.middleware.heartbeat import WorkerHeartbeat
from workers.middleware.message_context import MessageContext
from workers.middleware.resources import WorkerResources
from workers.middleware.throughput import Throughput
from workers.retry_policy import make_retry_when

ONE_HOUR_MS = 3_600_000
ONE_DAY_MS = 86_400_000


def redis_client(url: str, *, timeout: float = 5.0, retry: bool = True) -> redis.Redis:
    """`retry=False` for the web tier: callers there must answer within seconds."""
    extra: dict[str, Any] = {} if retry else {"retry": Retry(NoBackoff(), 0)}
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 3.0),
        health_check_interval=30,
        **extra,
    )


def create_broker(
    settings: Settings,
    *,
    role: Literal["web", "worker"],
    pool: ConnectionPool[Connection[Any]] | None = None,
    client: redis.Redis | None = None,
    namespace: str | None = None,
    prometheus: bool | None = None,
    min_backoff_ms: int = 1_000,
    max_backoff_ms: int = 300_000,
    heartbeat_timeout_ms: int = 60_000,
    maintenance_chance: int = 1_000,
) -> RedisBroker:
    """A Redis broker with every queue declared.

    `role="worker"` needs `pool` (for failure records) and adds Prometheus unless
    `prometheus=False` (in-process test workers). `namespace` defaults to
    `ORCHESTRATOR_REDIS_NAMESPACE`; tests give each test its own.
    """
    middleware: list[Middleware] = [
        AgeLimit(max_age=ONE_DAY_MS),
        TimeLimit(time_limit=ONE_HOUR_MS),
        ShutdownNotifications(notify_shutdown=True),
        Callbacks(),
        Pipelines(),
        Retries(
            min_backoff=min_backoff_ms,
            max_backoff=max_backoff_ms,
            retry_when=make_retry_when(settings.orchestrator_max_attempts),
        ),
        CurrentMessage(),
        MessageContext(),
    ]
    if role == "worker":
        if pool is None:
            raise ValueError("a worker broker needs the Postgres pool")
        resources = WorkerResources(pool)
        middleware += [
            resources,
            FailureRecorder(resources.open),
            WorkerHeartbeat(namespace or settings.orchestrator_redis_namespace),
            Throughput(namespace or settings.orchestrator_redis_namespace),
        ]
        if prometheus is None or prometheus:
            from workers.middleware.prometheus import Prometheus

            middleware.append(Prometheus())
    broker = RedisBroker(
        client=client or redis_client(settings.redis_dsn),
        namespace=namespace or settings.orchestrator_redis_namespace,
        middleware=middleware,
        # A worker silent this long is dead: its unacknowledged messages go back to the
        # queue at the next maintenance (run on `maintenance_chance` fetches per million).
        heartbeat_timeout=heartbeat_timeout_ms,
        maintenance_chance=maintenance_chance,
        dead_message_ttl=7 * ONE_DAY_MS,
    )
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker
