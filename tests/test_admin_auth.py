"""The admin auth matrix of SPEC §4.3, against the Config Service stand-in over HTTP:
missing, invalid, team token, no permission, other org, Config Service down, slow or
failing, cache hits and cache expiry; and authentication before any validation, on every
admin and internal route."""

from __future__ import annotations

import re
from typing import Any

import pytest
from falcon import testing
from pydantic import SecretStr

from orchestrator.auth.admin import AdminAuthenticator, Rejected, token_key
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.peers.config_service import ConfigServiceClient
from web.app import create_app
from web.auth import demanded

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


# -- authentication first, on every admin and internal route ----------------------------
#
# Validation that ran before authentication told a caller without a credential which
# query parameters, body fields and path formats a route takes (422 `invalid query:
# status` instead of 401). Every route under /api/ is enumerated from the app's router,
# so a route added later is held to the same rule without touching these tests.

INTERNAL_TOKEN = "internal-token-auth-first"
BAD_PATH_PARAM = "bad$id"
BAD_QUERY = "limit=abc&limit=2&cursor=%25%25&org_id=bad$id&status=nope&surprise=1"
BAD_BODIES = (b'{"org_id": "bad$id", "surprise": [1,', b"[1, 2]", b'{"org_id": 5, "x": []}')
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
NOBODY_USES = "PUT"  # no route serves it: 405 once authenticated
NO_ADMIN = [
    {},
    bearer("forged-admin-token"),
    {"X-Admin-Token": "forged-admin-token"},
    {"Authorization": "Basic Zm9yZ2VkOnRva2Vu"},
]


@pytest.fixture
def app(settings: Any, services: Any) -> Any:
    """The app with the internal API enabled (unset, it answers 404 to everyone)."""
    return create_app(
        settings.model_copy(update={"orchestrator_internal_token": SecretStr(INTERNAL_TOKEN)}),
        services,
    )


def routes(app: Any, prefix: str) -> list[tuple[str, Any]]:
    """(uri template, resource) of every route under `prefix`, from the router."""
    found: list[tuple[str, Any]] = []

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if node.resource is not None and node.uri_template.startswith(prefix):
                found.append((node.uri_template, node.resource))
            walk(node.children)

    walk(app._router._roots)
    return found


def api_routes(app: Any) -> list[tuple[str, Any]]:
    return routes(app, "/api/")


def served(resource: Any) -> list[str]:
    return [m for m in ("GET", *BODY_METHODS) if hasattr(resource, f"on_{m.lower()}")]


def garbage_requests(app: Any, kind: str) -> list[tuple[str, str, bytes | None]]:
    """(method, path, body) for every responder of every `kind` route ("admin",
    "internal"), and one method it does not serve, with every path parameter, the query
    and the body malformed."""
    found = []
    for template, resource in api_routes(app):
        if not template.startswith(f"/api/v1/{kind}/"):
            continue
        path = re.sub(r"{[^}]+}", BAD_PATH_PARAM, template)
        for method in [*served(resource), NOBODY_USES]:
            for body in BAD_BODIES if method in BODY_METHODS else (None,):
                found.append((method, path, body))
    return found


def send(
    client: testing.TestClient, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> testing.Result:
    return client.simulate_request(method, path, query_string=BAD_QUERY, body=body, headers=headers)


def stored(db: Any) -> dict[str, int]:
    tables = (
        "orchestrator_provisioning_runs",
        "orchestrator_pipeline_schedules",
        "orchestrator_webhook_events",
        "orchestrator_agent_runs",
        "orchestrator_audit_log",
    )
    return {
        t: db.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]  # noqa: S608
        for t in tables
    }


def test_every_api_route_declares_admin_or_internal_auth_for_every_method(app: Any) -> None:
    routes = api_routes(app)
    assert len(routes) >= 18, [t for t, _ in routes]
    for template, resource in routes:
        kind = "internal" if template.startswith("/api/v1/internal/") else "admin"
        assert template.startswith(f"/api/v1/{kind}/"), template
        for method in [*served(resource), NOBODY_USES, "OPTIONS"]:
            auth, permission = demanded(resource, method)
            assert auth == kind, (method, template, auth)
            if kind == "admin" and method in served(resource):
                declared = {op.permission for op in resource.openapi if op.method == method}
                assert permission in declared and permission, (method, template)


def test_no_or_forged_admin_credential_is_401_however_malformed_the_request(
    app: Any, admin_token: str, db: Any
) -> None:
    client = testing.TestClient(app)
    before = stored(db)
    requests = garbage_requests(app, "admin")
    assert len(requests) >= 40, requests
    for method, path, body in requests:
        for headers in NO_ADMIN:
            result = send(client, method, path, body, headers)
            assert result.status_code == 401, (method, path, body, headers, result.text)
            assert result.headers["WWW-Authenticate"] == "Bearer"
            assert "errors" not in result.json, (method, path, result.text)
    assert stored(db) == before


def test_no_or_wrong_internal_token_is_401_however_malformed_the_request(
    app: Any, admin_token: str, db: Any
) -> None:
    client = testing.TestClient(app)
    requests = garbage_requests(app, "internal")
    assert requests
    for method, path, body in requests:
        for headers in ({}, bearer("wrong-internal-token"), bearer(admin_token)):
            result = send(client, method, path, body, headers)
            assert result.status_code == 401, (method, path, body, headers, result.text)
            assert "errors" not in result.json
    assert stored(db)["orchestrator_webhook_events"] == 0


def test_a_credential_without_the_permission_is_403_however_malformed_the_request(
    app: Any, config_service: ConfigServiceStandIn
) -> None:
    client = testing.TestClient(app)
    team = bearer(config_service.add_team_token("org-a", "team-a"))
    org_admin = bearer(config_service.add_org_admin("org-a"))
    for method, path, body in garbage_requests(app, "admin"):
        if method == NOBODY_USES:
            continue
        result = send(client, method, path, body, team)
        assert result.status_code == 403, (method, path, result.text)
        assert "errors" not in result.json
        if "/orgs/" in path:  # an org in the path is checked before the rest is read
            result = send(client, method, path, body, org_admin)
            assert result.status_code == 403, (method, path, result.text)


def test_the_same_requests_authenticated_are_refused_by_validation(
    app: Any, admin_token: str, db: Any
) -> None:
    """The requests above are malformed enough to be refused once authenticated (so
    the 401s are authentication coming first, not bad requests that happen to fail
    auth), and nothing they carry is stored."""
    client = testing.TestClient(app)
    before = stored(db)
    for kind, token in (("admin", admin_token), ("internal", INTERNAL_TOKEN)):
        for method, path, body in garbage_requests(app, kind):
            result = send(client, method, path, body, bearer(token))
            expected = (405,) if method == NOBODY_USES else (400, 404, 422)
            assert result.status_code in expected, (method, path, body, result.text)
    assert stored(db) == before


def test_dashboard_actions_check_the_session_before_reading_the_form(app: Any) -> None:
    """The dashboard's own gate follows the same order: a form without a live session
    is refused as signed out (401), however malformed, never read (400)."""
    client = testing.TestClient(app)
    actions = [
        re.sub(r"{[^}]+}", BAD_PATH_PARAM, template)
        for template, resource in routes(app, "/dashboard/")
        if hasattr(resource, "on_post")
        and template not in ("/dashboard/login", "/dashboard/logout")
    ]
    assert len(actions) >= 4, actions
    too_many_fields = b"f=&" * 1001
    for path in actions:
        result = client.simulate_post(
            path,
            body=too_many_fields,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert result.status_code == 401, (path, result.status_code)
