"""The real scheduler process against the Kubernetes API stand-in: a schedule change
reaches the cluster within seconds although the interval is long (LISTEN/NOTIFY), two
replicas never write the same object twice, SIGTERM in the middle of a pass ends the
process promptly and the next replica finishes the job, and the reconcile metrics are
on the scheduler's port."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.schedules import store
from orchestrator.schedules.model import ScheduleCreate, ScheduleUpdate
from tests.conftest import (
    K8S_NAMESPACE,
    ORCHESTRATOR_BIN,
    free_port,
    metric_total,
    stop,
    wait_http,
)

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.fixture
def start_scheduler(base_env: dict[str, str]) -> Iterator[Callable[..., tuple[Any, int]]]:
    procs: list[subprocess.Popen[Any]] = []

    def start(**env: str) -> tuple[subprocess.Popen[Any], int]:
        port = free_port()
        proc = subprocess.Popen(
            [ORCHESTRATOR_BIN, "scheduler"],
            env={
                **base_env,
                "K8S_NAMESPACE": K8S_NAMESPACE,
                "ORCHESTRATOR_SCHEDULER_METRICS_PORT": str(port),
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/metrics", proc=proc)
        return proc, port

    yield start
    for proc in procs:
        stop(proc)


def add_rows(db: Any, n: int, team_prefix: str = "team") -> None:
    for i in range(n):
        store.create(
            db,
            "acme",
            f"{team_prefix}-{i}",
            ScheduleCreate(schedule_type="ingestion", cron_expression=f"{i % 60} * * * *"),
        )


def cronjobs(kube: KubernetesStandIn) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in kube.objects("CronJob", K8S_NAMESPACE)}


def test_a_change_reaches_the_cluster_within_seconds_not_at_the_interval(
    start_scheduler: Callable[..., tuple[Any, int]], kube: KubernetesStandIn, db: Any
) -> None:
    _proc, port = start_scheduler(ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="600")
    metrics = f"http://127.0.0.1:{port}/metrics"
    wait_for(
        lambda: metric_total(httpx.get(metrics).text, "orchestrator_scheduler_ticks_total") >= 1,
        20,
        "the start-up pass",
    )
    created = store.create(
        db, "acme", "payments", ScheduleCreate(schedule_type="eval", cron_expression="@daily")
    )
    started = time.monotonic()
    wait_for(lambda: cronjobs(kube), 5, "the CronJob of a new schedule")
    assert time.monotonic() - started < 5
    store.update(
        db, "acme", "payments", created.schedule_id, ScheduleUpdate(cron_expression="0 6 * * *")
    )
    wait_for(
        lambda: [o for o in cronjobs(kube).values() if o["spec"]["schedule"] == "0 6 * * *"],
        5,
        "the changed cron expression",
    )
    text = wait_for(
        lambda: (
            (t := httpx.get(metrics).text)
            and metric_total(t, "orchestrator_reconcile_objects_total", action="updated") >= 1
            and t
        ),
        5,
        "the update counted",
    )
    assert metric_total(text, "orchestrator_reconcile_objects_total", action="created") == 1
    assert "orchestrator_reconcile_duration_seconds_count" in text
    assert "orchestrator_reconcile_last_success_timestamp_seconds" in text


def test_two_replicas_never_write_the_same_object_twice(
    start_scheduler: Callable[..., tuple[Any, int]], kube: KubernetesStandIn, db: Any
) -> None:
    add_rows(db, 40)
    kube.set_faults(latency=0.01)  # long enough passes for the replicas to overlap
    ports = [start_scheduler(ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="1")[1] for _ in range(2)]
    wait_for(lambda: len(cronjobs(kube)) == 40, 30, "40 CronJobs")
    time.sleep(3)  # more overlapping ticks of both replicas
    writes = dict(kube.writes)
    assert sum(v for (verb, _kind), v in writes.items() if verb == "POST") == 40
    assert sum(v for (verb, _kind), v in writes.items() if verb != "POST") == 0
    texts = [httpx.get(f"http://127.0.0.1:{p}/metrics").text for p in ports]
    ran = [metric_total(t, "orchestrator_scheduler_ticks_total", outcome="ran") for t in texts]
    assert sum(ran) >= 3
    synced = db.execute(
        "SELECT count(*) AS n FROM orchestrator_pipeline_schedules WHERE sync_status = 'synced'"
    ).fetchone()["n"]
    assert synced == 40


def test_sigterm_during_a_pass_stops_promptly_and_the_next_replica_finishes(
    start_scheduler: Callable[..., tuple[Any, int]], kube: KubernetesStandIn, db: Any
) -> None:
    add_rows(db, 200)
    kube.set_faults(latency=0.05)  # ~2.5 s of writes on 4 threads
    proc, _port = start_scheduler(ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="600")
    wait_for(lambda: len(cronjobs(kube)) >= 10, 20, "the pass under way")
    started = time.monotonic()
    assert stop(proc) == 0
    assert time.monotonic() - started < 5
    done = len(cronjobs(kube))
    assert 10 <= done < 200  # it stopped in the middle, after the writes in flight

    kube.clear_faults()
    start_scheduler(ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="600")
    wait_for(lambda: len(cronjobs(kube)) == 200, 30, "all 200 CronJobs")
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) AS n FROM orchestrator_pipeline_schedules"
                " WHERE sync_status = 'synced'"
            ).fetchone()["n"]
            == 200
        ),
        10,
        "every row synced",
    )
    # Nothing written twice: the interrupted pass's objects were not created again.
    assert sum(v for (verb, _k), v in kube.writes.items() if verb == "POST") == 200


def test_no_cluster_configuration_stops_the_scheduler_in_one_line(
    base_env: dict[str, str], tmp_path: Any
) -> None:
    env = {**base_env, "KUBECONFIG": str(tmp_path / "missing")}
    result = subprocess.run(
        [ORCHESTRATOR_BIN, "scheduler"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no usable Kubernetes configuration" in result.stderr
    assert "Traceback" not in result.stderr
