"""Provisioning and deprovisioning runs end to end (SPEC §5): the seven steps against the
Config Service, Kubernetes API and AI Pipeline stand-ins over HTTP, with a real worker.
Every run either finishes or undoes what it did — and the peers' state shows which."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import kubernetes_validate
import pytest

from orchestrator.k8s.client import KubernetesApi
from orchestrator.k8s.naming import cronjob_name, dedicated_agent_service
from orchestrator.schedules.cronjob import template_from_settings
from orchestrator.schedules.reconcile import Reconciler
from tests.conftest import K8S_NAMESPACE
from tests.provisioning_support import INTERNAL_ADMIN, RUNS_PATH, Prov
from tests.provisioning_support import prov as prov

NS = K8S_NAMESPACE
FULL = {
    "org_id": "acme",
    "team_node_id": "payments",
    "name": "Payments",
    "routing": {"github_repos": ["acme/payments"], "services": ["checkout"]},
    "slack_channel_ids": ["C0PAY"],
    "create_pipeline_schedule": True,
    "deployment_mode": "dedicated",
    "dedicated_config": {"replicas": 2, "cpu": "250m", "memory": "512Mi"},
}


@pytest.fixture
def p(prov: Prov) -> Prov:
    return prov


def routing_of(p: Prov, org: str, team: str) -> dict[str, Any]:
    return (p.config.config_of(org, team) or {}).get("routing") or {}


def test_provisioning_runs_every_step_and_delivers_the_token_once(p: Prov, db: Any) -> None:
    answer = p.provision({**FULL, "idempotency_key": "k-1"})
    assert answer.status_code == 202, answer.text
    run_id = answer.json["provisioning_run_id"]
    assert answer.headers["Location"] == f"{RUNS_PATH}/{run_id}"
    assert answer.json["status"] == "queued"

    run = p.wait(run_id)
    assert run["status"] == "succeeded", run
    assert [s["name"] for s in run["steps"]] == [
        "team_node", "routing", "team_token", "pipeline_schedule", "dedicated_agent",
        "bootstrap", "record",
    ]  # fmt: skip
    assert all(s["status"] == "succeeded" for s in run["steps"]), run["steps"]
    assert all(s["started_at"] and s["finished_at"] for s in run["steps"])

    # The Config Service: nodes, routing (the alias included), one token.
    assert ("acme", "acme") in p.config.nodes and ("acme", "payments") in p.config.nodes
    assert routing_of(p, "acme", "payments") == {
        "github_repos": ["acme/payments"],
        "services": ["checkout"],
        "slack_channel_ids": ["C0PAY"],
    }
    tokens = p.team_tokens("acme", "payments")
    assert len(tokens) == 1

    # The token: exactly once, to a principal with admin:provision.
    first = p.read(run_id)
    assert first.status_code == 200
    assert first.json["team_token"] == tokens[0]["token"]
    assert first.headers.get("Cache-Control") == "no-store"
    assert "team_token" not in p.read(run_id).json
    listed = p.client.simulate_get(RUNS_PATH, headers=p.headers()).json["items"]
    assert "team_token" not in listed[0]
    stored = db.execute(
        "SELECT team_token_encrypted, team_token_delivered_at FROM orchestrator_provisioning_runs"
        " WHERE id = %s",
        (run_id,),
    ).fetchone()
    assert stored["team_token_encrypted"] is None and stored["team_token_delivered_at"]
    assert tokens[0]["token"] not in str(
        db.execute("SELECT * FROM orchestrator_audit_log").fetchall()
    )

    # Kubernetes: the CronJob, the dedicated Deployment and Service, valid manifests.
    cron = p.kube.get_object("CronJob", NS, cronjob_name("acme", "payments", "ingestion"))
    assert cron is not None and cron["spec"]["schedule"] == "0 2 * * *"
    name = dedicated_agent_service("acme", "payments")
    deployment = p.kube.get_object("Deployment", NS, name)
    service = p.kube.get_object("Service", NS, name)
    assert deployment is not None and service is not None
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "agent:test"
    for obj in (cron, deployment, service):
        kubernetes_validate.validate(obj, "1.31", strict=True)
    agent = (p.config.config_of("acme", "payments") or {})["agent"]
    assert agent["dedicated_service_url"] == (f"http://{name}.{NS}.svc.cluster.local:8080")
    row = db.execute(
        "SELECT sync_status, k8s_generation FROM orchestrator_pipeline_schedules"
        " WHERE org_id = 'acme' AND team_node_id = 'payments'"
    ).fetchone()
    assert row["sync_status"] == "synced" and row["k8s_generation"]

    # The AI Pipeline was bootstrapped with the internal admin token.
    calls = [c for c in p.pipeline.calls if c.path.endswith("/bootstrap")]
    assert len(calls) == 1 and calls[0].headers["authorization"] == f"Bearer {INTERNAL_ADMIN}"

    # The reconciler sees the provisioned CronJob as converged: no write at all.
    api = KubernetesApi.from_kubeconfig(p.settings.kubeconfig, NS)
    try:
        before = sum(p.kube.writes.values())
        with db.transaction():
            report = Reconciler(api, template_from_settings(p.settings))(db)
        assert report.unchanged == 1 and sum(p.kube.writes.values()) == before
    finally:
        api.close()

    actions = [
        r["action"]
        for r in db.execute(
            "SELECT action FROM orchestrator_audit_log WHERE subject = %s ORDER BY id", (run_id,)
        ).fetchall()
    ]
    assert actions[0] == "provision.requested" and actions[-1] == "provision.succeeded"
    assert actions.count("provision.step") == 7


def test_idempotency_key(p: Prov) -> None:
    body = {"org_id": "acme", "team_node_id": "search", "idempotency_key": "same"}
    first = p.provision(body)
    again = p.provision(body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["provisioning_run_id"] == first.json["provisioning_run_id"]
    other = p.provision({**body, "rotate_token": True})
    assert other.status_code == 409
    assert "different request" in other.json["description"]
    p.wait(first.json["provisioning_run_id"])
    assert len(p.team_tokens("acme", "search")) == 1


def test_an_existing_token_is_kept_unless_rotated(p: Prov) -> None:
    first = p.wait(
        p.provision({"org_id": "acme", "team_node_id": "ops"}).json["provisioning_run_id"]
    )
    assert p.steps(first)["team_token"]["status"] == "succeeded"
    again = p.wait(
        p.provision({"org_id": "acme", "team_node_id": "ops"}).json["provisioning_run_id"]
    )
    assert p.steps(again)["team_token"]["status"] == "skipped"
    assert "team_token" not in p.read(again["provisioning_run_id"]).json
    rotated_id = p.provision({"org_id": "acme", "team_node_id": "ops", "rotate_token": True}).json[
        "provisioning_run_id"
    ]
    rotated = p.wait(rotated_id)
    assert rotated["status"] == "succeeded"
    tokens = p.team_tokens("acme", "ops")
    assert len(tokens) == 2
    active = [t for t in tokens if t["revoked_at"] is None]
    assert len(active) == 1  # the replaced token was revoked once everything else held
    assert p.read(rotated_id).json["team_token"] == active[0]["token"]


def test_a_transient_failure_is_retried_and_the_run_succeeds(p: Prov) -> None:
    p.config.set_faults(status=503, times=1, path=r"/teams/[^/]+/tokens$")
    run = p.wait(
        p.provision({"org_id": "acme", "team_node_id": "retry"}).json["provisioning_run_id"]
    )
    assert run["status"] == "succeeded"
    token_step = p.steps(run)["team_token"]
    assert token_step["attempts"] == 2 and token_step["status"] == "succeeded"
    assert len(p.team_tokens("acme", "retry")) == 1


def test_a_routing_conflict_fails_and_changes_nothing(p: Prov) -> None:
    p.config.seed_team("acme", "owner", routing={"slack_channel_ids": ["C0TAKEN"]})
    p.config.seed_team("acme", "newcomer", routing={"services": ["keep-me"]})
    run = p.wait(
        p.provision(
            {"org_id": "acme", "team_node_id": "newcomer",
             "routing": {"slack_channel_ids": ["C0TAKEN", "C0FREE"], "services": ["new"]}}
        ).json["provisioning_run_id"]
    )  # fmt: skip
    assert run["status"] == "failed"
    assert run["error"].startswith("routing_conflict")
    assert "'owner'" in run["error"]
    steps = p.steps(run)
    assert steps["routing"]["status"] == "failed"
    assert steps["team_token"]["status"] == "pending"
    assert routing_of(p, "acme", "newcomer") == {"services": ["keep-me"]}
    assert p.team_tokens("acme", "newcomer") == []


def test_a_permanent_failure_undoes_what_the_run_did_newest_first(p: Prov, db: Any) -> None:
    p.config.seed_team("acme", "undo", routing={"services": ["before"]})
    p.kube.fail_object(dedicated_agent_service("acme", "undo"), 403)
    run = p.wait(
        p.provision(
            {"org_id": "acme", "team_node_id": "undo", "routing": {"services": ["after"]},
             "create_pipeline_schedule": True, "deployment_mode": "dedicated"}
        ).json["provisioning_run_id"]
    )  # fmt: skip
    assert run["status"] == "failed"
    assert run["error"].startswith("k8s_forbidden"), run["error"]
    assert "get/list/create/patch/delete" in run["error"]
    steps = p.steps(run)
    assert steps["dedicated_agent"]["status"] == "failed"
    for name in ("routing", "team_token", "pipeline_schedule"):
        assert steps[name]["status"] == "compensated", (name, steps[name])
    assert steps["team_node"]["status"] == "succeeded"  # nodes cannot be deleted
    assert steps["bootstrap"]["status"] == "pending"
    # The peers show the undo.
    assert routing_of(p, "acme", "undo") == {"services": ["before"]}
    assert all(t["revoked_at"] is not None for t in p.team_tokens("acme", "undo"))
    assert p.kube.get_object("CronJob", NS, cronjob_name("acme", "undo", "ingestion")) is None
    assert (
        db.execute(
            "SELECT count(*) AS n FROM orchestrator_pipeline_schedules WHERE team_node_id = 'undo'"
        ).fetchone()["n"]
        == 0
    )
    assert p.pipeline.calls == []
    assert "team_token" not in p.read(run["provisioning_run_id"]).json  # revoked: never shown


def test_retries_exhausted_count_as_permanent(p: Prov) -> None:
    p.pipeline.set_faults(status=503)
    run = p.wait(
        p.provision(
            {"org_id": "acme", "team_node_id": "flaky", "create_pipeline_schedule": True}
        ).json["provisioning_run_id"]
    )
    assert run["status"] == "failed"
    assert run["error"].startswith("peer_unavailable")
    steps = p.steps(run)
    assert steps["bootstrap"]["status"] == "failed" and steps["bootstrap"]["attempts"] == 3
    assert steps["pipeline_schedule"]["status"] == "compensated"
    assert p.kube.get_object("CronJob", NS, cronjob_name("acme", "flaky", "ingestion")) is None


def test_dedicated_mode_without_agent_image_fails_with_that_reason(
    p: Prov, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.provisioning import steps as steps_module

    original = steps_module.dedicated_agent

    def without_image(ctx: Any) -> str:
        ctx.deps.settings = ctx.deps.settings.model_copy(update={"agent_image": None})
        return original(ctx)

    # The worker's settings are built once; the only way to run a worker without
    # AGENT_IMAGE in-process is to hand this step settings without it.
    monkeypatch.setitem(
        steps_module.PLAYBOOKS["provision"],
        "dedicated_agent",
        steps_module.StepSpec(without_image, steps_module.undo_dedicated_agent),
    )
    run = p.wait(
        p.provision(
            {"org_id": "acme", "team_node_id": "noimage", "deployment_mode": "dedicated"}
        ).json["provisioning_run_id"]
    )
    assert run["status"] == "failed" and run["error"].startswith("agent_image_missing")
    assert p.steps(run)["team_token"]["status"] == "compensated"


def test_ten_concurrent_requests_for_one_team_are_serialized(p: Prov, db: Any) -> None:
    answers: list[Any] = []

    def send(i: int) -> None:
        answers.append(
            p.provision(
                {"org_id": "acme", "team_node_id": "busy", "idempotency_key": f"key-{i}",
                 "routing": {"services": [f"svc-{i}"]}, "rotate_token": True}
            )
        )  # fmt: skip

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [202] * 10
    runs = [p.wait(a.json["provisioning_run_id"], timeout=60) for a in answers]
    assert all(r["status"] == "succeeded" for r in runs), [r["error"] for r in runs]
    spans = sorted(
        db.execute(
            "SELECT started_at, finished_at FROM orchestrator_provisioning_runs"
            " WHERE team_node_id = 'busy'"
        ).fetchall(),
        key=lambda r: r["started_at"],
    )
    for earlier, later in itertools.pairwise(spans):
        assert earlier["finished_at"] <= later["started_at"], "two runs of one team overlapped"
    assert len([t for t in p.team_tokens("acme", "busy") if t["revoked_at"] is None]) == 1


def _org_token_list_reads(p: Prov) -> int:
    return sum(1 for c in p.config.calls if c.method == "GET" and c.path.endswith("/acme/tokens"))


def test_a_team_without_live_tokens_never_reads_the_orgs_token_history(p: Prov) -> None:
    """The org's token list holds every token the org ever had and grows for as long as
    it lives; reading it on every run made each run slower and the worker bigger. Runs
    read the team's own list, and the org's only to learn whether a live token expired."""
    before = _org_token_list_reads(p)
    for _ in range(3):
        provisioned = p.wait(
            p.provision({"org_id": "acme", "team_node_id": "cycle"}).json["provisioning_run_id"]
        )
        assert p.steps(provisioned)["team_token"]["status"] == "succeeded"  # a new token
        gone = p.wait(
            p.deprovision({"org_id": "acme", "team_node_id": "cycle"}).json["provisioning_run_id"]
        )
        assert p.steps(gone)["team_tokens"]["detail"]["revoked"] == 1
    assert _org_token_list_reads(p) == before
    tokens = p.team_tokens("acme", "cycle")
    assert len(tokens) == 3 and all(t["revoked_at"] is not None for t in tokens)


def test_an_expired_token_is_not_an_active_one(p: Prov) -> None:
    """Only the org's list marks expiry: a team holding an unrevoked but expired token
    gets a new one without asking for a rotation, and deprovisioning revokes both."""
    p.config.seed_team("acme", "stale")
    old = p.config.add_team_token("acme", "stale").partition(".")[0]
    p.config.expire_token(old)
    before = _org_token_list_reads(p)
    run = p.wait(
        p.provision({"org_id": "acme", "team_node_id": "stale"}).json["provisioning_run_id"]
    )
    assert p.steps(run)["team_token"]["status"] == "succeeded"
    assert _org_token_list_reads(p) == before + 1
    new = [t for t in p.team_tokens("acme", "stale") if t["token_id"] != old]
    assert (
        len(new) == 1 and p.read(run["provisioning_run_id"]).json["team_token"] == new[0]["token"]
    )
    gone = p.wait(
        p.deprovision({"org_id": "acme", "team_node_id": "stale"}).json["provisioning_run_id"]
    )
    assert p.steps(gone)["team_tokens"]["detail"]["revoked"] == 2
    assert all(t["revoked_at"] is not None for t in p.team_tokens("acme", "stale"))
    assert _org_token_list_reads(p) == before + 1


def test_deprovisioning_removes_everything_the_team_had(p: Prov, db: Any) -> None:
    done = p.wait(p.provision({**FULL, "team_node_id": "gone"}).json["provisioning_run_id"])
    assert done["status"] == "succeeded"
    p.config.add_team_token("acme", "gone")  # a second active token, issued elsewhere
    answer = p.deprovision({"org_id": "acme", "team_node_id": "gone"})
    assert answer.status_code == 202 and answer.json["kind"] == "deprovision"
    run = p.wait(answer.json["provisioning_run_id"])
    assert run["status"] == "succeeded", run
    assert all(t["revoked_at"] is not None for t in p.team_tokens("acme", "gone"))
    assert all(v == [] for v in routing_of(p, "acme", "gone").values())
    assert p.kube.objects("CronJob", NS) == []
    assert p.kube.objects("Deployment", NS) == [] and p.kube.objects("Service", NS) == []
    assert (p.config.config_of("acme", "gone") or {})["agent"]["dedicated_service_url"] is None
    assert (
        db.execute(
            "SELECT count(*) AS n FROM orchestrator_pipeline_schedules WHERE team_node_id = 'gone'"
        ).fetchone()["n"]
        == 0
    )
    assert ("acme", "gone") in p.config.nodes  # the Config Service cannot delete nodes


def test_ids_at_the_length_limit_and_sharing_a_long_prefix(p: Prov) -> None:
    org = "o" * 64
    teams = ["T" * 63 + "a", "T" * 63 + "b"]
    runs = [
        p.wait(
            p.provision(
                {"org_id": org, "team_node_id": team, "create_pipeline_schedule": True,
                 "deployment_mode": "dedicated"}
            ).json["provisioning_run_id"]
        )
        for team in teams
    ]  # fmt: skip
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"], [r["error"] for r in runs]
    for kind in ("CronJob", "Deployment", "Service"):
        objects = p.kube.objects(kind, NS)
        assert len(objects) == 2, kind
        assert len({o["metadata"]["name"] for o in objects}) == 2
        assert {
            o["metadata"]["annotations"]["incidentfox.io/team-node-id"] for o in objects
        } == set(teams)


def test_org_admins_act_only_in_their_org(p: Prov) -> None:
    own = p.config.add_org_admin("acme")
    other = p.config.add_org_admin("globex")
    created = p.provision({"org_id": "acme", "team_node_id": "scoped"}, token=own)
    assert created.status_code == 202
    run_id = created.json["provisioning_run_id"]
    assert p.provision({"org_id": "acme", "team_node_id": "x"}, token=other).status_code == 403
    assert p.deprovision({"org_id": "acme", "team_node_id": "x"}, token=other).status_code == 403
    assert p.read(run_id, other).status_code == 404
    listed = p.client.simulate_get(RUNS_PATH, headers=p.headers(other)).json["items"]
    assert listed == []
    assert (
        p.client.simulate_get(RUNS_PATH, params={"org_id": "acme"}, headers=p.headers(other))
    ).status_code == 403
    p.wait(run_id)


def test_bad_requests_are_4xx_naming_the_problem(p: Prov) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"org_id": "acme"}, 422, "team_node_id"),
        ({"org_id": "a" * 65, "team_node_id": "t"}, 422, "org_id"),
        ({"org_id": "acme", "team_node_id": "bad id"}, 422, "team_node_id"),
        ({"org_id": "acme", "team_node_id": "t", "pipeline_schedule": "61 * * * *"}, 422,
         "pipeline_schedule"),
        ({"org_id": "acme", "team_node_id": "t", "deployment_mode": "solo"}, 422,
         "deployment_mode"),
        ({"org_id": "acme", "team_node_id": "t", "dedicated_config": {"replicas": 2}}, 422,
         "dedicated"),
        ({"org_id": "acme", "team_node_id": "t",
          "deployment_mode": "dedicated", "dedicated_config": {"cpu": "lots"}}, 422, "cpu"),
        ({"org_id": "acme", "team_node_id": "t", "routing": {"jira": ["x"]}}, 422, "jira"),
        ({"org_id": "acme", "team_node_id": "t", "idempotency_key": "k" * 129}, 422,
         "idempotency_key"),
    ]  # fmt: skip
    for body, status, named in cases:
        answer = p.provision(body)
        assert answer.status_code == status, (body, answer.text)
        assert named in answer.text, (body, answer.text)
    headers = {**p.headers(), "Content-Type": "application/json"}
    path = "/api/v1/admin/provision/team"
    assert p.client.simulate_post(path, body="{", headers=headers).status_code == 400
    huge = '{"org_id": "acme", "team_node_id": "t", "name": "' + "x" * 70_000 + '"}'
    assert p.client.simulate_post(path, body=huge, headers=headers).status_code == 413
    assert (
        p.client.simulate_post(path, json={"org_id": "acme", "team_node_id": "t"}).status_code
        == 401
    )
    forged = p.provision({"org_id": "acme", "team_node_id": "t"}, token="forged")
    assert forged.status_code == 401
    for bad in ("not-a-uuid", "0" * 500):
        assert p.read(bad).status_code == 404
    assert (
        p.client.simulate_get(RUNS_PATH, params={"cursor": "junk"}, headers=p.headers()).status_code
        == 422
    )


# Each step's peer call, made to fail: (step, how to break it, request extras).
BREAKS: dict[str, tuple[Any, dict[str, Any]]] = {
    "team_node": (lambda p, s: p.config.set_faults(status=s, path=r"/nodes$"), {}),
    "routing": (
        lambda p, s: p.config.set_faults(status=s, path=r"/config$"),
        {"routing": {"services": ["x"]}},
    ),
    "team_token": (lambda p, s: p.config.set_faults(status=s, path=r"/teams/[^/]+/tokens$"), {}),
    "pipeline_schedule": (
        lambda p, s: p.kube.fail_object(cronjob_name("acme", "brk", "ingestion"), s),
        {"create_pipeline_schedule": True},
    ),
    "dedicated_agent": (
        lambda p, s: p.kube.fail_object(dedicated_agent_service("acme", "brk"), s),
        {"deployment_mode": "dedicated"},
    ),
    "bootstrap": (lambda p, s: p.pipeline.set_faults(status=s), {}),
    "record": (
        lambda p, s: p.config.set_faults(status=s, path=r"/bulk-revoke$"),
        {"rotate_token": True},
    ),
}
FULL_RUN = {
    "org_id": "acme",
    "team_node_id": "brk",
    "routing": {"services": ["x"]},
    "create_pipeline_schedule": True,
    "deployment_mode": "dedicated",
}


def _run_with_break(p: Prov, step: str, status: int, times: int | None) -> dict[str, Any]:
    if step == "record":
        p.config.seed_team("acme", "brk")
        p.config.add_team_token("acme", "brk")  # rotation has a token to replace
    breaker, _extras = BREAKS[step]
    if times is None:
        breaker(p, status)
    elif step in ("pipeline_schedule", "dedicated_agent"):
        name = (
            cronjob_name("acme", "brk", "ingestion")
            if step == "pipeline_schedule"
            else dedicated_agent_service("acme", "brk")
        )
        p.kube.fail_object(name, status, times=times)
    else:
        target = p.pipeline if step == "bootstrap" else p.config
        path = {
            "team_node": r"/nodes$",
            "routing": r"/config$",
            "team_token": r"/teams/[^/]+/tokens$",
            "bootstrap": r"/bootstrap$",
            "record": r"/bulk-revoke$",
        }[step]
        target.set_faults(status=status, times=times, path=path)
    body = {**FULL_RUN, "rotate_token": step == "record"}
    return p.wait(p.provision(body).json["provisioning_run_id"])


@pytest.mark.parametrize("step", list(BREAKS))
def test_every_step_retries_a_transient_failure_and_succeeds(p: Prov, step: str) -> None:
    run = _run_with_break(p, step, 503, times=1)
    assert run["status"] == "succeeded", (step, run["error"], run["steps"])
    assert p.steps(run)[step]["attempts"] == 2


@pytest.mark.parametrize("step", list(BREAKS))
def test_every_step_failing_for_good_undoes_the_steps_before_it(
    p: Prov, step: str, db: Any
) -> None:
    run = _run_with_break(p, step, 422, times=None)
    assert run["status"] == "failed", (step, run["steps"])
    steps = p.steps(run)
    assert steps[step]["status"] == "failed" and steps[step]["attempts"] == 1  # not retried
    names = list(steps)
    refused_revocation = step == "record"  # the broken call is also the token's undo
    for earlier in names[: names.index(step)]:
        # Nodes cannot be deleted, a bootstrap cannot be taken back: both stay.
        expected = "succeeded" if earlier in ("team_node", "bootstrap") else "compensated"
        if refused_revocation and earlier == "team_token":
            # An undo the peer refuses is not hidden: the step says so, and so does the run.
            assert "compensation failed" in steps[earlier]["error"]
            assert "compensation incomplete: team_token" in run["error"]
            continue
        assert steps[earlier]["status"] == expected, (step, earlier, steps[earlier])
    for later in names[names.index(step) + 1 :]:
        assert steps[later]["status"] == "pending"
    # Whatever the failing point, the peers are back where they were.
    p.config.clear_faults()
    p.pipeline.clear_faults()
    issued = [t for t in p.team_tokens("acme", "brk") if t["issued_by"] != "standin"]
    assert refused_revocation or all(t["revoked_at"] is not None for t in issued)
    assert p.kube.objects("CronJob", NS) == [] and p.kube.objects("Deployment", NS) == []
    assert p.kube.objects("Service", NS) == []
    routing = routing_of(p, "acme", "brk")
    assert routing.get("services", []) == []
    assert (
        db.execute(
            "SELECT count(*) AS n FROM orchestrator_pipeline_schedules WHERE team_node_id = 'brk'"
        ).fetchone()["n"]
        == 0
    )


def test_deprovisioning_a_team_the_config_service_never_knew_still_cleans_up(
    p: Prov, db: Any
) -> None:
    """A schedule made for a typo'd org must be removable: no tokens to revoke is not a
    reason to stop before the schedules."""
    created = p.client.simulate_post(
        "/api/v1/admin/orgs/nosuchorg/teams/ghost/schedules",
        json={"schedule_type": "eval", "cron_expression": "0 1 * * *"},
        headers=p.headers(),
    )
    assert created.status_code == 201
    run = p.wait(
        p.deprovision({"org_id": "nosuchorg", "team_node_id": "ghost"}).json["provisioning_run_id"]
    )
    assert run["status"] == "succeeded", run
    steps = p.steps(run)
    assert steps["team_tokens"]["status"] == "skipped"
    assert steps["schedules"]["status"] == "succeeded"
    assert (
        db.execute(
            "SELECT count(*) AS n FROM orchestrator_pipeline_schedules WHERE org_id = 'nosuchorg'"
        ).fetchone()["n"]
        == 0
    )
