"""The scheduler process (SPEC §7).

An APScheduler `BlockingScheduler` runs one tick at start and then every
`ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS`. A tick runs only while this replica holds
the Postgres advisory lock, so two replicas never reconcile at once; the reconcile,
relay and retention passes plug into `TickTasks` as later capabilities add them.
SIGTERM/SIGINT stop the scheduler after the running tick finishes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.exclusive import run_exclusively
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator.scheduler")

LOCK_KEY = "orchestrator:scheduler"

Task = Callable[[Connection[Any]], dict[str, Any]]


@dataclass
class TickTasks:
    """The named passes a tick runs, in order, under the lock."""

    tasks: list[tuple[str, Task]] = field(default_factory=list)


def default_tasks(settings: Settings) -> TickTasks:
    """The passes the scheduler runs every tick: relay stuck events, prune old bodies."""
    from orchestrator.events.relay import prune_bodies, relay_events
    from workers.broker import create_broker, redis_client
    from workers.messages import webhook_event

    broker = create_broker(
        settings, role="web", client=redis_client(settings.redis_dsn, timeout=2.0, retry=False)
    )

    def enqueue(event_id: str) -> None:
        broker.enqueue(webhook_event(event_id))

    return TickTasks(
        [
            (
                "relay_events",
                lambda conn: relay_events(
                    conn, enqueue, older_than_seconds=settings.orchestrator_relay_after_seconds
                ),
            ),
            (
                "prune_bodies",
                lambda conn: prune_bodies(
                    conn, retention_days=settings.orchestrator_event_retention_days
                ),
            ),
        ]
    )


class SchedulerMetrics:
    def __init__(self) -> None:
        self.ticks = Counter(
            "orchestrator_scheduler_ticks_total",
            "Scheduler ticks, by outcome (ran, skipped: another replica held the lock, error)",
            ["outcome"],
        )
        self.duration = Histogram(
            "orchestrator_scheduler_tick_duration_seconds", "Duration of ticks that ran"
        )
        self.last_success = Gauge(
            "orchestrator_scheduler_last_success_timestamp_seconds",
            "Unix time of the last tick that ran to the end",
        )


class Tick:
    """One pass: take the lock or skip, run every task, record the outcome."""

    def __init__(
        self, pool: ConnectionPool[Connection[Any]], tasks: TickTasks, metrics: SchedulerMetrics
    ) -> None:
        self._pool = pool
        self._tasks = tasks
        self._metrics = metrics
        self.running = threading.Event()

    def __call__(self) -> str:
        started = time.perf_counter()
        self.running.set()
        try:
            ran, results = run_exclusively(self._pool, LOCK_KEY, self._run_tasks)
        except Exception:
            self._metrics.ticks.labels("error").inc()
            log.exception("scheduler tick failed")
            return "error"
        finally:
            self.running.clear()
        if not ran:
            self._metrics.ticks.labels("skipped").inc()
            log.info("tick skipped: another scheduler replica holds the lock")
            return "skipped"
        elapsed = time.perf_counter() - started
        self._metrics.ticks.labels("ran").inc()
        self._metrics.duration.observe(elapsed)
        self._metrics.last_success.set_to_current_time()
        log.info("tick ran", extra={"duration_ms": round(elapsed * 1000, 1), "tasks": results})
        return "ran"

    def _run_tasks(self, conn: Connection[Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, task in self._tasks.tasks:
            try:
                results[name] = task(conn)
            except Exception as exc:  # one failing pass never blocks the others
                log.exception("scheduler task failed", extra={"task": name})
                results[name] = {"error": type(exc).__name__}
        return results


def run(settings: Settings, pool: ConnectionPool[Connection[Any]], tasks: TickTasks) -> int:
    """Block until SIGTERM/SIGINT; returns the process exit code."""
    metrics = SchedulerMetrics()
    if settings.orchestrator_scheduler_metrics_port:
        start_http_server(
            settings.orchestrator_scheduler_metrics_port, addr=settings.orchestrator_metrics_host
        )
    tick = Tick(pool, tasks, metrics)
    scheduler = BlockingScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
    )
    scheduler.add_job(
        tick,
        "interval",
        seconds=settings.orchestrator_reconcile_interval_seconds,
        id="tick",
        next_run_time=_now(),
        misfire_grace_time=None,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping scheduler", extra={"signal": signal.Signals(signum).name})
        # shutdown(wait=True) lets a running tick finish; it must not run inside the
        # signal handler's frame of the scheduler's own thread, hence the thread.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "scheduler started",
        extra={
            "interval_seconds": settings.orchestrator_reconcile_interval_seconds,
            "metrics_port": settings.orchestrator_scheduler_metrics_port,
        },
    )
    scheduler.start()
    pool.close()
    log.info("scheduler stopped")
    return 0


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
