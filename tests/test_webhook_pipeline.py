"""The worker pipeline behind the gateway, end to end: signed webhook → web tier →
Redis → an in-process Dramatiq worker → Config Service and Agent stand-ins over HTTP →
rows in Postgres. Routing, trigger filtering (bots never trigger), agent calls with
per-source timeout and max turns, every kind of agent failure, feedback, the dispatch
limit, and replay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.db.pool import create_pool
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from tests.webhook_support import (
    INTERNAL_ADMIN,
    SAMPLES,
    final_event,
    fixture,
    run_of,
    send,
    wait_for,
)
from workers.runtime import build_deps


def github_comment(body: str, *, sender_type: str = "User", login: str = "octocat") -> bytes:
    payload = json.loads(fixture("github/issue_comment.created.json"))
    payload["comment"]["body"] = body
    payload["sender"]["type"] = sender_type
    payload["sender"]["login"] = login
    return json.dumps(payload).encode()


def test_a_slack_mention_reaches_the_entrance_agent(
    stack: dict[str, Any], db: Any, agent: AgentStandIn
) -> None:
    event_id = send(stack["client"], "slack").json["event_id"]
    event = final_event(db, event_id)
    assert event["status"] == "dispatched"
    assert (event["org_id"], event["team_node_id"], event["matched_by"]) == (
        "acme",
        "payments",
        "slack_channel_id",
    )
    run = run_of(db, event)
    assert run["status"] == "succeeded" and run["trigger_source"] == "slack"
    assert run["agent_name"] == "planner"
    [call] = agent.runs_snapshot()
    assert call["agent"] == "planner"
    assert call["correlation_id"] == str(event["agent_run_id"])
    assert call["team_token"].count(".") == 2  # the impersonation JWT, not an admin token
    body = call["body"]
    assert body["message"] == "is it everything a river should be?"
    assert (body["timeout"], body["max_turns"], body["trigger_source"]) == (300, 50, "slack")
    assert body["context"]["session_id"] == "slack-c123abc456-1515449522-000016"
    assert body["output_destinations"] == [
        {"type": "slack", "channel_id": "C123ABC456", "thread_ts": "1515449522.000016"}
    ]
    history = [h["status"] for h in event["status_history"]]
    assert history[0] == "received" and history[-1] == "dispatched"


def test_entrance_agent_and_output_overrides_come_from_effective_config(
    stack: dict[str, Any],
    db: Any,
    agent: AgentStandIn,
    config_service: ConfigServiceStandIn,
) -> None:
    config_service.seed_team(
        "acme",
        "payments",
        config={
            "entrance_agent": "triage",
            "output_config": {
                "trigger_overrides": {"github": [{"type": "slack", "channel_id": "COPS"}]}
            },
        },
    )
    event_id = send(
        stack["client"], "github", github_comment("@IncidentFox why is checkout slow?")
    ).json["event_id"]
    event = final_event(db, event_id)
    assert event["status"] == "dispatched"
    [call] = agent.runs_snapshot()
    assert call["agent"] == "triage"
    body = call["body"]
    assert (body["timeout"], body["max_turns"], body["trigger_source"]) == (180, 30, "github")
    assert body["output_destinations"] == [{"type": "slack", "channel_id": "COPS"}]
    assert body["context"]["metadata"]["github"]["repo"] == "Codertocat/Hello-World"


@pytest.mark.parametrize(
    "body,reason",
    [
        (github_comment("You are totally right!"), "does not mention"),
        (github_comment("@incidentfox look", sender_type="Bot"), "bot"),
        (github_comment("@incidentfox look", login="incidentfox[bot]"), "bot"),
    ],
)
def test_github_comments_that_must_not_trigger(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, body: bytes, reason: str
) -> None:
    event = final_event(db, send(stack["client"], "github", body).json["event_id"])
    assert event["status"] == "ignored"
    assert reason in event["status_history"][-1]["detail"]
    assert event["team_node_id"] == "payments"
    assert agent.runs_snapshot() == []


def test_failed_ci_triggers_and_green_ci_does_not(
    stack: dict[str, Any], db: Any, agent: AgentStandIn
) -> None:
    published = json.loads(fixture("github/workflow_run.completed.json"))
    published["repository"]["full_name"] = "Codertocat/Hello-World"  # the team's repo
    green = json.dumps(published).encode()
    red = json.loads(green)
    red["workflow_run"]["conclusion"] = "failure"
    ok = send(stack["client"], "github", green, github_event="workflow_run")
    failed = send(stack["client"], "github", json.dumps(red).encode(), github_event="workflow_run")
    assert final_event(db, ok.json["event_id"])["status"] == "ignored"
    assert final_event(db, failed.json["event_id"])["status"] == "dispatched"
    assert len(agent.runs_snapshot()) == 1
    assert agent.runs_snapshot()[0]["body"]["message"].startswith("CI failed in")


def test_slack_bot_messages_never_trigger(
    stack: dict[str, Any], db: Any, agent: AgentStandIn
) -> None:
    for name in ("slack/message_bot.json", "slack/message_bot_user.json"):
        payload = json.loads(fixture(name))
        payload["event"]["type"] = "app_mention"
        payload["event"]["channel"] = "C123ABC456"
        event_id = send(stack["client"], "slack", json.dumps(payload).encode()).json["event_id"]
        assert final_event(db, event_id)["status"] == "ignored", name
    assert agent.runs_snapshot() == []


def test_unroutable_and_non_trigger_events(
    stack: dict[str, Any], db: Any, agent: AgentStandIn
) -> None:
    stranger = json.loads(fixture("pagerduty/incident.triggered.json"))
    stranger["event"]["data"]["service"]["id"] = "PNOBODY"
    unroutable = send(stack["client"], "pagerduty", json.dumps(stranger).encode())
    acked = send(stack["client"], "pagerduty", fixture("pagerduty/incident.acknowledged.json"))
    assert final_event(db, unroutable.json["event_id"])["status"] == "unroutable"
    assert final_event(db, acked.json["event_id"])["status"] == "ignored"
    triggered = send(stack["client"], "pagerduty")
    assert final_event(db, triggered.json["event_id"])["status"] == "dispatched"
    assert len(agent.runs_snapshot()) == 1


def test_transient_agent_failures_retry_with_the_same_correlation_id(
    stack: dict[str, Any], db: Any, agent: AgentStandIn
) -> None:
    agent.set_behaviour("fail_500", times=2)
    event = final_event(db, send(stack["client"], "generic").json["event_id"])
    assert event["status"] == "dispatched"
    calls = agent.runs_snapshot()
    assert len(calls) == 3
    assert {c["correlation_id"] for c in calls} == {str(event["agent_run_id"])}
    run = run_of(db, event)
    assert run["status"] == "succeeded" and run["attempts"] == 3


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("success_false", "agent run failed"),
        ("fail_500", "agent answered 500"),
    ],
)
def test_agent_failures_end_failed_with_the_reason(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, mode: str, expected: str
) -> None:
    agent.set_behaviour(mode)
    event = final_event(db, send(stack["client"], "generic").json["event_id"], "failed")
    assert expected in event["last_error"]
    run = run_of(db, event)
    assert run["status"] == "failed" and expected in run["error"]
    calls = len(agent.runs_snapshot())
    assert calls == (1 if mode == "success_false" else 3)  # permanent: once; transient: budget


def test_an_agent_timeout_is_retried_then_fails(
    stack: dict[str, Any], db: Any, agent: AgentStandIn
) -> None:
    agent.set_behaviour("slow", delay=5)  # generic timeout is 2 s in this stack
    event = final_event(db, send(stack["client"], "generic").json["event_id"], "failed")
    assert "peer_unavailable" in event["last_error"] and "Timeout" in event["last_error"]


def test_an_unknown_agent_fails_at_once(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, config_service: ConfigServiceStandIn
) -> None:
    agent.known_agents = {"planner"}
    config_service.seed_team("acme", "payments", config={"entrance_agent": "ghost"})
    event = final_event(db, send(stack["client"], "generic").json["event_id"], "failed")
    assert "unknown agent ghost" in event["last_error"]


def test_slack_feedback_goes_to_the_config_service(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, config_service: ConfigServiceStandIn
) -> None:
    event = final_event(db, send(stack["client"], "slack_interactions").json["event_id"])
    assert event["status"] == "dispatched"
    [feedback] = config_service.feedback
    assert feedback["feedback"] == "feedback_buttons_1" and feedback["source"] == "slack"
    assert agent.runs_snapshot() == []


def test_the_team_dispatch_limit_throttles(
    stack: dict[str, Any], db: Any, services: Any, agent: AgentStandIn
) -> None:
    settings = stack["settings"].model_copy(update={"orchestrator_team_dispatch_limit": "2/minute"})
    pool = create_pool(settings, name="limited")
    pool.open(wait=True)
    deps = build_deps(settings, pool, namespace=services.namespace + "-limited")
    from orchestrator.events import pipeline

    ids = [send(stack["client"], "generic").json["event_id"] for _ in range(3)]
    for event_id in ids:
        final_event(db, event_id)
    db.execute("UPDATE orchestrator_webhook_events SET status = 'queued', agent_run_id = NULL")
    outcomes = []
    for event_id in ids:
        try:
            outcomes.append(pipeline.process(deps, event_id, is_last_attempt=False).status)
        except pipeline.Throttled as exc:
            outcomes.append(f"throttled:{exc.delay_ms > 0}")
    assert outcomes == ["dispatched", "dispatched", "throttled:True"]
    row = db.execute(
        "SELECT status FROM orchestrator_webhook_events WHERE id = %s", (ids[2],)
    ).fetchone()
    assert row["status"] == "throttled"
    pool.close()


def test_replay_dispatches_again_and_is_audited(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    client = stack["client"]
    event = final_event(db, send(client, "generic").json["event_id"])
    first_run = event["agent_run_id"]
    auth = {"Authorization": f"Bearer {admin_token}"}
    replay = client.simulate_post(
        f"/api/v1/admin/webhooks/events/{event['id']}/replay", headers=auth
    )
    assert replay.status_code == 202
    wait_for(lambda: len(agent.runs_snapshot()) == 2)
    again = final_event(db, str(event["id"]))
    assert again["agent_run_id"] != first_run
    assert {c["correlation_id"] for c in agent.runs_snapshot()} == {
        str(first_run),
        str(again["agent_run_id"]),
    }
    audit = db.execute(
        "SELECT * FROM orchestrator_audit_log WHERE action = 'event.replayed'"
    ).fetchone()
    assert audit["subject"] == str(event["id"]) and audit["org_id"] == "acme"


def test_events_admin_api(
    stack: dict[str, Any], db: Any, admin_token: str, config_service: ConfigServiceStandIn
) -> None:
    client = stack["client"]
    ids = [send(client, "generic").json["event_id"] for _ in range(3)]
    stranger = json.loads(fixture("generic/event.json"))
    stranger["routing"] = {"service": "nobody-owns-this"}
    ids.append(send(client, "generic", json.dumps(stranger).encode()).json["event_id"])
    for event_id in ids:
        final_event(db, event_id)
    auth = {"Authorization": f"Bearer {admin_token}"}
    first = client.simulate_get(
        "/api/v1/admin/webhooks/events", headers=auth, query_string="limit=2&source=generic"
    ).json
    second = client.simulate_get(
        "/api/v1/admin/webhooks/events",
        headers=auth,
        query_string=f"limit=2&source=generic&cursor={first['next_cursor']}",
    ).json
    listed = [i["event_id"] for i in first["items"] + second["items"]]
    assert sorted(listed) == sorted(ids) and second["next_cursor"] is None
    assert "payload" not in first["items"][0]
    one = client.simulate_get(f"/api/v1/admin/webhooks/events/{ids[0]}", headers=auth).json
    assert one["payload"]["routing"] == {"service": "checkout"}
    assert one["status"] == "dispatched"
    unroutable = client.simulate_get(
        "/api/v1/admin/webhooks/events", headers=auth, query_string="status=unroutable"
    ).json["items"]
    assert [i["event_id"] for i in unroutable] == [ids[3]]
    # Org scoping: another org's admin sees nothing of acme's, not even by id.
    other = {"Authorization": f"Bearer {config_service.add_org_admin('globex')}"}
    assert client.simulate_get("/api/v1/admin/webhooks/events", headers=other).json["items"] == []
    assert (
        client.simulate_get(f"/api/v1/admin/webhooks/events/{ids[0]}", headers=other).status_code
        == 404
    )
    assert (
        client.simulate_post(
            f"/api/v1/admin/webhooks/events/{ids[0]}/replay", headers=other
        ).status_code
        == 404
    )
    assert (
        client.simulate_get(
            "/api/v1/admin/webhooks/events", headers=other, query_string="org_id=acme"
        ).status_code
        == 403
    )
    own = {"Authorization": f"Bearer {config_service.add_org_admin('acme')}"}
    assert len(client.simulate_get("/api/v1/admin/webhooks/events", headers=own).json["items"]) == 3
    for bad in ("limit=0", "status=bogus", "source=email", "cursor=zzz"):
        assert (
            client.simulate_get(
                "/api/v1/admin/webhooks/events", headers=auth, query_string=bad
            ).status_code
            == 422
        ), bad
    assert (
        client.simulate_get("/api/v1/admin/webhooks/events/not-a-uuid", headers=auth).status_code
        == 404
    )
    assert client.simulate_get("/api/v1/admin/webhooks/events").status_code == 401


def test_no_secret_is_stored_with_an_event(stack: dict[str, Any], db: Any) -> None:
    event_id = send(stack["client"], "coralogix").json["event_id"]
    final_event(db, event_id)
    stored = json.dumps(
        db.execute(
            "SELECT headers, payload, status_history FROM orchestrator_webhook_events"
        ).fetchall(),
        default=str,
    )
    run = json.dumps(
        db.execute("SELECT request, result FROM orchestrator_agent_runs").fetchall(), default=str
    )
    for secret in ("coralogix-bearer-token", INTERNAL_ADMIN, "eyJ"):
        assert secret not in stored and secret not in run, secret


assert SAMPLES  # the gateway's samples are the pipeline's inputs


def test_agent_calls_go_only_to_the_agent_api_or_the_derived_dedicated_url(
    stack: dict[str, Any],
    db: Any,
    agent: AgentStandIn,
    config_service: ConfigServiceStandIn,
) -> None:
    from orchestrator.events.pipeline import agent_url

    settings = stack["settings"]
    derived = "http://agent-acme-payments.incidentfox.svc.cluster.local:8080"
    for configured, expected in [
        (None, agent.url),
        ("http://169.254.169.254/latest/meta-data", agent.url),
        (derived + "/", derived),
        (derived, derived),
        ("http://agent-acme-other.incidentfox.svc.cluster.local:8080", agent.url),
    ]:
        effective = {"agent": {"dedicated_service_url": configured}} if configured else {}
        assert agent_url(settings, "acme", "payments", effective) == expected, configured
    # End to end: a foreign URL in team config does not divert the call.
    config_service.seed_team(
        "acme", "payments", config={"agent": {"dedicated_service_url": "http://127.0.0.1:9"}}
    )
    event = final_event(db, send(stack["client"], "generic").json["event_id"])
    assert event["status"] == "dispatched"
    assert len(agent.runs_snapshot()) == 1


def test_config_service_answers_are_cached_per_team(
    stack: dict[str, Any], db: Any, config_service: ConfigServiceStandIn
) -> None:
    first = send(stack["client"], "generic").json["event_id"]
    assert final_event(db, first)["status"] == "dispatched"  # fills the caches
    ids = [send(stack["client"], "generic").json["event_id"] for _ in range(3)]
    for event_id in ids:
        assert final_event(db, event_id)["status"] == "dispatched"
    paths = [c.path for c in config_service.calls]
    assert paths.count("/api/v1/internal/routing/lookup") == 1
    assert sum(p.endswith("/impersonation-token") for p in paths) == 1
    assert paths.count("/api/v1/config/me") == 1


def test_without_the_cache_every_event_asks_again(
    stack: dict[str, Any],
    db: Any,
    config_service: ConfigServiceStandIn,
    services: Any,
) -> None:
    from orchestrator.events import pipeline

    settings = stack["settings"].model_copy(update={"orchestrator_config_cache_seconds": 0})
    deps = build_deps(settings, services.pool, namespace=services.namespace)
    ids = [send(stack["client"], "generic").json["event_id"] for _ in range(2)]
    for event_id in ids:
        final_event(db, event_id)
    db.execute("UPDATE orchestrator_webhook_events SET status = 'queued', agent_run_id = NULL")
    before = len(config_service.calls)
    for event_id in ids:
        pipeline.process(deps, event_id, is_last_attempt=False)
    lookups = [c.path for c in config_service.calls[before:]]
    assert lookups.count("/api/v1/internal/routing/lookup") == 2


def test_two_deliveries_of_one_event_at_once_make_one_agent_run(
    stack: dict[str, Any],
    db: Any,
    config_service: ConfigServiceStandIn,
    agent: AgentStandIn,
    services: Any,
) -> None:
    """The relay re-enqueues an event that waited too long while its first message may
    still be queued: two workers then process it together. Both pass routing before
    either creates the run (the slow routing lookup holds them there); the agent must
    still be called under one correlation id, and the event get one run."""
    import threading

    from orchestrator.events import pipeline

    settings = stack["settings"].model_copy(update={"orchestrator_config_cache_seconds": 0})
    deps = build_deps(settings, services.pool, namespace=services.namespace)
    event_id = send(stack["client"], "generic").json["event_id"]
    final_event(db, event_id)
    db.execute(
        "UPDATE orchestrator_webhook_events SET status = 'queued', agent_run_id = NULL"
        " WHERE id = %s",
        (event_id,),
    )
    before = {r["id"] for r in db.execute("SELECT id FROM orchestrator_agent_runs").fetchall()}
    calls_before = len(agent.runs_snapshot())
    config_service.set_faults(latency=0.5, path="routing/lookup")
    outcomes: list[str] = []

    def deliver() -> None:
        outcomes.append(pipeline.process(deps, event_id, is_last_attempt=False).status)

    workers = [threading.Thread(target=deliver) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    config_service.clear_faults()
    new_runs = db.execute(
        "SELECT id FROM orchestrator_agent_runs WHERE event_id = %s AND NOT (id = ANY(%s))",
        (event_id, list(before)),
    ).fetchall()
    assert len(new_runs) == 1, new_runs
    correlations = {r["correlation_id"] for r in agent.runs_snapshot()[calls_before:]}
    assert correlations == {str(new_runs[0]["id"])}
    assert sorted(outcomes) == ["dispatched", "dispatched"]
