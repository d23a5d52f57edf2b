"""The Config Service and Agent stand-ins speak the PEERS.md contracts over real HTTP,
quirks included (400 for an existing node, 405 for deletes, lists replacing on merge,
500 for a token of a team that does not exist, 500 from the agent for a bad token)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from orchestrator.devstack.agent import AgentStandIn
from orchestrator.devstack.config_service import ConfigServiceStandIn, deep_merge

INTERNAL = {"X-Internal-Service": "orchestrator"}
ADMIN_TOKEN = "peer-test-super-admin"
AGENT_TOKEN = "tok"


@pytest.fixture
def config() -> Iterator[ConfigServiceStandIn]:
    standin = ConfigServiceStandIn()
    standin.start()
    standin.add_super_admin(ADMIN_TOKEN)
    yield standin
    standin.stop()


@pytest.fixture
def http(config: ConfigServiceStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=config.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def agent() -> Iterator[AgentStandIn]:
    standin = AgentStandIn()
    standin.start()
    yield standin
    standin.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def org(org_id: str = "acme") -> str:
    return f"/api/v1/admin/orgs/{org_id}"


def create_node(http: httpx.Client, org_id: str, node_id: str, **extra: Any) -> httpx.Response:
    body = {"node_id": node_id, "node_type": "org" if node_id == org_id else "team", **extra}
    if body["node_type"] == "team":
        body.setdefault("parent_id", org_id)
    return http.post(f"{org(org_id)}/nodes", json=body)


def auth_me(config: ConfigServiceStandIn, token: str) -> httpx.Response:
    return httpx.get(config.url + "/api/v1/auth/me", headers=bearer(token))


def lookup(config: ConfigServiceStandIn, body: Any, headers: Any = INTERNAL) -> httpx.Response:
    return httpx.post(config.url + "/api/v1/internal/routing/lookup", json=body, headers=headers)


# -- admin auth ------------------------------------------------------------------------------


def test_admin_routes_take_bearer_or_x_admin_token_and_refuse_everything_else(
    config: ConfigServiceStandIn,
) -> None:
    url = config.url + org() + "/nodes"
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.json() == {"detail": "Missing admin token"}
    for token in ("nope", config.add_team_token("acme", "t1"), "a.b.c"):
        refused = httpx.get(url, headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json() == {"detail": "Invalid admin token"}
    assert httpx.get(url, headers={"X-Admin-Token": ADMIN_TOKEN}).status_code == 200
    assert httpx.get(url, headers=bearer(ADMIN_TOKEN)).status_code == 200
    # Bearer wins over X-Admin-Token, as in the real service.
    both = httpx.get(url, headers={**bearer("nope"), "X-Admin-Token": ADMIN_TOKEN})
    assert both.status_code == 401


def test_org_admin_is_accepted_on_any_org_quirk(config: ConfigServiceStandIn) -> None:
    """The service does not enforce the org of an org admin token: the orchestrator must."""
    token = config.add_org_admin("acme")
    for org_id in ("acme", "other"):
        assert (
            httpx.get(config.url + org(org_id) + "/nodes", headers=bearer(token)).status_code == 200
        )
    impersonation, _ = config.add_impersonation_token("acme", "t1")
    refused = httpx.get(config.url + org() + "/nodes", headers=bearer(impersonation))
    assert refused.status_code == 401


# -- nodes -----------------------------------------------------------------------------------


def test_nodes_create_list_get_and_the_quirks(http: httpx.Client) -> None:
    created = create_node(http, "acme", "acme", name="Acme")
    assert created.status_code == 200
    assert created.json() == {
        "org_id": "acme",
        "node_id": "acme",
        "parent_id": None,
        "node_type": "org",
        "name": "Acme",
        "template_applied": False,
    }
    again = create_node(http, "acme", "acme")
    assert again.status_code == 400 and again.json() == {"detail": "Node already exists: acme"}
    orphan = create_node(http, "acme", "t1", parent_id="nowhere")
    assert orphan.status_code == 400 and orphan.json() == {"detail": "Parent not found: nowhere"}
    team = create_node(http, "acme", "t1")
    assert team.status_code == 200 and team.json()["parent_id"] == "acme"

    nodes = http.get(org() + "/nodes").json()
    assert [n["node_id"] for n in nodes] == ["acme", "t1"]
    assert http.get(org() + "/nodes/t1").json()["node_type"] == "team"
    unknown = http.get(org() + "/nodes/zz")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Node not found: zz"}
    assert http.get(org("other") + "/nodes").json() == []

    # Creating a node creates its empty config; nothing can be deleted.
    assert http.get(org() + "/nodes/t1/config").json() == {"config": {}}
    assert http.delete(org() + "/nodes/t1").status_code == 405
    assert http.delete(org() + "/nodes/t1/config").status_code == 405


def test_node_body_is_validated_like_fastapi(http: httpx.Client) -> None:
    too_long = create_node(http, "acme", "x" * 129)
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "node_id"]
    assert create_node(http, "acme", "x" * 128, parent_id=None).status_code == 200
    bad_type = http.post(org() + "/nodes", json={"node_id": "n", "node_type": "group"})
    assert bad_type.status_code == 422
    assert bad_type.json()["detail"][0]["loc"] == ["body", "node_type"]
    empty = http.post(org() + "/nodes", json={"node_id": "", "node_type": "org"})
    assert empty.status_code == 422
    missing = http.post(org() + "/nodes", content=b"")
    assert missing.status_code == 422 and missing.json()["detail"][0]["type"] == "missing"


# -- config ----------------------------------------------------------------------------------


def test_config_merge_rules_lists_replace_dicts_merge_null_is_stored(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team("acme", "t1")
    url = org() + "/nodes/t1/config"
    first = http.put(
        url,
        json={
            "patch": {
                "routing": {"slack_channel_ids": ["C1", "C2"], "github_repos": ["acme/api"]},
                "agent": {"dedicated_service_url": "http://x", "replicas": 2},
                "entrance_agent": "triage",
            }
        },
    )
    assert first.status_code == 200
    second = http.put(
        url,
        json={
            "patch": {
                "routing": {"slack_channel_ids": []},
                "agent": {"dedicated_service_url": None},
                "entrance_agent": "planner",
            }
        },
    )
    expected = {
        "routing": {"slack_channel_ids": [], "github_repos": ["acme/api"]},
        "agent": {"dedicated_service_url": None, "replicas": 2},
        "entrance_agent": "planner",
    }
    assert second.status_code == 200 and second.json() == {"config": expected}
    assert http.get(url).json() == {"config": expected}
    assert http.put(url, json={"patch": {"routing": {"github_repos": ["b/c"]}}}).json()["config"][
        "routing"
    ] == {"slack_channel_ids": [], "github_repos": ["b/c"]}

    unknown = http.put(org() + "/nodes/ghost/config", json={"patch": {"a": 1}})
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "Node configuration not found: acme/ghost"}
    assert http.put(url, json={"patch": [1]}).status_code == 422
    # The real service answers an empty config for a node it does not know.
    assert http.get(org() + "/nodes/ghost/config").json() == {"config": {}}


def test_deep_merge_does_not_alias_its_inputs() -> None:
    base = {"a": {"b": [1]}}
    patch = {"a": {"c": {"d": 1}}}
    merged = deep_merge(base, patch)
    merged["a"]["b"].append(2)
    merged["a"]["c"]["d"] = 2
    assert base == {"a": {"b": [1]}} and patch == {"a": {"c": {"d": 1}}}


def test_approval_policy_answers_pending_and_changes_nothing(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team("acme", "t1", config={"enabled_tools": ["a"]})
    config.require_approval_for = {"prompts", "tools", "agents.planner.prompt"}
    url = org() + "/nodes/t1/config"
    for patch in (
        {"enabled_tools": ["a", "b"]},
        {"system_prompt": "be nice", "x": 1},
        {"agents": {"planner": {"prompt": "p"}}},
    ):
        answer = http.put(url, json={"patch": patch})
        assert answer.status_code == 200
        assert answer.json()["status"] == "pending_approval"
        assert "config" not in answer.json()
    assert config.config_of("acme", "t1") == {"enabled_tools": ["a"]}
    assert len(config.pending_changes) == 3
    applied = http.put(url, json={"patch": {"routing": {"services": ["api"]}}})
    assert applied.json()["config"]["routing"] == {"services": ["api"]}
    bypass = http.put(
        url, json={"patch": {"enabled_tools": []}}, headers={"X-Bypass-Approval": "true"}
    )
    assert bypass.json()["config"]["enabled_tools"] == []


def test_effective_config_merges_org_then_team_for_a_team_token(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team(
        "acme",
        "t1",
        org_config={
            "notifications": {"default_slack_channel_id": "C-ORG"},
            "output_config": {"default_destinations": ["slack", "github"]},
            "integrations": {"slack": {"bot_token": "xoxb-org"}},
        },
        config={"output_config": {"default_destinations": ["slack"]}},
    )
    token = http.post(org() + "/teams/t1/tokens").json()["token"]
    me = httpx.get(config.url + "/api/v1/config/me", headers=bearer(token))
    assert me.status_code == 200
    body = me.json()
    assert set(body) == {"node_id", "effective_config", "computed_at", "hierarchy"}
    assert body["node_id"] == "t1" and body["hierarchy"] == ["acme", "t1"]
    effective = body["effective_config"]
    assert effective["entrance_agent"] == "planner"
    assert effective["output_config"]["default_destinations"] == ["slack"]
    assert effective["notifications"]["default_slack_channel_id"] == "C-ORG"
    assert effective["integrations"]["slack"]["bot_token"] == "xoxb-org"
    datetime.fromisoformat(body["computed_at"])

    config.patch_config("acme", "acme", {"entrance_agent": "investigator"})
    me = httpx.get(config.url + "/api/v1/config/me", headers=bearer(token)).json()
    assert me["effective_config"]["entrance_agent"] == "investigator"

    assert httpx.get(config.url + "/api/v1/config/me").status_code == 401
    admin = httpx.get(config.url + "/api/v1/config/me", headers=bearer(ADMIN_TOKEN))
    assert admin.status_code == 401


# -- tokens ----------------------------------------------------------------------------------


def test_team_token_lifecycle_issue_auth_me_list_revoke(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team("acme", "t1")
    issued = http.post(org() + "/teams/t1/tokens", headers={"X-Admin-Actor": "alice"})
    assert issued.status_code == 200 and set(issued.json()) == {"token", "issued_at"}
    token = issued.json()["token"]
    assert re.fullmatch(r"[0-9a-f]{32}\.[^.]+", token)
    assert datetime.fromisoformat(issued.json()["issued_at"]).tzinfo is None
    token_id = token.partition(".")[0]

    me = auth_me(config, token)
    assert me.status_code == 200
    assert me.json()["role"] == "team" and me.json()["auth_kind"] == "team_token"
    assert me.json()["org_id"] == "acme" and me.json()["team_node_id"] == "t1"
    assert me.json()["permissions"] == ["team:read", "team:write"]
    assert config.is_team_credential(token)

    newer = http.post(org() + "/teams/t1/tokens").json()["token"].partition(".")[0]
    listed = http.get(org() + "/teams/t1/tokens").json()
    assert [row["token_id"] for row in listed] == [newer, token_id]
    assert set(listed[0]) == {"token_id", "issued_at", "revoked_at", "issued_by"}
    assert listed[1]["issued_by"] == "alice" and listed[1]["revoked_at"] is None

    org_tokens = http.get(org() + "/tokens").json()
    assert org_tokens["total"] == 2
    row = next(t for t in org_tokens["tokens"] if t["token_id"] == token_id)
    assert row["status"] == "active" and row["team_node_id"] == "t1"
    assert {"token_id", "team_node_id", "issued_at", "expires_at", "revoked_at"} <= set(row)

    revoke = org() + f"/teams/t1/tokens/{token_id}/revoke"
    assert http.post(revoke).json() == {"status": "ok"}
    gone = auth_me(config, token)
    assert gone.status_code == 401 and gone.json() == {"detail": "Invalid token"}
    assert http.post(revoke).json() == {"status": "ok"}  # idempotent
    assert http.post(org() + "/teams/t1/tokens/" + "0" * 32 + "/revoke").status_code == 200
    statuses = {t["token_id"]: t["status"] for t in http.get(org() + "/tokens").json()["tokens"]}
    assert statuses == {token_id: "revoked", newer: "active"}
    assert http.get(org() + "/teams/t1/tokens").json()[1]["revoked_at"] is not None


def test_token_for_a_team_that_does_not_exist_is_a_500(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team("acme", "t1")
    assert http.post(org() + "/teams/ghost/tokens").status_code == 500
    assert http.get(org() + "/tokens").json()["total"] == 0
    assert http.get(org("nobody") + "/tokens").status_code == 404


def test_bulk_revoke_and_expiry(http: httpx.Client, config: ConfigServiceStandIn) -> None:
    config.seed_team("acme", "t1")
    config.seed_team("beta", "t9")
    tokens = [http.post(org() + "/teams/t1/tokens").json()["token"] for _ in range(3)]
    ids = [t.partition(".")[0] for t in tokens]
    http.post(org() + f"/teams/t1/tokens/{ids[0]}/revoke")
    bulk = http.post(org() + "/tokens/bulk-revoke", json={"token_ids": [ids[0], ids[1], "unknown"]})
    assert bulk.status_code == 200
    assert bulk.json() == {"status": "ok", "revoked_count": 1, "total_requested": 3}
    assert auth_me(config, tokens[1]).status_code == 401
    assert auth_me(config, tokens[2]).status_code == 200
    assert http.post(org() + "/tokens/bulk-revoke", json={"token_ids": []}).status_code == 400
    foreign = http.post(org("beta") + "/teams/t9/tokens").json()["token"].partition(".")[0]
    refused = http.post(org() + "/tokens/bulk-revoke", json={"token_ids": [foreign]})
    assert refused.status_code == 403

    config.expire_token(ids[2])
    assert auth_me(config, tokens[2]).status_code == 401
    statuses = {t["token_id"]: t["status"] for t in http.get(org() + "/tokens").json()["tokens"]}
    assert statuses == {ids[0]: "revoked", ids[1]: "revoked", ids[2]: "expired"}


def test_tokens_issued_concurrently_are_all_kept(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team("acme", "t1")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda _: httpx.post(
                    config.url + org() + "/teams/t1/tokens", headers=bearer(ADMIN_TOKEN)
                ),
                range(24),
            )
        )
    assert all(a.status_code == 200 for a in answers)
    assert len({a.json()["token"] for a in answers}) == 24
    assert http.get(org() + "/tokens").json()["total"] == 24


def test_impersonation_jwt_is_read_only_and_works_on_team_routes(
    http: httpx.Client, config: ConfigServiceStandIn
) -> None:
    config.seed_team("acme", "t1", config={"entrance_agent": "triage"})
    answer = http.post(org() + "/teams/t1/impersonation-token")
    assert answer.status_code == 200 and set(answer.json()) == {"token", "expires_at"}
    token = answer.json()["token"]
    parts = token.split(".")
    assert len(parts) == 3 and all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts)
    claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    assert claims["org_id"] == "acme" and claims["team_node_id"] == "t1"
    assert claims["exp"] - claims["iat"] == 15 * 60
    expires_at = datetime.fromisoformat(answer.json()["expires_at"])
    now = datetime.fromisoformat(http.post(org() + "/teams/t1/tokens").json()["issued_at"])
    assert timedelta(minutes=14) < expires_at - now <= timedelta(minutes=15, seconds=1)

    me = auth_me(config, token).json()
    assert me["role"] == "team" and me["auth_kind"] == "impersonation"
    assert me["can_write"] is False and me["permissions"] == ["team:read"]
    assert me["team_node_id"] == "t1"
    effective = httpx.get(config.url + "/api/v1/config/me", headers=bearer(token))
    assert effective.status_code == 200
    assert effective.json()["effective_config"]["entrance_agent"] == "triage"
    denied = httpx.get(config.url + org() + "/nodes", headers=bearer(token))
    assert denied.status_code == 401


# -- routing lookup --------------------------------------------------------------------------


def test_routing_lookup_priority_regardless_of_order(config: ConfigServiceStandIn) -> None:
    config.seed_team("acme", "slack-team", routing={"slack_channel_ids": ["C1"]})
    config.seed_team("acme", "pd-team", routing={"pagerduty_service_ids": ["P1"]})
    config.seed_team("acme", "svc-team", routing={"services": ["api"]})
    identifiers = {"service": "api", "slack_channel_id": "C1", "pagerduty_service_id": "P1"}
    found = lookup(config, {"identifiers": identifiers})
    assert found.status_code == 200
    assert found.json() == {
        "found": True,
        "org_id": "acme",
        "team_node_id": "pd-team",
        "matched_by": "pagerduty_service_id",
        "matched_value": "P1",
        "tried": ["pagerduty_service_id"],
        "team_token": None,
    }
    fallback = lookup(
        config, {"identifiers": {"service": "api", "slack_channel_id": "C-none", "x": "y"}}
    ).json()
    assert fallback["team_node_id"] == "svc-team" and fallback["matched_by"] == "service"
    assert fallback["tried"] == ["slack_channel_id", "service"]
    none = lookup(config, {"identifiers": {"github_repo": "a/b", "unknown_key": "C1"}}).json()
    assert none == {
        "found": False,
        "org_id": None,
        "team_node_id": None,
        "matched_by": None,
        "matched_value": None,
        "tried": ["github_repo"],
        "team_token": None,
    }


def test_routing_lookup_matching_rules(config: ConfigServiceStandIn) -> None:
    config.seed_team("acme", "t1", routing={"github_repos": ["Acme/API"], "services": [" pay "]})
    config.seed_team("beta", "t2", routing={"github_repos": ["Acme/API"]})
    config.seed_team("acme", "t3", routing={"github_repos": ["Acme/API"]})
    # Routing in an org node's config is never searched.
    config.patch_config("acme", "acme", {"routing": {"slack_channel_ids": ["C-ORG"]}})

    def match(identifiers: dict[str, Any], **extra: Any) -> Any:
        return lookup(config, {"identifiers": identifiers, **extra}).json()

    assert match({"github_repo": "acme/api"})["found"] is False  # case-sensitive
    first = match({"github_repo": "  Acme/API "})  # trimmed; first team in creation order
    assert first["team_node_id"] == "t1" and first["matched_value"] == "  Acme/API "
    assert match({"github_repo": "Acme/API"}, org_id="beta")["team_node_id"] == "t2"
    assert match({"service": "pay"})["team_node_id"] == "t1"
    assert match({"slack_channel_id": "C-ORG"})["found"] is False
    assert match({"github_repo": ""})["tried"] == []


def test_routing_lookup_validation_and_header(config: ConfigServiceStandIn) -> None:
    bad = lookup(config, {"identifiers": {"slack_channel_id": 123}})
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert detail[0]["loc"] == ["body", "identifiers", "slack_channel_id"]
    assert {"loc", "msg", "type"} <= set(detail[0])
    assert lookup(config, {"identifiers": {"service": None}}).status_code == 422
    assert lookup(config, {"org_id": "acme"}).status_code == 422
    missing = lookup(config, {"identifiers": {"service": "api"}}, headers={})
    assert missing.status_code == 401 and isinstance(missing.json()["detail"], str)
    # Presence is all it checks.
    anyone = lookup(config, {"identifiers": {}}, headers={"X-Internal-Service": "anything"})
    assert anyone.status_code == 200 and anyone.json()["found"] is False


# -- feedback --------------------------------------------------------------------------------


def test_feedback_is_recorded(config: ConfigServiceStandIn) -> None:
    url = config.url + "/api/v1/internal/feedback"
    body = {"run_id": "r1", "feedback": "positive", "correlation_id": "c1", "source": "slack"}
    assert httpx.post(url, json=body).status_code == 401
    answer = httpx.post(url, json={**body, "user_id": "U1"}, headers=INTERNAL)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    assert len(config.feedback) == 1
    recorded = config.feedback[0]
    assert recorded["run_id"] == "r1" and recorded["feedback"] == "positive"
    assert recorded["user_id"] == "U1" and recorded["source"] == "slack"
    assert httpx.post(url, json={"feedback": "x"}, headers=INTERNAL).status_code == 422
    over_http = httpx.get(config.url + "/_standin/feedback").json()["feedback"]
    assert over_http[0]["correlation_id"] == "c1"


def test_request_id_is_echoed_and_faults_apply(config: ConfigServiceStandIn) -> None:
    answer = httpx.get(
        config.url + org() + "/nodes", headers={**bearer(ADMIN_TOKEN), "X-Request-Id": "rq-9"}
    )
    assert answer.headers["X-Request-Id"] == "rq-9"
    config.set_faults(status=503, times=1, path=r"/routing/lookup$")
    assert lookup(config, {"identifiers": {}}).status_code == 503
    assert lookup(config, {"identifiers": {}}).status_code == 200


# -- agent -----------------------------------------------------------------------------------


def run(
    agent: AgentStandIn, name: str = "planner", token: str | None = AGENT_TOKEN, **body: Any
) -> httpx.Response:
    headers = {"X-Correlation-ID": "run-1"}
    if token is not None:
        headers["X-IncidentFox-Team-Token"] = token
    return httpx.post(
        f"{agent.url}/agents/{name}/run",
        json={"message": "look at this", **body},
        headers=headers,
        timeout=10,
    )


def test_agent_records_runs_and_answers_success(agent: AgentStandIn) -> None:
    answer = run(agent, context={"user_id": "U1"}, timeout=30)
    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True and body["agent"] == "planner"
    assert body["correlation_id"] == "run-1" and body["run_id"]
    assert isinstance(body["duration_seconds"], float) and "output" in body
    recorded = agent.runs[0]
    assert recorded["agent"] == "planner" and recorded["team_token"] == "tok"
    assert recorded["correlation_id"] == "run-1" and recorded["status"] == 200
    assert recorded["headers"]["x-incidentfox-team-token"] == "tok"
    assert recorded["body"]["context"] == {"user_id": "U1"} and recorded["body"]["timeout"] == 30
    posted = run(agent, output_destinations=[{"type": "slack", "channel_id": "C1"}]).json()
    assert posted["success"] is True and "output" not in posted
    assert len(httpx.get(agent.url + "/_standin/runs").json()["runs"]) == 2


def test_agent_unknown_agent_and_token_quirks(
    agent: AgentStandIn, config: ConfigServiceStandIn
) -> None:
    agent.known_agents = {"planner"}
    assert run(agent, "nobody").status_code == 404
    assert run(agent, token=None).status_code == 500
    agent.valid_tokens = {"good"}
    assert run(agent, token="bad").status_code == 500
    assert run(agent, token="good").status_code == 200
    agent.valid_tokens = config.is_team_credential
    impersonation, _ = config.add_impersonation_token("acme", "t1")
    assert run(agent, token=impersonation).status_code == 200
    assert run(agent, token=ADMIN_TOKEN).status_code == 500
    assert [r["status"] for r in agent.runs] == [404, 500, 500, 200, 200, 500]
    agent.valid_tokens = None
    no_message = httpx.post(
        agent.url + "/agents/planner/run", json={}, headers={"X-IncidentFox-Team-Token": "x"}
    )
    assert no_message.status_code == 422


def test_agent_behaviours_with_times(agent: AgentStandIn) -> None:
    agent.set_behaviour("fail_500", times=2)
    assert [run(agent).status_code for _ in range(3)] == [500, 500, 200]
    agent.set_behaviour("success_false", error="model exploded")
    for _ in range(2):
        failed = run(agent)
        assert failed.status_code == 200
        assert failed.json()["success"] is False and failed.json()["error"] == "model exploded"
    assert httpx.post(agent.url + "/_standin/behaviour", json={"mode": "ok"}).status_code == 200
    assert run(agent).json()["success"] is True
    over_http = httpx.post(
        agent.url + "/_standin/behaviour", json={"mode": "success_false", "times": 1}
    )
    assert over_http.status_code == 200
    assert run(agent).json()["success"] is False
    assert run(agent).json()["success"] is True
    bad = httpx.post(agent.url + "/_standin/behaviour", json={"mode": "explode"})
    assert bad.status_code == 400
    with pytest.raises(ValueError):
        agent.set_behaviour("explode")


def test_a_slow_agent_run_does_not_block_other_requests(agent: AgentStandIn) -> None:
    httpx.post(agent.url + "/_standin/behaviour", json={"mode": "slow", "delay": 1.5, "times": 1})
    slow: dict[str, Any] = {}

    def slow_call() -> None:
        started = time.monotonic()
        slow["answer"] = run(agent)
        slow["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=slow_call)
    thread.start()
    deadline = time.monotonic() + 5
    while not agent.runs and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fast = run(agent)  # `times` was used up by the slow run: this one is `ok`
    assert fast.status_code == 200 and time.monotonic() - started < 1.0
    assert thread.is_alive()
    thread.join(timeout=10)
    assert slow["answer"].status_code == 200 and slow["answer"].json()["success"] is True
    assert slow["elapsed"] >= 1.5 and slow["answer"].json()["duration_seconds"] >= 1.5
