"""The admin auth matrix of SPEC §4.3, against the Config Service stand-in over HTTP:
missing, invalid, team token, no permission, other org, Config Service down, slow or
failing, cache hits and cache expiry."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from orchestrator.auth.admin import AdminAuthenticator, Rejected, token_key
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.peers.config_service import ConfigServiceClient
from web.app import create_app

AUDIT = "/api/v1/admin/audit"
QUEUES = "/api/v1/admin/jobs/queues"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me_calls(standin: ConfigServiceStandIn) -> int:
    return sum(1 for c in standin.calls if c.path == "/api/v1/auth/me")


def test_missing_credential_is_401(client: testing.TestClient) -> None:
    result = client.simulate_get(AUDIT)
    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"] == "Bearer"
    assert "missing admin token" in result.json["description"]
    assert client.simulate_get(AUDIT, headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.simulate_get(AUDIT, headers={"Authorization": "Bearer "}).status_code == 401


def test_invalid_credential_is_401(client: testing.TestClient) -> None:
    result = client.simulate_get(AUDIT, headers=bearer("forged-token"))
    assert result.status_code == 401
    assert result.json["description"] == "invalid admin token"
    assert "forged-token" not in result.text


def test_super_admin_with_bearer_or_x_admin_token(
    client: testing.TestClient, admin_token: str
) -> None:
    assert client.simulate_get(AUDIT, headers=bearer(admin_token)).status_code == 200
    assert client.simulate_get(AUDIT, headers={"X-Admin-Token": admin_token}).status_code == 200


def test_team_token_is_403(
    client: testing.TestClient, config_service: ConfigServiceStandIn
) -> None:
    token = config_service.add_team_token("org1", "team1")
    result = client.simulate_get(AUDIT, headers=bearer(token))
    assert result.status_code == 403
    assert "not an admin" in result.json["description"]


def test_fine_grained_admin_needs_admin_star_by_default(
    client: testing.TestClient, config_service: ConfigServiceStandIn
) -> None:
    token = config_service.add_principal(
        "oidc-events", role="admin", auth_kind="oidc", email="a@x.io", permissions=["admin:events"]
    )
    result = client.simulate_get(AUDIT, headers=bearer(token))
    assert result.status_code == 403
    assert "admin:*" in result.json["description"]


def test_fine_grained_permissions_when_admin_star_is_not_required(
    settings: Any, services: Any, config_service: ConfigServiceStandIn
) -> None:
    relaxed = settings.model_copy(update={"orchestrator_require_admin_star": False})
    client = testing.TestClient(create_app(relaxed, services))
    events = config_service.add_principal(
        "oidc-events", role="admin", auth_kind="oidc", permissions=["admin:events"]
    )
    provision = config_service.add_principal(
        "oidc-provision", role="admin", auth_kind="oidc", permissions=["admin:provision"]
    )
    assert client.simulate_get(AUDIT, headers=bearer(events)).status_code == 200
    denied = client.simulate_get(AUDIT, headers=bearer(provision))
    assert denied.status_code == 403
    assert "admin:events" in denied.json["description"]
    assert client.simulate_get(QUEUES, headers=bearer(events)).status_code == 403


def test_org_admin_is_confined_to_its_org(
    client: testing.TestClient, config_service: ConfigServiceStandIn, db: Any
) -> None:
    from orchestrator import audit

    audit.record(db, actor="t", action="x.own", org_id="org-a")
    audit.record(db, actor="t", action="x.other", org_id="org-b")
    token = config_service.add_org_admin("org-a")
    own = client.simulate_get(AUDIT, headers=bearer(token), query_string="org_id=org-a")
    assert own.status_code == 200
    assert [i["action"] for i in own.json["items"]] == ["x.own"]
    # Without a filter an org admin still sees only its own org.
    unfiltered = client.simulate_get(AUDIT, headers=bearer(token))
    assert [i["action"] for i in unfiltered.json["items"]] == ["x.own"]
    other = client.simulate_get(AUDIT, headers=bearer(token), query_string="org_id=org-b")
    assert other.status_code == 403
    # Queues span every org: an org admin may not read them.
    assert client.simulate_get(QUEUES, headers=bearer(token)).status_code == 403


def test_config_service_down_is_503(
    client: testing.TestClient, config_service: ConfigServiceStandIn
) -> None:
    config_service.stop()
    result = client.simulate_get(AUDIT, headers=bearer("any-token"))
    assert result.status_code == 503
    assert "config service unavailable" in result.json["description"]


@pytest.mark.parametrize(
    "fault", [{"status": 500}, {"status": 502}, {"status": 429}, {"latency": 1.5}, {"drop": True}]
)
def test_config_service_failing_or_slow_is_503(
    client: testing.TestClient,
    config_service: ConfigServiceStandIn,
    admin_token: str,
    fault: dict[str, Any],
) -> None:
    config_service.set_faults(**fault)
    result = client.simulate_get(AUDIT, headers=bearer(admin_token))
    assert result.status_code == 503, fault


def test_verified_principals_are_cached_by_token_hash(
    config_service: ConfigServiceStandIn, admin_token: str
) -> None:
    now = [1000.0]
    auth = AdminAuthenticator(ConfigServiceClient(config_service.url), ttl=15, clock=lambda: now[0])
    for _ in range(5):
        auth.authorize(admin_token, "admin:jobs")
    assert me_calls(config_service) == 1
    assert list(auth._cache.keys()) == [token_key(admin_token)]
    assert admin_token not in repr(auth._cache)


def test_cache_expiry_sees_a_revoked_token(
    config_service: ConfigServiceStandIn, admin_token: str
) -> None:
    now = [1000.0]
    auth = AdminAuthenticator(ConfigServiceClient(config_service.url), ttl=15, clock=lambda: now[0])
    auth.authorize(admin_token, "admin:jobs")
    config_service.revoke(admin_token)
    now[0] += 14
    auth.authorize(admin_token, "admin:jobs")  # still within the TTL
    now[0] += 2
    with pytest.raises(Rejected):
        auth.authorize(admin_token, "admin:jobs")
    assert me_calls(config_service) == 2


def test_rejections_are_not_cached(config_service: ConfigServiceStandIn) -> None:
    auth = AdminAuthenticator(ConfigServiceClient(config_service.url), ttl=15)
    with pytest.raises(Rejected):
        auth.authorize("late-token", "admin:jobs")
    config_service.add_super_admin("late-token")
    assert auth.authorize("late-token", "admin:jobs").actor.startswith("admin:")


def test_the_cache_is_bounded(config_service: ConfigServiceStandIn) -> None:
    auth = AdminAuthenticator(ConfigServiceClient(config_service.url), ttl=60, maxsize=3)
    for i in range(10):
        auth.authorize(config_service.add_super_admin(f"tok{i}"), "admin:jobs")
    assert len(auth._cache) == 3


def test_request_id_is_forwarded_to_the_config_service(
    client: testing.TestClient, config_service: ConfigServiceStandIn, admin_token: str
) -> None:
    client.simulate_get(AUDIT, headers={**bearer(admin_token), "X-Request-ID": "trace-42"})
    assert config_service.calls[-1].headers.get("x-request-id") == "trace-42"
