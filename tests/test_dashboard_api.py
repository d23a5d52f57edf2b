"""The JSON endpoints of SPEC §4.3 that the dashboard's data comes from — queues, dead
letters with requeue, delete and bulk requeue, runs and agent-run lists — against real
Redis and Postgres, with bearer tokens (the only credential they take)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from falcon import testing

from orchestrator import agent_runs
from orchestrator.provisioning import runs
from orchestrator.queues import acks_key, dead_key, delayed_key, heartbeats_key, queue_key
from tests.dashboard_support import seed_dead_letter
from workers.middleware.heartbeat import record_beat


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_queues_report_depths_and_live_workers(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str
) -> None:
    r = services.redis
    r.rpush(queue_key(namespace, "agents"), "x", "y")
    r.rpush(delayed_key(namespace, "webhooks"), "z")
    # One message in flight, as Dramatiq's broker records it: the consumer beats the
    # heartbeats set and holds the message in its acks of the queue.
    r.zadd(heartbeats_key(namespace), {"worker-1": time.time() * 1000})
    r.sadd(acks_key(namespace, "worker-1", "provisioning"), "m1")
    seed_dead_letter(r, namespace, queue="default")
    record_beat(r, namespace, "host:9", "{}")
    body = client.simulate_get("/api/v1/admin/jobs/queues", headers=bearer(admin_token)).json
    depth = {q["name"]: q for q in body["queues"]}
    assert depth["agents"]["ready"] == 2
    assert depth["webhooks"]["delayed"] == 1
    assert depth["provisioning"]["in_progress"] == 1
    assert depth["default"]["dead"] == 1
    assert body["workers_alive"] == 1


def test_dead_letters_list_pages_across_queues_newest_first(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str
) -> None:
    now = time.time()
    ids = [
        seed_dead_letter(
            services.redis,
            namespace,
            queue=("agents", "webhooks", "default")[i % 3],
            kwargs={"secret": f"s-{i}"},
            died_at=now - i,
        )[0]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/admin/jobs/dead?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.simulate_get(url, headers=bearer(admin_token)).json
        seen += [d["message_id"] for d in page["items"]]
        assert all(d["kwargs"] == {"secret": "***"} for d in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    only = client.simulate_get(
        "/api/v1/admin/jobs/dead?queue=webhooks", headers=bearer(admin_token)
    ).json
    assert [d["message_id"] for d in only["items"]] == ids[1::3]
    bad = client.simulate_get("/api/v1/admin/jobs/dead?cursor=-1", headers=bearer(admin_token))
    assert bad.status_code == 422


def test_requeue_delete_and_bulk_requeue(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str, db: Any
) -> None:
    r = services.redis
    one, _ = seed_dead_letter(r, namespace, queue="agents")
    two, _ = seed_dead_letter(r, namespace, queue="agents")
    three, _ = seed_dead_letter(r, namespace, queue="webhooks")
    four, _ = seed_dead_letter(r, namespace, queue="webhooks")
    auth = bearer(admin_token)

    result = client.simulate_post(f"/api/v1/admin/jobs/dead/{one}/requeue", headers=auth)
    assert result.status_code == 202 and result.json == {"requeued": [one], "not_found": []}
    assert r.llen(queue_key(namespace, "agents")) == 1
    assert client.simulate_delete(f"/api/v1/admin/jobs/dead/{two}", headers=auth).status_code == 204
    assert r.zcard(dead_key(namespace, "agents")) == 0
    missing = str(uuid.uuid4())
    result = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue",
        json={"message_ids": [three, four, missing]},
        headers=auth,
    )
    assert result.status_code == 202
    assert result.json == {"requeued": [three, four], "not_found": [missing]}
    assert r.llen(queue_key(namespace, "webhooks")) == 2
    assert (
        client.simulate_post(f"/api/v1/admin/jobs/dead/{one}/requeue", headers=auth).status_code
        == 404
    )
    assert client.simulate_delete("/api/v1/admin/jobs/dead/bad$id", headers=auth).status_code == 404
    actions = [
        (a["action"], a["subject"])
        for a in db.execute(
            "SELECT action, subject FROM orchestrator_audit_log WHERE action LIKE 'job.%%'"
            " ORDER BY id"
        ).fetchall()
    ]
    assert actions == [
        ("job.requeued", one),
        ("job.deleted", two),
        ("job.requeued", three),
        ("job.requeued", four),
    ]


def test_jobs_endpoints_are_for_super_admins_with_bearer_tokens(
    client: testing.TestClient, config_service: Any, services: Any, namespace: str
) -> None:
    message_id, _ = seed_dead_letter(services.redis, namespace)
    org = bearer(config_service.add_org_admin("acme"))
    for method, path in (
        ("GET", "/api/v1/admin/jobs/queues"),
        ("GET", "/api/v1/admin/jobs/dead"),
        ("POST", f"/api/v1/admin/jobs/dead/{message_id}/requeue"),
        ("DELETE", f"/api/v1/admin/jobs/dead/{message_id}"),
    ):
        assert client.simulate_request(method, path, headers=org).status_code == 403, path
        assert client.simulate_request(method, path).status_code == 401, path
    assert services.redis.zcard(dead_key(namespace, "provisioning")) == 1


def test_run_and_agent_run_lists_filter_and_scope_by_org(
    client: testing.TestClient, admin_token: str, config_service: Any, db: Any
) -> None:
    for org in ("acme", "globex"):
        run, _ = runs.create(
            db,
            kind="provision",
            org_id=org,
            team_node_id="payments",
            request={},
            request_hash="h",
            idempotency_key=None,
        )
        runs.save_steps(
            db, run.provisioning_run_id, run.steps, status="failed", error="peer_unavailable"
        )
        agent_runs.create(
            db,
            org_id=org,
            team_node_id="payments",
            agent_name="a",
            trigger_source="api",
            request={},
        )
    auth = bearer(admin_token)
    listed = client.simulate_get("/api/v1/admin/provision/runs?status=failed", headers=auth).json
    assert {r["org_id"] for r in listed["items"]} == {"acme", "globex"}
    assert all("team_token" not in r for r in listed["items"])
    agents = client.simulate_get("/api/v1/admin/agents/runs?org_id=acme", headers=auth).json
    assert [r["org_id"] for r in agents["items"]] == ["acme"]
    org = bearer(config_service.add_org_admin("globex"))
    scoped = client.simulate_get("/api/v1/admin/agents/runs", headers=org).json
    assert [r["org_id"] for r in scoped["items"]] == ["globex"]
    scoped = client.simulate_get("/api/v1/admin/provision/runs", headers=org).json
    assert [r["org_id"] for r in scoped["items"]] == ["globex"]
