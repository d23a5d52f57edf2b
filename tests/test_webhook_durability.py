"""The guarantees around the gateway: the internal Slack trigger, and the relay — an
event acknowledged while Redis was stopped is still dispatched once Redis is back."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from falcon import testing

from orchestrator.db.pool import create_pool
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.embedded import EmbeddedRedis
from orchestrator.events.relay import prune_bodies, relay_events
from orchestrator.settings import Settings
from tests.webhook_support import _secret, final_event, send, wait_for
from web.app import build_services, create_app
from workers.actors import register_all
from workers.broker import create_broker
from workers.messages import webhook_event
from workers.runtime import build_deps

TRIGGER = "/api/v1/internal/slack/trigger"


def test_internal_trigger_is_404_while_unconfigured(client: testing.TestClient) -> None:
    result = client.simulate_post(TRIGGER, json={"channel_id": "C1", "text": "hi"})
    assert result.status_code == 404


def test_internal_trigger_auth_and_validation(stack: dict[str, Any], services: Any) -> None:
    settings = stack["settings"].model_copy(
        update={"orchestrator_internal_token": _secret("internal-s3cret")}
    )
    client = testing.TestClient(create_app(settings, services))
    body = {"channel_id": "C123ABC456", "text": "is checkout down?"}
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "internal-s3cret"},
        {"X-Admin-Token": "internal-s3cret"},
    ):
        result = client.simulate_post(TRIGGER, json=body, headers=headers)
        assert result.status_code == 401, headers
        assert "s3cret" not in result.text
    auth = {"Authorization": "Bearer internal-s3cret"}
    for bad in (
        {"channel_id": "C1"},
        {"channel_id": "lower", "text": "x"},
        {"channel_id": "C1", "text": ""},
        {"channel_id": "C1", "text": "x", "extra": 1},
        {"channel_id": "C1", "text": "x", "event_ts": "yesterday"},
    ):
        assert client.simulate_post(TRIGGER, json=bad, headers=auth).status_code == 422, bad
    assert client.simulate_post(TRIGGER, body=b"{oops", headers=auth).status_code == 400


def test_internal_trigger_dispatches_like_a_mention(
    stack: dict[str, Any], services: Any, db: Any, agent: AgentStandIn
) -> None:
    settings = stack["settings"].model_copy(
        update={"orchestrator_internal_token": _secret("internal-s3cret")}
    )
    client = testing.TestClient(create_app(settings, services))
    auth = {"Authorization": "Bearer internal-s3cret"}
    body = {
        "channel_id": "C123ABC456",
        "text": "is checkout down?",
        "user_id": "U42",
        "thread_ts": "1700000000.000100",
        "event_ts": "1700000001.000200",
    }
    accepted = client.simulate_post(TRIGGER, json=body, headers=auth)
    assert accepted.status_code == 202
    again = client.simulate_post(TRIGGER, json=body, headers=auth)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert again.json["event_id"] == accepted.json["event_id"]
    event = final_event(db, accepted.json["event_id"])
    assert event["status"] == "dispatched" and event["team_node_id"] == "payments"
    [call] = agent.runs_snapshot()
    assert call["body"]["trigger_source"] == "slack"
    assert call["body"]["message"] == "is checkout down?"
    assert call["body"]["context"]["session_id"] == "slack-c123abc456-1700000000-000100"


def test_events_acknowledged_while_redis_is_stopped_are_dispatched_after_it_returns(
    stack: dict[str, Any],
    gateway_settings: Settings,
    db: Any,
    agent: AgentStandIn,
    namespace: str,
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="orch-redis-fault-"))
    redis_server = EmbeddedRedis(folder / "redis.db")
    url = redis_server.start()
    settings = stack["settings"].model_copy(update={"redis_url": _secret(url)})
    web_services = build_services(settings)
    web_services.pool.wait(timeout=10)
    client = testing.TestClient(create_app(settings, web_services))
    pool = create_pool(settings, name="fault-worker")
    worker_broker = create_broker(
        settings, role="worker", pool=pool, prometheus=False, min_backoff_ms=20, max_backoff_ms=100
    )
    register_all(worker_broker, build_deps(settings, pool))
    worker_broker.emit_after("process_boot")
    worker = dramatiq.Worker(worker_broker, worker_threads=2, worker_timeout=50)
    try:
        before = [send(client, "generic").json["event_id"] for _ in range(3)]
        redis_server.stop()
        during = []
        for _ in range(5):
            result = send(client, "generic")
            assert result.status_code == 200, result.text  # stored and acknowledged
            during.append(result.json["event_id"])
        statuses = {
            r["status"]
            for r in db.execute(
                "SELECT status FROM orchestrator_webhook_events WHERE id = ANY(%s::uuid[])",
                (during,),
            ).fetchall()
        }
        assert statuses == {"received"}

        redis_server = EmbeddedRedis(folder / "redis.db", port=redis_server.port)
        redis_server.start()
        relay_broker = create_broker(settings, role="web")
        with web_services.pool.connection() as conn:
            result = relay_events(
                conn, lambda eid: relay_broker.enqueue(webhook_event(eid)), older_than_seconds=0
            )
        assert result["relayed"] >= 5
        worker.start()
        for event_id in before + during:
            assert final_event(db, event_id)["status"] == "dispatched"
        # Each event reached the agent exactly once, under its own run id.
        calls = agent.runs_snapshot()
        assert len(calls) == len(before + during)
        assert len({c["correlation_id"] for c in calls}) == len(calls)
    finally:
        worker.stop()
        worker_broker.close()
        pool.close()
        web_services.close()
        redis_server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_relay_skips_fresh_and_final_events(stack: dict[str, Any], db: Any, services: Any) -> None:
    sent: list[str] = []
    fresh = send(stack["client"], "generic").json["event_id"]
    final_event(db, fresh)
    with services.pool.connection() as conn:
        assert relay_events(conn, sent.append, older_than_seconds=0)["relayed"] == 0
        conn.execute(
            "INSERT INTO orchestrator_webhook_events (id, source, delivery_key,"
            " status) VALUES (gen_random_uuid(), 'generic', 'stuck', 'received')"
        )
        assert relay_events(conn, sent.append, older_than_seconds=3600)["relayed"] == 0
        assert relay_events(conn, sent.append, older_than_seconds=0)["relayed"] == 1
    assert len(sent) == 1 and sent[0] != fresh


def test_relay_does_not_move_an_event_dispatched_meanwhile_back_to_queued(
    db: Any, services: Any
) -> None:
    """The relay reads the stale events, then enqueues each: a worker still holding the
    event's first message may dispatch it in between. Its "dispatched" must stand:
    written back to "queued", the event would be relayed again every period, forever."""
    event_id = db.execute(
        "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, status)"
        " VALUES (gen_random_uuid(), 'generic', 'raced', 'queued') RETURNING id"
    ).fetchone()["id"]

    def dispatched_meanwhile(relayed_id: str) -> None:
        assert relayed_id == str(event_id)
        db.execute(
            "UPDATE orchestrator_webhook_events SET status = 'dispatched' WHERE id = %s",
            (event_id,),
        )

    with services.pool.connection() as conn:
        result = relay_events(conn, dispatched_meanwhile, older_than_seconds=0)
    assert result["relayed"] == 0
    row = db.execute(
        "SELECT status, status_history FROM orchestrator_webhook_events WHERE id = %s",
        (event_id,),
    ).fetchone()
    assert row["status"] == "dispatched"
    assert all(h.get("detail") != "relayed by the scheduler" for h in row["status_history"])


def test_retention_prunes_old_bodies_and_keeps_the_rows(stack: dict[str, Any], db: Any) -> None:
    old = send(stack["client"], "generic").json["event_id"]
    new = send(stack["client"], "generic").json["event_id"]
    db.execute(
        "UPDATE orchestrator_webhook_events SET received_at = now() - interval '31 days'"
        " WHERE id = %s",
        (old,),
    )
    assert prune_bodies(db, retention_days=30) == {"pruned": 1}
    rows = {
        str(r["id"]): r
        for r in db.execute(
            "SELECT id, payload, status FROM orchestrator_webhook_events"
        ).fetchall()
    }
    assert rows[old]["payload"] is None and rows[old]["status"]
    assert rows[new]["payload"] is not None


@pytest.mark.parametrize("payload", [b"x" * 10, json.dumps({"routing": []}).encode()])
def test_garbage_never_reaches_the_worker(
    gateway: testing.TestClient, services: Any, payload: bytes
) -> None:
    assert send(gateway, "generic", payload).status_code in (400, 422)
    assert services.redis.llen(f"{services.namespace}:webhooks") == 0


def test_postgres_stopped_means_503_and_nothing_acknowledged_then_recovery(
    gateway_settings: Settings,
    redis_url: str,
    namespace: str,
) -> None:
    from orchestrator.db.migrations import apply
    from orchestrator.devstack.embedded import EmbeddedPostgres

    folder = Path(tempfile.mkdtemp(prefix="orch-pg-fault-"))
    server = EmbeddedPostgres(folder / "pg")
    dsn = server.start()
    apply(dsn)
    settings = gateway_settings.model_copy(update={"database_url": _secret(dsn)})
    web_services = build_services(settings)
    web_services.pool.wait(timeout=10)
    client = testing.TestClient(create_app(settings, web_services))
    try:
        assert send(client, "github").status_code == 200
        server.stop()
        for _ in range(3):
            started = time.monotonic()
            result = send(client, "github")
            assert result.status_code == 503
            assert time.monotonic() - started < 3  # answered within Slack's 3 s
            assert "event_id" not in result.text and "Traceback" not in result.text
        assert client.simulate_get("/ready").status_code == 503
        server = EmbeddedPostgres(folder / "pg")
        server.start()
        wait_for(lambda: send(client, "github").status_code == 200, timeout=30)
        with web_services.pool.connection() as conn:
            count = conn.execute(
                "SELECT count(*) AS n FROM orchestrator_webhook_events"
            ).fetchone()["n"]
        # The first event, the one that proved recovery, and nothing from the outage.
        assert count == 2
        queued = web_services.redis.llen(f"{namespace}:webhooks")
        assert queued == 2
    finally:
        web_services.close()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
