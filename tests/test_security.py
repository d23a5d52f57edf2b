"""The security review as a test list (issue 7, item 3). Each test is a real check of
one promise, against the real app, worker, Postgres and Redis:

1. signatures and shared tokens are compared in constant time (source and behaviour);
2. replay windows: stale timestamps refused, sources without one deduplicated;
3. no secret in logs (JSON formatter at DEBUG), error bodies, `/metrics`, the database,
   Redis or the dashboard after a representative flow, hostile agent included;
4. org scoping on every admin route, enumerated from `/openapi.json`;
5. the SSRF guard on agent URLs, redirects included;
6. body and header limits on every route that takes a body, enumerated from the router.

Dashboard sessions and CSRF have their own tests (`test_dashboard.py`); here they are
only held to the constant-time rule and the no-secret scan.
"""

from __future__ import annotations

import ast
import contextlib
import hmac
import inspect
import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from falcon import testing
from pydantic import SecretStr

from orchestrator.agent_dispatch import agent_url
from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.standin import Request, Response
from orchestrator.errors import PeerRejected
from orchestrator.events import store
from orchestrator.k8s.naming import dedicated_agent_url
from orchestrator.peers.agent import AgentClient, AgentFailed
from orchestrator.peers.ai_pipeline import AiPipelineClient
from orchestrator.peers.config_service import ConfigServiceClient, ConfigServiceWorkerCalls
from orchestrator.redaction import NO_SECRETS
from orchestrator.settings import Settings
from orchestrator.webhooks.model import Inbound, ParsedEvent, SignatureInvalid
from orchestrator.webhooks.registry import endpoints
from orchestrator.webhooks.signing import signed_headers
from tests.conftest import REPO, make_settings
from tests.webhook_support import (
    INTERNAL_ADMIN,
    OLD,
    PATHS,
    SAMPLES,
    SECRET_OF,
    SECRETS,
    final_event,
    send,
    wait_for,
)
from web.app import create_app

# -- 1. constant-time comparisons --------------------------------------------------------

# Every module that checks a signature, a shared token, a session or a CSRF token.
VERIFIERS = [
    *sorted((REPO / "orchestrator" / "webhooks").glob("*.py")),
    REPO / "web" / "resources" / "internal.py",
    REPO / "web" / "auth.py",
    REPO / "orchestrator" / "auth" / "admin.py",
    *[REPO / "web" / "dashboard" / name for name in ("session.py", "csrf.py", "login.py")],
]
_SECRETISH = re.compile(r"digest|signature|secret|token|\bmac\b|csrf|\bsig\b|cookie", re.I)


def _names(node: ast.AST) -> str:
    return " ".join(
        n.id if isinstance(n, ast.Name) else n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Name | ast.Attribute)
    )


def timing_unsafe_comparisons(source: str) -> list[str]:
    """`==`, `!=`, `in` and `startswith` applied to something named like a secret."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            operands = [node.left, *node.comparators]
            if any(
                _SECRETISH.search(_names(o))
                for o in operands
                if not (isinstance(o, ast.Constant) and o.value in (None, "", 0))
            ) and not all(isinstance(o, ast.Constant) for o in node.comparators):
                found.append(ast.unparse(node))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith")
            and _SECRETISH.search(_names(node.func.value))
        ):
            found.append(ast.unparse(node))
    return found


def test_the_unsafe_comparison_finder_finds_them() -> None:
    assert timing_unsafe_comparisons("ok = given_signature == expected_digest")
    assert timing_unsafe_comparisons("ok = token in tokens")
    assert timing_unsafe_comparisons("ok = csrf_token.startswith(prefix)")
    assert not timing_unsafe_comparisons("ok = hmac.compare_digest(signature, expected)")
    assert not timing_unsafe_comparisons("ok = version == 'v1'")


@pytest.mark.parametrize("path", VERIFIERS, ids=lambda p: str(p.relative_to(REPO)))
def test_verifiers_never_compare_secrets_with_equality(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} does not exist")
    assert timing_unsafe_comparisons(path.read_text()) == []


def test_the_verifying_libraries_compare_in_constant_time() -> None:
    from slack_sdk.signature import SignatureVerifier
    from standardwebhooks import Webhook

    assert "hmac.compare_digest" in inspect.getsource(SignatureVerifier.is_valid)
    assert "hmac.compare_digest" in inspect.getsource(Webhook.verify)


@pytest.fixture
def compare_digest_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


OTHER_SECRET = {False: "another-secret", True: "whsec_Zm9yZ2VkLWZvcmdlZC1mb3JnZWQtZm9yZ2Vk"}


@pytest.mark.parametrize("source", list(PATHS))
def test_every_webhook_verifier_decides_through_compare_digest(
    compare_digest_calls: list[tuple[Any, Any]], source: str
) -> None:
    endpoint = next(e for e in endpoints(make_settings()) if e.name == source)
    secret = SECRETS[SECRET_OF.get(source, source)]
    body = SAMPLES[source]()
    headers = {k.lower(): v for k, v in signed_headers(source, secret, body).items()}
    endpoint.source.verify([secret], Inbound(body, headers))
    assert compare_digest_calls, "a valid delivery was accepted without compare_digest"
    compare_digest_calls.clear()
    with pytest.raises(SignatureInvalid):
        endpoint.source.verify([OTHER_SECRET[secret.startswith("whsec_")]], Inbound(body, headers))
    assert compare_digest_calls, "a forged delivery was refused without compare_digest"


def test_the_internal_token_is_compared_in_constant_time(
    settings: Settings, services: Any, compare_digest_calls: list[tuple[Any, Any]]
) -> None:
    token = "internal-token-for-timing"
    enabled = settings.model_copy(update={"orchestrator_internal_token": SecretStr(token)})
    client = testing.TestClient(create_app(enabled, services))
    body = {"channel_id": "C1", "text": "hello"}
    for given, status in (("x", 401), (token[:-1], 401), (token + "x", 401), (token, 202)):
        result = client.simulate_post(
            "/api/v1/internal/slack/trigger",
            json=body,
            headers={"Authorization": f"Bearer {given}"},
        )
        assert result.status_code == status, (given, result.text)
    assert [b for _, b in compare_digest_calls if b == token.encode()]


# -- 2. replay windows --------------------------------------------------------------------


@pytest.mark.parametrize("source", ["slack", "slack_interactions", "incidentio", "generic"])
def test_signed_timestamps_older_or_newer_than_300_seconds_are_refused(
    gateway: testing.TestClient, db: Any, source: str
) -> None:
    now = time.time()
    # 302, not 301: the signed timestamp is whole seconds (the fraction rounds down).
    for skew in (-302, 302, -86400, 10**6):
        assert send(gateway, source, now=now + skew).status_code == 401, skew
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 0
    assert send(gateway, source, now=now - 290).status_code == 200


@pytest.mark.parametrize("source", ["github", "pagerduty", "coralogix", "incidentio", "slack"])
def test_a_replayed_delivery_changes_nothing(
    gateway: testing.TestClient, db: Any, services: Any, source: str
) -> None:
    """Sources without a signed timestamp (GitHub, PagerDuty, Coralogix) rely on dedup;
    the others dedup too, inside their window."""
    body = SAMPLES[source]()
    headers = signed_headers(source, SECRETS[source], body)
    first = gateway.simulate_post(PATHS[source], body=body, headers=headers)
    queued = services.redis.llen(f"{services.namespace}:webhooks")
    for _ in range(3):
        again = gateway.simulate_post(PATHS[source], body=body, headers=headers)
        assert again.json == {"ok": True, "duplicate": True, "event_id": first.json["event_id"]}
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 1
    assert services.redis.llen(f"{services.namespace}:webhooks") == queued


def test_github_dedup_key_is_hook_and_delivery(gateway: testing.TestClient, db: Any) -> None:
    body = SAMPLES["github"]()
    delivery = str(uuid.uuid4())
    keys = set()
    for hook in ("1", "2", "1"):
        result = send(gateway, "github", body, delivery_id=delivery, hook_id=hook)
        keys.add(result.json["event_id"])
    assert len(keys) == 2  # the same delivery to two hooks is two events; a replay is not
    rows = db.execute("SELECT delivery_key FROM orchestrator_webhook_events").fetchall()
    assert sorted(r["delivery_key"] for r in rows) == [f"1:{delivery}", f"2:{delivery}"]


# -- 3. no secret anywhere ----------------------------------------------------------------

INTERNAL_TOKEN = "internal-trigger-token-0b1c"
FORGED_ADMIN = "forged-admin-token-5d2e"
WRONG_INTERNAL = "wrong-internal-token-77aa"
CANARIES = {
    "api_token": "canary-api-token-1f9e",
    "password": "canary-password-42b7",
    "client_secret": "canary-client-secret-0c3d",
}


class LeakyAgent(AgentStandIn):
    """An agent that echoes the credential it was sent: in a `success:false` error, or
    in the body of a 500 until the orchestrator gives up."""

    def _answer(self, req: Request, agent: str, body: Any, started: float) -> Response:
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        token = req.headers.get("x-incidentfox-team-token") or ""
        if "echo-credential" in message:
            return Response(200, {"success": False, "error": f"credential {token} refused"})
        if "fail-hard" in message:
            return Response(500, {"detail": f"crashed while holding {token}"})
        return super()._answer(req, agent, body, started)


@pytest.fixture
def agent() -> Iterator[AgentStandIn]:
    """Overrides the shared stand-in for this module: the hostile one above."""
    standin = LeakyAgent().start()
    yield standin  # type: ignore[misc]
    standin.stop()


def with_canaries(source: str) -> bytes:
    if source == "slack_interactions":
        payload = json.loads(
            (REPO / "tests/fixtures/webhooks/slack/block_actions.json").read_text()
        )
        payload.update(CANARIES)
        return b"payload=" + quote(json.dumps(payload)).encode()
    payload = json.loads(SAMPLES[source]())
    payload.update(CANARIES)
    payload["extra"] = {"nested": dict(CANARIES)}
    return json.dumps(payload).encode()


def dump_database(db: Any) -> str:
    tables = db.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    ).fetchall()
    out = []
    for table in tables:
        name = table["table_name"]
        rows = db.execute(f'SELECT row_to_json(t)::text AS j FROM "{name}" t').fetchall()  # noqa: S608
        out += [f"{name}: {r['j']}" for r in rows]
    return "\n".join(out)


def dump_redis(client: Any, namespace: str) -> str:
    out = []
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        else:
            value = kind
        out.append(f"{key!r}: {value!r}")
    return "\n".join(out)


def test_no_secret_reaches_logs_errors_metrics_storage_or_the_dashboard(
    stack: dict[str, Any],
    services: Any,
    db: Any,
    config_service: ConfigServiceStandIn,
    admin_token: str,
    agent: AgentStandIn,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = stack["settings"].model_copy(
        update={"orchestrator_internal_token": SecretStr(INTERNAL_TOKEN)}
    )
    client = testing.TestClient(create_app(settings, services))
    admin = {"Authorization": f"Bearer {admin_token}"}
    answers: list[str] = []

    def keep(result: testing.Result) -> testing.Result:
        answers.append(f"{result.status} {dict(result.headers)} {result.text}")
        return result

    # Webhooks of every source, credential-named fields in their payloads.
    event_ids = []
    for source in PATHS:
        result = keep(send(client, source, with_canaries(source)))
        assert result.status_code == 200, (source, result.text)
        event_ids.append(result.json["event_id"])
    keep(send(client, "github", secret="not-the-secret"))  # forged: 401
    # The internal trigger, with the right and a wrong token.
    trigger = {"channel_id": "C123ABC456", "text": "internal hello"}
    internal = keep(
        client.simulate_post(
            "/api/v1/internal/slack/trigger",
            json=trigger,
            headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
        )
    )
    assert internal.status_code == 202, internal.text
    event_ids.append(internal.json["event_id"])
    keep(
        client.simulate_post(
            "/api/v1/internal/slack/trigger",
            json=trigger,
            headers={"Authorization": f"Bearer {WRONG_INTERNAL}"},
        )
    )
    # Admin runs: one fine, one whose agent echoes the team credential in its error, one
    # whose agent keeps failing with the credential in its 500 body until it dies.
    run_ids = []
    for message in ("all good", "please echo-credential", "please fail-hard"):
        started = keep(
            client.simulate_post(
                "/api/v1/admin/agents/run",
                json={
                    "org_id": "acme",
                    "team_node_id": "payments",
                    "agent_name": "planner",
                    "message": message,
                    "context": {"session_token": CANARIES["api_token"]},
                },
                headers=admin,
            )
        )
        assert started.status_code == 202, started.text
        run_ids.append(started.json["agent_run_id"])
    keep(client.simulate_get("/api/v1/admin/audit", headers={"X-Admin-Token": FORGED_ADMIN}))

    for event_id in event_ids:
        final_event(db, event_id)

    def runs_finished() -> bool:
        rows = db.execute(
            "SELECT status FROM orchestrator_agent_runs WHERE id = ANY(%s::uuid[])", (run_ids,)
        ).fetchall()
        return all(r["status"] in ("succeeded", "failed") for r in rows)

    wait_for(runs_finished, timeout=30)
    wait_for(
        lambda: db.execute("SELECT count(*) AS n FROM orchestrator_job_failures").fetchone()["n"],
        timeout=30,
    )
    assert any("refused" in (r.get("error") or "") for r in _runs(db, run_ids))

    # Everything an operator or an attacker could read afterwards.
    for path in (
        "/api/v1/admin/webhooks/events",
        "/api/v1/admin/agents/runs",
        "/api/v1/admin/audit",
        "/api/v1/admin/jobs/dead",
        "/api/v1/admin/jobs/queues",
        *[f"/api/v1/admin/webhooks/events/{e}" for e in event_ids],
        *[f"/api/v1/admin/agents/runs/{r}" for r in run_ids],
    ):
        assert keep(client.simulate_get(path, headers=admin)).status_code == 200, path
    keep(client.simulate_get("/metrics"))
    pages = dashboard_pages(client, admin_token, event_ids, run_ids)

    issued = set(config_service.principals)  # admin, team and impersonation tokens
    team_credentials = [r["team_token"] for r in agent.runs_snapshot() if r["team_token"]]
    assert team_credentials, "no agent call carried a team credential"
    secrets = {
        *SECRETS.values(),
        *OLD.values(),
        *CANARIES.values(),
        *issued,
        *team_credentials,
        admin_token,
        INTERNAL_ADMIN,
        INTERNAL_TOKEN,
        WRONG_INTERNAL,
        FORGED_ADMIN,
        settings.orchestrator_secret_key.get_secret_value(),  # type: ignore[union-attr]
    }
    places = {
        "log": json_log.getvalue(),
        "answers": "\n".join(answers),
        "database": dump_database(db),
        "redis": dump_redis(services.redis, services.namespace),
        "dashboard": pages,
    }
    assert json_log.getvalue().count("\n") > 20, "the flow logged (almost) nothing"
    leaks = [
        f"{place}: {secret[:12]}… in …{text[max(0, i - 120) : i + 40]}…"
        for place, text in places.items()
        for secret in secrets
        if (i := text.find(secret)) >= 0
    ]
    assert not leaks, "\n".join(leaks)


PEER_CREDENTIAL = "internal-admin-credential-9e4f"


def test_peers_echoing_our_credential_get_it_masked_in_their_errors() -> None:
    """The Config Service and the AI Pipeline errors are kept (run steps, job failures,
    logs): a peer that echoes the admin token it was sent must not get it stored."""

    def config_service(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(403, json={"detail": f"credential {token} lacks rights"})

    http = httpx.Client(base_url="http://config", transport=httpx.MockTransport(config_service))
    calls = ConfigServiceWorkerCalls(
        ConfigServiceClient("http://config", client=http), PEER_CREDENTIAL
    )
    with pytest.raises(PeerRejected) as refused:
        calls.issue_team_token("acme", "payments")
    assert PEER_CREDENTIAL not in str(refused.value)
    assert "credential *** lacks rights" in str(refused.value)

    class Pipeline(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            token = self.headers["Authorization"].removeprefix("Bearer ")
            body = f"{'x' * 150} refused {token} for this team".encode()
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Pipeline) as base_url, pytest.raises(PeerRejected) as bootstrap:
        AiPipelineClient(base_url, PEER_CREDENTIAL).bootstrap("payments")
    assert "refused ***" in str(bootstrap.value)
    assert PEER_CREDENTIAL[:8] not in str(bootstrap.value)


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free local port, for the duration of the block."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _runs(db: Any, run_ids: list[str]) -> list[dict[str, Any]]:
    return list(
        db.execute(
            "SELECT * FROM orchestrator_agent_runs WHERE id = ANY(%s::uuid[])", (run_ids,)
        ).fetchall()
    )


def dashboard_pages(
    client: testing.TestClient, admin_token: str, event_ids: list[str], run_ids: list[str]
) -> str:
    """The dashboard's pages for the same data, when this build serves the dashboard."""
    if client.simulate_get("/dashboard/login").status_code != 200:
        return ""
    from tests.dashboard_support import login

    cookies = login(client, admin_token)
    pages = []
    for path in (
        "/dashboard",
        "/dashboard/events",
        "/dashboard/agent-runs",
        "/dashboard/dead",
        *[f"/dashboard/events/{e}" for e in event_ids],
        *[f"/dashboard/agent-runs/{r}" for r in run_ids],
    ):
        page = client.simulate_get(path, cookies=cookies)
        assert page.status_code == 200, (path, page.status_code)
        pages.append(page.text)
    return "\n".join(pages)


# -- 4. org scoping on every admin route ------------------------------------------------------

ORG_A, TEAM_A = "org-a", "team-a"
PRIVATE = "alpha-private-marker"


@pytest.fixture
def org_world(
    client: testing.TestClient, config_service: ConfigServiceStandIn, admin_token: str, db: Any
) -> dict[str, Any]:
    """Objects of org-a, created by a super-admin: a provisioning run, an agent run, a
    schedule, an event routed to it (and their audit rows)."""
    super_admin = {"Authorization": f"Bearer {admin_token}"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        result = client.simulate_post(path, json=body, headers=super_admin)
        assert result.status_code in (201, 202), (path, result.text)
        return dict(result.json)

    team = {"org_id": ORG_A, "team_node_id": TEAM_A}
    provision = post("/api/v1/admin/provision/team", {**team, "name": PRIVATE})
    run = post("/api/v1/admin/agents/run", {**team, "agent_name": "planner", "message": PRIVATE})
    schedule = post(
        f"/api/v1/admin/orgs/{ORG_A}/teams/{TEAM_A}/schedules",
        {"schedule_type": "ingestion", "cron_expression": "0 2 * * *"},
    )
    event_id, _ = store.insert(
        db,
        source="generic",
        parsed=ParsedEvent("alpha-1", "generic", {"message": PRIVATE}, {"service": "alpha"}),
        headers={},
        secrets=NO_SECRETS,
    )
    store.set_status(db, event_id, "dispatched", org_id=ORG_A, team_node_id=TEAM_A)
    return {
        "ids": {
            "provisioning_run": provision["provisioning_run_id"],
            "agent_run": run["agent_run_id"],
            "schedule": schedule["schedule_id"],
            "event": str(event_id),
        },
        "org_a": config_service.add_org_admin(ORG_A),
        "org_b": config_service.add_org_admin("org-b"),
    }


BODY_VALUES: dict[str, Any] = {
    "org_id": ORG_A,
    "team_node_id": TEAM_A,
    "agent_name": "planner",
    "message": "from another org",
    "schedule_type": "eval",
    "cron_expression": "0 5 * * *",
    "enabled": False,
}


def admin_operations(client: testing.TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    document = client.simulate_get("/openapi.json").json
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            schemes = {n for requirement in op.get("security", []) for n in requirement}
            if "adminBearer" in schemes:
                found.append((method.upper(), path, op))
    return found


def request_into_org_a(
    document: dict[str, Any], method: str, path: str, op: dict[str, Any], ids: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, Any] | None, str]:
    """(path, query, body, how the org enters) for a request aimed at org-a's data."""
    how = "global"
    for name in re.findall(r"{([^}]+)}", path):
        value = {
            "org_id": ORG_A,
            "team_node_id": TEAM_A,
            "event_id": ids["event"],
            "schedule_id": ids["schedule"],
            "message_id": str(uuid.uuid4()),
            "run_id": ids["provisioning_run"] if "/provision/" in path else ids["agent_run"],
        }.get(name)
        assert value is not None, f"{method} {path}: classify the path parameter {name!r}"
        path = path.replace(f"{{{name}}}", value)
        how = "path org" if name == "org_id" else ("object" if how == "global" else how)
    query = {}
    if any(p["in"] == "query" and p["name"] == "org_id" for p in op["parameters"]):
        query["org_id"] = ORG_A
        how = "query org"
    body = None
    if "requestBody" in op:
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        properties = schema.get("properties", {})
        body = {k: v for k, v in BODY_VALUES.items() if k in properties}
        if "message_ids" in properties:
            body["message_ids"] = [str(uuid.uuid4())]
        missing = set(schema.get("required", [])) - set(body)
        assert not missing, f"{method} {path}: give the test a value for {missing}"
        if "org_id" in properties:
            how = "body org"
    return path, query, body, how


def call(
    client: testing.TestClient,
    method: str,
    path: str,
    token: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> testing.Result:
    return client.simulate_request(
        method,
        path,
        params=query or None,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_an_org_admin_reaches_nothing_of_another_org_on_any_admin_route(
    client: testing.TestClient, org_world: dict[str, Any], db: Any, services: Any
) -> None:
    document = client.simulate_get("/openapi.json").json
    operations = admin_operations(client)
    assert len(operations) >= 20
    ids = org_world["ids"]
    before = dump_database(db), dump_redis(services.redis, services.namespace)
    seen: dict[str, list[str]] = {}
    for method, template, op in operations:
        path, query, body, how = request_into_org_a(document, method, template, op, ids)
        seen.setdefault(how, []).append(f"{method} {template}")
        result = call(client, method, path, org_world["org_b"], query, body)
        assert result.status_code in (403, 404), (method, template, how, result.text)
        for secret in (PRIVATE, TEAM_A, *ids.values()):
            assert secret not in result.text, (method, template, secret)
    # Nothing was written, enqueued or audited by any of those calls.
    after = dump_database(db), dump_redis(services.redis, services.namespace)
    changed = [
        set(old.splitlines()) ^ set(new.splitlines())
        for old, new in zip(before, after, strict=True)
    ]
    assert changed == [set(), set()], changed
    # Every way an org can enter a request was exercised.
    assert set(seen) == {"global", "path org", "query org", "body org", "object"}, seen


def test_the_org_scoping_check_has_teeth(
    client: testing.TestClient, org_world: dict[str, Any]
) -> None:
    """The same requests by org-a's own admin succeed where they read (so the 403/404
    above are scoping, not bad ids), and org-only lists never show another org's data."""
    document = client.simulate_get("/openapi.json").json
    ids = org_world["ids"]
    for method, template, op in admin_operations(client):
        if method != "GET":
            continue
        path, query, body, how = request_into_org_a(document, method, template, op, ids)
        own = call(client, method, path, org_world["org_a"], query, body)
        expected = 403 if how == "global" else 200
        assert own.status_code == expected, (template, how, own.text)
        if how in ("query org", "path org", "object"):
            assert TEAM_A in own.text or PRIVATE in own.text or ORG_A in own.text, template
        if how == "query org":
            unfiltered = call(client, method, path, org_world["org_b"])
            assert unfiltered.status_code == 200, (template, unfiltered.text)
            assert unfiltered.json["items"] == [], (template, unfiltered.text)


# -- 5. the SSRF guard on agent URLs ----------------------------------------------------------

SHARED_AGENT = "http://agent.shared.svc.cluster.local:8080"


@pytest.fixture
def agent_settings() -> Settings:
    return make_settings(agent_api_url=SHARED_AGENT, k8s_namespace="incidentfox")


def config_with(url: Any) -> dict[str, Any]:
    return {"agent": {"dedicated_service_url": url}}


def test_the_team_s_own_derived_url_is_used(agent_settings: Settings) -> None:
    derived = dedicated_agent_url("acme", "payments", "incidentfox")
    assert agent_url(agent_settings, "acme", "payments", config_with(derived)) == derived
    # Trailing slashes only: still the derived URL, and the derived one is what is used.
    assert agent_url(agent_settings, "acme", "payments", config_with(derived + "//")) == derived
    assert agent_url(agent_settings, "acme", "payments", {}) == SHARED_AGENT


def hostile_urls() -> list[Any]:
    derived = dedicated_agent_url("acme", "payments", "incidentfox")
    host = derived.removeprefix("http://")
    service = host.split(".")[0]
    return [
        "http://evil.example.com",
        "https://agent.evil.example.com:8080",
        dedicated_agent_url("acme", "other-team", "incidentfox"),
        dedicated_agent_url("other-org", "payments", "incidentfox"),
        dedicated_agent_url("acme", "payments", "kube-system"),
        f"http://{service}.attacker.svc.cluster.local:8080",
        f"http://{host}@evil.example.com",
        f"http://{host}@169.254.169.254/",
        f"http://user:pass@{host}",
        f"{derived}@evil",
        f"{derived}.evil.example.com",
        f"{derived}/../../admin",
        f"{derived}/x",
        f"{derived}?next=http://evil",
        f"{derived}#frag",
        derived.upper(),
        derived.replace("http://", "https://"),
        derived.replace(":8080", ":80"),
        f" {derived}",
        f"{derived}\n",
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "http://0x7f000001:8080",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "//evil.example.com",
        "",
        None,
        42,
        ["http://evil.example.com"],
        {"url": derived},
    ]


@pytest.mark.parametrize("url", hostile_urls(), ids=repr)
def test_any_other_agent_url_in_team_config_is_ignored(agent_settings: Settings, url: Any) -> None:
    assert agent_url(agent_settings, "acme", "payments", config_with(url)) == SHARED_AGENT


def test_the_agent_client_does_not_follow_redirects() -> None:
    """A peer (or whatever answers at the agent URL) cannot bounce the team credential to
    another host with a redirect."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            if self.path.startswith("/agents/"):
                self.send_response(307)
                self.send_header("Location", "/stolen")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as base_url, pytest.raises(AgentFailed, match="307"):
        AgentClient().run(
            base_url,
            "planner",
            team_token="team-credential",
            correlation_id="c1",
            body={"message": "m"},
            timeout=5,
        )
    assert hits == ["/agents/planner/run"]


# -- 6. body and header limits ---------------------------------------------------------------

_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def routes_taking_a_body(app: Any) -> list[tuple[str, str]]:
    """(method, concrete path) for every responder of a body method, from the router."""
    found = []

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if node.resource is not None:
                for method in _BODY_METHODS:
                    if hasattr(node.resource, f"on_{method.lower()}"):
                        path = re.sub(
                            r"{[^}]+}", "00000000-0000-4000-8000-000000000000", node.uri_template
                        )
                        found.append((method, path))
            walk(node.children)

    walk(app._router._roots)
    return found


def raw_status(app: Any, method: str, path: str, content_length: str) -> int:
    """The status for a malformed Content-Length (the test client refuses to send one)."""
    environ = testing.create_environ(path=path, method=method)
    environ["CONTENT_LENGTH"] = content_length
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
    return int(statuses[0].split()[0])


@pytest.fixture
def limited_app(gateway_settings: Settings, services: Any) -> Any:
    return create_app(gateway_settings, services)


def test_every_route_that_takes_a_body_refuses_oversized_and_chunked_bodies(
    limited_app: Any, gateway_settings: Settings, db: Any
) -> None:
    client = testing.TestClient(limited_app)
    routes = routes_taking_a_body(limited_app)
    assert ("POST", "/webhooks/github") in routes and len(routes) >= 15, routes
    cap = gateway_settings.orchestrator_max_body_bytes
    for method, path in routes:
        big = client.simulate_request(method, path, body=b"x" * (cap + 1))
        assert big.status_code == 413, (method, path, big.status_code)
        chunked = client.simulate_request(
            method, path, body=b"", headers={"Transfer-Encoding": "chunked"}
        )
        assert chunked.status_code == 411, (method, path, chunked.status_code)
        for length in ("-5", "abc", "1e3"):
            assert raw_status(limited_app, method, path, length) == 400, (method, path, length)
    assert db.execute("SELECT count(*) AS n FROM orchestrator_webhook_events").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "a" * 20_000},
        {"Authorization": "Bearer " + "é" * 100},
        {"Authorization": "Bearer tok\x01en"},
        {"Authorization": "Bearer"},
        {"Authorization": "B" * 10_000},
        {"X-Admin-Token": "t" * 50_000},
        {"X-Admin-Token": "ÿ" * 10},
    ],
    ids=lambda h: f"{next(iter(h))}:{len(next(iter(h.values())))}",
)
def test_oversized_or_odd_credentials_are_401_not_5xx(
    client: testing.TestClient, headers: dict[str, str]
) -> None:
    for path in ("/api/v1/admin/jobs/queues", "/api/v1/admin/audit"):
        result = client.simulate_get(path, headers=headers)
        assert result.status_code == 401, (path, result.text)
        value = next(iter(headers.values()))
        if len(value) > 20:  # never echoed back
            assert value[-20:] not in result.text


def test_oversized_headers_elsewhere_are_refused_or_ignored_not_5xx(
    gateway: testing.TestClient, settings: Settings, services: Any
) -> None:
    internal = settings.model_copy(update={"orchestrator_internal_token": SecretStr("t0k3n")})
    client = testing.TestClient(create_app(internal, services))
    huge = "x" * 100_000
    answers = [
        client.simulate_post(
            "/api/v1/internal/slack/trigger",
            json={"channel_id": "C1", "text": "t"},
            headers={"Authorization": f"Bearer {huge}"},
        ),
        gateway.simulate_post(
            "/webhooks/github", body=b"{}", headers={"X-Hub-Signature-256": "sha256=" + huge}
        ),
        gateway.simulate_post(
            "/webhooks/slack/events",
            body=b"{}",
            headers={"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": huge},
        ),
        gateway.simulate_post("/webhooks/coralogix", body=b"{}", headers={"Authorization": huge}),
        gateway.simulate_get("/health", headers={"X-Request-ID": huge}),
        client.simulate_get("/dashboard", headers={"Cookie": f"orch_dashboard={huge}"}),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [401, 401, 401, 401], statuses
    assert statuses[4] == 200 and answers[4].headers["X-Request-ID"] != huge
    assert statuses[5] < 500, statuses


def test_gunicorn_bounds_the_request_line_and_headers() -> None:
    """Headers the app never sees are gunicorn's: it answers 400 past these limits."""
    from web import gunicorn_conf

    assert gunicorn_conf.limit_request_line <= 8190
    assert gunicorn_conf.limit_request_fields <= 100
    assert gunicorn_conf.limit_request_field_size <= 8190
