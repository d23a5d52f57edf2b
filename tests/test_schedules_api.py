"""The schedule API (SPEC §4.3): create, list, get, patch, delete a team's schedules —
validated, one per type, org-scoped, audited, and announced to the reconciler through
NOTIFY at commit. Bad input of every kind is a 4xx naming the problem."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
from falcon import testing

from orchestrator.devstack.config_service import ConfigServiceStandIn

BASE = "/api/v1/admin/orgs/acme/teams/payments/schedules"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client: testing.TestClient, token: str, **body: Any) -> testing.Result:
    payload = {"schedule_type": "ingestion", "cron_expression": "0 * * * *", **body}
    return client.simulate_post(BASE, json=payload, headers=auth(token))


def test_create_list_get_patch_delete(
    client: testing.TestClient, admin_token: str, db: Any
) -> None:
    created = create(client, admin_token, timezone="Europe/Berlin")
    assert created.status_code == 201, created.text
    schedule = created.json
    assert created.headers["Location"] == f"{BASE}/{schedule['schedule_id']}"
    assert {k: schedule[k] for k in ("org_id", "team_node_id", "schedule_type")} == {
        "org_id": "acme",
        "team_node_id": "payments",
        "schedule_type": "ingestion",
    }
    assert schedule["sync_status"] == "pending"
    assert schedule["k8s_cronjob_name"] == "pipeline-acme-payments-ingestion"
    assert set(schedule) >= {
        "schedule_id", "cron_expression", "timezone", "enabled", "sync_error",
        "last_synced_at", "last_run_at", "created_at",
    }  # fmt: skip

    listed = client.simulate_get(BASE, headers=auth(admin_token)).json
    assert [s["schedule_id"] for s in listed["items"]] == [schedule["schedule_id"]]
    assert listed["next_cursor"] is None
    url = f"{BASE}/{schedule['schedule_id']}"
    assert client.simulate_get(url, headers=auth(admin_token)).json == schedule

    patched = client.simulate_patch(
        url, json={"cron_expression": "*/10 * * * *", "enabled": False}, headers=auth(admin_token)
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json["cron_expression"], patched.json["enabled"]) == ("*/10 * * * *", False)
    assert patched.json["timezone"] == "Europe/Berlin"

    assert client.simulate_delete(url, headers=auth(admin_token)).status_code == 204
    assert client.simulate_get(url, headers=auth(admin_token)).status_code == 404
    assert client.simulate_delete(url, headers=auth(admin_token)).status_code == 404

    actions = [
        (r["action"], r["subject"])
        for r in db.execute(
            "SELECT action, subject FROM orchestrator_audit_log WHERE action LIKE 'schedule.%%'"
            " ORDER BY id"
        ).fetchall()
    ]
    sid = schedule["schedule_id"]
    assert actions == [
        ("schedule.created", sid),
        ("schedule.updated", sid),
        ("schedule.deleted", sid),
    ]
    change = db.execute(
        "SELECT detail FROM orchestrator_audit_log WHERE action = 'schedule.updated'"
    ).fetchone()["detail"]["changes"]
    assert change["cron_expression"] == {"from": "0 * * * *", "to": "*/10 * * * *"}


def test_one_schedule_per_type(client: testing.TestClient, admin_token: str) -> None:
    assert create(client, admin_token).status_code == 201
    second = create(client, admin_token, cron_expression="5 * * * *")
    assert second.status_code == 409
    assert "already has its ingestion schedule" in second.json["description"]
    assert create(client, admin_token, schedule_type="eval").status_code == 201


def test_invalid_fields_are_422_naming_the_problem(
    client: testing.TestClient, admin_token: str
) -> None:
    cases = [
        ({"cron_expression": "61 * * * *"}, "cron_expression", "minute field: 61"),
        ({"cron_expression": "* * *"}, "cron_expression", "expected 5 fields"),
        ({"timezone": "Mars/Base"}, "timezone", "IANA"),
        ({"schedule_type": "hourly"}, "schedule_type", "ingestion"),
        ({"enabled": "true"}, "enabled", "bool"),
        ({"extra": 1}, "extra", "Extra inputs"),
        ({"cron_expression": "1" * 65}, "cron_expression", "64"),
    ]
    for body, field, message in cases:
        answer = create(client, admin_token, **body)
        assert answer.status_code == 422, (body, answer.text)
        errors = {e["field"]: e["message"] for e in answer.json["errors"]}
        assert field in errors and message in errors[field], (body, errors)
    listed = client.simulate_get(BASE, headers=auth(admin_token)).json
    assert listed["items"] == []  # nothing half-stored


def test_patch_rules(client: testing.TestClient, admin_token: str) -> None:
    url = f"{BASE}/{create(client, admin_token).json['schedule_id']}"
    for body in ({}, {"schedule_type": "eval"}, {"enabled": None}, {"timezone": "Nowhere"}):
        answer = client.simulate_patch(url, json=body, headers=auth(admin_token))
        assert answer.status_code == 422, (body, answer.text)
    missing = f"{BASE}/{uuid.uuid4()}"
    assert (
        client.simulate_patch(missing, json={"enabled": False}, headers=auth(admin_token))
    ).status_code == 404


def test_bad_requests_never_5xx(client: testing.TestClient, admin_token: str) -> None:
    headers = {**auth(admin_token), "Content-Type": "application/json"}
    assert client.simulate_post(BASE, body="{not json", headers=headers).status_code == 400
    assert client.simulate_post(BASE, body="[]", headers=headers).status_code == 400
    assert client.simulate_post(BASE, body="", headers=headers).status_code == 400
    oversized = json.dumps({"schedule_type": "eval", "cron_expression": "x" * 10_000})
    assert client.simulate_post(BASE, body=oversized, headers=headers).status_code == 413
    for path in (f"{BASE}/not-a-uuid", f"{BASE}/{'9' * 300}"):
        assert client.simulate_get(path, headers=auth(admin_token)).status_code == 404
    bad_ids = "/api/v1/admin/orgs/acme/teams/bad%20team/schedules"
    answer = client.simulate_get(bad_ids, headers=auth(admin_token))
    assert answer.status_code == 422 and answer.json["errors"][0]["field"] == "team_node_id"
    long_org = f"/api/v1/admin/orgs/{'o' * 65}/teams/t/schedules"
    assert client.simulate_get(long_org, headers=auth(admin_token)).status_code == 422


def test_auth_permission_and_org_scope(
    client: testing.TestClient, config_service: ConfigServiceStandIn, admin_token: str
) -> None:
    assert client.simulate_get(BASE).status_code == 401
    assert client.simulate_get(BASE, headers=auth("forged-token")).status_code == 401
    reader = config_service.add_principal(
        "events-only", role="admin", auth_kind="admin_token", permissions=["admin:events"]
    )
    assert client.simulate_get(BASE, headers=auth(reader)).status_code == 403
    scoped = config_service.add_principal(
        "schedules-only", role="admin", auth_kind="admin_token",
        permissions=["admin:*", "admin:schedules"],
    )  # fmt: skip
    assert client.simulate_get(BASE, headers=auth(scoped)).status_code == 200
    other_org = config_service.add_org_admin("globex")
    created = create(client, admin_token).json
    for answer in (
        client.simulate_get(BASE, headers=auth(other_org)),
        client.simulate_get(f"{BASE}/{created['schedule_id']}", headers=auth(other_org)),
        create(client, other_org, schedule_type="eval"),
    ):
        assert answer.status_code == 403
    own = config_service.add_org_admin("acme")
    assert create(client, own, schedule_type="eval").status_code == 201
    # The id of another team's schedule does not reach it through this team's path.
    other_team = f"/api/v1/admin/orgs/acme/teams/other/schedules/{created['schedule_id']}"
    assert client.simulate_get(other_team, headers=auth(admin_token)).status_code == 404


def test_changes_notify_the_reconciler_and_sync_writes_do_not(
    client: testing.TestClient, admin_token: str, database_url: str, db: Any
) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN orchestrator_schedules")

        def heard() -> int:
            return sum(1 for _ in listener.notifies(timeout=0.5, stop_after=10))

        url = f"{BASE}/{create(client, admin_token).json['schedule_id']}"
        assert heard() >= 1
        client.simulate_patch(url, json={"timezone": "Asia/Tokyo"}, headers=auth(admin_token))
        assert heard() >= 1
        db.execute(
            "UPDATE orchestrator_pipeline_schedules SET sync_status = 'synced',"
            " last_synced_at = now(), k8s_generation = 3"
        )
        assert heard() == 0  # the reconciler's own writes must not wake it again
        client.simulate_delete(url, headers=auth(admin_token))
        assert heard() >= 1
