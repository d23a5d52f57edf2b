"""The job dashboard's pages and actions against real Postgres and Redis: sign-in,
sessions and CSRF, the two separate credentials (bearer for the API, cookie for the
dashboard), every page with seeded data, masking of secrets, and the audited actions."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from cryptography.fernet import Fernet
from falcon import testing
from psycopg.types.json import Jsonb

from orchestrator import agent_runs
from orchestrator.auth.admin import AdminAuthenticator
from orchestrator.dashboard import throughput
from orchestrator.peers.config_service import ConfigServiceClient
from orchestrator.provisioning import runs
from orchestrator.queues import dead_key, delayed_key, queue_key
from orchestrator.settings import Settings
from tests.dashboard_support import (
    COOKIE,
    FORM,
    csrf_of,
    login,
    post_form,
    seed_dead_letter,
)
from workers.middleware.heartbeat import record_beat

PAGES = [
    "/dashboard",
    "/dashboard/dead",
    "/dashboard/runs",
    "/dashboard/agent-runs",
    "/dashboard/events",
    "/dashboard/schedules",
    "/dashboard/teams/acme/payments",
    f"/dashboard/runs/{uuid.uuid4()}",
    f"/dashboard/agent-runs/{uuid.uuid4()}",
    f"/dashboard/events/{uuid.uuid4()}",
]


def app_client(settings: Settings, services: Any, **kw: Any) -> testing.TestClient:
    from web.app import create_app

    return testing.TestClient(create_app(settings, services, **kw))


def insert_event(
    db: Any,
    *,
    source: str = "github",
    status: str = "dispatched",
    org_id: str | None = "acme",
    team_node_id: str | None = "payments",
    minutes_ago: float = 1,
    payload: Any = None,
    agent_run_id: uuid.UUID | None = None,
) -> uuid.UUID:
    event_id = uuid.uuid4()
    db.execute(
        "INSERT INTO orchestrator_webhook_events (id, source, delivery_key, status, payload,"
        " org_id, team_node_id, agent_run_id, received_at, status_history)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " (now() at time zone 'utc') - make_interval(secs => %s),"
        " jsonb_build_array(jsonb_build_object('status', %s::text)))",
        (
            event_id,
            source,
            f"d-{event_id}",
            status,
            Jsonb(payload or {}),
            org_id,
            team_node_id,
            agent_run_id,
            minutes_ago * 60,
            status,
        ),
    )
    return event_id


def visible_inputs(html: str) -> list[str]:
    return [
        m.group(2)
        for m in re.finditer(r'<input([^>]*?)name="([^"]+)"([^>]*)>', html)
        if 'type="hidden"' not in m.group(1) + m.group(3)
    ]


# -- sign-in, sessions, the two credentials ----------------------------------------------


def test_login_page_is_public_and_asks_for_one_field_token(client: testing.TestClient) -> None:
    page = client.simulate_get("/dashboard/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert visible_inputs(page.text) == ["token"]
    assert 'type="password"' in page.text
    nonce = page.cookies["orch_dashboard_login"]
    assert nonce.http_only and nonce.same_site == "Strict" and nonce.path == "/dashboard/login"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_session_and_ignore_bearer_tokens(
    client: testing.TestClient, admin_token: str, path: str
) -> None:
    for headers in ({}, {"Authorization": f"Bearer {admin_token}"}, {"X-Admin-Token": admin_token}):
        result = client.simulate_get(path, headers=headers)
        assert result.status_code == 303, (path, headers)
        location = result.headers["location"]
        assert location.startswith("/dashboard/login?next=")
        assert unquote(location.partition("next=")[2]) == path


def test_actions_and_the_json_overview_need_a_session(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str
) -> None:
    _, redis_id = seed_dead_letter(services.redis, namespace)
    bearer = {"Authorization": f"Bearer {admin_token}"}
    for path in (
        f"/dashboard/dead/{redis_id}/requeue",
        f"/dashboard/dead/{redis_id}/delete",
        "/dashboard/dead/requeue",
        f"/dashboard/events/{uuid.uuid4()}/replay",
    ):
        result = client.simulate_post(
            path, body="message_id=" + redis_id, headers={**FORM, **bearer}
        )
        assert result.status_code == 401, path
        assert "sign in again" in result.text
    assert services.redis.zcard(dead_key(namespace, "provisioning")) == 1
    overview = client.simulate_get("/dashboard/api/overview", headers=bearer)
    assert overview.status_code == 401
    assert overview.json["title"] == "Unauthorized"


def test_the_json_admin_api_ignores_the_session_cookie(
    client: testing.TestClient, admin_token: str
) -> None:
    cookies = login(client, admin_token)
    for path in ("/api/v1/admin/jobs/queues", "/api/v1/admin/jobs/dead", "/api/v1/admin/audit"):
        assert client.simulate_get(path, cookies=cookies).status_code == 401, path


def test_sign_in_keeps_a_signed_http_only_strict_cookie_without_the_token(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str, db: Any
) -> None:
    page = client.simulate_get("/dashboard/login?next=%2Fdashboard%2Fevents%3Fsource%3Dgithub")
    result = client.simulate_post(
        "/dashboard/login",
        body=f"token={admin_token}&csrf_token={csrf_of(page.text)}"
        "&next=%2Fdashboard%2Fevents%3Fsource%3Dgithub",
        headers=FORM,
        cookies={"orch_dashboard_login": page.cookies["orch_dashboard_login"].value},
    )
    assert result.status_code == 303
    assert result.headers["location"] == "/dashboard/events?source=github"
    cookie = result.cookies[COOKIE]
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/dashboard"
    assert not cookie.secure  # plain HTTP here; see the HTTPS test below
    assert cookie.max_age == 8 * 3600
    digest = hashlib.sha256(admin_token.encode()).hexdigest()
    assert admin_token not in cookie.value and digest[:16] not in cookie.value
    keys = list(services.redis.scan_iter(match=f"{namespace}:dashboard:session:*"))
    assert len(keys) == 1
    stored = services.redis.get(keys[0]).decode()
    assert admin_token not in stored
    assert 0 < services.redis.ttl(keys[0]) <= 30 * 60
    session_id = cookie.value.partition(".")[0]
    assert session_id not in keys[0].decode()  # Redis holds a hash of the id
    row = db.execute(
        "SELECT * FROM orchestrator_audit_log WHERE action = 'dashboard.login'"
    ).fetchone()
    assert row["actor"] == "admin:super-admin"
    assert admin_token not in str(row)
    assert client.simulate_get("/dashboard", cookies={COOKIE: cookie.value}).status_code == 200


def test_the_cookie_is_secure_over_https_or_when_forced(
    client: testing.TestClient, admin_token: str, settings: Settings, services: Any
) -> None:
    page = client.simulate_get("/dashboard/login", headers={"X-Forwarded-Proto": "https"})
    assert page.cookies["orch_dashboard_login"].secure
    result = client.simulate_post(
        "/dashboard/login",
        body=f"token={admin_token}&csrf_token={csrf_of(page.text)}",
        headers={**FORM, "X-Forwarded-Proto": "https"},
        cookies={"orch_dashboard_login": page.cookies["orch_dashboard_login"].value},
    )
    assert result.cookies[COOKIE].secure
    forced = app_client(
        settings.model_copy(update={"orchestrator_dashboard_secure_cookie": True}), services
    )
    assert forced.simulate_get("/dashboard/login").cookies["orch_dashboard_login"].secure


def test_a_wrong_or_unfit_token_shows_the_form_again(
    client: testing.TestClient, config_service: Any
) -> None:
    team_token = config_service.add_team_token("acme", "payments")
    for token, status, message in (
        ("not-a-real-token", 401, "Invalid token."),
        ("", 401, "Invalid token."),
        (team_token, 403, "may not use the dashboard"),
    ):
        page = client.simulate_get("/dashboard/login")
        result = client.simulate_post(
            "/dashboard/login",
            body=f"token={token}&csrf_token={csrf_of(page.text)}",
            headers=FORM,
            cookies={"orch_dashboard_login": page.cookies["orch_dashboard_login"].value},
        )
        assert result.status_code == status, token
        assert message in result.text
        assert visible_inputs(result.text) == ["token"]
        assert COOKIE not in result.cookies
        assert token not in result.text or token == ""


def test_login_without_its_csrf_token_is_refused(
    client: testing.TestClient, admin_token: str
) -> None:
    page = client.simulate_get("/dashboard/login")
    nonce = page.cookies["orch_dashboard_login"].value
    other = client.simulate_get("/dashboard/login")
    for body, cookies in (
        (f"token={admin_token}", {"orch_dashboard_login": nonce}),
        (f"token={admin_token}&csrf_token={csrf_of(page.text)}", {}),
        (f"token={admin_token}&csrf_token={csrf_of(other.text)}", {"orch_dashboard_login": nonce}),
    ):
        result = client.simulate_post("/dashboard/login", body=body, headers=FORM, cookies=cookies)
        assert result.status_code == 403
        assert "The form expired" in result.text
        assert COOKIE not in result.cookies


def test_failed_sign_ins_are_limited_per_address(
    client: testing.TestClient, admin_token: str
) -> None:
    def attempt(token: str) -> testing.Result:
        page = client.simulate_get("/dashboard/login")
        return client.simulate_post(
            "/dashboard/login",
            body=f"token={token}&csrf_token={csrf_of(page.text)}",
            headers=FORM,
            cookies={"orch_dashboard_login": page.cookies["orch_dashboard_login"].value},
        )

    # Successes never count: operators behind one proxy address do not block each other.
    assert [attempt(admin_token).status_code for _ in range(12)] == [303] * 12
    assert [attempt("guess").status_code for _ in range(10)] == [401] * 10
    limited = attempt("guess")
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text
    assert int(limited.headers["retry-after"]) >= 1
    assert attempt(admin_token).status_code == 429  # until the window moves on


def test_forged_cookies_are_refused(client: testing.TestClient, admin_token: str) -> None:
    value = login(client, admin_token)[COOKIE]
    session_id, _, signature = value.partition(".")
    for forged in (
        f"{session_id}.{signature[:-2]}AA",
        f"{session_id[:-2]}AA.{signature}",
        session_id,
        "garbage",
    ):
        assert client.simulate_get("/dashboard", cookies={COOKIE: forged}).status_code == 303


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str, db: Any
) -> None:
    cookies = login(client, admin_token)
    page = client.simulate_get("/dashboard", cookies=cookies)
    refused = post_form(client, "/dashboard/logout", cookies)
    assert refused.status_code == 403
    assert client.simulate_get("/dashboard", cookies=cookies).status_code == 200
    result = post_form(client, "/dashboard/logout", cookies, csrf_token=csrf_of(page.text))
    assert result.status_code == 303
    assert result.headers["location"] == "/dashboard/login?notice=logged_out"
    assert result.cookies[COOKIE].value == ""
    assert client.simulate_get("/dashboard", cookies=cookies).status_code == 303
    assert list(services.redis.scan_iter(match=f"{namespace}:dashboard:session:*")) == []
    assert (
        db.execute(
            "SELECT count(*) AS n FROM orchestrator_audit_log WHERE action = 'dashboard.logout'"
        ).fetchone()["n"]
        == 1
    )
    assert "Signed out." in client.simulate_get(result.headers["location"]).text


def test_a_revoked_token_ends_its_sessions(
    settings: Settings, services: Any, config_service: Any, namespace: str
) -> None:
    client = app_client(
        settings.model_copy(update={"orchestrator_admin_auth_cache_ttl_seconds": 0}), services
    )
    token = config_service.add_super_admin("revocable-admin-token")
    cookies = login(client, token)
    assert client.simulate_get("/dashboard", cookies=cookies).status_code == 200
    config_service.revoke(token)
    result = client.simulate_get("/dashboard", cookies=cookies)
    assert result.status_code == 303 and result.headers["location"].startswith("/dashboard/login")
    assert list(services.redis.scan_iter(match=f"{namespace}:dashboard:session:*")) == []


def test_config_service_down_answers_503_pages(
    settings: Settings, services: Any, client: testing.TestClient, admin_token: str
) -> None:
    cookies = login(client, admin_token)
    down = ConfigServiceClient("http://127.0.0.1:9", timeout=0.5)
    unreachable = app_client(settings, services, authenticator=AdminAuthenticator(down, ttl=0))
    page = unreachable.simulate_get("/dashboard", cookies=cookies)
    assert page.status_code == 503 and "Config Service is unavailable" in page.text
    assert unreachable.simulate_get("/dashboard/api/overview", cookies=cookies).status_code == 503
    form = unreachable.simulate_get("/dashboard/login")
    result = unreachable.simulate_post(
        "/dashboard/login",
        body=f"token={admin_token}&csrf_token={csrf_of(form.text)}",
        headers=FORM,
        cookies={"orch_dashboard_login": form.cookies["orch_dashboard_login"].value},
    )
    assert result.status_code == 503 and "Cannot verify tokens now" in result.text
    down.close()


def test_session_lifetimes_idle_and_absolute(
    services: Any, namespace: str, admin_token: str
) -> None:
    from orchestrator.auth.admin import Admin
    from orchestrator.peers.config_service import Principal
    from web.dashboard.session import SessionStore

    now = [1_000_000.0]
    store = SessionStore(
        services.redis,
        namespace,
        Fernet.generate_key().decode(),
        idle_seconds=60,
        max_age_seconds=600,
        clock=lambda: now[0],
    )
    admin = Admin(Principal(role="admin", subject="ops", permissions=("admin:*",)))
    cookie, _ = store.create(admin_token, admin)
    key = next(iter(services.redis.scan_iter(match=f"{namespace}:dashboard:session:*")))
    assert 0 < services.redis.ttl(key) <= 60
    services.redis.expire(key, 5)
    loaded = store.load(cookie)
    assert loaded is not None and loaded.token == admin_token and loaded.actor == "admin:ops"
    assert services.redis.ttl(key) > 5  # renewed: the idle timeout slides
    now[0] += 601
    assert store.load(cookie) is None  # past the absolute lifetime, however active
    assert services.redis.exists(key) == 0
    other = SessionStore(
        services.redis,
        namespace,
        Fernet.generate_key().decode(),
        idle_seconds=60,
        max_age_seconds=600,
    )
    cookie, _ = store.create(admin_token, admin)
    assert other.load(cookie) is None  # signed under another key


# -- CSRF -------------------------------------------------------------------------------


def test_every_action_needs_the_csrf_token_of_its_own_session(
    client: testing.TestClient,
    admin_token: str,
    config_service: Any,
    services: Any,
    namespace: str,
    db: Any,
) -> None:
    _, redis_id = seed_dead_letter(services.redis, namespace)
    event_id = insert_event(db, status="failed")
    mine = login(client, admin_token)
    theirs = login(client, config_service.add_super_admin("second-admin-token"))
    their_csrf = csrf_of(client.simulate_get("/dashboard", cookies=theirs).text)
    for path, fields in (
        (f"/dashboard/dead/{redis_id}/requeue", {}),
        (f"/dashboard/dead/{redis_id}/delete", {}),
        ("/dashboard/dead/requeue", {"message_id": redis_id}),
        (f"/dashboard/events/{event_id}/replay", {}),
    ):
        for csrf in (None, "forged", their_csrf):
            extra = {"csrf_token": csrf} if csrf else {}
            result = post_form(client, path, mine, **fields, **extra)
            assert result.status_code == 403, (path, csrf)
            assert "CSRF" in result.text
    assert services.redis.zcard(dead_key(namespace, "provisioning")) == 1
    assert (
        db.execute(
            "SELECT status FROM orchestrator_webhook_events WHERE id = %s", (event_id,)
        ).fetchone()["status"]
        == "failed"
    )
    # fetch() POSTs may carry it in a header instead.
    my_csrf = csrf_of(client.simulate_get("/dashboard", cookies=mine).text)
    result = client.simulate_post(
        f"/dashboard/dead/{redis_id}/requeue",
        body="",
        headers={**FORM, "X-CSRF-Token": my_csrf},
        cookies=mine,
    )
    assert result.status_code == 303
    assert services.redis.zcard(dead_key(namespace, "provisioning")) == 0


# -- the overview ------------------------------------------------------------------------


def test_the_overview_shows_queues_workers_jobs_events_runs_and_problems(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str, db: Any
) -> None:
    r = services.redis
    r.rpush(queue_key(namespace, "webhooks"), "a", "b", "c")
    r.rpush(delayed_key(namespace, "agents"), "d")
    seed_dead_letter(r, namespace, queue="provisioning")
    record_beat(r, namespace, "host:1", "{}")
    record_beat(r, namespace, "host:2", "{}")
    minute = int(time.time()) // 60
    throughput.record(
        r,
        namespace,
        {
            (minute, "webhooks", "ok"): 7,
            (minute - 1, "agents", "ok"): 3,
            (minute - 1, "agents", "failed"): 2,
            (minute - 1, "agents", "dead"): 1,
            (minute - 70, "agents", "ok"): 100,  # outside the hour
        },
    )
    insert_event(db, source="github", status="dispatched")
    insert_event(db, source="github", status="failed")
    insert_event(db, source="slack", status="unroutable", org_id=None, team_node_id=None)
    insert_event(db, source="github", status="failed", minutes_ago=90)  # outside the hour
    run, _ = runs.create(
        db,
        kind="provision",
        org_id="acme",
        team_node_id="payments",
        request={},
        request_hash="h",
        idempotency_key=None,
    )
    runs.save_steps(
        db, run.provisioning_run_id, run.steps, status="failed", error="peer_unavailable"
    )
    agent_runs.create(
        db, org_id="acme", team_node_id="payments", agent_name="a", trigger_source="api", request={}
    )
    db.execute(
        "INSERT INTO orchestrator_pipeline_schedules (id, org_id, team_node_id, schedule_type,"
        " cron_expression, sync_status, sync_error) VALUES (%s, 'acme', 'payments',"
        " 'ingestion', '0 2 * * *', 'error', 'forbidden')",
        (uuid.uuid4(),),
    )
    cookies = login(client, admin_token)
    data = client.simulate_get("/dashboard/api/overview", cookies=cookies).json
    depth = {q["name"]: q for q in data["queues"]}
    assert depth["webhooks"]["ready"] == 3 and depth["agents"]["delayed"] == 1
    assert depth["provisioning"]["dead"] == 1
    assert data["workers_alive"] == 2
    assert len(data["minutes"]) == 60 and data["minutes"][-1] == minute * 60
    assert data["jobs"]["ok"][-1] == 7 and data["jobs"]["ok"][-2] == 3
    assert sum(data["jobs"]["ok"]) == 10
    assert (sum(data["jobs"]["failed"]), sum(data["jobs"]["dead"])) == (2, 1)
    assert data["events_by_status"]["github"]["failed"] == 1
    assert data["events_by_status"]["github"]["dispatched"] == 1
    assert data["events_by_status"]["slack"]["unroutable"] == 1
    assert sum(data["events_per_minute"]["github"]) == 2
    assert set(data["events_per_minute"]) >= {"slack", "github", "pagerduty", "generic"}
    assert data["provisioning_runs"]["failed"] == 1
    assert data["agent_runs"]["queued"] == 1
    assert data["schedules"] == {"pending": 0, "synced": 0, "error": 1}
    problems = " ".join(data["problems"])
    for words in (
        "1 dead letter",
        "2 job attempt(s) failed",
        "1 webhook event(s) failed",
        "1 provisioning run(s) failed",
        "1 schedule(s) failed",
    ):
        assert words in problems
    page = client.simulate_get("/dashboard", cookies=cookies)
    assert page.status_code == 200
    assert "Needs attention" in page.text and "1 dead letter(s)" in page.text
    assert 'id="chart-jobs"' in page.text and 'id="chart-events"' in page.text
    assert 'data-k="queue.webhooks.ready">3<' in page.text
    assert "vendor/uPlot.iife.min.js?v=" in page.text
    assert "cdn" not in page.text.lower()


def test_an_idle_healthy_system_is_all_clear_but_no_worker_is_a_problem(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str
) -> None:
    cookies = login(client, admin_token)
    data = client.simulate_get("/dashboard/api/overview", cookies=cookies).json
    assert data["problems"] == ["No worker process is alive: queued work is not being processed."]
    record_beat(services.redis, namespace, "host:1", "{}")
    data = client.simulate_get("/dashboard/api/overview", cookies=cookies).json
    assert data["problems"] == []
    assert "All clear" in client.simulate_get("/dashboard", cookies=cookies).text


def test_an_org_admin_sees_its_own_org_and_no_queues(
    client: testing.TestClient, config_service: Any, services: Any, namespace: str, db: Any
) -> None:
    seed_dead_letter(services.redis, namespace)
    insert_event(db, org_id="acme", status="failed")
    insert_event(db, org_id="globex", status="failed")
    insert_event(db, org_id=None, team_node_id=None, status="unroutable")
    cookies = login(client, config_service.add_org_admin("acme"))
    data = client.simulate_get("/dashboard/api/overview", cookies=cookies).json
    assert data["queues"] is None and data["jobs"] is None and data["workers_alive"] is None
    assert sum(sum(s.values()) for s in data["events_by_status"].values()) == 1
    page = client.simulate_get("/dashboard", cookies=cookies)
    assert "super-admins see them here" in page.text
    assert 'href="/dashboard/dead"' not in page.text
    refused = client.simulate_get("/dashboard/dead", cookies=cookies)
    assert refused.status_code == 403 and "super-admins only" in refused.text
    events = client.simulate_get("/dashboard/events?org_id=globex", cookies=cookies).text
    assert events.count('href="/dashboard/events/') == 1  # its own org's, whatever asked


# -- dead letters ------------------------------------------------------------------------


def test_dead_letters_show_actor_masked_arguments_retries_and_traceback(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str, db: Any
) -> None:
    message_id, _ = seed_dead_letter(
        services.redis,
        namespace,
        queue="webhooks",
        actor="process_webhook_event",
        args=("Authorization: Bearer abcdef123456secret",),
        kwargs={"team_token": "tok_live_s3cr3t", "password": "hunter2-pw", "event": "e-1"},
        retries=4,
    )
    # Stored before masking existed (or by another writer): masked again on display.
    db.execute(
        "INSERT INTO orchestrator_job_failures (message_id, actor, queue, retries, error,"
        " traceback) VALUES (%s, 'process_webhook_event', 'webhooks', 4, %s, %s)",
        (
            message_id,
            "PeerUnavailable: called with Bearer leaky-token-999",
            'Traceback (most recent call last):\n  File "x.py", line 1\n'
            "PeerUnavailable: X-Admin-Token: admin-token-in-trace",
        ),
    )
    cookies = login(client, admin_token)
    page = client.simulate_get("/dashboard/dead", cookies=cookies)
    assert page.status_code == 200
    for secret in (
        "abcdef123456secret",
        "tok_live_s3cr3t",
        "hunter2-pw",
        "leaky-token-999",
        "admin-token-in-trace",
    ):
        assert secret not in page.text, secret
    assert "process_webhook_event" in page.text and "retries 4" in page.text
    assert "Traceback (most recent call last)" in page.text
    assert "&#34;team_token&#34;: &#34;***&#34;" in page.text or '"team_token": "***"' in page.text
    assert "e-1" in page.text
    api = client.simulate_get(
        "/api/v1/admin/jobs/dead", headers={"Authorization": f"Bearer {admin_token}"}
    ).json
    assert api["items"][0]["kwargs"]["team_token"] == "***"


def test_requeue_delete_and_bulk_requeue_are_audited(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str, db: Any
) -> None:
    r = services.redis
    first, first_rid = seed_dead_letter(r, namespace, queue="agents", actor="run_agent")
    second, _ = seed_dead_letter(r, namespace, queue="agents", actor="run_agent")
    third, third_rid = seed_dead_letter(r, namespace, queue="provisioning")
    fourth, _ = seed_dead_letter(r, namespace, queue="webhooks")
    cookies = login(client, admin_token)
    csrf = csrf_of(client.simulate_get("/dashboard/dead", cookies=cookies).text)

    result = post_form(
        client, f"/dashboard/dead/{first_rid}/requeue", cookies, csrf_token=csrf, queue="agents"
    )
    assert result.status_code == 303
    assert result.headers["location"] == "/dashboard/dead?queue=agents&notice=requeued%3A1"
    assert r.llen(queue_key(namespace, "agents")) == 1
    result = post_form(client, f"/dashboard/dead/{second}/delete", cookies, csrf_token=csrf)
    assert result.headers["location"] == "/dashboard/dead?notice=deleted%3A1"
    assert r.zcard(dead_key(namespace, "agents")) == 0
    assert r.llen(queue_key(namespace, "agents")) == 1  # deleted, not requeued
    result = post_form(
        client,
        "/dashboard/dead/requeue",
        cookies,
        csrf_token=csrf,
        message_id=[third_rid, fourth, str(uuid.uuid4())],
    )
    assert result.headers["location"] == "/dashboard/dead?notice=requeued%3A2"
    assert r.llen(queue_key(namespace, "provisioning")) == 1
    assert r.llen(queue_key(namespace, "webhooks")) == 1
    again = post_form(client, f"/dashboard/dead/{first_rid}/requeue", cookies, csrf_token=csrf)
    assert again.headers["location"] == "/dashboard/dead?notice=gone%3A1"

    audit = db.execute(
        "SELECT action, subject, actor FROM orchestrator_audit_log"
        " WHERE action LIKE 'job.%%' ORDER BY id"
    ).fetchall()
    assert [(a["action"], a["subject"]) for a in audit] == [
        ("job.requeued", first),
        ("job.deleted", second),
        ("job.requeued", third),
        ("job.requeued", fourth),
    ]
    assert {a["actor"] for a in audit} == {"admin:super-admin"}
    page = client.simulate_get("/dashboard/dead?notice=requeued:2", cookies=cookies)
    assert "Requeued 2 dead letter(s)." in page.text
    assert "No dead letters." in page.text


def test_dead_letters_are_paged_newest_first(
    client: testing.TestClient, admin_token: str, services: Any, namespace: str
) -> None:
    now = time.time()
    ids = [
        seed_dead_letter(
            services.redis, namespace, queue=("agents", "webhooks")[i % 2], died_at=now - i
        )[0]
        for i in range(55)
    ]
    cookies = login(client, admin_token)
    first = client.simulate_get("/dashboard/dead", cookies=cookies).text
    shown = re.findall(r'data-message-id="([^"]+)"', first)
    assert shown == ids[:50]
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.simulate_get(older, cookies=cookies).text
    assert re.findall(r'data-message-id="([^"]+)"', second) == ids[50:]
    assert 'rel="next"' not in second
    only = client.simulate_get("/dashboard/dead?queue=webhooks", cookies=cookies).text
    assert re.findall(r'data-message-id="([^"]+)"', only) == ids[1::2]
    bad = client.simulate_get("/dashboard/dead?cursor=abc", cookies=cookies)
    assert bad.status_code == 400 and "Invalid page link" in bad.text
    bad = client.simulate_get("/dashboard/dead?queue=nope", cookies=cookies)
    assert bad.status_code == 400 and "queue" in bad.text


# -- runs, agent runs, events, schedules, teams ---------------------------------------------


def _provisioning_run(db: Any, *, org_id: str = "acme") -> runs.Run:
    run, _ = runs.create(
        db,
        kind="provision",
        org_id=org_id,
        team_node_id="payments",
        request={"routing": {"slack_channel_ids": ["C1"]}, "api_key": "req-secret-1"},
        request_hash="h",
        idempotency_key=None,
    )
    runs.start_attempt(db, run.provisioning_run_id)
    start = datetime.now(UTC) - timedelta(seconds=20)
    steps = []
    for i, step in enumerate(run.steps):
        if i < 3:
            step = step.model_copy(
                update={
                    "status": "succeeded",
                    "attempts": 1,
                    "started_at": start + timedelta(seconds=2 * i),
                    "finished_at": start + timedelta(seconds=2 * i + 1),
                    "detail": {"token_id": "tid-1"} if step.name == "team_token" else {},
                }
            )
        elif i == 3:
            step = step.model_copy(
                update={
                    "status": "failed",
                    "attempts": 3,
                    "started_at": start + timedelta(seconds=6),
                    "finished_at": start + timedelta(seconds=9),
                    "error": "k8s_forbidden: cronjobs.batch is forbidden",
                }
            )
        steps.append(step)
    runs.save_steps(db, run.provisioning_run_id, steps, status="failed", error="k8s_forbidden")
    return run


def test_provisioning_runs_show_a_step_timeline_and_never_the_team_token(
    client: testing.TestClient, admin_token: str, config_service: Any, db: Any, secret_key: str
) -> None:
    run = _provisioning_run(db)
    token = "acme-team-token-DO-NOT-SHOW"
    encrypted = Fernet(secret_key.encode()).encrypt(token.encode()).decode()
    runs.store_token(db, run.provisioning_run_id, encrypted)
    cookies = login(client, admin_token)
    listing = client.simulate_get("/dashboard/runs?status=failed", cookies=cookies)
    assert f"/dashboard/runs/{run.provisioning_run_id}" in listing.text
    assert 'href="/dashboard/teams/acme/payments"' in listing.text
    assert "k8s_forbidden" in listing.text
    assert (
        "No provisioning runs match."
        in client.simulate_get("/dashboard/runs?status=succeeded", cookies=cookies).text
    )
    page = client.simulate_get(f"/dashboard/runs/{run.provisioning_run_id}", cookies=cookies)
    assert page.status_code == 200
    for name in runs.PROVISION_STEPS:
        assert name in page.text
    assert page.text.count('class="bar st-') == 4  # the steps that ran, on the timeline
    assert 'class="bar st-failed"' in page.text
    assert "cronjobs.batch is forbidden" in page.text
    assert "awaits its one delivering read" in page.text
    assert token not in page.text and encrypted not in page.text
    assert "req-secret-1" not in page.text
    still = db.execute(
        "SELECT team_token_encrypted FROM orchestrator_provisioning_runs WHERE id = %s",
        (run.provisioning_run_id,),
    ).fetchone()
    assert still["team_token_encrypted"] == encrypted  # never delivered by the dashboard
    other = login(client, config_service.add_org_admin("globex"))
    hidden = client.simulate_get(f"/dashboard/runs/{run.provisioning_run_id}", cookies=other)
    assert hidden.status_code == 404


def test_agent_runs_link_to_their_event_and_team_and_mask_requests(
    client: testing.TestClient, admin_token: str, db: Any
) -> None:
    event_id = insert_event(db, source="slack")
    run_id = agent_runs.create(
        db,
        org_id="acme",
        team_node_id="payments",
        agent_name="planner",
        trigger_source="slack",
        request={"message": "why is checkout slow?", "context": {"note": "Bearer zzz-secret-123"}},
        event_id=event_id,
    )
    agent_runs.finish(db, run_id, succeeded=False, error="agent answered success:false")
    db.execute(
        "UPDATE orchestrator_webhook_events SET agent_run_id = %s WHERE id = %s",
        (run_id, event_id),
    )
    cookies = login(client, admin_token)
    listing = client.simulate_get(
        "/dashboard/agent-runs?status=failed&trigger_source=slack", cookies=cookies
    )
    assert f"/dashboard/agent-runs/{run_id}" in listing.text
    assert f"/dashboard/events/{event_id}" in listing.text
    page = client.simulate_get(f"/dashboard/agent-runs/{run_id}", cookies=cookies)
    assert "why is checkout slow?" in page.text
    assert "zzz-secret-123" not in page.text
    assert f'href="/dashboard/events/{event_id}"' in page.text
    assert 'href="/dashboard/teams/acme/payments"' in page.text
    event = client.simulate_get(f"/dashboard/events/{event_id}", cookies=cookies)
    assert f'href="/dashboard/agent-runs/{run_id}"' in event.text


def test_events_filter_mask_payloads_and_replay(
    client: testing.TestClient,
    admin_token: str,
    config_service: Any,
    services: Any,
    namespace: str,
    db: Any,
) -> None:
    failed = insert_event(
        db,
        source="pagerduty",
        status="failed",
        payload={
            "event": {"summary": "db down"},
            "webhook_secret": "whsec_do_not_show",
            "note": "Authorization: Bearer very-secret-bearer",
        },
    )
    insert_event(db, source="github", status="dispatched")
    insert_event(db, source="pagerduty", status="dispatched", org_id="globex")
    cookies = login(client, admin_token)
    listing = client.simulate_get(
        "/dashboard/events?source=pagerduty&status=failed&org_id=acme&team_node_id=",
        cookies=cookies,
    )
    assert listing.text.count('href="/dashboard/events/') == 1
    assert f"/dashboard/events/{failed}" in listing.text
    assert (
        client.simulate_get("/dashboard/events", cookies=cookies).text.count(
            'href="/dashboard/events/'
        )
        == 3
    )
    bad = client.simulate_get("/dashboard/events?status=exploded", cookies=cookies)
    assert bad.status_code == 400 and "status" in bad.text
    bad = client.simulate_get("/dashboard/events?cursor=bogus", cookies=cookies)
    assert bad.status_code == 400
    assert client.simulate_get("/dashboard/events/not-a-uuid", cookies=cookies).status_code == 404

    page = client.simulate_get(f"/dashboard/events/{failed}", cookies=cookies)
    assert "db down" in page.text
    assert "whsec_do_not_show" not in page.text and "very-secret-bearer" not in page.text
    result = post_form(
        client, f"/dashboard/events/{failed}/replay", cookies, csrf_token=csrf_of(page.text)
    )
    assert result.status_code == 303
    assert result.headers["location"] == f"/dashboard/events/{failed}?notice=replayed"
    row = db.execute(
        "SELECT status FROM orchestrator_webhook_events WHERE id = %s", (failed,)
    ).fetchone()
    assert row["status"] == "queued"
    assert services.redis.llen(queue_key(namespace, "webhooks")) == 1
    audit = db.execute(
        "SELECT actor FROM orchestrator_audit_log WHERE action = 'event.replayed' AND subject = %s",
        (str(failed),),
    ).fetchone()
    assert audit["actor"] == "admin:super-admin"
    assert (
        "queued for dispatch again"
        in client.simulate_get(result.headers["location"], cookies=cookies).text
    )

    org = login(client, config_service.add_org_admin("globex"))
    assert client.simulate_get(f"/dashboard/events/{failed}", cookies=org).status_code == 404
    org_csrf = csrf_of(client.simulate_get("/dashboard", cookies=org).text)
    refused = post_form(client, f"/dashboard/events/{failed}/replay", org, csrf_token=org_csrf)
    assert refused.status_code == 404


def test_schedules_show_sync_state_and_the_last_error(
    client: testing.TestClient, admin_token: str, db: Any
) -> None:
    for team, status, error in (
        ("payments", "error", "k8s_forbidden: cronjobs.batch is forbidden"),
        ("search", "synced", None),
        ("infra", "pending", None),
    ):
        db.execute(
            "INSERT INTO orchestrator_pipeline_schedules (id, org_id, team_node_id,"
            " schedule_type, cron_expression, sync_status, sync_error)"
            " VALUES (%s, 'acme', %s, 'ingestion', '0 2 * * *', %s, %s)",
            (uuid.uuid4(), team, status, error),
        )
    cookies = login(client, admin_token)
    page = client.simulate_get("/dashboard/schedules", cookies=cookies)
    assert page.text.count('href="/dashboard/teams/acme/') == 3
    assert "cronjobs.batch is forbidden" in page.text
    errors = client.simulate_get("/dashboard/schedules?sync_status=error", cookies=cookies)
    assert errors.text.count('href="/dashboard/teams/acme/') == 1
    assert 'href="/dashboard/teams/acme/payments"' in errors.text


def test_the_team_page_gathers_runs_events_and_schedules(
    client: testing.TestClient, admin_token: str, config_service: Any, db: Any
) -> None:
    run = _provisioning_run(db)
    event_id = insert_event(db)
    cookies = login(client, admin_token)
    page = client.simulate_get("/dashboard/teams/acme/payments", cookies=cookies)
    assert f"/dashboard/runs/{run.provisioning_run_id}" in page.text
    assert f"/dashboard/events/{event_id}" in page.text
    assert "/dashboard/agent-runs?org_id=acme&amp;team_node_id=payments" in page.text
    other = login(client, config_service.add_org_admin("globex"))
    assert client.simulate_get("/dashboard/teams/acme/payments", cookies=other).status_code == 404
    assert client.simulate_get("/dashboard/teams/a%20b/c", cookies=cookies).status_code == 404


def test_pages_send_security_headers(client: testing.TestClient, admin_token: str) -> None:
    cookies = login(client, admin_token)
    for path in PAGES[:7]:
        result = client.simulate_get(path, cookies=cookies)
        assert result.status_code == 200, path
        csp = result.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert result.headers["x-frame-options"] == "DENY"
        assert result.headers["cache-control"] == "no-store"
        assert "<script>" not in result.text  # no inline script: the CSP would block it


def test_static_files_are_cacheable_and_served_only_by_name(client: testing.TestClient) -> None:
    page = client.simulate_get("/dashboard/login").text
    url = re.search(r'href="(/dashboard/static/dashboard\.css\?v=[0-9a-f]+)"', page).group(1)
    css = client.simulate_get(url)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    again = client.simulate_get(url, headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    chart = client.simulate_get("/dashboard/static/vendor/uPlot.iife.min.js")
    assert chart.status_code == 200 and b"uPlot" in chart.content
    assert client.simulate_get("/dashboard/static/vendor/uPlot.LICENSE.txt").status_code == 200
    for bad in ("nope.js", "../session.py", "..%2Fsession.py", "vendor/../../base.py"):
        assert client.simulate_get(f"/dashboard/static/{bad}").status_code == 404, bad


def test_openapi_documents_the_json_the_dashboard_uses(client: testing.TestClient) -> None:
    doc = client.simulate_get("/openapi.json").json
    overview = doc["paths"]["/dashboard/api/overview"]["get"]
    assert overview["security"] == [{"dashboardSession": []}]
    assert doc["components"]["securitySchemes"]["dashboardSession"]["in"] == "cookie"
    for path, method in (
        ("/api/v1/admin/jobs/queues", "get"),
        ("/api/v1/admin/jobs/dead", "get"),
        ("/api/v1/admin/jobs/dead/{message_id}/requeue", "post"),
        ("/api/v1/admin/jobs/dead/{message_id}", "delete"),
        ("/api/v1/admin/jobs/dead/requeue", "post"),
        ("/api/v1/admin/provision/runs", "get"),
        ("/api/v1/admin/agents/runs", "get"),
    ):
        assert method in doc["paths"][path], path
    assert not any(
        p.startswith("/dashboard/") and p != "/dashboard/api/overview" for p in doc["paths"]
    )


@pytest.mark.parametrize(
    ("forwarded_for", "peer", "hops", "counted"),
    [
        (None, "10.0.0.9", 0, "10.0.0.9"),
        ("203.0.113.7", "10.0.0.9", 0, "10.0.0.9"),  # header ignored: nothing trusted
        ("203.0.113.7", "10.0.0.9", 1, "203.0.113.7"),  # behind one ingress
        ("6.6.6.6, 203.0.113.7", "10.0.0.9", 1, "203.0.113.7"),  # a forged entry
        ("203.0.113.7, 10.0.0.5", "10.0.0.9", 2, "203.0.113.7"),  # two proxies
        (None, "10.0.0.9", 1, "10.0.0.9"),  # fewer entries than hops: the leftmost
    ],
)
def test_sign_in_failures_count_against_the_client_behind_trusted_proxies(
    forwarded_for: str | None, peer: str, hops: int, counted: str
) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    req = testing.create_req(headers=headers, remote_addr=peer)
    from web.dashboard.login import client_address

    assert client_address(req, hops) == counted


def test_behind_a_proxy_one_client_s_failures_do_not_lock_out_another(
    settings: Any, services: Any, admin_token: str
) -> None:
    proxied = settings.model_copy(update={"orchestrator_trusted_proxy_hops": 1})
    client = app_client(proxied, services)

    def attempt(token: str, address: str) -> testing.Result:
        page = client.simulate_get("/dashboard/login")
        return client.simulate_post(
            "/dashboard/login",
            body=f"token={token}&csrf_token={csrf_of(page.text)}",
            headers={**FORM, "X-Forwarded-For": address},
            cookies={"orch_dashboard_login": page.cookies["orch_dashboard_login"].value},
        )

    assert [attempt("guess", "203.0.113.7").status_code for _ in range(10)] == [401] * 10
    assert attempt("guess", "203.0.113.7").status_code == 429
    # Forging a new leftmost entry does not reset the count: the ingress appended .7.
    assert attempt(admin_token, "1.2.3.4, 203.0.113.7").status_code == 429
    assert attempt(admin_token, "198.51.100.2").status_code == 303
