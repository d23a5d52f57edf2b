"""`/openapi.json` is generated from the served routes and their models; the stand-ins
speak PEERS.md (the Kubernetes one through the official client); logs are JSON with the
request id and never carry a credential."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from falcon import testing

from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.ai_pipeline import AiPipelineStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn
from orchestrator.devstack.kubernetes import KubernetesStandIn
from orchestrator.logs import JsonFormatter, request_id_var
from orchestrator.redaction import redact, redact_text


def resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_openapi_describes_every_served_api_route(client: testing.TestClient) -> None:
    doc = client.simulate_get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for path, method in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/api/v1/admin/audit", "get"),
        ("/api/v1/admin/jobs/queues", "get"),
        ("/api/v1/admin/jobs/dead", "get"),
        ("/api/v1/admin/jobs/dead/requeue", "post"),
        ("/api/v1/admin/jobs/dead/{message_id}", "delete"),
        ("/api/v1/admin/jobs/dead/{message_id}/requeue", "post"),
    ]:
        assert method in paths[path], (path, method)
    bulk = paths["/api/v1/admin/jobs/dead/requeue"]["post"]
    body_schema = resolve(doc, bulk["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert body_schema["properties"]["message_ids"]["maxItems"] == 500
    assert {"401", "403", "411", "413", "422", "503"} <= set(bulk["responses"])
    audit_params = {p["name"] for p in paths["/api/v1/admin/audit"]["get"]["parameters"]}
    assert audit_params == {"limit", "cursor", "org_id", "action"}
    for ref in refs(doc):
        assert resolve(doc, ref), ref
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_openapi_is_consistent_with_the_app(client: testing.TestClient) -> None:
    """Every documented operation is routed (no router 404, no 405)."""
    import re

    doc = client.simulate_get("/openapi.json").json
    unrouted = client.simulate_get("/no/such/route").json["description"]
    for path, ops in doc["paths"].items():
        concrete = re.sub(r"{[^}]+}", "x", path)
        for method in ops:
            result = client.simulate_request(method.upper(), concrete)
            assert result.status_code != 405, (method, path)
            if result.status_code == 404:
                assert result.json["description"] != unrouted, (method, path)


def test_config_service_standin_speaks_the_auth_me_contract() -> None:
    standin = ConfigServiceStandIn().start()
    try:
        super_token = standin.add_super_admin()
        missing = httpx.get(standin.url + "/api/v1/auth/me")
        assert missing.status_code == 401 and missing.json() == {"detail": "Missing Bearer token"}
        bad = httpx.get(standin.url + "/api/v1/auth/me", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401 and bad.json() == {"detail": "Invalid token"}
        me = httpx.get(
            standin.url + "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {super_token}", "X-Request-Id": "r-1"},
        )
        assert me.status_code == 200 and me.headers["X-Request-Id"] == "r-1"
        body = me.json()
        assert set(body) == {
            "role",
            "auth_kind",
            "org_id",
            "team_node_id",
            "subject",
            "email",
            "can_write",
            "permissions",
            "visitor_session_id",
        }
        assert body["role"] == "admin" and body["org_id"] is None
        assert body["permissions"] == ["admin:*"]
        org_token = standin.add_org_admin("acme")
        assert "." in org_token
        team = httpx.get(
            standin.url + "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {standin.add_team_token('acme', 't')}"},
        )
        assert team.json()["role"] == "team"
        # Faults can be injected over HTTP by a harness in another process.
        httpx.post(standin.url + "/_standin/faults", json={"status": 503, "times": 1})
        assert httpx.get(standin.url + "/api/v1/auth/me").status_code == 503
        assert httpx.get(standin.url + "/api/v1/auth/me").status_code == 401
    finally:
        standin.stop()


def test_a_standin_that_never_started_stops_at_once() -> None:
    import threading

    standin = AgentStandIn()
    stopper = threading.Thread(target=standin.stop)
    stopper.start()
    stopper.join(timeout=5)
    assert not stopper.is_alive()


def test_agent_and_pipeline_standins() -> None:
    agent, pipeline = AgentStandIn().start(), AiPipelineStandIn().start()
    try:
        run = httpx.post(
            agent.url + "/agents/planner/run",
            json={"message": "hi"},
            headers={"X-IncidentFox-Team-Token": "t", "X-Correlation-ID": "c-1"},
        )
        assert run.status_code == 200
        assert run.json()["success"] is True and run.json()["correlation_id"] == "c-1"
        assert (
            httpx.post(agent.url + "/agents/planner/run", json={"message": "hi"}).status_code == 500
        )
        assert httpx.post(pipeline.url + "/api/v1/teams/t1/bootstrap").status_code == 401
        boot = httpx.post(
            pipeline.url + "/api/v1/teams/t1/bootstrap", headers={"Authorization": "Bearer admin"}
        )
        assert boot.status_code == 200 and boot.json()["status"] == "queued"
    finally:
        agent.stop()
        pipeline.stop()


def test_kubernetes_standin_through_the_official_client(tmp_path: Any) -> None:
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    standin = KubernetesStandIn().start()
    try:
        path = tmp_path / "kubeconfig"
        path.write_text(standin.kubeconfig("incidentfox"))
        api_client = config.new_client_from_config(config_file=str(path))
        assert client.VersionApi(api_client).get_code().git_version.endswith("standin")
        with pytest.raises(ApiException) as info:
            client.BatchV1Api(api_client).read_namespaced_cron_job("x", "incidentfox")
        assert info.value.status == 404
        assert json.loads(info.value.body)["reason"] == "NotFound"
    finally:
        standin.stop()


def test_json_logs_carry_the_request_id_and_mask_credentials() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("web"))
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    token = request_id_var.set("req-7")
    try:
        logger.info("calling peer with Authorization: Bearer abc.def-secret", extra={"route": "/x"})
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "req-7" and line["route"] == "/x" and line["level"] == "info"
    assert "abc.def-secret" not in stream.getvalue()


def test_redaction_of_structures_and_text() -> None:
    masked = redact(
        {
            "token": "t1",
            "nested": {"client_secret": "s", "ok": "visible"},
            "list": [{"password": "p"}],
            "empty_token": None,
        }
    )
    assert masked == {
        "token": "***",
        "nested": {"client_secret": "***", "ok": "visible"},
        "list": [{"password": "***"}],
        "empty_token": None,
    }
    assert "pw" not in redact_text("postgresql://user:pw@host/db")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sgnaturevalue"
    assert jwt not in redact_text(f"got {jwt} back")
    assert "s3" not in redact_text('{"X-Admin-Token": "s3"}')
