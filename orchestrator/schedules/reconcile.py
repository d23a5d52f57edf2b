"""One reconcile pass: schedule rows → managed CronJobs (SPEC §7).

Level-triggered and safe to run any number of times. The pass reads every row and
lists the managed CronJobs once (paginated, by the managed-by label — an object without
that label is never listed, so never touched), then compares plain data:

- a row without its object → **create** (POST, so an unmanaged object of the same name
  is refused with 409 instead of being taken over);
- an object whose `spec-hash` annotation differs from the row's desired manifest (the
  row changed, or the pipeline image did), whose `metadata.generation` differs from the
  one this orchestrator last wrote (someone edited the spec), or whose labels differ
  → **apply** (server-side apply with force takes our fields back);
- an object no row wants → **delete**;
- a disabled row is simply a desired manifest with `suspend: true`.

Converged, a pass makes no writes at all, to the cluster or to Postgres. Each row's
outcome is recorded (`synced`, or `error` with the API's message); one failing object
never stops the others. Writes run on a few threads; `should_stop` (SIGTERM) is checked
before each, so a stopping scheduler leaves after the writes in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

from orchestrator.errors import OrchestratorError
from orchestrator.k8s.client import CRONJOB, KubernetesApi, KubernetesConflict
from orchestrator.k8s.naming import MANAGED_BY, MANAGED_BY_KEY, MANAGED_SELECTOR
from orchestrator.schedules import store
from orchestrator.schedules.cronjob import (
    SPEC_HASH_KEY,
    CronJobTemplate,
    cronjob_labels,
    desired_cronjob,
)

log = logging.getLogger("orchestrator.reconcile")


@dataclass
class ReconcileReport:
    rows: int = 0
    listed: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    verified: int = 0
    drift_repaired: int = 0
    errors: int = 0
    unchanged: int = 0
    rows_recorded: int = 0
    stopped: bool = False
    duration_seconds: float = 0.0
    list_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Live:
    """What a pass keeps of a listed object: enough to compare, nothing more."""

    spec_hash: str | None
    generation: int | None
    labels: dict[str, str]
    last_schedule: datetime | None


# Why a write is planned: shown in logs and counted in the report.
CREATE, CHANGED, DRIFT, VERIFY, RECREATE = "create", "changed", "drift", "verify", "recreate"


class _Skipped(Exception):
    """A write not started because the scheduler is stopping."""


@dataclass(frozen=True)
class _Write:
    why: str
    name: str
    row: store.ScheduleRow | None  # None: an orphan to delete


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)


def _live(obj: dict[str, Any]) -> _Live:
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    return _Live(
        spec_hash=(meta.get("annotations") or {}).get(SPEC_HASH_KEY),
        generation=int(generation) if generation is not None else None,
        labels=meta.get("labels") or {},
        last_schedule=_parse_time((obj.get("status") or {}).get("lastScheduleTime")),
    )


class Reconciler:
    """Compares rows with live CronJobs and makes the difference go away."""

    def __init__(
        self,
        api: KubernetesApi,
        template: CronJobTemplate,
        *,
        concurrency: int = 4,
        page_size: int = 2000,
    ) -> None:
        self._api = api
        self._template = template
        self._concurrency = concurrency
        self._page_size = page_size
        # (row id, row updated_at) → (name, spec hash, labels): a row that has not
        # changed since the last pass needs no manifest built to be compared.
        self._desired: dict[tuple[Any, Any], tuple[str, str, dict[str, str]]] = {}

    @property
    def cached_rows(self) -> int:
        """Rows whose desired summary is kept between passes: at most one per row that
        existed at the last pass (a deleted or changed row's entry goes with that pass),
        so the cache is bounded by the schedule population."""
        return len(self._desired)

    def manifest(self, row: store.ScheduleRow) -> dict[str, Any]:
        return desired_cronjob(row, self._template, schedule_id=str(row.id))

    def _summary(self, row: store.ScheduleRow) -> tuple[str, str, dict[str, str]]:
        key = (row.id, row.updated_at)
        summary = self._desired.get(key)
        if summary is None:
            manifest = self.manifest(row)
            meta = manifest["metadata"]
            summary = (meta["name"], meta["annotations"][SPEC_HASH_KEY], cronjob_labels(row))
        return summary

    def __call__(
        self, conn: Connection[Any], should_stop: Callable[[], bool] = lambda: False
    ) -> ReconcileReport:
        started = time.perf_counter()
        report = ReconcileReport()
        # The desired state first: a row committed after this read is picked up by the
        # pass its NOTIFY triggers, never half-seen by this one.
        with conn.transaction():
            rows = list(store.all_rows(conn))
        report.rows = len(rows)
        listing = time.perf_counter()
        live: dict[str, _Live] = {}
        for obj in self._api.list_all(CRONJOB, MANAGED_SELECTOR, page_size=self._page_size):
            live[obj["metadata"]["name"]] = _live(obj)
        report.listed = len(live)
        report.list_seconds = time.perf_counter() - listing

        writes, results = self._plan(rows, live, report)
        results += self._execute(writes, report, should_stop)
        report.rows_recorded = store.record_sync(conn, results)
        report.duration_seconds = time.perf_counter() - started
        return report

    # -- comparing --------------------------------------------------------------------
    def _plan(
        self, rows: list[store.ScheduleRow], live: dict[str, _Live], report: ReconcileReport
    ) -> tuple[list[_Write], list[store.SyncResult]]:
        writes: list[_Write] = []
        wanted: set[str] = set()
        results: list[store.SyncResult] = []
        desired: dict[tuple[Any, Any], tuple[str, str, dict[str, str]]] = {}
        for row in rows:
            name, digest, labels = desired[(row.id, row.updated_at)] = self._summary(row)
            wanted.add(name)
            current = live.get(name)
            if current is None:
                # A row that had an object (a recorded generation) lost it behind our back.
                writes.append(_Write(RECREATE if row.k8s_generation else CREATE, name, row))
                continue
            if current.spec_hash != digest:
                writes.append(_Write(CHANGED, name, row))
                continue
            if row.k8s_generation is None:
                # Never recorded (first pass over a provisioned object, or a crash before
                # the record): apply once to learn the generation; a no-op if equal.
                writes.append(_Write(VERIFY, name, row))
                continue
            if current.generation != row.k8s_generation or any(
                current.labels.get(k) != v for k, v in labels.items()
            ):
                writes.append(_Write(DRIFT, name, row))
                continue
            report.unchanged += 1
            if (
                row.sync_status != "synced"
                or row.k8s_cronjob_name != name
                or (current.last_schedule and current.last_schedule != row.last_run_at)
            ):
                results.append(
                    store.SyncResult(
                        row.id,
                        row.updated_at,
                        "synced",
                        None,
                        name,
                        current.generation,
                        current.last_schedule,
                        wrote=False,
                    )
                )
        writes += [_Write("delete", name, None) for name in live if name not in wanted]
        self._desired = desired  # rows gone or changed drop out of the cache
        return writes, results

    # -- writing ----------------------------------------------------------------------
    def _write(self, write: _Write, should_stop: Callable[[], bool]) -> int | None:
        """The generation the object has after the write (None for a delete): only the
        number is kept, not the answer, so 10,000 creates do not hold 10,000 objects."""
        answer = self._call(write, should_stop)
        generation = ((answer or {}).get("metadata") or {}).get("generation")
        return int(generation) if generation is not None else None

    def _call(self, write: _Write, should_stop: Callable[[], bool]) -> dict[str, Any] | None:
        if should_stop():
            # Checked as each write starts, not when it is queued: every write is queued
            # at once, and a stopping scheduler must leave after those in flight.
            raise _Skipped
        if write.row is None:
            self._api.delete(CRONJOB, write.name)
            return None
        manifest = self.manifest(write.row)
        if write.why in (CREATE, RECREATE):
            try:
                return self._api.create(CRONJOB, manifest)
            except KubernetesConflict:
                # Created since the LIST — by provisioning, which applies a schedule's
                # CronJob itself. Ours (managed-by label) → converge it; anyone else's
                # → the conflict stands.
                current = self._api.read(CRONJOB, write.name)
                labels = ((current or {}).get("metadata") or {}).get("labels") or {}
                if current is None or labels.get(MANAGED_BY_KEY) != MANAGED_BY:
                    raise
                return self._api.apply(CRONJOB, manifest)
        return self._api.apply(CRONJOB, manifest)

    def _execute(
        self, writes: list[_Write], report: ReconcileReport, should_stop: Callable[[], bool]
    ) -> list[store.SyncResult]:
        results: list[store.SyncResult] = []
        if not writes:
            return results
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="reconcile") as pool:
            futures: list[tuple[_Write, Future[int | None]]] = []
            for write in writes:
                futures.append((write, pool.submit(self._write, write, should_stop)))
            for write, future in futures:
                try:
                    generation = future.result()
                except _Skipped:
                    report.stopped = True
                    continue
                except OrchestratorError as exc:
                    report.errors += 1
                    results += self._failed(write, exc)
                    continue
                self._count(write, report)
                if write.row is not None:
                    results.append(
                        store.SyncResult(
                            write.row.id,
                            write.row.updated_at,
                            "synced",
                            None,
                            write.name,
                            generation,
                            None,
                            wrote=True,
                        )
                    )
        return results

    @staticmethod
    def _count(write: _Write, report: ReconcileReport) -> None:
        if write.row is None:
            report.deleted += 1
        elif write.why in (CREATE, RECREATE):
            report.created += 1
        elif write.why == VERIFY:
            report.verified += 1
        else:
            report.updated += 1
        if write.why in (DRIFT, RECREATE):
            report.drift_repaired += 1
            log.info("drift repaired", extra={"cronjob": write.name, "why": write.why})

    @staticmethod
    def _failed(write: _Write, exc: OrchestratorError) -> list[store.SyncResult]:
        message = str(exc)
        if isinstance(exc, KubernetesConflict) and write.why in (CREATE, RECREATE):
            message = (
                f"a CronJob named {write.name!r} already exists without the managed-by"
                " label; the orchestrator does not take over objects it does not manage"
            )
        log.warning(
            "reconcile write failed",
            extra={"why": write.why, "cronjob": write.name, "reason": exc.reason},
        )
        if write.row is None:
            return []
        return [
            store.SyncResult(
                write.row.id,
                write.row.updated_at,
                "error",
                message[:2000],
                write.name,
                write.row.k8s_generation,
                None,
                wrote=False,
            )
        ]
