"""The broker against real Redis with an in-process Dramatiq worker: transient errors
retry, permanent ones do not, final failures are recorded with their traceback in
Postgres and the audit log, and dead letters can be listed, requeued and deleted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.middleware import Shutdown
from falcon import testing

from orchestrator.db.pool import create_pool
from orchestrator.errors import PeerRejected, PeerUnavailable
from orchestrator.settings import Settings
from tests.webhook_support import wait_for
from workers.broker import create_broker
from workers.retry_policy import make_retry_when

AUTH = {"Authorization": "Bearer test-super-admin-token"}


@pytest.fixture
def worker_broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    pool = create_pool(settings, name="test-worker")
    broker = create_broker(
        settings.model_copy(update={"orchestrator_max_attempts": 3}),
        role="worker",
        pool=pool,
        prometheus=False,
        min_backoff_ms=10,
        max_backoff_ms=50,
    )
    yield broker
    broker.close()
    pool.close()


@pytest.fixture
def run_worker(worker_broker: dramatiq.Broker) -> Iterator[Callable[[], dramatiq.Worker]]:
    started: list[dramatiq.Worker] = []

    def start() -> dramatiq.Worker:
        worker_broker.emit_after("process_boot")
        worker = dramatiq.Worker(worker_broker, worker_threads=2, worker_timeout=50)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_retry_policy_separates_transient_from_permanent() -> None:
    retry = make_retry_when(5)
    request = httpx.Request("GET", "http://peer")
    assert retry(0, PeerUnavailable("down"))
    assert retry(0, httpx.ConnectTimeout("slow"))
    assert retry(
        0, httpx.HTTPStatusError("", request=request, response=httpx.Response(503, request=request))
    )
    assert retry(
        0, httpx.HTTPStatusError("", request=request, response=httpx.Response(429, request=request))
    )
    assert not retry(
        0, httpx.HTTPStatusError("", request=request, response=httpx.Response(404, request=request))
    )
    assert not retry(0, PeerRejected("bad request"))
    assert not retry(0, ValueError("bug"))
    assert retry(3, PeerUnavailable("down"))  # 4 attempts made, a 5th allowed
    assert not retry(4, PeerUnavailable("down"))  # 5 attempts made: done
    assert retry(99, Shutdown())  # SIGTERM never dead-letters the running job


def test_transient_failures_retry_until_success(
    worker_broker: dramatiq.Broker, run_worker: Callable[[], dramatiq.Worker], db: Any
) -> None:
    attempts: list[int] = []

    @dramatiq.actor(broker=worker_broker, queue_name="default", actor_name="flaky")
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise PeerUnavailable("config service answered 503")

    run_worker()
    flaky.send()
    wait_for(lambda: len(attempts) == 3)
    time.sleep(0.3)
    assert len(attempts) == 3
    assert db.execute("SELECT count(*) AS n FROM orchestrator_job_failures").fetchone()["n"] == 0


def test_permanent_failure_is_not_retried_and_is_recorded(
    worker_broker: dramatiq.Broker,
    run_worker: Callable[[], dramatiq.Worker],
    db: Any,
    client: testing.TestClient,
    admin_token: str,
) -> None:
    attempts: list[int] = []

    @dramatiq.actor(broker=worker_broker, queue_name="provisioning", actor_name="doomed")
    def doomed(team: str, token: str) -> None:
        attempts.append(1)
        raise PeerRejected(f"node {team} rejected")

    run_worker()
    message = doomed.send("team-a", token="s3cr3t-team-token")
    row = wait_for(
        lambda: db.execute(
            "SELECT * FROM orchestrator_job_failures WHERE message_id = %s", (message.message_id,)
        ).fetchone()
    )
    assert len(attempts) == 1
    assert row["actor"] == "doomed" and row["queue"] == "provisioning"
    assert row["retries"] == 1
    assert "PeerRejected: node team-a rejected" in row["error"]
    assert "Traceback" in row["traceback"] and "doomed" in row["traceback"]
    assert row["arguments"] == {"args": ["team-a"], "kwargs": {"token": "***"}}
    audit_row = db.execute(
        "SELECT * FROM orchestrator_audit_log WHERE subject = %s", (message.message_id,)
    ).fetchone()
    assert audit_row["action"] == "job.failed"

    dead = client.simulate_get("/api/v1/admin/jobs/dead", headers=AUTH).json["items"]
    assert [d["message_id"] for d in dead] == [message.message_id]
    assert dead[0]["kwargs"] == {"token": "***"}
    assert "s3cr3t" not in str(dead)
    assert "Traceback" in dead[0]["traceback"]
    queues = client.simulate_get("/api/v1/admin/jobs/queues", headers=AUTH).json
    depth = {q["name"]: q for q in queues["queues"]}
    assert depth["provisioning"]["dead"] == 1
    assert queues["workers_alive"] >= 1


def test_transient_failures_exhaust_the_attempt_budget(
    worker_broker: dramatiq.Broker, run_worker: Callable[[], dramatiq.Worker], db: Any
) -> None:
    attempts: list[int] = []

    @dramatiq.actor(broker=worker_broker, queue_name="agents", actor_name="never_up")
    def never_up() -> None:
        attempts.append(1)
        raise PeerUnavailable("agent timed out")

    run_worker()
    message = never_up.send()
    row = wait_for(
        lambda: db.execute(
            "SELECT * FROM orchestrator_job_failures WHERE message_id = %s", (message.message_id,)
        ).fetchone()
    )
    assert len(attempts) == 3  # ORCHESTRATOR_MAX_ATTEMPTS=3 in this fixture
    assert row["retries"] == 3


def test_requeue_delete_and_bulk_requeue_are_audited(
    worker_broker: dramatiq.Broker,
    run_worker: Callable[[], dramatiq.Worker],
    db: Any,
    client: testing.TestClient,
    admin_token: str,
) -> None:
    outcome = {"fail": True, "done": []}

    @dramatiq.actor(broker=worker_broker, queue_name="default", actor_name="fixable")
    def fixable(n: int) -> None:
        if outcome["fail"]:
            raise PeerRejected("not yet")
        outcome["done"].append(n)  # type: ignore[attr-defined]

    run_worker()
    ids = [fixable.send(i).message_id for i in range(3)]
    wait_for(
        lambda: (
            db.execute("SELECT count(*) AS n FROM orchestrator_job_failures").fetchone()["n"] == 3
        )
    )
    wait_for(
        lambda: len(client.simulate_get("/api/v1/admin/jobs/dead", headers=AUTH).json["items"]) == 3
    )
    outcome["fail"] = False

    one = client.simulate_post(f"/api/v1/admin/jobs/dead/{ids[0]}/requeue", headers=AUTH)
    assert one.status_code == 202 and one.json["requeued"] == [ids[0]]
    wait_for(lambda: outcome["done"] == [0])

    gone = client.simulate_delete(f"/api/v1/admin/jobs/dead/{ids[1]}", headers=AUTH)
    assert gone.status_code == 204
    assert (
        client.simulate_delete(f"/api/v1/admin/jobs/dead/{ids[1]}", headers=AUTH).status_code == 404
    )

    bulk = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue",
        headers=AUTH,
        json={"message_ids": [ids[2], "no-such-id"]},
    )
    assert bulk.status_code == 202
    assert bulk.json == {"requeued": [ids[2]], "not_found": ["no-such-id"]}
    wait_for(lambda: sorted(outcome["done"]) == [0, 2])  # type: ignore[arg-type]
    assert client.simulate_get("/api/v1/admin/jobs/dead", headers=AUTH).json["items"] == []

    actions = [
        r["action"]
        for r in db.execute(
            "SELECT action FROM orchestrator_audit_log WHERE action LIKE 'job.%%' "
            "AND action <> 'job.failed' ORDER BY id"
        ).fetchall()
    ]
    assert actions == ["job.requeued", "job.deleted", "job.requeued"]
    actor = db.execute(
        "SELECT actor FROM orchestrator_audit_log WHERE action = 'job.deleted'"
    ).fetchone()["actor"]
    assert actor.startswith("admin:")


def test_dead_letter_list_paginates(
    worker_broker: dramatiq.Broker,
    run_worker: Callable[[], dramatiq.Worker],
    db: Any,
    client: testing.TestClient,
    admin_token: str,
) -> None:
    @dramatiq.actor(broker=worker_broker, queue_name="webhooks", actor_name="bad")
    def bad(n: int) -> None:
        raise PeerRejected("no")

    run_worker()
    sent = {bad.send(i).message_id for i in range(5)}
    wait_for(
        lambda: (
            db.execute("SELECT count(*) AS n FROM orchestrator_job_failures").fetchone()["n"] == 5
        )
    )
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.simulate_get("/api/v1/admin/jobs/dead", headers=AUTH, query_string=query).json
        seen += [d["message_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(sent)
    bad_cursor = client.simulate_get(
        "/api/v1/admin/jobs/dead", headers=AUTH, query_string="cursor=-4"
    )
    assert bad_cursor.status_code == 422


def test_workers_alive_counts_worker_processes_not_enqueuers(
    worker_broker: dramatiq.Broker,
    run_worker: Callable[[], dramatiq.Worker],
    services: Any,
    settings: Settings,
) -> None:
    from orchestrator.dead_letters import queue_depths

    web_broker = create_broker(settings, role="web")
    for _ in range(3):
        web_broker.enqueue(
            dramatiq.Message(
                queue_name="default", actor_name="nobody", args=(), kwargs={}, options={}
            )
        )
    assert queue_depths(services.redis, services.namespace)[1] == 0
    worker = run_worker()
    wait_for(lambda: queue_depths(services.redis, services.namespace)[1] == 1)
    worker.stop()
    assert queue_depths(services.redis, services.namespace)[1] == 0
