"""SPEC §4 common rules, on every kind of route: request ids, 411, 413, 400, 422, 404,
the JSON error shape, and no 5xx for bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from falcon import testing

AUTH = {"Authorization": "Bearer test-super-admin-token"}


@pytest.fixture(autouse=True)
def _admin(admin_token: str) -> None:
    pass


def assert_error_shape(result: testing.Result, status: int) -> dict[str, Any]:
    assert result.status_code == status, result.text
    body = result.json
    assert set(body) >= {"title", "description", "request_id"}
    assert body["request_id"] == result.headers["X-Request-ID"]
    assert "Traceback" not in result.text
    return body


def test_every_response_carries_a_request_id(client: testing.TestClient) -> None:
    minted = client.simulate_get("/health")
    assert len(minted.headers["X-Request-ID"]) >= 16
    echoed = client.simulate_get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    error = client.simulate_get("/nope", headers={"X-Request-ID": "req-404"})
    assert error.headers["X-Request-ID"] == "req-404"
    assert error.json["request_id"] == "req-404"


def test_an_unsafe_request_id_is_replaced_not_echoed(client: testing.TestClient) -> None:
    result = client.simulate_get("/health", headers={"X-Request-ID": "bad id\r\n<script>"})
    assert result.headers["X-Request-ID"] != "bad id\r\n<script>"
    assert len(result.headers["X-Request-ID"]) == 32


def test_unknown_route_is_a_json_404(client: testing.TestClient) -> None:
    body = assert_error_shape(client.simulate_get("/api/v1/admin/nothing-here"), 404)
    assert body["title"] == "Not Found"


def test_wrong_method_is_405(client: testing.TestClient) -> None:
    assert_error_shape(client.simulate_delete("/health"), 405)


def test_chunked_body_is_411(client: testing.TestClient) -> None:
    result = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue",
        headers={**AUTH, "Transfer-Encoding": "chunked"},
        body=b"",
    )
    body = assert_error_shape(result, 411)
    assert "Content-Length" in body["description"]


def test_body_over_the_cap_is_413_before_auth_or_parsing(client: testing.TestClient) -> None:
    big = json.dumps({"message_ids": ["x" * 5000]})
    result = client.simulate_post("/api/v1/admin/jobs/dead/requeue", body=big)
    body = assert_error_shape(result, 413)
    assert "4096" in body["description"]


def test_malformed_json_is_400(client: testing.TestClient) -> None:
    for raw in (b"{not json", b"\xff\xfe\x00", b"[1, 2]", b""):
        result = client.simulate_post("/api/v1/admin/jobs/dead/requeue", headers=AUTH, body=raw)
        assert_error_shape(result, 400)


def test_schema_violation_is_422_naming_the_fields(client: testing.TestClient) -> None:
    result = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue",
        headers=AUTH,
        json={"message_ids": [], "surprise": 1},
    )
    body = assert_error_shape(result, 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"message_ids", "surprise"}


def test_bad_query_parameters_are_422(client: testing.TestClient) -> None:
    for query in (
        "limit=abc",
        "limit=0",
        "limit=100000",
        "cursor=%%%",
        "org_id=has%20space",
        "unknown=1",
        "limit=1&limit=2",
    ):
        result = client.simulate_get("/api/v1/admin/audit", headers=AUTH, query_string=query)
        body = assert_error_shape(result, 422)
        assert body["errors"], query


def test_unexpected_errors_are_500_without_internals(settings: Any, services: Any) -> None:
    from web.app import create_app

    class Exploding:
        def authorize(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("database password is hunter2")

    app = create_app(settings, services, authenticator=Exploding())  # type: ignore[arg-type]
    result = testing.TestClient(app).simulate_get("/api/v1/admin/audit", headers=AUTH)
    body = assert_error_shape(result, 500)
    assert "hunter2" not in result.text and "RuntimeError" not in result.text
    assert body["description"].startswith("an internal error occurred")


def test_database_down_is_503_not_500(settings: Any, services: Any) -> None:
    from web.app import create_app

    services.pool.close()
    services.pool._reopen_after_close = False
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
        result = testing.TestClient(create_app(settings, services)).simulate_get(
            "/api/v1/admin/audit", headers=AUTH
        )
        assert_error_shape(result, 503)
        ready = testing.TestClient(create_app(settings, services)).simulate_get("/ready")
        assert ready.status_code == 503
        assert ready.json["checks"]["postgres"].startswith("error")
    finally:
        dead.close()


def test_health_touches_nothing_and_ready_checks_everything(client: testing.TestClient) -> None:
    assert client.simulate_get("/health").json == {"status": "ok"}
    ready = client.simulate_get("/ready")
    assert ready.status_code == 200
    assert ready.json == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "migrations": "ok"},
    }


def test_ready_is_503_while_a_migration_is_pending(settings: Any, services: Any, db: Any) -> None:
    from web.app import create_app

    db.execute("DELETE FROM _yoyo_migration")
    result = testing.TestClient(create_app(settings, services)).simulate_get("/ready")
    assert result.status_code == 503
    assert result.json["checks"]["migrations"].startswith("pending: 0001_initial")


def test_ready_is_503_when_redis_is_down(settings: Any, services: Any) -> None:
    import redis as redis_lib

    from web.app import create_app

    services.redis = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    result = testing.TestClient(create_app(settings, services)).simulate_get("/ready")
    assert result.status_code == 503
    assert result.json["checks"]["redis"].startswith("error")
    assert result.json["checks"]["postgres"] == "ok"


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer \u00e9t\u00e9"},
        {"X-Admin-Token": "\u00ff\u00fe"},
        {"Authorization": "Bearer " + "a" * 5000},
        {"Authorization": "Bearer tab\there"},
    ],
)
def test_unsendable_admin_tokens_are_401_not_500(
    client: testing.TestClient, header: dict[str, str]
) -> None:
    result = client.simulate_get("/api/v1/admin/jobs/queues", headers=header)
    assert_error_shape(result, 401)


def test_strings_postgres_cannot_hold_are_422_in_queries_and_bodies(
    client: testing.TestClient,
) -> None:
    bad_action = client.simulate_get("/api/v1/admin/audit", headers=AUTH, query_string="action=%00")
    assert_error_shape(bad_action, 422)
    surrogate = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue", headers=AUTH, body=b'{"message_ids": ["\\ud800"]}'
    )
    assert_error_shape(surrogate, 422)
    deep = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue", headers=AUTH, body=b"[" * 1800 + b"]" * 1800
    )
    assert_error_shape(deep, 400)
    nan = client.simulate_post(
        "/api/v1/admin/jobs/dead/requeue", headers=AUTH, body=b'{"message_ids": NaN}'
    )
    assert_error_shape(nan, 400)
    odd_id = client.simulate_delete("/api/v1/admin/jobs/dead/%00..%2F", headers=AUTH)
    assert_error_shape(odd_id, 404)


def test_routes_without_query_parameters_refuse_them(client: testing.TestClient) -> None:
    result = client.simulate_get(
        "/api/v1/admin/jobs/queues", headers=AUTH, query_string="limit=abc"
    )
    assert_error_shape(result, 422)


def test_timestamps_carry_their_zone(client: testing.TestClient, db: Any) -> None:
    from orchestrator import audit

    audit.record(db, actor="t", action="x.y")
    [item] = client.simulate_get("/api/v1/admin/audit", headers=AUTH).json["items"]
    assert item["at"].endswith("+00:00") or item["at"].endswith("Z")
