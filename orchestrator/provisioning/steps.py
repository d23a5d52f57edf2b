"""The steps of provisioning and deprovisioning (SPEC §5), each with its undo.

Every step is written so that running it again after a crash is safe: what an undo
needs to know (the routing it replaces, the tokens that were active, the schedule row
as it was, the dedicated URL) is saved in the step's `detail` *before* the first side
effect, and a second attempt reuses that saved state instead of reading it again (by
then it would read its own write). A step returns `succeeded` or `skipped`; it raises a
`TransientError` to be retried or anything else to fail the run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator.errors import PeerRejected, PermanentError
from orchestrator.k8s.agents import desired_agent_deployment, desired_agent_service
from orchestrator.k8s.client import CRONJOB, DEPLOYMENT, SERVICE, Kind, KubernetesApi
from orchestrator.k8s.naming import (
    MANAGED_BY,
    MANAGED_BY_KEY,
    dedicated_agent_service,
    dedicated_agent_url,
    team_selector,
)
from orchestrator.peers.ai_pipeline import AiPipelineClient
from orchestrator.peers.config_service import ConfigServiceWorkerCalls
from orchestrator.provisioning import runs
from orchestrator.provisioning.request import (
    ROUTING_KEYS,
    DeprovisionRequest,
    ProvisionRequest,
)
from orchestrator.redaction import redact
from orchestrator.schedules import store as schedules
from orchestrator.schedules.cronjob import CronJobTemplate, desired_cronjob
from orchestrator.schedules.model import ScheduleCreate, ScheduleUpdate
from orchestrator.settings import Settings

PIPELINE_TYPE = "ingestion"


class RoutingConflict(PermanentError):
    reason = "routing_conflict"


class AgentImageMissing(PermanentError):
    reason = "agent_image_missing"


class UnmanagedObject(PermanentError):
    reason = "k8s_conflict"


@dataclass
class ProvisioningDeps:
    """Parameters: `kubernetes` is called on first use (a worker that never provisions
    needs no cluster configuration); `fernet` encrypts a new team token until it is
    delivered; `template` is the deployment's CronJob template (image, namespace)."""

    settings: Settings
    pool: ConnectionPool[Connection[Any]]
    config: ConfigServiceWorkerCalls
    pipeline: AiPipelineClient
    kubernetes: Callable[[], KubernetesApi]
    fernet: Fernet
    template: CronJobTemplate


@dataclass
class StepContext:
    deps: ProvisioningDeps
    conn: Connection[Any]
    run: runs.Run
    step: runs.Step
    save: Callable[[], None]  # persist the steps now (before a side effect)

    @property
    def org(self) -> str:
        return self.run.org_id

    @property
    def team(self) -> str:
        return self.run.team_node_id

    @property
    def detail(self) -> dict[str, Any]:
        return self.step.detail

    def remember(self, key: str, load: Callable[[], Any]) -> Any:
        """`detail[key]`, loaded and saved on the first attempt only."""
        if key not in self.detail:
            self.detail[key] = load()
            self.save()
        return self.detail[key]


StepFn = Callable[[StepContext], str]
UndoFn = Callable[[StepContext], None]


def _provision_request(ctx: StepContext) -> ProvisionRequest:
    return ProvisionRequest.model_validate(ctx.run.request)


def _not_configured(exc: PeerRejected) -> bool:
    return "configuration not found" in str(exc).lower()


def _apply_owned(api: KubernetesApi, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply, unless an object of that name exists without our managed-by
    label: somebody else's object is never taken over."""
    name = manifest["metadata"]["name"]
    current = api.read(kind, name)
    labels = ((current or {}).get("metadata") or {}).get("labels") or {}
    if current is not None and labels.get(MANAGED_BY_KEY) != MANAGED_BY:
        raise UnmanagedObject(
            f"a {kind.name} named {name!r} already exists without the managed-by label;"
            " the orchestrator does not take over objects it does not manage"
        )
    return api.apply(kind, manifest)


# -- provisioning ------------------------------------------------------------------------


def team_node(ctx: StepContext) -> str:
    request = _provision_request(ctx)
    config = ctx.deps.config
    ctx.detail["org_node_created"] = config.ensure_node(
        ctx.org, ctx.org, "org", parent_id=None, name=None
    )
    ctx.detail["team_node_created"] = config.ensure_node(
        ctx.org, ctx.team, "team", parent_id=ctx.org, name=request.name
    )
    # Nodes have no delete in the Config Service: compensation leaves them in place.
    return "succeeded"


def routing(ctx: StepContext) -> str:
    given = _provision_request(ctx).routing.given()
    if not given:
        ctx.detail["note"] = "no routing lists in the request; the team's routing is unchanged"
        return "skipped"
    config = ctx.deps.config
    previous = ctx.remember(
        "previous",
        lambda: {
            k: (config.node_config(ctx.org, ctx.team).get("routing") or {}).get(k) for k in given
        },
    )
    conflicts = []
    for list_key, values in given.items():
        for value in values:
            owner = config.routing_owner(ctx.org, ROUTING_KEYS[list_key], value)
            if owner.found and owner.org_id == ctx.org and owner.team_node_id != ctx.team:
                conflicts.append(f"{list_key} {value!r} belongs to team {owner.team_node_id!r}")
    if conflicts:
        raise RoutingConflict("; ".join(conflicts))
    ctx.detail["writing"] = True  # from here on, an undo has something to restore
    ctx.save()
    config.patch_node_config(ctx.org, ctx.team, {"routing": given})
    ctx.detail["written"] = {k: len(v) for k, v in given.items()}
    ctx.detail["previous_counts"] = {k: len(v or []) for k, v in previous.items()}
    return "succeeded"


def undo_routing(ctx: StepContext) -> None:
    previous = ctx.detail.get("previous")
    if previous is None or not ctx.detail.get("writing"):
        return
    # A list the team did not have comes back empty: the merge cannot delete a key.
    restore = {k: (v if v is not None else []) for k, v in previous.items()}
    ctx.deps.config.patch_node_config(ctx.org, ctx.team, {"routing": restore})


def team_token(ctx: StepContext) -> str:
    request = _provision_request(ctx)
    config = ctx.deps.config
    active = config.active_team_tokens(ctx.org, ctx.team)
    before: list[str] = ctx.remember("active_before", lambda: active)
    issued = ctx.detail.get("issued_token_id")
    # Issued by an attempt that died before recording it: never delivered, so revoked.
    strays = [t for t in active if t not in before and t != issued]
    if strays:
        config.revoke_team_tokens(ctx.org, strays)
        ctx.detail["revoked_strays"] = len(strays)
    if issued and issued in active and ctx.run.token_pending:
        return "succeeded"
    if before and not request.rotate_token:
        ctx.detail["note"] = "an active team token exists; none issued (rotate_token forces one)"
        return "skipped"
    token = config.issue_team_token(ctx.org, ctx.team)
    runs.store_token(
        ctx.conn, ctx.run.provisioning_run_id, ctx.deps.fernet.encrypt(token.encode()).decode()
    )
    ctx.detail["issued_token_id"] = token.partition(".")[0]
    ctx.detail["note"] = "a new team token is delivered once, by the first read of the run"
    return "succeeded"


def undo_team_token(ctx: StepContext) -> None:
    runs.drop_token(ctx.conn, ctx.run.provisioning_run_id)
    issued = ctx.detail.get("issued_token_id")
    if issued:
        ctx.deps.config.revoke_team_tokens(ctx.org, [issued])


def pipeline_schedule(ctx: StepContext) -> str:
    cron = _provision_request(ctx).pipeline_cron()
    if cron is None:
        ctx.detail["note"] = "no pipeline_schedule or create_pipeline_schedule in the request"
        return "skipped"

    def current() -> dict[str, Any] | None:
        row = ctx.conn.execute(
            "SELECT id, cron_expression, timezone, enabled FROM orchestrator_pipeline_schedules"
            " WHERE org_id = %s AND team_node_id = %s AND schedule_type = %s",
            (ctx.org, ctx.team, PIPELINE_TYPE),
        ).fetchone()
        return None if row is None else {k: str(v) if k == "id" else v for k, v in row.items()}

    previous = ctx.remember("previous", current)
    existing = current()
    if existing is None:
        schedule = schedules.create(
            ctx.conn,
            ctx.org,
            ctx.team,
            ScheduleCreate(schedule_type=PIPELINE_TYPE, cron_expression=cron),
        )
    else:
        changed = schedules.update(
            ctx.conn,
            ctx.org,
            ctx.team,
            uuid.UUID(existing["id"]),
            ScheduleUpdate(cron_expression=cron, enabled=True),
        )
        assert changed is not None
        schedule = changed
    ctx.detail["schedule_id"] = str(schedule.schedule_id)
    ctx.detail["created_row"] = previous is None
    manifest = desired_cronjob(schedule, ctx.deps.template, schedule_id=str(schedule.schedule_id))
    answer = _apply_owned(ctx.deps.kubernetes(), CRONJOB, manifest)
    generation = (answer.get("metadata") or {}).get("generation")
    # Recorded as the reconciler would: it sees this CronJob as converged, not drifted.
    ctx.conn.execute(
        "UPDATE orchestrator_pipeline_schedules SET k8s_generation = %s,"
        " sync_status = 'synced', sync_error = NULL, last_synced_at = now() WHERE id = %s",
        (generation, schedule.schedule_id),
    )
    ctx.detail["cronjob"] = manifest["metadata"]["name"]
    return "succeeded"


def undo_pipeline_schedule(ctx: StepContext) -> None:
    if "previous" not in ctx.detail:
        return
    previous = ctx.detail["previous"]
    if previous is None:
        ctx.conn.execute(
            "DELETE FROM orchestrator_pipeline_schedules"
            " WHERE org_id = %s AND team_node_id = %s AND schedule_type = %s",
            (ctx.org, ctx.team, PIPELINE_TYPE),
        )
        if ctx.detail.get("cronjob"):
            ctx.deps.kubernetes().delete(CRONJOB, ctx.detail["cronjob"])
        return
    # The row as it was; the reconciler (woken by the change) puts its CronJob back.
    ctx.conn.execute(
        "UPDATE orchestrator_pipeline_schedules SET cron_expression = %s, timezone = %s,"
        " enabled = %s, sync_status = 'pending', updated_at = now() WHERE id = %s",
        (previous["cron_expression"], previous["timezone"], previous["enabled"], previous["id"]),
    )


def _dedicated_url(ctx: StepContext) -> str | None:
    try:
        config = ctx.deps.config.node_config(ctx.org, ctx.team)
    except PeerRejected as exc:
        if _not_configured(exc):
            return None
        raise
    value = (config.get("agent") or {}).get("dedicated_service_url")
    return str(value) if value else None


def dedicated_agent(ctx: StepContext) -> str:
    dedicated = _provision_request(ctx).dedicated()
    if dedicated is None:
        ctx.detail["note"] = (
            "deployment_mode is shared: no dedicated agent written (an existing one is"
            " left as it is; deprovision removes it)"
        )
        return "skipped"
    settings = ctx.deps.settings
    if not settings.agent_image:
        raise AgentImageMissing("dedicated mode needs AGENT_IMAGE, which is not set")
    ctx.remember("previous_url", lambda: _dedicated_url(ctx))
    api = ctx.deps.kubernetes()
    namespace = settings.k8s_namespace
    deployment = desired_agent_deployment(
        ctx.org,
        ctx.team,
        namespace=namespace,
        image=settings.agent_image,
        replicas=dedicated.replicas,
        cpu=dedicated.cpu,
        memory=dedicated.memory,
        config_service_url=settings.config_service_url or "",
    )
    ctx.detail["deployment"] = deployment["metadata"]["name"]
    ctx.save()
    _apply_owned(api, DEPLOYMENT, deployment)
    _apply_owned(api, SERVICE, desired_agent_service(ctx.org, ctx.team, namespace=namespace))
    url = dedicated_agent_url(ctx.org, ctx.team, namespace)
    ctx.deps.config.patch_node_config(ctx.org, ctx.team, {"agent": {"dedicated_service_url": url}})
    ctx.detail["url"] = url
    return "succeeded"


def undo_dedicated_agent(ctx: StepContext) -> None:
    if "deployment" not in ctx.detail:
        return
    api = ctx.deps.kubernetes()
    name = dedicated_agent_service(ctx.org, ctx.team)
    api.delete(DEPLOYMENT, name)
    api.delete(SERVICE, name)
    if "url" in ctx.detail:
        ctx.deps.config.patch_node_config(
            ctx.org, ctx.team, {"agent": {"dedicated_service_url": ctx.detail.get("previous_url")}}
        )


def bootstrap(ctx: StepContext) -> str:
    answer = ctx.deps.pipeline.bootstrap(ctx.team)
    ctx.detail["answer"] = redact({k: answer[k] for k in list(answer)[:10]})
    return "succeeded"


def record(ctx: StepContext) -> str:
    """The last step: what cannot be undone happens only once everything else held —
    revoking the tokens a rotation replaces."""
    request = _provision_request(ctx)
    token_step = ctx.run.step("team_token").detail
    if request.rotate_token and token_step.get("issued_token_id"):
        replaced = list(token_step.get("active_before") or [])
        ctx.deps.config.revoke_team_tokens(ctx.org, replaced)
        ctx.detail["revoked_replaced_tokens"] = len(replaced)
    return "succeeded"  # the engine writes the run's audit row as it ends


# -- deprovisioning ----------------------------------------------------------------------


def revoke_all_tokens(ctx: StepContext) -> str:
    """Every token nobody revoked goes, expired ones too: revoking an expired token
    costs nothing, and it spares the org-wide list that alone knows expiry."""
    try:
        unrevoked = ctx.deps.config.unrevoked_team_tokens(ctx.org, ctx.team)
    except PeerRejected as exc:
        if "answered 404" not in str(exc):
            raise
        # An org the Config Service does not know has no tokens; the steps after this
        # one (schedules, objects) must still run, or a typo'd team could never be
        # cleaned up.
        ctx.detail["note"] = "the Config Service knows no such org: no tokens to revoke"
        return "skipped"
    ctx.deps.config.revoke_team_tokens(ctx.org, unrevoked)
    ctx.detail["revoked"] = len(unrevoked)
    return "succeeded" if unrevoked else "skipped"


def clear_routing(ctx: StepContext) -> str:
    try:
        ctx.deps.config.patch_node_config(
            ctx.org, ctx.team, {"routing": {k: [] for k in ROUTING_KEYS}}
        )
    except PeerRejected as exc:
        if _not_configured(exc):
            ctx.detail["note"] = "the team has no node in the Config Service"
            return "skipped"
        raise
    ctx.detail["cleared"] = sorted(ROUTING_KEYS)
    return "succeeded"


def delete_schedules(ctx: StepContext) -> str:
    rows = ctx.conn.execute(
        "DELETE FROM orchestrator_pipeline_schedules WHERE org_id = %s AND team_node_id = %s"
        " RETURNING schedule_type",
        (ctx.org, ctx.team),
    ).fetchall()
    api = ctx.deps.kubernetes()
    # By label, not only by row: a CronJob whose row is already gone goes too.
    names = [o["metadata"]["name"] for o in api.list_all(CRONJOB, team_selector(ctx.org, ctx.team))]
    for name in names:
        api.delete(CRONJOB, name)
    ctx.detail["rows_deleted"] = len(rows)
    ctx.detail["cronjobs_deleted"] = names
    return "succeeded" if rows or names else "skipped"


def delete_dedicated_agent(ctx: StepContext) -> str:
    api = ctx.deps.kubernetes()
    name = dedicated_agent_service(ctx.org, ctx.team)
    deleted = [kind.name for kind in (DEPLOYMENT, SERVICE) if api.delete(kind, name)]
    url = _dedicated_url(ctx)
    if url:
        ctx.deps.config.patch_node_config(
            ctx.org, ctx.team, {"agent": {"dedicated_service_url": None}}
        )
    ctx.detail["deleted"] = deleted
    ctx.detail["url_cleared"] = bool(url)
    return "succeeded" if deleted or url else "skipped"


def record_deprovision(ctx: StepContext) -> str:
    DeprovisionRequest.model_validate(ctx.run.request)
    return "succeeded"  # the engine writes the run's audit row as it ends


@dataclass(frozen=True)
class StepSpec:
    run: StepFn
    undo: UndoFn | None = None


PLAYBOOKS: dict[str, dict[str, StepSpec]] = {
    "provision": {
        "team_node": StepSpec(team_node),
        "routing": StepSpec(routing, undo_routing),
        "team_token": StepSpec(team_token, undo_team_token),
        "pipeline_schedule": StepSpec(pipeline_schedule, undo_pipeline_schedule),
        "dedicated_agent": StepSpec(dedicated_agent, undo_dedicated_agent),
        "bootstrap": StepSpec(bootstrap),
        "record": StepSpec(record),
    },
    "deprovision": {
        "team_tokens": StepSpec(revoke_all_tokens),
        "routing": StepSpec(clear_routing),
        "schedules": StepSpec(delete_schedules),
        "dedicated_agent": StepSpec(delete_dedicated_agent),
        "record": StepSpec(record_deprovision),
    },
}
