"""One call of the Agent Service for one agent run row (SPEC §4.4), shared by every
road that starts a run: the webhook pipeline and admin runs.

For a run it: takes a session advisory lock on the run (a duplicate message — relay,
redelivery — arriving while another worker holds the run backs off instead of calling
the agent a second time), leaves a finished run alone, counts the attempt (`running`),
gets the team's impersonation token and effective config from the Config Service
(cached per process), lets the caller decide the agent and the output destinations,
calls `POST {agent}/agents/{name}/run` with the run id as `X-Correlation-ID`, and
records the answer. Failures are raised for the caller's retry policy; `on_error` sees
them first, still under the lock, so a caller can record a final failure before any
duplicate could look at the run.

If the worker dies, its connection closes, the lock goes with it, and a redelivery
takes over with the same correlation id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import Connection
from psycopg_pool import ConnectionPool

from orchestrator import agent_runs
from orchestrator.agent_runs import AgentRun
from orchestrator.errors import PermanentError
from orchestrator.k8s.naming import dedicated_agent_url
from orchestrator.peers.agent import AgentClient
from orchestrator.peers.config_service import ConfigServiceWorkerCalls
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator.agents")


@dataclass
class AgentDispatchDeps:
    """What calling an agent needs: settings (agent URL, namespace), the Postgres pool,
    the Config Service worker calls and the Agent client."""

    settings: Settings
    pool: ConnectionPool[Connection[Any]]
    config: ConfigServiceWorkerCalls
    agent: AgentClient


@dataclass(frozen=True)
class AgentPlan:
    """The caller's choices once the team's effective config is known."""

    agent_name: str
    output_destinations: list[dict[str, Any]]


@dataclass(frozen=True)
class Dispatch:
    """What became of the run: `succeeded` (this call), `finished` (it already had
    ended, `status` says how) or `busy` (another worker holds it)."""

    kind: Literal["succeeded", "finished", "busy"]
    status: str


Plan = Callable[[AgentRun, dict[str, Any]], AgentPlan]
OnStart = Callable[[Connection[Any], AgentRun, AgentPlan], None]
# (connection, run as loaded, number of this attempt, the failure)
OnError = Callable[[Connection[Any], AgentRun, int, Exception], None]


def call_agent(
    deps: AgentDispatchDeps,
    run_id: uuid.UUID,
    *,
    plan: Plan,
    on_start: OnStart | None = None,
    on_error: OnError | None = None,
) -> Dispatch:
    """Run the agent for `run_id` at most once at a time across all workers.

    `plan(run, effective_config)` names the agent and the output destinations;
    `on_start(conn, run, plan)` runs in the transaction that records them (the webhook
    pipeline marks its event `dispatched` there); `on_error` is called with any failure
    before it is raised."""
    key = f"agent-run:{run_id}"
    with deps.pool.connection() as conn:
        locked = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked", (key,)
        ).fetchone()
        if not locked or not locked["locked"]:
            return Dispatch("busy", "running")
        try:
            return _call_locked(deps, conn, run_id, plan, on_start, on_error)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def _call_locked(
    deps: AgentDispatchDeps,
    conn: Connection[Any],
    run_id: uuid.UUID,
    plan: Plan,
    on_start: OnStart | None,
    on_error: OnError | None,
) -> Dispatch:
    run = agent_runs.get(conn, run_id)
    if run is None:
        raise PermanentError(f"agent run {run_id} vanished")
    if run.status in agent_runs.FINISHED:
        return Dispatch("finished", run.status)
    # Counted when a worker takes the run, before any peer call: a run whose attempts
    # fail at the Config Service is `running` too, so the relay (which re-enqueues only
    # `queued` runs) never adds a second chain of retries next to the broker's.
    attempt = agent_runs.start_attempt(conn, run_id)
    try:
        token = deps.config.impersonation_token(run.org_id, run.team_node_id)
        effective = deps.config.effective_config(token).effective_config
        chosen = plan(run, effective)
        with conn.transaction():
            if chosen.agent_name != run.agent_name:
                agent_runs.set_agent_name(conn, run_id, chosen.agent_name)
            if on_start is not None:
                on_start(conn, run, chosen)
        request = run.request
        body = {
            "message": request["message"],
            "context": request.get("context") or {},
            "timeout": request["timeout"],
            "max_turns": request["max_turns"],
            "output_destinations": chosen.output_destinations,
            "trigger_source": run.trigger_source,
        }
        result = deps.agent.run(
            agent_url(deps.settings, run.org_id, run.team_node_id, effective),
            chosen.agent_name,
            team_token=token,
            correlation_id=str(run_id),
            body=body,
            timeout=float(request["timeout"]),
        )
    except Exception as exc:
        if on_error is not None:
            try:
                on_error(conn, run, attempt, exc)
            except Exception:
                log.exception("could not record an agent run failure", extra=_ids(run))
        raise
    agent_runs.finish(
        conn, run_id, succeeded=True, result=result.model_dump(mode="json", exclude_none=True)
    )
    log.info("agent run succeeded", extra=_ids(run))
    return Dispatch("succeeded", "succeeded")


def _ids(run: AgentRun) -> dict[str, Any]:
    return {
        "agent_run_id": str(run.agent_run_id),
        "event_id": str(run.event_id) if run.event_id else None,
        "trigger_source": run.trigger_source,
    }


def agent_url(settings: Settings, org_id: str, team_node_id: str, effective: dict[str, Any]) -> str:
    """`AGENT_API_URL`, or the team's `agent.dedicated_service_url` only when it is the
    URL this orchestrator derives for that team's dedicated Service. Any other URL found
    in config is ignored: team config must not be able to point agent calls — carrying a
    team token — at an arbitrary host (SSRF)."""
    agent = effective.get("agent")
    configured = agent.get("dedicated_service_url") if isinstance(agent, dict) else None
    if isinstance(configured, str) and configured:
        derived = dedicated_agent_url(org_id, team_node_id, settings.k8s_namespace)
        if configured.rstrip("/") == derived:
            return derived
        log.warning(
            "ignoring a dedicated agent URL that is not the derived one",
            extra={"org_id": org_id, "team_node_id": team_node_id},
        )
    return settings.agent_api_url or ""


def output_destinations(
    effective: dict[str, Any],
    source: str,
    from_trigger: list[dict[str, Any]],
    *,
    use_default: bool = True,
) -> list[dict[str, Any]]:
    """`output_config.trigger_overrides[source]` when configured, else the trigger's own
    destinations, else (with `use_default`) `output_config.default_destinations`."""
    output = effective.get("output_config") or {}
    if not isinstance(output, dict):
        return list(from_trigger)
    overrides = output.get("trigger_overrides") or {}
    if isinstance(overrides, dict) and isinstance(overrides.get(source), list):
        return list(overrides[source])
    if from_trigger:
        return from_trigger
    default = output.get("default_destinations")
    return list(default) if use_default and isinstance(default, list) else []
