"""The reconciler against the Kubernetes API stand-in, through the official client:
rows become CronJobs, and every way the two can disagree is put right — a manual edit,
a CronJob deleted behind its back, a changed or disabled row, a deleted row — while an
object without the managed-by label is never touched and one failing object never
holds up the others. Converged, a pass writes nothing anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client as k8s

from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.k8s.client import CRONJOB, KubernetesApi
from orchestrator.k8s.naming import cronjob_name
from orchestrator.schedules import store
from orchestrator.schedules.cronjob import CronJobTemplate
from orchestrator.schedules.model import ScheduleCreate, ScheduleUpdate
from orchestrator.schedules.reconcile import Reconciler, ReconcileReport
from tests.conftest import K8S_NAMESPACE

TEMPLATE = CronJobTemplate(
    namespace=K8S_NAMESPACE, image="pipeline:1.0", config_service_url="http://config:8080"
)
NS = K8S_NAMESPACE


@pytest.fixture
def api(kubeconfig: str) -> Iterator[KubernetesApi]:
    built = KubernetesApi.from_kubeconfig(kubeconfig, NS, timeout_seconds=5)
    yield built
    built.close()


class Harness:
    def __init__(self, services: Any, api: KubernetesApi, kube: KubernetesStandIn) -> None:
        self.pool = services.pool
        self.api = api
        self.kube = kube
        self.reconciler = Reconciler(api, TEMPLATE, page_size=2)

    def add(self, team: str, kind: str = "ingestion", **fields: Any) -> store.Schedule:
        body = ScheduleCreate(schedule_type=kind, cron_expression="0 * * * *", **fields)
        with self.pool.connection() as conn:
            return store.create(conn, "acme", team, body)

    def change(self, schedule: store.Schedule, **fields: Any) -> None:
        with self.pool.connection() as conn:
            store.update(
                conn, "acme", schedule.team_node_id, schedule.schedule_id, ScheduleUpdate(**fields)
            )

    def run(self) -> ReconcileReport:
        with self.pool.connection() as conn, conn.transaction():
            return self.reconciler(conn)

    def row(self, schedule: store.Schedule) -> store.Schedule:
        with self.pool.connection() as conn:
            found = store.get(conn, "acme", schedule.team_node_id, schedule.schedule_id)
        assert found is not None
        return found

    def cronjob(self, schedule: store.Schedule) -> dict[str, Any] | None:
        name = cronjob_name("acme", schedule.team_node_id, schedule.schedule_type)
        return self.kube.get_object("CronJob", NS, name)

    def writes(self) -> int:
        return sum(self.kube.writes.values())


@pytest.fixture
def h(services: Any, api: KubernetesApi, kube: KubernetesStandIn) -> Harness:
    return Harness(services, api, kube)


def test_creates_missing_cronjobs_records_sync_then_writes_nothing(h: Harness) -> None:
    schedules = [h.add("payments"), h.add("payments", "eval"), h.add("search")]
    report = h.run()
    assert (report.rows, report.created, report.errors) == (3, 3, 0)
    for schedule in schedules:
        obj = h.cronjob(schedule)
        assert obj is not None
        kubernetes_validate.validate(obj, "1.31", strict=True)
        assert obj["metadata"]["annotations"]["incidentfox.io/schedule-id"] == str(
            schedule.schedule_id
        )
        row = h.row(schedule)
        assert row.sync_status == "synced" and row.sync_error is None
        assert row.last_synced_at is not None
        assert row.k8s_cronjob_name == obj["metadata"]["name"]

    before = h.writes()
    calls_before = len(h.kube.calls)
    again = h.run()
    assert h.writes() == before  # converged: no write to the cluster…
    assert again.rows_recorded == 0  # …nor to Postgres
    assert again.unchanged == 3
    lists = [c for c in h.kube.calls[calls_before:] if c.method == "GET"]
    assert len(lists) == 2  # 3 objects in pages of 2: one listing pass, no per-object read
    assert all(c.path.endswith("/cronjobs") for c in lists)


def test_a_manual_edit_is_repaired(h: Harness) -> None:
    schedule = h.add("payments")
    h.run()
    name = h.cronjob(schedule)["metadata"]["name"]  # type: ignore[index]
    # What `kubectl edit` does: a merge patch by another field manager.
    k8s.BatchV1Api(h.api._client).patch_namespaced_cron_job(
        name, NS, {"spec": {"schedule": "*/1 * * * *", "suspend": True}}
    )
    assert h.cronjob(schedule)["spec"]["schedule"] == "*/1 * * * *"  # type: ignore[index]
    report = h.run()
    assert (report.drift_repaired, report.updated) == (1, 1)
    repaired = h.cronjob(schedule)
    assert repaired is not None
    assert (repaired["spec"]["schedule"], repaired["spec"]["suspend"]) == ("0 * * * *", False)
    before = h.writes()
    assert h.run().unchanged == 1 and h.writes() == before


def test_a_cronjob_deleted_behind_its_back_comes_back(h: Harness) -> None:
    schedule = h.add("payments")
    h.run()
    h.kube.delete_object("CronJob", NS, h.row(schedule).k8s_cronjob_name or "")
    report = h.run()
    assert (report.created, report.drift_repaired) == (1, 1)
    assert h.cronjob(schedule) is not None


def test_row_changes_flow_to_the_cronjob(h: Harness) -> None:
    schedule = h.add("payments", timezone="UTC")
    h.run()
    h.change(schedule, cron_expression="30 2 * * *", timezone="Europe/Berlin")
    assert h.row(schedule).sync_status == "pending"
    report = h.run()
    assert (report.updated, report.drift_repaired) == (1, 0)
    spec = h.cronjob(schedule)["spec"]  # type: ignore[index]
    assert (spec["schedule"], spec["timeZone"]) == ("30 2 * * *", "Europe/Berlin")
    assert h.row(schedule).sync_status == "synced"

    h.change(schedule, enabled=False)
    h.run()
    assert h.cronjob(schedule)["spec"]["suspend"] is True  # type: ignore[index]
    h.change(schedule, enabled=True)
    h.run()
    assert h.cronjob(schedule)["spec"]["suspend"] is False  # type: ignore[index]


def test_a_deleted_row_takes_its_cronjob_with_it(h: Harness) -> None:
    keep, drop = h.add("payments"), h.add("search")
    h.run()
    with h.pool.connection() as conn:
        store.delete(conn, "acme", "search", drop.schedule_id)
    report = h.run()
    assert report.deleted == 1
    assert h.cronjob(drop) is None and h.cronjob(keep) is not None


def test_the_per_row_cache_forgets_deleted_and_changed_rows(h: Harness) -> None:
    """The scheduler runs for months while tenants come and go: its cache of desired
    summaries must hold the rows that exist now, not every row it ever saw."""
    schedules = [h.add(f"team-{i}") for i in range(5)]
    h.run()
    assert h.reconciler.cached_rows == 5
    with h.pool.connection() as conn:
        for gone in schedules[:3]:
            store.delete(conn, "acme", gone.team_node_id, gone.schedule_id)
    assert h.run().deleted == 3
    assert h.reconciler.cached_rows == 2
    h.change(schedules[3], cron_expression="15 * * * *")
    h.run()
    h.run()
    assert h.reconciler.cached_rows == 2  # the changed row's old version is gone too
    for _ in range(3):  # a tenant added and removed again and again: no growth
        again = h.add("churn")
        h.run()
        with h.pool.connection() as conn:
            store.delete(conn, "acme", "churn", again.schedule_id)
        h.run()
    assert h.reconciler.cached_rows == 2


def test_objects_without_the_managed_by_label_are_never_touched(h: Harness) -> None:
    schedule = h.add("payments")
    taken = cronjob_name("acme", "payments", "ingestion")
    foreign = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "someone-elses", "labels": {"team": "infra"}},
        "spec": {
            "schedule": "0 0 * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "x", "image": "busybox"}],
                        }
                    }
                }
            },
        },
    }
    h.kube.put_object("CronJob", NS, foreign)
    squatter = {**foreign, "metadata": {"name": taken, "labels": {"team": "infra"}}}
    h.kube.put_object("CronJob", NS, squatter)
    versions = {
        n: h.kube.get_object("CronJob", NS, n)["metadata"]["resourceVersion"]  # type: ignore[index]
        for n in ("someone-elses", taken)
    }
    report = h.run()
    assert report.deleted == 0 and report.errors == 1
    for name, version in versions.items():
        obj = h.kube.get_object("CronJob", NS, name)
        assert obj is not None and obj["metadata"]["resourceVersion"] == version
    row = h.row(schedule)
    assert row.sync_status == "error"
    assert "without the managed-by label" in (row.sync_error or "")


def test_one_failing_object_never_blocks_the_others(h: Harness) -> None:
    schedules = [h.add(team) for team in ("alpha", "bravo", "charlie")]
    broken = cronjob_name("acme", "bravo", "ingestion")
    h.kube.fail_object(broken, 500)
    report = h.run()
    assert (report.created, report.errors) == (2, 1)
    states = {s.team_node_id: h.row(s) for s in schedules}
    assert states["alpha"].sync_status == states["charlie"].sync_status == "synced"
    assert states["bravo"].sync_status == "error"
    assert "500" in (states["bravo"].sync_error or "")

    h.kube.clear_object_faults()
    assert h.run().created == 1
    assert h.row(schedules[1]).sync_status == "synced"


def test_rbac_refusal_is_recorded_with_what_to_grant(h: Harness) -> None:
    schedule = h.add("payments")
    h.kube.fail_object(cronjob_name("acme", "payments", "ingestion"), 403)
    h.run()
    error = h.row(schedule).sync_error or ""
    assert "403" in error and "get/list/create/patch/delete on cronjobs" in error


def test_a_listing_failure_fails_the_pass_and_changes_no_row(h: Harness) -> None:
    schedule = h.add("payments")
    h.kube.set_faults(status=503, times=1)
    with pytest.raises(Exception, match="503"):
        h.run()
    assert h.row(schedule).sync_status == "pending"
    h.kube.clear_faults()
    assert h.run().created == 1


def test_a_cronjob_created_by_someone_of_ours_since_the_list_is_converged_not_refused(
    h: Harness,
) -> None:
    """Provisioning applies a schedule's CronJob itself; a pass that listed before it did
    meets a 409 on create. Managed-by label present: that is ours, so apply, no error."""
    schedule = h.add("payments")
    manifest = h.reconciler.manifest(next(r for r in _rows(h) if r.id == schedule.schedule_id))
    original_list = h.api.list_all

    def list_then_someone_creates(*args: Any, **kwargs: Any) -> Any:
        items = list(original_list(*args, **kwargs))
        h.api.apply(CRONJOB, manifest)  # lands between our LIST and our POST
        return iter(items)

    h.api.list_all = list_then_someone_creates  # type: ignore[method-assign]
    report = h.run()
    assert report.errors == 0
    assert h.row(schedule).sync_status == "synced"


def _rows(h: Harness) -> list[store.ScheduleRow]:
    with h.pool.connection() as conn, conn.transaction():
        return list(store.all_rows(conn))
