"""Admin agent runs end to end (SPEC §4.3): `POST /api/v1/admin/agents/run` → run row +
audit row → Redis → an in-process Dramatiq worker → Config Service and Agent stand-ins
over HTTP → the row. `Prefer: wait`, retries of transient failures, permanent
failures, the one-call-per-run guarantee, lists with filters and cursors, org scoping,
and every way a request can be refused."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from falcon import testing
from pydantic import SecretStr, ValidationError

from orchestrator import admin_agent_runs
from orchestrator.admin_agent_runs import AgentRunRequest
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.embedded import free_port
from orchestrator.errors import PeerUnavailable
from orchestrator.events.relay import relay_runs
from tests.webhook_support import wait_for
from web.app import build_services, create_app
from web.prefer import wait_seconds
from workers.messages import agent_run
from workers.runtime import build_deps

RUN = "/api/v1/admin/agents/run"
RUNS = "/api/v1/admin/agents/runs"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "org_id": "acme",
        "team_node_id": "payments",
        "agent_name": "planner",
        "message": "why is checkout slow?",
        **overrides,
    }


def start(
    client: testing.TestClient, token: str, *, prefer: str | None = None, **overrides: Any
) -> testing.Result:
    headers = auth(token)
    if prefer is not None:
        headers["Prefer"] = prefer
    return client.simulate_post(RUN, json=body(**overrides), headers=headers)


def finished(db: Any, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> Any:
        row = db.execute(
            "SELECT * FROM orchestrator_agent_runs WHERE id = %s", (run_id,)
        ).fetchone()
        return row if row and row["status"] in ("succeeded", "failed") else None

    return wait_for(done, timeout)


def test_a_run_reaches_the_named_agent_and_records_its_answer(
    stack: dict[str, Any],
    db: Any,
    agent: AgentStandIn,
    admin_token: str,
    config_service: ConfigServiceStandIn,
) -> None:
    client = stack["client"]
    context = {"user_id": "U1", "metadata": {"trigger": "api", "ticket": "OPS-1"}}
    accepted = start(client, admin_token, context=context, timeout=40, max_turns=7)
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json["agent_run_id"]
    assert accepted.json == {"agent_run_id": run_id, "status": "queued"}
    assert accepted.headers["Location"] == f"{RUNS}/{run_id}"

    row = finished(db, run_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1
    [call] = agent.runs_snapshot()
    assert call["agent"] == "planner"
    assert call["correlation_id"] == run_id
    # The team's own impersonation JWT, minted by the Config Service for acme/payments.
    principal = config_service.principal(call["team_token"])
    assert principal is not None
    assert (principal["auth_kind"], principal["org_id"], principal["team_node_id"]) == (
        "impersonation",
        "acme",
        "payments",
    )
    assert call["body"] == {
        "message": "why is checkout slow?",
        "context": context,
        "timeout": 40,
        "max_turns": 7,
        "output_destinations": [],
        "trigger_source": "api",
    }

    one = client.simulate_get(accepted.headers["Location"], headers=auth(admin_token))
    assert one.status_code == 200
    run = one.json
    assert (run["agent_run_id"], run["status"], run["trigger_source"]) == (
        run_id,
        "succeeded",
        "api",
    )
    assert (run["org_id"], run["team_node_id"], run["agent_name"]) == (
        "acme",
        "payments",
        "planner",
    )
    assert run["result"]["output"].startswith("stand-in agent planner handled")
    assert run["result"]["correlation_id"] == run_id
    assert run["error"] is None and run["event_id"] is None
    assert run["request"]["timeout"] == 40 and run["duration_seconds"] >= 0
    assert run["created_at"].endswith(("Z", "+00:00")) and run["finished_at"] is not None

    audit = db.execute(
        "SELECT * FROM orchestrator_audit_log WHERE action = 'agent_run.requested'"
    ).fetchone()
    assert (audit["subject"], audit["org_id"], audit["team_node_id"]) == (
        run_id,
        "acme",
        "payments",
    )
    assert audit["actor"].startswith("admin:") and audit["detail"]["agent_name"] == "planner"
    assert audit["request_id"] == accepted.headers["X-Request-ID"]


def test_timeout_and_max_turns_default_to_the_generic_settings(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    run_id = start(stack["client"], admin_token).json["agent_run_id"]
    finished(db, run_id)
    settings = stack["settings"]
    [call] = agent.runs_snapshot()
    assert (call["body"]["timeout"], call["body"]["max_turns"]) == (
        settings.orchestrator_generic_agent_timeout_seconds,
        settings.orchestrator_generic_agent_max_turns,
    )


def test_prefer_wait_answers_200_with_the_finished_run(
    stack: dict[str, Any], agent: AgentStandIn, admin_token: str
) -> None:
    answer = start(stack["client"], admin_token, prefer="wait=5")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "wait=5"
    run = answer.json
    assert run["status"] == "succeeded" and run["result"]["success"] is True
    assert run["result"]["output"].startswith("stand-in agent planner handled")
    assert answer.headers["Location"] == f"{RUNS}/{run['agent_run_id']}"
    assert len(agent.runs_snapshot()) == 1


def test_prefer_wait_shorter_than_the_run_answers_202_and_the_run_finishes_later(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    agent.set_behaviour("slow", delay=3.0)
    began = time.monotonic()
    answer = start(stack["client"], admin_token, prefer="wait=1", timeout=30)
    elapsed = time.monotonic() - began
    assert answer.status_code == 202, answer.text
    assert 1.0 <= elapsed < 2.5, elapsed
    assert answer.json["status"] in ("queued", "running")
    row = finished(db, answer.json["agent_run_id"])
    assert row["status"] == "succeeded"


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, 0),
        ("wait=5", 5),
        ("respond-async, wait=10", 10),
        ('WAIT="7"', 7),
        ("wait=100", 60),
        ("wait=" + "9" * 5000, 60),
        ("wait=0", 0),
        ("wait=abc", 0),
        ("wait=-1", 0),
        ("wait=1.5", 0),
        ("waiting=3", 0),
        ("return=minimal", 0),
    ],
)
def test_prefer_wait_parsing(header: str | None, expected: int) -> None:
    assert wait_seconds(header, cap=60) == expected


def test_a_malformed_wait_is_ignored(
    stack: dict[str, Any], agent: AgentStandIn, admin_token: str
) -> None:
    agent.set_behaviour("slow", delay=1.0)
    began = time.monotonic()
    answer = start(stack["client"], admin_token, prefer="wait=soon")
    assert answer.status_code == 202 and time.monotonic() - began < 0.9
    assert "Preference-Applied" not in answer.headers


def test_waiting_requests_are_bounded_per_process(
    stack: dict[str, Any], services: Any, agent: AgentStandIn, admin_token: str
) -> None:
    """Two threads → one may wait; the second gets its 202 at once."""
    settings = stack["settings"].model_copy(update={"orchestrator_web_threads": 2})
    client = testing.TestClient(create_app(settings, services))
    agent.set_behaviour("slow", delay=1.5)
    results: dict[str, testing.Result] = {}
    first = threading.Thread(
        target=lambda: results.update(first=start(client, admin_token, prefer="wait=10"))
    )
    first.start()
    time.sleep(0.5)  # the first request is waiting by now
    began = time.monotonic()
    results["second"] = start(client, admin_token, prefer="wait=10")
    assert time.monotonic() - began < 1.0
    first.join(timeout=20)
    assert results["first"].status_code == 200, results["first"].text
    assert results["second"].status_code == 202
    assert "Preference-Applied" not in results["second"].headers


def test_transient_agent_failures_are_retried_then_fail_with_the_reason(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    agent.set_behaviour("fail_500")  # every attempt; the stack allows 3
    run_id = start(stack["client"], admin_token).json["agent_run_id"]
    row = finished(db, run_id)
    assert row["status"] == "failed"
    assert row["error"] == "peer_unavailable: agent answered 500"
    assert row["attempts"] == 3
    calls = agent.runs_snapshot()
    assert [c["correlation_id"] for c in calls] == [run_id] * 3
    failure = wait_for(
        lambda: db.execute(
            "SELECT * FROM orchestrator_job_failures WHERE actor = 'run_agent'"
        ).fetchone()
    )
    assert failure["queue"] == "agents" and failure["arguments"]["args"] == [run_id]


def test_a_transient_failure_that_clears_ends_succeeded(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    agent.set_behaviour("fail_500", times=2)
    run_id = start(stack["client"], admin_token).json["agent_run_id"]
    row = finished(db, run_id)
    assert row["status"] == "succeeded" and row["attempts"] == 3 and row["error"] is None
    assert len(agent.runs_snapshot()) == 3


def test_success_false_fails_at_once(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    agent.set_behaviour("success_false", error="the cluster is on fire")
    answer = start(stack["client"], admin_token, prefer="wait=5")
    assert answer.status_code == 200
    assert answer.json["status"] == "failed"
    assert answer.json["error"] == "agent_failed: agent run failed: the cluster is on fire"
    assert answer.json["attempts"] == 1
    time.sleep(0.3)  # room for a retry that must not happen
    assert len(agent.runs_snapshot()) == 1


def test_an_unknown_agent_fails_at_once(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    agent.known_agents = {"planner"}
    run_id = start(stack["client"], admin_token, agent_name="ghost").json["agent_run_id"]
    row = finished(db, run_id)
    assert row["status"] == "failed" and row["error"] == "agent_failed: unknown agent ghost"
    time.sleep(0.3)
    assert len(agent.runs_snapshot()) == 1


def test_a_redelivered_message_never_calls_the_agent_twice(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str, services: Any
) -> None:
    run_id = start(stack["client"], admin_token, prefer="wait=5").json["agent_run_id"]
    assert len(agent.runs_snapshot()) == 1
    # A duplicate message of a finished run (relay, redelivery) is a no-op.
    stack["broker"].enqueue(agent_run(run_id))
    stack["broker"].join("agents", timeout=10_000)
    assert len(agent.runs_snapshot()) == 1

    # A run another worker holds (its session advisory lock) is left to that worker.
    deps = build_deps(stack["settings"], services.pool, namespace=services.namespace)
    db.execute(
        "UPDATE orchestrator_agent_runs SET status = 'running', finished_at = NULL WHERE id = %s",
        (run_id,),
    )
    key = f"agent-run:{run_id}"
    with psycopg.connect(stack["settings"].dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        assert admin_agent_runs.execute(deps, run_id, is_last_attempt=False) == "running"
        assert len(agent.runs_snapshot()) == 1
        # The holder's session ends (a dead worker's connection closes: Postgres drops
        # its locks once the backend has gone, which is asynchronous — hence explicit).
        holder.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
    # A redelivery takes the run over, with the same correlation id.
    assert admin_agent_runs.execute(deps, run_id, is_last_attempt=False) == "succeeded"
    assert [c["correlation_id"] for c in agent.runs_snapshot()] == [run_id, run_id]


def test_the_runs_own_attempt_count_bounds_retries_across_duplicate_messages(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str, services: Any
) -> None:
    """A relayed duplicate carries a fresh retry count; the row's count still ends the
    run after `ORCHESTRATOR_MAX_ATTEMPTS` calls in all (3 in this stack)."""
    run_id = start(stack["client"], admin_token, prefer="wait=5").json["agent_run_id"]
    agent.set_behaviour("fail_500")
    deps = build_deps(stack["settings"], services.pool, namespace=services.namespace)

    def attempt_after(attempts: int) -> dict[str, Any]:
        db.execute(
            "UPDATE orchestrator_agent_runs SET status = 'running', attempts = %s,"
            " result = NULL, error = NULL, finished_at = NULL WHERE id = %s",
            (attempts, run_id),
        )
        with pytest.raises(PeerUnavailable):
            admin_agent_runs.execute(deps, run_id, is_last_attempt=False)
        return db.execute(
            "SELECT * FROM orchestrator_agent_runs WHERE id = %s", (run_id,)
        ).fetchone()

    # Not the last: the run waits for its retry, saying why.
    row = attempt_after(0)
    assert (row["status"], row["attempts"]) == ("running", 1)
    assert row["error"] == "peer_unavailable: agent answered 500 (attempt 1 of 3)"
    # The run's third call in all ends it, whatever the message's own count says.
    row = attempt_after(2)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["error"] == "peer_unavailable: agent answered 500"


def test_a_team_config_url_never_diverts_the_call(
    stack: dict[str, Any],
    db: Any,
    agent: AgentStandIn,
    admin_token: str,
    config_service: ConfigServiceStandIn,
) -> None:
    config_service.seed_team(
        "acme", "payments", config={"agent": {"dedicated_service_url": "http://127.0.0.1:9"}}
    )
    answer = start(stack["client"], admin_token, prefer="wait=5")
    assert answer.json["status"] == "succeeded"
    assert len(agent.runs_snapshot()) == 1


def test_output_destinations_only_from_an_explicit_api_override(
    stack: dict[str, Any],
    agent: AgentStandIn,
    admin_token: str,
    config_service: ConfigServiceStandIn,
) -> None:
    """The team's default destinations are for incidents; an API caller reads the
    answer from the run unless the team configured `trigger_overrides.api`."""
    default = {"type": "slack", "channel_id": "COPS"}
    override = {"type": "slack", "channel_id": "CAPI"}
    config_service.seed_team(
        "acme", "payments", config={"output_config": {"default_destinations": [default]}}
    )
    config_service.seed_team(
        "acme",
        "search",
        config={
            "output_config": {
                "default_destinations": [default],
                "trigger_overrides": {"api": [override]},
            }
        },
    )
    answer = start(stack["client"], admin_token, prefer="wait=5")
    assert answer.json["result"]["output"]  # the answer comes back in the run
    start(stack["client"], admin_token, prefer="wait=5", team_node_id="search")
    calls = agent.runs_snapshot()
    assert [c["body"]["output_destinations"] for c in calls] == [[], [override]]


def test_list_filters_and_cursor(
    stack: dict[str, Any],
    db: Any,
    agent: AgentStandIn,
    admin_token: str,
    config_service: ConfigServiceStandIn,
) -> None:
    client = stack["client"]
    config_service.seed_team("acme", "search")
    ok = [start(client, admin_token, prefer="wait=5").json["agent_run_id"] for _ in range(3)]
    other = start(client, admin_token, prefer="wait=5", team_node_id="search").json
    agent.set_behaviour("success_false")
    failed = start(client, admin_token, prefer="wait=5").json
    assert failed["status"] == "failed"
    db.execute(
        "INSERT INTO orchestrator_agent_runs (id, org_id, team_node_id, agent_name,"
        " trigger_source, status) VALUES (%s, 'acme', 'payments', 'planner', 'slack',"
        " 'succeeded')",
        (uuid.uuid4(),),
    )
    headers = auth(admin_token)

    def listed(query: str) -> dict[str, Any]:
        answer = client.simulate_get(RUNS, headers=headers, query_string=query)
        assert answer.status_code == 200, answer.text
        return answer.json

    everything = listed("")["items"]
    assert len(everything) == 6
    created = [i["created_at"] for i in everything]
    assert created == sorted(created, reverse=True)  # newest first
    assert "result" not in everything[0] and "request" not in everything[0]

    pages, cursor = [], ""
    while True:
        page = listed("limit=2&trigger_source=api" + (f"&cursor={cursor}" if cursor else ""))
        pages.append([i["agent_run_id"] for i in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(i for p in pages for i in p) == sorted(
        [*ok, other["agent_run_id"], failed["agent_run_id"]]
    )

    assert [i["agent_run_id"] for i in listed("status=failed")["items"]] == [failed["agent_run_id"]]
    assert [i["agent_run_id"] for i in listed("team_node_id=search")["items"]] == [
        other["agent_run_id"]
    ]
    assert [i["trigger_source"] for i in listed("trigger_source=slack")["items"]] == ["slack"]
    assert listed("org_id=globex")["items"] == []
    for bad in ("limit=0", "limit=501", "status=done", "trigger_source=email", "cursor=zzz",
                "org_id=bad%20id", "colour=blue"):  # fmt: skip
        answer = client.simulate_get(RUNS, headers=headers, query_string=bad)
        assert answer.status_code == 422, bad
    # Well-formed base64 JSON, but not a cursor this service wrote: still 422, never 500.
    forged = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "not-a-uuid"]').decode()
    answer = client.simulate_get(RUNS, headers=headers, query_string=f"cursor={forged}")
    assert answer.status_code == 422


def test_org_admins_act_and_read_only_inside_their_org(
    stack: dict[str, Any], db: Any, admin_token: str, config_service: ConfigServiceStandIn
) -> None:
    client = stack["client"]
    acme_run = start(client, admin_token, prefer="wait=5").json["agent_run_id"]
    globex = config_service.add_org_admin("globex")
    refused = start(client, globex)
    assert refused.status_code == 403
    assert db.execute("SELECT count(*) AS n FROM orchestrator_agent_runs").fetchone()["n"] == 1
    assert client.simulate_get(f"{RUNS}/{acme_run}", headers=auth(globex)).status_code == 404
    assert client.simulate_get(RUNS, headers=auth(globex)).json["items"] == []
    assert (
        client.simulate_get(RUNS, headers=auth(globex), query_string="org_id=acme").status_code
        == 403
    )
    acme = config_service.add_org_admin("acme")
    own = start(client, acme, prefer="wait=5")
    assert own.status_code == 200 and own.json["org_id"] == "acme"
    assert client.simulate_get(f"{RUNS}/{acme_run}", headers=auth(acme)).status_code == 200
    assert len(client.simulate_get(RUNS, headers=auth(acme)).json["items"]) == 2


def test_a_team_credential_or_a_missing_permission_is_refused(
    stack: dict[str, Any], config_service: ConfigServiceStandIn
) -> None:
    client = stack["client"]
    team = config_service.add_team_token("acme", "payments")
    assert start(client, team).status_code == 403  # a valid credential, but not an admin's
    reader = config_service.add_principal(
        "events-reader", role="admin", org_id=None, permissions=["admin:events"]
    )
    assert start(client, reader).status_code == 403
    assert client.simulate_get(RUNS, headers=auth(reader)).status_code == 403


def test_unauthenticated_requests_are_401(stack: dict[str, Any]) -> None:
    client = stack["client"]
    assert client.simulate_post(RUN, json=body()).status_code == 401
    assert client.simulate_post(RUN, body=b"{not json").status_code == 401  # auth first
    assert client.simulate_get(RUNS).status_code == 401
    assert client.simulate_get(f"{RUNS}/{uuid.uuid4()}").status_code == 401
    assert client.simulate_post(RUN, json=body(), headers=auth("nobody")).status_code == 401


def test_unknown_or_malformed_ids_are_404(stack: dict[str, Any], admin_token: str) -> None:
    client = stack["client"]
    for run_id in (str(uuid.uuid4()), "not-a-uuid", "1" * 300):
        answer = client.simulate_get(f"{RUNS}/{run_id}", headers=auth(admin_token))
        assert answer.status_code == 404, run_id
        assert answer.json["description"] == "no such agent run"


def test_malformed_bodies_are_400(stack: dict[str, Any], db: Any, admin_token: str) -> None:
    client = stack["client"]
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"", b'{"message": NaN}'):
        answer = client.simulate_post(RUN, body=raw, headers=auth(admin_token))
        assert answer.status_code == 400, raw
    assert db.execute("SELECT count(*) AS n FROM orchestrator_agent_runs").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"org_id": "acme corp"}, "org_id"),
        ({"org_id": ""}, "org_id"),
        ({"team_node_id": "t" * 65}, "team_node_id"),
        ({"agent_name": "../admin"}, "agent_name"),
        ({"agent_name": ".."}, "agent_name"),
        ({"agent_name": "a/b"}, "agent_name"),
        ({"agent_name": "x" * 129}, "agent_name"),
        ({"message": ""}, "message"),
        ({"message": "  \n "}, "message"),
        ({"message": "nul\u0000byte"}, "message"),
        ({"message": 42}, "message"),
        ({"context": ["not", "an", "object"]}, "context"),
        ({"context": {"k\u0000": 1}}, "context"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 3601}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"max_turns": 0}, "max_turns"),
        ({"max_turns": 501}, "max_turns"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_schema_violations_are_422_naming_the_field(
    stack: dict[str, Any], db: Any, admin_token: str, overrides: dict[str, Any], field: str
) -> None:
    answer = start(stack["client"], admin_token, **overrides)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json["errors"]]
    assert field in answer.json["description"]
    assert db.execute("SELECT count(*) AS n FROM orchestrator_agent_runs").fetchone()["n"] == 0


def test_missing_fields_and_the_message_cap_are_422(
    stack: dict[str, Any], admin_token: str
) -> None:
    answer = stack["client"].simulate_post(RUN, json={}, headers=auth(admin_token))
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json["errors"]} == {
        "org_id",
        "team_node_id",
        "agent_name",
        "message",
    }
    # The body cap of the test stack is below the message cap: check the model itself.
    with pytest.raises(ValidationError) as raised:
        AgentRunRequest.model_validate(body(message="x" * (admin_agent_runs.MAX_MESSAGE_CHARS + 1)))
    assert raised.value.errors()[0]["loc"] == ("message",)
    AgentRunRequest.model_validate(body(message="x" * admin_agent_runs.MAX_MESSAGE_CHARS))


def test_oversized_and_chunked_bodies_are_refused(stack: dict[str, Any], admin_token: str) -> None:
    client = stack["client"]
    cap = stack["settings"].orchestrator_max_body_bytes
    raw = json.dumps(body(message="x" * cap)).encode()
    assert client.simulate_post(RUN, body=raw, headers=auth(admin_token)).status_code == 413
    chunked = {**auth(admin_token), "Transfer-Encoding": "chunked"}
    assert client.simulate_post(RUN, body=b"", headers=chunked).status_code == 411


def test_with_redis_down_the_run_is_accepted_and_relayed_later(
    stack: dict[str, Any], db: Any, agent: AgentStandIn, admin_token: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = stack["settings"].model_copy(update={"redis_url": SecretStr(dead)})
    web_services = build_services(settings)
    try:
        web_services.pool.wait(timeout=10)
        client = testing.TestClient(create_app(settings, web_services))
        began = time.monotonic()
        answer = start(client, admin_token, prefer="wait=30")
        assert answer.status_code == 202, answer.text
        assert time.monotonic() - began < 5  # no pointless wait for a run not enqueued
        assert "Preference-Applied" not in answer.headers
        run_id = answer.json["agent_run_id"]
        second = start(client, admin_token).json["agent_run_id"]  # breaker open: no Redis
        for stored in (run_id, second):
            row = db.execute(
                "SELECT status FROM orchestrator_agent_runs WHERE id = %s", (stored,)
            ).fetchone()
            assert row["status"] == "queued"
        time.sleep(0.5)
        assert agent.runs_snapshot() == []
    finally:
        web_services.close()
    # Redis back (the stack's): the scheduler's relay enqueues both, each runs once.
    with db.transaction():
        relayed = relay_runs(
            db,
            provisioning=lambda _i: None,
            agent=lambda i: stack["broker"].enqueue(agent_run(i)),
            older_than_seconds=0,
        )
    assert relayed["agent_runs_relayed"] == 2
    assert finished(db, run_id)["status"] == "succeeded"
    assert finished(db, second)["status"] == "succeeded"
    assert sorted(c["correlation_id"] for c in agent.runs_snapshot()) == sorted([run_id, second])


def test_the_openapi_document_describes_the_routes(stack: dict[str, Any]) -> None:
    doc = stack["client"].simulate_get("/openapi.json").json
    post = doc["paths"][RUN]["post"]
    assert {"200", "202", "400", "401", "403", "413", "422"} <= set(post["responses"])
    schema = doc["components"]["schemas"]["AgentRunRequest"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["timeout"]["anyOf"][0]["maximum"] == 3600
    params = {p["name"] for p in doc["paths"][RUNS]["get"]["parameters"]}
    assert params == {"org_id", "team_node_id", "status", "trigger_source", "limit", "cursor"}
    assert "get" in doc["paths"][f"{RUNS}/{{run_id}}"]
