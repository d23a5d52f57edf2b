"""The scheduler process (SPEC §7).

An APScheduler `BlockingScheduler` runs one tick at start and then every
`ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS`. A tick runs only while this replica holds
the Postgres advisory lock, so two replicas never reconcile at once. A tick runs the
passes of `TickTasks`: relay stuck events and runs, prune old webhook bodies, reconcile
schedules with CronJobs (orchestrator/schedules/). A committed schedule change wakes
the scheduler at once through `LISTEN orchestrator_schedules`. SIGTERM/SIGINT stop it
after the writes in flight of the running tick.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.exclusive import run_exclusively
from orchestrator.k8s.client import KubernetesApi
from orchestrator.schedules.cronjob import template_from_settings
from orchestrator.schedules.listener import ChangeListener
from orchestrator.schedules.reconcile import Reconciler, ReconcileReport
from orchestrator.settings import InvalidSetting, Settings

log = logging.getLogger("orchestrator.scheduler")

LOCK_KEY = "orchestrator:scheduler"

Task = Callable[[Connection[Any]], dict[str, Any]]


@dataclass
class TickTasks:
    """The named passes a tick runs, in order, under the lock. `stopping` is set on
    SIGTERM; long passes check it between writes. `on_report` receives each task's
    result (the reconcile report feeds the metrics)."""

    tasks: list[tuple[str, Task]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    close: Callable[[], None] = lambda: None


def kubernetes_api(settings: Settings) -> KubernetesApi:
    """The cluster client, or one line saying why there is none (exit 2)."""
    try:
        return KubernetesApi.from_kubeconfig(
            settings.kubeconfig,
            settings.k8s_namespace,
            timeout_seconds=max(settings.orchestrator_peer_timeout_seconds, 10.0),
        )
    except Exception as exc:  # ConfigException, a missing or unreadable kubeconfig
        where = f"KUBECONFIG={settings.kubeconfig}" if settings.kubeconfig else "in-cluster"
        raise InvalidSetting(
            "no usable Kubernetes configuration (set KUBECONFIG, or run in a cluster with"
            f" a service account); tried {where}: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def default_tasks(settings: Settings, metrics: SchedulerMetrics | None = None) -> TickTasks:
    """The passes of every tick: relay stuck events and runs, prune old bodies, then
    reconcile schedules with CronJobs (last, so its row updates commit at once)."""
    from orchestrator.events.relay import prune_bodies, relay_events, relay_runs
    from workers.broker import create_broker, redis_client
    from workers.messages import agent_run, provisioning_run, webhook_event

    broker = create_broker(
        settings, role="web", client=redis_client(settings.redis_dsn, timeout=2.0, retry=False)
    )
    api = kubernetes_api(settings)
    reconciler = Reconciler(api, template_from_settings(settings))
    stopping = threading.Event()
    older = settings.orchestrator_relay_after_seconds

    def reconcile(conn: Connection[Any]) -> dict[str, Any]:
        report = reconciler(conn, should_stop=stopping.is_set)
        if metrics is not None:
            metrics.observe_reconcile(report)
        return report.as_dict()

    return TickTasks(
        [
            (
                "relay_events",
                lambda conn: relay_events(
                    conn, lambda i: broker.enqueue(webhook_event(i)), older_than_seconds=older
                ),
            ),
            (
                "relay_runs",
                lambda conn: relay_runs(
                    conn,
                    provisioning=lambda i: broker.enqueue(provisioning_run(i)),
                    agent=lambda i: broker.enqueue(agent_run(i)),
                    older_than_seconds=older,
                ),
            ),
            (
                "prune_bodies",
                lambda conn: prune_bodies(
                    conn, retention_days=settings.orchestrator_event_retention_days
                ),
            ),
            ("reconcile", reconcile),
        ],
        stopping=stopping,
        close=api.close,
    )


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else REGISTRY
        self.ticks = Counter(
            "orchestrator_scheduler_ticks_total",
            "Scheduler ticks, by outcome (ran, skipped: another replica held the lock, error)",
            ["outcome"],
            registry=reg,
        )
        self.duration = Histogram(
            "orchestrator_scheduler_tick_duration_seconds",
            "Duration of ticks that ran",
            registry=reg,
        )
        self.last_success = Gauge(
            "orchestrator_scheduler_last_success_timestamp_seconds",
            "Unix time of the last tick that ran to the end",
            registry=reg,
        )
        self.reconcile_duration = Histogram(
            "orchestrator_reconcile_duration_seconds",
            "Duration of reconcile passes",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=reg,
        )
        self.reconcile_objects = Counter(
            "orchestrator_reconcile_objects_total",
            "CronJob writes by the reconciler, by action (created, updated, deleted)",
            ["action"],
            registry=reg,
        )
        self.drift_repaired = Counter(
            "orchestrator_reconcile_drift_repaired_total",
            "CronJobs edited or deleted behind the orchestrator's back and put right",
            registry=reg,
        )
        self.reconcile_errors = Counter(
            "orchestrator_reconcile_errors_total",
            "CronJob writes the API refused or did not answer",
            registry=reg,
        )
        self.reconcile_last_success = Gauge(
            "orchestrator_reconcile_last_success_timestamp_seconds",
            "Unix time of the last reconcile pass that finished",
            registry=reg,
        )
        self.schedules = Gauge(
            "orchestrator_reconcile_schedules", "Schedule rows seen by the last pass", registry=reg
        )

    def observe_reconcile(self, report: ReconcileReport) -> None:
        self.reconcile_duration.observe(report.duration_seconds)
        self.reconcile_objects.labels("created").inc(report.created)
        self.reconcile_objects.labels("updated").inc(report.updated)
        self.reconcile_objects.labels("deleted").inc(report.deleted)
        self.drift_repaired.inc(report.drift_repaired)
        self.reconcile_errors.inc(report.errors)
        self.schedules.set(report.rows)
        if not report.stopped:
            self.reconcile_last_success.set_to_current_time()


class Tick:
    """One pass: take the lock or skip, run every task, record the outcome. A wake
    (`request_rerun`) that arrives while a pass runs makes the tick run once more, so a
    schedule change committed mid-pass is never left for the next interval."""

    def __init__(
        self, pool: ConnectionPool[Connection[Any]], tasks: TickTasks, metrics: SchedulerMetrics
    ) -> None:
        self._pool = pool
        self._tasks = tasks
        self._metrics = metrics
        self.running = threading.Event()
        self._rerun = threading.Event()

    def request_rerun(self) -> None:
        self._rerun.set()

    def __call__(self) -> str:
        outcome = "skipped"
        for _ in range(5):  # bounded: a storm of changes cannot pin the scheduler
            self._rerun.clear()
            outcome = self._once()
            if not self._rerun.is_set() or self._tasks.stopping.is_set():
                break
        return outcome

    def _once(self) -> str:
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
            if self._tasks.stopping.is_set():
                break
            try:
                with conn.transaction():  # a failing pass rolls back alone
                    results[name] = task(conn)
            except Exception as exc:  # one failing pass never blocks the others
                log.exception("scheduler task failed", extra={"task": name})
                results[name] = {"error": type(exc).__name__}
        return results


def run(
    settings: Settings,
    pool: ConnectionPool[Connection[Any]],
    tasks: TickTasks,
    metrics: SchedulerMetrics | None = None,
) -> int:
    """Block until SIGTERM/SIGINT; returns the process exit code."""
    metrics = metrics or SchedulerMetrics()
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

    def on_change() -> None:
        tick.request_rerun()
        if not tick.running.is_set() and scheduler.running:
            scheduler.modify_job("tick", next_run_time=_now())

    listener = ChangeListener(settings.dsn, on_change).start()

    def shut_down() -> None:
        # A signal that arrives before `scheduler.start()` below must still stop it.
        deadline = time.monotonic() + 30
        while not scheduler.running and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(SchedulerNotRunningError):
            scheduler.shutdown(wait=True)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping scheduler", extra={"signal": signal.Signals(signum).name})
        tasks.stopping.set()
        # shutdown(wait=True) lets a running tick finish (its reconcile stops after the
        # writes in flight); it must not run inside the signal handler's frame of the
        # scheduler's own thread, hence the thread.
        threading.Thread(target=shut_down, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Only now: a metrics answer then also means SIGTERM stops this process gracefully.
    if settings.orchestrator_scheduler_metrics_port:
        start_http_server(
            settings.orchestrator_scheduler_metrics_port, addr=settings.orchestrator_metrics_host
        )
    log.info(
        "scheduler started",
        extra={
            "interval_seconds": settings.orchestrator_reconcile_interval_seconds,
            "metrics_port": settings.orchestrator_scheduler_metrics_port,
            "namespace": settings.k8s_namespace,
        },
    )
    scheduler.start()
    listener.stop()
    tasks.close()
    pool.close()
    log.info("scheduler stopped")
    return 0


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
