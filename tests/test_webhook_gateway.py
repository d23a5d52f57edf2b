"""The webhook gateway (SPEC §4.2), per source: valid, forged, stale, malformed
signature headers, rotated secrets, disabled sources, oversized bodies, duplicates,
Slack retries and url_verification, and the durability rules (Postgres down → 503 and
nothing acknowledged; Redis down → stored, acknowledged, left for the relay).

Payloads are the providers' published examples (tests/fixtures/webhooks/SOURCES.md)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from falcon import testing

from orchestrator.settings import Settings
from orchestrator.webhooks.signing import signed_headers
from tests.webhook_support import OLD, PATHS, SAMPLES, SECRET_OF, SECRETS, _secret, fixture, send
from web.app import create_app


def row(db: Any, event_id: str) -> dict[str, Any]:
    return db.execute(
        "SELECT * FROM orchestrator_webhook_events WHERE id = %s", (event_id,)
    ).fetchone()


@pytest.mark.parametrize("source", list(PATHS))
def test_a_valid_delivery_is_stored_enqueued_and_acknowledged(
    gateway: testing.TestClient, db: Any, services: Any, source: str
) -> None:
    result = send(gateway, source)
    assert result.status_code == 200, result.text
    assert result.json["ok"] is True and "duplicate" not in result.json
    stored = row(db, result.json["event_id"])
    assert stored["status"] == "queued"
    assert [h["status"] for h in stored["status_history"]] == ["received", "queued"]
    assert stored["payload"] and stored["source"] == source
    for name, value in stored["headers"].items():
        if any(s in name for s in ("signature", "authorization")):
            assert value == "***"
    assert SECRETS[SECRET_OF.get(source, source)] not in json.dumps(stored["headers"])
    queued = services.redis.llen(f"{services.namespace}:webhooks")
    assert queued == 1


def test_routing_identifiers_are_extracted_per_source(gateway: testing.TestClient, db: Any) -> None:
    expected = {
        "slack": {"slack_channel_id": "C123ABC456"},
        "github": {"github_repo": "Codertocat/Hello-World"},
        "incidentio": {"incidentio_alert_source_id": "01GW2G3V0S59R238FAHPDS1R66"},
        "coralogix": {"coralogix_team_name": "payments", "service": "checkout"},
        "generic": {"service": "checkout"},
    }
    for source, identifiers in expected.items():
        event_id = send(gateway, source).json["event_id"]
        got = row(db, event_id)["routing_identifiers"]
        assert got == identifiers | got, (source, got)
        for key, value in identifiers.items():
            assert got[key] == value, (source, key, got)
    pd = json.loads(SAMPLES["pagerduty"]())
    got = row(db, send(gateway, "pagerduty").json["event_id"])["routing_identifiers"]
    assert got == {"pagerduty_service_id": pd["event"]["data"]["service"]["id"]}
    incident = send(
        gateway, "incidentio", fixture("incidentio/public_incident.incident_created_v2.json")
    )
    got = row(db, incident.json["event_id"])["routing_identifiers"]
    assert got["incidentio_team_id"] == "01JPQA75EPNEES4479P16P4XAB"
    published = json.loads(fixture("incidentio/public_incident.incident_created_v2.json"))
    incident_id = published["public_incident.incident_created_v2"]["id"]
    assert incident_id not in got.values()  # never the incident's own id


@pytest.mark.parametrize("source", list(PATHS))
def test_a_forged_delivery_is_401_and_not_stored(
    gateway: testing.TestClient, db: Any, source: str
) -> None:
    result = send(
        gateway,
        source,
        secret="whsec_Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2Vk"
        if source in ("incidentio", "generic")
        else "forged-secret",
    )
    assert result.status_code == 401
    assert result.json["title"] == "Unauthorized"
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 0


@pytest.mark.parametrize("source", ["slack", "slack_interactions", "incidentio", "generic"])
def test_a_stale_delivery_is_401(gateway: testing.TestClient, source: str) -> None:
    assert send(gateway, source, now=time.time() - 301).status_code == 401
    assert send(gateway, source, now=time.time() + 400).status_code == 401


@pytest.mark.parametrize(
    "source,header,values",
    [
        ("slack", "X-Slack-Signature", ["v0,bogus", "v0=", "v1=" + "a" * 64, "v0=zz" * 13, ""]),
        ("slack", "X-Slack-Request-Timestamp", ["yesterday", "", "1e10", "-1"]),
        (
            "github",
            "X-Hub-Signature-256",
            [
                "sha256,bogus",
                "sha256=",
                "sha1=" + "a" * 40,
                "sha256=" + "g" * 64,
                "sha256=abc",
                "nocomma",
            ],
        ),
        (
            "pagerduty",
            "X-PagerDuty-Signature",
            ["v1,bogus", "v1=", "v2=" + "a" * 64, "v1=" + "x" * 64, ",,,", "v1=abc,v1=def"],
        ),
        ("incidentio", "webhook-signature", ["v1,bogus", "v1,", "v2,AAAA", "nocomma", "v1,!!!!"]),
        ("incidentio", "webhook-timestamp", ["soon", "", "99999999999999999999"]),
        ("generic", "webhook-signature", ["v1,bogus", "garbage", "v1,===="]),
        ("coralogix", "Authorization", ["Bearer", "Basic abc", "bearer wrong", ""]),
    ],
)
def test_malformed_signature_headers_are_401_never_5xx(
    gateway: testing.TestClient, source: str, header: str, values: list[str]
) -> None:
    for value in values:
        result = send(gateway, source, headers={header: value})
        assert result.status_code == 401, (header, value, result.status_code)


@pytest.mark.parametrize("source", ["slack", "github", "incidentio", "coralogix"])
def test_every_rotated_secret_is_accepted(gateway: testing.TestClient, source: str) -> None:
    assert send(gateway, source, secret=OLD[source]).status_code == 200
    assert send(gateway, source, secret=SECRETS[source]).status_code == 200


def test_pagerduty_accepts_any_of_several_signatures(gateway: testing.TestClient) -> None:
    body = SAMPLES["pagerduty"]()
    good = signed_headers("pagerduty", SECRETS["pagerduty"], body)["X-PagerDuty-Signature"]
    result = send(gateway, "pagerduty", headers={"X-PagerDuty-Signature": f"v1={'0' * 64},{good}"})
    assert result.status_code == 200


@pytest.mark.parametrize("source", list(PATHS))
def test_a_disabled_source_is_404(settings: Settings, services: Any, source: str) -> None:
    roomy = settings.model_copy(update={"orchestrator_max_body_bytes": 65536})
    client = testing.TestClient(create_app(roomy, services))  # no secrets configured
    result = send(
        client,
        source,
        secret="anything" if source not in ("incidentio", "generic") else SECRETS["generic"],
    )
    assert result.status_code == 404
    assert result.json["description"] == "source not configured"


def test_an_oversized_body_is_413_before_anything_else(
    gateway: testing.TestClient, db: Any
) -> None:
    body = json.dumps({"padding": "x" * 70000}).encode()
    assert send(gateway, "github", body).status_code == 413
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "source",
    ["github", "pagerduty", "incidentio", "generic", "coralogix", "slack", "slack_interactions"],
)
def test_a_duplicate_delivery_is_acknowledged_and_nothing_else_happens(
    gateway: testing.TestClient, db: Any, services: Any, source: str
) -> None:
    delivery = str(uuid.uuid4())
    first = send(gateway, source, delivery_id=delivery)
    second = send(gateway, source, delivery_id=delivery)
    assert second.status_code == 200
    assert second.json == {"ok": True, "duplicate": True, "event_id": first.json["event_id"]}
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 1
    assert services.redis.llen(f"{services.namespace}:webhooks") == 1


def test_github_dedups_on_hook_and_delivery(gateway: testing.TestClient, db: Any) -> None:
    delivery = str(uuid.uuid4())
    a = send(gateway, "github", delivery_id=delivery, hook_id="100")
    b = send(gateway, "github", delivery_id=delivery, hook_id="200")  # another hook, same event
    assert a.json["event_id"] != b.json["event_id"]
    assert "duplicate" not in b.json


def test_a_slack_retry_of_a_known_event_is_a_duplicate(gateway: testing.TestClient) -> None:
    first = send(gateway, "slack")
    retry = send(
        gateway, "slack", headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert retry.json == {"ok": True, "duplicate": True, "event_id": first.json["event_id"]}


def test_slack_url_verification_is_answered_inline(gateway: testing.TestClient, db: Any) -> None:
    body = fixture("slack/url_verification.json")
    result = send(gateway, "slack", body)
    assert result.status_code == 200
    assert result.json == {"challenge": json.loads(body)["challenge"]}
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 0
    assert send(gateway, "slack", body, secret="forged").status_code == 401


@pytest.mark.parametrize(
    "source,body,status",
    [
        ("github", b"{not json", 400),
        ("github", b"[1,2]", 400),
        ("slack", b'{"type": "event_callback"}', 422),
        ("pagerduty", b'{"no_event": true}', 422),
        ("generic", b'{"routing": {"service": 5}}', 422),
        ("generic", b'{"routing": "checkout"}', 422),
        ("slack_interactions", b"not-a-form", 400),
        ("slack_interactions", b"payload=%7Bbroken", 400),
    ],
)
def test_a_signed_but_malformed_payload_is_a_clear_4xx(
    gateway: testing.TestClient, db: Any, source: str, body: bytes, status: int
) -> None:
    result = send(gateway, source, body)
    assert result.status_code == status, result.text
    assert result.json["description"]
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 0


def test_github_without_delivery_headers_is_422(gateway: testing.TestClient) -> None:
    body = SAMPLES["github"]()
    headers = signed_headers("github", SECRETS["github"], body)
    del headers["X-GitHub-Delivery"]
    assert gateway.simulate_post(PATHS["github"], body=body, headers=headers).status_code == 422


def test_the_flood_guard_answers_429_with_retry_after(
    gateway_settings: Settings, services: Any
) -> None:
    tight = gateway_settings.model_copy(update={"orchestrator_ingress_rate_limit": "3/minute"})
    services.settings = tight
    client = testing.TestClient(create_app(tight, services))
    codes = [send(client, "github").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = send(client, "github")
    assert int(limited.headers["Retry-After"]) >= 1
    assert send(client, "pagerduty").status_code == 200  # per source
    forged = send(client, "github", secret="forged")
    assert forged.status_code == 401  # signature first: forgeries do not spend the budget


def test_redis_down_still_stores_and_acknowledges(
    gateway_settings: Settings, services: Any, db: Any
) -> None:
    from workers.broker import create_broker, redis_client

    down = "redis://127.0.0.1:1/0"
    dead = redis_client(down, timeout=1.0, retry=False)  # as build_services makes it
    services.redis = dead
    services.broker = create_broker(gateway_settings, role="web", client=dead)
    settings = gateway_settings.model_copy(update={"redis_url": _secret(down)})
    client = testing.TestClient(create_app(settings, services))
    for _ in range(3):
        started = time.monotonic()
        result = send(client, "github")
        assert result.status_code == 200
        assert time.monotonic() - started < 2.5  # Slack wants an answer within 3 s
        stored = row(db, result.json["event_id"])
        assert stored["status"] == "received"  # not enqueued: the relay will


def test_postgres_down_is_503_and_nothing_is_acknowledged(
    gateway_settings: Settings, services: Any
) -> None:
    from psycopg_pool import ConnectionPool

    dead = ConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none",
        open=False,
        kwargs={"connect_timeout": 1},
        timeout=1.0,
    )
    dead.open(wait=False)
    services.pool = dead
    try:
        result = send(testing.TestClient(create_app(gateway_settings, services)), "github")
        assert result.status_code == 503
        assert "event_id" not in result.text
        assert services.redis.llen(f"{services.namespace}:webhooks") == 0
    finally:
        dead.close()


def test_credentials_inside_payloads_are_masked_when_stored(
    gateway: testing.TestClient, db: Any
) -> None:
    published = json.loads(SAMPLES["slack"]())
    assert published["token"]  # Slack's legacy verification token rides in the body
    stored = row(db, send(gateway, "slack").json["event_id"])["payload"]
    assert stored["token"] == "***"
    assert stored["event"]["channel"] == published["event"]["channel"]


def test_a_forged_cursor_is_a_422_not_a_500(client: Any, admin_token: str) -> None:
    from orchestrator.pagination import encode_cursor

    forged = encode_cursor(datetime.now(UTC), "not-a-uuid")
    for path in ("/api/v1/admin/webhooks/events", "/api/v1/admin/provision/runs"):
        answer = client.simulate_get(
            path, params={"cursor": forged}, headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert answer.status_code == 422, (path, answer.text)
